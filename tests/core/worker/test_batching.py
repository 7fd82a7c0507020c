"""Datum batching scenarios (Pachyderm's own: 15 input files, ``datum_set_spec.number: 5``).

Real jobs through the public engine API: real user processes, the real socket protocol, a real
store. Starts of the user process are counted in a file outside the scratch root.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store

FILES = {f"/f{i:02d}": f"content {i}\n".encode() for i in range(15)}
DATUMCTL = str(Path(sys.executable).with_name("datumctl"))
PY = sys.executable


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for path, data in FILES.items():
            c.put_bytes(path, data)
    return store


def _pipeline(store: Store, cmd: list[str], **extra: Any) -> None:
    spec: dict[str, Any] = {
        "pipeline": {"name": "batch"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": cmd, "datum_batching": True, **extra.pop("transform", {})},
        "datum_set_spec": {"number": 5},
    }
    spec.update(extra)
    create_pipeline(store, parse_spec(spec))


def _starts(tmp_path: Path) -> int:
    path = tmp_path / "starts"
    return len(path.read_text().splitlines()) if path.exists() else 0


def _outputs(store: Store) -> dict[str, bytes]:
    return {
        e.path: store.read_bytes("batch", "master", e.path) for e in store.walk("batch", "master")
    }


def _results(store: Store, job: JobInfo) -> list[dict[str, Any]]:
    return [r for _, r in JobRecords(store).all_results(job)]


def _shell(tmp_path: Path, body: str) -> list[str]:
    """A shell user program: counts its start, then loops over datums."""
    script = (
        f'echo "$$" >> "{tmp_path}/starts"\n'
        f'while "{DATUMCTL}" next datum; do\n'
        '  set -a; . "$PFS_ROOT/.env"; set +a\n'
        f"{textwrap.indent(body, '  ')}\n"
        "done\n"
    )
    return ["sh", "-c", script]


def _python(tmp_path: Path, body: str, setup: str = "") -> list[str]:
    """A Python user program using @batch_all_datums; ``body`` runs once per datum."""
    source = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from airflow_datum_provider.core.worker.batching_client import batch_all_datums\n"
        f"with open({str(tmp_path / 'starts')!r}, 'a') as fh: fh.write(str(os.getpid()) + '\\n')\n"
        f"{setup}\n"
        "@batch_all_datums\n"
        "def datum():\n"
        "    name = os.path.basename(os.environ['data'])\n"
        "    out = Path(os.environ['PFS_ROOT']) / 'out'\n"
        "    once = Path(" + repr(str(tmp_path)) + ") / ('once-' + name)\n"
        f"{textwrap.indent(body, '    ')}\n"
        "datum()\n"
    )
    return [PY, "-c", source]


COPY = 'cp "$data" "$PFS_ROOT/out/$(basename "$data")"'
PY_COPY = "(out / name).write_bytes(Path(os.environ['data']).read_bytes())"
EXPECTED = {path: data for path, data in FILES.items()}


@pytest.fixture(params=["auto", "off"], ids=["pfs-auto", "pfs-off"])
def pfs_mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both ways user code can see its root (the namespace where available, the real path)."""
    monkeypatch.setenv("DATUM_PFS_MOUNT", request.param)
    return str(request.param)


def test_basic_shell_loop_starts_once_per_set(store: Store, tmp_path: Path, pfs_mode: str) -> None:
    _pipeline(store, _shell(tmp_path, COPY))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed, job.total, job.sets) == ("success", 15, 15, 3), job.reason
    assert _outputs(store) == EXPECTED
    assert _starts(tmp_path) == 3  # once per datum set
    # After each set's last datum the user process was killed in its pending call.
    for pid in (tmp_path / "starts").read_text().split():
        status = Path(f"/proc/{pid}/status")
        assert not status.exists() or "State:\tZ" in status.read_text(), pid


def test_basic_python_decorator_starts_once_per_set(
    store: Store, tmp_path: Path, pfs_mode: str
) -> None:
    _pipeline(store, _python(tmp_path, PY_COPY))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert _outputs(store) == EXPECTED
    assert _starts(tmp_path) == 3


def test_env_file_carries_each_datums_own_values(
    store: Store, tmp_path: Path, pfs_mode: str
) -> None:
    body = (
        "import json\n"
        "seen = {k: os.environ[k] for k in ('PACH_DATUM_ID', 'data', 'data_COMMIT', 'PACH_JOB_ID')}\n"
        "(out / (name + '.json')).write_text(json.dumps(seen))\n"
    )
    _pipeline(store, _python(tmp_path, body))
    job = run_pipeline(store, "batch")
    assert job.state == "success", job.reason
    head = store.branch_head("data", "master")
    ids = {r["datum_id"] for r in _results(store, job)}
    seen = {path: json.loads(data) for path, data in _outputs(store).items()}
    assert len(seen) == 15
    assert {s["PACH_DATUM_ID"] for s in seen.values()} == ids
    for path, values in seen.items():
        assert values["data"].endswith("/data" + path[: -len(".json")])
        assert values["data_COMMIT"] == head
        assert values["PACH_JOB_ID"] == job.id
    # The datum's own output entries are tagged with the id it saw in its .env.
    for entry in store.walk("batch", "master"):
        assert seen[entry.path]["PACH_DATUM_ID"] == entry.tag


def test_error_reported_once_then_success(store: Store, tmp_path: Path) -> None:
    body = (
        "if name == 'f07' and not once.exists():\n"
        "    once.touch()\n"
        "    raise ValueError('first try of f07')\n" + PY_COPY
    )
    _pipeline(store, _python(tmp_path, body))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed, job.failed) == ("success", 15, 0), job.reason
    assert _outputs(store) == EXPECTED
    retried = [r for r in _results(store, job) if r["attempts"] > 1]
    assert len(retried) == 1
    assert _starts(tmp_path) == 4  # a fresh process for the retry
    log = JobRecords(store).read_log(job, retried[0]["datum_id"])
    assert "attempt 1 failed: ValueError('first try of f07')" in log


def test_exit_1_once_then_success(store: Store, tmp_path: Path) -> None:
    body = "if name == 'f03' and not once.exists():\n    once.touch()\n    sys.exit(1)\n" + PY_COPY
    _pipeline(store, _python(tmp_path, body))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert _outputs(store) == EXPECTED
    assert _starts(tmp_path) == 4


def test_a_first_call_before_popen_returns_is_served_not_refused(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A loaded machine can run the new process's first call before the starting thread gets
    back from ``Popen``: the call waits for the process's group to be known (it was refused,
    so the user code failed its first datum and was started again: one CI failure)."""
    import subprocess
    import threading

    from airflow_datum_provider.core.worker import batching

    calling = threading.Event()
    real_peer, real_popen = batching._peer, subprocess.Popen

    def peer(conn: socket.socket) -> tuple[int, int]:
        calling.set()  # the server is checking a caller now
        return real_peer(conn)

    def late_popen(*args: Any, **kwargs: Any) -> Any:
        proc = real_popen(*args, **kwargs)
        assert calling.wait(timeout=60), "the user process never called next datum"
        calling.clear()
        return proc  # only now can the runtime say which process group may call

    monkeypatch.setattr(batching, "_peer", peer)
    monkeypatch.setattr(batching.subprocess, "Popen", late_popen)
    _pipeline(store, _python(tmp_path, PY_COPY))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert _outputs(store) == EXPECTED
    assert _starts(tmp_path) == 3  # once per set: no first call was refused
    assert all(r["attempts"] == 1 for r in _results(store, job))


def test_datum_timeout_once_then_success(store: Store, tmp_path: Path) -> None:
    body = (
        "if name == 'f11' and not once.exists():\n    once.touch()\n    time.sleep(600)\n" + PY_COPY
    )
    _pipeline(store, _python(tmp_path, body), datum_timeout="5s")
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert _outputs(store) == EXPECTED
    timed_out = [r for r in _results(store, job) if r["attempts"] > 1]
    assert len(timed_out) == 1
    log = JobRecords(store).read_log(job, timed_out[0]["datum_id"])
    assert "attempt 1 failed: datum timed out after 5s" in log


def test_exit_1_always_fails_the_job(store: Store, tmp_path: Path) -> None:
    _pipeline(store, _shell(tmp_path, "exit 1"), datum_tries=2)
    job = run_pipeline(store, "batch")
    assert job.state == "failure"
    results = _results(store, job)
    assert len(results) == 15
    assert {(r["state"], r["reason"], r["attempts"]) for r in results} == {
        ("failed", "exit status 1", 2)
    }
    assert _starts(tmp_path) == 30  # every attempt in a fresh process


def test_exit_0_right_after_next_is_a_premature_exit(store: Store, tmp_path: Path) -> None:
    _pipeline(store, _shell(tmp_path, "exit 0"), datum_tries=1)
    job = run_pipeline(store, "batch")
    assert job.state == "failure"
    assert {r["reason"] for r in _results(store, job)} == {"user code exited prematurely"}


def test_err_cmd_recovers_like_non_batched_mode(store: Store, tmp_path: Path) -> None:
    marker = tmp_path / "err-ran"
    _pipeline(
        store,
        _shell(tmp_path, 'if [ "$(basename "$data")" = f05 ]; then exit 2; fi\n' + COPY),
        datum_tries=2,
        transform={"err_cmd": ["sh", "-c", f'echo "$PACH_DATUM_ID" >> "{marker}"']},
    )
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed, job.recovered) == ("success", 14, 1), job.reason
    recovered = [r for r in _results(store, job) if r["state"] == "recovered"]
    assert marker.read_text().splitlines() == [recovered[0]["datum_id"]] * 2  # after each try
    assert "/f05" not in _outputs(store)


def test_never_calling_next_stops_at_job_timeout(store: Store, tmp_path: Path) -> None:
    _pipeline(store, ["sh", "-c", f'echo "$$" >> "{tmp_path}/starts"; sleep 600'], job_timeout="3s")
    job = run_pipeline(store, "batch")
    assert (job.state, job.reason) == ("killed", "job timed out")
    assert _starts(tmp_path) == 1


def test_parallel_sets_each_have_their_own_process(store: Store, tmp_path: Path) -> None:
    _pipeline(store, _shell(tmp_path, COPY))
    job = run_pipeline(store, "batch", parallelism=2)
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert _outputs(store) == EXPECTED
    assert _starts(tmp_path) == 3


def test_a_process_outside_the_group_is_refused(store: Store, tmp_path: Path) -> None:
    # The user code asks from a child in its own session (another process group) first.
    probe = tmp_path / "probe"
    body = (
        f'if [ ! -e "{probe}" ]; then\n'
        f'  setsid "{DATUMCTL}" next datum > "{probe}.out" 2>&1; echo "$?" > "{probe}"\n'
        "fi\n" + COPY
    )
    _pipeline(store, _shell(tmp_path, body))
    job = run_pipeline(store, "batch")
    assert (job.state, job.processed) == ("success", 15), job.reason
    assert probe.read_text().strip() == "1"
    assert "not in the user code's process group" in Path(f"{probe}.out").read_text()
    assert _starts(tmp_path) == 3


def test_socket_is_private_and_refuses_other_callers(tmp_path: Path) -> None:
    from airflow_datum_provider.core.worker import JobContext, RunOptions
    from airflow_datum_provider.core.worker.batching import batching_runtime

    options = RunOptions(cmd=("sleep", "600"), datum_batching=True)
    job = JobContext(job_id="j", output_commit="c", pipeline="p")
    with batching_runtime(options, root=tmp_path / "scratch", job=job) as runtime:
        path = Path(runtime.socket_path)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_ISSOCK(path.stat().st_mode)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(30)
            sock.connect(str(path))
            sock.sendall(b'{"v": 1, "op": "next"}\n')
            reply = json.loads(sock.makefile().readline())
        assert "not in the user code's process group" in reply["error"]
        assert runtime.refused == 1
    assert not path.exists()  # closed with the set


def test_next_datum_outside_batching_is_one_clear_line() -> None:
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "DATUM_NEXT_SOCKET"}
    done = subprocess.run(
        [DATUMCTL, "next", "datum"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    assert done.stderr.startswith("datumctl: error: $DATUM_NEXT_SOCKET is not set")
    assert len(done.stderr.strip().splitlines()) == 1


def test_the_python_helpers_import_without_airflow_or_the_store() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from airflow_datum_provider import batch_all_datums, next_datum\n"
        "heavy = [m for m in ('airflow', 'airflow_datum_provider.core.store', 'click') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([PY, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
