"""Records are versioned and tolerant; states come from one vocabulary; views for CLI and UI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import get_args

import pytest

from airflow_datum_provider.core import create_pipeline, datum_views, live_job, plan_job, run_set
from airflow_datum_provider.core.jobs import JobInfo, JobRecords, PipelineInfo, _layout
from airflow_datum_provider.core.jobs.lifecycle import start_job
from airflow_datum_provider.core.jobs.records import RECORD_VERSION
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.states import (
    DATUM_STATES,
    JOB_STATES,
    TERMINAL_STATES,
    DatumState,
    DatumStatus,
    JobState,
)
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.worker.policy import DatumResult

SCRIPT = 'n=$(basename "$PFS_ROOT"/data/*); [ "$n" != bad ] || exit 3; touch "$PFS_ROOT/out/$n"'


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for name in ("a", "b", "bad"):
            c.put_bytes(f"/{name}", name.encode())
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", SCRIPT]},
        "datum_set_spec": {"number": 1},
        "datum_tries": 1,
    }
    create_pipeline(store, parse_spec(spec))
    return store


def test_the_vocabulary_is_the_one_the_records_use() -> None:
    assert get_args(JobState) == JOB_STATES
    assert set(JOB_STATES) > TERMINAL_STATES
    assert DATUM_STATES == get_args(DatumState) == ("success", "failed", "recovered")
    assert set(get_args(DatumStatus)) == {*DATUM_STATES, "skipped", "pending"}
    assert JobInfo.__dataclass_fields__["state"].type == "JobState"
    assert DatumResult.__dataclass_fields__["state"].type == "DatumState"


def test_records_carry_a_version_and_readers_ignore_unknown_keys(store: Store) -> None:
    job = start_job(store, "p")
    raw = json.loads(store.backend.read(_layout.job("p", job.id)))
    assert raw["record"] == RECORD_VERSION
    newer = {**raw, "record": RECORD_VERSION + 1, "added_by_a_newer_worker": {"x": 1}}
    assert JobInfo.from_dict(newer) == job
    older = {k: v for k, v in raw.items() if k not in ("record", "base_commit", "salt")}
    assert JobInfo.from_dict(older).base_commit is None  # a record from before the field
    info = JobRecords(store).pipeline("p")
    assert PipelineInfo.from_dict({**info.to_dict(), "future": True}) == info
    result = DatumResult(datum_id="d", state="success", try_number=2)
    assert DatumResult.from_dict({**result.to_dict(), "future": [1]}) == result


def test_an_index_state_this_version_does_not_know_is_never_skipped(store: Store) -> None:
    job = start_job(store, "p")
    records = JobRecords(store)
    records.write_index(job, [("d1", "h1", "success"), ("d2", "h2", "quarantined")])  # type: ignore[list-item]
    index = records.read_index(job)
    assert (index["d1"].state, index["d2"].state) == ("success", "failed")


def test_datum_views_and_live_job_while_a_job_runs(store: Store) -> None:
    plan = plan_job(store, start_job(store, "p"))
    by_name = {ref.set: ref for ref in plan.sets}
    views = list(datum_views(store, plan.job))
    assert [v.status for v in views] == ["pending"] * 3
    for ref in by_name.values():
        run_set(store, ref)
    views = list(datum_views(store, plan.job))
    statuses = sorted(v.status for v in views)
    assert statuses == ["failed", "success", "success"]
    failed = next(v for v in views if v.status == "failed")
    assert failed.to_dict()["reason"] == "exit status 3"
    assert failed.to_summary_dict()["attempts"] == 1
    assert failed.total_time is not None
    live = live_job(store, JobRecords(store).job("p", plan.job.id))
    assert (live.processed, live.failed) == (2, 1)
