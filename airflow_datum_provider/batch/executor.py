"""BatchExecutor and AsyncBatchExecutor: run an engine over chunks, bounded and aggregated.

Scheduling (both executors): chunks are pulled from the chunker only when a worker is free, so
at most ``workers`` chunks are in flight (memory is bounded by workers x chunk size). After each
completion the executor checks, in this order: the chunk's status (fail-fast), per-chunk
deadlines, the total deadline.

* **Fail-fast** (``fail_fast=True`` or ``AggregationStrategy.FIRST_FAILURE``): the first chunk
  that ends ``FAILED`` or ``ERROR`` stops the scheduling of new chunks. Chunks already running
  finish and keep their real result; chunks not started end ``SKIPPED``. ``first_failure`` is the
  failed chunk with the lowest index. With ``fail_fast=True`` and an ``ERROR`` chunk, the call
  raises :class:`BatchExecutionError` whose ``__cause__`` is that chunk's original exception and
  whose ``chunk_index`` names it (``.result`` holds the partial batch result).
* **Per-chunk timeout**: a chunk still running after ``chunk_timeout_seconds`` ends ``ERROR``
  with a :class:`BatchTimeoutError`; its worker slot is given to the next chunk (a thread cannot
  be interrupted: it runs on, its result discarded; an async chunk is cancelled).
* **Total timeout**: at ``timeout_seconds`` the chunks still running end ``ERROR`` (timeout), the
  chunks not started end ``SKIPPED``, and ``timed_out`` is set.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import itertools
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from airflow_datum_provider.batch.chunkers import (
    Chunk,
    DataChunker,
    default_chunker,
    is_polars,
    scan_path,
)
from airflow_datum_provider.batch.config import (
    DEFAULT_BATCH_CONFIG,
    AggregationStrategy,
    BatchConfig,
)
from airflow_datum_provider.batch.hooks import BatchHook, call_hooks
from airflow_datum_provider.batch.results import BatchResult, CheckStatus, ChunkResult
from airflow_datum_provider.core.errors import (
    AggregationError,
    BatchExecutionError,
    BatchTimeoutError,
    ChunkingError,
)

__all__ = ["OPERATIONS", "AsyncBatchExecutor", "BatchExecutor", "aggregate", "status_of"]

OPERATIONS = ("check", "profile", "learn")
_END = object()


class _ChunkTimedOut(Exception):
    """An async chunk's own timeout scope expired (not a TimeoutError raised by the engine)."""


def status_of(value: Any) -> CheckStatus:
    """The status of an engine's return value: its ``status`` attribute, a bool, else PASSED."""
    status = getattr(value, "status", None)
    if isinstance(status, CheckStatus):
        return status
    name = getattr(status, "name", None)
    if isinstance(name, str) and name.upper() in CheckStatus.__members__:
        return CheckStatus[name.upper()]
    if isinstance(value, bool):
        return CheckStatus.PASSED if value else CheckStatus.FAILED
    return CheckStatus.PASSED


def _first(results: Sequence[ChunkResult], status: CheckStatus) -> ChunkResult | None:
    return next((c for c in results if c.status is status), None)


def aggregate(
    strategy: AggregationStrategy,
    results: Sequence[ChunkResult],
    merge: Callable[[list[Any]], Any] | None = None,
) -> tuple[CheckStatus, Any, ChunkResult | None]:
    """Aggregate chunk results: ``(status, value, first_failure)`` (see ``AggregationStrategy``).

    An ``ERROR`` chunk takes part in every strategy. ``SKIPPED`` chunks are left out of the BEST
    and MAJORITY votes unless every chunk was skipped; MAJORITY breaks ties toward the worse status.
    """
    ordered = sorted(results, key=lambda c: c.index)
    first_failure = next((c for c in ordered if c.status.is_failure), None)
    if not ordered:
        return (
            CheckStatus.PASSED,
            (merge([]) if merge and strategy is AggregationStrategy.MERGE else None),
            None,
        )
    ran = [c for c in ordered if c.status is not CheckStatus.SKIPPED] or ordered
    worst = max((c.status for c in ordered), key=lambda s: s.severity)
    if strategy is AggregationStrategy.WORST:
        chosen = _first(ordered, worst)
        return worst, chosen.value if chosen else None, first_failure
    if strategy is AggregationStrategy.BEST:
        best = min((c.status for c in ran), key=lambda s: s.severity)
        chosen = _first(ordered, best)
        return best, chosen.value if chosen else None, first_failure
    if strategy is AggregationStrategy.MAJORITY:
        counts = collections.Counter(c.status for c in ran)
        top = max(counts.values())
        majority = max((s for s, n in counts.items() if n == top), key=lambda s: s.severity)
        chosen = _first(ordered, majority)
        return majority, chosen.value if chosen else None, first_failure
    if strategy is AggregationStrategy.FIRST_FAILURE:
        if first_failure is not None:
            return first_failure.status, first_failure.value, first_failure
        return worst, None, None
    if strategy is AggregationStrategy.ALL:
        return worst, tuple(c.value for c in ordered), first_failure
    values = [c.value for c in ordered if c.status not in (CheckStatus.ERROR, CheckStatus.SKIPPED)]
    if merge is None:
        return worst, tuple(values), first_failure
    try:
        merged = merge(values)
    except Exception as exc:
        raise AggregationError(
            f"merging {len(values)} chunk result(s) failed: {type(exc).__name__}: {exc}",
            strategy=strategy.name,
        ) from exc
    return worst, merged, first_failure


@dataclasses.dataclass(slots=True)
class _Running:
    index: int
    offset: int | None
    rows: int | None
    started: float
    deadline: float | None


class _Pool:
    """Daemon worker threads; a thread whose chunk timed out is replaced, never joined."""

    def __init__(self, size: int) -> None:
        self._tasks: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._threads = 0
        for _ in range(size):
            self._add()

    def _add(self) -> None:
        self._threads += 1
        threading.Thread(target=self._loop, name="batch-worker", daemon=True).start()

    def _loop(self) -> None:
        while True:
            item = self._tasks.get()
            if item is None:
                return
            future, fn, data = item
            del item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(data))
                except BaseException as exc:
                    future.set_exception(exc)
            del future, fn, data

    def submit(self, fn: Callable[[Any], Any], data: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._tasks.put((future, fn, data))
        return future

    def replace_one(self) -> None:
        self._add()

    def shutdown(self) -> None:
        for _ in range(self._threads):
            self._tasks.put(None)


class _Run:
    """State shared by both executors for one batch: results, hooks, stop decision."""

    def __init__(
        self,
        executor: _Base,
        operation: str,
        chunker: DataChunker,
        total: int | None,
        rows: int | None,
    ) -> None:
        self.executor = executor
        self.config = executor.config
        self.operation = operation
        self.chunker = chunker
        self.total = total
        self.strategy, self.workers = self.config.resolve_execution(chunks=total, rows=rows)
        self.started = time.monotonic()
        self.deadline = (
            None
            if self.config.timeout_seconds is None
            else self.started + self.config.timeout_seconds
        )
        self.stop_on_failure = (
            self.config.fail_fast
            or self.config.aggregation_strategy is AggregationStrategy.FIRST_FAILURE
        )
        self.results: dict[int, ChunkResult] = {}
        self.stopped = False
        self.timed_out = False
        self.chunking_error: BaseException | None = None
        self.seen = 0

    @property
    def accepting(self) -> bool:
        return not (self.stopped or self.timed_out or self.chunking_error is not None)

    def chunk_deadline(self, now: float) -> float | None:
        seconds = self.config.chunk_timeout_seconds
        return None if seconds is None else now + seconds

    def started_chunk(self, chunk: Chunk) -> _Running:
        self.seen = max(self.seen, chunk.index + 1)
        now = time.monotonic()
        call_hooks(self.executor.hooks, "on_chunk_start", chunk.index, chunk.rows)
        return _Running(chunk.index, chunk.offset, chunk.rows, now, self.chunk_deadline(now))

    def record(self, result: ChunkResult) -> None:
        self.results[result.index] = result
        if result.status is CheckStatus.ERROR:
            call_hooks(self.executor.hooks, "on_chunk_error", result)
        else:
            call_hooks(self.executor.hooks, "on_chunk_complete", result)
        if self.stop_on_failure and result.status.is_failure:
            self.stopped = True

    def finished(
        self, run: _Running, *, value: Any = None, error: BaseException | None = None
    ) -> None:
        duration = time.monotonic() - run.started
        if error is not None:
            self.record(
                ChunkResult(
                    index=run.index,
                    status=CheckStatus.ERROR,
                    error=error,
                    rows=run.rows,
                    offset=run.offset,
                    duration_seconds=duration,
                    reason=f"{type(error).__name__}: {error}",
                )
            )
            return
        self.record(
            ChunkResult(
                index=run.index,
                status=status_of(value),
                value=value,
                rows=run.rows,
                offset=run.offset,
                duration_seconds=duration,
            )
        )

    def chunk_timed_out(self, run: _Running) -> None:
        seconds = self.config.chunk_timeout_seconds
        error = BatchTimeoutError(
            f"chunk {run.index} exceeded its timeout of {seconds}s",
            chunk_index=run.index,
            timeout_seconds=seconds,
        )
        self.finished(run, error=error)

    def total_timed_out(self, run: _Running) -> None:
        seconds = self.config.timeout_seconds
        error = BatchTimeoutError(
            f"the batch exceeded its total timeout of {seconds}s while chunk {run.index} was running",
            chunk_index=run.index,
            timeout_seconds=seconds,
        )
        self.finished(run, error=error)

    def next_wake(self, running: Sequence[_Running]) -> float | None:
        times = [r.deadline for r in running if r.deadline is not None]
        if self.deadline is not None:
            times.append(self.deadline)
        return min(times) if times else None

    def build(self) -> BatchResult:
        total = self.total if self.total is not None else self.seen
        stopped_early = self.stopped or self.timed_out
        reason = "not started: the batch stopped after a failed chunk"
        if self.timed_out:
            reason = "not started: the batch exceeded its total timeout"
        if self.chunking_error is not None:
            reason = "not started: chunking failed"
        for index in range(total):
            if index not in self.results:
                self.results[index] = ChunkResult(
                    index=index, status=CheckStatus.SKIPPED, reason=reason
                )
        ordered = tuple(self.results[i] for i in sorted(self.results))
        status, value, first_failure = aggregate(
            self.config.aggregation_strategy, ordered, self.executor.merger(self.operation)
        )
        result = BatchResult(
            operation=self.operation,
            status=status,
            aggregation_strategy=self.config.aggregation_strategy,
            execution_strategy=self.strategy,
            workers=self.workers,
            chunk_results=ordered,
            value=value,
            duration_seconds=time.monotonic() - self.started,
            stopped_early=stopped_early,
            timed_out=self.timed_out,
            first_failure=first_failure,
        )
        call_hooks(self.executor.hooks, "on_batch_complete", result)
        return result

    def raise_if_needed(self, result: BatchResult) -> None:
        if self.chunking_error is not None:
            error = self.chunking_error
            if isinstance(error, ChunkingError):
                error.result = result  # type: ignore[attr-defined]
                raise error
            exc = ChunkingError(f"chunking failed: {type(error).__name__}: {error}")
            exc.result = result  # type: ignore[attr-defined]
            raise exc from error
        failure = result.first_failure
        if self.config.fail_fast and failure is not None and failure.status is CheckStatus.ERROR:
            cause = failure.error
            exc2 = BatchExecutionError(
                f"chunk {failure.index} failed: {failure.reason}", chunk_index=failure.index
            )
            exc2.result = result  # type: ignore[attr-defined]
            exc2.error = cause  # type: ignore[attr-defined]
            raise exc2 from cause


class _Base:
    def __init__(
        self,
        engine: Any,
        config: BatchConfig | None = None,
        hooks: Sequence[BatchHook] = (),
        *,
        chunker: DataChunker | None = None,
    ) -> None:
        if config is None:
            config = DEFAULT_BATCH_CONFIG
        if not isinstance(config, BatchConfig):
            raise TypeError(f"config must be a BatchConfig, got {type(config).__name__}")
        self.engine = engine
        self.config = config
        self.hooks: tuple[BatchHook, ...] = tuple(hooks)
        self.chunker = chunker

    def merger(self, operation: str) -> Callable[[list[Any]], Any] | None:
        merge = getattr(self.engine, "merge", None)
        if not callable(merge):
            return None
        return lambda values: merge(operation, values)

    def _operation(self, operation: str) -> Callable[..., Any]:
        if operation not in OPERATIONS:
            raise BatchExecutionError(
                f"unknown operation {operation!r}; allowed: {', '.join(OPERATIONS)}"
            )
        fn: Callable[..., Any] | None = getattr(self.engine, operation, None)
        if not callable(fn):
            raise BatchExecutionError(
                f"engine {type(self.engine).__name__} has no {operation}() method"
            )
        return fn

    def _plan(
        self, data: Any, chunker: DataChunker | None
    ) -> tuple[DataChunker, int | None, int | None]:
        chunker = chunker or self.chunker or default_chunker(data, self.config.batch_size)
        try:
            return chunker, chunker.count(data), chunker.total_rows(data)
        except ChunkingError:
            raise
        except Exception as exc:
            raise ChunkingError(
                f"cannot size the input ({type(data).__name__}): {type(exc).__name__}: {exc}",
                data_type=type(data).__name__,
            ) from exc

    @staticmethod
    def _whole(data: Any) -> Any | None:
        """The input as one frame to learn a schema from in one pass, or None for a stream."""
        if isinstance(data, str) or hasattr(data, "__fspath__"):
            return scan_path(data)
        if is_polars(data):
            return data
        return None


class BatchExecutor(_Base):
    """Runs a synchronous engine's check / profile / learn over chunks of the data.

    ``auto_schema=True`` learns the schema **once** and checks every chunk against it: from the
    whole input in one streaming pass when it is a polars frame or a file path, else from the
    first chunk. Pass ``schema=`` to check against a known schema instead.
    """

    def check_batch(
        self,
        data: Any,
        *,
        auto_schema: bool = False,
        chunker: DataChunker | None = None,
        **kwargs: Any,
    ) -> BatchResult:
        """Validate every chunk; see the class and module docstrings."""
        if auto_schema and kwargs.get("schema") is None:
            return self._run("check", data, chunker, kwargs, learn_schema=True)
        return self._run("check", data, chunker, kwargs)

    def profile_batch(
        self, data: Any, *, chunker: DataChunker | None = None, **kwargs: Any
    ) -> BatchResult:
        """Profile every chunk; MERGE combines the per-column statistics."""
        return self._run("profile", data, chunker, kwargs)

    def learn_batch(
        self, data: Any, *, chunker: DataChunker | None = None, **kwargs: Any
    ) -> BatchResult:
        """Learn a schema from every chunk; MERGE combines them into one."""
        return self._run("learn", data, chunker, kwargs)

    def run_batch(
        self, operation: str, data: Any, *, chunker: DataChunker | None = None, **kwargs: Any
    ) -> BatchResult:
        """Run ``operation`` (``check``, ``profile`` or ``learn``) by name."""
        if operation == "check":
            auto = bool(kwargs.pop("auto_schema", False))
            return self.check_batch(data, auto_schema=auto, chunker=chunker, **kwargs)
        return self._run(operation, data, chunker, kwargs)

    def _learn_once(self, data: Any, iterator: Iterator[Chunk]) -> tuple[Any, Iterator[Chunk]]:
        learn = self._operation("learn")
        whole = self._whole(data)
        try:
            if whole is not None:
                return learn(whole), iterator
            first = next(iterator, None)
            if first is None:
                return None, iterator
            return learn(first.data), itertools.chain([first], iterator)
        except ChunkingError:
            raise
        except Exception as exc:
            raise BatchExecutionError(
                f"auto_schema: learning the schema failed: {type(exc).__name__}: {exc}"
            ) from exc

    def _run(
        self,
        operation: str,
        data: Any,
        chunker: DataChunker | None,
        kwargs: Mapping[str, Any],
        *,
        learn_schema: bool = False,
    ) -> BatchResult:
        fn = self._operation(operation)
        chunker, total, rows = self._plan(data, chunker)
        run = _Run(self, operation, chunker, total, rows)
        call_hooks(self.hooks, "on_batch_start", operation, total, self.config)
        iterator = chunker.chunks(data)
        extra = dict(kwargs)
        if learn_schema:
            schema, iterator = self._learn_once(data, iterator)
            extra["schema"] = schema

        def call(chunk_data: Any) -> Any:
            return fn(chunk_data, **extra)

        inline = (
            run.workers == 1 and run.deadline is None and self.config.chunk_timeout_seconds is None
        )
        if inline:
            self._inline(run, iterator, call)
        else:
            self._threaded(run, iterator, call)
        result = run.build()
        run.raise_if_needed(result)
        return result

    @staticmethod
    def _pull(run: _Run, iterator: Iterator[Chunk]) -> Chunk | None:
        try:
            return next(iterator)
        except StopIteration:
            return None
        except Exception as exc:
            run.chunking_error = exc
            return None

    def _inline(self, run: _Run, iterator: Iterator[Chunk], call: Callable[[Any], Any]) -> None:
        while run.accepting:
            chunk = self._pull(run, iterator)
            if chunk is None:
                return
            running = run.started_chunk(chunk)
            try:
                value = call(chunk.data)
            except Exception as exc:
                del chunk
                run.finished(running, error=exc)
                continue
            del chunk
            run.finished(running, value=value)

    def _threaded(self, run: _Run, iterator: Iterator[Chunk], call: Callable[[Any], Any]) -> None:
        pool = _Pool(run.workers)
        in_flight: dict[concurrent.futures.Future[Any], _Running] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and run.accepting and len(in_flight) < run.workers:
                    chunk = self._pull(run, iterator)
                    if chunk is None:
                        exhausted = True
                        break
                    running = run.started_chunk(chunk)
                    in_flight[pool.submit(call, chunk.data)] = running
                    del chunk
                if not in_flight:
                    return
                wake = run.next_wake(list(in_flight.values()))
                timeout = None if wake is None else max(0.0, wake - time.monotonic())
                done, _ = concurrent.futures.wait(
                    in_flight, timeout=timeout, return_when=concurrent.futures.FIRST_COMPLETED
                )
                for future in sorted(done, key=lambda f: in_flight[f].index):
                    running = in_flight.pop(future)
                    error = future.exception()
                    if error is not None:
                        run.finished(running, error=error)
                    else:
                        run.finished(running, value=future.result())
                now = time.monotonic()
                for future, running in sorted(in_flight.items(), key=lambda kv: kv[1].index):
                    if running.deadline is not None and now >= running.deadline:
                        del in_flight[future]
                        pool.replace_one()
                        run.chunk_timed_out(running)
                if run.deadline is not None and now >= run.deadline and in_flight:
                    run.timed_out = True
                    for running in sorted(in_flight.values(), key=lambda r: r.index):
                        run.total_timed_out(running)
                    in_flight.clear()
                    return
                if run.deadline is not None and now >= run.deadline and not exhausted:
                    run.timed_out = True
        finally:
            pool.shutdown()


class AsyncBatchExecutor(_Base):
    """Runs an async engine (``async def check/profile/learn``) over chunks on the event loop.

    Same scheduling, timeouts, fail-fast and aggregation as :class:`BatchExecutor`; a chunk that
    times out is cancelled. Chunks are cut in a worker thread (``asyncio.to_thread``) so reading a
    lazy frame never blocks the loop. Wrap a sync engine with ``SyncEngineAsyncAdapter``.
    """

    async def check_batch(
        self,
        data: Any,
        *,
        auto_schema: bool = False,
        chunker: DataChunker | None = None,
        **kwargs: Any,
    ) -> BatchResult:
        """Validate every chunk."""
        learn = auto_schema and kwargs.get("schema") is None
        return await self._run("check", data, chunker, kwargs, learn_schema=learn)

    async def profile_batch(
        self, data: Any, *, chunker: DataChunker | None = None, **kwargs: Any
    ) -> BatchResult:
        """Profile every chunk; MERGE combines the per-column statistics."""
        return await self._run("profile", data, chunker, kwargs)

    async def learn_batch(
        self, data: Any, *, chunker: DataChunker | None = None, **kwargs: Any
    ) -> BatchResult:
        """Learn a schema from every chunk; MERGE combines them into one."""
        return await self._run("learn", data, chunker, kwargs)

    async def _learn_once(
        self, data: Any, iterator: Iterator[Chunk]
    ) -> tuple[Any, Iterator[Chunk]]:
        learn = self._operation("learn")
        whole = await asyncio.to_thread(self._whole, data)
        try:
            if whole is not None:
                return await learn(whole), iterator
            first = await asyncio.to_thread(next, iterator, None)
            if first is None:
                return None, iterator
            return await learn(first.data), itertools.chain([first], iterator)
        except ChunkingError:
            raise
        except Exception as exc:
            raise BatchExecutionError(
                f"auto_schema: learning the schema failed: {type(exc).__name__}: {exc}"
            ) from exc

    async def _run(
        self,
        operation: str,
        data: Any,
        chunker: DataChunker | None,
        kwargs: Mapping[str, Any],
        *,
        learn_schema: bool = False,
    ) -> BatchResult:
        fn = self._operation(operation)
        planned, total, rows = await asyncio.to_thread(self._plan, data, chunker)
        run = _Run(self, operation, planned, total, rows)
        call_hooks(self.hooks, "on_batch_start", operation, total, self.config)
        iterator = planned.chunks(data)
        extra = dict(kwargs)
        if learn_schema:
            schema, iterator = await self._learn_once(data, iterator)
            extra["schema"] = schema
        chunk_timeout = self.config.chunk_timeout_seconds

        async def call(chunk_data: Any) -> Any:
            if chunk_timeout is None:
                return await fn(chunk_data, **extra)
            scope = asyncio.timeout(chunk_timeout)
            try:
                async with scope:
                    return await fn(chunk_data, **extra)
            except TimeoutError:
                if scope.expired():
                    raise _ChunkTimedOut from None
                raise

        in_flight: dict[asyncio.Task[Any], _Running] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and run.accepting and len(in_flight) < run.workers:
                    try:
                        chunk = await asyncio.to_thread(next, iterator, _END)
                    except Exception as exc:
                        run.chunking_error = exc
                        chunk = _END
                    if chunk is _END:
                        exhausted = True
                        break
                    assert isinstance(chunk, Chunk)
                    running = run.started_chunk(chunk)
                    in_flight[asyncio.ensure_future(call(chunk.data))] = running
                    del chunk
                if not in_flight:
                    break
                wake = run.next_wake([])
                timeout = None if wake is None else max(0.0, wake - time.monotonic())
                done, _ = await asyncio.wait(
                    in_flight, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                for task in sorted(done, key=lambda t: in_flight[t].index):
                    running = in_flight.pop(task)
                    error = task.exception()
                    if isinstance(error, _ChunkTimedOut):
                        run.chunk_timed_out(running)
                    elif error is not None:
                        run.finished(running, error=error)
                    else:
                        run.finished(running, value=task.result())
                now = time.monotonic()
                if run.deadline is not None and now >= run.deadline:
                    run.timed_out = True
                    for task, running in sorted(in_flight.items(), key=lambda kv: kv[1].index):
                        task.cancel()
                        run.total_timed_out(running)
                    if in_flight:
                        await asyncio.gather(*in_flight, return_exceptions=True)
                    in_flight.clear()
                    break
        finally:
            for task in in_flight:
                task.cancel()
        result = run.build()
        run.raise_if_needed(result)
        return result
