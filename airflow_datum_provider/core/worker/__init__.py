"""The datum worker: run one datum's user code against a scratch ``/pfs`` and collect outputs.

Entry point: :func:`run_datum` with a :class:`RunOptions` (``RunOptions.from_spec(spec)``) and a
:class:`JobContext`. The attempt policy is in :mod:`.policy`, the runtimes that run each attempt
(and the interface a new runtime implements) in :mod:`.runtime`.
"""

from __future__ import annotations

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
