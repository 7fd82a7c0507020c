"""The Airflow-free core: specs, glob, store, planning, worker, merge, and the job engine.

Nothing below this package imports ``airflow``; a test enforces it. The names below are the
engine's public API (what the Airflow operators call), imported lazily so that importing a
submodule such as ``core.store`` stays cheap::

    job = start_job(store, "edges")
    plan = plan_job(store, job)                     # plan.sets: one SetRef per datum set
    summaries = [run_set(store, ref) for ref in plan.sets]   # anywhere, in any order
    job = finish_job(store, plan.job)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.engine import run_pipeline
    from airflow_datum_provider.core.jobs.lifecycle import start_job, stop_job
    from airflow_datum_provider.core.jobs.records import JobInfo, PipelineInfo
    from airflow_datum_provider.core.jobs.steps import (
        PlanResult,
        SetRef,
        SetSummary,
        finish_job,
        plan_job,
        run_set,
    )
    from airflow_datum_provider.core.jobs.views import DatumView, datum_views, live_job
    from airflow_datum_provider.core.pipelines import create_pipeline, delete_pipeline
    from airflow_datum_provider.core.runtime.local import SetExecutor, set_executor

_LAZY = {
    "DatumView": "airflow_datum_provider.core.jobs.views",
    "datum_views": "airflow_datum_provider.core.jobs.views",
    "live_job": "airflow_datum_provider.core.jobs.views",
    "JobInfo": "airflow_datum_provider.core.jobs.records",
    "PipelineInfo": "airflow_datum_provider.core.jobs.records",
    "PlanResult": "airflow_datum_provider.core.jobs.steps",
    "SetExecutor": "airflow_datum_provider.core.runtime.local",
    "SetRef": "airflow_datum_provider.core.jobs.steps",
    "SetSummary": "airflow_datum_provider.core.jobs.steps",
    "create_pipeline": "airflow_datum_provider.core.pipelines",
    "delete_pipeline": "airflow_datum_provider.core.pipelines",
    "finish_job": "airflow_datum_provider.core.jobs.steps",
    "plan_job": "airflow_datum_provider.core.jobs.steps",
    "run_pipeline": "airflow_datum_provider.core.engine",
    "run_set": "airflow_datum_provider.core.jobs.steps",
    "set_executor": "airflow_datum_provider.core.runtime.local",
    "start_job": "airflow_datum_provider.core.jobs.lifecycle",
    "stop_job": "airflow_datum_provider.core.jobs.lifecycle",
}

__all__ = [
    "DatumView",
    "JobInfo",
    "PipelineInfo",
    "PlanResult",
    "SetExecutor",
    "SetRef",
    "SetSummary",
    "create_pipeline",
    "datum_views",
    "delete_pipeline",
    "finish_job",
    "live_job",
    "plan_job",
    "run_pipeline",
    "run_set",
    "set_executor",
    "start_job",
    "stop_job",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
