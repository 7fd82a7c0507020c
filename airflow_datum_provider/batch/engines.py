"""Engines: what the executor runs on each chunk (check / profile / learn), sync or async.

:class:`TruthoundEngine` runs the real ``truthound`` package (extra ``[quality]``); it and polars
are imported on first use, never when this module is imported.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

from airflow_datum_provider.batch.profiles import (
    CATEGORICAL_THRESHOLD,
    ColumnProfile,
    TableProfile,
    merge_profiles,
)
from airflow_datum_provider.batch.results import CheckStatus
from airflow_datum_provider.core.errors import BatchExecutionError

__all__ = [
    "AsyncEngine",
    "CheckIssue",
    "CheckReport",
    "Engine",
    "SyncEngineAsyncAdapter",
    "TruthoundEngine",
]


@runtime_checkable
class Engine(Protocol):
    """A data-quality engine: three operations on one chunk, plus an optional ``merge``.

    ``merge(operation, values)`` (optional) combines the chunks' values for the MERGE strategy;
    without it the merged value is the tuple of values. A value's ``status`` attribute (a
    :class:`CheckStatus`) or a bool gives the chunk's status; anything else counts as PASSED.
    """

    def check(self, data: Any, **kwargs: Any) -> Any:
        """Validate ``data``; ``schema=`` / ``auto_schema=`` as the engine understands them."""
        ...

    def profile(self, data: Any, **kwargs: Any) -> Any:
        """Compute statistics of ``data``."""
        ...

    def learn(self, data: Any, **kwargs: Any) -> Any:
        """Learn a schema from ``data``."""
        ...


@runtime_checkable
class AsyncEngine(Protocol):
    """The async form of :class:`Engine`."""

    async def check(self, data: Any, **kwargs: Any) -> Any:
        """Validate ``data``."""
        ...

    async def profile(self, data: Any, **kwargs: Any) -> Any:
        """Compute statistics of ``data``."""
        ...

    async def learn(self, data: Any, **kwargs: Any) -> Any:
        """Learn a schema from ``data``."""
        ...


class SyncEngineAsyncAdapter:
    """Makes a sync :class:`Engine` awaitable: each call runs in a thread (``asyncio.to_thread``).

    A cancelled call stops being awaited at once; the thread itself runs to its end.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    async def check(self, data: Any, **kwargs: Any) -> Any:
        """Run the engine's ``check`` in a thread."""
        return await asyncio.to_thread(self.engine.check, data, **kwargs)

    async def profile(self, data: Any, **kwargs: Any) -> Any:
        """Run the engine's ``profile`` in a thread."""
        return await asyncio.to_thread(self.engine.profile, data, **kwargs)

    async def learn(self, data: Any, **kwargs: Any) -> Any:
        """Run the engine's ``learn`` in a thread."""
        return await asyncio.to_thread(self.engine.learn, data, **kwargs)

    def merge(self, operation: str, values: list[Any]) -> Any:
        """Delegate to the engine's ``merge`` (a tuple of values when it has none)."""
        merge = getattr(self.engine, "merge", None)
        return merge(operation, values) if callable(merge) else tuple(values)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CheckIssue:
    """One kind of problem found in a column: ``count`` rows, at ``severity``."""

    column: str
    issue_type: str
    count: int
    severity: str
    details: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class CheckReport:
    """The result of a check over one chunk or, merged, over a whole batch."""

    status: CheckStatus
    row_count: int
    column_count: int
    issues: tuple[CheckIssue, ...] = ()
    execution_errors: tuple[str, ...] = ()
    chunks: int = 1
    raw: Any = dataclasses.field(default=None, compare=False, repr=False)

    @property
    def issue_count(self) -> int:
        """Number of distinct (column, issue type, severity) findings."""
        return len(self.issues)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, without the raw truthound result."""
        return {
            "status": self.status.name,
            "row_count": self.row_count,
            "column_count": self.column_count,
            "chunks": self.chunks,
            "issues": [i.to_dict() for i in self.issues],
            "execution_errors": list(self.execution_errors),
        }


def merge_reports(reports: Sequence[CheckReport]) -> CheckReport:
    """Merge chunk reports: counts of the same (column, issue type, severity) are added."""
    if not reports:
        return CheckReport(status=CheckStatus.PASSED, row_count=0, column_count=0, chunks=0)
    merged: dict[tuple[str, str, str], CheckIssue] = {}
    for report in reports:
        for issue in report.issues:
            key = (issue.column, issue.issue_type, issue.severity)
            seen = merged.get(key)
            merged[key] = (
                issue if seen is None else dataclasses.replace(seen, count=seen.count + issue.count)
            )
    return CheckReport(
        status=max((r.status for r in reports), key=lambda s: s.severity),
        row_count=sum(r.row_count for r in reports),
        column_count=max(r.column_count for r in reports),
        issues=tuple(merged.values()),
        execution_errors=tuple(e for r in reports for e in r.execution_errors),
        chunks=sum(r.chunks for r in reports),
    )


def _truthound() -> Any:
    try:
        import truthound
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise BatchExecutionError(
            "TruthoundEngine needs the truthound package: pip install 'airflow-datum-provider[quality]'"
        ) from exc
    return truthound


def _profile_from_schema(schema: Any) -> TableProfile:
    rows = int(schema.row_count or 0)
    columns = []
    for col in schema.columns.values():
        nulls = round((col.null_ratio or 0.0) * rows)
        distinct = round((col.unique_ratio or 0.0) * rows)
        allowed = tuple(col.allowed_values) if col.allowed_values is not None else None
        exact_distinct = allowed is not None or distinct <= CATEGORICAL_THRESHOLD
        columns.append(
            ColumnProfile(
                name=col.name,
                dtype=col.dtype,
                row_count=rows,
                null_count=nulls,
                distinct_count=distinct,
                distinct_count_max=distinct,
                distinct_exact=True,
                min=col.min_value,
                max=col.max_value,
                mean=col.mean,
                std=col.std,
                min_length=col.min_length,
                max_length=col.max_length,
                quantiles=dict(col.quantiles) if col.quantiles else None,
                allowed_values=allowed if exact_distinct else None,
            )
        )
    return TableProfile(row_count=rows, columns=tuple(columns))


def _schema_from_profile(profile: TableProfile) -> Any:
    from truthound.schema import ColumnSchema, Schema

    columns = {}
    for col in profile.columns:
        unique = col.distinct_exact and col.null_count == 0 and col.distinct_count == col.row_count
        columns[col.name] = ColumnSchema(
            name=col.name,
            dtype=col.dtype,
            nullable=col.null_count > 0,
            unique=unique and col.row_count > 0,
            min_value=col.min,
            max_value=col.max,
            allowed_values=list(col.allowed_values) if col.allowed_values is not None else None,
            min_length=col.min_length,
            max_length=col.max_length,
            null_ratio=col.null_ratio,
            unique_ratio=col.distinct_count / col.row_count if col.row_count else 0.0,
            mean=col.mean,
            std=col.std,
            quantiles=col.quantiles,
        )
    return Schema(columns=columns, row_count=profile.row_count)


class TruthoundEngine:
    """Data-quality engine on the ``truthound`` package (``pip install '...[quality]'``).

    * ``check(chunk, schema=None, auto_schema=False)`` runs truthound's validation kernel
      (``ValidationSuite`` -> ``ScanPlanner`` -> ``ValidationRuntime``) on the chunk, with no
      truthound workspace: nothing is written to disk. Without ``validators`` it is truthound's
      auto-suite (null / type / range checks, plus schema conformance when a schema is given).
      Issues of a severity in ``warning_severities`` make the chunk ``WARNING``, any other issue
      ``FAILED``, a validator that crashed ``ERROR``.
    * ``learn`` is ``truthound.learn``; ``profile`` is the per-column statistics of that pass as a
      :class:`TableProfile`; ``merge`` combines checks (issue counts added), profiles and schemas
      (see :mod:`airflow_datum_provider.batch.profiles` for which statistics are exact).
    """

    name = "truthound"

    def __init__(
        self,
        *,
        validators: Sequence[Any] | None = None,
        validator_config: dict[str, dict[str, Any]] | None = None,
        min_severity: str | None = None,
        warning_severities: Sequence[str] = ("low",),
        exclude_columns: Sequence[str] | None = None,
    ) -> None:
        self.validators = list(validators) if validators is not None else None
        self.validator_config = validator_config
        self.min_severity = min_severity
        self.warning_severities = frozenset(s.lower() for s in warning_severities)
        self.exclude_columns = list(exclude_columns) if exclude_columns else None

    def check(
        self, data: Any, *, schema: Any = None, auto_schema: bool = False, **kwargs: Any
    ) -> CheckReport:
        """Validate one chunk (``auto_schema`` here learns from this chunk alone)."""
        _truthound()
        from truthound.core import (
            ScanPlanner,
            ValidationRuntime,
            ValidationSuite,
            build_validation_asset,
        )

        if schema is None and auto_schema:
            schema = self.learn(data)
        asset = build_validation_asset(data=data, source=None, pushdown=None)
        suite = ValidationSuite.from_legacy(
            context=None,
            validators=kwargs.pop("validators", self.validators),
            validator_config=kwargs.pop("validator_config", self.validator_config),
            schema=schema,
            auto_schema=False,
            data=data,
            source=None,
            catch_exceptions=True,
            max_retries=0,
            exclude_columns=kwargs.pop("exclude_columns", self.exclude_columns),
            min_severity=kwargs.pop("min_severity", self.min_severity),
        )
        if kwargs:
            raise TypeError(f"unexpected check() argument(s): {', '.join(sorted(kwargs))}")
        plan = ScanPlanner().plan(suite=suite, asset=asset, parallel=False, max_workers=None)
        run = ValidationRuntime().execute(asset=asset, plan=plan)
        return self._report(run)

    def _report(self, run: Any) -> CheckReport:
        issues = tuple(
            CheckIssue(
                column=str(issue.column),
                issue_type=str(issue.issue_type),
                count=int(issue.count or 0),
                severity=str(getattr(issue.severity, "value", issue.severity)).lower(),
                details=str(issue.details or "")[:300],
            )
            for issue in run.issues
        )
        errors = tuple(str(e)[:300] for e in run.execution_issues)
        if errors:
            status = CheckStatus.ERROR
        elif any(i.severity not in self.warning_severities for i in issues):
            status = CheckStatus.FAILED
        elif issues:
            status = CheckStatus.WARNING
        else:
            status = CheckStatus.PASSED
        return CheckReport(
            status=status,
            row_count=int(run.row_count),
            column_count=int(run.column_count),
            issues=issues,
            execution_errors=errors,
            raw=run,
        )

    def learn(self, data: Any, **kwargs: Any) -> Any:
        """``truthound.learn`` over one chunk (or a whole lazy frame, in one streaming pass)."""
        return _truthound().learn(data, **kwargs)

    def profile(self, data: Any, **kwargs: Any) -> TableProfile:
        """Per-column statistics of one chunk, from truthound's single-pass ``learn``."""
        return _profile_from_schema(self.learn(data, **kwargs))

    def merge(self, operation: str, values: list[Any]) -> Any:
        """Merge the chunk values of ``operation`` into one."""
        if operation == "check":
            return merge_reports(values)
        if operation == "profile":
            return merge_profiles(values)
        if operation == "learn":
            _truthound()
            return _schema_from_profile(merge_profiles([_profile_from_schema(s) for s in values]))
        raise ValueError(f"unknown operation {operation!r}")
