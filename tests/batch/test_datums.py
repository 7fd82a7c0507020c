"""The batch executor as a datum set's engine: run_set(datum_executor=...) on a real job."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from airflow_datum_provider.batch import BatchConfig, ExecutionStrategy
from airflow_datum_provider.batch.datums import (
    chunk_timeout_reason,
    datum_executor,
    set_timeout_reason,
)
from airflow_datum_provider.core import create_pipeline, finish_job, plan_job, run_set, start_job
from airflow_datum_provider.core.errors import JobKilled
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(6):
            c.put_bytes(f"/f{i}", f"v{i}".encode())
    spec = {
        "pipeline": {"name": "up"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
        "datum_set_spec": {"number": 6},
        "datum_tries": 1,
    }
    create_pipeline(store, parse_spec(spec))
    return store


def _name(ctx: object) -> Path:
    return next(p for p in ctx.inputs["data"].parent.rglob("f*"))  # type: ignore[attr-defined]


def test_datums_run_on_two_workers_at_once(store: Store) -> None:
    barrier = threading.Barrier(2, timeout=60)  # passes only if two datums run concurrently

    def upper(ctx: object) -> None:
        path = _name(ctx)
        if path.name in ("f0", "f1"):
            barrier.wait()
        (ctx.out / path.name).write_bytes(path.read_bytes().upper())  # type: ignore[attr-defined]

    plan = plan_job(store, start_job(store, "up"))
    (ref,) = plan.sets
    config = BatchConfig(max_workers=2, execution_strategy=ExecutionStrategy.PARALLEL)
    seen: list[str] = []
    summary = run_set(
        store,
        ref,
        python=upper,
        datum_executor=datum_executor(config),
        on_datum=lambda d, r, resumed: seen.append(r["state"]),
    )
    assert (summary.success, summary.failed) == (6, 0)
    assert seen == ["success"] * 6
    assert finish_job(store, plan.job).state == "success"
    assert [store.read_bytes("up", "master", f"/f{i}") for i in range(6)] == [
        f"V{i}".encode() for i in range(6)
    ]


def test_fail_fast_stops_the_set_and_the_job_fails_with_that_datum(store: Store) -> None:
    ran: list[str] = []

    def picky(ctx: object) -> None:
        path = _name(ctx)
        ran.append(path.name)
        if path.name == "f1":
            raise ValueError("f1 is bad")
        (ctx.out / path.name).write_bytes(b"ok")  # type: ignore[attr-defined]

    plan = plan_job(store, start_job(store, "up"))
    (ref,) = plan.sets
    config = BatchConfig(max_workers=1, fail_fast=True)
    summary = run_set(store, ref, python=picky, datum_executor=datum_executor(config))
    assert ran == ["f0", "f1"]  # nothing scheduled after the failed datum
    assert (summary.success, summary.failed) == (1, 1)
    job = finish_job(store, plan.job)
    assert job.state == "failure"
    assert job.reason == f"datum {summary.failed_datums[0]} failed"
    assert store.branch_head("up", "master") is None  # the output branch did not move


def test_chunk_timeout_fails_a_python_datum_with_the_reason(store: Store) -> None:
    def slow_f2(ctx: object) -> None:
        path = _name(ctx)
        if path.name == "f2":
            time.sleep(4)  # on a worker thread: no SIGALRM, it fails once it returns
        (ctx.out / path.name).write_bytes(b"ok")  # type: ignore[attr-defined]

    plan = plan_job(store, start_job(store, "up"))
    (ref,) = plan.sets
    config = BatchConfig(max_workers=2, chunk_timeout_seconds=2)
    summary = run_set(store, ref, python=slow_f2, datum_executor=datum_executor(config))
    assert (summary.success, summary.failed) == (5, 1)
    (bad,) = summary.failed_datums
    result = JobRecords(store).results(plan.job, ref.set)[bad]
    assert result["reason"] == chunk_timeout_reason(2)
    assert result["reason"] == "datum timed out after 2s (batch_config.chunk_timeout_seconds)"
    assert finish_job(store, plan.job).reason == f"datum {bad} failed"


def test_set_timeout_kills_the_set_with_the_reason(store: Store) -> None:
    gate = threading.Event()

    def first_blocks(ctx: object) -> None:
        if _name(ctx).name == "f0":
            gate.wait(3)  # the set's 1 s runs out meanwhile
        (ctx.out / _name(ctx).name).write_bytes(b"ok")  # type: ignore[attr-defined]

    plan = plan_job(store, start_job(store, "up"))
    (ref,) = plan.sets
    config = BatchConfig(max_workers=1, timeout_seconds=1)
    with pytest.raises(
        JobKilled, match=r"^set timed out after 1s \(batch_config.timeout_seconds\)$"
    ):
        run_set(store, ref, python=first_blocks, datum_executor=datum_executor(config))
    results = JobRecords(store).results(plan.job, ref.set)
    assert [r["reason"] for r in results.values()] == [set_timeout_reason(1)]  # f0; none after


def test_a_retried_set_keeps_the_set_timeout_failure_and_runs_the_rest(store: Store) -> None:
    def first_blocks(ctx: object) -> None:
        if _name(ctx).name == "f0":
            threading.Event().wait(3)  # the first try's 1 s runs out meanwhile
        (ctx.out / _name(ctx).name).write_bytes(b"ok")  # type: ignore[attr-defined]

    plan = plan_job(store, start_job(store, "up"))
    (ref,) = plan.sets
    with pytest.raises(JobKilled):
        run_set(
            store,
            ref,
            python=first_blocks,
            datum_executor=datum_executor(BatchConfig(max_workers=1, timeout_seconds=1)),
        )
    # A second try of the set (an Airflow retry): the checkpointed failure is resumed as a
    # failure, not as a new kill, and the datums that never started run now.
    again = run_set(
        store,
        ref,
        python=first_blocks,
        datum_executor=datum_executor(BatchConfig(max_workers=1, timeout_seconds=60)),
    )
    assert (again.success, again.failed) == (5, 1)
    assert finish_job(store, plan.job).reason == f"datum {again.failed_datums[0]} failed"
