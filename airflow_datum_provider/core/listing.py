"""A commit's listing as Pachyderm's glob sees it: files plus synthesised directories.

Manifests hold files only. Pachyderm's glob runs over a listing that also has every directory
(path with a trailing ``/``) and the root ``/``; this module derives it while streaming.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from airflow_datum_provider.core.store.manifest import Entry

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import FileInfo, Store

__all__ = ["Item", "glob_files", "iter_listing", "listing_prefix"]


class Item(NamedTuple):
    """A listing entry; directories end with ``/`` and carry no size or hash here."""

    path: str
    size: int
    hash: str

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")


def listing_prefix(literal: str) -> str:
    """The directory to scan for a glob whose literal prefix is ``literal``."""
    cut = literal.rfind("/")
    return literal[: cut + 1] if cut >= 0 else "/"


def iter_listing(entries: Iterable[Entry], prefix: str = "/") -> Iterator[Item]:
    """Yield, in lexicographic order, every directory and file below ``prefix``.

    ``entries`` must be the files whose path starts with ``prefix`` (a directory ending in
    ``/``), sorted by path. The root ``/`` is yielded first when ``prefix`` is ``/`` and the
    listing is not empty. Directories above ``prefix`` are not yielded.
    """
    open_dirs: list[str] = []
    first = True
    for entry in entries:
        if first:
            first = False
            if prefix == "/":
                yield Item("/", 0, "")
        path = entry.path
        while open_dirs and not path.startswith(open_dirs[-1]):
            open_dirs.pop()
        start = len(open_dirs[-1]) if open_dirs else len(prefix)
        slash = path.find("/", start)
        while slash >= 0:
            directory = path[: slash + 1]
            open_dirs.append(directory)
            yield Item(directory, 0, "")
            slash = path.find("/", slash + 1)
        yield Item(path, entry.size, entry.hash)


def glob_files(store: Store, repo: str, ref: str, pattern: str) -> Iterator[FileInfo]:
    """Files and directories of a commit whose path matches a Pachyderm glob pattern."""
    from airflow_datum_provider.core.glob import compile_glob
    from airflow_datum_provider.core.store import FileInfo

    glob = compile_glob(pattern)
    prefix = listing_prefix(glob.prefix)
    # Only paths that start with the glob's literal prefix can match (``/d00*/*`` reads the
    # ``/d00`` range of the manifest); the listing still synthesises their directories.
    entries = store.entries(repo, ref, glob.prefix or prefix)
    for item in iter_listing(entries, prefix):
        if glob.match_entry(item.path):
            yield FileInfo(path=item.path, size=item.size, hash=item.hash)
