"""Runtimes: what runs one :class:`Run` of user code that the attempt policy asks for.

The attempt policy (:func:`~airflow_datum_provider.core.worker.policy.attempts`) decides what
runs, when, and what the datum's result is; a runtime only runs user code. The interface::

    class AttemptRuntime(Protocol):
        def run(self, run: Run) -> str | None: ...

``run.kind`` is ``"transform"`` (attempt ``run.attempt`` of ``run.tries``, on the freshly laid
out ``run.scratch``) or ``"err_cmd"`` (after that attempt failed, its scratch still in place).
The runtime must return within ``run.timeout`` seconds (``None``: no limit), killing what it
started, and answer ``None`` for success or a one-line reason for failure (Go's wording for
exits: ``exit status 1``, ``signal: killed``, ``datum timed out after 5s``). It must not store
outputs, lay out scratch or retry: the policy does that, identically for every runtime. Store
and disk errors are not the datum's fault: raise them.

Two runtimes live here: :class:`CommandRuntime` (``cmd`` + ``stdin`` as a subprocess in its own
session, optionally in a private ``/pfs`` mount namespace) and :class:`PythonRuntime` (a
``module:function`` called in this process with a
:class:`~airflow_datum_provider.core.worker.runner.DatumContext`); both run ``err_cmd`` as a
command. :func:`drive` is the loop between one datum's policy generator and a runtime.

**Writing another runtime** (datum batching is the next one): implement ``run``. For batching,
a ``transform`` run hands ``run.datum`` (its scratch already laid out) to the long-lived user
process as the answer to its pending ``NextDatum`` call and returns when the process calls
``NextDatum`` again (``None``, or the error it reported), exits or overruns ``run.timeout``
(kill and restart the process, return the reason). ``err_cmd`` runs are commands, as here
(inherit :class:`CommandRuntime`). Drive each datum's generator with :func:`drive`, in the
order the process consumes them.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
import traceback
from collections import ChainMap
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.worker._process import Exit, LogSink, SinkWriter, run_command
from airflow_datum_provider.core.worker.env import datum_env
from airflow_datum_provider.core.worker.namespace import (
    PFS,
    private_tmp,
    private_tmp_setting,
    wrap_command,
)
from airflow_datum_provider.core.worker.options import PythonTransform, RunOptions

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker.policy import DatumResult
    from airflow_datum_provider.core.worker.scratch import Scratch

__all__ = [
    "AttemptRuntime",
    "CommandRuntime",
    "PythonRuntime",
    "Run",
    "RunKind",
    "call_python",
    "drive",
    "runtime_for",
]

RunKind = Literal["transform", "err_cmd"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """One run of user code the policy asks for (see the module docstring)."""

    kind: RunKind
    datum: Datum
    attempt: int
    tries: int
    timeout: float | None
    scratch: Scratch


class AttemptRuntime(Protocol):
    """Runs one :class:`Run`; ``None`` on success, else the failure reason."""

    def run(self, run: Run) -> str | None: ...


def drive(policy: Generator[Run, str | None, DatumResult], runtime: AttemptRuntime) -> DatumResult:
    """Answer each run the policy asks for with ``runtime`` until it returns the result."""
    try:
        run = next(policy)
        while True:
            run = policy.send(runtime.run(run))
    except StopIteration as stop:
        result: DatumResult = stop.value
        return result


def _seconds(value: float) -> str:
    return f"{value:g}s"


def _exit_reason(ended: Exit, accept: tuple[int, ...], timeout: float | None) -> str | None:
    """``None`` when the command succeeded, else Go's wording (``exit status 1``)."""
    if ended.error:
        return ended.error
    if ended.timed_out:
        return f"datum timed out after {_seconds(timeout or 0)}"
    code = ended.code
    assert code is not None
    if code == 0 or code in accept:
        return None
    if code < 0:
        try:
            name = signal.strsignal(-code) or f"signal {-code}"
        except ValueError:
            name = f"signal {-code}"
        return f"signal: {name.lower()}"
    return f"exit status {code}"


class CommandRuntime:
    """Runs ``cmd`` (+ ``stdin``) and ``err_cmd`` as commands in their own session.

    ``variables`` are the datum's variables (paths as user code sees them); ``use_ns`` wraps
    each command in a private mount namespace with ``/pfs`` on ``root``.
    """

    label = "cmd"

    def __init__(
        self,
        options: RunOptions,
        *,
        root: Path,
        variables: dict[str, str],
        use_ns: bool,
        sink: LogSink,
        job_id: str,
    ) -> None:
        self.options = options
        self.root = root
        self.variables = variables
        self._env: dict[str, str] | None = None
        self.use_ns = use_ns
        self.sink = sink
        self.job_id = job_id
        wd = options.working_dir
        if wd and not use_ns and (wd == PFS or wd.startswith(PFS + "/")):
            wd = str(root) + wd[len(PFS) :]
        self.working_dir = wd

    @property
    def env(self) -> dict[str, str]:
        """The full environment of a command (built on first use: a copy of ``os.environ``)."""
        if self._env is None:
            self._env = datum_env(self.variables)
        return self._env

    def run(self, run: Run) -> str | None:
        if run.kind == "err_cmd":
            return self.command(self.options.err_cmd, self.options.err_stdin, run)
        return self.transform(run)

    def transform(self, run: Run) -> str | None:
        """Run the transform once."""
        return self.command(self.options.cmd, self.options.stdin, run)

    def command(self, argv: tuple[str, ...], stdin: tuple[str, ...], run: Run) -> str | None:
        """Run one command for ``run``'s datum within ``run.timeout``."""
        cwd: str | None = self.working_dir or None
        if self.use_ns:
            names = [inp.name for inp in run.datum.inputs]
            tmp: Path | None = None
            if private_tmp_setting(argv, self.env.get("PATH")):
                tmp = private_tmp(self.root)
                tmp.mkdir(mode=0o1777, exist_ok=True)  # /tmp's mode: any user code may write
                tmp.chmod(0o1777)
            argv = tuple(
                wrap_command(
                    argv,
                    scratch_root=self.root,
                    read_only=names,
                    working_dir=self.working_dir,
                    tmp_dir=tmp,
                )
            )
            cwd = None
        ended = run_command(
            argv,
            env=self.env,
            cwd=cwd,
            stdin_lines=stdin,
            timeout=run.timeout,
            sink=self.sink,
        )
        return _exit_reason(ended, self.options.accept_return_code, run.timeout)


_IMPORTED: dict[str, PythonTransform] = {}


def _load(target: str | PythonTransform) -> PythonTransform:
    if not isinstance(target, str):
        return target
    found = _IMPORTED.get(target)
    if found is None:
        module_name, _, attr = target.partition(":")
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
        if not callable(obj):
            raise TypeError(f"{target} is not callable")
        found = _IMPORTED[target] = obj
    return found


class _Timeout(BaseException):
    """Raised into a Python transform by SIGALRM; a BaseException so `except Exception` misses."""


@contextmanager
def _alarm(seconds: float | None) -> Iterator[Callable[[], None]]:
    """Interrupt the body after ``seconds`` (main thread only); yields a "done" callback."""
    state = {"armed": True}

    def done() -> None:
        state["armed"] = False

    if not seconds or threading.current_thread() is not threading.main_thread():
        yield done
        return

    def on_alarm(signum: int, frame: FrameType | None) -> None:
        if state["armed"]:
            state["armed"] = False
            raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_delay, old_interval = signal.setitimer(signal.ITIMER_REAL, seconds)
    start = time.monotonic()
    try:
        yield done
    finally:
        state["armed"] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_delay:  # give back someone else's timer (pytest-timeout uses SIGALRM too)
            left = max(old_delay - (time.monotonic() - start), 0.001)
            signal.setitimer(signal.ITIMER_REAL, left, old_interval)


def call_python(
    target: str | PythonTransform, ctx: Any, timeout: float | None, sink: LogSink
) -> str | None:
    """Call a Python transform with ``ctx``, its prints captured into ``sink``."""
    writer = SinkWriter(sink)
    start = time.monotonic()
    try:
        fn = _load(target)
        if not timeout:  # the usual case: no alarm to arm (a context manager less per datum)
            with redirect_stdout(writer), redirect_stderr(writer):
                fn(ctx)
        else:
            with redirect_stdout(writer), redirect_stderr(writer), _alarm(timeout) as done:
                fn(ctx)
                done()
    except _Timeout:
        return f"datum timed out after {_seconds(timeout or 0)}"
    except SystemExit as exc:
        if exc.code not in (0, None):
            return repr(exc)
    except Exception as exc:
        sink.write(traceback.format_exc())
        return repr(exc)
    if timeout and time.monotonic() - start > timeout:
        return f"datum timed out after {_seconds(timeout)}"
    return None


class PythonRuntime(CommandRuntime):
    """Calls ``python`` (a callable or ``module:function``) in this process; err_cmd as a command.

    The callable gets a :class:`~airflow_datum_provider.core.worker.runner.DatumContext`; the
    timeout interrupts it with ``SIGALRM`` on the main thread only (elsewhere an attempt that
    overran fails once it returns).
    """

    def __init__(self, options: RunOptions, **kwargs: Any) -> None:
        super().__init__(options, **kwargs)
        assert options.python is not None
        self.target = options.python
        self.label = f"python {options.python}"

    def transform(self, run: Run) -> str | None:
        from airflow_datum_provider.core.worker.runner import DatumContext

        ctx = DatumContext(
            id=run.datum.id,
            job_id=self.job_id,
            root=run.scratch.root,
            out=run.scratch.out,
            inputs=run.scratch.inputs,
            # A read-only view, not a copy of os.environ per datum (what a command needs).
            env=MappingProxyType(ChainMap(self.variables, os.environ)),
            rows=next((i.rows for i in run.datum.inputs if i.rows is not None), None),
        )
        return call_python(self.target, ctx, run.timeout, self.sink)


def runtime_for(options: RunOptions, **kwargs: Any) -> CommandRuntime:
    """The runtime of ``options``: :class:`PythonRuntime` for ``python``, else commands."""
    if options.python is not None:
        return PythonRuntime(options, **kwargs)
    return CommandRuntime(options, **kwargs)
