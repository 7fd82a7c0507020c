"""``datumctl`` when things go wrong: foreign exceptions, killed writers, odd local trees."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.listing import glob_files
from airflow_datum_provider.core.store import Store
from tests._ports import free_port
from tests.cli.conftest import DATUMCTL, Run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="signals, FIFOs and symlinks")


def stderr_lines(proc: subprocess.CompletedProcess[bytes]) -> list[str]:
    return proc.stderr.decode().splitlines()


def closed_port() -> int:
    # Nothing listens there, and no other test process (an xdist worker) starts a server there.
    return free_port()


@pytest.fixture
def aws_env(tmp_path: Path) -> dict[str, str]:
    """An AWS environment with no credentials, no config files and no instance metadata."""
    missing = str(tmp_path / "no-such-aws-file")
    return {
        "AWS_CONFIG_FILE": missing,
        "AWS_SHARED_CREDENTIALS_FILE": missing,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_MAX_ATTEMPTS": "1",
        "AWS_RETRY_MODE": "standard",
    }


@pytest.fixture
def no_aws_vars(monkeypatch: pytest.MonkeyPatch) -> None:
    """Drop credentials and endpoints the developer's shell may carry (run() inherits them)."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)


# -- 1. no traceback, whatever fails -------------------------------------------------------


@pytest.mark.usefixtures("no_aws_vars")
def test_unreachable_s3_endpoint_is_one_error_line(run: Run, aws_env: dict[str, str]) -> None:
    pytest.importorskip("s3fs")
    env = {
        **aws_env,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    proc = run("--store", "s3://bkt/p", "list", "repo", code=1, store=False, env=env)
    (line,) = stderr_lines(proc)  # run() also checks there is no "Traceback"
    assert line.startswith("datumctl: error: EndpointConnectionError: "), line
    assert "127.0.0.1" in line


@pytest.mark.usefixtures("no_aws_vars")
def test_missing_s3_credentials_is_one_error_line(run: Run, aws_env: dict[str, str]) -> None:
    pytest.importorskip("s3fs")
    env = {**aws_env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{closed_port()}"}
    proc = run("--store", "s3://bkt/p", "list", "repo", code=1, store=False, env=env)
    assert stderr_lines(proc) == [
        "datumctl: error: NoCredentialsError: Unable to locate credentials"
    ]


def _failing_open(exc: BaseException) -> object:
    def open_(*args: object, **kwargs: object) -> Store:
        raise exc

    return open_


@pytest.mark.parametrize(
    ("exc", "line"),
    [
        (RuntimeError("boom"), "datumctl: error: RuntimeError: boom"),
        (KeyError("x"), "datumctl: error: KeyError: 'x'"),
        (ValueError(), "datumctl: error: ValueError"),
        (RuntimeError("first\n  second\n"), "datumctl: error: RuntimeError: first second"),
    ],
    ids=["message", "keyerror", "no-message", "multi-line"],
)
def test_unexpected_exception_is_one_error_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, exc: Exception, line: str
) -> None:
    monkeypatch.delenv("DATUMCTL_DEBUG", raising=False)
    Store.open(tmp_path)  # the store exists; opening it fails
    monkeypatch.setattr(Store, "open", _failing_open(exc))
    result = CliRunner().invoke(cli, ["--store", str(tmp_path), "list", "repo"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [line]
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_datumctl_debug_adds_the_traceback(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DATUMCTL_DEBUG", "1")
    Store.open(tmp_path)
    monkeypatch.setattr(Store, "open", _failing_open(RuntimeError("boom")))
    result = CliRunner().invoke(cli, ["--store", str(tmp_path), "list", "repo"])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[0] == "Traceback (most recent call last):"
    assert "RuntimeError: boom" in lines[-2]
    assert lines[-1] == "datumctl: error: RuntimeError: boom"


def test_keyboard_interrupt_stays_clicks_abort(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Store.open(tmp_path)
    monkeypatch.setattr(Store, "open", _failing_open(KeyboardInterrupt()))
    result = CliRunner().invoke(cli, ["--store", str(tmp_path), "list", "repo"])
    assert result.exit_code == 1
    assert "Aborted!" in result.stderr
    assert "datumctl: error" not in result.stderr


# -- 2. open commits: announced, ambiguous ones refused, own ones cleaned up on SIGTERM ------


def _open_ids(store_dir: Path) -> list[str]:
    return [c.id for c in Store.open(store_dir).list_open_commits("imgs")]


def _wait_for_open_commit(store_dir: Path, proc: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else proc.returncode
        ids = _open_ids(store_dir)
        if ids:
            (found,) = ids
            return found
        time.sleep(0.05)
    raise AssertionError("the put never opened a commit")


def _put_from_pipe(store_dir: Path, env: dict[str, str], path: str) -> subprocess.Popen[bytes]:
    """A ``put file -f -`` that has read a little and waits for more (its stdin stays open)."""
    assert DATUMCTL is not None
    proc = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "put", "file", f"imgs@master:{path}", "-f", "-"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"partial")
    proc.stdin.flush()
    return proc


def _note(commit: str) -> re.Pattern[str]:
    return re.compile(
        rf"datumctl: note: writing into open commit imgs@{commit} \(started [^)]+\); "
        rf"it is published by: datumctl finish commit imgs@{commit}\Z"
    )


def test_put_after_a_killed_put_does_not_join_its_commit(
    run: Run, store_dir: Path, clean_env: dict[str, str]
) -> None:
    run("create", "repo", "imgs")
    run("put", "file", "imgs@master:/a", "-f", "-", input=b"a")
    head = Store.open(store_dir).branch_head("imgs", "master")

    killed = _put_from_pipe(store_dir, clean_env, "/lost")
    left = _wait_for_open_commit(store_dir, killed)
    killed.kill()  # SIGKILL: no cleanup possible, the commit stays open
    killed.communicate(timeout=30)

    # The killed put's commit was its own: the next put never joins it (issue 7 §1), it lands
    # its own commit; the left-over one is listed and can be finished or deleted by id.
    put = run("put", "file", "imgs@master:/b", "-f", "-", input=b"b")
    assert stderr_lines(put) == []
    store = Store.open(store_dir)
    assert store.branch_head("imgs", "master") not in (head, left)
    assert [c.id for c in store.list_open_commits("imgs")] == [left]
    run("finish", "commit", "imgs@master", code=1)  # not found through the branch
    run("finish", "commit", f"imgs@{left}")
    store = Store.open(store_dir)
    assert store.branch_head("imgs", "master") == left
    assert [f.path for f in store.list_files("imgs", "master")] == ["/a", "/b"]


def test_put_into_a_commit_named_by_id_is_quiet(run: Run, store_dir: Path) -> None:
    """Naming the open commit is deliberate; the note is for commits found through a branch."""
    run("create", "repo", "imgs")
    started = run("start", "commit", "imgs@master").stdout.decode().strip()
    put = run("put", "file", f"imgs@{started}:/x", "-f", "-", input=b"x")
    assert stderr_lines(put) == []
    by_branch = run("put", "file", "imgs@master:/y", "-f", "-", input=b"y")
    (line,) = stderr_lines(by_branch)
    assert _note(started).match(line), line


def test_put_and_delete_refuse_several_open_commits(run: Run, store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("imgs")
    with store.commit("imgs", "master") as c:
        c.put_bytes("/a", b"a")
    first = store.start_commit("imgs", "master").id
    second = store.start_commit("imgs", "master").id

    for args in (
        ("put", "file", "imgs@master:/x", "-f", "-"),
        ("delete", "file", "imgs@master:/a"),
    ):
        proc = run(*args, code=1, input=b"x")
        (line,) = stderr_lines(proc)
        assert line == (
            f"datumctl: error: 2 open commits on imgs@master ({first}, {second}); "
            "name one as imgs@<id>"
        )
    assert _open_ids(store_dir) == [first, second]  # no third commit was started
    assert store.read_bytes("imgs", "master", "/a") == b"a"

    run("put", "file", f"imgs@{second}:/x", "-f", "-", input=b"x")  # an id is not ambiguous
    assert store.open_commit("imgs", second) is not None


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["TERM", "HUP"])
def test_terminated_put_deletes_its_own_commit(
    run: Run, store_dir: Path, clean_env: dict[str, str], signum: int
) -> None:
    run("create", "repo", "imgs")
    run("put", "file", "imgs@master:/a", "-f", "-", input=b"a")
    head = Store.open(store_dir).branch_head("imgs", "master")

    proc = _put_from_pipe(store_dir, clean_env, "/big")
    _wait_for_open_commit(store_dir, proc)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signum, err  # it ends by the signal, as `timeout` expects
    assert b"Traceback" not in err, err

    assert _open_ids(store_dir) == []
    listed = run("list", "commit", "imgs", "--output", "json").stdout.decode().splitlines()
    assert len(listed) == 1
    assert '"finished": null' not in listed[0]
    assert Store.open(store_dir).branch_head("imgs", "master") == head


def test_terminated_put_into_an_open_commit_leaves_it_open(
    run: Run, store_dir: Path, clean_env: dict[str, str]
) -> None:
    """The commit belongs to whoever started it: a killed put does not delete it."""
    run("create", "repo", "imgs")
    started = run("start", "commit", "imgs@master").stdout.decode().strip()
    proc = _put_from_pipe(store_dir, clean_env, "/big")
    assert proc.stderr is not None
    note = proc.stderr.readline().decode()  # printed before the put blocks on its input
    assert _note(started).match(note.rstrip("\n")), note
    proc.terminate()
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM
    assert _open_ids(store_dir) == [started]


_SIGNAL_WHILE_STARTING = """
import os, signal, sys
from airflow_datum_provider.cli._store import writing
from airflow_datum_provider.core.store import Store

real_start = Store.start_commit

def start_then_signal(self, *args, **kwargs):
    commit = real_start(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGTERM)  # arrives before writing() has the commit in hand
    return commit

Store.start_commit = start_then_signal
store = Store.open(sys.argv[1])
with writing(store, "imgs", "master") as (commit, fresh):
    print("the block ran", flush=True)
"""


def test_sigterm_while_starting_the_commit_still_deletes_it(store_dir: Path) -> None:
    Store.open(store_dir).create_repo("imgs")
    proc = subprocess.run(
        [sys.executable, "-c", _SIGNAL_WHILE_STARTING, str(store_dir)],
        capture_output=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    assert proc.stdout == b""
    assert _open_ids(store_dir) == []


def test_put_restores_the_signal_handlers(tmp_path: Path) -> None:
    """In-process (as in an embedding program) the handlers are put back; custom ones kept."""
    store_dir = tmp_path / "store"
    Store.open(store_dir).create_repo("imgs")

    def custom(signum: int, frame: object) -> None:
        raise AssertionError("not called")

    previous = signal.signal(signal.SIGHUP, custom)
    try:
        result = CliRunner().invoke(
            cli, ["--store", str(store_dir), "put", "file", "imgs@master:/x", "-f", "-"], input=b"x"
        )
        assert result.exit_code == 0, result.stderr
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
        assert signal.getsignal(signal.SIGHUP) is custom
    finally:
        signal.signal(signal.SIGHUP, previous)


# -- 3. put file -r: regular files only ------------------------------------------------------


def test_put_recursive_skips_symlinks_and_fifos(run: Run, store_dir: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("do not upload")
    tree = tmp_path / "data"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    (tree / "link").symlink_to(outside / "secret")
    (tree / "dirlink").symlink_to(outside)
    (tree / "dangling").symlink_to(tmp_path / "nothing")
    os.mkfifo(tree / "sub" / "fifo")  # opening it would block forever

    run("create", "repo", "imgs")
    proc = run("put", "file", "imgs@master", "-r", "-f", str(tree))  # run() times out on a hang

    lines = stderr_lines(proc)
    assert len(lines) == 4, lines
    skipped = {line.split(": ")[2] for line in lines}  # "datumctl", "note", "skipped <path>", ...
    assert skipped == {
        f"skipped {tree / name}" for name in ("link", "dirlink", "dangling", "sub/fifo")
    }
    assert all(line.startswith("datumctl: note: skipped ") for line in lines)
    store = Store.open(store_dir)
    assert [f.path for f in glob_files(store, "imgs", "master", "/**")] == [
        "/data/",
        "/data/a.txt",
        "/data/sub/",
        "/data/sub/b.txt",
    ]
