"""Data chunkers: split data into :class:`Chunk` s lazily, one chunk at a time.

Chunkers are iterators, never lists: the executor pulls a chunk only when a worker is free, so
at most ``max_workers`` chunks (plus the one being cut) are in memory at once. Polars frames are
cut with zero-copy ``slice``; a ``LazyFrame`` (or a file path, scanned lazily) is collected one
row range at a time; any other iterable is read with ``itertools.islice``.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any, Protocol, runtime_checkable

from airflow_datum_provider.core.errors import ChunkingError

__all__ = [
    "Chunk",
    "DataChunker",
    "DatasetListChunker",
    "PolarsChunker",
    "RowCountChunker",
    "is_polars",
]

_SCANNERS = {
    ".parquet": "scan_parquet",
    ".pq": "scan_parquet",
    ".csv": "scan_csv",
    ".tsv": "scan_csv",
    ".ndjson": "scan_ndjson",
    ".jsonl": "scan_ndjson",
    ".ipc": "scan_ipc",
    ".arrow": "scan_ipc",
    ".feather": "scan_ipc",
}


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    """One chunk: its index, its data and, when known, its row range."""

    index: int
    data: Any
    offset: int | None = None
    rows: int | None = None


@runtime_checkable
class DataChunker(Protocol):
    """Splits data into chunks; ``count`` and ``total_rows`` answer without reading the data."""

    def chunks(self, data: Any) -> Iterator[Chunk]:
        """Yield the chunks of ``data`` in order, lazily."""
        ...

    def count(self, data: Any) -> int | None:
        """The number of chunks, or None when only reading would tell (a stream)."""
        ...

    def total_rows(self, data: Any) -> int | None:
        """The number of rows, or None when unknown."""
        ...


def is_polars(data: object, name: str | None = None) -> bool:
    """True if ``data`` is a polars object (``DataFrame`` / ``LazyFrame``), without importing it."""
    cls = type(data)
    if not cls.__module__.startswith("polars"):
        return False
    return name is None or cls.__name__ == name


def _check_size(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ChunkingError(
            f"chunk_size must be a positive integer, got {value!r}", field="chunk_size"
        )
    return value


def _is_path(data: object) -> bool:
    return isinstance(data, str | PurePath | os.PathLike)


def scan_path(path: str | os.PathLike[str], *, suffix: str | None = None, **options: Any) -> Any:
    """Scan a tabular file lazily with polars, by its suffix (Parquet, CSV/TSV, NDJSON, IPC)."""
    import polars as pl

    suffix = (suffix or PurePath(os.fspath(path)).suffix).lower()
    scanner = _SCANNERS.get(suffix)
    if scanner is None:
        raise ChunkingError(
            f"{os.fspath(path)!r}: unsupported file type {suffix or '(none)'!r}; "
            f"allowed: {', '.join(sorted(_SCANNERS))}",
            path=os.fspath(path),
        )
    if suffix == ".tsv":
        options.setdefault("separator", "\t")
    if not os.path.exists(path) and "://" not in os.fspath(path):
        raise ChunkingError(f"{os.fspath(path)!r}: no such file", path=os.fspath(path))
    return getattr(pl, scanner)(path, **options)


class _Sliced:
    """Shared slicing logic for anything with a row count and a row-range accessor."""

    def __init__(self, chunk_size: int) -> None:
        self.chunk_size = _check_size(chunk_size)

    def _count_from_rows(self, rows: int | None) -> int | None:
        if rows is None:
            return None
        return -(-rows // self.chunk_size)

    def _ranges(self, rows: int) -> Iterator[tuple[int, int, int]]:
        for index, offset in enumerate(range(0, rows, self.chunk_size)):
            yield index, offset, min(self.chunk_size, rows - offset)

    def row_ranges(self, total_rows: int) -> Iterator[tuple[int, int]]:
        """The half-open row ranges ``[start, end)`` of ``total_rows`` rows, in order.

        ``ceil(total_rows / chunk_size)`` ranges, the last one shorter on a remainder, none for
        0 rows. ``rows_per_datum`` cuts a table into datums with exactly these ranges.
        """
        if isinstance(total_rows, bool) or not isinstance(total_rows, int) or total_rows < 0:
            raise ChunkingError(
                f"total_rows must be a non-negative integer, got {total_rows!r}",
                field="total_rows",
            )
        for _, offset, length in self._ranges(total_rows):
            yield offset, offset + length


class PolarsChunker(_Sliced):
    """Chunks a polars ``DataFrame`` (zero-copy slices), ``LazyFrame`` or tabular file path."""

    def __init__(self, chunk_size: int = 10_000) -> None:
        super().__init__(chunk_size)

    def _frame(self, data: Any) -> Any:
        if _is_path(data):
            return scan_path(data)
        if is_polars(data, "DataFrame") or is_polars(data, "LazyFrame"):
            return data
        raise ChunkingError(
            f"PolarsChunker cannot chunk a {type(data).__name__}; allowed: polars DataFrame, "
            "LazyFrame, or a path to a .parquet/.csv/.tsv/.ndjson/.jsonl/.ipc file",
            data_type=type(data).__name__,
        )

    def total_rows(self, data: Any) -> int | None:
        """Rows of the frame (a ``LazyFrame`` counts them with one streaming ``len()`` query)."""
        frame = self._frame(data)
        if is_polars(frame, "DataFrame"):
            return int(frame.height)
        import polars as pl

        try:
            return int(frame.select(pl.len()).collect(engine="streaming").item())
        except Exception as exc:
            raise ChunkingError(f"cannot count the rows of the input: {exc}") from exc

    def count(self, data: Any) -> int | None:
        """Number of chunks (``ceil(rows / chunk_size)``)."""
        return self._count_from_rows(self.total_rows(data))

    def chunks(self, data: Any) -> Iterator[Chunk]:
        """Yield row-range chunks; a ``LazyFrame`` range is collected only when it is pulled."""
        frame = self._frame(data)
        rows = self.total_rows(frame)
        assert rows is not None
        lazy = is_polars(frame, "LazyFrame")
        for index, offset, length in self._ranges(rows):
            if lazy:
                try:
                    part = frame.slice(offset, length).collect()
                except Exception as exc:
                    raise ChunkingError(
                        f"cannot read rows {offset}..{offset + length - 1} of the input: {exc}",
                        chunk_index=index,
                    ) from exc
            else:
                part = frame.slice(offset, length)
            yield Chunk(index=index, data=part, offset=offset, rows=length)


class RowCountChunker(_Sliced):
    """Chunks by a fixed number of rows: polars frames, sequences, tables, or any iterable.

    Sized data with a row-range accessor (polars/pyarrow ``slice``, ``list``/``tuple`` slicing,
    pandas ``iloc``) is sliced by offset; any other iterable of rows is streamed with ``islice``
    (its chunk count is then unknown until it ends).
    """

    def __init__(self, chunk_size: int = 1000) -> None:
        super().__init__(chunk_size)

    @staticmethod
    def _refuse(data: Any) -> None:
        if data is None or isinstance(data, str | bytes | bytearray | Mapping):
            raise ChunkingError(
                f"RowCountChunker cannot chunk a {type(data).__name__}; allowed: a polars "
                "DataFrame/LazyFrame, a pyarrow or pandas table, a list/tuple of rows, or an "
                "iterable of rows",
                data_type=type(data).__name__,
            )

    def _polars(self, data: Any) -> bool:
        return _is_path(data) or is_polars(data, "DataFrame") or is_polars(data, "LazyFrame")

    def total_rows(self, data: Any) -> int | None:
        """Rows of sized data, None for a stream."""
        if self._polars(data):
            return PolarsChunker(self.chunk_size).total_rows(data)
        self._refuse(data)
        if hasattr(data, "num_rows"):
            return int(data.num_rows)
        if isinstance(data, Sequence) or hasattr(data, "iloc"):
            return len(data)
        return None

    def count(self, data: Any) -> int | None:
        """Number of chunks, None for a stream."""
        return self._count_from_rows(self.total_rows(data))

    def chunks(self, data: Any) -> Iterator[Chunk]:
        """Yield chunks of ``chunk_size`` rows (the last one may be shorter)."""
        if self._polars(data):
            yield from PolarsChunker(self.chunk_size).chunks(data)
            return
        self._refuse(data)
        rows = self.total_rows(data)
        if rows is not None:
            for index, offset, length in self._ranges(rows):
                if hasattr(data, "num_rows"):
                    part = data.slice(offset, length)
                elif hasattr(data, "iloc"):
                    part = data.iloc[offset : offset + length]
                else:
                    part = data[offset : offset + length]
                yield Chunk(index=index, data=part, offset=offset, rows=length)
            return
        if not isinstance(data, Iterable):
            raise ChunkingError(
                f"RowCountChunker cannot chunk a {type(data).__name__}: it is not iterable",
                data_type=type(data).__name__,
            )
        iterator = iter(data)
        offset = 0
        for index in itertools.count():
            try:
                part = list(itertools.islice(iterator, self.chunk_size))
            except Exception as exc:
                raise ChunkingError(
                    f"reading rows from offset {offset} failed: {type(exc).__name__}: {exc}",
                    chunk_index=index,
                ) from exc
            if not part:
                return
            yield Chunk(index=index, data=part, offset=offset, rows=len(part))
            offset += len(part)


class DatasetListChunker:
    """Treats each item of a list (or iterable) of datasets as one chunk, as it is."""

    def total_rows(self, data: Any) -> int | None:
        """Sum of the items' row counts when every item is sized, else None."""
        if not isinstance(data, Sequence):
            return None
        total = 0
        for item in data:
            rows = _rows_of(item)
            if rows is None:
                return None
            total += rows
        return total

    def count(self, data: Any) -> int | None:
        """Number of items of a sequence, None for a stream."""
        self._refuse(data)
        return len(data) if isinstance(data, Sequence) else None

    def chunks(self, data: Any) -> Iterator[Chunk]:
        """Yield one chunk per item."""
        self._refuse(data)
        for index, item in enumerate(data):
            yield Chunk(index=index, data=item, rows=_rows_of(item))

    @staticmethod
    def _refuse(data: Any) -> None:
        if (
            data is None
            or isinstance(data, str | bytes | bytearray | Mapping)
            or not isinstance(data, Iterable)
        ):
            raise ChunkingError(
                f"DatasetListChunker needs a list (or iterable) of datasets, got "
                f"{type(data).__name__}",
                data_type=type(data).__name__,
            )


def _rows_of(item: Any) -> int | None:
    for attr in ("height", "num_rows"):
        value = getattr(item, attr, None)
        if isinstance(value, int):
            return value
    if isinstance(item, Sequence) and not isinstance(item, str | bytes):
        return len(item)
    return None


def default_chunker(data: Any, batch_size: int) -> DataChunker:
    """The chunker the executor uses when none is given: polars-aware row chunking."""
    if _is_path(data) or is_polars(data):
        return PolarsChunker(batch_size)
    return RowCountChunker(batch_size)
