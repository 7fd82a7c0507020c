"""airflow-datum-provider: Pachyderm's datum model for Apache Airflow 3.

The root exports the few names a DAG author types, lazily (PEP 562), so that Airflow's provider
discovery, which imports this package, stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and IDEs see; keep it equal to _LAZY (a test checks)
    from airflow_datum_provider.core.errors import DatumError
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.core.worker.batching_client import batch_all_datums, next_datum
    from airflow_datum_provider.pipeline import DatumPipeline

__version__ = "0.1.0"

_LAZY = {
    "DatumPipeline": "airflow_datum_provider.pipeline",
    "Store": "airflow_datum_provider.core.store",
    "DatumError": "airflow_datum_provider.core.errors",
    "batch_all_datums": "airflow_datum_provider.core.worker.batching_client",
    "next_datum": "airflow_datum_provider.core.worker.batching_client",
}

__all__ = ["DatumError", "DatumPipeline", "Store", "__version__", "batch_all_datums", "next_datum"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
