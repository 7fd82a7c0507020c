"""CommitTrigger driven directly (``asyncio.wait_for``), its serialisation, and restarts."""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.store import Store

TIMEOUT = 60.0


def _put(store: Store, repo: str, path: str) -> str:
    with store.commit(repo) as c:
        c.put_bytes(path, path.encode())
    head = store.branch_head(repo, "master")
    assert head is not None
    return head


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "store"))
    s.create_repo("words")
    return s


def _trigger(store: Store, **kwargs: Any) -> Any:
    from airflow_datum_provider.triggers.commit import CommitTrigger

    return CommitTrigger(repo="words", store=store.url, poll_interval=0.05, **kwargs)


def _after_polls(trigger: Any, n: int) -> threading.Event:
    """An event set once the trigger has finished ``n`` polls (the real ``poll`` runs)."""
    real_poll = trigger.poll
    done = [0]
    reached = threading.Event()

    def counted(known: Any = None) -> Any:
        result = real_poll(known)
        done[0] += 1
        if done[0] >= n:
            reached.set()
        return result

    trigger.poll = counted
    return reached


def _rebuilt(trigger: Any) -> Any:
    """What the triggerer does: import the class path, call it with the kwargs."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**kwargs)


async def _next(gen: Any) -> dict[str, Any]:
    event = await asyncio.wait_for(gen.__anext__(), timeout=TIMEOUT)
    payload: dict[str, Any] = event.payload
    return payload


async def _nothing_for(gen: Any, seconds: float) -> None:
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(gen.__anext__()), timeout=seconds)


def test_fires_once_per_commit_and_resumes_after_a_restart(
    airflow_home: Path, store: Store
) -> None:
    async def scenario() -> None:
        first = _put(store, "words", "/a")
        trigger = _trigger(store)
        gen = trigger.run()
        event = await _next(gen)
        assert event["status"] == "commit"
        assert (event["commit"], event["commits"], event["previous"]) == (first, [first], None)
        assert event["uri"] == "datum://words@master"
        await gen.aclose()

        # "Triggerer restart": a new instance from the serialised form, no shared memory.
        rebuilt = _rebuilt(trigger)
        three_polls = _after_polls(rebuilt, 3)
        again = rebuilt.run()
        pending = asyncio.ensure_future(again.__anext__())
        # Three complete polls (counted, not timed): the claimed head is not announced again.
        assert await asyncio.to_thread(three_polls.wait, TIMEOUT)
        assert not pending.done()
        second = _put(store, "words", "/b")
        event = (await asyncio.wait_for(pending, timeout=TIMEOUT)).payload
        assert (event["commit"], event["commits"], event["previous"]) == (second, [second], first)
        await again.aclose()

    asyncio.run(scenario())


def test_two_commits_between_polls_are_one_event_listing_both(
    airflow_home: Path, store: Store
) -> None:
    async def scenario() -> None:
        c1 = _put(store, "words", "/a")
        trigger = _trigger(store)
        gen = trigger.run()
        assert (await _next(gen))["commit"] == c1
        await gen.aclose()
        c2 = _put(store, "words", "/b")  # the triggerer is down: two commits land
        c3 = _put(store, "words", "/c")
        gen = _rebuilt(trigger).run()
        event = await _next(gen)
        assert (event["commit"], event["commits"]) == (c3, [c2, c3])
        await gen.aclose()

    asyncio.run(scenario())


def test_once_mode_reports_an_unknown_repo_as_one_line(airflow_home: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.triggers.commit import CommitTrigger

    url = str(tmp_path / "empty")
    Store.open(url)

    async def scenario() -> dict[str, Any]:
        gen = CommitTrigger(repo="nope", store=url, once=True, poll_interval=0.05).run()
        return await _next(gen)

    event = asyncio.run(scenario())
    assert event["status"] == "error"
    assert "nope" in event["message"]
    assert "\n" not in event["message"]


def test_the_event_loop_keeps_running_while_a_poll_blocks(airflow_home: Path, store: Store) -> None:
    import threading

    release = threading.Event()
    trigger = _trigger(store)
    real_poll = trigger.poll

    def slow_poll(known: Any = None) -> Any:
        assert release.wait(TIMEOUT)  # blocks its thread, not the loop
        return real_poll(known)

    trigger.poll = slow_poll

    async def scenario() -> int:
        _put(store, "words", "/a")
        ticks = 0
        task = asyncio.ensure_future(trigger.run().__anext__())
        while ticks < 20:
            await asyncio.sleep(0.01)
            ticks += 1
        assert not task.done()
        release.set()
        await asyncio.wait_for(task, timeout=TIMEOUT)
        return ticks

    assert asyncio.run(scenario()) == 20


def test_serialisation_round_trip_carries_no_credentials(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.serialization.serialized_objects import BaseSerialization

    from airflow_datum_provider.triggers.commit import CommitTrigger

    secret = "s3cr3t-VALUE-4242"
    monkeypatch.setenv(
        "AIRFLOW_CONN_WORDS_STORE",
        json.dumps(
            {
                "conn_type": "datum_store",
                "host": str(tmp_path / "store"),
                "extra": {},
                "description": secret,
            }
        ),
    )
    trigger = CommitTrigger(
        repo="words", branch="dev", datum_store_conn_id="words_store", poll_interval=2
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_datum_provider.triggers.commit.CommitTrigger"
    assert kwargs == {
        "repo": "words",
        "branch": "dev",
        "datum_store_conn_id": "words_store",
        "store": None,
        "consumer": "watcher:words@dev",
        "claimant": "",
        "poll_interval": 2.0,
        "once": False,
    }
    encoded = json.dumps(BaseSerialization.serialize(kwargs))
    assert secret not in encoded
    decoded = BaseSerialization.deserialize(json.loads(encoded))
    assert _rebuilt(trigger).serialize() == (classpath, decoded)
    # The store is resolved from the connection only when the trigger runs.
    assert trigger._store is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"store": "s3://key:secret@bucket/x"}, "must not carry credentials"),
        ({"poll_interval": 0}, "poll_interval must be > 0"),
        ({"repo": "a/b"}, "repo name 'a/b' is invalid"),
        ({"store": "/x", "datum_store_conn_id": "c"}, "not both"),
    ],
    ids=["credentials", "interval", "repo", "both"],
)
def test_bad_arguments_are_one_line(
    airflow_home: Path, kwargs: dict[str, Any], message: str
) -> None:
    from airflow_datum_provider.triggers.commit import CommitTrigger

    with pytest.raises(ValueError, match=message):
        CommitTrigger(**{"repo": "words", **kwargs})


def test_is_an_event_trigger_for_asset_watchers(airflow_home: Path, store: Store) -> None:
    from airflow.sdk import AssetWatcher

    from airflow_datum_provider.assets import DatumAsset

    asset = DatumAsset("words", watchers=[AssetWatcher(name="w", trigger=_trigger(store))])
    assert asset.uri == "datum://words@master"
    assert len(asset.watchers) == 1
