"""``DatumPipeline``: a Pachyderm pipeline as a task group, create → process.expand → merge."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Callable, Mapping
from os import PathLike
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.spec import PipelineSpec

__all__ = ["DatumPipeline"]

# (DAG file, line, message) of every ignored-field warning this process has shown; see _parse.
_WARNED: set[tuple[str, int, str]] = set()


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
    parsed = _parse(spec)
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


def _parse(spec: Any) -> PipelineSpec:
    """Parse ``spec``, showing each ignored-field warning once per ``DatumPipeline(...)`` line.

    Airflow runs a DAG file more than once in one process (``airflow dags test`` parses it to
    sync the DAG, and again inside ``dag.test()``), and its DagBag records warnings with
    ``catch_warnings``, which resets the registry that makes Python show a warning once per
    place: so each parse printed the warning again. The warning is shown once per DAG-file line,
    points at that line (not at the parser), and names the spec file or the pipeline.
    """
    from airflow_datum_provider.core.spec import UnsupportedFieldWarning
    from airflow_datum_provider.operators.datum import _spec_of

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsupportedFieldWarning)
        parsed = _spec_of(spec)
    filename, lineno, module = _caller()
    source = str(spec) if isinstance(spec, str | PathLike) else f"pipeline {parsed.name}"
    for warning in caught:
        if not issubclass(warning.category, UnsupportedFieldWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
            continue
        key = (filename, lineno, str(warning.message))
        if key not in _WARNED:
            _WARNED.add(key)
            warnings.warn_explicit(
                f"{source}: {warning.message}",
                UnsupportedFieldWarning,
                filename,
                lineno,
                module=module,
            )
    return parsed


def _caller() -> tuple[str, int, str]:
    """File, line and module of the innermost frame outside this package (the DAG file)."""
    frame = sys._getframe(1)
    while frame.f_back is not None and str(frame.f_globals.get("__name__", "")).startswith(
        "airflow_datum_provider."
    ):
        frame = frame.f_back
    return frame.f_code.co_filename, frame.f_lineno, str(frame.f_globals.get("__name__", ""))
