"""The batch executor as the in-task engine of a datum set (``run_set(datum_executor=...)``).

Each datum is one chunk (``DatasetListChunker``); ``max_workers`` threads run datums at once,
each in its own scratch folder; datum states map onto chunk statuses (success -> PASSED,
recovered -> WARNING, failed -> FAILED, a raise -> ERROR). With ``fail_fast`` the first failed
datum stops the scheduling of the others (they stay not run and the job fails with that datum's
reason). Timeouts stay the spec's: ``datum_timeout`` kills a datum's process group and
``job_timeout`` ends the job, so a batch config with timeouts is refused here.
"""

from __future__ import annotations

import itertools
import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.batch.chunkers import DatasetListChunker
from airflow_datum_provider.batch.config import BatchConfig
from airflow_datum_provider.batch.executor import BatchExecutor
from airflow_datum_provider.batch.hooks import BatchHook
from airflow_datum_provider.batch.results import CheckStatus, ChunkResult
from airflow_datum_provider.core.errors import BatchExecutionError, JobKilled, SpecError

if TYPE_CHECKING:
    from airflow_datum_provider.core.datum import Datum
    from airflow_datum_provider.core.jobs.steps import DatumExecutor
    from airflow_datum_provider.core.worker.policy import DatumResult

__all__ = ["STATE_STATUS", "datum_executor"]

STATE_STATUS = {
    "success": CheckStatus.PASSED,
    "recovered": CheckStatus.WARNING,
    "failed": CheckStatus.FAILED,
}


class _Ran:
    def __init__(self, datum: Datum, result: DatumResult, resumed: bool) -> None:
        self.datum, self.result, self.resumed = datum, result, resumed
        self.status = STATE_STATUS.get(result.state, CheckStatus.ERROR)


class _Forward(BatchHook):
    def __init__(self, out: queue.SimpleQueue[Any]) -> None:
        self.out = out

    def on_chunk_complete(self, result: ChunkResult) -> None:
        self.out.put(result.value)


def datum_executor(config: BatchConfig) -> DatumExecutor:
    """A :data:`~airflow_datum_provider.core.jobs.steps.DatumExecutor` running on ``config``."""
    if config.timeout_seconds is not None or config.chunk_timeout_seconds is not None:
        raise SpecError(
            "timeouts of a datum set come from the spec (datum_timeout, job_timeout), "
            "not from the batch config",
            field="batch_config.timeout_seconds",
        )

    def run(
        datums: Iterable[Datum],
        run_one: Callable[[Datum, Path], tuple[DatumResult, bool]],
        root: Path,
    ) -> Iterator[tuple[Datum, DatumResult, bool]]:
        local = threading.local()
        counter = itertools.count()

        def scratch() -> Path:
            if not hasattr(local, "path"):
                local.path = root / f"worker-{next(counter)}"
                local.path.mkdir(parents=True, exist_ok=True)
            path: Path = local.path
            return path

        class Engine:
            def check(self, datum: Datum, **kwargs: Any) -> _Ran:
                return _Ran(datum, *run_one(datum, scratch()))

            profile = learn = check

        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        box: dict[str, Any] = {}
        executor = BatchExecutor(
            Engine(), config, hooks=[_Forward(out)], chunker=DatasetListChunker()
        )

        def work() -> None:
            try:
                box["result"] = executor.check_batch(iter(datums))
            except BaseException as exc:
                box["error"] = exc
            finally:
                out.put(_DONE)

        thread = threading.Thread(target=work, name="datum-batch", daemon=True)
        thread.start()
        while (item := out.get()) is not _DONE:
            yield item.datum, item.result, item.resumed
        thread.join()
        from airflow_datum_provider.core.worker.namespace import remove_private_tmp

        for path in root.glob("worker-*"):
            remove_private_tmp(path)
        error = box.get("error")
        result = box.get("result")
        if isinstance(error, BatchExecutionError) and isinstance(error.__cause__, JobKilled):
            raise error.__cause__
        if error is not None:
            raise error
        for chunk in result.errors if result is not None else ():
            if isinstance(chunk.error, JobKilled):
                raise chunk.error
        if result is not None and result.errors:
            first = result.errors[0]
            raise BatchExecutionError(
                f"datum {first.index} of the set raised: {first.reason}", chunk_index=first.index
            ) from first.error

    return run


_DONE = object()
