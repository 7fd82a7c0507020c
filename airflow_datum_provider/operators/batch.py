"""``BatchCheckOperator``: check, profile or learn a table of a repo commit in chunks.

A thin adapter over :mod:`airflow_datum_provider.batch`: it opens the store, scans the table(s)
lazily, runs :class:`~airflow_datum_provider.batch.BatchExecutor` with a
:class:`~airflow_datum_provider.batch.TruthoundEngine` (or the ``engine`` given), returns a compact
summary (pushed to XCom) and fails the task when the aggregated status is in ``fail_on``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException

from airflow_datum_provider.batch.config import BatchConfig
from airflow_datum_provider.batch.executor import OPERATIONS
from airflow_datum_provider.batch.results import CheckStatus

if TYPE_CHECKING:
    from airflow_datum_provider.batch.chunkers import DataChunker
    from airflow_datum_provider.batch.results import BatchResult
    from airflow_datum_provider.core.store import Store

__all__ = ["BatchCheckOperator"]

_MAX_ISSUES = 20


def _value_summary(operation: str, value: Any) -> Any:
    to_dict = getattr(value, "to_dict", None)
    if not callable(to_dict):
        return None
    data = to_dict()
    if operation == "check" and isinstance(data, dict):
        issues = data.get("issues", [])
        data["issues"] = issues[:_MAX_ISSUES]
        data["issues_omitted"] = max(0, len(issues) - _MAX_ISSUES)
    return data


class BatchCheckOperator(BaseOperator):
    """Run a batch ``check`` / ``profile`` / ``learn`` over tables stored in a repo commit.

    ``path`` names one table (CSV/TSV, Parquet, NDJSON, IPC), chunked by rows
    (``batch_config.batch_size``); ``paths`` names several files, one chunk each. The return value
    (XCom) is the batch summary plus the merged value's compact form (check issues capped at 20).
    The task fails when the aggregated status is one of ``fail_on`` (default FAILED, ERROR).
    """

    template_fields: Sequence[str] = ("repo", "ref", "path", "paths", "store_url")
    ui_color = "#e8f4ea"
    operations: ClassVar[tuple[str, ...]] = OPERATIONS

    def __init__(
        self,
        *,
        repo: str,
        path: str | None = None,
        paths: Sequence[str] | None = None,
        ref: str = "master",
        operation: str = "check",
        batch_config: BatchConfig | Mapping[str, Any] | None = None,
        auto_schema: bool = True,
        fail_on: Sequence[str] = ("FAILED", "ERROR"),
        store_url: str | None = None,
        datum_store_conn_id: str = "datum_store_default",
        engine: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if operation not in OPERATIONS:
            raise ValueError(f"operation: {operation!r} is not one of {', '.join(OPERATIONS)}")
        if (path is None) == (paths is None):
            raise ValueError("path / paths: give exactly one (one table, or a list of files)")
        if paths is not None and (isinstance(paths, str) or not list(paths)):
            raise ValueError("paths: must be a non-empty list of file paths")
        bad = sorted(set(fail_on) - set(CheckStatus.__members__))
        if bad:
            raise ValueError(
                f"fail_on: {', '.join(bad)} not a status; allowed: {', '.join(CheckStatus.__members__)}"
            )
        self.repo = repo
        self.path = path
        self.paths = list(paths) if paths is not None else None
        self.ref = ref
        self.operation = operation
        self.batch_config = (
            batch_config
            if isinstance(batch_config, BatchConfig) or batch_config is None
            else BatchConfig.from_dict(dict(batch_config))
        )
        self.auto_schema = auto_schema
        self.fail_on = tuple(fail_on)
        self.store_url = store_url
        self.datum_store_conn_id = datum_store_conn_id
        self.engine = engine

    def _store(self) -> Store:
        if self.store_url:
            from airflow_datum_provider.core.store import Store

            return Store.open(self.store_url)
        from airflow_datum_provider.hooks.store import DatumStoreHook

        return DatumStoreHook(self.datum_store_conn_id).get_store()

    def _run(self, store: Store) -> BatchResult:
        from airflow_datum_provider.batch.chunkers import DatasetListChunker, PolarsChunker
        from airflow_datum_provider.batch.engines import TruthoundEngine
        from airflow_datum_provider.batch.executor import BatchExecutor
        from airflow_datum_provider.batch.hooks import LoggingBatchHook
        from airflow_datum_provider.batch.sources import repo_tables

        config = self.batch_config or BatchConfig()
        engine = self.engine if self.engine is not None else TruthoundEngine()
        executor = BatchExecutor(engine, config, hooks=[LoggingBatchHook(self.log)])
        paths = [self.path] if self.path is not None else list(self.paths or ())
        chunker: DataChunker
        with repo_tables(store, self.repo, self.ref, paths) as frames:
            if self.path is not None:
                data, chunker = frames[0], PolarsChunker(config.batch_size)
            else:
                data, chunker = frames, DatasetListChunker()
            kwargs: dict[str, Any] = {"chunker": chunker}
            if self.operation == "check":
                kwargs["auto_schema"] = self.auto_schema
            return executor.run_batch(self.operation, data, **kwargs)

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the batch; return the summary; raise if the status is in ``fail_on``.

        On failure the summary is still pushed, under the XCom key ``batch_summary``.
        """
        from airflow_datum_provider.core.errors import DatumError

        where = f"{self.repo}@{self.ref}:{self.path or ','.join(self.paths or ())}"
        try:
            result = self._run(self._store())
        except DatumError as exc:
            raise AirflowException(f"batch {self.operation} of {where}: {exc}") from exc
        summary = result.to_summary()
        summary["source"] = {
            "repo": self.repo,
            "ref": self.ref,
            "paths": [self.path] if self.path else self.paths,
        }
        summary["value"] = _value_summary(self.operation, result.value)
        if result.status.name in self.fail_on:
            ti = context.get("ti") if isinstance(context, Mapping) else None
            if ti is not None:  # the summary is there to read even when the task fails
                ti.xcom_push(key="batch_summary", value=summary)
            first = result.first_failure
            detail = f"; first failure: chunk {first.index} {first.status.name}" if first else ""
            if first is not None and first.reason:
                detail += f": {first.reason}"
            raise AirflowException(
                f"batch {self.operation} of {where}: {result.status.name} "
                f"({result.failed_chunks}/{result.total_chunks} chunks failed){detail}"
            )
        return summary
