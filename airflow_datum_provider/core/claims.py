"""Durable, compare-and-swap claims of a branch's commits by a named consumer.

A consumer (a sensor, an ``AssetWatcher`` trigger, any poller) moves along one branch by
*claiming* its head: one immutable record per claim, created exclusively, so two pollers racing
for one commit produce one claim, and a restarted poller resumes from the store, never from its
memory. Two commits that land between polls become **one** claim of the newer head whose
``commits`` lists both, oldest first (commits are snapshots: the newer one contains the older).

::

    meta/claims/<consumer key>/<repo>/<branch>/<seq>.json   Claim (``seq`` zero-padded, from 1)
    meta/claims/<consumer key>/<repo>/<branch>/by/<key>     seq of the claim a claimant made

A claim may name its claimant (for a sensor: its DAG run); the same claimant asking again gets
its own claim back, so a sensor retried after a crash returns the commit it had claimed instead
of skipping it. One poll of an idle branch is one listing of the branch's ref log and one small
read (the store's ``next_commit``); the claim folder is only listed when the head moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from airflow_datum_provider.core.errors import BranchNotFound, ConflictError, DatumError
from airflow_datum_provider.core.store import Store

__all__ = ["Claim", "claim_next", "claims", "last_claim"]

_SEQ_WIDTH = 12
# Commits listed in one claim's ``commits``; older ones are still covered by its head.
MAX_LISTED = 100
_RACE_RETRIES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One claimed head: ``commit`` plus every commit since the previous claim (``commits``)."""

    consumer: str
    repo: str
    branch: str
    seq: int
    commit: str
    commits: tuple[str, ...]
    previous: str | None
    by: str = ""
    claimed: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "repo": self.repo,
            "branch": self.branch,
            "seq": self.seq,
            "commit": self.commit,
            "commits": list(self.commits),
            "previous": self.previous,
            "by": self.by,
            "claimed": self.claimed,
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Claim:
        return cls(
            consumer=raw["consumer"],
            repo=raw["repo"],
            branch=raw["branch"],
            seq=int(raw["seq"]),
            commit=raw["commit"],
            commits=tuple(raw.get("commits", (raw["commit"],))),
            previous=raw.get("previous"),
            by=raw.get("by", ""),
            claimed=raw.get("claimed", ""),
        )


def _key(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _dir(consumer: str, repo: str, branch: str) -> str:
    return f"meta/claims/{_key(consumer)}/{repo}/{branch}"


def _check_consumer(consumer: str) -> None:
    if not isinstance(consumer, str) or not consumer.strip() or len(consumer) > 500:
        raise ValueError(
            f"consumer: {consumer!r} is not allowed; give a non-empty name of at most 500 "
            "characters (e.g. the DAG id)"
        )


def _seqs(store: Store, folder: str) -> list[int]:
    names = store.backend.list(folder)
    return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())


def _read(store: Store, folder: str, seq: int) -> Claim:
    key = f"{folder}/{seq:0{_SEQ_WIDTH}d}.json"
    try:
        return Claim.from_dict(json.loads(store.backend.read(key)))
    except (ValueError, KeyError, TypeError) as exc:
        raise DatumError(f"store {store.url}: {key} is corrupt ({exc})", key=key) from None


def last_claim(store: Store, consumer: str, repo: str, branch: str) -> Claim | None:
    """The consumer's newest claim on ``repo@branch``, or ``None`` before its first."""
    _check_consumer(consumer)
    folder = _dir(consumer, repo, branch)
    seqs = _seqs(store, folder)
    return _read(store, folder, seqs[-1]) if seqs else None


def claims(store: Store, consumer: str, repo: str, branch: str) -> list[Claim]:
    """Every claim of the consumer on ``repo@branch``, oldest first."""
    _check_consumer(consumer)
    folder = _dir(consumer, repo, branch)
    return [_read(store, folder, seq) for seq in _seqs(store, folder)]


def _by_claim(store: Store, consumer: str, repo: str, branch: str, by: str) -> Claim | None:
    folder = _dir(consumer, repo, branch)
    try:
        seq = int(store.backend.read(f"{folder}/by/{_key(by)}").decode())
    except FileNotFoundError:
        # The claimant may have died between its claim and this marker: its claim is then
        # the newest one unless someone else claimed since (and then it is not ours to find).
        last = last_claim(store, consumer, repo, branch)
        return last if last is not None and last.by == by else None
    return _read(store, folder, seq)


def _since(store: Store, repo: str, head: str, previous: str | None) -> tuple[str, ...]:
    """Commits from just after ``previous`` up to ``head``, oldest first (capped)."""
    found = [head]
    parent = store.inspect_commit(repo, head).parent
    while parent is not None and parent != previous and len(found) < MAX_LISTED:
        found.append(parent)
        parent = store.inspect_commit(repo, parent).parent
    return tuple(reversed(found))


def claim_next(
    store: Store,
    consumer: str,
    repo: str,
    branch: str = "master",
    *,
    by: str = "",
    known: Claim | None = None,
) -> Claim | None:
    """Claim the branch head for ``consumer`` if its last claim is another commit.

    Returns the new claim, the claim ``by`` made earlier (a retried claimant), or ``None``
    when there is nothing new (no branch yet, an empty branch, or the head is already claimed).
    ``known`` is a hint (the caller's last claim): when the head still equals it, nothing is
    listed. An unknown repo raises instead of waiting forever.
    """
    _check_consumer(consumer)
    if by:
        mine = _by_claim(store, consumer, repo, branch, by)
        if mine is not None:
            return mine
    folder = _dir(consumer, repo, branch)
    for _ in range(_RACE_RETRIES):
        try:
            head = store.branch_head(repo, branch)
        except BranchNotFound:
            store.inspect_repo(repo)  # an unknown repo raises; a missing branch waits
            head = None
        if head is None or (known is not None and known.commit == head):
            return None
        last = last_claim(store, consumer, repo, branch)
        if last is not None and last.commit == head:
            return None
        previous = last.commit if last is not None else None
        claim = Claim(
            consumer=consumer,
            repo=repo,
            branch=branch,
            seq=(last.seq if last is not None else 0) + 1,
            commit=head,
            commits=_since(store, repo, head, previous),
            previous=previous,
            by=by,
            claimed=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        body = json.dumps(claim.to_dict(), sort_keys=True).encode()
        if store.backend.create(f"{folder}/{claim.seq:0{_SEQ_WIDTH}d}.json", body):
            if by:
                store.backend.create(f"{folder}/by/{_key(by)}", str(claim.seq).encode())
            return claim
        # Another poller claimed this sequence number first: look again.
    raise ConflictError(
        f"claims of {consumer!r} on {repo}@{branch}: lost {_RACE_RETRIES} races in a row",
        repo=repo,
        branch=branch,
    )
