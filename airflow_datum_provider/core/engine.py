"""The job engine: create pipelines, then plan, process and merge jobs.

The steps are separate functions because they run in separate places: ``datumctl run pipeline``
calls them in one process (or a local process pool), an Airflow DAG calls :func:`plan_job` in
one task, :func:`process_set` in mapped tasks (or pods) and :func:`finish_job` in a reduce
task. Everything they share goes through the store, so a step can run on any machine and be
retried: :func:`process_set` resumes after the last checkpointed datum.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import multiprocessing
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from airflow_datum_provider.core._failpoints import failpoint
from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import (
    CommitFinishedError,
    ConflictError,
    DatumError,
    JobFailed,
    MergeError,
    PipelineError,
    SpecError,
)
from airflow_datum_provider.core.incremental import SKIP, IndexRecord, diff_datums
from airflow_datum_provider.core.jobs import JobInfo, JobRecords, PipelineInfo, now
from airflow_datum_provider.core.merge import merge_outputs
from airflow_datum_provider.core.plan import Planner, pin_inputs
from airflow_datum_provider.core.sets import cut_sets
from airflow_datum_provider.core.spec import CronInput, PipelineSpec, iter_leaves
from airflow_datum_provider.core.store import Entry, Store
from airflow_datum_provider.core.store.paths import check_name

__all__ = [
    "JobKilled",
    "PlanResult",
    "SetSummary",
    "check_local_runner",
    "create_pipeline",
    "delete_pipeline",
    "finish_job",
    "local_runner_warnings",
    "plan_job",
    "process_set",
    "run_pipeline",
    "start_job",
    "stop_job",
]

JOB_TIMEOUT_REASON = "job timed out"  # the worker's JOB_TIMEOUT_REASON, without importing it
STOPPED_REASON = "stopped by user"
HEARTBEAT_EVERY = 5.0
"""Seconds between a runner's heartbeats (written at each step's start and between datums)."""
STALE_AFTER = 60.0
"""A heartbeat older than this (or than one datum's longest possible run) means a dead runner."""


class JobKilled(PipelineError):
    """The job was stopped or hit its ``job_timeout``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanResult:
    """What the plan step hands to the process steps: small, XCom-sized references."""

    job: JobInfo
    sets: tuple[dict[str, Any], ...]

    @property
    def set_numbers(self) -> list[int]:
        return [s["set"] for s in self.sets]


@dataclass(frozen=True, slots=True, kw_only=True)
class SetSummary:
    """What one processed set reports back: counts per state and failed datum ids."""

    set: int
    success: int = 0
    failed: int = 0
    recovered: int = 0
    failed_datums: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set,
            "success": self.success,
            "failed": self.failed,
            "recovered": self.recovered,
            "failed_datums": list(self.failed_datums),
        }


# -- pipelines -------------------------------------------------------------------------------


def create_pipeline(
    store: Store, spec: PipelineSpec, *, update: bool = False, reprocess: bool = False
) -> PipelineInfo:
    """Create (or, with ``update``, replace) a pipeline and its output repo.

    An update keeps the salt, so unchanged datums are still skipped, unless ``reprocess``.
    """
    records = JobRecords(store)
    check_name(spec.name, "pipeline")
    exists = records.pipeline_exists(spec.name)
    if exists and not update:
        raise PipelineError(
            f"pipeline {spec.name!r} already exists; use update pipeline", pipeline=spec.name
        )
    if update and not exists:
        raise PipelineError(f"pipeline {spec.name!r} not found", pipeline=spec.name)
    stamp = now()
    if exists:
        old = records.pipeline(spec.name)
        salt = spec.salt or (uuid.uuid4().hex if reprocess else old.salt)
        info = replace(old, spec=spec, salt=salt, version=old.version + 1, updated=stamp)
    else:
        for leaf_repo in _input_repos(spec):
            if not store.repo_exists(leaf_repo):
                raise SpecError(f"repo {leaf_repo!r} not found", field="input")
        store.create_repo(
            spec.name, description=f"Output repo for pipeline {spec.name}.", exist_ok=True
        )
        info = PipelineInfo(
            name=spec.name,
            spec=spec,
            salt=spec.salt or uuid.uuid4().hex,
            created=stamp,
            updated=stamp,
        )
    if spec.output_branch not in {b.name for b in store.list_branches(spec.name)}:
        store.create_branch(spec.name, spec.output_branch)
    records.save_pipeline(info)
    return info


_KUBERNETES_ONLY = (
    "transform.image",
    "resource_requests",
    "resource_limits",
    "pod_spec",
    "pod_patch",
)
_NOT_LOCAL_YET = ("transform.datum_batching", "transform.user", "transform.secrets")


def _set_fields(spec: PipelineSpec, names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        obj: Any = spec
        for part in name.split("."):
            obj = getattr(obj, part)
        if obj:
            found.append(name)
    return found


def local_runner_warnings(spec: PipelineSpec) -> list[str]:
    """What ``create pipeline`` says about fields the local runner does not use.

    ``transform.image``, ``resource_*`` and ``pod_*`` are for the Kubernetes runner and are
    ignored locally; ``datum_batching``, ``user`` and ``secrets`` change what user code sees,
    so the local runner refuses them (:func:`check_local_runner`) rather than ignore them.
    """
    messages = []
    ignored = _set_fields(spec, _KUBERNETES_ONLY)
    if ignored:
        messages.append(
            f"{', '.join(ignored)}: used only by the Kubernetes runner; ignored when running "
            "locally"
        )
    refused = _set_fields(spec, _NOT_LOCAL_YET)
    if refused:
        messages.append(
            f"{', '.join(refused)}: not supported by the local runner yet; "
            "`run pipeline` will refuse this pipeline"
        )
    return messages


def check_local_runner(spec: PipelineSpec) -> None:
    """Refuse a spec whose behaviour the local runner would silently get wrong."""
    refused = _set_fields(spec, _NOT_LOCAL_YET)
    if refused:
        raise PipelineError(
            f"{', '.join(refused)}: not supported by the local runner yet", pipeline=spec.name
        )


def _input_repos(spec: PipelineSpec) -> list[str]:
    return [leaf.repo for leaf in iter_leaves(spec.input) if not isinstance(leaf, CronInput)]


def delete_pipeline(store: Store, name: str, *, keep_repo: bool = False) -> None:
    """Delete a pipeline, its jobs and (unless ``keep_repo``) its output repo."""
    records = JobRecords(store)
    records.delete_pipeline(name)
    if not keep_repo and store.repo_exists(name):
        store.delete_repo(name)


# -- jobs ------------------------------------------------------------------------------------


def start_job(store: Store, pipeline: str) -> JobInfo:
    """Create a job for the current heads of the pipeline's inputs and open its output commit.

    One job per pipeline runs at a time: earlier jobs that did not end are settled (their
    output commit landed: only the records were left) or ended ``killed`` with reason
    ``superseded by job <id>`` and their open output commits deleted, so that none of them can
    later land stale outputs on top of this job's. The output branch's head now is recorded as
    the job's ``base_commit``: it plans against it and lands only on it.
    """
    records = JobRecords(store)
    info = records.pipeline(pipeline)
    spec = info.spec
    pins = pin_inputs(store, spec.input, pipeline)
    provenance = tuple(f"{repo}@{commit}" for (repo, _), commit in pins.items() if commit)
    output = store.start_commit(pipeline, spec.output_branch, origin="auto", provenance=provenance)
    job = JobInfo(
        id=output.id,
        pipeline=pipeline,
        state="created",
        created=now(),
        inputs=tuple(f"{repo}@{branch}={commit or ''}" for (repo, branch), commit in pins.items()),
        output_repo=pipeline,
        output_branch=spec.output_branch,
        output_commit=output.id,
        base_commit=output.info.parent or "",
        pipeline_version=info.version,
        salt=info.salt,
    )
    _heartbeat(store, job)
    records.save_job(job)
    _supersede_earlier_jobs(store, job)
    return job


def _supersede_earlier_jobs(store: Store, job: JobInfo) -> None:
    """End every other unfinished job of the pipeline ``killed``; drop orphaned job commits."""
    records = JobRecords(store)
    reason = f"superseded by job {job.id}"
    for old in records.jobs(job.pipeline):
        if old.id == job.id or old.done:
            continue
        if old.state == "finishing" and _landed(store, old):
            finish_job(store, old)
            continue
        _write_stop(store, old, reason)  # a runner still alive stops at its next datum
        _fail(store, old, reason, state="killed")
        _clean_up_after_runner(old)
    for commit in store.list_open_commits(job.output_repo):
        # Left by a runner that died between writing a job's end and deleting its commit.
        if commit.id != job.id and records.backend.exists(_job_key(job.pipeline, commit.id)):
            with contextlib.suppress(DatumError):
                store.delete_commit(job.output_repo, commit.id)


def _job_key(pipeline: str, job_id: str) -> str:
    return f"meta/pipelines/{pipeline}/jobs/{job_id}/job.json"


def _landed(store: Store, job: JobInfo) -> bool:
    """Whether the job's output commit is finished (it landed before its runner died)."""
    if not job.output_commit:
        return False
    try:
        store.open_commit(job.output_repo, job.output_commit)
    except CommitFinishedError:
        return True
    except DatumError:
        return False
    return False


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


def plan_job(store: Store, job: JobInfo, *, max_sets: int | None = None) -> PlanResult:
    """List datums, skip unchanged ones, and write the datum sets of a job to the store."""
    records = JobRecords(store)
    _heartbeat(store, job)
    records.clear_plan(job)
    job = records.update_job(job, state="running", started=job.started or now())
    info = records.pipeline(job.pipeline)
    spec = info.spec
    base_id, base = _base_index(store, job)
    planner = Planner(store, spec.input, _pins_of(job), salt=job.salt, pipeline=job.pipeline)
    diff = diff_datums(planner, base, every_job=spec.reprocess_spec == "every_job")
    to_process: list[Datum] = []
    skipped: list[Datum] = []
    for decision in diff:
        (skipped if decision.action == SKIP else to_process).append(decision.datum)
    records.write_skipped(job, skipped)
    set_spec = spec.datum_set_spec
    refs = []
    for number, datums in enumerate(
        cut_sets(
            to_process,
            total=len(to_process),
            number=set_spec.number if set_spec else 0,
            size_bytes=set_spec.size_bytes if set_spec else 0,
            per_worker=set_spec.per_worker if set_spec else 0,
            parallelism=spec.parallelism,
            max_sets=max_sets,
        )
    ):
        records.write_set(job, number, datums)
        refs.append({"set": number, "datums": len(datums), "job": job.id})
    job = records.update_job(
        job,
        total=len(to_process) + len(skipped),
        skipped=len(skipped),
        sets=len(refs),
        base_job=base_id,
        planned=True,
    )
    failpoint("after-plan")
    return PlanResult(job=job, sets=tuple(refs))


def _stop_key(job: JobInfo) -> str:
    return f"meta/pipelines/{job.pipeline}/jobs/{job.id}/stop"


def _write_stop(store: Store, job: JobInfo, reason: str) -> None:
    store.backend.write(_stop_key(job), reason.encode())


def _stop_reason(store: Store, job: JobInfo) -> str | None:
    """Why the job was asked to stop, or ``None``."""
    try:
        return store.backend.read(_stop_key(job)).decode(errors="replace") or STOPPED_REASON
    except FileNotFoundError:
        return None


def stop_job(store: Store, job_id: str, pipeline: str | None = None) -> JobInfo:
    """Stop a job: it ends ``killed``, now if its runner is dead, else after the datum in flight.

    A dead runner's job is ended here, its open output commit deleted. The stop request is always written first, so a runner wrongly taken for dead still stops
    at its next datum (and :func:`finish_job` will not land a job that ended). A job whose
    output commit already landed is settled instead (it succeeded). Returns the job's record.
    """
    records = JobRecords(store)
    job = records.find_job(job_id, pipeline)
    if job.done:
        return job
    _write_stop(store, job, STOPPED_REASON)
    if _runner_alive(store, job):
        return job
    _clean_up_after_runner(job)
    if job.state == "finishing" and _landed(store, job):
        return finish_job(store, job)
    return _fail(store, job, STOPPED_REASON, state="killed")


# -- heartbeats ------------------------------------------------------------------------------


_last_beat: dict[str, float] = {}


def _heartbeat_key(job: JobInfo) -> str:
    return f"meta/pipelines/{job.pipeline}/jobs/{job.id}/heartbeat"


def _runner_id() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _heartbeat(store: Store, job: JobInfo, *, force: bool = True) -> None:
    """Record that a runner (``pid@host``) is working on the job; throttled unless ``force``."""
    last = _last_beat.get(job.id)
    tick = time.monotonic()
    if not force and last is not None and tick - last < HEARTBEAT_EVERY:
        return
    _last_beat[job.id] = tick
    beat = {"runner": _runner_id(), "time": time.time()}
    store.backend.write(_heartbeat_key(job), json.dumps(beat).encode())


def _stale_after(spec: PipelineSpec) -> float:
    """How old a heartbeat may be while a datum runs: one datum's longest possible run."""
    if spec.datum_timeout is None:
        return STALE_AFTER
    runs = spec.datum_tries * (2 if spec.transform.err_cmd else 1)
    return max(STALE_AFTER, spec.datum_timeout.total_seconds() * runs + HEARTBEAT_EVERY)


def _runner_alive(store: Store, job: JobInfo) -> bool:
    """Whether some runner still works on the job, judged by its heartbeat.

    Dead: no heartbeat, one older than :func:`_stale_after`, or one from a process of this
    machine that no longer exists.
    """
    try:
        beat = json.loads(store.backend.read(_heartbeat_key(job)))
    except FileNotFoundError:
        return False
    pid, _, host = str(beat.get("runner", "")).partition("@")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    spec = JobRecords(store).pipeline(job.pipeline).spec
    return time.time() - float(beat.get("time", 0)) <= _stale_after(spec)


def _scratch_parent(job: JobInfo) -> Path:
    """The job's scratch folder on this machine: ``<tmp>/datum-<job id>/set<n>-<random>/``."""
    return Path(tempfile.gettempdir()) / f"datum-{job.id}"


def _clean_up_after_runner(job: JobInfo) -> None:
    """Kill what a dead runner of the job left running on this machine; drop its scratch.

    A runner SIGKILLed mid-datum leaves the datum's command running (its own session) and its
    scratch folder behind. Only this machine is cleaned: other machines' leftovers stay.
    """
    from airflow_datum_provider.core.worker._process import kill_job_processes

    kill_job_processes(job.id)
    shutil.rmtree(_scratch_parent(job), ignore_errors=True)


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


def process_set(
    store: Store,
    job: JobInfo,
    number: int,
    *,
    scratch_root: Path | None = None,
    verbose: bool = False,
) -> SetSummary:
    """Run every datum of one set, checkpointing each result; resumes after finished datums."""
    from airflow_datum_provider.core.worker import RunOptions, run_datum

    records = JobRecords(store)
    _heartbeat(store, job)
    spec = records.pipeline(job.pipeline).spec
    options = RunOptions.from_spec(spec)
    deadline = _deadline(job, spec)
    done = records.results(job, number)
    own_scratch = scratch_root is None
    if scratch_root is None:
        parent = _scratch_parent(job)
        parent.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix=f"set{number:06d}-", dir=parent))
    else:
        root = scratch_root
    counts = {"success": 0, "failed": 0, "recovered": 0}
    failed: list[str] = []
    try:
        for datum in records.read_set(job, number):
            result = done.get(datum.id)
            if result is None:
                stop = _stop_reason(store, job)
                if stop is not None:
                    raise JobKilled(stop, job=job.id)
                if deadline is not None and time.monotonic() >= deadline:
                    raise JobKilled(JOB_TIMEOUT_REASON, job=job.id)
                log = io.StringIO()
                outcome = run_datum(
                    store,
                    datum,
                    options=options,
                    job_id=job.id,
                    output_commit_id=job.output_commit,
                    pipeline=job.pipeline,
                    scratch_root=root,
                    log=log,
                    verbose=verbose,
                    deadline=deadline,
                )
                if outcome.state == "failed" and outcome.reason == JOB_TIMEOUT_REASON:
                    # Keep what the datum printed; no result, so it counts as not run.
                    records.write_log(job, datum.id, log.getvalue())
                    raise JobKilled(JOB_TIMEOUT_REASON, job=job.id)
                result = outcome.to_dict()
                records.write_log(job, datum.id, log.getvalue())
                records.write_result(job, number, result)
                _heartbeat(store, job, force=False)
                failpoint("after-datum")
            state = result["state"]
            counts[state] = counts.get(state, 0) + 1
            if state == "failed":
                failed.append(datum.id)
    finally:
        if own_scratch:
            shutil.rmtree(root, ignore_errors=True)
            with contextlib.suppress(OSError):
                root.parent.rmdir()  # the job's folder, once no other set uses it
    return SetSummary(
        set=number,
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
    _heartbeat(store, job)
    job = records.update_job(job, state="finishing")
    fold = _fold_results(records, job)
    job = records.update_job(job, **fold.counters())
    states, outputs, failed = fold.states, fold.outputs, fold.failed
    hashes = {d.id: d.hash for n in records.set_numbers(job) for d in records.read_set(job, n)}
    if len(states) < len(hashes):
        raise PipelineError(
            f"job {job.id}: {len(hashes) - len(states)} datums have not run yet", job=job.id
        )
    if failed:
        return _fail(store, job, f"datum {failed[0]} failed", fold=False)
    skipped = list(records.read_skipped(job))
    keep = {d.id for d in skipped}
    try:
        output = store.open_commit(job.output_repo, job.output_commit)
    except CommitFinishedError:
        output = None
    if output is None:
        # The commit landed before a crash: only the records are left to finish.
        info = store.inspect_commit(job.output_repo, job.output_commit)
        return _succeed(store, job, skipped, states, hashes, info.id)
    head = store.branch_head(job.output_repo, job.output_branch)
    base = head if job.base_commit is None else job.base_commit
    if (head or "") != (base or ""):
        return _fail(store, job, _moved(job, head), fold=False)
    parent = store.walk(job.output_repo, base) if base else iter(())
    dropped, merged = merge_outputs(parent, keep, outputs)
    try:
        for _ in merged:  # consuming the stream checks every collision
            pass
    except MergeError as exc:
        return _fail(store, job, str(exc), fold=False)
    for path in dropped:
        output.delete(path)
    for entry in outputs:
        output.put_entry(entry)
    output.flush()
    failpoint("before-land")
    try:
        output.finish(expected_parent=base or None)
    except ConflictError:
        return _fail(
            store,
            job,
            _moved(job, store.branch_head(job.output_repo, job.output_branch)),
            fold=False,
        )
    failpoint("after-land")
    return _succeed(store, job, skipped, states, hashes, job.output_commit)


def _moved(job: JobInfo, head: str | None) -> str:
    return (
        f"output branch {job.output_repo}@{job.output_branch} moved since the job started "
        f"(from {job.base_commit or 'empty'} to {head or 'empty'})"
    )


def _succeed(
    store: Store,
    job: JobInfo,
    skipped: list[Datum],
    states: Mapping[str, str],
    hashes: Mapping[str, str],
    commit: str,
) -> JobInfo:
    records = JobRecords(store)
    index = [(d.id, d.hash, "success") for d in skipped]
    index.extend((ident, hashes[ident], state) for ident, state in states.items())
    records.write_index(job, index)
    return records.update_job(job, state="success", reason="", finished=now(), output_commit=commit)


@dataclass(slots=True)
class _Fold:
    """The checkpointed results of a job, summed: what its record's counters say."""

    totals: dict[str, int]
    timings: dict[str, float]
    sizes: dict[str, int]
    failed: list[str]
    outputs: list[Entry]
    states: dict[str, str]

    def counters(self) -> dict[str, Any]:
        return {
            "processed": self.totals["success"],
            "failed": self.totals["failed"],
            "recovered": self.totals["recovered"],
            "failed_datums": tuple(sorted(self.failed)),
            **self.timings,
            **self.sizes,
        }


def _fold_results(records: JobRecords, job: JobInfo) -> _Fold:
    fold = _Fold(
        totals={"success": 0, "failed": 0, "recovered": 0},
        timings={"download_time": 0.0, "process_time": 0.0, "upload_time": 0.0},
        sizes={"download_bytes": 0, "upload_bytes": 0},
        failed=[],
        outputs=[],
        states={},
    )
    for _, result in records.all_results(job):
        state = result["state"]
        fold.totals[state] = fold.totals.get(state, 0) + 1
        fold.states[result["datum_id"]] = state
        for key in fold.timings:
            fold.timings[key] += float(result.get(key, 0.0))
        for key in fold.sizes:
            fold.sizes[key] += int(result.get(key, 0))
        if state == "failed":
            fold.failed.append(result["datum_id"])
        elif state == "success":
            fold.outputs.extend(
                Entry(o["path"], o["hash"], o["size_bytes"], o["tag"])
                for o in result.get("outputs", ())
            )
    return fold


def _fail(
    store: Store, job: JobInfo, reason: str, state: str = "failure", *, fold: bool = True
) -> JobInfo:
    """End a job ``state`` with its counters from the checkpoints, then drop its output commit.

    The record is written first: a crash in between leaves only an orphaned open commit, which
    the next :func:`start_job` deletes (a job record that still said running / finishing
    with its commit gone could never be settled).
    """
    records = JobRecords(store)
    counters = _fold_results(records, job).counters() if fold and job.planned else {}
    commit = job.output_commit
    job = records.update_job(
        job, state=state, reason=reason, finished=now(), output_commit="", **counters
    )
    with contextlib.suppress(DatumError):
        store.delete_commit(job.output_repo, commit)
    return job


# -- running a whole job ---------------------------------------------------------------------


def _process_in_child(
    url: str, options: Mapping[str, Any], job: dict[str, Any], number: int, verbose: bool
) -> dict[str, Any]:
    store = Store.open(url, storage_options=options)
    return process_set(store, JobInfo.from_dict(job), number, verbose=verbose).to_dict()


def run_pipeline(
    store: Store,
    pipeline: str,
    *,
    parallelism: int | None = None,
    resume: str | None = None,
    verbose: bool = False,
    storage_options: Mapping[str, Any] | None = None,
) -> JobInfo:
    """Run one job now (or continue ``resume``): plan, process every set, merge.

    With ``parallelism`` > 1 sets run in that many worker processes. A job that fails ends in
    state failure / killed; this function returns the final record either way.
    """
    records = JobRecords(store)
    check_local_runner(records.pipeline(pipeline).spec)
    if resume:
        job = records.job(pipeline, resume)
        if job.state == "success":
            return job
        _check_resumable(store, job)
        _clean_up_after_runner(job)
        job = records.update_job(job, restarts=job.restarts + 1)
        if not job.planned:
            job = plan_job(store, job).job
        numbers = records.set_numbers(job)
    else:
        job = start_job(store, pipeline)
        plan = plan_job(store, job)
        job = plan.job
        numbers = plan.set_numbers
    workers = parallelism or 1
    try:
        if workers <= 1 or len(numbers) <= 1:
            for number in numbers:
                process_set(store, job, number, verbose=verbose)
        else:
            _run_pool(store, job, numbers, workers, verbose, storage_options)
    except JobKilled as exc:
        return _fail(store, records.job(pipeline, job.id), str(exc), state="killed")
    return finish_job(store, records.job(pipeline, job.id))


def _check_resumable(store: Store, job: JobInfo) -> None:
    """Refuse to resume a job that ended, or whose output branch moved since it started."""
    if job.done:
        raise PipelineError(
            f"job {job.id} cannot be resumed: it ended {job.state}"
            + (f" ({job.reason})" if job.reason else "")
            + f"; run `run pipeline {job.pipeline}` for a new job",
            job=job.id,
        )
    if job.base_commit is None or _landed(store, job):
        return  # a landed commit only has its records left to finish
    head = store.branch_head(job.output_repo, job.output_branch)
    if (head or "") != job.base_commit:
        raise PipelineError(f"job {job.id} cannot be resumed: {_moved(job, head)}", job=job.id)


def _run_pool(
    store: Store,
    job: JobInfo,
    numbers: list[int],
    workers: int,
    verbose: bool,
    storage_options: Mapping[str, Any] | None,
) -> None:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        futures = [
            pool.submit(
                _process_in_child,
                store.url,
                dict(storage_options or {}),
                job.to_dict(),
                number,
                verbose,
            )
            for number in numbers
        ]
        for future in concurrent.futures.as_completed(futures):
            future.result()


def job_failed(job: JobInfo) -> JobFailed:
    """The error an operator raises for a job that did not succeed."""
    return JobFailed(f"job {job.id} {job.state}: {job.reason}", job=job.id, reason=job.reason)
