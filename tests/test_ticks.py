"""Cron inputs on the DAG's schedule: the schedule from the spec, one tick per DAG run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_datum_provider.core.engine import run_pipeline
from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.pipelines import create_pipeline
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.ticks import cron_schedule, tick_for_run

SPEC = {
    "pipeline": {"name": "nightly"},
    "input": {"cron": {"name": "tick", "spec": "@every 1h"}},
    "transform": {"cmd": ["bash", "-c", "ls /pfs/tick > /pfs/out/seen"]},
}


@pytest.mark.parametrize(
    ("line", "schedule"),
    [("@every 1h", timedelta(hours=1)), ("@daily", "@daily"), ("*/5 * * * *", "*/5 * * * *")],
)
def test_schedule_from_the_cron_spec(line: str, schedule: object) -> None:
    raw = {**SPEC, "input": {"cron": {"name": "tick", "spec": line}}}
    assert cron_schedule(parse_spec(raw)) == schedule


def test_no_cron_input_and_conflicting_specs() -> None:
    plain = {**SPEC, "input": {"pfs": {"repo": "words", "glob": "/*"}}}
    assert cron_schedule(parse_spec(plain)) is None
    two = {
        **SPEC,
        "input": {
            "cross": [
                {"cron": {"name": "a", "spec": "@daily"}},
                {"cron": {"name": "b", "spec": "@hourly"}},
            ]
        },
    }
    with pytest.raises(SpecError, match="cannot share one DAG schedule"):
        cron_schedule(parse_spec(two))


def test_one_tick_per_run_then_the_job_sees_it(tmp_path: Path) -> None:
    store = Store.open(str(tmp_path / "store"))
    create_pipeline(store, parse_spec(SPEC))
    end = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    context = {"data_interval_end": end, "logical_date": end - timedelta(hours=1)}
    first = tick_for_run(store, "nightly", context)
    again = tick_for_run(store, "nightly", context)  # a retried create task
    assert [(t.repo, t.path) for t in first] == [("nightly_tick", "/2026-03-01T12:00:00Z")]
    assert again == first
    assert len(list(store.list_commits("nightly_tick", "master"))) == 1
    job = run_pipeline(store, "nightly", parallelism=1, executor="inline")
    assert job.state == "success", job.reason
    assert store.read_bytes("nightly", "master", "/seen") == b"2026-03-01T12:00:00Z\n"
    # The next run ticks once more.
    later = {"data_interval_end": end + timedelta(hours=1)}
    (second,) = tick_for_run(store, "nightly", later)
    assert second.path == "/2026-03-01T13:00:00Z"
