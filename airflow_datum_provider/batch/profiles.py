"""Per-column statistics that merge across chunks, and which of them are exact.

Merging chunk profiles gives the statistics of the whole table:

* **exact** (up to floating-point rounding): ``row_count``, ``null_count``, ``min``, ``max``,
  ``min_length``, ``max_length``, ``mean`` (weighted by each chunk's non-null count) and ``std``
  (sample standard deviation, combined with Chan et al.'s parallel variance formula);
  ``distinct_count`` when every chunk is low-cardinality (its distinct values are known, so the
  union is counted) -- then ``distinct_exact`` is true;
* **approximate**: ``distinct_count`` otherwise (the largest chunk's count: a lower bound; the
  true value is at most ``distinct_count_max``, the sum, capped at the row count);
* **bounded**: quantiles. A merged profile has no ``quantiles`` but ``quantile_bounds``: the
  whole column's p-quantile lies between the smallest and the largest chunk p-quantile (exact
  bounds, not an estimate).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

__all__ = [
    "APPROXIMATE_STATS",
    "EXACT_STATS",
    "ColumnProfile",
    "TableProfile",
    "merge_columns",
    "merge_profiles",
]

EXACT_STATS = (
    "row_count",
    "null_count",
    "min",
    "max",
    "mean",
    "std",
    "min_length",
    "max_length",
)
APPROXIMATE_STATS = ("distinct_count (unless distinct_exact)", "quantile_bounds")

#: Columns with at most this many distinct values keep them (``allowed_values``), as truthound.
CATEGORICAL_THRESHOLD = 20


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class ColumnProfile:
    """Statistics of one column (of one chunk, or merged over several)."""

    name: str
    dtype: str
    row_count: int
    null_count: int
    distinct_count: int
    distinct_count_max: int
    distinct_exact: bool = True
    min: float | None = None
    max: float | None = None
    mean: float | None = None
    std: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    quantiles: dict[str, float] | None = None
    allowed_values: tuple[Any, ...] | None = None
    quantile_bounds: dict[str, tuple[float, float]] | None = None

    @property
    def non_null(self) -> int:
        """Values that are not null."""
        return self.row_count - self.null_count

    @property
    def null_ratio(self) -> float:
        """Share of nulls (0.0 for an empty column)."""
        return self.null_count / self.row_count if self.row_count else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, ``None`` fields left out."""
        out = dataclasses.asdict(self)
        if self.allowed_values is not None:
            out["allowed_values"] = list(self.allowed_values)
        return {k: v for k, v in out.items() if v is not None}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TableProfile:
    """Statistics of a table: one :class:`ColumnProfile` per column, each column once."""

    row_count: int
    columns: tuple[ColumnProfile, ...]
    chunks: int = 1

    @property
    def column_count(self) -> int:
        """Number of columns."""
        return len(self.columns)

    def column(self, name: str) -> ColumnProfile:
        """The profile of column ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"no column {name!r}; columns: {', '.join(c.name for c in self.columns)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return {
            "row_count": self.row_count,
            "column_count": self.column_count,
            "chunks": self.chunks,
            "columns": [c.to_dict() for c in self.columns],
            "exact_stats": list(EXACT_STATS),
            "approximate_stats": list(APPROXIMATE_STATS),
        }


def _opt(values: Sequence[float | None], fn: Any) -> Any:
    present = [v for v in values if v is not None]
    return fn(present) if present else None


def merge_columns(parts: Sequence[ColumnProfile]) -> ColumnProfile:
    """Merge one column's chunk profiles (see the module docstring for exactness)."""
    if not parts:
        raise ValueError("merge_columns needs at least one profile")
    if len(parts) == 1:
        return parts[0]
    rows = sum(p.row_count for p in parts)
    nulls = sum(p.null_count for p in parts)
    dtypes = list(dict.fromkeys(p.dtype for p in parts))
    with_mean = [p for p in parts if p.mean is not None and p.non_null > 0]
    n = sum(p.non_null for p in with_mean)
    mean: float | None = None
    std: float | None = None
    if with_mean and n:
        means = [(float(p.mean or 0.0), p.non_null, p.std) for p in with_mean]
        total_mean = sum(m * k for m, k, _ in means) / n
        mean = total_mean
        if all(s is not None or k == 1 for _, k, s in means) and n > 1:
            m2 = 0.0
            for m, k, s in means:
                var = 0.0 if k == 1 or s is None else s**2
                m2 += var * (k - 1) + k * (m - total_mean) ** 2
            std = math.sqrt(m2 / (n - 1))
    allowed: tuple[Any, ...] | None = None
    exact = all(p.distinct_exact and p.allowed_values is not None for p in parts)
    if exact:
        union = list(dict.fromkeys(v for p in parts for v in p.allowed_values or ()))
        try:
            union.sort()
        except TypeError:
            pass
        distinct = len(union) + (1 if nulls else 0)
        allowed = tuple(union) if len(union) <= CATEGORICAL_THRESHOLD else None
        distinct_max = distinct
    else:
        distinct = max(p.distinct_count for p in parts)
        distinct_max = min(sum(p.distinct_count_max for p in parts), rows)
    bounds: dict[str, tuple[float, float]] | None = None
    keyed = [p for p in parts if p.non_null]
    if keyed and all(p.quantiles or p.quantile_bounds for p in keyed):
        bounds = {}
        for p in keyed:
            own = p.quantile_bounds or {k: (v, v) for k, v in (p.quantiles or {}).items()}
            for key, (lo, hi) in own.items():
                was = bounds.get(key)
                bounds[key] = (lo, hi) if was is None else (min(was[0], lo), max(was[1], hi))
    return ColumnProfile(
        name=parts[0].name,
        dtype=dtypes[0] if len(dtypes) == 1 else "|".join(dtypes),
        row_count=rows,
        null_count=nulls,
        distinct_count=distinct,
        distinct_count_max=distinct_max,
        distinct_exact=exact or distinct == distinct_max,
        min=_opt([p.min for p in parts], min),
        max=_opt([p.max for p in parts], max),
        mean=mean,
        std=std,
        min_length=_opt([p.min_length for p in parts], min),
        max_length=_opt([p.max_length for p in parts], max),
        quantiles=None,
        allowed_values=allowed,
        quantile_bounds=bounds,
    )


def merge_profiles(parts: Sequence[TableProfile]) -> TableProfile:
    """Merge chunk profiles into the table's profile: each column once, in first-seen order."""
    if not parts:
        return TableProfile(row_count=0, columns=(), chunks=0)
    by_name: dict[str, list[ColumnProfile]] = {}
    for part in parts:
        for col in part.columns:
            by_name.setdefault(col.name, []).append(col)
    return TableProfile(
        row_count=sum(p.row_count for p in parts),
        columns=tuple(merge_columns(cols) for cols in by_name.values()),
        chunks=sum(p.chunks for p in parts),
    )
