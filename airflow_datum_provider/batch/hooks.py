"""Batch hooks: callbacks around a batch and its chunks; a hook that raises is logged, not fatal.

Hooks run on the thread (or event loop) that schedules the batch, never inside a chunk's worker,
so a slow or failing hook cannot change a chunk's result.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.batch.results import BatchResult, ChunkResult

__all__ = [
    "BatchHook",
    "CompositeBatchHook",
    "LoggingBatchHook",
    "MetricsBatchHook",
    "call_hooks",
]

log = logging.getLogger(__name__)


class BatchHook:
    """Base class with no-op callbacks; override the ones you need."""

    def on_batch_start(self, operation: str, total_chunks: int | None, config: Any) -> None:
        """Called once before the first chunk (``total_chunks`` is None for a stream)."""

    def on_chunk_start(self, index: int, rows: int | None) -> None:
        """Called when a chunk is handed to a worker."""

    def on_chunk_complete(self, result: ChunkResult) -> None:
        """Called when a chunk returned a value (its status may still be ``FAILED``)."""

    def on_chunk_error(self, result: ChunkResult) -> None:
        """Called when a chunk raised or timed out (``result.error`` holds the exception)."""

    def on_batch_complete(self, result: BatchResult) -> None:
        """Called once with the aggregated result."""


def call_hooks(hooks: Sequence[BatchHook], method: str, *args: Any) -> None:
    """Call ``method`` on every hook; an exception is logged with its traceback and swallowed."""
    for hook in hooks:
        try:
            getattr(hook, method)(*args)
        except Exception:
            log.warning(
                "batch hook %s.%s raised; ignored", type(hook).__name__, method, exc_info=True
            )


class LoggingBatchHook(BatchHook):
    """Logs the batch and every chunk to ``logger`` (any object with ``log`` and ``warning``)."""

    def __init__(self, logger: Any = None, *, level: int = logging.INFO) -> None:
        self.logger = logger or log
        self.level = level

    def _emit(self, message: str, *args: Any) -> None:
        getattr(self.logger, logging.getLevelName(self.level).lower(), self.logger.info)(
            message, *args
        )

    def on_batch_start(self, operation: str, total_chunks: int | None, config: Any) -> None:
        """Log the start with the chunk count."""
        self._emit(
            "batch %s: %s chunk(s)",
            operation,
            "?" if total_chunks is None else total_chunks,
        )

    def on_chunk_complete(self, result: ChunkResult) -> None:
        """Log one chunk's status and duration."""
        self._emit(
            "chunk %d: %s in %.3fs",
            result.index,
            result.status.name,
            result.duration_seconds,
        )

    def on_chunk_error(self, result: ChunkResult) -> None:
        """Log one chunk's error as a warning."""
        self.logger.warning(
            "chunk %d: %s: %s", result.index, type(result.error).__name__, result.error
        )

    def on_batch_complete(self, result: BatchResult) -> None:
        """Log the aggregated status and counts."""
        self._emit(
            "batch %s: %s (%d/%d chunks passed, %d failed) in %.3fs",
            result.operation,
            result.status.name,
            result.passed_chunks,
            result.total_chunks,
            result.failed_chunks,
            result.duration_seconds,
        )


class MetricsBatchHook(BatchHook):
    """Counts chunks and their durations; thread-safe; read the attributes after a batch."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.batches_started = 0
        self.batches_completed = 0
        self.chunks_processed = 0
        self.chunks_failed = 0
        self.rows_processed = 0
        self.total_chunk_duration_ms = 0.0

    @property
    def average_chunk_duration_ms(self) -> float:
        """Mean duration of the processed chunks in milliseconds (0.0 before any)."""
        with self._lock:
            if not self.chunks_processed:
                return 0.0
            return self.total_chunk_duration_ms / self.chunks_processed

    def _record(self, result: ChunkResult) -> None:
        with self._lock:
            self.chunks_processed += 1
            if result.status.is_failure:
                self.chunks_failed += 1
            self.rows_processed += result.rows or 0
            self.total_chunk_duration_ms += result.duration_seconds * 1000.0

    def on_batch_start(self, operation: str, total_chunks: int | None, config: Any) -> None:
        """Count the batch."""
        with self._lock:
            self.batches_started += 1

    def on_chunk_complete(self, result: ChunkResult) -> None:
        """Count a chunk that returned (a ``FAILED`` one counts in ``chunks_failed`` too)."""
        self._record(result)

    def on_chunk_error(self, result: ChunkResult) -> None:
        """Count a chunk that raised or timed out as processed and failed."""
        self._record(result)

    def on_batch_complete(self, result: BatchResult) -> None:
        """Count the completed batch."""
        with self._lock:
            self.batches_completed += 1

    def to_dict(self) -> dict[str, float | int]:
        """The counters as a dict."""
        return {
            "batches_started": self.batches_started,
            "batches_completed": self.batches_completed,
            "chunks_processed": self.chunks_processed,
            "chunks_failed": self.chunks_failed,
            "rows_processed": self.rows_processed,
            "average_chunk_duration_ms": self.average_chunk_duration_ms,
        }


class CompositeBatchHook(BatchHook):
    """Forwards every callback to several hooks; one hook raising does not stop the others."""

    def __init__(self, hooks: Iterable[BatchHook]) -> None:
        self.hooks = tuple(hooks)

    def on_batch_start(self, operation: str, total_chunks: int | None, config: Any) -> None:
        """Forward."""
        call_hooks(self.hooks, "on_batch_start", operation, total_chunks, config)

    def on_chunk_start(self, index: int, rows: int | None) -> None:
        """Forward."""
        call_hooks(self.hooks, "on_chunk_start", index, rows)

    def on_chunk_complete(self, result: ChunkResult) -> None:
        """Forward."""
        call_hooks(self.hooks, "on_chunk_complete", result)

    def on_chunk_error(self, result: ChunkResult) -> None:
        """Forward."""
        call_hooks(self.hooks, "on_chunk_error", result)

    def on_batch_complete(self, result: BatchResult) -> None:
        """Forward."""
        call_hooks(self.hooks, "on_batch_complete", result)
