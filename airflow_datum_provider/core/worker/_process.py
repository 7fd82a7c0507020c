"""Run one user command: own process group, merged output pumped to a log sink, a deadline."""

from __future__ import annotations

import codecs
import collections
import functools
import io
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import IO, NamedTuple

__all__ = [
    "LOG_HEAD",
    "LOG_TAIL",
    "RUN_MARKER_ENV",
    "Exit",
    "LogSink",
    "SinkWriter",
    "kill_job_processes",
    "kill_marked",
    "run_command",
]

RUN_MARKER_ENV = "DATUM_WORKER_RUN"
"""Set to a fresh token in every command's environment: what finds the command's escapees."""

_TAIL = 4096
_READ = 1 << 16


LOG_HEAD = 1 << 20
"""Characters of a datum's log kept from its start (the first MiB, about)."""
LOG_TAIL = 1 << 20
"""Characters of a datum's log kept from its end; what lies between is dropped, and counted."""


class LogSink:
    """Where a datum's log text goes: the caller's stream, the console if verbose, a tail.

    The stream gets at most ``head`` characters from the start, then, once the datum ends
    (:meth:`flush`), one line saying how many characters were dropped and the last ``tail``
    characters: a datum printing 100 MB costs the runner ``head + tail``, not 100 MB, however
    many run side by side. The console (``verbose``) gets everything as it comes.
    """

    def __init__(
        self, log: IO[str] | None, verbose: bool, *, head: int = LOG_HEAD, tail: int = LOG_TAIL
    ) -> None:
        self._log = log
        self._console = sys.stderr if verbose else None
        self._tail = ""
        self._lock = threading.Lock()
        self._head = head
        self._head_left = head
        self._tail_size = tail
        self._held: collections.deque[str] = collections.deque()
        self._held_size = 0
        self._dropped = 0
        self._last = ""

    def write(self, text: str) -> None:
        if not text:
            return
        with self._lock:
            if self._console is not None:
                self._console.write(text)
                self._console.flush()
            self._tail = (self._tail + text)[-_TAIL:]
            self._last = text[-1]
            if self._log is None:
                return
            if self._head_left > 0:
                part = text[: self._head_left]
                self._log.write(part)
                self._head_left -= len(part)
                text = text[len(part) :]
                if not text:
                    return
            self._hold(text)

    def _hold(self, text: str) -> None:
        if len(text) > self._tail_size:
            self._dropped += len(text) - self._tail_size
            text = text[len(text) - self._tail_size :]
        self._held.append(text)
        self._held_size += len(text)
        while self._held_size > self._tail_size:
            first = self._held.popleft()
            excess = self._held_size - self._tail_size
            if len(first) > excess:
                self._held.appendleft(first[excess:])
                first = first[:excess]
            self._held_size -= len(first)
            self._dropped += len(first)

    def line(self, text: str) -> None:
        """Write a line of our own, on a line of its own."""
        prefix = "" if not self._last or self._last == "\n" else "\n"
        self.write(f"{prefix}{text}\n")

    def flush(self) -> None:
        """Write out the held tail (after a note of what was dropped); call when a datum ends."""
        with self._lock:
            if self._log is None:
                return
            if self._dropped:
                self._log.write(
                    f"\n=== {self._dropped} characters of output dropped here: a datum's log "
                    f"keeps its first {self._head} and last {self._tail_size} characters ===\n"
                )
                self._dropped = 0
            if self._held:
                self._log.write("".join(self._held))
                self._held.clear()
                self._held_size = 0
            self._log.flush()

    @property
    def tail(self) -> str:
        return self._tail


class SinkWriter(io.TextIOBase):
    """A text stream over a sink (``sys.stdout`` / ``sys.stderr`` of a Python transform)."""

    def __init__(self, sink: LogSink) -> None:
        super().__init__()
        self._sink = sink

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._sink.write(text)
        return len(text)


class Exit(NamedTuple):
    """How a command ended: ``code`` (negative: signal), ``timed_out``, or ``error`` to start."""

    code: int | None
    timed_out: bool = False
    error: str = ""


def _pump(stream: IO[bytes], sink: LogSink) -> None:
    # The pump owns the pipe and closes it: closing it from another thread while a read is
    # blocked could let the fd number be reused under the read.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    fd = stream.fileno()
    try:
        while data := os.read(fd, _READ):
            sink.write(decoder.decode(data))
        sink.write(decoder.decode(b"", final=True))
    except OSError:
        pass
    finally:
        stream.close()


def _feed(stream: IO[bytes], data: bytes) -> None:
    try:
        with stream:
            stream.write(data)
    except (BrokenPipeError, OSError):
        pass  # Pachyderm ignores user code that does not read its stdin


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _wait_unreaped(proc: subprocess.Popen[bytes]) -> None:
    # Wait for exit without reaping: while the leader is an unreaped zombie its pid cannot be
    # reused, so killing its process group afterwards cannot hit a stranger.
    if hasattr(os, "waitid"):
        os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
    else:  # pragma: no cover - non-Linux fallback
        proc.wait()


def run_command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: str | None,
    stdin_lines: Sequence[str],
    timeout: float | None,
    sink: LogSink,
) -> Exit:
    """Run ``argv`` in a new session; SIGKILL its whole group on timeout and once it exits.

    Killing the group after a normal exit too stops background children from outliving the
    datum (they would write into the next datum's scratch, and hold the log pipe open). A
    child that left the group (``setsid cmd &``, a double fork) is found by the token the
    command's environment carries in ``$DATUM_WORKER_RUN`` and killed too
    (:func:`kill_marked`), before the caller reads ``out/`` or lays out the next datum.
    """
    token = secrets.token_hex(16)
    child_env = dict(env)
    child_env[RUN_MARKER_ENV] = token
    since = _since()
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.PIPE if stdin_lines else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=child_env,
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        return Exit(None, error=f"cannot run {argv[0]!r}: {exc.strerror or exc}")
    assert proc.stdout is not None
    pump = threading.Thread(target=_pump, args=(proc.stdout, sink), daemon=True)
    pump.start()
    feeder = None
    if stdin_lines:
        assert proc.stdin is not None
        data = ("\n".join(stdin_lines) + "\n").encode()
        feeder = threading.Thread(target=_feed, args=(proc.stdin, data), daemon=True)
        feeder.start()
    fired = threading.Event()

    def expire() -> None:
        fired.set()
        _kill_group(proc.pid)

    timer = threading.Timer(timeout, expire) if timeout else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        _wait_unreaped(proc)
    finally:
        if timer is not None:
            timer.cancel()
        _kill_group(proc.pid)
        proc.wait()
        kill_marked(RUN_MARKER_ENV, token, since=since and since._replace(pid=proc.pid))
        # An escapee that rewrote its environment could still hold the pipe: do not wait.
        pump.join(timeout=2)
        if feeder is not None:
            feeder.join(timeout=1)
    code = proc.returncode
    return Exit(code, timed_out=fired.is_set() and code == -signal.SIGKILL)


def kill_job_processes(job_id: str) -> int:
    """SIGKILL this machine's processes whose environment has ``PACH_JOB_ID=<job_id>``.

    What a runner killed mid-datum leaves behind: the datum's command runs in its own session,
    so it outlives the runner. Called when a job is resumed, superseded or stopped after its
    runner died. See :func:`kill_marked`.
    """
    return kill_marked("PACH_JOB_ID", job_id)


_ROUNDS = 50
_RESERVED_PIDS = 300  # Linux hands these out at boot only; after a wrap it starts above them


class _Since(NamedTuple):
    """A command's start: its leader's pid, and this machine's fork count and task count."""

    pid: int
    forks: int
    tasks: int


def _read_proc(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def _forks() -> int | None:
    """Processes (and threads) created on this machine since boot (``/proc/stat``)."""
    data = _read_proc("/proc/stat")
    start = -1 if data is None else data.find(b"\nprocesses ")
    if data is None or start < 0:
        return None
    return int(data[start + 11 : data.index(b"\n", start + 1)])


def _loadavg() -> tuple[int, int] | None:
    """(tasks that exist, the last pid handed out) from ``/proc/loadavg``."""
    data = _read_proc("/proc/loadavg")
    if data is None:
        return None
    fields = data.split()
    return int(fields[3].split(b"/")[1]), int(fields[4])


def _since() -> _Since | None:
    """What :func:`_pid_window` needs to know, read just before a command starts."""
    forks, load = _forks(), _loadavg()
    if forks is None or load is None:
        return None
    return _Since(0, forks, load[0])


@functools.cache
def _proc_is_ours() -> bool:
    """Whether ``/proc`` lists the pid namespace this process allocates pids in.

    The window compares pids of both; a container given the host's ``/proc`` gets none.
    """
    try:
        return os.readlink("/proc/self") == str(os.getpid())
    except OSError:
        return False


def _pid_window(since: _Since) -> Callable[[int], bool] | None:
    """A test for "created after ``since``" by pid; ``None`` when it cannot be bounded.

    Linux hands out pids in increasing order, skipping pids in use, and wraps at
    ``pid_max``: every descendant of a command was created after its leader, so its pid lies
    (cyclically) between the leader's and the last one handed out (``/proc/loadavg``) --
    unless the counter came all the way round meanwhile. A lap takes as many creations as
    there are free pids; a pid is in use by a task or as the group or session id of a live
    one, so at most ``3 * tasks + created`` were at any moment, and while
    ``2 * created + 3 * tasks < pid_max - 300`` (creations counted by ``/proc/stat``) no lap
    was possible. Otherwise, or when a figure is unreadable, nothing is bounded. (User code
    that moves the counter itself, as root through ``ns_last_pid``, is not contained; nor is
    code that rewrites its environment.)
    """
    forks, load = _forks(), _loadavg()
    limit = _read_proc("/proc/sys/kernel/pid_max")
    if forks is None or load is None or limit is None or not _proc_is_ours():
        return None
    created = forks - since.forks
    if created < 0 or 2 * created + 3 * since.tasks >= int(limit) - _RESERVED_PIDS:
        return None
    first, last = since.pid, load[1]
    if last >= first:
        return lambda pid: first <= pid <= last
    return lambda pid: pid >= first or pid <= last


def kill_marked(key: str, value: str, *, since: _Since | None = None) -> int:
    """SIGKILL this machine's processes whose environment has ``<key>=<value>``; the count.

    Scans ``/proc`` again after each round that killed something, so a process that forked
    while the scan ran is found too (at most 50 rounds: a fork bomb outruns any scan). Reads
    ``/proc`` (Linux; elsewhere nothing is done) and skips processes it cannot read; user code
    that rewrote its environment is missed. With ``since`` (a command's leader), only the
    processes created after the leader are read (:func:`_pid_window`): a few instead of all.
    """
    proc = "/proc"
    if not os.path.isdir(proc):  # pragma: no cover - not Linux
        return 0
    needle = f"{key}={value}".encode()
    own = os.getpid()
    killed: set[int] = set()
    for _ in range(_ROUNDS):
        found = 0
        window = None if since is None else _pid_window(since)
        for name in os.listdir(proc):
            if not name.isdigit() or int(name) == own:
                continue
            if window is not None and not window(int(name)):
                continue
            try:
                with open(f"{proc}/{name}/environ", "rb") as fh:
                    environ = fh.read()
            except OSError:
                continue
            if needle in environ.split(b"\0"):
                pid = int(name)
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    continue
                if pid not in killed:  # one still dying is seen again: not a new one
                    killed.add(pid)
                    found += 1
        if not found:
            break
    return len(killed)
