"""Liveness under real processes: set leases, per-set clean-up, resume and supersede races.

Every child is a real process; every wait polls a file or a process with a generous bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from airflow_datum_provider.core import create_pipeline, finish_job, plan_job, run_pipeline
from airflow_datum_provider.core.errors import JobRunning, PipelineError
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.jobs._layout import lease
from airflow_datum_provider.core.jobs.lifecycle import start_job
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store

REPO_ROOT = Path(__file__).resolve().parents[3]
BOUND = 60.0


def wait_for(what: str, condition: Callable[[], bool], bound: float = BOUND) -> None:
    deadline = time.monotonic() + bound
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "State:\tZ" not in status


def children_of(pid: int) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(name))
    return found


def pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def marks(tmp_path: Path) -> Path:
    folder = tmp_path / "marks"
    folder.mkdir()
    return folder


@pytest.fixture
def store(tmp_path: Path, marks: Path) -> Iterator[Store]:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        c.put_bytes("/a", b"a")
        c.put_bytes("/b", b"b")
    # Each datum records its pid in marks/<name>.pids, waits for marks/<name>.go, then copies.
    script = (
        f'M="{marks}"; for f in "$PFS_ROOT"/data/*; do n=$(basename "$f"); '
        'echo $$ >> "$M/$n.pids"; while [ ! -e "$M/$n.go" ]; do sleep 0.02; done; '
        'cp "$f" "$PFS_ROOT/out/$n"; done'
    )
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", script]},
        "datum_set_spec": {"number": 1},
    }
    create_pipeline(store, parse_spec(spec))
    started: list[subprocess.Popen[str]] = []
    store.started = started  # type: ignore[attr-defined]
    yield store
    for child in started:
        if child.poll() is None:
            child.kill()
            child.wait()
    for name in ("a", "b"):
        (marks / f"{name}.go").touch()
    for pid in pids(marks / "a.pids") + pids(marks / "b.pids"):
        if alive(pid):  # a datum's command leads its own group: its `sleep` goes with it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def spawn(store: Store, argv: list[str]) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        argv, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    store.started.append(child)  # type: ignore[attr-defined]
    return child


def run_set_process(store: Store, job: str, number: int) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "airflow_datum_provider.worker", "run-set", "--store"]
    argv += [store.url, "--pipeline", "p", "--job", job, "--set", str(number)]
    return spawn(store, argv)


def runner_process(store: Store, **args: object) -> subprocess.Popen[str]:
    payload = {"mode": "run", "url": store.url, "pipeline": "p", **args}
    return spawn(store, [sys.executable, "-m", "tests.core.jobs._runner", json.dumps(payload)])


def outputs(store: Store) -> dict[str, bytes]:
    return {e.path: store.read_bytes("p", "master", e.path) for e in store.walk("p", "master")}


def test_a_killed_set_is_retried_while_its_sibling_runs_on_untouched(
    store: Store, marks: Path
) -> None:
    plan = plan_job(store, start_job(store, "p"))
    job = plan.job
    (ref_a, ref_b) = plan.sets  # set 0 holds /a, set 1 holds /b
    first = run_set_process(store, job.id, ref_a.set)
    sibling = run_set_process(store, job.id, ref_b.set)
    wait_for(
        "both datums running",
        lambda: len(pids(marks / "a.pids")) == 1 == len(pids(marks / "b.pids")),
    )
    (orphan,) = pids(marks / "a.pids")
    (busy,) = pids(marks / "b.pids")
    scratch = Path(tempfile.gettempdir()) / f"datum-{job.id}"
    assert {p.name for p in scratch.iterdir()} == {"set000000", "set000001"}
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=BOUND)
    assert alive(orphan)  # the datum's command has its own session: it outlives its runner

    retry = run_set_process(store, job.id, ref_a.set)
    wait_for("the retry's datum", lambda: len(pids(marks / "a.pids")) == 2)
    wait_for("the dead try's command to be killed", lambda: not alive(orphan))
    assert alive(busy)  # the sibling set's command is untouched
    assert sibling.poll() is None
    assert (scratch / "set000001").is_dir()
    tries = [p for p in (scratch / "set000000").iterdir() if not p.name.endswith(".tmp")]
    tries = [p for p in tries if p.is_dir()]  # beside it: its private /tmp and mount table
    assert len(tries) == 1  # only the retry's try folder

    (marks / "a.go").touch()
    (marks / "b.go").touch()
    for child in (retry, sibling):
        out, err = child.communicate(timeout=BOUND)
        assert child.returncode == 0, err
    assert json.loads(Path(store.url).joinpath(lease("p", job.id, 0)).read_text())["try"] == 2
    assert finish_job(store, job).state == "success"
    assert outputs(store) == {"/a": b"a", "/b": b"b"}


def test_resume_of_a_job_whose_runner_is_alive_is_refused(store: Store, marks: Path) -> None:
    runner = runner_process(store)
    wait_for("a datum running", lambda: len(pids(marks / "a.pids")) == 1)
    (job,) = JobRecords(store).jobs("p")
    with pytest.raises(JobRunning) as caught:
        run_pipeline(store, "p", resume=job.id)
    pattern = rf"job {job.id} is still running \(heartbeat \d+@{re.escape(socket.gethostname())}, \d+ s ago\)"
    assert re.fullmatch(pattern, str(caught.value)), str(caught.value)
    (datum,) = pids(marks / "a.pids")
    assert alive(datum)  # the live runner's datum was not killed
    (marks / "a.go").touch()
    (marks / "b.go").touch()
    out, err = runner.communicate(timeout=BOUND)
    assert json.loads(out)["state"] == "success", err
    assert outputs(store) == {"/a": b"a", "/b": b"b"}


def test_pool_workers_die_with_their_sigkilled_runner_and_resume_succeeds(
    store: Store, marks: Path
) -> None:
    runner = runner_process(store, parallelism=2)
    wait_for(
        "both sets running", lambda: len(pids(marks / "a.pids")) == 1 == len(pids(marks / "b.pids"))
    )
    workers = [pid for pid in children_of(runner.pid) if alive(pid)]
    assert len(workers) >= 2
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=BOUND)
    wait_for("pool workers to die", lambda: not any(alive(pid) for pid in workers))
    (job,) = JobRecords(store).jobs("p")
    (marks / "a.go").touch()
    (marks / "b.go").touch()
    resumed = run_pipeline(store, "p", resume=job.id)
    assert (resumed.state, resumed.processed, resumed.restarts) == ("success", 2, 1)
    assert outputs(store) == {"/a": b"a", "/b": b"b"}
    for pid in pids(marks / "a.pids") + pids(marks / "b.pids"):
        assert not alive(pid)


def test_a_runner_whose_set_was_taken_over_writes_no_more_results(
    store: Store, marks: Path
) -> None:
    """A zombie: alive, but its lease went stale, so a retry took its set over."""
    plan = plan_job(store, start_job(store, "p"))
    job = plan.job
    zombie = run_set_process(store, job.id, 0)
    wait_for("the zombie's datum", lambda: len(pids(marks / "a.pids")) == 1)
    key = Path(store.url) / lease("p", job.id, 0)
    held = json.loads(key.read_text())
    stale = held | {"runner": "1@elsewhere", "time": 0.0}
    key.write_text(json.dumps(stale))  # what a long pause on another machine looks like
    retry = run_set_process(store, job.id, 0)
    wait_for("the retry's datum", lambda: len(pids(marks / "a.pids")) == 2)
    # A real takeover needs a stale lease, so the zombie's own write is >= 60 s old when it
    # checks; here, let its write age past the 5 s under which a check is skipped.
    wait_for("the zombie's lease write to age", lambda: time.time() - held["time"] > 6)
    (marks / "a.go").touch()
    out, err = zombie.communicate(timeout=BOUND)
    assert zombie.returncode == 2
    assert "was taken over by" in err
    out, err = retry.communicate(timeout=BOUND)
    assert retry.returncode == 0, err
    (result,) = JobRecords(store).results(job, 0).values()
    assert result["try"] == 2
    (marks / "b.go").touch()
    from airflow_datum_provider.core import run_set

    run_set(store, plan.sets[1])
    assert finish_job(store, job).state == "success"


def test_a_job_superseded_while_it_lands_leaves_a_readable_branch(
    store: Store, marks: Path, tmp_path: Path
) -> None:
    (marks / "a.go").touch()
    (marks / "b.go").touch()
    paused, gate = tmp_path / "paused", tmp_path / "gate"
    payload = {"mode": "land", "url": store.url, "pipeline": "p"}
    payload |= {"marker": str(paused), "gate": str(gate)}
    lander = spawn(store, [sys.executable, "-m", "tests.core.jobs._runner", json.dumps(payload)])
    wait_for("the landing to pause before its ref CAS", paused.exists)
    (old,) = JobRecords(store).jobs("p")
    assert old.state == "finishing"
    newer = start_job(store, "p")  # supersedes: the old job's runner is alive and landing
    gate.touch()
    out, err = lander.communicate(timeout=BOUND)
    assert json.loads(out)["state"] == "success", err
    assert store.branch_head("p", "master") == old.id
    assert outputs(store) == {"/a": b"a", "/b": b"b"}  # every read works
    # The newer job started on the old head: it may not land on the moved branch.
    with pytest.raises(PipelineError, match="moved since the job started"):
        run_pipeline(store, "p", resume=newer.id)
    again = run_pipeline(store, "p")  # supersedes the newer job, deletes its commit
    assert (again.state, again.skipped) == ("success", 2)
    assert JobRecords(store).job("p", newer.id).state == "killed"
    assert store.list_open_commits("p") == []
