"""Row-range datums: one large table in a repo becomes a datum per ``rows_per_datum`` rows.

A pfs input with ``rows_per_datum: N`` (this provider's extension of the spec) turns every
table file its glob matches into the ranges ``[0, N), [N, 2N), ...`` of its data rows
(:meth:`~airflow_datum_provider.batch.chunkers.RowCountChunker.row_ranges`), one datum each. The
datum still mounts the whole file; its range is in ``DATUM_ROW_START`` / ``DATUM_ROW_END`` (and
``ctx.rows`` for a Python transform), and :func:`read_rows` reads exactly those rows.

What a row is (:func:`count_rows` and :func:`read_rows` agree on it):

* ``.csv`` / ``.tsv``: a record after the header (the first non-blank record), read with the
  ``csv`` module (quoted fields may hold newlines); blank lines are not rows. A file without a
  ``"`` or a carriage return is counted by its newlines instead (the same count, much faster).
* ``.ndjson`` / ``.jsonl``: a non-blank line.
* ``.parquet`` / ``.pq``: a row of the file (its footer's count; ``pyarrow`` or ``polars``).

An empty table (a header only, or nothing) has no ranges, so no datums. The row count is read
once per planned file (a local store's blob in place, another store's file via a temporary
copy) and remembered per content hash in this process.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.batch.chunkers import RowCountChunker
from airflow_datum_provider.core.errors import SpecError

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import Store

__all__ = ["ROW_SUFFIXES", "count_rows", "read_rows", "table_row_ranges"]

ROW_SUFFIXES = (".csv", ".jsonl", ".ndjson", ".parquet", ".pq", ".tsv")

_COUNTS: dict[tuple[str, str], int] = {}
_COUNTS_MAX = 4096


def _unsupported(where: str, suffix: str) -> str:
    return (
        f"{where}: cannot split a {suffix or 'suffix-less'!r} file into rows; "
        f"allowed: {', '.join(ROW_SUFFIXES)}"
    )


def _suffix(path: str | os.PathLike[str], suffix: str | None) -> str:
    found = (suffix or PurePosixPath(os.fspath(path)).suffix).lower()
    if found not in ROW_SUFFIXES:
        raise SpecError(_unsupported(os.fspath(path), found), field="rows_per_datum")
    return found


def _text(fh: Any) -> io.TextIOWrapper:
    return io.TextIOWrapper(fh, encoding="utf-8", errors="replace", newline="")


def _csv_records(fh: Any, suffix: str) -> Iterator[list[str]]:
    delimiter = "\t" if suffix == ".tsv" else ","
    return (r for r in csv.reader(_text(fh), delimiter=delimiter) if r)


def count_rows(path: str | os.PathLike[str], *, suffix: str | None = None) -> int:
    """The number of data rows of a table file (module docstring); ``suffix`` overrides."""
    kind = _suffix(path, suffix)
    if kind in (".parquet", ".pq"):
        return _parquet_rows(path)
    with open(path, "rb") as fh:
        if kind in (".ndjson", ".jsonl"):
            return sum(1 for line in fh if line.strip())
        lines = _plain_lines(fh)
        if lines is None:  # a quote or a carriage return: the csv module decides
            fh.seek(0)
            lines = sum(1 for _ in _csv_records(fh, kind))
        return max(lines - 1, 0)


_BLOCK = 1 << 20
_NEWLINE_NEWLINE = re.compile(b"\n(?=\n)")


def _plain_lines(fh: Any) -> int | None:
    """Non-blank lines of a file without a quote or a carriage return (a line is a record there).

    None for any other file.

    Counted in blocks in C: newlines, minus those that end a blank line (a newline right after
    a newline, or at the start), plus a last line without a newline.
    """
    ends = blank = 0
    previous = b"\n"  # the start of the file counts as just after a newline
    while block := fh.read(_BLOCK):
        if b'"' in block or b"\r" in block:
            return None
        ends += block.count(b"\n")
        blank += len(_NEWLINE_NEWLINE.findall(block))
        if previous == b"\n" and block[:1] == b"\n":
            blank += 1
        previous = block[-1:]
    return ends - blank + (0 if previous == b"\n" else 1)


_NO_PARQUET = (
    "counting Parquet rows needs polars or pyarrow (pip install 'airflow-datum-provider[quality]')"
)


def _parquet_rows(path: str | os.PathLike[str]) -> int:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        pass
    else:
        return int(pq.ParquetFile(os.fspath(path)).metadata.num_rows)
    try:
        import polars as pl
    except ImportError:
        raise SpecError(f"{os.fspath(path)}: {_NO_PARQUET}", field="rows_per_datum") from None
    try:
        return int(pl.scan_parquet(os.fspath(path)).select(pl.len()).collect().item())
    except Exception as exc:  # polars' errors are not ValueErrors: a corrupt footer, say
        raise ValueError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc


def read_rows(
    path: str | os.PathLike[str],
    start: int,
    end: int,
    *,
    suffix: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The rows ``[start, end)`` of a table file as dicts (CSV: header -> text; the rest typed).

    Streams: rows before ``start`` are read and dropped, reading stops at ``end``. For a datum,
    ``read_rows(path, *ctx.rows)`` (Python) or ``DATUM_ROW_START`` / ``DATUM_ROW_END``.
    """
    if start < 0 or end < start:
        raise ValueError(f"rows: [{start}, {end}) is not a row range")
    kind = _suffix(path, suffix)
    if kind in (".parquet", ".pq"):
        import polars as pl

        frame = pl.scan_parquet(os.fspath(path)).slice(start, end - start).collect()
        yield from frame.iter_rows(named=True)
        return
    with open(path, "rb") as fh:
        if kind in (".ndjson", ".jsonl"):
            index = 0
            for line in fh:
                if not line.strip():
                    continue
                if index >= end:
                    return
                if index >= start:
                    yield json.loads(line)
                index += 1
            return
        records = _csv_records(fh, kind)
        header = next(records, None)
        if header is None:
            return
        for index, record in enumerate(records):
            if index >= end:
                return
            if index >= start:
                yield dict(zip(header, record, strict=False))


@contextlib.contextmanager
def _local_copy(store: Store, repo: str, commit: str, path: str, digest: str) -> Iterator[str]:
    local = store.blob_path(digest) if digest else None
    if local is not None and os.path.isfile(local):
        yield os.fspath(local)
        return
    with tempfile.TemporaryDirectory(prefix="datum-rows-") as tmp:
        target = os.path.join(tmp, "table")
        with store.open_file(repo, commit, path) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        yield target


def table_row_ranges(
    store: Store,
    repo: str,
    commit: str,
    path: str,
    digest: str,
    rows_per_datum: int,
    *,
    field: str = "input.pfs.rows_per_datum",
) -> list[tuple[int, int]]:
    """The row ranges of the table ``repo@commit:path`` (content hash ``digest``), in order."""
    where = f"{repo}@{commit}:{path}"
    if path.endswith("/"):
        raise SpecError(
            f"{where} is a directory; rows_per_datum needs a glob that matches table files",
            field=field,
        )
    kind = PurePosixPath(path).suffix.lower()
    key = (digest, kind)
    total = _COUNTS.get(key) if digest else None
    if total is None:
        if kind not in ROW_SUFFIXES:
            raise SpecError(_unsupported(where, kind), field=field)
        try:
            with _local_copy(store, repo, commit, path, digest) as local:
                total = count_rows(local, suffix=kind)
        except SpecError:  # no Parquet reader installed
            raise SpecError(f"{where}: {_NO_PARQUET}", field=field) from None
        except (OSError, ValueError) as exc:  # an unreadable table (a corrupt Parquet footer)
            raise SpecError(f"{where}: cannot count its rows ({exc})", field=field) from None
        if digest:
            if len(_COUNTS) >= _COUNTS_MAX:
                _COUNTS.clear()
            _COUNTS[key] = total
    return list(RowCountChunker(chunk_size=rows_per_datum).row_ranges(total))
