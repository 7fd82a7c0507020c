"""The batch executor as the in-task engine of a datum set (``run_set(datum_executor=...)``).

Each datum is one chunk (``DatasetListChunker``); ``max_workers`` threads run datums at once,
each in its own scratch folder; datum states map onto chunk statuses (success -> PASSED,
recovered -> WARNING, failed -> FAILED, a raise -> ERROR). With ``fail_fast`` the first failed
datum stops the scheduling of the others (they stay not run and the job fails with that datum's
reason).

Timeouts are enforced by the worker, the way ``job_timeout`` is (the datum's process group is
killed at the deadline; a Python transform on a worker thread fails when it returns), never by
abandoning a thread whose datum would go on writing:

* ``chunk_timeout_seconds`` bounds each datum (all its attempts): a datum past it fails with
  ``datum timed out after <s>s (batch_config.chunk_timeout_seconds)``; the spec's
  ``datum_timeout`` still bounds each attempt, whichever is shorter wins.
* ``timeout_seconds`` bounds the set: datums running then fail with ``set timed out after <s>s
  (batch_config.timeout_seconds)``, datums not started stay not run, and the set raises
  :class:`~airflow_datum_provider.core.errors.JobKilled` with that reason (the job ends
  ``killed``, as at its ``job_timeout``; the next job runs the set's datums again).
"""

from __future__ import annotations

import dataclasses
import itertools
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.batch.chunkers import DatasetListChunker
from airflow_datum_provider.batch.config import BatchConfig
from airflow_datum_provider.batch.executor import BatchExecutor
from airflow_datum_provider.batch.hooks import BatchHook
from airflow_datum_provider.batch.results import CheckStatus, ChunkResult
from airflow_datum_provider.core.errors import BatchExecutionError, JobKilled

if TYPE_CHECKING:
    from airflow_datum_provider.core.datum import Datum
    from airflow_datum_provider.core.jobs.steps import DatumExecutor, RunOne
    from airflow_datum_provider.core.worker.policy import DatumResult

__all__ = ["STATE_STATUS", "chunk_timeout_reason", "datum_executor", "set_timeout_reason"]

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


def chunk_timeout_reason(seconds: float) -> str:
    """The reason of a datum cut by ``chunk_timeout_seconds``."""
    return f"datum timed out after {seconds:g}s (batch_config.chunk_timeout_seconds)"


def set_timeout_reason(seconds: float) -> str:
    """The reason of a datum (and a set) cut by ``timeout_seconds``."""
    return f"set timed out after {seconds:g}s (batch_config.timeout_seconds)"


def datum_executor(config: BatchConfig) -> DatumExecutor:
    """A :data:`~airflow_datum_provider.core.jobs.steps.DatumExecutor` running on ``config``."""
    chunk_timeout, total = config.chunk_timeout_seconds, config.timeout_seconds
    # The worker enforces the timeouts (module docstring); the executor only schedules.
    inner = dataclasses.replace(config, timeout_seconds=None, chunk_timeout_seconds=None)

    def run(
        datums: Iterable[Datum],
        run_one: RunOne,
        root: Path,
    ) -> Iterator[tuple[Datum, DatumResult, bool]]:
        set_deadline = None if total is None else time.monotonic() + total
        total_reason = "" if total is None else set_timeout_reason(total)
        cut = threading.Event()  # the set's timeout cut a datum or kept one from starting
        local = threading.local()
        counter = itertools.count()

        def scratch() -> Path:
            if not hasattr(local, "path"):
                local.path = root / f"worker-{next(counter)}"
                local.path.mkdir(parents=True, exist_ok=True)
            path: Path = local.path
            return path

        def bounds() -> tuple[float | None, str]:
            now = time.monotonic()
            if set_deadline is not None and now >= set_deadline:
                cut.set()
                raise JobKilled(total_reason)
            if chunk_timeout is not None and (
                set_deadline is None or now + chunk_timeout < set_deadline
            ):
                return now + chunk_timeout, chunk_timeout_reason(chunk_timeout)
            return set_deadline, total_reason

        class Engine:
            def check(self, datum: Datum, **kwargs: Any) -> _Ran:
                deadline, reason = bounds()
                ran = _Ran(
                    datum,
                    *run_one(datum, scratch(), deadline=deadline, deadline_reason=reason),
                )
                if total_reason and not ran.resumed and ran.result.reason == total_reason:
                    cut.set()  # (a result an earlier try of the set wrote is only a failure)
                return ran

            profile = learn = check

        out: queue.SimpleQueue[Any] = queue.SimpleQueue()
        box: dict[str, Any] = {}
        executor = BatchExecutor(
            Engine(), inner, hooks=[_Forward(out)], chunker=DatasetListChunker()
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
        if cut.is_set():
            raise JobKilled(total_reason)
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
