"""Small real engines for executor tests: chunk data decides the outcome, deterministically."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from airflow_datum_provider.batch import CheckStatus

BOOM = "boom"  # a row that makes check() raise
BAD = "bad"  # a row that makes the chunk FAILED
WARN = "warn"  # a row that makes the chunk WARNING
BLOCK = "block"  # a row that makes check() wait for `release`


class Verdict:
    def __init__(self, status: CheckStatus, rows: int) -> None:
        self.status = status
        self.rows = rows

    def __repr__(self) -> str:
        return f"Verdict({self.status.name}, {self.rows})"


class RowEngine:
    """check(): FAILED if a row is BAD, WARNING if WARN, raises on BOOM, waits on BLOCK."""

    def __init__(self) -> None:
        self.raised: dict[int, BaseException] = {}
        self.release = threading.Event()
        self.calls = 0
        self._lock = threading.Lock()

    def check(self, data: Any, **kwargs: Any) -> Verdict:
        with self._lock:
            self.calls += 1
        rows = list(data)
        if BLOCK in rows:
            self.release.wait(60)
        if BOOM in rows:
            exc = ValueError(f"boom in a chunk starting with {rows[0]!r}")
            self.raised[id(exc)] = exc
            raise exc
        if BAD in rows:
            return Verdict(CheckStatus.FAILED, len(rows))
        if WARN in rows:
            return Verdict(CheckStatus.WARNING, len(rows))
        return Verdict(CheckStatus.PASSED, len(rows))

    def profile(self, data: Any, **kwargs: Any) -> int:
        return len(list(data))

    def learn(self, data: Any, **kwargs: Any) -> set[Any]:
        return set(data)

    def merge(self, operation: str, values: list[Any]) -> Any:
        if operation == "check":
            return sum(v.rows for v in values)
        if operation == "profile":
            return sum(values)
        return set().union(*values)


class AsyncRowEngine:
    """The async twin of RowEngine; BLOCK awaits an event that is never set (cancellation)."""

    def __init__(self) -> None:
        self.sync = RowEngine()
        self.cancelled = 0

    async def check(self, data: Any, **kwargs: Any) -> Verdict:
        if BLOCK in list(data):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return self.sync.check([r for r in data if r != BLOCK])

    async def profile(self, data: Any, **kwargs: Any) -> int:
        return self.sync.profile(data)

    async def learn(self, data: Any, **kwargs: Any) -> set[Any]:
        return self.sync.learn(data)

    def merge(self, operation: str, values: list[Any]) -> Any:
        return self.sync.merge(operation, values)
