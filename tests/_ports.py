"""Free TCP ports for test servers, never handed out twice to concurrent test processes.

Binding to port 0 and closing the socket leaves a window until the server binds the port (for
the Airflow stacks, a whole ``airflow db migrate``): another pytest-xdist worker, or a second
test session on this machine, may be given the same port meanwhile. :func:`free_port` reserves
what it returns with a POSIX record lock on byte ``port`` of one shared lock file, held until
this process exits (a restarted server, such as a killed triggerer's log server, binds the same
port again); a port another test process holds is skipped. Where the lock file cannot be opened
the port is still one nothing listens on, as before.
"""

from __future__ import annotations

import fcntl
import os
import socket
import tempfile

__all__ = ["free_port"]

LOCK_FILE = os.path.join(tempfile.gettempdir(), "datum-test-ports.lock")
_fd: int | None = None
_mine: set[int] = set()  # record locks do not conflict within one process


def _lock_fd() -> int | None:
    global _fd
    if _fd is None:
        try:
            _fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError:
            return None
    return _fd


def _reserve(port: int) -> bool:
    if port in _mine:
        return False
    fd = _lock_fd()
    if fd is not None:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
        except OSError:  # EAGAIN/EACCES: another test process holds it
            return False
    _mine.add(port)
    return True


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now and no other test process reserved."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if _reserve(port):
            return port
