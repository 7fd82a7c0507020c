"""End-to-end job engine tests through the public Python API (real subprocesses, real store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.engine import (
    create_pipeline,
    finish_job,
    local_runner_warnings,
    plan_job,
    process_set,
    run_pipeline,
    start_job,
    stop_job,
)
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def put(store: Store, repo: str, files: dict[str, bytes], deletes: tuple[str, ...] = ()) -> str:
    if not store.repo_exists(repo):
        store.create_repo(repo)
    with store.commit(repo) as c:
        for path in deletes:
            c.delete(path)
        for path, data in files.items():
            c.put_bytes(path, data)
    return c.id


def pipeline(store: Store, name: str, script: str, glob: str = "/*", **extra: Any) -> None:
    spec: dict[str, Any] = {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": extra.pop("repo", "data"), "glob": glob}},
        "transform": {"cmd": ["sh", "-c", script]},
    }
    spec.update(extra)
    create_pipeline(store, parse_spec(spec))


def outputs(store: Store, repo: str) -> dict[str, bytes]:
    return {e.path: store.read_bytes(repo, "master", e.path) for e in store.walk(repo, "master")}


COPY = 'cp "$data" /dev/null; for f in "$PFS_ROOT"/data/*; do cp "$f" "$PFS_ROOT/out/$(basename "$f").out"; done'


def test_success_then_incremental_rerun(store: Store) -> None:
    put(store, "data", {f"/f{i}": f"v{i}".encode() for i in range(5)})
    pipeline(store, "copy", COPY)
    job = run_pipeline(store, "copy")
    assert (job.state, job.processed, job.skipped, job.total) == ("success", 5, 0, 5)
    assert outputs(store, "copy") == {f"/f{i}.out": f"v{i}".encode() for i in range(5)}
    assert store.inspect_commit("copy", "master").provenance == (
        f"data@{store.branch_head('data', 'master')}",
    )

    put(store, "data", {"/f2": b"changed"})
    job2 = run_pipeline(store, "copy")
    assert (job2.state, job2.processed, job2.skipped, job2.total) == ("success", 1, 4, 5)
    out = outputs(store, "copy")
    assert out["/f2.out"] == b"changed"
    assert len(out) == 5
    assert job2.progress == "1 + 4 / 5"


def test_deleted_input_removes_its_outputs(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "copy", COPY)
    run_pipeline(store, "copy")
    put(store, "data", {}, deletes=("/a",))
    job = run_pipeline(store, "copy")
    assert job.state == "success"
    assert outputs(store, "copy") == {"/b.out": b"b"}


def test_datum_tries_counts_attempts(store: Store, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    put(store, "data", {"/a": b"a"})
    pipeline(store, "flaky", f"echo x >> {counter}; exit 1", datum_tries=5)
    head = store.branch_head("flaky", "master")
    job = run_pipeline(store, "flaky")
    assert job.state == "failure"
    assert counter.read_text().count("x") == 5
    assert job.reason == f"datum {job.failed_datums[0]} failed"
    assert store.branch_head("flaky", "master") == head


def test_err_cmd_recovers_and_reprocesses_next_job(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    spec = {
        "pipeline": {"name": "rec"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", "touch $PFS_ROOT/out/x-$PACH_DATUM_ID; exit 3"],
            "err_cmd": ["true"],
        },
        "datum_tries": 1,
    }
    create_pipeline(store, parse_spec(spec))
    job = run_pipeline(store, "rec")
    assert (job.state, job.recovered, job.processed) == ("success", 2, 0)
    assert outputs(store, "rec") == {}
    assert job.progress == "0 + 0 + 2 / 2"
    job2 = run_pipeline(store, "rec")
    assert (job2.skipped, job2.recovered) == (0, 2)


def test_datum_timeout_kills_sleeping_datum(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "slow", "sleep 30", datum_timeout="1s", datum_tries=1)
    job = run_pipeline(store, "slow")
    assert job.state == "failure"
    datum = job.failed_datums[0]
    records = JobRecords(store)
    (result,) = [r for _, r in records.all_results(job) if r["datum_id"] == datum]
    assert (result["state"], result["reason"]) == ("failed", "datum timed out after 1s")
    assert result["process_time"] < 10


def test_job_timeout_kills_job(store: Store) -> None:
    import time

    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "hang", "sleep 30", job_timeout="2s")
    start = time.monotonic()
    job = run_pipeline(store, "hang")
    assert 1.9 < time.monotonic() - start < 6
    assert (job.state, job.reason) == ("killed", "job timed out")
    assert store.branch_head("hang", "master") is None
    assert store.list_open_commits("hang") == []


def test_job_timeout_is_one_budget_for_every_attempt_and_err_cmd(store: Store) -> None:
    import time

    put(store, "data", {"/a": b"a"})
    pipeline(
        store,
        "hang3",
        "sleep 30",
        job_timeout="2s",
        datum_tries=3,
        transform={"cmd": ["sh", "-c", "sleep 30"], "err_cmd": ["sh", "-c", "sleep 30"]},
    )
    start = time.monotonic()
    job = run_pipeline(store, "hang3")
    assert time.monotonic() - start < 4
    assert (job.state, job.reason) == ("killed", "job timed out")
    assert store.branch_head("hang3", "master") is None


def test_killed_job_record_counts_finished_datums_and_keeps_the_in_flight_log(
    store: Store, tmp_path: Path
) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b", "/c": b"c"})
    first = tmp_path / "first"
    script = f'if mkdir "{first}" 2>/dev/null; then echo quick; else echo in-flight; sleep 30; fi'
    pipeline(store, "part", script, job_timeout="2s", datum_tries=1)
    job = run_pipeline(store, "part")
    assert (job.state, job.reason) == ("killed", "job timed out")
    assert (job.processed, job.failed, job.total) == (1, 0, 3)
    assert job.progress == "1 + 0 / 3"
    records = JobRecords(store)
    assert records.job("part", job.id) == job
    finished = {r["datum_id"] for _, r in records.all_results(job)}
    assert len(finished) == 1
    (in_flight,) = set(records.log_ids(job)) - finished
    log = records.read_log(job, in_flight)
    assert "in-flight" in log
    assert "job timed out" in log


def test_duplicate_output_path_fails_with_pachyderm_text(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "dup", "echo $PACH_DATUM_ID > $PFS_ROOT/out/same")
    job = run_pipeline(store, "dup")
    assert job.state == "failure"
    assert job.reason.startswith("duplicate path output by different datums (/same from ")
    assert job.reason.count("/same from ") == 2
    assert store.branch_head("dup", "master") is None


def test_file_directory_collision(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    script = (
        'if [ "$(basename "$data")" = a ]; then echo 1 > $PFS_ROOT/out/x; '
        "else mkdir $PFS_ROOT/out/x; echo 2 > $PFS_ROOT/out/x/y; fi"
    )
    pipeline(store, "fd", script)
    job = run_pipeline(store, "fd")
    assert (job.state, job.reason) == ("failure", "file / directory path collision (/x)")


def test_invalid_output_name_fails_datum(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "bad", 'touch "$PFS_ROOT/out/what?"', datum_tries=1)
    job = run_pipeline(store, "bad")
    assert job.state == "failure"
    records = JobRecords(store)
    (result,) = [r for _, r in records.all_results(job)]
    assert "/what?" in result["reason"]
    assert store.branch_head("bad", "master") is None


def test_symlink_escape_is_refused(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "esc", "ln -s /etc/passwd $PFS_ROOT/out/pw", datum_tries=1)
    job = run_pipeline(store, "esc")
    (result,) = [r for _, r in JobRecords(store).all_results(job)]
    assert (job.state, job.reason) == ("failure", f"datum {result['datum_id']} failed")
    assert result["state"] == "failed"
    assert "/pw" in result["reason"]
    assert "points outside the datum's root" in result["reason"]
    assert result["outputs"] == []
    assert store.branch_head("esc", "master") is None


def test_zero_datum_job_succeeds(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "none", COPY, glob="/nothing*")
    job = run_pipeline(store, "none")
    assert (job.state, job.total) == ("success", 0)
    assert store.branch_head("none", "master") == job.output_commit


def test_pipeline_reads_another_pipelines_output(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "first", COPY)
    pipeline(
        store,
        "second",
        'cat "$first" "$first" > $PFS_ROOT/out/$(basename "$first").2',
        repo="first",
    )
    assert run_pipeline(store, "first").state == "success"
    job = run_pipeline(store, "second")
    assert job.state == "success"
    assert outputs(store, "second") == {"/a.out.2": b"aa", "/b.out.2": b"bb"}


def test_python_callable_transform(store: Store) -> None:
    put(store, "data", {"/a": b"hello"})
    spec = {
        "pipeline": {"name": "py"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"python": "tests.core._transforms:upper"},
    }
    create_pipeline(store, parse_spec(spec))
    job = run_pipeline(store, "py")
    assert job.state == "success"
    assert outputs(store, "py") == {"/a": b"HELLO"}


def test_parallel_workers_give_same_output(store: Store) -> None:
    put(store, "data", {f"/f{i}": f"v{i}".encode() for i in range(8)})
    pipeline(store, "par", COPY, datum_set_spec={"number": 2})
    job = run_pipeline(store, "par", parallelism=2)
    assert (job.state, job.processed, job.sets) == ("success", 8, 4)
    assert len(outputs(store, "par")) == 8


def test_new_run_settles_a_job_killed_after_its_commit_landed(store: Store, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "copy", COPY)
    code = (
        "import sys; from airflow_datum_provider.core.store import Store; "
        "from airflow_datum_provider.core.engine import run_pipeline; "
        "run_pipeline(Store.open(sys.argv[1]), 'copy')"
    )
    env = {**os.environ, "DATUM_FAILPOINT": "after-land"}
    proc = subprocess.run([sys.executable, "-c", code, store.url], env=env, check=False)
    assert proc.returncode == -9
    (killed,) = JobRecords(store).jobs("copy")
    assert killed.state == "finishing"
    assert store.branch_head("copy", "master") == killed.id

    job = run_pipeline(store, "copy")
    assert JobRecords(store).job("copy", killed.id).state == "success"
    assert (job.state, job.processed, job.skipped) == ("success", 0, 2)


def _run_killed_at(store: Store, pipeline_name: str, point: str) -> JobInfo:
    """Run a job in a child process that SIGKILLs itself at ``point``; its record."""
    import os
    import subprocess
    import sys

    code = (
        "import sys; from airflow_datum_provider.core.store import Store; "
        "from airflow_datum_provider.core.engine import run_pipeline; "
        "run_pipeline(Store.open(sys.argv[1]), sys.argv[2])"
    )
    # A checkpoint part after every datum: what each datum finished before the kill is recorded.
    env = {**os.environ, "DATUM_FAILPOINT": point, "DATUM_CHECKPOINT_DATUMS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", code, store.url, pipeline_name], env=env, check=False
    )
    assert proc.returncode == -9
    return JobRecords(store).jobs(pipeline_name)[0]


def test_a_new_job_supersedes_an_unfinished_one_which_cannot_be_resumed(store: Store) -> None:
    put(store, "data", {f"/f{i}": f"v{i}".encode() for i in range(3)})
    pipeline(store, "copy", COPY)
    killed = _run_killed_at(store, "copy", "after-datum:2")
    assert killed.state == "running"

    fresh = run_pipeline(store, "copy")
    assert fresh.state == "success"
    old = JobRecords(store).job("copy", killed.id)
    assert (old.state, old.reason) == ("killed", f"superseded by job {fresh.id}")
    assert (old.processed, old.output_commit) == (2, "")
    assert [c.id for c in store.list_open_commits("copy")] == []

    put(store, "data", {"/f3": b"v3"})
    newer = run_pipeline(store, "copy")
    assert (newer.state, newer.processed, newer.skipped) == ("success", 1, 3)
    with pytest.raises(PipelineError, match=f"job {killed.id} cannot be resumed: it ended killed"):
        run_pipeline(store, "copy", resume=killed.id)
    assert store.branch_head("copy", "master") == newer.id
    assert len(outputs(store, "copy")) == 4


def test_resume_refused_when_the_output_branch_moved(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "copy", COPY)
    killed = _run_killed_at(store, "copy", "after-datum")
    assert killed.base_commit == ""
    put(store, "copy", {"/by-hand": b"x"})  # someone writes to the output branch
    with pytest.raises(PipelineError, match="output branch copy@master moved since the job"):
        run_pipeline(store, "copy", resume=killed.id)
    assert JobRecords(store).job("copy", killed.id).restarts == 0


def test_finish_refuses_to_land_when_the_output_branch_moved(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "copy", COPY)
    job = start_job(store, "copy")
    plan = plan_job(store, job)
    for number in plan.set_numbers:
        process_set(store, plan.job, number)
    moved = put(store, "copy", {"/by-hand": b"x"})
    done = finish_job(store, JobRecords(store).job("copy", job.id))
    assert done.state == "failure"
    assert done.reason == (
        f"output branch copy@master moved since the job started (from empty to {moved})"
    )
    assert store.branch_head("copy", "master") == moved
    assert outputs(store, "copy") == {"/by-hand": b"x"}


def test_stop_job_whose_runner_died_ends_it_at_once(store: Store) -> None:
    put(store, "data", {"/a": b"a", "/b": b"b"})
    pipeline(store, "copy", COPY)
    dead = _run_killed_at(store, "copy", "after-datum")
    assert dead.state == "running"
    assert [c.id for c in store.list_open_commits("copy")] == [dead.id]
    stopped = stop_job(store, dead.id)
    assert (stopped.state, stopped.reason, stopped.processed) == ("killed", "stopped by user", 1)
    assert JobRecords(store).job("copy", dead.id) == stopped
    assert store.list_open_commits("copy") == []
    assert store.branch_head("copy", "master") is None
    assert stop_job(store, dead.id) == stopped  # an ended job is left alone


@pytest.mark.parametrize(
    ("age", "alive"), [(0, True), (30, True), (61, False), (None, False)], ids=str
)
def test_stop_job_judges_a_remote_runner_by_its_heartbeat(
    store: Store, age: float | None, alive: bool
) -> None:
    import json
    import time

    put(store, "data", {"/a": b"a"})
    pipeline(store, "copy", COPY)
    job = plan_job(store, start_job(store, "copy")).job
    key = f"meta/pipelines/copy/jobs/{job.id}/heartbeat"
    if age is None:
        store.backend.delete(key)
    else:
        beat = {"runner": "4242@another-machine", "time": time.time() - age}
        store.backend.write(key, json.dumps(beat).encode())
    stopped = stop_job(store, job.id, "copy")
    assert stopped.state == ("running" if alive else "killed")
    assert store.backend.exists(f"meta/pipelines/copy/jobs/{job.id}/stop")
    assert bool(store.list_open_commits("copy")) is alive


def test_stop_job_settles_a_job_whose_commit_landed(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "copy", COPY)
    landed = _run_killed_at(store, "copy", "after-land")
    assert landed.state == "finishing"
    assert stop_job(store, landed.id).state == "success"
    assert store.branch_head("copy", "master") == landed.id


@pytest.mark.parametrize(
    ("transform", "field"),
    [
        ({"user": "nobody"}, "transform.user"),
        ({"secrets": [{"name": "s", "env_var": "X", "key": "k"}]}, "transform.secrets"),
    ],
    ids=["user", "secrets"],
)
def test_local_runner_refuses_fields_it_would_get_wrong(
    store: Store, transform: dict[str, Any], field: str
) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(store, "k", "true", transform={"cmd": ["true"], **transform})
    with pytest.raises(PipelineError) as caught:
        run_pipeline(store, "k")
    assert str(caught.value) == f"{field}: not supported by the local runner yet"
    assert JobRecords(store).jobs("k") == []
    assert store.list_open_commits("k") == []


def test_kubernetes_only_fields_are_ignored_locally(store: Store) -> None:
    put(store, "data", {"/a": b"a"})
    pipeline(
        store,
        "k",
        COPY,
        transform={"cmd": ["sh", "-c", COPY], "image": "python:3.12"},
        resource_requests={"cpu": 1},
        pod_spec="{}",
    )
    spec = JobRecords(store).pipeline("k").spec
    assert local_runner_warnings(spec) == [
        "transform.image, resource_requests, pod_spec: used only by the Kubernetes runner; "
        "ignored when running locally"
    ]
    assert run_pipeline(store, "k").state == "success"


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


@pytest.mark.parametrize("then", ["new-run", "resume", "stop"])
def test_a_runner_killed_mid_datum_leaves_nothing_running_once_settled(
    store: Store, tmp_path: Path, then: str
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    put(store, "data", {"/a": b"a"})
    marker = tmp_path / "pid"
    script = f'if [ ! -e "{marker}.done" ]; then echo $$ > "{marker}"; exec sleep 30; fi; ' + COPY
    pipeline(store, "copy", script)
    code = (
        "import sys; from airflow_datum_provider.core.store import Store; "
        "from airflow_datum_provider.core.engine import run_pipeline; "
        "run_pipeline(Store.open(sys.argv[1]), 'copy')"
    )
    runner = subprocess.Popen([sys.executable, "-c", code, store.url])
    try:
        deadline = time.monotonic() + 30
        while not marker.exists() or not marker.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        runner.send_signal(signal.SIGKILL)
        runner.wait()
    orphan = int(marker.read_text())
    try:
        assert _alive(orphan)  # the datum's own session outlived its runner
        (job,) = JobRecords(store).jobs("copy")
        scratch = Path(tempfile.gettempdir()) / f"datum-{job.id}"
        assert scratch.is_dir()
        (tmp_path / "pid.done").touch()

        if then == "new-run":
            assert run_pipeline(store, "copy").state == "success"
        elif then == "resume":
            assert run_pipeline(store, "copy", resume=job.id).state == "success"
        else:
            assert stop_job(store, job.id).state == "killed"
        deadline = time.monotonic() + 30
        while _alive(orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(orphan)
        assert not scratch.exists()
    finally:  # a failed assertion above must not leave the orphan running
        if _alive(orphan):
            os.kill(orphan, signal.SIGKILL)


def test_job_on_s3_store_in_worker_processes(s3_store_url: tuple[str, dict[str, Any]]) -> None:
    """The engine keeps no local paths: a job runs on S3 with sets in spawned workers."""
    url, options = s3_store_url
    store = Store.open(url, storage_options=options)
    put(store, "data", {f"/f{i}": f"v{i}".encode() for i in range(4)})
    pipeline(store, "s3copy", COPY, datum_set_spec={"number": 2})
    job = run_pipeline(store, "s3copy", parallelism=2, storage_options=options)
    assert (job.state, job.processed, job.sets) == ("success", 4, 2)
    again = Store.open(url, storage_options=options)
    assert outputs(again, "s3copy") == {f"/f{i}.out": f"v{i}".encode() for i in range(4)}
    put(store, "data", {"/f1": b"new"})
    job2 = run_pipeline(store, "s3copy", storage_options=options)
    assert job2.progress == "1 + 3 / 4"
    assert outputs(again, "s3copy")["/f1.out"] == b"new"
