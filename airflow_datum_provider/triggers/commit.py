"""``CommitTrigger``: fire when a branch gets a commit its consumer has not claimed yet.

The trigger polls only the branch head (one listing of the branch's ref log and one small
read per poll: two filesystem calls on a local store, a LIST and a GET on S3) every
``poll_interval`` seconds, in a worker thread so the triggerer's event loop never blocks.
When the head is a commit the consumer has not claimed, it claims it in the store (an
exclusive create: see :mod:`airflow_datum_provider.core.claims`) and yields one event naming
it. Progress is the store's, never the trigger's memory, so a triggerer restart resumes where
the claims end: no commit is missed and none is announced twice. Two commits that land
between two polls are one event for the newer head, whose ``commits`` lists both (the newer
commit contains the older one, so one job processes both).

It serialises to its class path and plain keyword arguments: a connection id or a store URL
without credentials; the store is opened at run time from the connection.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from airflow.triggers.base import BaseEventTrigger, TriggerEvent

from airflow_datum_provider.core.store.paths import check_name

if TYPE_CHECKING:
    from airflow_datum_provider.core.claims import Claim
    from airflow_datum_provider.core.store import Store

__all__ = ["CommitTrigger", "default_consumer"]

_CLASSPATH = "airflow_datum_provider.triggers.commit.CommitTrigger"


def default_consumer(repo: str, branch: str) -> str:
    """The consumer name a trigger without ``consumer=`` claims under."""
    return f"watcher:{repo}@{branch}"


class CommitTrigger(BaseEventTrigger):
    """Yield ``{"status": "commit", "commit": ..., "commits": [...], ...}`` per claimed head.

    :param repo: the repo to watch.
    :param branch: its branch (default ``master``).
    :param datum_store_conn_id: a ``datum_store`` connection id (resolved in the triggerer).
    :param store: instead of a connection, a store URL that carries no credentials.
        With neither, the store is resolved as operators do (``datum_store_default``, then
        ``$DATUM_STORE``, then the embedded default folder).
    :param consumer: whose progress this is. Two watchers of one branch that must each see
        every commit need distinct consumers; default ``watcher:<repo>@<branch>``.
    :param claimant: set by :class:`~airflow_datum_provider.sensors.commit.CommitSensor`: the
        DAG run that claims, so a retried run gets its own commit back.
    :param poll_interval: seconds between two polls of the head.
    :param once: stop after the first event (a deferred sensor); an ``AssetWatcher`` keeps
        it running.

    With ``once``, a store error yields ``{"status": "error", "message": ...}`` and ends the
    trigger (the sensor fails with that line); a watcher logs it and polls again.
    """

    def __init__(
        self,
        *,
        repo: str,
        branch: str = "master",
        datum_store_conn_id: str | None = None,
        store: str | None = None,
        consumer: str | None = None,
        claimant: str = "",
        poll_interval: float = 5.0,
        once: bool = False,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        check_name(repo, "repo")
        check_name(branch, "branch")
        if store is not None and datum_store_conn_id is not None:
            raise ValueError("CommitTrigger: give store or datum_store_conn_id, not both")
        if store is not None:
            if not isinstance(store, str) or not store:
                raise ValueError(
                    f"CommitTrigger: store must be a URL string (it is serialised), got {store!r}"
                )
            if "://" in store and "@" in urlsplit(store).netloc:
                raise ValueError(
                    "CommitTrigger: store URL must not carry credentials; use datum_store_conn_id"
                )
        if not isinstance(poll_interval, (int, float)) or not 0 < poll_interval <= 86_400:
            raise ValueError(
                f"CommitTrigger: poll_interval must be > 0 and <= 86400 seconds, got "
                f"{poll_interval!r}"
            )
        self.repo = repo
        self.branch = branch
        self.datum_store_conn_id = datum_store_conn_id
        self.store = store
        self.consumer = consumer or default_consumer(repo, branch)
        self.claimant = claimant
        self.poll_interval = float(poll_interval)
        self.once = once
        self._store: Store | None = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments only (no credentials, no store object)."""
        return (
            _CLASSPATH,
            {
                "repo": self.repo,
                "branch": self.branch,
                "datum_store_conn_id": self.datum_store_conn_id,
                "store": self.store,
                "consumer": self.consumer,
                "claimant": self.claimant,
                "poll_interval": self.poll_interval,
                "once": self.once,
            },
        )

    def _open_store(self) -> Store:
        if self._store is None:
            from airflow_datum_provider.hooks.store import DatumStoreHook, resolve_store

            if self.datum_store_conn_id is not None:
                self._store = DatumStoreHook(self.datum_store_conn_id).get_store()
            else:
                self._store = resolve_store(self.store)
        return self._store

    def poll(self, known: Claim | None = None) -> Claim | None:
        """One blocking poll: the claim of a new head, or ``None``."""
        from airflow_datum_provider.core.claims import claim_next

        return claim_next(
            self._open_store(),
            self.consumer,
            self.repo,
            self.branch,
            by=self.claimant,
            known=known,
        )

    def event_payload(self, claim: Claim) -> dict[str, Any]:
        """The event (and Asset event ``extra``) for a claim: small JSON only."""
        from airflow_datum_provider.assets import commit_event_extra, datum_uri

        return {
            "status": "commit",
            "uri": datum_uri(self.repo, self.branch),
            **commit_event_extra(self.repo, self.branch, claim.commit, commits=claim.commits),
            "previous": claim.previous,
            "consumer": claim.consumer,
            "seq": claim.seq,
        }

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the head until a new commit is claimed; yield it (and go on unless ``once``)."""
        from airflow_datum_provider.core.errors import DatumError

        known: Claim | None = None
        while True:
            try:
                claim = await asyncio.to_thread(self.poll, known)
            except (DatumError, ValueError, OSError) as exc:
                if self.once:
                    self.log.error("CommitTrigger %s@%s: %s", self.repo, self.branch, exc)
                    yield TriggerEvent({"status": "error", "message": str(exc)})  # type: ignore[no-untyped-call]
                    return
                # A watcher outlives store hiccups (and repos created later): log, poll again.
                self.log.warning("CommitTrigger %s@%s: %s", self.repo, self.branch, exc)
                await asyncio.sleep(self.poll_interval)
                continue
            if claim is not None:
                known = claim
                self.log.info(
                    "New commit %s on %s@%s (consumer %s)",
                    claim.commit,
                    self.repo,
                    self.branch,
                    self.consumer,
                )
                yield TriggerEvent(self.event_payload(claim))  # type: ignore[no-untyped-call]
                if self.once:
                    return
                continue  # look again at once: the head may have moved meanwhile
            await asyncio.sleep(self.poll_interval)
