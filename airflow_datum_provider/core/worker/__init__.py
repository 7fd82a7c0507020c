"""The datum worker: run one datum's user code against a scratch ``/pfs`` and collect outputs.

Entry point: :func:`run_datum` with a :class:`RunOptions` (``RunOptions.from_spec(spec)``) and a
:class:`JobContext`. The attempt policy is in :mod:`.policy`, the runtimes that run each attempt
(and the interface a new runtime implements) in :mod:`.runtime`, datum batching in
:mod:`.batching` (the worker side) and :mod:`.batching_client` (what user code calls).

The names below are imported lazily (PEP 562), so user code importing
:mod:`.batching_client` does not pay for the worker.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker.namespace import pfs_namespace_available
    from airflow_datum_provider.core.worker.options import PythonTransform, RunOptions
    from airflow_datum_provider.core.worker.outputs import OutputRejected, collect_outputs
    from airflow_datum_provider.core.worker.runner import (
        JOB_TIMEOUT_REASON,
        DatumContext,
        DatumResult,
        DatumState,
        JobContext,
        run_datum,
    )

_RUNNER = "airflow_datum_provider.core.worker.runner"
_LAZY = {
    "JOB_TIMEOUT_REASON": _RUNNER,
    "DatumContext": _RUNNER,
    "DatumResult": _RUNNER,
    "DatumState": _RUNNER,
    "JobContext": _RUNNER,
    "run_datum": _RUNNER,
    "OutputRejected": "airflow_datum_provider.core.worker.outputs",
    "collect_outputs": "airflow_datum_provider.core.worker.outputs",
    "PythonTransform": "airflow_datum_provider.core.worker.options",
    "RunOptions": "airflow_datum_provider.core.worker.options",
    "pfs_namespace_available": "airflow_datum_provider.core.worker.namespace",
}

__all__ = [
    "JOB_TIMEOUT_REASON",
    "DatumContext",
    "DatumResult",
    "DatumState",
    "JobContext",
    "OutputRejected",
    "PythonTransform",
    "RunOptions",
    "collect_outputs",
    "pfs_namespace_available",
    "run_datum",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
