"""The job engine, run locally: ``run_pipeline`` = start → plan → run every set → finish.

The steps live in :mod:`airflow_datum_provider.core.jobs` and run wherever a runtime puts them:
``datumctl run pipeline`` calls them in one process (or a local pool, through a set executor of
:mod:`airflow_datum_provider.core.runtime`), an Airflow DAG calls ``start_job`` + ``plan_job`` in
one task, ``run_set`` in mapped tasks (or pods) and ``finish_job`` in a reduce task. This module
also re-exports the names callers used before the split.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_datum_provider.core.errors import JobFailed, JobKilled, SpecError
from airflow_datum_provider.core.jobs.ending import fail_job
from airflow_datum_provider.core.jobs.lifecycle import check_resumable, start_job, stop_job
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords
from airflow_datum_provider.core.jobs.steps import (
    PlanResult,
    SetRef,
    SetSummary,
    finish_job,
    plan_job,
    process_set,
    run_set,
    set_refs,
)
from airflow_datum_provider.core.pipelines import (
    check_local_runner,
    create_pipeline,
    delete_pipeline,
    local_runner_warnings,
)
from airflow_datum_provider.core.runtime.local import clean_up_after_runner, set_executor
from airflow_datum_provider.core.store import Store

__all__ = [
    "JobKilled",
    "PlanResult",
    "SetRef",
    "SetSummary",
    "check_local_runner",
    "create_pipeline",
    "delete_pipeline",
    "finish_job",
    "job_failed",
    "local_runner_warnings",
    "plan_job",
    "process_set",
    "run_pipeline",
    "run_set",
    "start_job",
    "stop_job",
]


def run_pipeline(
    store: Store,
    pipeline: str,
    *,
    parallelism: int | None = None,
    resume: str | None = None,
    verbose: bool = False,
    storage_options: Mapping[str, Any] | None = None,
    executor: str | None = None,
    batch_config: Any = None,
) -> JobInfo:
    """Run one job now (or continue ``resume``): plan, process every set, merge.

    With ``parallelism`` > 1 sets run in that many worker processes (``executor`` picks
    another set executor: ``inline``, ``thread``, ``process``). ``batch_config`` (a
    ``BatchConfig`` or its dict form) runs each set's datums through the batch executor
    (``airflow_datum_provider.batch.datums``); with its ``fail_fast`` a set with a failed datum
    also keeps the sets not yet started from starting. A job that fails ends in state failure / killed;
    this function returns the final record either way.
    """
    batch = _batch_dict(batch_config)
    records = JobRecords(store)
    if resume:
        job = records.job(pipeline, resume)
        if job.state == "success":
            return job
        check_local_runner(records.job_pipeline(job).spec)
        check_resumable(store, job)
        clean_up_after_runner(job)
        job = records.update_job(job, restarts=job.restarts + 1)
    else:
        check_local_runner(records.pipeline(pipeline).spec)
        job = start_job(store, pipeline)
    workers = parallelism or 1
    try:
        try:
            refs = plan_job(store, job).sets if not job.planned else set_refs(store, job)
        except SpecError as exc:  # a table rows_per_datum cannot split: the job fails
            return fail_job(store, records.job(pipeline, job.id), str(exc))
        kind = executor or ("inline" if workers <= 1 or len(refs) <= 1 else "process")
        with set_executor(
            kind,
            store,
            workers=workers,
            storage_options=storage_options,
            verbose=verbose,
            batch_config=batch,
        ) as sets:
            for summary in sets.map(refs):
                if summary.failed and batch is not None and batch["fail_fast"]:
                    break  # fail-fast: no other set starts; the job fails with that datum
    except JobKilled as exc:
        return fail_job(store, records.job(pipeline, job.id), str(exc), state="killed")
    return finish_job(store, records.job(pipeline, job.id))


def _batch_dict(batch_config: Any) -> dict[str, Any] | None:
    """A batch config (or its dict form), checked, as the dict that crosses to pool workers."""
    if batch_config is None:
        return None
    from airflow_datum_provider.batch.config import BatchConfig
    from airflow_datum_provider.batch.datums import datum_executor

    config = (
        batch_config
        if isinstance(batch_config, BatchConfig)
        else BatchConfig.from_dict(dict(batch_config))
    )
    datum_executor(config)  # refuses what a datum set cannot do before the job starts
    return config.to_dict()


def job_failed(job: JobInfo) -> JobFailed:
    """The error an operator raises for a job that did not succeed."""
    return JobFailed(f"job {job.id} {job.state}: {job.reason}", job=job.id, reason=job.reason)
