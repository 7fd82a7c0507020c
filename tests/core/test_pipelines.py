"""Pipelines: versions are immutable, jobs run their own, concurrent writers never lose one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_datum_provider.core import (
    create_pipeline,
    finish_job,
    plan_job,
    run_pipeline,
    run_set,
    start_job,
)
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store
from tests.core._pipeline_writer import spec

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        c.put_bytes("/a", b"a")
    return store


def _outputs(store: Store, repo: str) -> dict[str, bytes]:
    return {e.path: store.read_bytes(repo, "master", e.path) for e in store.walk(repo, "master")}


def test_an_update_between_plan_and_process_does_not_change_the_job(store: Store) -> None:
    create_pipeline(store, parse_spec(spec("p", "v1")))
    plan = plan_job(store, start_job(store, "p"))
    create_pipeline(store, parse_spec(spec("p", "v2")), update=True)
    for ref in plan.sets:
        run_set(store, ref)
    job = finish_job(store, plan.job)
    assert (job.state, job.pipeline_version) == ("success", 1)
    assert _outputs(store, "p") == {"/a": b"v1\n"}
    # Unchanged datum, same salt: the next job (version 2) skips it, as an update does.
    job2 = run_pipeline(store, "p")
    assert (job2.state, job2.pipeline_version, job2.skipped) == ("success", 2, 1)
    # --reprocess draws a new salt: version 3 runs it again, with its own transform.
    create_pipeline(store, parse_spec(spec("p", "v3")), update=True, reprocess=True)
    job3 = run_pipeline(store, "p")
    assert (job3.processed, job3.pipeline_version) == (1, 3)
    assert _outputs(store, "p") == {"/a": b"v3\n"}


def test_a_redeploy_between_plan_and_process_in_other_processes(
    store: Store, tmp_path: Path
) -> None:
    """An Airflow DAG redeployed between the plan task and the mapped tasks."""
    create_pipeline(store, parse_spec(spec("p", "v1")))
    plan = plan_job(store, start_job(store, "p"))
    redeploy = (
        "import sys; from airflow_datum_provider.core import create_pipeline; "
        "from airflow_datum_provider.core.spec import parse_spec; "
        "from airflow_datum_provider.core.store import Store; "
        "from tests.core._pipeline_writer import spec; "
        "create_pipeline(Store.open(sys.argv[1]), parse_spec(spec('p', 'v2')), update=True)"
    )
    subprocess.run(
        [sys.executable, "-c", redeploy, store.url], cwd=REPO_ROOT, check=True, timeout=120
    )
    assert JobRecords(store).pipeline("p").version == 2
    for ref in plan.sets:
        argv = [sys.executable, "-m", "airflow_datum_provider.worker", "run-set"]
        argv += ["--store", store.url, "--pipeline", "p", "--job", ref.job, "--set", str(ref.set)]
        subprocess.run(argv, check=True, timeout=120, capture_output=True)
    job = finish_job(store, plan.job)
    assert (job.state, job.pipeline_version) == ("success", 1)
    assert _outputs(store, "p") == {"/a": b"v1\n"}


def _race(store: Store, tmp_path: Path, n: int, *, update: bool) -> list[str]:
    start = tmp_path / "start"
    children = []
    for i in range(n):
        args = {"url": store.url, "start": str(start), "name": "p", "tag": f"t{i}"}
        args["update"] = update
        children.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.core._pipeline_writer", json.dumps(args)],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    start.write_text("go")
    lines = []
    for child in children:
        out, _ = child.communicate(timeout=120)
        lines.append(out.strip())
    return lines


def test_concurrent_creates_one_wins_the_others_already_exist(store: Store, tmp_path: Path) -> None:
    lines = _race(store, tmp_path, 6, update=False)
    assert lines.count("ok 1") == 1, lines
    assert sorted(lines)[:-1] == ["error pipeline 'p' already exists; use update pipeline"] * 5
    info = JobRecords(store).pipeline("p")
    winner = lines.index("ok 1")
    assert f"t{winner}" in " ".join(info.spec.transform.cmd)


def test_concurrent_updates_are_each_applied_none_lost(store: Store, tmp_path: Path) -> None:
    create_pipeline(store, parse_spec(spec("p", "base")))
    lines = _race(store, tmp_path, 6, update=True)
    assert sorted(lines) == [f"ok {v}" for v in range(2, 8)], lines
    records = JobRecords(store)
    tags = set()
    for version in range(2, 8):
        cmd = " ".join(records.pipeline_version("p", version).spec.transform.cmd)
        tags.update(t for t in (f"t{i}" for i in range(6)) if f"echo {t} " in cmd)
    assert tags == {f"t{i}" for i in range(6)}
    assert records.pipeline("p").version == 7
