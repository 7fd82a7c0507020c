"""``DatumPipeline``: a Pachyderm pipeline as a task group, create → process.expand → merge."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["DatumPipeline"]


def DatumPipeline(  # a factory that reads like the TaskGroup it builds
    spec: Any,
    *,
    store: Any = None,
    python_callable: Callable[[Any], Any] | None = None,
    runtime: str = "local",
    group_id: str | None = None,
    pod_kwargs: Mapping[str, Any] | None = None,
    **operator_kwargs: Any,
) -> Any:
    """Wire one pipeline into the current DAG as a TaskGroup named after it.

    ``spec`` is a Pachyderm spec as a dict, a path to a JSON/YAML file, or a ``PipelineSpec``;
    it is parsed now (a bad spec is a DAG-parse error naming the field) and the store is only
    touched when the tasks run: the create task creates or updates the pipeline in the store.
    ``python_callable`` (a function of the datum context: ``id``, ``job_id``, ``root``, ``out``,
    ``inputs``, ``env``) replaces ``transform.cmd``. ``runtime`` is ``"local"`` (the process
    task runs the set in the Airflow worker) or ``"kubernetes"`` (one pod per set with
    :class:`~airflow_datum_provider.operators.kubernetes.DatumBatchingOperator`; ``pod_kwargs``
    go to it only, e.g. ``namespace``, ``store_volume``, ``storage_options_secret``); other keyword arguments go to all three operators
    (``retries``, ``pool``, ...). Returns the TaskGroup; its ``create``, ``process`` and
    ``merge`` attributes are the three tasks, ``pipeline_name`` the pipeline (its output repo).

    The enclosing DAG gets the run options' Params (``reprocess``, ``pin``, ``dry_run``, see
    :func:`~airflow_datum_provider.run_options.run_params`) unless it has a param of one of
    those names already, so *Trigger* shows a form and ``dag_run.conf`` takes the same keys.
    """
    from airflow.sdk import TaskGroup

    from airflow_datum_provider.assets import DatumAsset
    from airflow_datum_provider.core.spec import iter_pfs_inputs
    from airflow_datum_provider.operators.datum import (
        CreateDatumsOperator,
        MergeOutputsOperator,
        ProcessDatumsOperator,
        _spec_of,
        check_python_callable,
        check_store_arg,
    )

    if runtime not in ("local", "kubernetes"):
        raise ValueError(f"runtime: {runtime!r} is not supported; allowed: 'local', 'kubernetes'")
    if runtime == "kubernetes" and python_callable is not None:
        raise ValueError(
            "python_callable: a pod runs the spec's transform.cmd in transform.image; "
            "use runtime='local' for a Python callable"
        )
    check_store_arg(store)
    check_python_callable(python_callable)
    pod_kwargs = dict(pod_kwargs or {})
    parsed = _spec_of(spec)
    name = parsed.name
    inlets = sorted({(leaf.repo, leaf.branch) for leaf in iter_pfs_inputs(parsed.input)})
    _add_run_params()
    with TaskGroup(group_id=group_id or name) as group:
        create = CreateDatumsOperator(
            task_id="create_datums", pipeline=name, spec=parsed, store=store, **operator_kwargs
        )
        if runtime == "kubernetes":
            from airflow_datum_provider.operators.kubernetes import DatumBatchingOperator

            process = DatumBatchingOperator.partial(
                task_id="process_datums", store=store, **pod_kwargs, **operator_kwargs
            ).expand(datum_set=create.output)
        else:
            process = ProcessDatumsOperator.partial(
                task_id="process_datums",
                store=store,
                python_callable=python_callable,
                **operator_kwargs,
            ).expand(set_ref=create.output)
        merge = MergeOutputsOperator(
            task_id="merge_outputs",
            pipeline=name,
            create_task_id=create.task_id,
            summaries=process.output,
            store=store,
            inlets=[DatumAsset(repo, branch) for repo, branch in inlets],
            outlets=[DatumAsset(name, parsed.output_branch)],
            **operator_kwargs,
        )
    group.pipeline_name = name  # type: ignore[attr-defined]
    group.create = create  # type: ignore[attr-defined]
    group.process = process  # type: ignore[attr-defined]
    group.merge = merge  # type: ignore[attr-defined]
    return group


def _add_run_params() -> None:
    """Give the DAG being defined the run options' Params, unless it has any of those names."""
    from airflow.sdk.definitions._internal.contextmanager import DagContext

    from airflow_datum_provider.run_options import RUN_OPTION_KEYS, run_params

    dag = DagContext.get_current()
    if dag is None or any(key in dag.params for key in RUN_OPTION_KEYS):
        return
    dag.params.update(run_params())
