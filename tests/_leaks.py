"""Processes left behind by tests: found after each test, killed, reported (Linux only).

The pytest process becomes a *child subreaper* (``PR_SET_CHILD_SUBREAPER``): a process whose
parent dies is re-parented to pytest instead of ``init``, so everything a test started, even
the ``setsid`` user command of a SIGKILLed runner, stays one of pytest's children until it is
reaped. After each test's teardown, :func:`settle` looks at pytest's children that were not
there when the test's setup ended (module and session fixtures started before stay out): a
datum's user code among them (its environment has one of :data:`USER_CODE_ENV`) that still
runs fails the test, and is SIGKILLed with its descendants and reaped. Other new children may
be a module fixture's process that the test restarted (a triggerer killed and started again),
so they are left alone until the session ends: :func:`sweep` then kills what still runs among
pytest's children, reaps them all, and the summary lists what it found running.

Every process started under a session carries ``DATUM_TEST_SESSION=<pytest pid>:<rootdir>``;
a later session over the same rootdir kills what a session that died without its teardown
(``kill -9`` of pytest, an outer ``timeout``) left running, and reports it.

Under pytest-xdist each worker is the subreaper of its own tests' processes and runs the checks
above for them. The controller alone kills what dead sessions left, and its marker is the one
the workers' processes carry: its command line is pytest's, while a worker's is ``python -c ...``
(it reads ``[pytest-xdist running] ...`` only where setproctitle is installed), so no worker's
running processes look orphaned to a later session or a restarted worker. The controller is a
subreaper too: what a crashed worker left is its child, swept once the workers are shut down.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import time
from collections.abc import Iterable

__all__ = [
    "SESSION_ENV",
    "USER_CODE_ENV",
    "become_subreaper",
    "children",
    "describe",
    "reap_dead_sessions",
    "session_marker",
    "settle",
    "sweep",
]

SESSION_ENV = "DATUM_TEST_SESSION"
USER_CODE_ENV = (b"DATUM_WORKER_RUN", b"DATUM_SET", b"PACH_JOB_ID")
"""Variables the worker puts in every user command's environment (and nowhere else)."""

_PR_SET_CHILD_SUBREAPER = 36
_PF_EXITING = 0x4
_SIGKILL_BIT = 1 << (signal.SIGKILL - 1)
_KEEP = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")
"""Helpers that multiprocessing starts once and keeps for the life of the pytest process."""
_REAP_BOUND = 60.0  # seconds for a SIGKILLed process to exit (a loaded two-core machine)
_ROUNDS = 20


def supported() -> bool:
    return sys.platform.startswith("linux") and os.path.exists(
        f"/proc/{os.getpid()}/task/{os.getpid()}/children"
    )


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants; False where unsupported."""
    if not supported():
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


def session_marker(rootdir: str) -> str:
    return f"{os.getpid()}:{rootdir}"


def children(pid: int | None = None) -> set[int]:
    """The child pids of ``pid`` (default: this process), over all its threads."""
    pid = os.getpid() if pid is None else pid
    found: set[int] = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                found.update(int(p) for p in fh.read().split())
        except OSError:
            continue
    return found


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except OSError:
        return None


def describe(pid: int) -> str:
    """``<pid> <command line>`` (cut at 200 characters)."""
    raw = _read(f"/proc/{pid}/cmdline") or b""
    args = raw.rstrip(b"\0").replace(b"\0", b" ").decode(errors="replace")
    return f"{pid} {args[:200]}"


def _environ(pid: int) -> list[bytes]:
    return (_read(f"/proc/{pid}/environ") or b"").split(b"\0")


def _is_user_code(pid: int) -> bool:
    return any(item.partition(b"=")[0] in USER_CODE_ENV for item in _environ(pid))


def _dying(pid: int) -> bool | None:
    """True if the process is dead or being killed, False if it runs, None if it is gone."""
    stat = _read(f"/proc/{pid}/stat")
    status = _read(f"/proc/{pid}/status")
    if stat is None or status is None:
        return None
    fields = stat.rsplit(b")", 1)[1].split()
    if fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
        return True
    for line in status.splitlines():
        if line.startswith((b"SigPnd:", b"ShdPnd:")) and int(line.split()[1], 16) & _SIGKILL_BIT:
            return True
    return False


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        for child in children(current):
            if child not in found:
                found.append(child)
                todo.append(child)
    return found


def _reap(pids: Iterable[int]) -> None:
    """Wait (bounded) for each of these children of ours to exit, and reap it."""
    for pid in pids:
        deadline = time.monotonic() + _REAP_BOUND
        while True:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break  # not (or no longer) our child: someone else reaps it
            if done or time.monotonic() > deadline:
                break
            time.sleep(0.01)


def _kill_tree(pid: int) -> None:
    for member in [pid, *_descendants(pid)]:
        with contextlib.suppress(OSError):
            os.kill(member, signal.SIGKILL)


def settle(baseline: set[int]) -> list[str]:
    """Kill and reap user code among this process's children not in ``baseline``.

    Returns the :func:`describe` lines of those found running (not dying). Only user code is
    touched here: another new child may be a module fixture's process that the test restarted
    (it is left to :func:`sweep`). Killing a parent re-parents its children to us (we are the
    subreaper), hence the rounds.
    """
    found: list[str] = []
    for _ in range(_ROUNDS):
        killed = []
        for pid in sorted(children() - baseline):
            if _dying(pid) is False and _is_user_code(pid):
                found.append(describe(pid))
                found.extend(describe(d) for d in _descendants(pid) if _dying(d) is False)
                _kill_tree(pid)
                killed.append(pid)
        if not killed:
            break
        _reap(killed)
    return found


def sweep() -> list[str]:
    """At the session's end: kill what still runs among our children; reap them all.

    Returns the :func:`describe` lines of the processes found running (with descendants).
    """
    found: list[str] = []
    for _ in range(_ROUNDS):
        left = [p for p in children() if not any(h in describe(p) for h in _KEEP)]
        if not left:
            break
        for pid in left:
            if _dying(pid) is False:
                found.append(describe(pid))
                found.extend(describe(d) for d in _descendants(pid) if _dying(d) is False)
            _kill_tree(pid)
        _reap(left)
    return found


def reap_dead_sessions(rootdir: str) -> list[str]:
    """Kill processes left by earlier sessions over ``rootdir`` whose pytest is gone."""
    mine = os.getpid()
    suffix = f":{rootdir}".encode()
    prefix = f"{SESSION_ENV}=".encode()
    killed = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == mine:
            continue
        for item in _environ(int(name)):
            if item.startswith(prefix) and item.endswith(suffix):
                owner = item[len(prefix) : -len(suffix)]
                if owner.isdigit() and not _is_pytest(int(owner)):
                    line = describe(int(name))
                    with contextlib.suppress(OSError):
                        os.kill(int(name), signal.SIGKILL)
                        killed.append(line)
                break
    return killed


def _is_pytest(pid: int) -> bool:
    """Whether ``pid`` is a running pytest (its owner session is still alive)."""
    if _dying(pid) is not False:
        return False
    args = (_read(f"/proc/{pid}/cmdline") or b"").split(b"\0")
    return any(b"pytest" in arg for arg in args)
