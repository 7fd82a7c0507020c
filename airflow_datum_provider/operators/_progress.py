"""Task-log lines a person can read: one line per datum and a progress line every few seconds."""

from __future__ import annotations

import logging
import threading
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

    Use it as a context manager: a background thread then writes the progress line every
    ``every`` seconds even while one long datum runs, and leaving the block cleanly writes the
    set's closing line. ``clock`` is injectable so tests decide when a line is due (they call
    :meth:`datum` and :meth:`done` without the thread). It also sums what the set's summary
    reports: bytes in and out, and seconds spent in user code.
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
        self.download_bytes = 0
        self.upload_bytes = 0
        self.process_seconds = 0.0
        self._shown = -1  # done_count of the last progress line
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticker: threading.Thread | None = None

    def __enter__(self) -> DatumLog:
        self._ticker = threading.Thread(target=self._tick, name="datum-progress", daemon=True)
        self._ticker.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: Any) -> None:
        self._stop.set()
        if self._ticker is not None:
            self._ticker.join()
        if kind is None:
            self.done()

    def _tick(self) -> None:
        """The thread: a progress line whenever ``every`` seconds passed without one."""
        while not self._stop.wait(max(self.last + self.every - self.clock(), 0.01)):
            with self._lock:
                now = self.clock()
                if now - self.last >= self.every:
                    self._progress(now)

    def datum(self, datum: Datum, result: Mapping[str, Any], resumed: bool) -> None:
        """Log one finished datum, and a progress line when one is due."""
        state = str(result.get("state", ""))
        seconds = float(result.get("process_time", 0.0) or 0.0)
        note = " (checkpointed by an earlier try)" if resumed else ""
        line = f"datum {datum.id[:12]} {state} {seconds:.2f}s{note}"
        reason = str(result.get("reason", "") or "")
        if state in ("failed", "recovered") and reason:
            line += f": {reason}"
        with self._lock:
            self.done_count += 1
            if state == "failed":
                self.failed += 1
            elif state == "recovered":
                self.recovered += 1
            self.download_bytes += int(result.get("download_bytes", 0) or 0)
            self.upload_bytes += int(result.get("upload_bytes", 0) or 0)
            self.process_seconds += seconds
            self.log.info("%s", line)
            if state == "failed" and not resumed:
                self._tail(datum.id, str(result.get("log_tail", "") or ""))
            now = self.clock()
            if now - self.last >= self.every:
                self._progress(now)

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
        with self._lock:
            self._progress(self.clock() if now is None else now)

    def _progress(self, now: float) -> None:
        self.last = now
        self._shown = self.done_count
        elapsed = max(now - self.started, 1e-9)
        rate = self.done_count / elapsed
        left = max(self.total - self.done_count, 0)
        eta = f"{left / rate:.0f}s" if rate > 0 else "?"
        self.log.info(
            "%d/%d datums · %d failed · %s datums/s · eta %s",
            self.done_count,
            self.total,
            self.failed,
            _rate(rate),
            eta,
        )

    def done(self) -> None:
        """The closing progress line of the set (unless the last line already said it)."""
        with self._lock:
            if self._shown != self.done_count:
                self._progress(self.clock())

    def totals(self) -> dict[str, Any]:
        """What the set's summary adds: bytes in and out, seconds in user code."""
        with self._lock:
            return {
                "download_bytes": self.download_bytes,
                "upload_bytes": self.upload_bytes,
                "process_seconds": round(self.process_seconds, 3),
            }


def _rate(rate: float) -> str:
    """Datums per second, readable from slow sets (0.25) to fast ones (4100)."""
    if rate >= 10:
        return f"{rate:.0f}"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.2f}"
