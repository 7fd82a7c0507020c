"""The steps of a job after :func:`~airflow_datum_provider.core.jobs.lifecycle.start_job`.

:func:`plan_job` lists the datums, skips unchanged ones and writes the datum sets, returning one
:class:`SetRef` per set; :func:`run_set` runs one set (anywhere: inline, a pool worker, an
Airflow mapped task, a pod through ``python -m airflow_datum_provider.worker run-set``) and
returns its :class:`SetSummary`; :func:`finish_job` merges and lands. Everything they share
goes through the store, so each step can run on another machine and be retried.
"""

from __future__ import annotations

import contextlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol, cast

from airflow_datum_provider.core._failpoints import failpoint
from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import (
    CommitFinishedError,
    ConflictError,
    JobKilled,
    MergeError,
    PipelineError,
    SetTakenOver,
)
from airflow_datum_provider.core.incremental import Decision, IndexRecord, diff_datums
from airflow_datum_provider.core.jobs.ending import (
    fail_job,
    fold_results,
    moved,
    succeed_job,
)
from airflow_datum_provider.core.jobs.liveness import (
    Beat,
    SetLease,
    heartbeat,
    stale_after,
    stop_reason,
)
from airflow_datum_provider.core.jobs.records import (
    JSON_LINE,
    CheckpointPolicy,
    JobInfo,
    JobRecords,
    LinesWriter,
    now,
)
from airflow_datum_provider.core.merge import merge_outputs
from airflow_datum_provider.core.plan import Planner
from airflow_datum_provider.core.runtime.local import (
    SET_MARKER,
    clean_up_set,
    new_set_scratch,
    set_marker,
)
from airflow_datum_provider.core.sets import SetCutter
from airflow_datum_provider.core.spec import PipelineSpec
from airflow_datum_provider.core.states import SKIP
from airflow_datum_provider.core.store import OWNER_JOB, Store
from airflow_datum_provider.core.worker.namespace import remove_private_tmp
from airflow_datum_provider.core.worker.policy import DatumResult

__all__ = [
    "JOB_TIMEOUT_REASON",
    "DatumCallback",
    "DatumExecutor",
    "PlanResult",
    "RunOne",
    "SetRef",
    "SetSummary",
    "finish_job",
    "plan_job",
    "process_set",
    "run_set",
    "set_refs",
]

JOB_TIMEOUT_REASON = "job timed out"  # the worker's JOB_TIMEOUT_REASON, without importing it

CONTROL_EVERY = 1.0
"""Seconds between a set runner's reads of the job's stop request (and lease renewals): a stop
takes effect at the first datum that starts this long after the last check."""

DatumCallback = Callable[[Datum, Mapping[str, Any], bool], None]
"""Told about each datum of a set as it ends: ``(datum, result dict, resumed)``.

``resumed`` is true for a datum an earlier try finished (its checkpointed result)."""


class RunOne(Protocol):
    """Runs (or resumes) one datum in ``scratch``: ``(result, resumed)`` (see DatumExecutor)."""

    def __call__(
        self,
        datum: Datum,
        scratch: Path,
        *,
        deadline: float | None = None,
        deadline_reason: str = "datum timed out",
    ) -> tuple[DatumResult, bool]: ...


DatumExecutor = Callable[
    [Iterable[Datum], RunOne, Path],
    Iterable[tuple[Datum, DatumResult, bool]],
]
"""Runs a set's datums: ``(datums, run_one, scratch_root)`` -> ``(datum, result, resumed)`` each.

``run_one(datum, scratch)`` runs or resumes one datum in its own scratch folder (concurrent
calls need distinct folders under ``scratch_root``) and may raise ``JobKilled``, which must be
re-raised. ``deadline`` (a :func:`time.monotonic` instant) bounds this datum's runs as the job's
deadline does (the worker kills its process there); a datum cut by it fails with
``deadline_reason``, while the job's own deadline still kills the job. Datums it never yields
count as not run. ``airflow_datum_provider.batch.datums``
provides one on the batch executor (workers, fail-fast); the default is the in-order loop.
Ignored when the spec uses ``datum_batching`` (one user process serves the set in order)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SetRef:
    """One datum set of a planned job: what a mapped task or pod gets (JSON-safe via dicts).

    ``datums`` is the number of datums in the set and ``bytes`` their summed input size.
    """

    pipeline: str
    job: str
    set: int
    datums: int = 0
    bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "job": self.job,
            "set": self.set,
            "datums": self.datums,
            "bytes": self.bytes,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SetRef:
        """Read a ref back; unknown keys are ignored (a newer writer may add some)."""
        try:
            return cls(
                pipeline=str(raw["pipeline"]),
                job=str(raw["job"]),
                set=int(raw["set"]),
                datums=int(raw.get("datums", 0)),
                bytes=int(raw.get("bytes", 0)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PipelineError(
                f"set ref {dict(raw)!r:.200}: needs pipeline, job and set ({exc!r})"
            ) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanResult:
    """What the plan step hands to the process steps: the job and one :class:`SetRef` a set."""

    job: JobInfo
    sets: tuple[SetRef, ...]

    @property
    def set_numbers(self) -> list[int]:
        return [ref.set for ref in self.sets]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSummary:
    """What one processed set reports back: counts per state and failed datum ids."""

    set: int
    pipeline: str = ""
    job: str = ""
    success: int = 0
    failed: int = 0
    recovered: int = 0
    failed_datums: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "pipeline": self.pipeline,
            "job": self.job,
            "success": self.success,
            "failed": self.failed,
            "recovered": self.recovered,
            "failed_datums": list(self.failed_datums),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SetSummary:
        """Read a summary back; unknown keys are ignored."""
        return cls(
            set=int(raw["set"]),
            pipeline=str(raw.get("pipeline", "")),
            job=str(raw.get("job", "")),
            success=int(raw.get("success", 0)),
            failed=int(raw.get("failed", 0)),
            recovered=int(raw.get("recovered", 0)),
            failed_datums=tuple(raw.get("failed_datums", ())),
        )


def _pins_of(job: JobInfo) -> dict[tuple[str, str], str | None]:
    pins: dict[tuple[str, str], str | None] = {}
    for item in job.inputs:
        repo, _, rest = item.partition("@")
        branch, _, commit = rest.partition("=")
        pins[(repo, branch)] = commit or None
    return pins


def _base_index(store: Store, job: JobInfo) -> tuple[str, dict[str, IndexRecord] | None]:
    """The index of the latest successful job: the one whose output commit is the base."""
    records = JobRecords(store)
    head: str | None = job.base_commit
    if head is None:  # a record from before base_commit
        try:
            head = store.branch_head(job.output_repo, job.output_branch)
        except LookupError:
            return "", None
    hops = 0
    while head and hops < 64:
        try:
            base = records.job(job.pipeline, head)
        except LookupError:
            base = None
        if base is not None and base.state == "success" and records.has_index(base):
            return base.id, records.read_index(base)
        head = store.inspect_commit(job.output_repo, head).parent
        hops += 1
    return "", None


def plan_job(
    store: Store, job: JobInfo, *, max_sets: int | None = None, reprocess: bool = False
) -> PlanResult:
    """List datums, skip unchanged ones, and write the datum sets of a job to the store.

    ``reprocess=True`` skips nothing for this job (as ``reprocess_spec: every_job`` does).
    """
    records = JobRecords(store)
    heartbeat(store, job)
    records.clear_plan(job)
    job = records.update_job(job, state="running", started=job.started or now())
    spec = records.job_pipeline(job).spec
    base_id, base = _base_index(store, job)
    planner = Planner(
        store,
        spec.input,
        _pins_of(job),
        salt=job.salt,
        pipeline=job.pipeline,
        deadline=_deadline(job, spec),  # planning counts against job_timeout too
    )
    diff = diff_datums(planner, base, every_job=reprocess or spec.reprocess_spec == "every_job")
    refs = _write_plan(records, job, diff, spec, max_sets)
    job = records.update_job(
        job,
        total=diff.processed + diff.skipped,
        skipped=diff.skipped,
        sets=len(refs),
        base_job=base_id,
        planned=True,
    )
    failpoint("after-plan")
    return PlanResult(job=job, sets=tuple(refs))


def _write_plan(
    records: JobRecords,
    job: JobInfo,
    decisions: Iterable[Decision],
    spec: PipelineSpec,
    max_sets: int | None,
) -> list[SetRef]:
    """Write the skipped datums and the datum sets, streaming: memory does not grow with N.

    Datums to process go to a local spool file first (sizing the sets needs their count),
    then into one set object after another.
    """
    skipped = records.skipped_writer(job)
    total = 0
    with tempfile.TemporaryFile("w+", encoding="utf-8") as spool:
        try:
            for decision in decisions:
                datum = decision.datum
                if decision.action == SKIP:
                    skipped.add(datum.to_dict())
                else:
                    line = JSON_LINE.encode(datum.to_dict())
                    spool.write(f"{datum.size}\t{line}\n")
                    total += 1
        except BaseException:
            skipped.abort()
            raise
        skipped.close()
        set_spec = spec.datum_set_spec
        cutter = SetCutter(
            total=total,
            number=set_spec.number if set_spec else 0,
            size_bytes=set_spec.size_bytes if set_spec else 0,
            per_worker=set_spec.per_worker if set_spec else 0,
            parallelism=spec.parallelism,
            max_sets=max_sets,
        )
        refs: list[SetRef] = []
        writer: LinesWriter | None = None
        current, nbytes = -1, 0
        spool.seek(0)
        try:
            for row in spool:
                size_text, _, line = row.rstrip("\n").partition("\t")
                size = int(size_text)
                number = cutter.place(size)
                if number != current:
                    if writer is not None:
                        writer.close()
                        refs.append(_ref(job, current, writer.count, nbytes))
                    writer, current, nbytes = records.set_writer(job, number), number, 0
                assert writer is not None
                writer.add_line(line)
                nbytes += size
            if writer is not None:
                writer.close()
                refs.append(_ref(job, current, writer.count, nbytes))
                writer = None
        except BaseException:
            if writer is not None:
                writer.abort()
            raise
    return refs


def _ref(job: JobInfo, number: int, datums: int, nbytes: int) -> SetRef:
    return SetRef(pipeline=job.pipeline, job=job.id, set=number, datums=datums, bytes=nbytes)


def set_refs(store: Store, job: JobInfo) -> tuple[SetRef, ...]:
    """The refs of a planned job's sets, read back from the store (for a resume)."""
    records = JobRecords(store)
    refs = []
    for number in records.set_numbers(job):
        datums = records.read_set(job, number)
        refs.append(
            SetRef(
                pipeline=job.pipeline,
                job=job.id,
                set=number,
                datums=len(datums),
                bytes=sum(d.size for d in datums),
            )
        )
    return tuple(refs)


def _deadline(job: JobInfo, spec: PipelineSpec) -> float | None:
    """The job's ``job_timeout`` as a :func:`time.monotonic` instant (what the worker takes).

    The job's start is a wall-clock stamp (it may come from another machine); it is turned
    into this process's monotonic clock once, here.
    """
    if spec.job_timeout is None or not job.started:
        return None
    from datetime import datetime

    started = datetime.fromisoformat(job.started).timestamp()
    left = started + spec.job_timeout.total_seconds() - time.time()
    return time.monotonic() + left


def run_set(
    store: Store,
    ref: SetRef,
    *,
    scratch_root: Path | None = None,
    verbose: bool = False,
    python: Any = None,
    on_datum: DatumCallback | None = None,
    datum_executor: DatumExecutor | None = None,
) -> SetSummary:
    """Run every datum of one set, checkpointing each result; resumes after finished datums.

    The one entry point for every runtime. ``scratch_root`` is the folder datums run in (its
    contents are deleted); by default a fresh folder under this machine's temp directory.
    Raises :class:`~airflow_datum_provider.core.errors.JobKilled` when the job was stopped or
    hit its ``job_timeout``. ``python`` (a callable of the datum context) replaces the spec's
    transform, for callers that hold the function itself (an Airflow DAG); ``on_datum`` is
    called as each datum ends (see :data:`DatumCallback`); ``datum_executor`` runs the set's
    datums instead of the in-order loop (see :data:`DatumExecutor`).
    """
    job = JobRecords(store).job(ref.pipeline, ref.job)
    return process_set(
        store,
        job,
        ref.set,
        scratch_root=scratch_root,
        verbose=verbose,
        python=python,
        on_datum=on_datum,
        datum_executor=datum_executor,
    )


def process_set(
    store: Store,
    job: JobInfo,
    number: int,
    *,
    scratch_root: Path | None = None,
    verbose: bool = False,
    python: Any = None,
    on_datum: DatumCallback | None = None,
    datum_executor: DatumExecutor | None = None,
    checkpoint: CheckpointPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SetSummary:
    """:func:`run_set` for a job record in hand and a set number.

    Results and logs go to the set's checkpoint parts (:class:`~.records.SetCheckpoint`),
    published per ``checkpoint`` (default :meth:`CheckpointPolicy.from_env`: every 100 datums
    or 5 s, and when the set ends). A retried set resumes after the last published part: up to
    that many datums run again, and only recorded results are merged, so outputs stay
    exactly-once. ``clock`` (monotonic seconds) is injectable for tests.
    """
    from airflow_datum_provider.core.worker import JobContext, RunOptions, run_datum
    from airflow_datum_provider.core.worker.prefetch import prefetch_inputs
    from airflow_datum_provider.core.worker.scratch import remove_tree

    records = JobRecords(store)
    spec = records.job_pipeline(job).spec
    lease = SetLease(store, job, number, stale=stale_after(spec))
    previous = lease.acquire()
    if previous is not None and previous.on_this_host:
        clean_up_set(job, number)  # what a dead runner of this set left here; siblings stay
    options = RunOptions.from_spec(spec)
    if python is not None:
        options = replace(options, cmd=(), stdin=(), python=python, datum_batching=False)
    job_deadline = _deadline(job, spec)
    context = JobContext(
        job_id=job.id,
        output_commit=job.output_commit,
        pipeline=job.pipeline,
        deadline=job_deadline,
        env={SET_MARKER: set_marker(job.id, number)},
        try_number=lease.try_number,
    )
    done = records.datum_results(job, number)
    own_scratch = scratch_root is None
    root = new_set_scratch(job, number, lease.try_number) if scratch_root is None else scratch_root
    counts = {"success": 0, "failed": 0, "recovered": 0}
    failed: list[str] = []
    batching = None
    if options.datum_batching:  # one user process for the set's datums (core/worker/batching)
        from airflow_datum_provider.core.worker.batching import batching_runtime

        batching = batching_runtime(options, root=root, job=context, verbose=verbose)
    lease_lock = threading.Lock()
    blobs = store.blob_batch()  # the set's outputs: packed, flushed before each checkpoint part
    policy = checkpoint or CheckpointPolicy.from_env()
    control_every = min(policy.seconds, CONTROL_EVERY)
    next_control = [clock()]  # the first datum checks

    def guard(with_results: bool) -> None:
        """Before a part is published: this runner must still hold the set (one read)."""
        current = Beat.read(store, lease.key)
        if current is None or current.token != lease.token:
            by = f" by {current.runner} (try {current.try_number})" if current else ""
            raise SetTakenOver(
                f"set {number} of job {job.id} was taken over{by}; this runner "
                "stops without writing more results",
                job=job.id,
                set=number,
            )
        if with_results:
            blobs.flush()  # the outputs' packs are durable before the part that names them
        with lease_lock:
            lease.renew()

    records_of_set = records.checkpoint(
        job, number, lease.try_number, policy=policy, clock=clock, guard=guard
    )

    def control() -> None:
        """The job's stop request and the lease, every ``control_every`` seconds at most."""
        tick = clock()
        if tick < next_control[0]:
            return
        with lease_lock:
            if tick < next_control[0]:
                return
            next_control[0] = tick + control_every
            stop = stop_reason(store, job)
            if stop is not None:
                raise JobKilled(stop, job=job.id)
            lease.check()
            lease.renew()

    def run_one(
        datum: Datum,
        scratch: Path,
        *,
        deadline: float | None = None,
        deadline_reason: str = "datum timed out",
    ) -> tuple[DatumResult, bool]:
        """Run (or resume) one datum in ``scratch``; record it; ``(result, resumed)``."""
        result = done.get(datum.id)
        if result is not None:
            return result, True
        control()
        if job_deadline is not None and time.monotonic() >= job_deadline:
            raise JobKilled(JOB_TIMEOUT_REASON, job=job.id)
        own = deadline is not None and (job_deadline is None or deadline < job_deadline)
        outcome = run_datum(
            store,
            datum,
            options=options,
            job=replace(context, deadline=deadline) if own else context,
            scratch_root=scratch,
            log=cast("IO[str]", records_of_set.writer(datum.id)),
            verbose=verbose,
            runtime=batching,
            blobs=blobs,
        )
        if outcome.state == "failed" and outcome.reason == JOB_TIMEOUT_REASON:
            if not own or (job_deadline is not None and time.monotonic() >= job_deadline):
                # Keep what the datum printed; no result, so it counts as not run.
                records_of_set.flush()
                raise JobKilled(JOB_TIMEOUT_REASON, job=job.id)
            outcome = replace(outcome, reason=deadline_reason)  # the caller's deadline cut it
        records_of_set.add(outcome)  # stamped with lease.try_number (JobContext.try_number)
        if records_of_set.due():
            records_of_set.flush()
        failpoint("after-datum")
        return outcome, False

    try:
        datums = prefetch_inputs(store, records.read_set(job, number), skip=done)
        ran: Iterable[tuple[Datum, DatumResult, bool]]
        if datum_executor is None or batching is not None:  # batching: one process, in order
            ran = ((datum, *run_one(datum, root)) for datum in datums)
        else:
            ran = datum_executor(datums, run_one, root)
        for datum, result, resumed in ran:
            if on_datum is not None:
                on_datum(datum, result.to_dict(), resumed)
            counts[result.state] += 1
            if result.state == "failed":
                failed.append(datum.id)
        records_of_set.flush()
        lease.release()
    except SetTakenOver:
        records_of_set.drop()  # a runner that lost the set publishes nothing more
        raise
    except BaseException:
        with contextlib.suppress(Exception):  # keep what finished; a lost lease refuses it
            records_of_set.flush()
        raise
    finally:
        blobs.discard()  # nothing is left to upload after a clean end; after a failure: drop
        if batching is not None:
            batching.close()
        remove_private_tmp(root)  # the set's /tmp (core.worker.namespace), kept across datums
        if own_scratch:
            remove_tree(root, ignore_errors=True)  # any depth user code left; never raises
            for folder in (root.parent, root.parent.parent):  # once no other try / set uses it
                with contextlib.suppress(OSError):
                    folder.rmdir()
    return SetSummary(
        set=number,
        pipeline=job.pipeline,
        job=job.id,
        success=counts["success"],
        failed=counts["failed"],
        recovered=counts["recovered"],
        failed_datums=tuple(failed),
    )


def finish_job(store: Store, job: JobInfo) -> JobInfo:
    """Merge every datum's outputs into the output commit and finish the job.

    A failed datum or an output collision fails the job (the output branch does not move); the
    job and datum records stay for inspection.
    """
    records = JobRecords(store)
    stored = records.job(job.pipeline, job.id)
    if stored.done:  # superseded or stopped meanwhile, or finished by an earlier try
        return stored
    heartbeat(store, job)
    job = records.update_job(job, state="finishing")
    fold = fold_results(records, job)
    job = records.update_job(job, **fold.counters())
    states, outputs, failed = fold.states, fold.outputs, fold.failed
    hashes = {k: v for n in records.set_numbers(job) for k, v in records.set_hashes(job, n).items()}
    if failed:  # before the not-run check: a fail-fast set leaves datums not run
        return fail_job(store, job, f"datum {failed[0]} failed", fold=False)
    if len(states) < len(hashes):
        raise PipelineError(
            f"job {job.id}: {len(hashes) - len(states)} datums have not run yet", job=job.id
        )
    skipped = list(records.read_skipped(job))
    keep = {d.id for d in skipped}
    try:
        output = store.open_commit(job.output_repo, job.output_commit, owner=OWNER_JOB)
    except CommitFinishedError:
        output = None
    if output is None:
        info = store.inspect_commit(job.output_repo, job.output_commit)
        if info.finished_by != OWNER_JOB:
            # Finished by someone else (an older datumctl): it does not hold this job's merge.
            return fail_job(
                store,
                job,
                f"output commit {job.output_repo}@{info.id} was finished outside the job; "
                "it does not hold the job's outputs",
                fold=False,
            )
        # The job's own finish landed it before a crash: only the records are left to finish.
        return succeed_job(store, job, skipped, states, hashes, info.id)
    head = store.branch_head(job.output_repo, job.output_branch)
    base = head if job.base_commit is None else job.base_commit
    if (head or "") != (base or ""):
        return fail_job(store, job, moved(job, head), fold=False)
    parent = store.walk(job.output_repo, base) if base else iter(())
    dropped, merged = merge_outputs(parent, keep, outputs)
    try:
        for _ in merged:  # consuming the stream checks every collision
            pass
    except MergeError as exc:
        return fail_job(store, job, str(exc), fold=False)
    for path in dropped:
        output.delete(path)
    for entry in outputs:
        output.put_entry(entry)
    output.flush()
    failpoint("before-land")
    try:
        output.finish(expected_parent=base or None)
    except ConflictError:
        return fail_job(
            store,
            job,
            moved(job, store.branch_head(job.output_repo, job.output_branch)),
            fold=False,
        )
    failpoint("after-land")
    return succeed_job(store, job, skipped, states, hashes, job.output_commit)
