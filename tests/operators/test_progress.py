"""The task log's progress lines (``operators/_progress.py``), with a real thread and clock."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.operators._progress import DatumLog

pytestmark = pytest.mark.airflow


class _Lines(logging.Handler):
    """Collects messages; ``seen(text)`` waits (bounded) until one contains ``text``."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.lines.append(record.getMessage())
            self._changed.notify_all()

    def seen(self, text: str, timeout: float = 60.0) -> bool:
        with self._changed:
            return self._changed.wait_for(
                lambda: any(text in line for line in self.lines), timeout=timeout
            )


@pytest.fixture
def lines() -> Any:
    logger = logging.getLogger("test.progress")
    logger.setLevel(logging.INFO)
    handler = _Lines()
    logger.addHandler(handler)
    yield logger, handler
    logger.removeHandler(handler)


def _datum(n: int) -> Datum:
    return Datum(id=f"{n:064x}", hash="", inputs=())


def test_a_progress_line_comes_while_one_long_datum_runs(lines: Any) -> None:
    logger, handler = lines
    with DatumLog(logger, total=2, every=0.05) as log:
        # The first datum "runs" until the thread has written a line for it: no datum ended,
        # so only the timer can have written it.
        assert handler.seen("0/2 datums · 0 failed · 0.00 datums/s · eta ?")
        log.datum(_datum(1), {"state": "success", "process_time": 0.5}, False)
        assert handler.seen("1/2 datums · ")
        log.datum(_datum(2), {"state": "failed", "reason": "exit status 1"}, False)
    datum_lines = [line for line in handler.lines if line.startswith("datum ")]
    assert datum_lines[0].endswith("success 0.50s")
    assert datum_lines[1].endswith("failed 0.00s: exit status 1")
    assert handler.lines[-1].startswith("2/2 datums · 1 failed · ")
    first_datum = handler.lines.index(datum_lines[0])
    assert any(line.startswith("0/2 datums") for line in handler.lines[:first_datum])


def test_rates_read_well_and_the_closing_line_is_not_repeated(lines: Any) -> None:
    logger, handler = lines
    ticks = iter([0.0, 4.0, 8.0, 8.0])  # start, datum 1 (4 s: not due), datum 2 (due), done
    log = DatumLog(logger, total=2, clock=lambda: next(ticks), every=5.0)
    log.datum(_datum(1), {"state": "success", "download_bytes": 3, "upload_bytes": 5}, False)
    log.datum(_datum(2), {"state": "success", "download_bytes": 4, "process_time": 1.25}, True)
    log.done()  # the line at 8 s already said 2/2: no second one
    progress = [line for line in handler.lines if " datums · " in line]
    assert progress == ["2/2 datums · 0 failed · 0.25 datums/s · eta 0s"]
    assert handler.lines[1].endswith("success 1.25s (checkpointed by an earlier try)")
    assert log.totals() == {"download_bytes": 7, "upload_bytes": 5, "process_seconds": 1.25}


@pytest.mark.parametrize(
    ("done", "seconds", "rate"), [(1, 4.0, "0.25"), (3, 2.0, "1.5"), (4100, 1.0, "4100")]
)
def test_the_rate_keeps_two_significant_digits_on_slow_sets(
    lines: Any, done: int, seconds: float, rate: str
) -> None:
    logger, handler = lines
    clock = iter([0.0, seconds])
    log = DatumLog(logger, total=done, clock=lambda: next(clock))
    log.done_count = done
    log.progress()
    assert f" · {rate} datums/s · " in handler.lines[-1]
