"""BatchExecutor: strategies, fail-fast, timeouts, hooks, streaming memory, ADAPTIVE, errors."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from airflow_datum_provider.batch import (
    AggregationError,
    AggregationStrategy,
    BatchConfig,
    BatchExecutionError,
    BatchExecutor,
    BatchHook,
    BatchTimeoutError,
    CheckStatus,
    ChunkingError,
    CompositeBatchHook,
    DatasetListChunker,
    ExecutionStrategy,
    MetricsBatchHook,
    RowCountChunker,
)
from airflow_datum_provider.core.errors import DatumError, SpecError
from tests.batch._engines import BAD, BLOCK, BOOM, WARN, RowEngine

P, W, F, E, S = (
    CheckStatus.PASSED,
    CheckStatus.WARNING,
    CheckStatus.FAILED,
    CheckStatus.ERROR,
    CheckStatus.SKIPPED,
)
TOKENS = {P: "ok", W: WARN, F: BAD, E: BOOM}


def _chunks(*statuses: CheckStatus) -> list[list[str]]:
    return [[f"row{i}", TOKENS[s]] for i, s in enumerate(statuses)]


def _config(strategy: AggregationStrategy, execution: ExecutionStrategy, **kw: Any) -> BatchConfig:
    return BatchConfig(
        max_workers=1 if execution is ExecutionStrategy.SEQUENTIAL else 3,
        execution_strategy=execution,
        aggregation_strategy=strategy,
        **kw,
    )


EXECUTIONS = [ExecutionStrategy.SEQUENTIAL, ExecutionStrategy.PARALLEL]

# (strategy, chunk statuses, expected aggregated status)
AGGREGATION_TABLE = [
    ("merge-all-pass", AggregationStrategy.MERGE, (P, P, P), P),
    ("merge-raise-visible", AggregationStrategy.MERGE, (P, E, P), E),
    ("merge-fail", AggregationStrategy.MERGE, (P, F, W), F),
    ("worst-warn", AggregationStrategy.WORST, (P, W, P), W),
    ("worst-raise", AggregationStrategy.WORST, (P, F, E), E),
    ("best-mixed", AggregationStrategy.BEST, (F, P, E), P),
    ("best-all-raise", AggregationStrategy.BEST, (E, E), E),
    ("majority-fail", AggregationStrategy.MAJORITY, (F, F, P), F),
    ("majority-raise-votes", AggregationStrategy.MAJORITY, (E, E, P), E),
    ("majority-tie-worse", AggregationStrategy.MAJORITY, (P, F), F),
    ("first-failure-raise", AggregationStrategy.FIRST_FAILURE, (P, E, F), E),
    ("first-failure-none", AggregationStrategy.FIRST_FAILURE, (P, W), W),
    ("all-raise", AggregationStrategy.ALL, (P, E, P), E),
    ("all-pass", AggregationStrategy.ALL, (P, P), P),
]


@pytest.mark.parametrize("execution", EXECUTIONS, ids=lambda e: e.name.lower())
@pytest.mark.parametrize(
    ("strategy", "statuses", "expected"),
    [row[1:] for row in AGGREGATION_TABLE],
    ids=[row[0] for row in AGGREGATION_TABLE],
)
def test_aggregation_strategies(
    strategy: AggregationStrategy,
    statuses: tuple[CheckStatus, ...],
    expected: CheckStatus,
    execution: ExecutionStrategy,
) -> None:
    engine = RowEngine()
    executor = BatchExecutor(engine, _config(strategy, execution), chunker=DatasetListChunker())
    result = executor.check_batch(_chunks(*statuses))

    assert result.status is expected
    assert result.total_chunks == len(statuses)
    raised = statuses.count(E)
    failed = statuses.count(F)
    if strategy is AggregationStrategy.FIRST_FAILURE and (raised or failed):
        first = next(i for i, s in enumerate(statuses) if s.is_failure)
        assert result.first_failure is not None
        assert result.first_failure.index == first
        # every chunk that ran keeps its own status; none relabelled
        ran = [c for c in result.chunk_results if c.status is not S]
        assert all(c.status is statuses[c.index] for c in ran)
        return
    # a chunk that raised is an ERROR chunk, counted as failed, under every strategy
    assert [c.status for c in result.chunk_results] == list(statuses)
    assert result.failed_chunks == raised + failed
    assert result.error_chunks == raised
    assert all(isinstance(c.error, ValueError) for c in result.errors)
    if strategy is AggregationStrategy.ALL:
        assert len(result.value) == len(statuses)
        assert [v is None for v in result.value] == [s is E for s in statuses]
    if strategy is AggregationStrategy.MERGE:
        assert result.value == 2 * (len(statuses) - raised)  # merged over chunks that returned


def test_fail_fast_parallel_keeps_the_original_exception_every_time() -> None:
    for attempt in range(50):
        engine = RowEngine()
        data = [[f"a{attempt}-{i}", BOOM if i == 5 else "ok"] for i in range(12)]
        config = BatchConfig(max_workers=4, execution_strategy=ExecutionStrategy.PARALLEL)
        executor = BatchExecutor(engine, config.with_fail_fast(True), chunker=DatasetListChunker())
        with pytest.raises(BatchExecutionError) as info:
            executor.check_batch(data)
        err = info.value
        assert err.chunk_index == 5
        (original,) = engine.raised.values()
        assert err.__cause__ is original
        assert err.error is original
        result = err.result
        assert result.first_failure.index == 5
        assert result.first_failure.error is original
        for chunk in result.chunk_results:
            if chunk.index == 5:
                assert chunk.status is E
            elif chunk.status is S:
                assert chunk.value is None
                assert chunk.index > 5 - 4
            else:  # completed chunks keep their real result
                assert chunk.status is P
                assert chunk.value.status is P
        assert engine.calls < 12 or result.skipped_chunks == 0


def test_fail_fast_stops_scheduling_sequentially() -> None:
    engine = RowEngine()
    data = _chunks(P, F, P, P)
    config = BatchConfig(max_workers=1, fail_fast=True)
    result = BatchExecutor(engine, config, chunker=DatasetListChunker()).check_batch(data)
    assert [c.status for c in result.chunk_results] == [P, F, S, S]
    assert engine.calls == 2
    assert result.stopped_early
    assert result.status is F


def test_per_chunk_timeout_fails_only_that_chunk() -> None:
    engine = RowEngine()
    data = [["a"], ["b", BLOCK], ["c"], ["d"]]
    config = BatchConfig(
        max_workers=2, execution_strategy=ExecutionStrategy.PARALLEL, chunk_timeout_seconds=1.0
    )
    try:
        result = BatchExecutor(engine, config, chunker=DatasetListChunker()).check_batch(data)
    finally:
        engine.release.set()
    assert [c.status for c in result.chunk_results] == [P, E, P, P]
    error = result.chunk_results[1].error
    assert isinstance(error, BatchTimeoutError)
    assert error.chunk_index == 1
    assert "exceeded its timeout of 1.0s" in str(error)
    assert not result.timed_out


def test_total_timeout_cancels_the_rest() -> None:
    engine = RowEngine()
    data = [["a", BLOCK], ["b"], ["c"], ["d"]]
    config = BatchConfig(max_workers=1, timeout_seconds=1.0)
    assert config.resolve_execution(chunks=4, rows=5)[0] is ExecutionStrategy.SEQUENTIAL
    try:
        result = BatchExecutor(engine, config, chunker=DatasetListChunker()).check_batch(data)
    finally:
        engine.release.set()
    assert result.timed_out
    assert result.stopped_early
    assert [c.status for c in result.chunk_results] == [E, S, S, S]
    assert "total timeout of 1.0s" in str(result.chunk_results[0].error)
    assert result.status is E
    assert engine.calls == 1


class _RaisingHook(BatchHook):
    def __init__(self) -> None:
        self.calls = 0

    def _boom(self, *args: Any) -> None:
        self.calls += 1
        raise RuntimeError("hook bug")

    on_batch_start = on_chunk_start = on_chunk_complete = on_chunk_error = on_batch_complete = _boom


@pytest.mark.parametrize("execution", EXECUTIONS, ids=lambda e: e.name.lower())
def test_a_raising_hook_is_isolated(
    execution: ExecutionStrategy, caplog: pytest.LogCaptureFixture
) -> None:
    bad = _RaisingHook()
    metrics = MetricsBatchHook()
    config = _config(AggregationStrategy.MERGE, execution)
    executor = BatchExecutor(
        RowEngine(),
        config,
        hooks=[bad, CompositeBatchHook([bad, metrics])],
        chunker=DatasetListChunker(),
    )
    with caplog.at_level(logging.WARNING):
        result = executor.check_batch(_chunks(P, P, F))
    assert [c.status for c in result.chunk_results] == [P, P, F]
    assert result.status is F
    assert metrics.chunks_processed == 3
    assert metrics.chunks_failed == 1
    assert bad.calls == 2 * (1 + 3 + 3 + 1)
    assert "hook bug" in caplog.text
    assert "ignored" in caplog.text


def test_streaming_ten_million_rows_keeps_memory_bounded() -> None:
    """10M rows from a generator: a chunk is cut only when a worker is free."""
    total, size, workers = 10_000_000, 250_000, 2
    pulled = [0]

    def rows() -> Iterator[int]:
        for i in range(total):
            pulled[0] = i + 1
            yield i

    seen: list[tuple[int, int]] = []

    class Engine:
        def check(self, data: list[int], **kw: Any) -> bool:
            seen.append((data[0] // size, pulled[0]))
            return len(data) == size

        profile = learn = check

    config = BatchConfig(max_workers=workers, execution_strategy=ExecutionStrategy.PARALLEL)
    result = BatchExecutor(Engine(), config, chunker=RowCountChunker(size)).check_batch(rows())
    assert result.total_chunks == total // size
    assert result.status is P
    assert result.total_rows == total
    # when chunk i runs, at most (i + workers + 1) chunks were ever read from the source
    assert all(read <= (index + workers + 1) * size for index, read in seen)


def test_polars_frame_of_ten_million_rows_is_sliced_not_copied() -> None:
    pl = pytest.importorskip("polars")
    psutil = pytest.importorskip("psutil")
    frame = pl.select(pl.int_range(0, 10_000_000, dtype=pl.Int64).alias("x"))  # 80 MB
    proc = psutil.Process()
    base = proc.memory_info().rss
    peak = [base]

    class Engine:
        def check(self, data: Any, **kw: Any) -> bool:
            peak[0] = max(peak[0], proc.memory_info().rss)
            return data["x"].min() >= 0

        profile = learn = check

    config = BatchConfig(
        batch_size=500_000, max_workers=2, execution_strategy=ExecutionStrategy.PARALLEL
    )
    result = BatchExecutor(Engine(), config).check_batch(frame)
    assert result.total_chunks == 20
    assert result.passed_chunks == 20
    # a copy of the frame would add 80 MB; slices are views
    assert peak[0] - base < 40 * 2**20, f"RSS grew by {(peak[0] - base) / 2**20:.0f} MiB"


# (max_workers, strategy, chunks, rows) -> resolved strategy, workers
ADAPTIVE_TABLE = [
    ("one-worker", 1, ExecutionStrategy.ADAPTIVE, 10, 1_000_000, ExecutionStrategy.SEQUENTIAL, 1),
    ("one-chunk", 4, ExecutionStrategy.ADAPTIVE, 1, 1_000_000, ExecutionStrategy.SEQUENTIAL, 1),
    ("small-data", 4, ExecutionStrategy.ADAPTIVE, 10, 49_999, ExecutionStrategy.SEQUENTIAL, 1),
    ("large-data", 4, ExecutionStrategy.ADAPTIVE, 10, 50_000, ExecutionStrategy.PARALLEL, 4),
    ("few-chunks", 8, ExecutionStrategy.ADAPTIVE, 3, 90_000, ExecutionStrategy.PARALLEL, 3),
    ("stream", 4, ExecutionStrategy.ADAPTIVE, None, None, ExecutionStrategy.PARALLEL, 4),
    ("forced-parallel", 4, ExecutionStrategy.PARALLEL, 10, 10, ExecutionStrategy.PARALLEL, 4),
    ("forced-seq", 4, ExecutionStrategy.SEQUENTIAL, 10, 10**9, ExecutionStrategy.SEQUENTIAL, 1),
]


@pytest.mark.parametrize(
    ("workers", "strategy", "chunks", "rows", "expected", "used"),
    [row[1:] for row in ADAPTIVE_TABLE],
    ids=[row[0] for row in ADAPTIVE_TABLE],
)
def test_adaptive_rule(
    workers: int,
    strategy: ExecutionStrategy,
    chunks: int | None,
    rows: int | None,
    expected: ExecutionStrategy,
    used: int,
) -> None:
    config = BatchConfig(max_workers=workers, execution_strategy=strategy)
    assert config.resolve_execution(chunks=chunks, rows=rows) == (expected, used)


def test_adaptive_result_reports_what_ran() -> None:
    executor = BatchExecutor(RowEngine(), BatchConfig(batch_size=10))
    small = executor.check_batch(["ok"] * 100)
    assert small.execution_strategy is ExecutionStrategy.SEQUENTIAL
    assert small.workers == 1
    big = BatchExecutor(RowEngine(), BatchConfig(batch_size=10_000)).check_batch(["ok"] * 60_000)
    assert big.execution_strategy is ExecutionStrategy.PARALLEL
    assert big.workers == 4


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"a": [1]}, "RowCountChunker cannot chunk a dict"),
        ("rows.txt", "unsupported file type '.txt'"),
        (42, "RowCountChunker cannot chunk a int: it is not iterable"),
        (None, "RowCountChunker cannot chunk a NoneType"),
    ],
    ids=["mapping", "bad-suffix", "not-iterable", "none"],
)
def test_bad_input_is_a_chunking_error(data: Any, message: str) -> None:
    with pytest.raises(ChunkingError, match=message) as info:
        BatchExecutor(RowEngine()).check_batch(data)
    assert isinstance(info.value, DatumError)
    assert isinstance(info.value, ValueError)


def test_a_failing_source_is_a_chunking_error_after_the_running_chunks() -> None:
    def rows() -> Iterator[str]:
        yield from ["ok"] * 25
        raise OSError("disk gone")

    with pytest.raises(ChunkingError, match="reading rows from offset 20 failed: OSError") as info:
        BatchExecutor(RowEngine(), BatchConfig(batch_size=10, max_workers=1)).check_batch(rows())
    assert [c.status for c in info.value.result.chunk_results] == [P, P]


def test_a_failing_merge_is_an_aggregation_error() -> None:
    class Engine(RowEngine):
        def merge(self, operation: str, values: list[Any]) -> Any:
            raise KeyError("no merge")

    with pytest.raises(AggregationError, match="merging 2 chunk result"):
        BatchExecutor(Engine(), chunker=DatasetListChunker()).check_batch(_chunks(P, P))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"batch_size": 0}, "batch_config.batch_size: must be a positive integer, got 0"),
        ({"max_workers": True}, "batch_config.max_workers: must be a positive integer"),
        ({"timeout_seconds": -1}, "batch_config.timeout_seconds: must be a positive number"),
        ({"chunk_timeout_seconds": float("inf")}, "batch_config.chunk_timeout_seconds"),
        ({"execution_strategy": "fast"}, "batch_config.execution_strategy: must be an"),
    ],
    ids=["size", "workers", "timeout", "chunk-timeout", "strategy"],
)
def test_bad_config_names_the_field(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        BatchConfig(**kwargs)


def test_config_is_frozen_and_round_trips() -> None:
    config = BatchConfig().with_timeout(30, chunk_timeout_seconds=5).with_max_workers(2)
    with pytest.raises(AttributeError):
        config.batch_size = 5  # type: ignore[misc]
    assert BatchConfig.from_dict(config.to_dict()) == config
    assert BatchConfig.from_dict({"aggregation_strategy": "worst"}).aggregation_strategy is (
        AggregationStrategy.WORST
    )
    with pytest.raises(SpecError, match=r"batch_config: unknown key\(s\) workers"):
        BatchConfig.from_dict({"workers": 3})
    with pytest.raises(SpecError, match="batch_config.execution_strategy: 'turbo' is not one of"):
        BatchConfig.from_dict({"execution_strategy": "turbo"})


def test_profile_and_learn_operations_merge() -> None:
    executor = BatchExecutor(RowEngine(), BatchConfig(batch_size=3))
    assert executor.profile_batch(list(range(10))).value == 10
    assert executor.learn_batch([1, 2, 2, 3, 1, 4]).value == {1, 2, 3, 4}
