"""What ``create_pipeline`` makes of its inputs: branches that don't exist yet, cron repos."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_datum_provider.core.cron import tick, tick_name
from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.spec import PipelineSpec, parse_spec
from airflow_datum_provider.core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def _spec(input: dict[str, object], name: str = "p") -> PipelineSpec:
    return parse_spec(
        {"pipeline": {"name": name}, "input": input, "transform": {"cmd": ["sh", "-c", "true"]}}
    )


def test_input_branch_that_does_not_exist_yet_is_created_empty(store: Store) -> None:
    store.create_repo("data")  # no branch at all, as after `pachctl create repo`
    create_pipeline(store, _spec({"pfs": {"repo": "data", "branch": "staging", "glob": "/*"}}))
    assert store.branch_head("data", "staging") is None
    job = run_pipeline(store, "p")
    assert (job.state, job.total) == ("success", 0)
    with store.commit("data", "staging") as commit:
        commit.put_bytes("/a", b"a")
    assert run_pipeline(store, "p").processed == 1


def test_ensure_branch_never_moves_an_existing_branch(store: Store) -> None:
    store.create_repo("data")
    with store.commit("data", "master") as commit:
        commit.put_bytes("/a", b"a")
    head = store.branch_head("data", "master")
    assert store.ensure_branch("data", "master") is False
    assert store.branch_head("data", "master") == head
    assert store.ensure_branch("data", "dev") is True
    assert store.ensure_branch("data", "dev") is False


def test_cron_repo_is_created_with_the_pipeline_and_ticks_accumulate(store: Store) -> None:
    from datetime import UTC, datetime

    create_pipeline(store, _spec({"cron": {"name": "tick", "spec": "@every 1h"}}))
    assert store.branch_head("p_tick", "master") is None
    at = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    (first,) = tick(store, "p", at=at)
    assert (first.repo, first.path) == ("p_tick", "/2024-05-01T12:00:00Z")
    (second,) = tick(store, "p", at=at)  # the same second: a distinct, precise name
    assert second.path == "/2024-05-01T12:00:00.000000Z"
    assert {e.path for e in store.walk("p_tick", "master")} == {first.path, second.path}
    assert store.read_bytes("p_tick", "master", first.path) == b""
    assert run_pipeline(store, "p").processed == 2


def test_cron_overwrite_keeps_only_the_latest_tick(store: Store) -> None:
    from datetime import UTC, datetime

    create_pipeline(
        store,
        _spec({"cron": {"name": "tick", "spec": "@daily", "overwrite": True}}),
    )
    tick(store, "p", at=datetime(2024, 5, 1, tzinfo=UTC))
    tick(store, "p", at=datetime(2024, 5, 2, tzinfo=UTC))
    assert [e.path for e in store.walk("p_tick", "master")] == ["/2024-05-02T00:00:00Z"]
    assert tick_name(datetime(2024, 5, 2, 3, 4, 5)) == "/2024-05-02T03:04:05Z"


def test_tick_without_cron_input_is_an_error(store: Store) -> None:
    store.create_repo("data")
    create_pipeline(store, _spec({"pfs": {"repo": "data", "glob": "/*"}}))
    with pytest.raises(PipelineError, match="has no cron input"):
        tick(store, "p")


def test_deleting_a_cron_pipeline_deletes_its_cron_repo(store: Store) -> None:
    from airflow_datum_provider.core.engine import delete_pipeline

    create_pipeline(store, _spec({"cron": {"name": "tick", "spec": "@daily"}}))
    tick(store, "p")
    delete_pipeline(store, "p")
    assert not store.repo_exists("p_tick")
    assert not store.repo_exists("p")
