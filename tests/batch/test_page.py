"""Every snippet of the batch page (seed 004), as written, with the import path replaced."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("truthound")


@pytest.fixture(scope="module")
def large_dataframe() -> Any:
    n = 40_000
    return pl.DataFrame(
        {
            "id": pl.int_range(0, n, eager=True),
            "amount": (pl.int_range(0, n, eager=True) % 1000).cast(pl.Float64),
            "kind": pl.Series(["a", "b", "c", "d"] * (n // 4)),
        }
    )


def test_basic_usage(large_dataframe: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_datum_provider.batch import BatchConfig, BatchExecutor, TruthoundEngine

    engine = TruthoundEngine()
    config = BatchConfig(batch_size=10000, max_workers=4)
    executor = BatchExecutor(engine, config)

    result = executor.check_batch(large_dataframe, auto_schema=True)

    print(f"Status: {result.status.name}")
    print(f"Total chunks: {result.total_chunks}")
    print(f"Passed: {result.passed_chunks}")
    print(f"Duration: {result.duration_seconds:.2f}s")

    out = capsys.readouterr().out
    assert "Status: PASSED" in out
    assert "Total chunks: 4" in out
    assert "Passed: 4" in out
    assert result.value.row_count == 40_000


def test_preset_configurations(large_dataframe: Any) -> None:
    from airflow_datum_provider.batch import (
        DEFAULT_BATCH_CONFIG,  # Default: 1000 rows, 4 workers
        FAIL_FAST_BATCH_CONFIG,  # Stop on first failure
        LARGE_DATA_BATCH_CONFIG,  # Large data: 50000 rows
        PARALLEL_BATCH_CONFIG,  # Parallel: 8 workers
        SEQUENTIAL_BATCH_CONFIG,  # Sequential: single thread
        BatchExecutor,
        ExecutionStrategy,
        TruthoundEngine,
    )

    engine = TruthoundEngine()
    executor = BatchExecutor(engine, config=LARGE_DATA_BATCH_CONFIG)

    assert (DEFAULT_BATCH_CONFIG.batch_size, DEFAULT_BATCH_CONFIG.max_workers) == (1000, 4)
    assert PARALLEL_BATCH_CONFIG.max_workers == 8
    assert PARALLEL_BATCH_CONFIG.execution_strategy is ExecutionStrategy.PARALLEL
    assert SEQUENTIAL_BATCH_CONFIG.max_workers == 1
    assert SEQUENTIAL_BATCH_CONFIG.execution_strategy is ExecutionStrategy.SEQUENTIAL
    assert FAIL_FAST_BATCH_CONFIG.fail_fast is True
    assert LARGE_DATA_BATCH_CONFIG.batch_size == 50_000
    result = executor.check_batch(large_dataframe)
    assert result.total_chunks == 1  # 40,000 rows fit in one 50,000-row chunk


def test_builder_pattern() -> None:
    from airflow_datum_provider.batch import AggregationStrategy, BatchConfig, ExecutionStrategy

    config = BatchConfig()
    config = config.with_batch_size(5000)
    config = config.with_max_workers(8)
    config = config.with_execution_strategy(ExecutionStrategy.PARALLEL)
    config = config.with_aggregation_strategy(AggregationStrategy.MERGE)
    config = config.with_fail_fast(True)
    config = config.with_timeout(300.0)

    assert config.batch_size == 5000
    assert config.max_workers == 8
    assert config.execution_strategy is ExecutionStrategy.PARALLEL
    assert config.aggregation_strategy is AggregationStrategy.MERGE
    assert config.fail_fast is True
    assert config.timeout_seconds == 300.0
    assert BatchConfig() == BatchConfig()  # each builder returned a new config


def test_batch_operation_types(large_dataframe: Any) -> None:
    from airflow_datum_provider.batch import BatchConfig, BatchExecutor, TruthoundEngine

    executor = BatchExecutor(TruthoundEngine(), BatchConfig(batch_size=10000, max_workers=2))
    data = large_dataframe

    # Validation batch
    check_result = executor.check_batch(data, auto_schema=True)

    # Profiling batch
    profile_result = executor.profile_batch(data)

    # Learning batch
    learn_result = executor.learn_batch(data)

    assert check_result.status.name == "PASSED"
    profile = profile_result.value
    assert [c.name for c in profile.columns] == ["id", "amount", "kind"]  # each column once
    assert profile.row_count == 40_000
    assert profile.column("amount").max == 999.0
    schema = learn_result.value
    assert schema.row_count == 40_000
    assert schema["kind"].allowed_values == ["a", "b", "c", "d"]


def test_async_batch_operations(large_dataframe: Any) -> None:
    from airflow_datum_provider.batch import (
        AsyncBatchExecutor,
        BatchConfig,
        SyncEngineAsyncAdapter,
        TruthoundEngine,
    )

    config = BatchConfig(batch_size=10000, max_workers=4)
    async_engine = SyncEngineAsyncAdapter(TruthoundEngine())
    executor = AsyncBatchExecutor(async_engine, config)

    async def validate_large_data(data: Any) -> Any:
        result = await executor.check_batch(data, auto_schema=True)
        return result  # noqa: RET504 - as the page writes it

    result = asyncio.run(validate_large_data(large_dataframe))
    assert result.status.name == "PASSED"
    assert result.total_chunks == 4
    assert result.value.row_count == 40_000


def test_data_chunkers(large_dataframe: Any) -> None:
    from airflow_datum_provider.batch import DatasetListChunker, PolarsChunker, RowCountChunker

    # Row count-based chunking
    chunker = RowCountChunker(chunk_size=5000)
    assert [c.rows for c in chunker.chunks(large_dataframe)] == [5000] * 8

    # Polars-optimized chunking
    chunker = PolarsChunker(chunk_size=10000)
    assert [c.offset for c in chunker.chunks(large_dataframe)] == [0, 10000, 20000, 30000]

    # Dataset list chunking
    chunker = DatasetListChunker()
    parts = [large_dataframe.head(3), large_dataframe.tail(5)]
    assert [c.rows for c in chunker.chunks(parts)] == [3, 5]


def test_hooks(large_dataframe: Any, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_datum_provider.batch import (
        BatchConfig,
        BatchExecutor,
        CompositeBatchHook,
        LoggingBatchHook,
        MetricsBatchHook,
        TruthoundEngine,
    )

    engine = TruthoundEngine()
    config = BatchConfig(batch_size=10000, max_workers=4)
    data = large_dataframe

    logging_hook = LoggingBatchHook()
    metrics_hook = MetricsBatchHook()
    composite = CompositeBatchHook([logging_hook, metrics_hook])

    caplog.set_level(logging.INFO, logger="airflow_datum_provider.batch")
    executor = BatchExecutor(engine, config, hooks=[composite])
    result = executor.check_batch(data)

    # Query metrics
    print(metrics_hook.chunks_processed)
    print(metrics_hook.chunks_failed)
    print(metrics_hook.average_chunk_duration_ms)

    assert result.total_chunks == 4
    assert metrics_hook.chunks_processed == 4
    assert metrics_hook.chunks_failed == result.failed_chunks
    assert metrics_hook.average_chunk_duration_ms > 0
    assert "chunk 3:" in caplog.text


def test_exception_handling(capsys: pytest.CaptureFixture[str]) -> None:
    from airflow_datum_provider.batch import (
        AggregationError,
        BatchConfig,
        BatchExecutionError,
        BatchExecutor,
        ChunkingError,
        TruthoundEngine,
    )

    executor = BatchExecutor(TruthoundEngine(), BatchConfig())
    data = "not-a-table.xlsx"  # not a format the chunker can read

    try:
        result = executor.check_batch(data)
    except ChunkingError as e:
        print(f"Chunking failed: {e}")
    except BatchExecutionError as e:
        print(f"Batch execution failed: {e}")
    except AggregationError as e:
        print(f"Result aggregation failed: {e}")
    else:
        pytest.fail(f"expected a ChunkingError, got {result}")

    out = capsys.readouterr().out
    assert out.startswith("Chunking failed: 'not-a-table.xlsx': unsupported file type '.xlsx'")
