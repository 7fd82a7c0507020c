"""Tables stored in a repo commit, scanned lazily for the batch executor.

A local store's blob is scanned in place (its format taken from the repo path's suffix); any
other store's file is streamed to a private temporary file first (bounded memory), then scanned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from airflow_datum_provider.batch.chunkers import _SCANNERS, scan_path
from airflow_datum_provider.core.errors import ChunkingError

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import Store

__all__ = ["TABLE_SUFFIXES", "repo_tables"]

TABLE_SUFFIXES = tuple(sorted(_SCANNERS))


@contextlib.contextmanager
def repo_tables(store: Store, repo: str, ref: str, paths: Sequence[str]) -> Iterator[list[Any]]:
    """Yield one polars ``LazyFrame`` per path of ``repo@ref``; temporary copies are removed after."""
    with contextlib.ExitStack() as stack:
        frames = []
        for path in paths:
            suffix = PurePosixPath(path).suffix.lower()
            if suffix not in _SCANNERS:
                raise ChunkingError(
                    f"{repo}@{ref}:{path}: unsupported file type {suffix or '(none)'!r}; "
                    f"allowed: {', '.join(TABLE_SUFFIXES)}",
                    path=path,
                )
            info = store.inspect_file(repo, ref, path)
            if info.is_dir:
                raise ChunkingError(f"{repo}@{ref}:{path}: is a directory, not a table", path=path)
            local = store.blob_path(info.hash) if info.hash else None
            if local is not None and os.path.isfile(local):
                frames.append(scan_path(local, suffix=suffix))
                continue
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="datum-batch-"))
            target = os.path.join(tmp, f"table{suffix}")
            with store.open_file(repo, ref, path) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            frames.append(scan_path(target))
        yield frames
