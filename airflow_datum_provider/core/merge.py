"""Merge datum outputs into the output commit, with Pachyderm's collision rules.

The new output is the parent output commit minus the files of every datum that is not skipped
(re-run or removed datums lose their old outputs), plus the outputs of the datums processed in
this job. Every output file is tagged with the datum that wrote it, so:

* one path from two different datums fails the job with
  ``duplicate path output by different datums (<path> from <id1> and <path> from <id2>)``;
* a path that is a file in one place and a directory in another fails with
  ``file / directory path collision (<path>)``.

Files without a tag (put into the output repo by a person) are kept as they are.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Iterator

from airflow_datum_provider.core.errors import MergeError
from airflow_datum_provider.core.store import Entry

__all__ = ["check_collisions", "merge_outputs"]


def merge_outputs(
    parent: Iterable[Entry],
    keep_tags: Collection[str],
    new_outputs: Iterable[Entry],
) -> tuple[list[str], Iterator[Entry]]:
    """Plan the change from ``parent`` to the merged output.

    Returns the parent paths to delete and a checked, sorted stream of the merged files. The
    stream raises :class:`MergeError` on a collision; consume it fully before publishing.
    """
    kept: list[Entry] = []
    dropped: list[str] = []
    for entry in parent:
        if not entry.tag or entry.tag in keep_tags:
            kept.append(entry)
        else:
            dropped.append(entry.path)
    new_sorted = sorted(new_outputs)
    merged = heapq.merge(kept, new_sorted)
    return dropped, check_collisions(merged)


def check_collisions(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Pass sorted entries through, raising :class:`MergeError` on Pachyderm's collisions."""
    files: set[str] = set()
    previous: Entry | None = None
    for entry in entries:
        path = entry.path
        if previous is not None and previous.path == path:
            raise MergeError(
                "duplicate path output by different datums "
                f"({path} from {previous.tag} and {path} from {entry.tag})",
                path=path,
            )
        slash = path.find("/", 1)
        while slash > 0:
            if path[:slash] in files:
                raise MergeError(f"file / directory path collision ({path[:slash]})", path=path)
            slash = path.find("/", slash + 1)
        files.add(path)
        previous = entry
        yield entry
