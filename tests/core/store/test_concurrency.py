"""Atomicity across real processes: 8 concurrent writers, and writers killed with SIGKILL.

Runs on the local folder and on S3 (moto). ``memory://`` is process-local, so it is not here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.errors import CommitNotFound
from airflow_datum_provider.core.store import Store
from tests.core.store.conftest import StoreSite

ROOT = Path(__file__).resolve().parents[3]
WRITERS = 8


def _spawn(payload: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.core.store._writer", json.dumps(payload)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            _, err = proc.communicate()
            pytest.fail(f"writer exited with {proc.returncode} before the pause:\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"writer did not reach its pause point within {timeout}s")
        time.sleep(0.02)
    return path.read_text()


def test_eight_processes_commit_to_one_branch(disk_site: StoreSite, tmp_path: Path) -> None:
    n = 10 if disk_site.kind == "local" else 4
    store = disk_site.open()
    store.create_repo("r")
    store.create_branch("r", "master")
    go = tmp_path / "go"
    procs = [
        _spawn(
            {
                "mode": "loop",
                "url": disk_site.url,
                "options": disk_site.options,
                "repo": "r",
                "worker": w,
                "n": n,
                "go": str(go),
            }
        )
        for w in range(WRITERS)
    ]
    time.sleep(1.0)  # let every interpreter start, then release them together
    go.touch()
    reported: set[str] = set()
    for proc in procs:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        reported.update(json.loads(out))
    assert len(reported) == WRITERS * n

    fresh = disk_site.open()
    chain = list(fresh.list_commits("r", "master"))
    # One linear chain from the head: each commit's parent is the next one, the last is a root.
    assert [c.parent for c in chain] == [c.id for c in chain[1:]] + [None]
    assert {c.id for c in chain} == reported
    assert {c.id for c in fresh.list_commits("r")} == reported
    assert fresh.list_open_commits("r") == []
    head_files = {e.path for e in fresh.walk("r", "master")}
    assert head_files == {f"/w{w}/c{j}" for w in range(WRITERS) for j in range(n)} | {"/shared"}
    for w in range(WRITERS):
        assert fresh.read_bytes("r", "master", f"/w{w}/c{n - 1}") == f"{w}:{n - 1}".encode()
    # Each commit added exactly one file on top of its parent.
    assert [c.file_count for c in chain] == list(range(WRITERS * n + 1, 1, -1))


@pytest.mark.parametrize("point", ["puts", "manifest", "before-cas", "after-cas"])
def test_sigkilled_writer(disk_site: StoreSite, tmp_path: Path, point: str) -> None:
    store = disk_site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/base", b"base")
    base = c.id
    marker = tmp_path / "paused"
    proc = _spawn(
        {
            "mode": "kill",
            "url": disk_site.url,
            "options": disk_site.options,
            "repo": "r",
            "point": point,
            "marker": str(marker),
        }
    )
    try:
        killed = _wait_for(marker, proc)
        if point == "puts":
            time.sleep(0.2)  # let it get well into the next puts
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    fresh = disk_site.open()
    if point == "after-cas":
        # The CAS is the commit point: the commit is fully there.
        assert fresh.branch_head("r", "master") == killed
        done = fresh.inspect_commit("r", killed)
        assert done.finished is not None
        assert done.parent == base
        assert done.file_count == 21
        assert fresh.read_bytes("r", "master", "/base") == b"base"
        assert [i.id for i in fresh.list_commits("r")] == [killed, base]
        assert fresh.list_open_commits("r") == []  # and the leftover is cleaned up
        parent_of_next = killed
    else:
        assert fresh.branch_head("r", "master") == base
        assert [i.id for i in fresh.list_commits("r", "master")] == [base]
        assert [i.id for i in fresh.list_commits("r")] == [base]
        assert [e.path for e in fresh.walk("r", "master")] == ["/base"]
        pending = fresh.inspect_commit("r", killed)
        assert pending.finished is None
        with pytest.raises(CommitNotFound, match="not finished"):
            list(fresh.list_files("r", killed))
        assert [o.id for o in fresh.list_open_commits("r")] == [killed]
        parent_of_next = base

    # Other writers are not blocked.
    with fresh.commit("r") as after:
        after.put_bytes("/after", b"1")
    assert fresh.branch_head("r", "master") == after.id
    assert fresh.inspect_commit("r", after.id).parent == parent_of_next

    if point != "after-cas":
        fresh.delete_commit("r", killed)
        assert fresh.list_open_commits("r") == []
        with pytest.raises(CommitNotFound, match=killed):
            fresh.inspect_commit("r", killed)
        assert [i.id for i in disk_site.open().list_commits("r")] == [after.id, base]


def test_s3_create_is_exclusive(s3_store_url: tuple[str, dict[str, Any]]) -> None:
    """``pipe_file(mode="create")`` is a conditional PUT; exactly one of many racers wins."""
    from airflow_datum_provider.core.store._backend import FsspecBackend
    from tests.core.store.conftest import make_moto_conditional_puts_atomic

    make_moto_conditional_puts_atomic()
    url, options = s3_store_url
    store = Store.open(url, storage_options=options)
    backend = store.backend
    assert isinstance(backend, FsspecBackend)
    assert backend.create("k/once", b"first") is True
    assert backend.create("k/once", b"second") is False
    assert backend.read("k/once") == b"first"

    for round_no in range(5):
        _race_create(url, options, f"k/race{round_no}")


def _race_create(url: str, options: dict[str, Any], key: str) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def race(i: int) -> None:
        own = Store.open(url, storage_options=options).backend
        barrier.wait()
        wins.append(own.create(key, str(i).encode()))

    threads = [threading.Thread(target=race, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_sigkilled_during_pack_upload(disk_site: StoreSite, tmp_path: Path) -> None:
    """A writer killed while its pack uploads leaves no commit content: segments come after."""
    store = disk_site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/base", b"base")
    base = c.id
    marker = tmp_path / "paused"
    proc = _spawn(
        {
            "mode": "kill",
            "url": disk_site.url,
            "options": disk_site.options,
            "repo": "r",
            "point": "pack",
            "marker": str(marker),
            "pack_below": 1 << 20,  # the local folder does not pack by default
        }
    )
    try:
        killed = _wait_for(marker, proc)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL

    fresh = disk_site.open()
    assert fresh.branch_head("r", "master") == base
    assert [e.path for e in fresh.walk("r", "master")] == ["/base"]
    assert [o.id for o in fresh.list_open_commits("r")] == [killed]
    assert fresh.backend.list(f"repos/r/open/{killed}/ops") == []  # nothing names the pack
    # Finishing the dead writer's commit lands nothing of what it had not flushed.
    resumed = fresh.open_commit("r", killed)
    done = resumed.finish()
    assert done.file_count == 1
    assert [e.path for e in fresh.walk("r", "master")] == ["/base"]
    with fresh.commit("r") as after:
        after.put_bytes("/after", b"1")
    assert fresh.read_bytes("r", "master", "/after") == b"1"
