"""Incremental processing: which datums to process, which to skip, which disappeared.

Pachyderm's rule: a datum is skipped when the base job (the latest successful job of the
pipeline) has the same datum id with the same hash in state success. Failed and recovered datums
always run again; ``reprocess_spec: every_job`` disables skipping.

The diff is one streaming pass over the new datums with O(1) dict lookups into the base index,
so it is O(n); only the base index is held in memory (ids and hashes of its successful datums).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.states import PROCESS, SKIP, DatumState
from airflow_datum_provider.core.states import Decision as Action

__all__ = ["Decision", "Diff", "IndexRecord", "PROCESS", "SKIP", "diff_datums"]


class IndexRecord(NamedTuple):
    """What the base job's datum index says about one datum."""

    hash: str
    state: DatumState


class Decision(NamedTuple):
    """The diff's verdict on one datum: ``process`` or ``skip``."""

    action: Action
    datum: Datum


@dataclass(slots=True)
class Diff:
    """Iterate for decisions; after exhaustion ``removed`` holds base ids that disappeared."""

    datums: Iterable[Datum]
    base: Mapping[str, IndexRecord] | None
    every_job: bool = False
    processed: int = 0
    skipped: int = 0
    removed: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Decision]:
        skippable: dict[str, str] = {}
        others: set[str] = set()
        for ident, record in (self.base or {}).items():
            if record.state == "success" and not self.every_job:
                skippable[ident] = record.hash
            else:
                others.add(ident)
        pop = skippable.pop
        discard = others.discard
        for datum in self.datums:
            old = pop(datum.id, None)
            if old is not None and old == datum.hash:
                self.skipped += 1
                yield Decision(SKIP, datum)
            else:
                if old is None:
                    discard(datum.id)
                self.processed += 1
                yield Decision(PROCESS, datum)
        self.removed = sorted(skippable.keys() | others)


def diff_datums(
    datums: Iterable[Datum],
    base: Mapping[str, IndexRecord] | None,
    *,
    every_job: bool = False,
) -> Diff:
    """Compare new datums with the base job's index (``None``: no base job, process all)."""
    return Diff(datums, base, every_job)
