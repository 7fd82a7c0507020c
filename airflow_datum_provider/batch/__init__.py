"""Batch operations (seed 004): run a data-quality engine over chunks of large data.

Airflow-free like ``core/``; importing it imports neither polars nor truthound. The names below
are the ones the batch documentation uses (``from airflow_datum_provider.batch import ...``).
"""

from __future__ import annotations

from airflow_datum_provider.batch.chunkers import (
    Chunk,
    DataChunker,
    DatasetListChunker,
    PolarsChunker,
    RowCountChunker,
)
from airflow_datum_provider.batch.config import (
    DEFAULT_BATCH_CONFIG,
    FAIL_FAST_BATCH_CONFIG,
    LARGE_DATA_BATCH_CONFIG,
    PARALLEL_BATCH_CONFIG,
    SEQUENTIAL_BATCH_CONFIG,
    AggregationStrategy,
    BatchConfig,
    ExecutionStrategy,
)
from airflow_datum_provider.batch.engines import (
    AsyncEngine,
    CheckIssue,
    CheckReport,
    Engine,
    SyncEngineAsyncAdapter,
    TruthoundEngine,
)
from airflow_datum_provider.batch.executor import AsyncBatchExecutor, BatchExecutor, aggregate
from airflow_datum_provider.batch.hooks import (
    BatchHook,
    CompositeBatchHook,
    LoggingBatchHook,
    MetricsBatchHook,
)
from airflow_datum_provider.batch.profiles import ColumnProfile, TableProfile
from airflow_datum_provider.batch.results import BatchResult, CheckStatus, ChunkResult
from airflow_datum_provider.core.errors import (
    AggregationError,
    BatchError,
    BatchExecutionError,
    BatchTimeoutError,
    ChunkingError,
)

__all__ = [
    "DEFAULT_BATCH_CONFIG",
    "FAIL_FAST_BATCH_CONFIG",
    "LARGE_DATA_BATCH_CONFIG",
    "PARALLEL_BATCH_CONFIG",
    "SEQUENTIAL_BATCH_CONFIG",
    "AggregationError",
    "AggregationStrategy",
    "AsyncBatchExecutor",
    "AsyncEngine",
    "BatchConfig",
    "BatchError",
    "BatchExecutionError",
    "BatchExecutor",
    "BatchHook",
    "BatchResult",
    "BatchTimeoutError",
    "CheckIssue",
    "CheckReport",
    "CheckStatus",
    "Chunk",
    "ChunkResult",
    "ChunkingError",
    "ColumnProfile",
    "CompositeBatchHook",
    "DataChunker",
    "DatasetListChunker",
    "Engine",
    "ExecutionStrategy",
    "LoggingBatchHook",
    "MetricsBatchHook",
    "PolarsChunker",
    "RowCountChunker",
    "SyncEngineAsyncAdapter",
    "TableProfile",
    "TruthoundEngine",
    "aggregate",
]
