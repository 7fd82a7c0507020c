"""Jobs: their records, where those live, their lifecycle, liveness and steps.

:mod:`.records` (``JobInfo``, ``PipelineInfo``, ``JobRecords``), :mod:`._layout` (every
``meta/`` key), :mod:`.lifecycle` (start, supersede, stop), :mod:`.liveness` (heartbeats, stop
requests), :mod:`.steps` (plan, run a set, finish), :mod:`.ending` (success, failure).
"""

from __future__ import annotations

from airflow_datum_provider.core.jobs.records import (
    JOB_STATES,
    TERMINAL_STATES,
    JobInfo,
    JobRecords,
    PipelineInfo,
    now,
)

__all__ = [
    "JOB_STATES",
    "TERMINAL_STATES",
    "JobInfo",
    "JobRecords",
    "PipelineInfo",
    "now",
]
