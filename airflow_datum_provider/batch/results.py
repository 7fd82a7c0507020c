"""Chunk and batch results, and the status vocabulary they share."""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

from airflow_datum_provider.batch.config import AggregationStrategy, ExecutionStrategy

__all__ = ["BatchResult", "CheckStatus", "ChunkResult"]


class CheckStatus(enum.Enum):
    """The status of one chunk or of a whole batch, ordered from best to worst by ``severity``.

    ``ERROR`` is a chunk that raised or timed out; ``FAILED`` is a chunk whose data failed the
    check; ``SKIPPED`` is a chunk never run (fail-fast or the total timeout stopped the batch).
    """

    PASSED = "passed"
    SKIPPED = "skipped"
    WARNING = "warning"
    FAILED = "failed"
    ERROR = "error"

    @property
    def severity(self) -> int:
        """Rank from 0 (``PASSED``) to 4 (``ERROR``); WORST picks the highest, BEST the lowest."""
        return _SEVERITY[self]

    @property
    def is_failure(self) -> bool:
        """True for ``FAILED`` and ``ERROR``."""
        return self in (CheckStatus.FAILED, CheckStatus.ERROR)


_SEVERITY = {status: rank for rank, status in enumerate(CheckStatus)}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ChunkResult:
    """What happened to one chunk: its status, the engine's value or the exception it raised."""

    index: int
    status: CheckStatus
    value: Any = None
    error: BaseException | None = None
    rows: int | None = None
    offset: int | None = None
    duration_seconds: float = 0.0
    reason: str = ""

    @property
    def passed(self) -> bool:
        """True when the chunk passed (``PASSED`` or ``WARNING``)."""
        return self.status in (CheckStatus.PASSED, CheckStatus.WARNING)

    def to_dict(self) -> dict[str, Any]:
        """A compact JSON-able form (no value; the error as ``Type: message``)."""
        out: dict[str, Any] = {
            "index": self.index,
            "status": self.status.name,
            "duration_seconds": round(self.duration_seconds, 6),
        }
        if self.rows is not None:
            out["rows"] = self.rows
        if self.offset is not None:
            out["offset"] = self.offset
        if self.error is not None:
            out["error"] = f"{type(self.error).__name__}: {self.error}"[:500]
        if self.reason:
            out["reason"] = self.reason[:500]
        return out


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """The aggregated result of one batch operation.

    ``value`` depends on the aggregation strategy: MERGE holds the engine's merged value (of the
    chunks that returned one), WORST / BEST / MAJORITY / FIRST_FAILURE the value of the first chunk
    with the chosen status, ALL a tuple of every chunk's value in chunk order (``None`` where a
    chunk raised or was skipped). ``chunk_results`` always holds every chunk, in index order.
    """

    operation: str
    status: CheckStatus
    aggregation_strategy: AggregationStrategy
    execution_strategy: ExecutionStrategy
    workers: int
    chunk_results: tuple[ChunkResult, ...]
    value: Any = None
    duration_seconds: float = 0.0
    stopped_early: bool = False
    timed_out: bool = False
    first_failure: ChunkResult | None = None

    @property
    def total_chunks(self) -> int:
        """Every chunk of the batch, run or skipped."""
        return len(self.chunk_results)

    @property
    def passed_chunks(self) -> int:
        """Chunks that passed (``PASSED`` or ``WARNING``)."""
        return sum(1 for c in self.chunk_results if c.passed)

    @property
    def failed_chunks(self) -> int:
        """Chunks that failed their check or raised / timed out (``FAILED`` + ``ERROR``)."""
        return sum(1 for c in self.chunk_results if c.status.is_failure)

    @property
    def error_chunks(self) -> int:
        """Chunks that raised or timed out."""
        return sum(1 for c in self.chunk_results if c.status is CheckStatus.ERROR)

    @property
    def warning_chunks(self) -> int:
        """Chunks that passed with warnings."""
        return sum(1 for c in self.chunk_results if c.status is CheckStatus.WARNING)

    @property
    def skipped_chunks(self) -> int:
        """Chunks never run (fail-fast, total timeout)."""
        return sum(1 for c in self.chunk_results if c.status is CheckStatus.SKIPPED)

    @property
    def total_rows(self) -> int:
        """Rows of the chunks that were run (chunks of unknown size count 0)."""
        return sum(c.rows or 0 for c in self.chunk_results if c.status is not CheckStatus.SKIPPED)

    @property
    def results(self) -> tuple[Any, ...]:
        """Every chunk's value in chunk order (``None`` for a chunk without one)."""
        return tuple(c.value for c in self.chunk_results)

    @property
    def errors(self) -> tuple[ChunkResult, ...]:
        """The chunks that raised or timed out."""
        return tuple(c for c in self.chunk_results if c.status is CheckStatus.ERROR)

    @property
    def is_success(self) -> bool:
        """True when the aggregated status is ``PASSED`` or ``WARNING``."""
        return self.status in (CheckStatus.PASSED, CheckStatus.WARNING)

    def to_summary(self, *, max_failures: int = 20) -> dict[str, Any]:
        """A compact JSON-able summary for XCom or a log line: counts, status, first failures."""
        failures = [c.to_dict() for c in self.chunk_results if c.status.is_failure]
        return {
            "operation": self.operation,
            "status": self.status.name,
            "aggregation_strategy": self.aggregation_strategy.name,
            "execution_strategy": self.execution_strategy.name,
            "workers": self.workers,
            "total_chunks": self.total_chunks,
            "passed_chunks": self.passed_chunks,
            "failed_chunks": self.failed_chunks,
            "error_chunks": self.error_chunks,
            "warning_chunks": self.warning_chunks,
            "skipped_chunks": self.skipped_chunks,
            "total_rows": self.total_rows,
            "duration_seconds": round(self.duration_seconds, 6),
            "stopped_early": self.stopped_early,
            "timed_out": self.timed_out,
            "first_failure": self.first_failure.to_dict() if self.first_failure else None,
            "failures": failures[:max_failures],
            "failures_omitted": max(0, len(failures) - max_failures),
        }
