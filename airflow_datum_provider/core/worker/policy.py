"""The attempt policy of one datum, once for every runtime: tries, err_cmd, timeouts, the result.

:func:`attempts` is a generator: it yields each :class:`~.runtime.Run` of user code it wants
(``transform`` attempt n, or ``err_cmd`` after a failed attempt), the runtime answers through
``send`` with ``None`` (success) or the failure reason, and the generator returns the
:class:`DatumResult`. :func:`~.runtime.drive` is the plain loop; a batching runtime can hold the
generators of many datums and answer each as its user process reports. Semantics (Pachyderm's
``datum.go``; ``DESIGN.md`` §4):

* ``datum_tries`` attempts of the user code at most. Each starts from a freshly laid-out scratch
  root with an empty ``out/``; a failed attempt's output is discarded (outputs are stored only
  after a success, by ``collect``). The first success ends the attempts: the datum succeeds.
* ``err_cmd`` (+ ``err_stdin``) runs after **each** failed attempt, the failed attempt's scratch
  still in place. Its success does not end the attempts: only when every attempt failed is the
  datum **recovered** (some ``err_cmd`` run succeeded) or **failed** (none did). A recovered
  datum has no outputs; ``reason`` keeps the last failure.
* ``datum_timeout`` bounds each run (the runtime enforces it: the ``timeout`` of each run).
* ``deadline`` (a :func:`time.monotonic` instant: the job's ``job_timeout``) caps every run too;
  once it has passed nothing more runs, and a datum cut short by it fails with
  :data:`JOB_TIMEOUT_REASON` (the engine then kills the job).
* A datum whose inputs cannot be laid out (``prepare`` raises
  :class:`~airflow_datum_provider.core.worker.scratch.InputRejected`: a name this machine's
  file system cannot hold) fails at once, without running user code or ``err_cmd``.
* An attempt whose outputs are refused (``collect`` raises
  :class:`~airflow_datum_provider.core.worker.outputs.OutputRejected`) is a failed attempt.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import OutputRejected
from airflow_datum_provider.core.states import DatumState
from airflow_datum_provider.core.store.manifest import Entry
from airflow_datum_provider.core.worker.scratch import InputRejected

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker._process import LogSink
    from airflow_datum_provider.core.worker.runtime import Run
    from airflow_datum_provider.core.worker.scratch import Scratch

__all__ = [
    "JOB_TIMEOUT_REASON",
    "AttemptPolicy",
    "DatumResult",
    "DatumState",
    "attempts",
    "output_entries",
]

JOB_TIMEOUT_REASON = "job timed out"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumResult:
    """The outcome of one datum. ``outputs`` is empty unless ``state`` is ``success``.

    Times are seconds summed over attempts; bytes likewise (a retried attempt downloads again).
    ``try_number`` is the try of the set's runner that wrote the result (0: not checkpointed).
    Reading a record ignores keys this version does not know (a newer writer may add some).
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
    try_number: int = 0

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
                {"path": e.path, "hash": e.hash, "size_bytes": e.size, "tag": e.tag, "loc": e.loc}
                if e.loc
                else {"path": e.path, "hash": e.hash, "size_bytes": e.size, "tag": e.tag}
                for e in self.outputs
            ],
            "log_tail": self.log_tail,
            "try": self.try_number,
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
            outputs=output_entries(raw),
            log_tail=raw.get("log_tail", ""),
            try_number=int(raw.get("try", 0)),
        )


def output_entries(raw: Mapping[str, Any]) -> tuple[Entry, ...]:
    """The output entries of a result in its dict form (:meth:`DatumResult.to_dict`)."""
    return tuple(
        Entry(o["path"], o["hash"], o["size_bytes"], o.get("tag", ""), o.get("loc", ""))
        for o in raw.get("outputs", ())
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptPolicy:
    """How often and how long a datum's user code may run (see the module docstring)."""

    tries: int = 3
    datum_timeout: float | None = None
    err_cmd: bool = False
    deadline: float | None = None


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


def attempts(
    datum: Datum,
    policy: AttemptPolicy,
    *,
    prepare: Callable[[], Scratch],
    collect: Callable[[], tuple[tuple[Entry, ...], int]],
    sink: LogSink,
    label: str = "cmd",
    try_number: int = 0,
) -> Generator[Run, str | None, DatumResult]:
    """Run the policy for one datum (module docstring); ``send`` each run's failure or ``None``.

    ``prepare`` lays out a fresh scratch for an attempt, ``collect`` stores ``out/`` after a
    successful one (returning the entries and their bytes), ``sink`` gets the policy's header
    lines, ``label`` names the transform in them, ``try_number`` is stamped on the result
    (with the sink's tail). Store errors from either propagate.
    """
    from airflow_datum_provider.core.worker.runtime import Run

    started = _now()
    tries = policy.tries
    state: DatumState = "failed"
    reason = ""
    recovered = False
    outputs: tuple[Entry, ...] = ()
    count = 0
    dl_time = proc_time = up_time = 0.0
    dl_bytes = up_bytes = 0
    budget = _Budget(policy.datum_timeout, policy.deadline)
    for attempt in range(1, tries + 1):
        if budget.expired():
            reason = JOB_TIMEOUT_REASON
            sink.line(f"=== datum {datum.id}: {reason} ===")
            break
        count = attempt
        sink.line(f"=== datum {datum.id}: attempt {attempt}/{tries} ({label}) ===")
        t0 = time.monotonic()
        try:
            scratch = prepare()
        except InputRejected as exc:  # the same every time: no retry, no err_cmd
            reason = str(exc)
            sink.line(f"=== datum {datum.id}: {reason} ===")
            break
        t1 = time.monotonic()
        dl_time += t1 - t0
        dl_bytes += scratch.download_bytes
        failure = yield Run(
            kind="transform",
            datum=datum,
            attempt=attempt,
            tries=tries,
            timeout=budget.next(),
            scratch=scratch,
        )
        t2 = time.monotonic()
        proc_time += t2 - t1
        if budget.cut_short(failure):
            reason = JOB_TIMEOUT_REASON
            sink.line(f"=== datum {datum.id}: attempt {attempt}: {reason} ===")
            break
        if failure is None:
            try:
                outputs, nbytes = collect()
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
        if policy.err_cmd:
            if budget.expired():
                reason = JOB_TIMEOUT_REASON
                sink.line(f"=== datum {datum.id}: {reason} ===")
                break
            sink.line(f"=== datum {datum.id}: err_cmd ===")
            t3 = time.monotonic()
            err_failure = yield Run(
                kind="err_cmd",
                datum=datum,
                attempt=attempt,
                tries=tries,
                timeout=budget.next(),
                scratch=scratch,
            )
            proc_time += time.monotonic() - t3
            if budget.cut_short(err_failure):
                reason = JOB_TIMEOUT_REASON
                sink.line(f"=== datum {datum.id}: err_cmd: {reason} ===")
                break
            if err_failure is None:
                recovered = True
                sink.line(f"=== datum {datum.id}: err_cmd succeeded ===")
            else:
                sink.line(f"=== datum {datum.id}: err_cmd failed: {err_failure} ===")
    else:
        if recovered:
            state = "recovered"
            sink.line(f"=== datum {datum.id}: recovered after {tries} attempts: {reason} ===")
        else:
            sink.line(f"=== datum {datum.id}: failed after {tries} attempts: {reason} ===")
    return DatumResult(
        datum_id=datum.id,
        state=state,
        reason=reason,
        attempts=count,
        started=started,
        finished=_now(),
        download_time=dl_time,
        process_time=proc_time,
        upload_time=up_time,
        download_bytes=dl_bytes,
        upload_bytes=up_bytes,
        outputs=outputs if state == "success" else (),
        log_tail=sink.tail,
        try_number=try_number,
    )
