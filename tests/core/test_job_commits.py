"""A job's output commit belongs to the job (issue 7, §1): real jobs, real ``datumctl``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from airflow_datum_provider.core.engine import (
    create_pipeline,
    finish_job,
    plan_job,
    process_set,
    run_pipeline,
    start_job,
)
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import OWNER_JOB, Store

DATUMCTL = shutil.which("datumctl", path=str(Path(sys.executable).parent))
COPY = 'for f in "$PFS_ROOT"/data/*; do cp "$f" "$PFS_ROOT/out/$(basename "$f").out"; done'


def _datumctl(url: Path, *args: str, code: int = 0) -> str:
    assert DATUMCTL is not None
    proc = subprocess.run(
        [DATUMCTL, "--store", str(url), *args], capture_output=True, text=True, timeout=120
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    return proc.stdout + proc.stderr


def _setup(tmp_path: Path) -> tuple[Path, Store]:
    url = tmp_path / "store"
    store = Store.open(url)
    store.create_repo("data")
    with store.commit("data") as c:
        c.put_bytes("/a", b"a")
        c.put_bytes("/b", b"b")
    spec: dict[str, Any] = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", COPY]},
    }
    create_pipeline(store, parse_spec(spec))
    return url, store


def _planned_and_processed(store: Store) -> str:
    job = start_job(store, "copy")
    plan = plan_job(store, job)
    for number in plan.set_numbers:
        process_set(store, plan.job, number)
    return job.id


def test_user_verbs_refuse_a_running_jobs_commit(tmp_path: Path) -> None:
    url, store = _setup(tmp_path)
    job_id = _planned_and_processed(store)
    (tmp_path / "f").write_text("user")
    ref = f"copy@{job_id}"
    for args in (
        ("finish", "commit", ref),
        ("delete", "commit", ref),
        ("put", "file", f"{ref}:/x", "-f", str(tmp_path / "f")),
    ):
        assert f"is the output commit of job {job_id}" in _datumctl(url, *args, code=1)
    assert "no open commit on copy@master" in _datumctl(
        url, "finish", "commit", "copy@master", code=1
    )
    done = finish_job(store, JobRecords(store).job("copy", job_id))
    assert done.state == "success"
    assert {e.path for e in store.walk("copy", "master")} == {"/a.out", "/b.out"}


def test_put_into_the_output_branch_during_a_job_is_refused(tmp_path: Path) -> None:
    """datumctl refuses the output branch; through the API the put lands its own commit."""
    url, store = _setup(tmp_path)
    job_id = _planned_and_processed(store)
    (tmp_path / "f").write_text("by hand")
    text = _datumctl(url, "put", "file", "copy@master:/by-hand", "-f", str(tmp_path / "f"), code=1)
    assert "output branch" in text
    # A writer that bypasses the CLI (the store API) never joins the job's commit either.
    with store.commit("copy", "master") as c:
        c.put_bytes("/by-hand", b"by hand")
    assert c.id != job_id
    done = finish_job(store, JobRecords(store).job("copy", job_id))
    assert done.state == "failure"
    assert "moved since the job started" in done.reason
    fresh = Store.open(url)
    assert fresh.read_bytes("copy", "master", "/by-hand") == b"by hand"
    assert fresh.list_open_commits("copy") == []
    # The next job runs over the moved branch and publishes everything.
    again = run_pipeline(fresh, "copy")
    assert again.state == "success"
    assert {e.path for e in fresh.walk("copy", "master")} == {"/a.out", "/b.out", "/by-hand"}


def test_finish_job_refuses_a_commit_finished_without_its_merge(tmp_path: Path) -> None:
    """A job commit published empty by someone else is not taken as the job's success."""
    _, store = _setup(tmp_path)
    job_id = _planned_and_processed(store)
    # What an older datumctl's `finish commit` did: publish the still-empty commit.
    handle = store.open_commit("copy", job_id, owner=OWNER_JOB)
    handle.as_owner = ""
    handle.finish()
    done = finish_job(store, JobRecords(store).job("copy", job_id))
    assert done.state == "failure"
    assert "was finished outside the job" in done.reason
    # No datum index was recorded, so the next job processes everything again.
    again = run_pipeline(store, "copy")
    assert (again.state, again.processed, again.skipped) == ("success", 2, 0)
    assert {e.path for e in store.walk("copy", "master")} == {"/a.out", "/b.out"}
