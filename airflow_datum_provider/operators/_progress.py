"""Task-log lines a person can read: one line per datum and a progress line every few seconds."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.datum import Datum
    from airflow_datum_provider.core.jobs.steps import SetRef

PROGRESS_EVERY = 5.0
"""Seconds between progress lines (at most; one is also written when the set ends)."""

TAIL_LINES = 20
"""How many last lines of a failed datum's own output are copied into the task log."""


class DatumLog:
    """The ``on_datum`` callback of :func:`~airflow_datum_provider.core.run_set` for a task log.

    ``clock`` is injectable so tests decide when a progress line is due.
    """

    def __init__(
        self,
        log: logging.Logger | Any,
        *,
        total: int,
        ref: SetRef | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = PROGRESS_EVERY,
    ) -> None:
        self.log = log
        self.total = total
        self.ref = ref
        self.clock = clock
        self.every = every
        self.started = clock()
        self.last = self.started
        self.done_count = 0
        self.failed = 0
        self.recovered = 0

    def datum(self, datum: Datum, result: Mapping[str, Any], resumed: bool) -> None:
        """Log one finished datum, and a progress line when one is due."""
        self.done_count += 1
        state = str(result.get("state", ""))
        if state == "failed":
            self.failed += 1
        elif state == "recovered":
            self.recovered += 1
        seconds = float(result.get("process_time", 0.0) or 0.0)
        note = " (checkpointed by an earlier try)" if resumed else ""
        line = f"datum {datum.id[:12]} {state} {seconds:.2f}s{note}"
        reason = str(result.get("reason", "") or "")
        if state in ("failed", "recovered") and reason:
            line += f": {reason}"
        self.log.info("%s", line)
        if state == "failed" and not resumed:
            self._tail(datum.id, str(result.get("log_tail", "") or ""))
        now = self.clock()
        if now - self.last >= self.every:
            self.progress(now)

    def _tail(self, datum_id: str, tail: str) -> None:
        lines = tail.splitlines()[-TAIL_LINES:]
        for text in lines:
            self.log.info("  | %s", text)
        if self.ref is not None:
            self.log.info(
                "  full log: datumctl logs -j %s@%s --datum %s",
                self.ref.pipeline,
                self.ref.job,
                datum_id,
            )

    def progress(self, now: float | None = None) -> None:
        """Write the progress line now."""
        now = self.clock() if now is None else now
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        rate = self.done_count / elapsed
        left = max(self.total - self.done_count, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        self.log.info(
            "%d/%d datums · %d failed · %.0f datums/s · eta %s",
            self.done_count,
            self.total,
            self.failed,
            rate,
            eta,
        )

    def done(self) -> None:
        """The closing progress line of the set."""
        self.progress()
