"""AsyncBatchExecutor: aggregation, fail-fast, both timeouts (with real cancellation), hooks."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from airflow_datum_provider.batch import (
    AggregationStrategy,
    AsyncBatchExecutor,
    BatchConfig,
    BatchExecutionError,
    BatchTimeoutError,
    CheckStatus,
    DatasetListChunker,
    ExecutionStrategy,
    MetricsBatchHook,
    SyncEngineAsyncAdapter,
)
from tests.batch._engines import BAD, BLOCK, BOOM, AsyncRowEngine, RowEngine

P, F, E, S = CheckStatus.PASSED, CheckStatus.FAILED, CheckStatus.ERROR, CheckStatus.SKIPPED
PARALLEL = BatchConfig(max_workers=3, execution_strategy=ExecutionStrategy.PARALLEL)


def _run(executor: AsyncBatchExecutor, data: Any, **kw: Any) -> Any:
    return asyncio.run(executor.check_batch(data, **kw))


def test_async_counts_a_raising_chunk() -> None:
    executor = AsyncBatchExecutor(AsyncRowEngine(), PARALLEL, chunker=DatasetListChunker())
    result = _run(executor, [["a"], ["b", BOOM], ["c", BAD], ["d"]])
    assert [c.status for c in result.chunk_results] == [P, E, F, P]
    assert result.status is E
    assert result.failed_chunks == 2
    assert result.value == 1 + 2 + 1  # MERGE over the chunks that returned (row counts)


def test_async_fail_fast_keeps_the_original_exception() -> None:
    for _ in range(50):
        engine = AsyncRowEngine()
        executor = AsyncBatchExecutor(
            engine, PARALLEL.with_fail_fast(True), chunker=DatasetListChunker()
        )
        with pytest.raises(BatchExecutionError) as info:
            _run(executor, [[f"r{i}", BOOM if i == 4 else "ok"] for i in range(10)])
        (original,) = engine.sync.raised.values()
        assert info.value.__cause__ is original
        assert info.value.chunk_index == 4
        statuses = [c.status for c in info.value.result.chunk_results]
        assert statuses[4] is E
        assert set(statuses) <= {P, E, S}


def test_async_chunk_timeout_cancels_that_chunk() -> None:
    engine = AsyncRowEngine()
    config = PARALLEL.with_chunk_timeout(0.5)
    executor = AsyncBatchExecutor(engine, config, chunker=DatasetListChunker())
    result = _run(executor, [["a"], ["b", BLOCK], ["c"]])
    assert [c.status for c in result.chunk_results] == [P, E, P]
    assert isinstance(result.chunk_results[1].error, BatchTimeoutError)
    assert engine.cancelled == 1


def test_async_total_timeout_cancels_the_rest() -> None:
    engine = AsyncRowEngine()
    config = BatchConfig(max_workers=1, timeout_seconds=0.5)
    executor = AsyncBatchExecutor(engine, config, chunker=DatasetListChunker())
    result = _run(executor, [["a", BLOCK], ["b"], ["c"]])
    assert [c.status for c in result.chunk_results] == [E, S, S]
    assert result.timed_out
    assert engine.cancelled == 1


def test_sync_engine_adapter_and_hooks() -> None:
    metrics = MetricsBatchHook()
    config = BatchConfig(batch_size=2, aggregation_strategy=AggregationStrategy.ALL, max_workers=2)
    executor = AsyncBatchExecutor(SyncEngineAsyncAdapter(RowEngine()), config, hooks=[metrics])
    result = _run(executor, ["ok", "ok", BAD, "ok", "ok"])
    assert [c.status for c in result.chunk_results] == [P, F, P]
    assert len(result.value) == 3
    assert metrics.chunks_processed == 3
    assert metrics.chunks_failed == 1

    async def both() -> tuple[Any, Any]:
        return (
            await executor.profile_batch(list(range(7))),
            await executor.learn_batch([1, 1, 2]),
        )

    profile, learn = asyncio.run(both())
    assert profile.value == (2, 2, 2, 1)
    assert learn.value == ({1}, {2})
