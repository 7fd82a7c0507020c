"""Incremental diff: skip only unchanged datums that succeeded; report the ones that vanished."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from airflow_datum_provider.core.datum import Datum, DatumInput
from airflow_datum_provider.core.incremental import PROCESS, SKIP, IndexRecord, diff_datums


def _datum(ident: str, digest: str) -> Datum:
    return Datum(ident, digest, (DatumInput("in", "r", "master", "c", f"/{ident}", digest, 1),))


NEW = [_datum("a", "h1"), _datum("b", "h2"), _datum("c", "h3")]


@pytest.mark.parametrize(
    ("record", "action"),
    [
        (IndexRecord("h1", "success"), SKIP),
        (IndexRecord("other", "success"), PROCESS),
        (IndexRecord("h1", "failed"), PROCESS),
        (IndexRecord("h1", "recovered"), PROCESS),
        (None, PROCESS),
    ],
    ids=["success-same-hash", "success-changed-hash", "failed", "recovered", "new"],
)
def test_skip_rule(record: IndexRecord | None, action: str) -> None:
    base = {} if record is None else {"a": record}
    (decision,) = list(diff_datums([NEW[0]], base))
    assert (decision.action, decision.datum) == (action, NEW[0])


def test_every_job_disables_skipping() -> None:
    base = {d.id: IndexRecord(d.hash, "success") for d in NEW}
    diff = diff_datums(NEW, base, every_job=True)
    assert [d.action for d in diff] == [PROCESS] * 3
    assert (diff.processed, diff.skipped, diff.removed) == (3, 0, [])


def test_no_base_job_processes_everything() -> None:
    diff = diff_datums(NEW, None)
    assert [d.action for d in diff] == [PROCESS] * 3
    assert diff.removed == []


def test_removed_ids_reported_whatever_their_state() -> None:
    base = {
        "a": IndexRecord("h1", "success"),
        "gone-ok": IndexRecord("x", "success"),
        "gone-failed": IndexRecord("x", "failed"),
        "gone-recovered": IndexRecord("x", "recovered"),
        "b": IndexRecord("h2", "failed"),
        "c": IndexRecord("old", "success"),
    }
    diff = diff_datums(NEW, base)
    decisions = [(d.action, d.datum.id) for d in diff]
    assert decisions == [(SKIP, "a"), (PROCESS, "b"), (PROCESS, "c")]
    assert (diff.processed, diff.skipped) == (2, 1)
    assert diff.removed == ["gone-failed", "gone-ok", "gone-recovered"]


def test_removed_with_every_job() -> None:
    base = {"a": IndexRecord("h1", "success"), "gone": IndexRecord("x", "success")}
    diff = diff_datums(NEW, base, every_job=True)
    list(diff)
    assert diff.removed == ["gone"]


def test_diff_streams_single_pass() -> None:
    """The new datums are consumed lazily, once, in order."""
    pulled: list[str] = []

    def source() -> Iterator[Datum]:
        for d in NEW:
            pulled.append(d.id)
            yield d

    it = iter(diff_datums(source(), {"a": IndexRecord("h1", "success")}))
    assert next(it).action == SKIP
    assert pulled == ["a"]
    assert [d.datum.id for d in it] == ["b", "c"]
    assert pulled == ["a", "b", "c"]


def _run(n: int, changed_every: int) -> float:
    new = [Datum(f"{i:064x}", f"h{i}", ()) for i in range(n)]
    base = {
        d.id: IndexRecord(d.hash if i % changed_every else "old", "success")
        for i, d in enumerate(new)
    }
    start = time.perf_counter()
    diff = diff_datums(new, base)
    skipped = sum(1 for d in diff if d.action == SKIP)
    elapsed = time.perf_counter() - start
    assert skipped == n - len(range(0, n, changed_every))
    return elapsed
