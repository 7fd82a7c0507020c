"""The three steps of a datum job as Airflow operators: create → mapped process → merge.

``CreateDatumsOperator`` pins the inputs, plans and writes the datum sets to the store, and
returns one small set descriptor per set for ``.expand(set_ref=...)``; ``ProcessDatumsOperator``
runs one set; ``MergeOutputsOperator`` merges every datum's outputs into the output commit.
Each ``execute`` is a few lines over :mod:`airflow_datum_provider.core`; everything the steps
share goes through the store, so each may run on another worker and be retried.

Overlapping DAG runs of one pipeline queue, as Pachyderm queues jobs: the later run's create
task waits (polling the store every ``poll_interval`` seconds, at most ``wait_timeout``) until the
earlier job has ended, then starts its own. A job whose runner is gone for good is superseded by
the engine as usual.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from airflow_datum_provider.operators._progress import DatumLog

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_datum_provider.core.jobs.records import JobInfo
    from airflow_datum_provider.core.spec import PipelineSpec
    from airflow_datum_provider.core.store import Store

__all__ = [
    "FAILED_IDS_CAP",
    "CreateDatumsOperator",
    "MergeOutputsOperator",
    "ProcessDatumsOperator",
    "check_python_callable",
    "check_store_arg",
]

FAILED_IDS_CAP = 100
"""At most this many failed datum ids travel in a set summary (the store has them all)."""

JOB_XCOM_KEY = "job"
DRY_RUN_REASON = "dry run"
DRY_RUN_XCOM_KEY = "dry_run"


def check_store_arg(store: Any) -> None:
    """Refuse a ``store=`` no task could open, at DAG-parse time and without any I/O.

    ``None``, a ``Store`` and an ``ObjectStoragePath`` are checked when the task runs; a string
    or path must be a folder or a supported URL without user info (:func:`check_store_url`).
    """
    import os

    from airflow_datum_provider.core.store import Store, check_store_url

    if (
        store is None
        or isinstance(store, Store)
        or (hasattr(store, "fs") and hasattr(store, "path"))
    ):
        return
    if isinstance(store, os.PathLike):
        store = os.fspath(store)
    if not isinstance(store, str) or not store.strip():
        raise TypeError(
            f"store: expected a folder, a store URL (file://, memory://, s3://bucket/prefix), an "
            f"ObjectStoragePath or None, got {type(store).__name__} {str(store)[:60]!r}"
        )
    check_store_url(store)


def check_python_callable(fn: Any) -> None:
    """``python_callable`` must be a function of the datum context or a ``module:function``."""
    if fn is None or callable(fn):
        return
    if isinstance(fn, str):
        module, sep, attr = fn.partition(":")
        if sep and module.strip() and attr.strip():
            return
    raise TypeError(
        "python_callable: expected a function of the datum context or a 'module:function' "
        f"string, got {type(fn).__name__} {str(fn)[:60]!r}"
    )


@contextlib.contextmanager
def _one_line(what: str) -> Iterator[None]:
    """Turn errors a person must fix into one line: no traceback of this package's insides.

    This package's own errors (a bad URL, a missing repo or pipeline, a bad connection) fail
    the task without retry; an ``OSError`` (a store folder that cannot be made, a network
    error) fails it with one line and lets Airflow retry.
    """
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from airflow_datum_provider.core.errors import DatumError

    try:
        yield
    except (DatumError, ValueError) as exc:  # not TypeError: that is a bug, not input
        text = str(exc)
        if not text.startswith(what.split(" ", 1)[0]):  # "pipeline x: pipeline 'x' not found"
            text = f"{what}: {text}"
        raise AirflowFailException(text) from None
    except OSError as exc:
        raise AirflowException(f"{what}: {exc}") from None


def _store(store: Any) -> Store:
    from airflow_datum_provider.core.store import redact_url
    from airflow_datum_provider.hooks.store import resolve_store

    shown = "" if not isinstance(store, str) else f" {redact_url(store)}"
    with _one_line(f"store{shown}"):
        return resolve_store(store)


def _origin(context: Context) -> str:
    dag_run = context.get("dag_run")
    dag_id = getattr(dag_run, "dag_id", "") or ""
    run_id = getattr(dag_run, "run_id", "") or ""
    return f"airflow:{dag_id}/{run_id}"


def _max_map_length() -> int:
    from airflow.configuration import conf

    return conf.getint("core", "max_map_length", fallback=1024)


def _spec_of(spec: Any) -> PipelineSpec:
    from pathlib import Path

    from airflow_datum_provider.core.spec import PipelineSpec, load_spec, parse_spec

    if isinstance(spec, PipelineSpec):
        return spec
    if isinstance(spec, Mapping):
        return parse_spec(spec)
    if isinstance(spec, (str, Path)):
        return load_spec(spec)
    raise TypeError(
        f"spec: expected a Pachyderm spec dict, a JSON/YAML file path or a PipelineSpec, "
        f"got {type(spec).__name__}"
    )


def _job_dict(job: JobInfo) -> dict[str, Any]:
    return {
        "id": job.id,
        "pipeline": job.pipeline,
        "state": job.state,
        "reason": job.reason,
        "processed": job.processed,
        "skipped": job.skipped,
        "failed": job.failed,
        "recovered": job.recovered,
        "total": job.total,
        "output_repo": job.output_repo,
        "output_branch": job.output_branch,
        "output_commit": job.output_commit,
    }


class CreateDatumsOperator(BaseOperator):
    """Pin the inputs, plan the datums, skip unchanged ones, write the datum sets.

    :param pipeline: the pipeline's name.
    :param spec: optional Pachyderm spec (dict, file path or ``PipelineSpec``); when given, the
        pipeline is created, or updated when it changed (keeping its salt, so unchanged datums
        are still skipped), as this task runs.
    :param store: a store URL, an ``ObjectStoragePath`` or ``None`` (the ``datum_store_default``
        connection, else ``$DATUM_STORE``, else the embedded default folder).
    :param wait_timeout: how long to wait for an earlier, still-running job of the pipeline.
    :param poll_interval: how often to look while waiting.

    Returns the set descriptors (``[{"pipeline", "job", "set", "datums", "bytes"}, ...]``), never
    more than ``[core] max_map_length`` of them, nor more than the pipeline's parallelism unless
    its ``datum_set_spec`` says how to cut them. An empty list is a job with nothing to process;
    the merge still records it. The job's id goes to XCom under the key ``job``.

    Run options (``params`` / ``dag_run.conf``, see :mod:`airflow_datum_provider.run_options`):
    ``reprocess`` skips nothing, ``pin`` runs against the given input commits (a bad repo or
    commit fails this task with one line naming it), ``dry_run`` plans, logs the datums, pushes a
    report under the XCom key ``dry_run``, ends the job ``killed`` with reason ``dry run``
    (deleting its open output commit: no branch moves) and returns ``[]``; the merge task is then
    skipped, so no Asset event starts downstream pipelines. A run triggered by
    Asset events of an input repo (``DatumAsset`` chaining) is pinned to the commit they name.
    """

    template_fields: Sequence[str] = ("pipeline",)
    ui_color = "#e3f2fd"

    def __init__(
        self,
        *,
        pipeline: str,
        spec: Any = None,
        store: Any = None,
        wait_timeout: float = 3600.0,
        poll_interval: float = 5.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_store_arg(store)
        self.pipeline = pipeline
        self.spec = None if spec is None else _spec_of(spec).to_dict()
        self.store = store
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval

    def _ensure_pipeline(self, store: Store) -> None:
        from airflow_datum_provider.core import create_pipeline
        from airflow_datum_provider.core.jobs.records import JobRecords
        from airflow_datum_provider.core.spec import parse_spec

        if self.spec is None:
            return
        spec = parse_spec(self.spec)
        records = JobRecords(store)
        if records.pipeline_exists(spec.name):
            current = records.pipeline(spec.name).spec
            if current.with_salt("").to_dict() == spec.with_salt("").to_dict():
                return
            create_pipeline(store, spec, update=True)
            self.log.info("updated pipeline %s", spec.name)
        else:
            create_pipeline(store, spec)
            self.log.info("created pipeline %s", spec.name)

    def _wait_for_earlier_jobs(self, store: Store) -> None:
        from airflow_datum_provider.core.jobs.liveness import runner_alive
        from airflow_datum_provider.core.jobs.records import JobRecords

        records = JobRecords(store)
        deadline = time.monotonic() + self.wait_timeout
        while True:
            running = [j for j in records.jobs(self.pipeline) if not j.done]
            alive = [j for j in running if runner_alive(store, j) or not j.planned]
            if not alive:
                return
            if time.monotonic() >= deadline:
                from airflow.sdk.exceptions import AirflowException

                raise AirflowException(
                    f"pipeline {self.pipeline}: job {alive[0].id} is still running after "
                    f"{self.wait_timeout:g} s (wait_timeout)"
                )
            self.log.info(
                "pipeline %s: waiting for job %s to end (jobs of one pipeline run one at a time)",
                self.pipeline,
                alive[0].id,
            )
            time.sleep(self.poll_interval)

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Start and plan the job; return the set descriptors for ``.expand()``."""
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_datum_provider.assets import commit_from_events
        from airflow_datum_provider.core import plan_job, start_job
        from airflow_datum_provider.core.errors import DatumError
        from airflow_datum_provider.core.jobs.ending import fail_job
        from airflow_datum_provider.core.jobs.records import JobRecords
        from airflow_datum_provider.core.plan import pfs_leaves
        from airflow_datum_provider.run_options import RunOptions

        try:
            options = RunOptions.from_context(context)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        store = _store(self.store)
        with _one_line(f"pipeline {self.pipeline}"):
            self._ensure_pipeline(store)
        self._wait_for_earlier_jobs(store)
        with _one_line(f"pipeline {self.pipeline}"):
            spec = JobRecords(store).pipeline(self.pipeline).spec
        max_sets = _max_map_length()
        if spec.datum_set_spec is None:
            max_sets = min(max_sets, spec.parallelism)
        # Chaining: a run started by Asset events of an input repo runs on the commit they name.
        pins: dict[str, str] = {}
        events = context.get("triggering_asset_events")
        for leaf in pfs_leaves(spec.input, self.pipeline):
            commit = commit_from_events(events, leaf.repo, leaf.branch)
            if commit:
                pins[leaf.repo] = commit
        pins.update(options.pins)  # the person's pin wins over the event's
        try:
            job = start_job(store, self.pipeline, origin=_origin(context), pins=pins)
        except DatumError as exc:
            raise AirflowFailException(str(exc)) from None
        plan = plan_job(store, job, max_sets=max_sets, reprocess=options.reprocess)
        context["ti"].xcom_push(key=JOB_XCOM_KEY, value={"pipeline": job.pipeline, "id": job.id})
        if options.dry_run:
            records = JobRecords(store)
            ids = [d.id for n in records.set_numbers(job) for d in records.read_set(job, n)]
            self.log.info(
                "dry run: job %s would process %d datums in %d sets (%d skipped): %s",
                job.id,
                len(ids),
                len(plan.sets),
                plan.job.skipped,
                ", ".join(ids[:100]) + (" ..." if len(ids) > 100 else ""),
            )
            fail_job(store, plan.job, DRY_RUN_REASON, state="killed")
            report = {
                "job": job.id,
                "datums": ids[:FAILED_IDS_CAP],
                "to_process": len(ids),
                "skipped": plan.job.skipped,
                "total": plan.job.total,
                "sets": len(plan.sets),
            }
            context["ti"].xcom_push(key=DRY_RUN_XCOM_KEY, value=report)
            return []
        self.log.info(
            "job %s: %d datums, %d skipped, %d to process in %d sets",
            job.id,
            plan.job.total,
            plan.job.skipped,
            plan.job.total - plan.job.skipped,
            len(plan.sets),
        )
        return [ref.to_dict() for ref in plan.sets]


class ProcessDatumsOperator(BaseOperator):
    """Run one datum set: every datum, checkpointed; a retry resumes after finished datums.

    A datum that fails does not fail the task: the summary reports it and the merge decides,
    after every other set ran (Pachyderm: a failed datum fails the job once the others finished).
    The task fails only on an internal error (store unreachable, worker crash), so that Airflow's
    retry resumes from the checkpoints; a stopped or timed-out job fails it without retry.

    :param set_ref: one descriptor from ``CreateDatumsOperator`` (map over them with ``expand``).
    :param python_callable: a function of the datum context that replaces ``transform.cmd``.
    :param batch_config: a ``BatchConfig`` (or its dict form) to run the set's datums through the
        batch executor: ``max_workers`` threads, fail-fast (see ``docs/batch.md``).

    Returns ``{"set", "pipeline", "job", "success", "failed", "recovered", "failed_datums",
    "download_bytes", "upload_bytes", "process_seconds", "seconds"}``: the counts per state, at
    most :data:`FAILED_IDS_CAP` failed ids, the bytes the datums read and wrote, the seconds
    spent in user code and the task's own wall time. The task log has one line per datum and a
    progress line at least every :data:`~._progress.PROGRESS_EVERY` seconds.
    """

    template_fields: Sequence[str] = ("set_ref",)
    ui_color = "#e8f5e9"

    def __init__(
        self,
        *,
        set_ref: Any,
        store: Any = None,
        python_callable: Callable[[Any], Any] | None = None,
        batch_config: Any = None,
        map_index_template: str | None = (
            "set {{ task.set_ref['set'] }} · {{ task.set_ref['datums'] }} "
            "datum{{ '' if task.set_ref['datums'] == 1 else 's' }}"
        ),
        **kwargs: Any,
    ) -> None:
        super().__init__(map_index_template=map_index_template, **kwargs)
        check_store_arg(store)
        check_python_callable(python_callable)
        self.set_ref = set_ref
        self.store = store
        self.python_callable = python_callable
        if batch_config is not None:
            from airflow_datum_provider.batch.config import BatchConfig

            if not isinstance(batch_config, BatchConfig):
                batch_config = BatchConfig.from_dict(batch_config)
        self.batch_config = batch_config

    def execute(self, context: Context) -> dict[str, Any]:
        """Run the set; return its summary."""
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_datum_provider.core import SetRef, run_set
        from airflow_datum_provider.core.errors import JobKilled

        with _one_line("set_ref"):
            ref = SetRef.from_dict(self.set_ref)
        store = _store(self.store)
        started = time.monotonic()
        executor = None
        if self.batch_config is not None:
            from airflow_datum_provider.batch.datums import datum_executor

            executor = datum_executor(self.batch_config)
        try:
            with DatumLog(self.log, total=ref.datums, ref=ref) as log:
                summary = run_set(
                    store,
                    ref,
                    python=self.python_callable,
                    on_datum=log.datum,
                    datum_executor=executor,
                )
        except JobKilled as exc:
            raise AirflowFailException(str(exc)) from None
        result = summary.to_dict()
        result["failed_datums"] = list(summary.failed_datums[:FAILED_IDS_CAP])
        result.update(log.totals())
        result["seconds"] = round(time.monotonic() - started, 3)
        return result


class MergeOutputsOperator(BaseOperator):
    """Merge every datum's outputs into the output commit and finish the job.

    Fails with Pachyderm's reason text when a datum failed (``datum <id> failed``) or two datums
    wrote one path; recovered datums do not fail it. Returns the job record as a small dict.
    A dry run's merge is skipped (so its outlet emits no Asset event) after pushing the job
    record, with ``"dry_run": True``, as its return value.
    The output repo's ``DatumAsset`` is an outlet (its event names the commit, the job and the
    counters); the input repos are inlets, so Airflow's asset graph shows the pipeline graph.

    :param summaries: the mapped process task's output (read with one slice).
    :param create_task_id: the task that created the job (its ``job`` XCom names it).
    """

    template_fields: Sequence[str] = ("summaries",)
    ui_color = "#fff3e0"

    def __init__(
        self,
        *,
        pipeline: str,
        create_task_id: str,
        summaries: Any = None,
        store: Any = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("trigger_rule", "none_failed")
        super().__init__(**kwargs)
        check_store_arg(store)
        self.pipeline = pipeline
        self.create_task_id = create_task_id
        self.summaries = summaries
        self.store = store

    def execute(self, context: Context) -> dict[str, Any]:
        """Finish the job; fail the task when the job failed."""
        from airflow.sdk.exceptions import AirflowFailException

        from airflow_datum_provider.assets import emit_commit_event
        from airflow_datum_provider.core import finish_job
        from airflow_datum_provider.core.jobs.records import JobRecords

        pointer = context["ti"].xcom_pull(task_ids=self.create_task_id, key=JOB_XCOM_KEY)
        if not pointer:
            dag = getattr(self, "dag", None)
            if self.create_task_id in (getattr(dag, "task_dict", None) or {}):
                from airflow.sdk.exceptions import AirflowSkipException

                # The trigger rule (none_failed) lets this task run when the create task was
                # skipped (by a branch or short circuit upstream, or an upstream pipeline's
                # dry run): there is no job, so nothing to merge, and no Asset event.
                raise AirflowSkipException(
                    f"{self.create_task_id} created no job (skipped): nothing to merge"
                )
            raise AirflowFailException(f"{self.create_task_id}: no job was created")
        summaries = list(self.summaries[:]) if self.summaries else []
        failed = sum(int(s.get("failed", 0)) for s in summaries if isinstance(s, Mapping))
        store = _store(self.store)
        with _one_line(f"pipeline {pointer['pipeline']}"):
            job = JobRecords(store).job(pointer["pipeline"], pointer["id"])
        self.log.info("job %s: merging %d sets (%d failed datums)", job.id, len(summaries), failed)
        if job.done and job.reason == DRY_RUN_REASON:
            from airflow.sdk.exceptions import AirflowSkipException

            # Skipped, not successful: Airflow emits an event for every outlet of a task that
            # succeeds, and an event here would start the downstream pipelines for a commit
            # that does not exist. The job record still goes to XCom as the return value.
            context["ti"].xcom_push(key="return_value", value={**_job_dict(job), "dry_run": True})
            raise AirflowSkipException(f"job {job.id}: dry run, nothing merged")
        job = finish_job(store, job)
        result = _job_dict(job)
        self.log.info(
            "job %s: %s · %d processed, %d skipped, %d failed, %d recovered / %d · commit %s",
            job.id,
            job.state,
            job.processed,
            job.skipped,
            job.failed,
            job.recovered,
            job.total,
            job.output_commit or "-",
        )
        if job.state != "success":
            raise AirflowFailException(f"job {job.id} {job.state}: {job.reason}")
        emit_commit_event(
            context,
            job.output_repo,
            job.output_branch,
            job.output_commit,
            job_id=job.id,
            counters={
                k: result[k] for k in ("processed", "skipped", "failed", "recovered", "total")
            },
        )
        return result
