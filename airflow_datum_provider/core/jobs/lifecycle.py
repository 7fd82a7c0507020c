"""A job's life outside its steps: start (superseding earlier jobs), stop, resume checks.

One job per pipeline runs at a time: :func:`start_job` settles or ends every earlier job that
did not end, and :func:`stop_job` ends one on request.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from airflow_datum_provider.core.errors import DatumError, JobRunning, PipelineError
from airflow_datum_provider.core.jobs import _layout
from airflow_datum_provider.core.jobs.ending import fail_job, landed, moved
from airflow_datum_provider.core.jobs.liveness import (
    STOPPED_REASON,
    heartbeat,
    live_beat,
    runner_alive,
    write_stop,
)
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords, now
from airflow_datum_provider.core.jobs.steps import finish_job
from airflow_datum_provider.core.plan import pin_inputs
from airflow_datum_provider.core.runtime.local import clean_up_after_runner
from airflow_datum_provider.core.store import OWNER_JOB, Store

__all__ = ["check_resumable", "start_job", "stop_job"]


def start_job(
    store: Store, pipeline: str, *, origin: str = "", pins: Mapping[str, str] | None = None
) -> JobInfo:
    """Create a job for the current heads of the pipeline's inputs and open its output commit.

    One job per pipeline runs at a time: earlier jobs that did not end are settled (their
    output commit landed: only the records were left) or ended ``killed`` with reason
    ``superseded by job <id>`` and their open output commits deleted, so that none of them can
    later land stale outputs on top of this job's. The output branch's head now is recorded as
    the job's ``base_commit``: it plans against it and lands only on it. ``origin`` says who
    started the job (an Airflow DAG run: ``airflow:<dag_id>/<run_id>``); it is recorded as is.
    ``pins`` (repo → commit id) overrides the branch head for those input repos; an unknown
    repo or a commit that does not exist (or is not finished) raises :class:`PipelineError`.
    """
    records = JobRecords(store)
    info = records.pipeline(pipeline)
    spec = info.spec
    heads = _override(store, pipeline, pin_inputs(store, spec.input, pipeline), pins or {})
    provenance = tuple(f"{repo}@{commit}" for (repo, _), commit in heads.items() if commit)
    output = store.start_commit(
        pipeline, spec.output_branch, origin="auto", provenance=provenance, owner=OWNER_JOB
    )
    job = JobInfo(
        id=output.id,
        pipeline=pipeline,
        state="created",
        created=now(),
        inputs=tuple(f"{repo}@{branch}={commit or ''}" for (repo, branch), commit in heads.items()),
        output_repo=pipeline,
        output_branch=spec.output_branch,
        output_commit=output.id,
        base_commit=output.info.parent or "",
        pipeline_version=info.version,
        salt=info.salt,
        origin=origin,
    )
    heartbeat(store, job)
    records.save_job(job)
    _supersede_earlier_jobs(store, job)
    return job


def _override(
    store: Store,
    pipeline: str,
    heads: dict[tuple[str, str], str | None],
    pins: Mapping[str, str],
) -> dict[tuple[str, str], str | None]:
    """The input heads with ``pins`` (repo → commit) put in place of the branch heads."""
    repos = sorted({repo for repo, _ in heads})
    resolved: dict[str, str] = {}
    for repo, commit in pins.items():
        if repo not in repos:
            raise PipelineError(
                f"pin: repo {repo!r} is not an input of pipeline {pipeline!r} "
                f"(inputs: {', '.join(repos) or 'none'})"
            )
        try:
            info = store.inspect_commit(repo, commit)
        except DatumError:
            raise PipelineError(f"pin: commit {commit!r} does not exist in repo {repo!r}") from None
        if info.finished is None:
            raise PipelineError(f"pin: commit {commit!r} in repo {repo!r} is not finished")
        resolved[repo] = info.id
    return {(repo, branch): resolved.get(repo, head) for (repo, branch), head in heads.items()}


def _supersede_earlier_jobs(store: Store, job: JobInfo) -> None:
    """End every other unfinished job of the pipeline ``killed``; drop orphaned job commits.

    A job whose runner is alive (another process's beat) keeps its output commit: deleting it under a runner that is
    landing would leave the output branch on a deleted commit. A live ``finishing`` job is left
    alone (it is landing; if it lands, this job fails with "output branch moved"); any other
    live job gets the stop request and its record ends ``killed``; its runner stops before its
    next datum and deletes its own commit, or the next start deletes it once the runner died.
    """
    records = JobRecords(store)
    reason = f"superseded by job {job.id}"
    for old in records.jobs(job.pipeline):
        if old.id == job.id or old.done:
            continue
        if old.state == "finishing" and landed(store, old):
            finish_job(store, old)
            continue
        alive = live_beat(store, old, ignore_own=True) is not None
        if alive and old.state == "finishing":
            continue
        write_stop(store, old, reason)  # a runner still alive stops at its next datum
        fail_job(store, old, reason, state="killed", delete_commit=not alive)
        if not alive:
            clean_up_after_runner(old)
    for commit in store.list_open_commits(job.output_repo):
        # Left by a runner that died between writing a job's end and deleting its commit.
        if commit.id == job.id or not records.backend.exists(_layout.job(job.pipeline, commit.id)):
            continue
        if live_beat(store, records.job(job.pipeline, commit.id), ignore_own=True):
            continue
        with contextlib.suppress(DatumError):
            store.delete_commit(job.output_repo, commit.id, owner=OWNER_JOB)


def stop_job(store: Store, job_id: str, pipeline: str | None = None) -> JobInfo:
    """Stop a job: it ends ``killed``, now if its runner is dead, else after the datum in flight.

    A dead runner's job is ended here, its open output commit deleted. The stop request is
    always written first, so a runner wrongly taken for dead still stops at its next datum (and
    :func:`~airflow_datum_provider.core.jobs.steps.finish_job` will not land a job that ended).
    A job whose output commit already landed is settled instead (it succeeded). Returns the
    job's record.
    """
    records = JobRecords(store)
    job = records.find_job(job_id, pipeline)
    if job.done:
        return job
    write_stop(store, job, STOPPED_REASON)
    if runner_alive(store, job):
        return job
    clean_up_after_runner(job)
    if job.state == "finishing" and landed(store, job):
        return finish_job(store, job)
    return fail_job(store, job, STOPPED_REASON, state="killed")


def check_resumable(store: Store, job: JobInfo) -> None:
    """Refuse to resume a job that ended, whose runner is alive, or whose output branch moved."""
    if job.done:
        raise PipelineError(
            f"job {job.id} cannot be resumed: it ended {job.state}"
            + (f" ({job.reason})" if job.reason else "")
            + f"; run `run pipeline {job.pipeline}` for a new job",
            job=job.id,
        )
    beat = live_beat(store, job, ignore_own=True)
    if beat is not None:
        raise JobRunning(
            f"job {job.id} is still running (heartbeat {beat.describe()})",
            job=job.id,
            runner=beat.runner,
        )
    if job.base_commit is None or landed(store, job):
        return  # a landed commit only has its records left to finish
    head = store.branch_head(job.output_repo, job.output_branch)
    if (head or "") != job.base_commit:
        raise PipelineError(f"job {job.id} cannot be resumed: {moved(job, head)}", job=job.id)
