"""Progress bars for long transfers, on stderr, only when stderr is a terminal."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from tqdm import tqdm

__all__ = ["CountingReader", "progress", "progress_enabled"]

# A bar appears only once a transfer has run this long: short puts stay quiet.
_DELAY_S = 0.5


@contextmanager
def progress(total: int | None, desc: str) -> Iterator[Any]:
    """A tqdm bar in bytes (``bar.update(n)``); disabled unless stderr is a TTY."""
    with tqdm(
        total=total,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        delay=_DELAY_S,
        leave=False,
        file=sys.stderr,
        disable=not progress_enabled(),
    ) as bar:
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
