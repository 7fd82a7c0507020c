"""Progress bars for long transfers and jobs, on stderr, only when stderr is a terminal.

Sizes use the tables' units (``1.5 MiB``, from :func:`human_size`); a recursive put also counts
files. A bar appears only once a transfer has run ``$DATUMCTL_PROGRESS_DELAY`` seconds (default
0.5, so short puts stay quiet); ``DATUMCTL_PROGRESS_DELAY=0`` shows it at once and redraws it
on every update, which tests use to see it without depending on timing.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from airflow_datum_provider.cli._output import human_size

__all__ = ["DELAY_ENV_VAR", "CountingReader", "progress", "progress_enabled", "progress_options"]

DELAY_ENV_VAR = "DATUMCTL_PROGRESS_DELAY"
_DEFAULT_DELAY_S = 0.5

_WITH_TOTAL = (
    "{desc}: {percentage:3.0f}%|{bar}| {size} / {total_size} [{elapsed}<{remaining}, {speed}]"
    "{postfix}"
)
_NO_TOTAL = "{desc}: {size} [{elapsed}, {speed}]{postfix}"


class _NullBar:
    """What :func:`progress` yields when no bar is shown: every call does nothing."""

    def update(self, n: int = 1) -> None:
        return None

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        return None

    def file_done(self) -> None:
        return None

    def write(self, text: str, file: IO[str] | None = None) -> None:
        print(text, file=file or sys.stderr)


def progress_options() -> dict[str, Any]:
    """Tqdm's timing options: the delay knob, and with a zero delay a redraw on every update."""
    raw = os.environ.get(DELAY_ENV_VAR, "").strip()
    try:
        delay = max(0.0, float(raw)) if raw else _DEFAULT_DELAY_S
    except ValueError:
        delay = _DEFAULT_DELAY_S
    if delay == 0:
        return {"delay": 0.0, "mininterval": 0.0, "miniters": 1}
    return {"delay": delay}


@contextmanager
def progress(total: int | None, desc: str, *, files: int | None = None) -> Iterator[Any]:
    """A bar in bytes (``bar.update(n)``) on stderr; a no-op object unless stderr is a TTY.

    With ``files``, the bar also shows ``k/N files`` (``bar.file_done()`` counts one).
    """
    if not progress_enabled():
        yield _NullBar()
        return
    from tqdm import tqdm

    class _Bar(tqdm):  # type: ignore[type-arg,misc]  # tqdm is untyped
        done_files = 0

        @property
        def format_dict(self) -> dict[str, Any]:
            d: dict[str, Any] = super().format_dict
            rate = d.get("rate")
            d["size"] = human_size(int(d["n"]))
            d["total_size"] = human_size(int(d["total"])) if d.get("total") else "?"
            d["speed"] = f"{human_size(int(rate))}/s" if rate else "?/s"
            return d

        def file_done(self) -> None:
            self.done_files += 1
            self.set_postfix_str(f"{self.done_files}/{files} files")

    with _Bar(
        total=total,
        desc=desc,
        bar_format=_WITH_TOTAL if total else _NO_TOTAL,
        leave=False,
        file=sys.stderr,
        **progress_options(),
    ) as bar:
        if files is not None:
            bar.set_postfix_str(f"0/{files} files", refresh=False)
        yield bar


class CountingReader:
    """A binary reader that reports every chunk it hands out to a progress bar."""

    def __init__(self, raw: IO[bytes], bar: Any) -> None:
        self._raw = raw
        self._bar = bar

    def read(self, size: int = -1) -> bytes:
        data = self._raw.read(size)
        self._bar.update(len(data))
        return data


def progress_enabled() -> bool:
    """Whether a bar would show (stderr is a terminal): skip costly totals otherwise."""
    return sys.stderr.isatty()
