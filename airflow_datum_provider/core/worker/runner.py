"""Run one datum: lay out scratch, run the transform with retries, collect the outputs.

Semantics (Pachyderm's ``datum.go``, see ``DESIGN.md`` §4):

* ``datum_tries`` attempts at most. Each starts from a freshly wiped scratch root with an empty
  ``out/``; a failed attempt's output is discarded (outputs are stored only after a success).
* After each failed attempt ``err_cmd`` (+ ``err_stdin``) runs with the same environment, the
  failed attempt's scratch still in place. If it exits 0 or with an ``accept_return_code`` the
  datum is **recovered**: no outputs, no further attempts, and ``reason`` keeps the failure
  that led there. ``accept_return_code`` applies to ``cmd`` and ``err_cmd``.
* ``datum_timeout`` bounds each attempt (and each ``err_cmd`` run): the process group is
  SIGKILLed and the attempt fails with ``datum timed out after <t>s``.
* ``deadline`` (a :func:`time.monotonic` instant: the job's ``job_timeout``) caps every attempt
  and every ``err_cmd`` run too; once it has passed nothing more runs, and a datum cut short by
  it fails with :data:`JOB_TIMEOUT_REASON` (the engine then kills the job).
* An attempt also fails when its outputs are refused (bad name, symlink escape): see
  :mod:`~airflow_datum_provider.core.worker.outputs`.

Commands run in their own session (process group, killed as a whole on timeout and when the
command exits, so no background child outlives its datum), with the worker's environment plus
the datum's (:mod:`~airflow_datum_provider.core.worker.env`). Their working directory is
``working_dir`` or, unset, the worker's own: Pachyderm uses the image's default, and the local
analogue of the image is the environment the worker runs in, so ``cmd: [python3, main.py]``
works when the job runs from the project folder. A ``working_dir`` under ``/pfs`` is mapped to
the scratch root when the ``/pfs`` namespace is not in use.

A Python transform is called in-process with one :class:`DatumContext`; an exception (or
``SystemExit`` with a non-zero code) fails the attempt with its ``repr`` as the reason. Its
``sys.stdout`` / ``sys.stderr`` are captured into the log (output written straight to the file
descriptors by C code or child processes is not). Its working directory is never changed. The
timeout interrupts it with ``SIGALRM`` when called on the main thread; elsewhere an attempt that
overran fails once it returns.

Store and disk errors (a missing blob, a full disk) are not the datum's fault and propagate,
so the job engine can retry or resume the job; only user-code outcomes land in the result.
"""

from __future__ import annotations

import importlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType, MappingProxyType
from typing import IO, Any, Literal

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.store.manifest import Entry
from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker._process import Exit, LogSink, SinkWriter, run_command
from airflow_datum_provider.core.worker.env import datum_env, datum_variables
from airflow_datum_provider.core.worker.namespace import PFS, pfs_namespace_available, wrap_command
from airflow_datum_provider.core.worker.options import PythonTransform, RunOptions
from airflow_datum_provider.core.worker.outputs import OutputRejected, collect_outputs
from airflow_datum_provider.core.worker.scratch import Scratch, lay_out, wipe

__all__ = ["JOB_TIMEOUT_REASON", "DatumContext", "DatumResult", "DatumState", "run_datum"]

DatumState = Literal["success", "failed", "recovered"]

JOB_TIMEOUT_REASON = "job timed out"


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumContext:
    """What a Python transform gets: ids, the scratch ``root``, ``out``, inputs and env.

    ``inputs`` maps each input name to the local path of its matched file or directory;
    ``env`` is the environment a command would get. Paths are real local paths (never
    ``/pfs``), since the callable runs in the worker's own process.
    """

    id: str
    job_id: str
    root: Path
    out: Path
    inputs: Mapping[str, Path]
    env: Mapping[str, str]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumResult:
    """The outcome of one datum. ``outputs`` is empty unless ``state`` is ``success``.

    Times are seconds summed over attempts; bytes likewise (a retried attempt downloads again).
    """

    datum_id: str
    state: DatumState
    reason: str = ""
    attempts: int = 0
    started: str = ""
    finished: str = ""
    download_time: float = 0.0
    process_time: float = 0.0
    upload_time: float = 0.0
    download_bytes: int = 0
    upload_bytes: int = 0
    outputs: tuple[Entry, ...] = ()
    log_tail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "datum_id": self.datum_id,
            "state": self.state,
            "reason": self.reason,
            "attempts": self.attempts,
            "started": self.started,
            "finished": self.finished,
            "download_time": self.download_time,
            "process_time": self.process_time,
            "upload_time": self.upload_time,
            "download_bytes": self.download_bytes,
            "upload_bytes": self.upload_bytes,
            "outputs": [
                {"path": e.path, "hash": e.hash, "size_bytes": e.size, "tag": e.tag}
                for e in self.outputs
            ],
            "log_tail": self.log_tail,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> DatumResult:
        return cls(
            datum_id=raw["datum_id"],
            state=raw["state"],
            reason=raw.get("reason", ""),
            attempts=raw.get("attempts", 0),
            started=raw.get("started", ""),
            finished=raw.get("finished", ""),
            download_time=raw.get("download_time", 0.0),
            process_time=raw.get("process_time", 0.0),
            upload_time=raw.get("upload_time", 0.0),
            download_bytes=raw.get("download_bytes", 0),
            upload_bytes=raw.get("upload_bytes", 0),
            outputs=tuple(
                Entry(o["path"], o["hash"], o["size_bytes"], o.get("tag", ""))
                for o in raw.get("outputs", ())
            ),
            log_tail=raw.get("log_tail", ""),
        )


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


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


def _call_python(
    target: str | PythonTransform, ctx: DatumContext, timeout: float | None, sink: LogSink
) -> str | None:
    writer = SinkWriter(sink)
    start = time.monotonic()
    try:
        fn = _load(target)
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


class _Attempts:
    """The per-datum plumbing shared by attempts: env, namespace wrapping, the log."""

    def __init__(
        self,
        options: RunOptions,
        scratch_root: Path,
        variables: dict[str, str],
        use_ns: bool,
        sink: LogSink,
    ) -> None:
        self.options = options
        self.root = scratch_root
        self.variables = variables
        self.env = datum_env(variables)
        self.use_ns = use_ns
        self.sink = sink
        wd = options.working_dir
        if wd and not use_ns and (wd == PFS or wd.startswith(PFS + "/")):
            wd = str(scratch_root) + wd[len(PFS) :]
        self.working_dir = wd

    def command(
        self,
        argv: tuple[str, ...],
        stdin: tuple[str, ...],
        names: list[str],
        timeout: float | None,
    ) -> str | None:
        opts = self.options
        cwd: str | None = self.working_dir or None
        if self.use_ns:
            argv = tuple(
                wrap_command(
                    argv, scratch_root=self.root, read_only=names, working_dir=self.working_dir
                )
            )
            cwd = None
        ended = run_command(
            argv,
            env=self.env,
            cwd=cwd,
            stdin_lines=stdin,
            timeout=timeout,
            sink=self.sink,
        )
        return _exit_reason(ended, opts.accept_return_code, timeout)

    def transform(
        self, datum: Datum, job_id: str, scratch: Scratch, timeout: float | None
    ) -> str | None:
        opts = self.options
        names = [inp.name for inp in datum.inputs]
        if opts.python is not None:
            ctx = DatumContext(
                id=datum.id,
                job_id=job_id,
                root=scratch.root,
                out=scratch.out,
                inputs=scratch.inputs,
                env=MappingProxyType(self.env),
            )
            return _call_python(opts.python, ctx, timeout, self.sink)
        return self.command(opts.cmd, opts.stdin, names, timeout)


class _Budget:
    """Each run's time limit: ``datum_timeout``, capped by the job's ``deadline``."""

    def __init__(self, datum_timeout: float | None, deadline: float | None) -> None:
        self.datum_timeout = datum_timeout
        self.deadline = deadline
        self.capped = False

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def next(self) -> float | None:
        """The limit for the run about to start; notes whether the deadline set it."""
        if self.deadline is None:
            return self.datum_timeout
        left = max(self.deadline - time.monotonic(), 0.001)
        self.capped = self.datum_timeout is None or left < self.datum_timeout
        return left if self.capped else self.datum_timeout

    def cut_short(self, failure: str | None) -> bool:
        """Whether ``failure`` is the deadline's doing (the run was capped by it and overran)."""
        return failure is not None and self.capped and self.expired()


def run_datum(
    store: Store,
    datum: Datum,
    *,
    options: RunOptions,
    job_id: str,
    output_commit_id: str,
    pipeline: str,
    scratch_root: Path,
    log: IO[str] | None = None,
    verbose: bool = False,
    deadline: float | None = None,
) -> DatumResult:
    """Process one datum to a :class:`DatumResult` (see the module docstring).

    ``scratch_root`` is this worker's own folder (``/pfs`` in a pod); its contents are deleted.
    ``deadline`` is a :func:`time.monotonic` instant no attempt or ``err_cmd`` may run past.
    ``log`` receives every attempt's output under a header line; ``verbose`` echoes it to
    stderr. Outputs are stored as blobs tagged with the datum id; the caller merges them.
    """
    started = _now()
    root = Path(os.path.realpath(scratch_root))
    in_pod = str(root) == PFS
    use_ns = False
    if options.python is None and not in_pod and options.use_pfs_mount is not False:
        use_ns = pfs_namespace_available()
        if options.use_pfs_mount and not use_ns:
            raise PipelineError(
                "use_pfs_mount=True, but this machine cannot give commands a private /pfs "
                "(needs Linux, util-linux `unshare`, a /pfs directory, and root or "
                "unprivileged user namespaces)"
            )
    view_root = PFS if use_ns or in_pod else str(root)
    variables = datum_variables(
        datum,
        root=view_root,
        job_id=job_id,
        output_commit_id=output_commit_id,
        pipeline=pipeline,
        transform_env=options.env,
    )
    # Hard links are safe only where writes through them fail (see scratch.py).
    link = use_ns or os.geteuid() != 0
    sink = LogSink(log, verbose)
    run = _Attempts(options, root, variables, use_ns, sink)
    names = [inp.name for inp in datum.inputs]
    tries = options.datum_tries
    kind = "python " + str(options.python) if options.python is not None else "cmd"
    state: DatumState = "failed"
    reason = ""
    outputs: tuple[Entry, ...] = ()
    attempts = 0
    dl_time = proc_time = up_time = 0.0
    dl_bytes = up_bytes = 0
    budget = _Budget(options.datum_timeout, deadline)
    try:
        for attempt in range(1, tries + 1):
            if budget.expired():
                reason = JOB_TIMEOUT_REASON
                sink.line(f"=== datum {datum.id}: {reason} ===")
                break
            attempts = attempt
            sink.line(f"=== datum {datum.id}: attempt {attempt}/{tries} ({kind}) ===")
            t0 = time.monotonic()
            scratch = lay_out(store, datum, root, variables=variables, link=link)
            t1 = time.monotonic()
            dl_time += t1 - t0
            dl_bytes += scratch.download_bytes
            failure = run.transform(datum, job_id, scratch, budget.next())
            t2 = time.monotonic()
            proc_time += t2 - t1
            if budget.cut_short(failure):
                reason = JOB_TIMEOUT_REASON
                sink.line(f"=== datum {datum.id}: attempt {attempt}: {reason} ===")
                break
            if failure is None:
                try:
                    outputs, nbytes = collect_outputs(
                        store, root, tag=datum.id, view_root=view_root
                    )
                    up_bytes += nbytes
                except OutputRejected as exc:
                    failure = str(exc)
                up_time += time.monotonic() - t2
            if failure is None:
                state, reason = "success", ""
                sink.line(f"=== datum {datum.id}: success ===")
                break
            reason = failure
            sink.line(f"=== datum {datum.id}: attempt {attempt} failed: {failure} ===")
            if options.err_cmd:
                if budget.expired():
                    reason = JOB_TIMEOUT_REASON
                    sink.line(f"=== datum {datum.id}: {reason} ===")
                    break
                sink.line(f"=== datum {datum.id}: err_cmd ===")
                t3 = time.monotonic()
                err_failure = run.command(options.err_cmd, options.err_stdin, names, budget.next())
                proc_time += time.monotonic() - t3
                if budget.cut_short(err_failure):
                    reason = JOB_TIMEOUT_REASON
                    sink.line(f"=== datum {datum.id}: err_cmd: {reason} ===")
                    break
                if err_failure is None:
                    state = "recovered"
                    sink.line(f"=== datum {datum.id}: recovered ===")
                    break
                sink.line(f"=== datum {datum.id}: err_cmd failed: {err_failure} ===")
        else:
            sink.line(f"=== datum {datum.id}: failed after {tries} attempts: {reason} ===")
    finally:
        wipe(root, keep={"out", *names})
        sink.flush()
    return DatumResult(
        datum_id=datum.id,
        state=state,
        reason=reason,
        attempts=attempts,
        started=started,
        finished=_now(),
        download_time=dl_time,
        process_time=proc_time,
        upload_time=up_time,
        download_bytes=dl_bytes,
        upload_bytes=up_bytes,
        outputs=outputs if state == "success" else (),
        log_tail=sink.tail,
    )
