"""Claims: a consumer's durable, compare-and-swap progress over a branch's commits."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from airflow_datum_provider.core.claims import Claim, claim_next, claims, last_claim
from airflow_datum_provider.core.errors import RepoNotFound
from airflow_datum_provider.core.store import Store


def _put(store: Store, repo: str, path: str, data: bytes) -> str:
    with store.commit(repo, "master") as c:
        c.put_bytes(path, data)
    head = store.branch_head(repo, "master")
    assert head is not None
    return head


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "store"))
    s.create_repo("words")
    return s


def test_no_branch_yet_waits_and_unknown_repo_raises(store: Store) -> None:
    assert claim_next(store, "c", "words", "master") is None
    with pytest.raises(RepoNotFound):
        claim_next(store, "c", "nope", "master")


def test_each_head_is_claimed_once_and_a_restart_resumes_from_the_store(store: Store) -> None:
    first = _put(store, "words", "/a", b"a")
    claim = claim_next(store, "c", "words")
    assert claim is not None
    assert (claim.commit, claim.commits, claim.previous, claim.seq) == (first, (first,), None, 1)
    assert claim_next(store, "c", "words") is None  # nothing new
    # "Restart": a fresh Store object, no memory, same answer.
    again = Store.open(store.url)
    assert claim_next(again, "c", "words") is None
    second = _put(store, "words", "/b", b"b")
    claim2 = claim_next(again, "c", "words")
    assert claim2 is not None
    assert (claim2.commit, claim2.commits, claim2.previous) == (second, (second,), first)
    # Another consumer has its own progress.
    other = claim_next(store, "other", "words")
    assert other is not None
    assert other.commits == (first, second)


def test_two_commits_between_polls_are_one_claim_listing_both(store: Store) -> None:
    _put(store, "words", "/a", b"a")
    claim_next(store, "c", "words")
    c2 = _put(store, "words", "/b", b"b")
    c3 = _put(store, "words", "/c", b"c")
    claim = claim_next(store, "c", "words")
    assert claim is not None
    assert claim.commit == c3
    assert claim.commits == (c2, c3)
    assert [c.commit for c in claims(store, "c", "words", "master")][-1] == c3


def test_a_claimant_asking_again_gets_its_own_claim(store: Store) -> None:
    first = _put(store, "words", "/a", b"a")
    mine = claim_next(store, "c", "words", by="dag/run1")
    assert mine is not None
    _put(store, "words", "/b", b"b")
    # The retried run gets the commit it had claimed, not the newer head.
    again = claim_next(store, "c", "words", by="dag/run1")
    assert again == mine
    assert again.commit == first
    # A second run claims the new head.
    theirs = claim_next(store, "c", "words", by="dag/run2")
    assert theirs is not None
    assert theirs.commit != first


def test_claimant_marker_lost_in_a_crash_still_finds_the_claim(store: Store) -> None:
    _put(store, "words", "/a", b"a")
    mine = claim_next(store, "c", "words", by="dag/run1")
    assert mine is not None
    # Simulate a crash between the claim and its claimant marker.
    folder = [k for k in store.backend.list("meta/claims")]
    assert len(folder) == 1
    store.backend.delete_tree(f"meta/claims/{folder[0]}/words/master/by")
    assert claim_next(store, "c", "words", by="dag/run1") == mine


def test_racing_pollers_make_one_claim_per_head(store: Store) -> None:
    head = _put(store, "words", "/a", b"a")
    results: list[Claim | None] = []
    barrier = threading.Barrier(8)

    def poll() -> None:
        barrier.wait()
        results.append(claim_next(Store.open(store.url), "c", "words"))

    threads = [threading.Thread(target=poll) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    won = [r for r in results if r is not None]
    assert len(results) == 8
    assert [w.commit for w in won] == [head]
    last = last_claim(store, "c", "words", "master")
    assert last is not None
    assert last.seq == 1


def test_bad_consumer_name_is_one_line(store: Store) -> None:
    with pytest.raises(ValueError, match=r"consumer: '' is not allowed"):
        claim_next(store, "", "words")
