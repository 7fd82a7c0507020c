"""Several writers on one branch, through real ``datumctl`` processes (issue 7, §1 and §2).

Runs on the local folder and on S3 (moto): open commits have owners, a failed put leaves no
commit behind, concurrent finishes of one commit land it once.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.errors import (
    CommitFinishedError,
    CommitNotFound,
    CommitOwnedError,
)
from airflow_datum_provider.core.store import OWNER_JOB, OWNER_PUT, Store
from tests.core.store.conftest import StoreSite

DATUMCTL = shutil.which("datumctl", path=str(Path(sys.executable).parent))
TIMEOUT = 120


def _env(site: StoreSite, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATUM_STORE", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path / "home")
    if site.kind == "s3":
        env["AWS_ENDPOINT_URL_S3"] = site.extra["endpoint"]
    return env


def _spawn(site: StoreSite, tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    assert DATUMCTL is not None, "datumctl is not installed next to the interpreter"
    return subprocess.Popen(
        [DATUMCTL, "--store", site.url, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(site, tmp_path),
    )


def _run(site: StoreSite, tmp_path: Path, *args: str, code: int = 0) -> str:
    proc = _spawn(site, tmp_path, *args)
    out, err = proc.communicate(timeout=TIMEOUT)
    text = err.decode()
    assert "Traceback" not in text, text
    assert "Aborted!" not in text, text
    assert proc.returncode == code, (args, proc.returncode, out, text)
    return out.decode() + text


def _linear(store: Store, repo: str, branch: str) -> list[str]:
    chain = list(store.list_commits(repo, branch))
    assert [c.parent for c in chain] == [c.id for c in chain[1:]] + [None]
    return [c.id for c in chain]


def test_concurrent_plain_puts_each_land(disk_site: StoreSite, tmp_path: Path) -> None:
    """8 plain puts at once: every one exits 0 and every file is on the branch."""
    store = disk_site.open()
    store.create_repo("r")
    writers = 8 if disk_site.kind == "local" else 6
    src = tmp_path / "src"
    src.mkdir()
    for i in range(writers):
        (src / f"f{i}").write_text(f"content {i}")
    rounds = 2 if disk_site.kind == "local" else 1
    for round_ in range(rounds):
        procs = [
            _spawn(
                disk_site,
                tmp_path,
                "put",
                "file",
                f"r@master:/{round_}/f{i}",
                "-f",
                str(src / f"f{i}"),
            )
            for i in range(writers)
        ]
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT)
            assert proc.returncode == 0, err.decode()
    fresh = disk_site.open()
    files = {e.path for e in fresh.walk("r", "master")}
    assert files == {f"/{r}/f{i}" for r in range(rounds) for i in range(writers)}
    assert fresh.read_bytes("r", "master", f"/{rounds - 1}/f3") == b"content 3"
    assert fresh.list_open_commits("r") == []
    assert len(_linear(fresh, "r", "master")) == rounds * writers


def test_plain_put_never_joins_a_job_commit(disk_site: StoreSite, tmp_path: Path) -> None:
    """A job's output commit is not joined by a put, and user verbs refuse it even by id."""
    store = disk_site.open()
    store.create_repo("out")
    job = store.start_commit("out", "master", origin="auto", owner=OWNER_JOB)
    (tmp_path / "f").write_text("user file")
    _run(disk_site, tmp_path, "put", "file", "out@master:/user", "-f", str(tmp_path / "f"))
    fresh = disk_site.open()
    assert fresh.read_bytes("out", "master", "/user") == b"user file"  # landed on its own
    ref = f"out@{job.id}"
    for args in (
        ("finish", "commit", ref),
        ("delete", "commit", ref),
        ("put", "file", f"{ref}:/x", "-f", str(tmp_path / "f")),
    ):
        text = _run(disk_site, tmp_path, *args, code=1)
        assert f"is the output commit of job {job.id}" in text, text
    # The job's commit is untouched: still open, nothing staged in it, and its owner can finish.
    assert [c.id for c in fresh.list_open_commits("out")] == [job.id]
    with pytest.raises(CommitOwnedError):
        fresh.open_commit("out", job.id)
    handle = fresh.open_commit("out", job.id, owner=OWNER_JOB)
    done = handle.finish()
    assert done.finished_by == OWNER_JOB
    assert {e.path for e in fresh.walk("out", "master")} == {"/user"}


def test_put_joins_only_a_shared_commit(disk_site: StoreSite, tmp_path: Path) -> None:
    """``start commit`` opens a commit puts join; a killed put's own commit is never joined."""
    store = disk_site.open()
    store.create_repo("r")
    leftover = store.start_commit("r", "master", owner=OWNER_PUT)  # as a SIGKILLed put leaves
    leftover.put_bytes("/lost", b"x")
    leftover.flush()
    (tmp_path / "f").write_text("v")
    _run(disk_site, tmp_path, "put", "file", "r@master:/a", "-f", str(tmp_path / "f"))
    assert {e.path for e in disk_site.open().walk("r", "master")} == {"/a"}
    shared = _run(disk_site, tmp_path, "start", "commit", "r@master").strip().splitlines()[0]
    text = _run(disk_site, tmp_path, "put", "file", "r@master:/b", "-f", str(tmp_path / "f"))
    assert f"writing into open commit r@{shared}" in text
    _run(disk_site, tmp_path, "finish", "commit", "r@master")  # the shared one, by branch
    fresh = disk_site.open()
    assert {e.path for e in fresh.walk("r", "master")} == {"/a", "/b"}
    assert [c.id for c in fresh.list_open_commits("r")] == [leftover.id]
    _run(disk_site, tmp_path, "delete", "commit", f"r@{leftover.id}")  # by id it can be named


def test_put_whose_finish_fails_deletes_its_commit(disk_site: StoreSite, tmp_path: Path) -> None:
    """A file / directory collision at finish: the put fails and leaves no open commit."""
    store = disk_site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/a", b"file")
    (tmp_path / "f").write_text("v")
    text = _run(
        disk_site, tmp_path, "put", "file", "r@master:/a/b", "-f", str(tmp_path / "f"), code=1
    )
    assert "collision" in text
    fresh = disk_site.open()
    assert fresh.list_open_commits("r") == []
    _run(disk_site, tmp_path, "put", "file", "r@master:/c", "-f", str(tmp_path / "f"))
    assert {e.path for e in disk_site.open().walk("r", "master")} == {"/a", "/c"}


@pytest.mark.parametrize("attempt", range(2))
def test_concurrent_finishes_land_once(disk_site: StoreSite, tmp_path: Path, attempt: int) -> None:
    """Four ``finish commit`` of one open commit: one lands, the others say already finished."""
    store = disk_site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/base", b"base")
    commit = store.start_commit("r", "master")
    commit.put_bytes("/x", b"x")
    commit.flush()
    procs = [_spawn(disk_site, tmp_path, "finish", "commit", f"r@{commit.id}") for _ in range(4)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=TIMEOUT)
        results.append((proc.returncode, err.decode()))
    assert sorted(code for code, _ in results) == [0, 1, 1, 1], results
    for code, err in results:
        if code:
            assert "is already finished" in err or "is finished" in err, err
    fresh = disk_site.open()
    assert _linear(fresh, "r", "master") == [commit.id, c.id]
    assert fresh.inspect_commit("r", commit.id).parent == c.id
    assert fresh.backend.list("repos/r/open") == []  # no loser re-created the open folder
    listed = _run(disk_site, tmp_path, "list", "commit", "r@master")
    assert listed.count(commit.id) == 1


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_finish_in_threads_lands_once(site: StoreSite) -> None:
    """The same race inside one process (every backend, memory included)."""
    import threading

    store = site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/base", b"base")
    for _ in range(3):
        commit = store.start_commit("r", "master")
        commit.put_bytes(f"/{commit.id}", b"x")
        commit.flush()
        outcomes: list[str] = []
        go = threading.Barrier(4)

        def finish(
            commit_id: str = commit.id,
            go: threading.Barrier = go,
            outcomes: list[str] = outcomes,
        ) -> None:
            handle = site.open().open_commit("r", commit_id)
            go.wait()
            try:
                handle.finish()
                outcomes.append("landed")
            except CommitFinishedError:
                outcomes.append("finished")

        threads = [threading.Thread(target=finish) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT)
        assert sorted(outcomes) == ["finished"] * 3 + ["landed"], outcomes
    assert len(_linear(site.open(), "r", "master")) == 4


class _Interleave:
    """A real backend that runs ``step`` once, just before its first ``verb`` of a key holding
    ``fragment``: another writer's whole finish (or delete) lands inside this finisher's window.
    """

    def __init__(self, inner: Any, verb: str, fragment: str, step: Callable[[], object]) -> None:
        self.inner, self.verb, self.fragment, self.step = inner, verb, fragment, step
        self.ran = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def _at(self, verb: str, key: str) -> None:
        if not self.ran and verb == self.verb and self.fragment in key:
            self.ran = True
            self.step()

    def read(self, key: str) -> bytes:
        self._at("read", key)
        data: bytes = self.inner.read(key)
        return data

    def write(self, key: str, data: bytes) -> None:
        self._at("write", key)
        self.inner.write(key, data)


@pytest.mark.parametrize(
    ("verb", "fragment", "other"),
    [
        ("read", "/ops/", "finish"),  # the winner removed the open folder: segments are gone
        ("write", "/landing-", "finish"),  # the loser's landing mark re-creates the folder
        ("read", "/ops/", "delete"),
    ],
)
def test_finish_losing_inside_its_window(
    site: StoreSite, verb: str, fragment: str, other: str
) -> None:
    """The in-process race, interleaved deterministically: exactly one outcome per finisher.

    Another writer finishes (or deletes) the commit while this finisher reads its staged
    segments or writes its landing mark: this one gets "already finished" (or not found),
    never a ``FileNotFoundError``, the history is linear and no open folder is left behind.
    """
    store = site.open()
    store.create_repo("r")
    with store.commit("r") as base:
        base.put_bytes("/base", b"base")
    commit = store.start_commit("r", "master")
    commit.put_bytes("/x", b"x")
    commit.flush()

    def step() -> None:
        if other == "finish":
            site.open().open_commit("r", commit.id).finish()
        else:
            site.open().delete_commit("r", commit.id)

    backend = _Interleave(site.open().backend, verb, fragment, step)
    loser = Store(backend).open_commit("r", commit.id)
    if other == "finish":
        with pytest.raises(CommitFinishedError, match="is already finished"):
            loser.finish()
        assert _linear(site.open(), "r", "master") == [commit.id, base.id]
    else:
        with pytest.raises(CommitNotFound, match="not found"):
            loser.finish()
        assert _linear(site.open(), "r", "master") == [base.id]
    assert backend.ran
    fresh = site.open()
    assert fresh.list_open_commits("r") == []
    assert fresh.backend.list("repos/r/open") == []  # not even a re-created folder
