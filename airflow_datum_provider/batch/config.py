"""Batch configuration: strategies, the frozen :class:`BatchConfig` and its presets."""

from __future__ import annotations

import dataclasses
import enum
import math

from airflow_datum_provider.core.errors import SpecError

__all__ = [
    "DEFAULT_BATCH_CONFIG",
    "FAIL_FAST_BATCH_CONFIG",
    "LARGE_DATA_BATCH_CONFIG",
    "PARALLEL_BATCH_CONFIG",
    "SEQUENTIAL_BATCH_CONFIG",
    "PRESETS",
    "AggregationStrategy",
    "BatchConfig",
    "ExecutionStrategy",
    "load_batch_config",
]


class ExecutionStrategy(enum.Enum):
    """How chunks are scheduled.

    ``ADAPTIVE`` resolves per run (:meth:`BatchConfig.resolve_execution`): sequential when there
    is one worker, at most one chunk, or fewer than ``adaptive_min_rows`` rows in all; parallel
    otherwise, with ``min(max_workers, chunks)`` workers. A stream of unknown length with two or
    more workers runs in parallel.
    """

    SEQUENTIAL = "sequential"
    PARALLEL = "parallel"
    ADAPTIVE = "adaptive"


class AggregationStrategy(enum.Enum):
    """How chunk results become one batch result (see ``docs/batch.md``).

    A chunk that raised or timed out is an ``ERROR`` chunk under every strategy: it counts in
    ``failed_chunks`` and takes part in every vote; it is never dropped.
    """

    MERGE = "merge"
    WORST = "worst"
    BEST = "best"
    MAJORITY = "majority"
    FIRST_FAILURE = "first_failure"
    ALL = "all"


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"must be a positive integer, got {value!r}", field=f"batch_config.{name}")


def _timeout(name: str, value: object) -> None:
    if value is None:
        return
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise SpecError(
            f"must be a positive number of seconds or None, got {value!r}",
            field=f"batch_config.{name}",
        )


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class BatchConfig:
    """How a batch is chunked, scheduled, bounded and aggregated; builders return new configs.

    ``timeout_seconds`` bounds the whole batch (chunks still running then end ``ERROR`` with a
    :class:`~airflow_datum_provider.core.errors.BatchTimeoutError`, chunks not started are
    ``SKIPPED``); ``chunk_timeout_seconds`` bounds each chunk. A timed-out chunk's thread cannot be
    interrupted: the executor stops waiting for it and its result is discarded.
    """

    batch_size: int = 1000
    max_workers: int = 4
    execution_strategy: ExecutionStrategy = ExecutionStrategy.ADAPTIVE
    aggregation_strategy: AggregationStrategy = AggregationStrategy.MERGE
    fail_fast: bool = False
    timeout_seconds: float | None = None
    chunk_timeout_seconds: float | None = None
    adaptive_min_rows: int = 50_000

    def __post_init__(self) -> None:
        _positive_int("batch_size", self.batch_size)
        _positive_int("max_workers", self.max_workers)
        _positive_int("adaptive_min_rows", self.adaptive_min_rows)
        if not isinstance(self.execution_strategy, ExecutionStrategy):
            allowed = ", ".join(s.name for s in ExecutionStrategy)
            raise SpecError(
                f"must be an ExecutionStrategy ({allowed}), got {self.execution_strategy!r}",
                field="batch_config.execution_strategy",
            )
        if not isinstance(self.aggregation_strategy, AggregationStrategy):
            allowed = ", ".join(s.name for s in AggregationStrategy)
            raise SpecError(
                f"must be an AggregationStrategy ({allowed}), got {self.aggregation_strategy!r}",
                field="batch_config.aggregation_strategy",
            )
        if not isinstance(self.fail_fast, bool):
            raise SpecError(
                f"must be true or false, got {self.fail_fast!r}", field="batch_config.fail_fast"
            )
        _timeout("timeout_seconds", self.timeout_seconds)
        _timeout("chunk_timeout_seconds", self.chunk_timeout_seconds)

    def with_batch_size(self, batch_size: int) -> BatchConfig:
        """Return a copy with ``batch_size`` rows per chunk."""
        return dataclasses.replace(self, batch_size=batch_size)

    def with_max_workers(self, max_workers: int) -> BatchConfig:
        """Return a copy with at most ``max_workers`` chunks in flight."""
        return dataclasses.replace(self, max_workers=max_workers)

    def with_execution_strategy(self, strategy: ExecutionStrategy) -> BatchConfig:
        """Return a copy with another execution strategy."""
        return dataclasses.replace(self, execution_strategy=strategy)

    def with_aggregation_strategy(self, strategy: AggregationStrategy) -> BatchConfig:
        """Return a copy with another aggregation strategy."""
        return dataclasses.replace(self, aggregation_strategy=strategy)

    def with_fail_fast(self, fail_fast: bool = True) -> BatchConfig:
        """Return a copy that stops at the first failed chunk (or not)."""
        return dataclasses.replace(self, fail_fast=fail_fast)

    def with_timeout(
        self, timeout_seconds: float | None, *, chunk_timeout_seconds: float | None = None
    ) -> BatchConfig:
        """Return a copy with a total timeout (and, if given, a per-chunk timeout)."""
        chunk = (
            self.chunk_timeout_seconds if chunk_timeout_seconds is None else chunk_timeout_seconds
        )
        return dataclasses.replace(
            self, timeout_seconds=timeout_seconds, chunk_timeout_seconds=chunk
        )

    def with_chunk_timeout(self, chunk_timeout_seconds: float | None) -> BatchConfig:
        """Return a copy with a per-chunk timeout."""
        return dataclasses.replace(self, chunk_timeout_seconds=chunk_timeout_seconds)

    def resolve_execution(
        self, *, chunks: int | None, rows: int | None
    ) -> tuple[ExecutionStrategy, int]:
        """Return the strategy actually used and the number of workers, for this data size."""
        if self.execution_strategy is ExecutionStrategy.SEQUENTIAL or self.max_workers == 1:
            return ExecutionStrategy.SEQUENTIAL, 1
        workers = self.max_workers if chunks is None else max(1, min(self.max_workers, chunks))
        if self.execution_strategy is ExecutionStrategy.PARALLEL:
            return ExecutionStrategy.PARALLEL, workers
        if (chunks is not None and chunks <= 1) or (
            rows is not None and rows < self.adaptive_min_rows
        ):
            return ExecutionStrategy.SEQUENTIAL, 1
        return ExecutionStrategy.PARALLEL, workers

    def to_dict(self) -> dict[str, object]:
        """Return a JSON-able form (enum values as their names)."""
        return {
            "batch_size": self.batch_size,
            "max_workers": self.max_workers,
            "execution_strategy": self.execution_strategy.name,
            "aggregation_strategy": self.aggregation_strategy.name,
            "fail_fast": self.fail_fast,
            "timeout_seconds": self.timeout_seconds,
            "chunk_timeout_seconds": self.chunk_timeout_seconds,
            "adaptive_min_rows": self.adaptive_min_rows,
        }

    @classmethod
    def from_dict(cls, data: object, *, field: str = "batch_config") -> BatchConfig:
        """Build a config from JSON/YAML (strategy names case-insensitive); unknown keys refused."""
        if not isinstance(data, dict):
            raise SpecError(f"must be a mapping, got {type(data).__name__}", field=field)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(str(k) for k in data if k not in names)
        if unknown:
            raise SpecError(
                f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(names))}",
                field=field,
            )
        kwargs = dict(data)
        for key, enum_cls in (
            ("execution_strategy", ExecutionStrategy),
            ("aggregation_strategy", AggregationStrategy),
        ):
            value = kwargs.get(key)
            if isinstance(value, str):
                try:
                    kwargs[key] = enum_cls[value.upper()]
                except KeyError:
                    allowed = ", ".join(s.name for s in enum_cls)  # type: ignore[attr-defined]
                    raise SpecError(
                        f"{value!r} is not one of {allowed}", field=f"{field}.{key}"
                    ) from None
        return cls(**kwargs)


DEFAULT_BATCH_CONFIG = BatchConfig()
PARALLEL_BATCH_CONFIG = BatchConfig(max_workers=8, execution_strategy=ExecutionStrategy.PARALLEL)
SEQUENTIAL_BATCH_CONFIG = BatchConfig(
    max_workers=1, execution_strategy=ExecutionStrategy.SEQUENTIAL
)
FAIL_FAST_BATCH_CONFIG = BatchConfig(fail_fast=True)
LARGE_DATA_BATCH_CONFIG = BatchConfig(batch_size=50_000)

PRESETS: dict[str, BatchConfig] = {
    "default": DEFAULT_BATCH_CONFIG,
    "parallel": PARALLEL_BATCH_CONFIG,
    "sequential": SEQUENTIAL_BATCH_CONFIG,
    "fail-fast": FAIL_FAST_BATCH_CONFIG,
    "large-data": LARGE_DATA_BATCH_CONFIG,
}
"""The presets by the names ``datumctl run pipeline --batch-config NAME`` takes."""


def load_batch_config(value: str, *, field: str = "batch_config") -> BatchConfig:
    """A config from a preset name (:data:`PRESETS`), a JSON/YAML file, or inline JSON/YAML.

    A mapping (from the file or inline) holds :class:`BatchConfig`'s fields; a ``preset`` key
    starts from that preset, the other keys override it (``{"preset": "parallel",
    "max_workers": 2}``). Anything else is a one-line :class:`SpecError` naming the field.
    """
    import os

    from airflow_datum_provider.core._documents import load_documents

    text = value.strip()
    preset = PRESETS.get(text.lower().replace("_", "-"))
    if preset is not None:
        return preset
    names = ", ".join(PRESETS)
    if os.path.isfile(value):
        try:
            with open(value, encoding="utf-8") as fh:
                text = fh.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read {value!r}: {exc}", field=field) from None
        where = f"{field} ({value})"
    elif text.startswith("{"):
        where = field
    else:
        raise SpecError(
            f"{value[:80]!r} is not a preset ({names}), a file, or a JSON/YAML mapping",
            field=field,
        )
    documents = load_documents(text)
    if len(documents) != 1 or not isinstance(documents[0], dict):
        raise SpecError("must be one mapping of BatchConfig fields", field=where)
    data = dict(documents[0])
    base = data.pop("preset", None)
    if base is None:
        return BatchConfig.from_dict(data, field=field)
    start = PRESETS.get(str(base).lower().replace("_", "-"))
    if start is None:
        raise SpecError(f"{str(base)[:80]!r} is not one of {names}", field=f"{field}.preset")
    merged = start.to_dict()
    merged.update(data)
    return BatchConfig.from_dict(merged, field=field)
