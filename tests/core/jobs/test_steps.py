"""The execution seam: ``SetRef``, ``plan_job`` → ``run_set`` → ``finish_job``, the entrypoint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_datum_provider.core import (
    SetRef,
    SetSummary,
    create_pipeline,
    finish_job,
    plan_job,
    run_set,
    start_job,
)
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store

COPY = 'for f in "$PFS_ROOT"/data/*; do cp "$f" "$PFS_ROOT/out/$(basename "$f").out"; done'


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(6):
            c.put_bytes(f"/f{i}", b"x" * (i + 1))
    spec = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", COPY]},
        "datum_set_spec": {"number": 2},
    }
    create_pipeline(store, parse_spec(spec))
    return store


def test_set_ref_round_trips_through_json() -> None:
    ref = SetRef(pipeline="p", job="j" * 32, set=3, datums=10, bytes=1234)
    assert SetRef.from_dict(json.loads(json.dumps(ref.to_dict()))) == ref
    assert SetRef.from_dict({**ref.to_dict(), "added_later": 1}) == ref


def test_set_ref_from_a_bad_dict_names_what_is_missing() -> None:
    with pytest.raises(PipelineError, match="needs pipeline, job and set"):
        SetRef.from_dict({"pipeline": "p", "set": 1})


def test_plan_returns_one_ref_per_set_with_counts_and_bytes(store: Store) -> None:
    plan = plan_job(store, start_job(store, "copy"))
    assert [(r.set, r.datums, r.bytes) for r in plan.sets] == [(0, 2, 3), (1, 2, 7), (2, 2, 11)]
    assert {(r.pipeline, r.job) for r in plan.sets} == {("copy", plan.job.id)}


def test_sets_run_in_any_order_then_finish_lands(store: Store) -> None:
    plan = plan_job(store, start_job(store, "copy"))
    summaries = [run_set(store, ref) for ref in reversed(plan.sets)]
    assert [s.set for s in summaries] == [2, 1, 0]
    assert sum(s.success for s in summaries) == 6
    job = finish_job(store, plan.job)
    assert (job.state, job.processed) == ("success", 6)
    assert len(list(store.walk("copy", "master"))) == 6


def test_summary_round_trips(store: Store) -> None:
    plan = plan_job(store, start_job(store, "copy"))
    summary = run_set(store, plan.sets[0])
    assert SetSummary.from_dict(json.loads(json.dumps(summary.to_dict()))) == summary
    assert (summary.pipeline, summary.job, summary.success) == ("copy", plan.job.id, 2)


def test_entrypoint_runs_a_set_in_a_process_and_writes_the_summary(
    store: Store, tmp_path: Path
) -> None:
    plan = plan_job(store, start_job(store, "copy"))
    summary_file = tmp_path / "xcom" / "return.json"
    ref = plan.sets[1]
    argv = [sys.executable, "-m", "airflow_datum_provider.worker", "run-set"]
    argv += ["--store", store.url, "--pipeline", ref.pipeline, "--job", ref.job]
    argv += ["--set", str(ref.set), "--summary-file", str(summary_file)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    summary = SetSummary.from_dict(json.loads(summary_file.read_text()))
    assert (summary.set, summary.success, summary.failed) == (1, 2, 0)
    assert json.loads(done.stdout) == summary.to_dict()
    for other in (plan.sets[0], plan.sets[2]):
        run_set(store, other)
    assert finish_job(store, plan.job).state == "success"


def test_entrypoint_reports_an_unknown_job_in_one_line(store: Store) -> None:
    argv = [sys.executable, "-m", "airflow_datum_provider.worker", "run-set"]
    argv += ["--store", store.url, "--pipeline", "copy", "--job", "f" * 32, "--set", "0"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"worker: job {'f' * 32!r} of pipeline 'copy' not found"
    ]


def test_run_set_takes_a_callable_and_reports_each_datum(store: Store) -> None:
    """A caller holding the function (a DAG) replaces ``cmd``; ``on_datum`` hears every datum."""
    plan = plan_job(store, start_job(store, "copy"))
    seen: list[tuple[str, str, bool]] = []

    def shout(ctx: object) -> None:
        out = ctx.out  # type: ignore[attr-defined]
        for path in ctx.inputs["data"].parent.rglob("f*"):  # type: ignore[attr-defined]
            (out / path.name).write_bytes(path.read_bytes().upper())

    for ref in plan.sets:
        summary = run_set(
            store,
            ref,
            python=shout,
            on_datum=lambda d, r, resumed: seen.append((d.id, r["state"], resumed)),
        )
        assert summary.success == ref.datums
    # Again: every datum is resumed from its checkpoint, reported as such, and not re-run.
    again: list[bool] = []
    run_set(store, plan.sets[0], python=shout, on_datum=lambda d, r, resumed: again.append(resumed))
    assert again == [True, True]
    assert len(seen) == 6
    assert {s for _, s, _ in seen} == {"success"}
    assert not any(resumed for *_, resumed in seen)
    job = finish_job(store, plan.job)
    assert job.state == "success"
    assert store.read_bytes("copy", "master", "/f0") == b"X"


def test_a_job_records_who_started_it(store: Store) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords

    job = start_job(store, "copy", origin="airflow:dag/run-1")
    assert JobRecords(store).job("copy", job.id).origin == "airflow:dag/run-1"
    assert start_job(store, "copy").origin == ""


def test_a_set_larger_than_the_memory_buffer_streams_into_place(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Set files past the 8 MiB in-memory buffer go through a temp object; all reads back."""
    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.jobs import records as records_module

    store = Store.open(tmp_path / "big")
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(300):
            c.put_bytes(f"/f{i:04d}", b"x")
    spec = {
        "pipeline": {"name": "big"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
        "datum_set_spec": {"number": 200},
    }
    create_pipeline(store, parse_spec(spec))
    monkeypatch.setattr(records_module, "_SPILL", 1024)  # spill after 1 KiB, not 8 MiB
    plan = plan_job(store, start_job(store, "big"))
    assert [(r.set, r.datums, r.bytes) for r in plan.sets] == [(0, 200, 200), (1, 100, 100)]
    records = JobRecords(store)
    paths = [d.inputs[0].path for n in (0, 1) for d in records.read_set(plan.job, n)]
    assert paths == [f"/f{i:04d}" for i in range(300)]
    assert not store.backend.list("tmp")
