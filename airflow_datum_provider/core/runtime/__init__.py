"""Where sets run: set executors and this machine's clean-up (:mod:`.local`)."""

from __future__ import annotations

from airflow_datum_provider.core.runtime.local import (
    ExecutorKind,
    SetExecutor,
    clean_up_after_runner,
    scratch_parent,
    set_executor,
)

__all__ = [
    "ExecutorKind",
    "SetExecutor",
    "clean_up_after_runner",
    "scratch_parent",
    "set_executor",
]
