"""``datumctl`` end to end: every verb through the installed console script.

Subprocesses cost ~0.3 s each, so each test is one short session a user would type, and set-up
that is not under test goes through the store API in-process.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pty
import re
import struct
import subprocess
import termios
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.store import Store
from tests.cli.conftest import DATUMCTL, Run

ID = re.compile(r"\A[0-9a-f]{32}\Z")


def json_lines(proc: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def table(proc: subprocess.CompletedProcess[bytes]) -> list[list[str]]:
    """Rows of cells (columns are separated by at least two spaces); the header first."""
    return [re.split(r"\s{2,}", line.strip()) for line in proc.stdout.decode().splitlines()]


def one_error_line(proc: subprocess.CompletedProcess[bytes]) -> str:
    lines = proc.stderr.decode().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("datumctl: error: "), lines
    return lines[0]


@pytest.fixture
def seeded(store_dir: Path) -> dict[str, str]:
    """Repo ``imgs``: commit ``one`` (/a.txt, /dir/b.txt) then ``two`` (/a.txt changed)."""
    store = Store.open(store_dir)
    store.create_repo("imgs")
    with store.commit("imgs", "master", description="one") as c:
        c.put_bytes("/a.txt", b"alpha\n")
        c.put_bytes("/dir/b.txt", b"beta\n")
    one = c.id
    with store.commit("imgs", "master", description="two") as c:
        c.put_bytes("/a.txt", b"ALPHA!\n")
    return {"one": one, "two": c.id}


def test_repo_verbs(run: Run) -> None:
    run("create", "repo", "imgs", "-d", "Raw images")
    run("create", "repo", "labels")

    rows = table(run("list", "repo"))
    assert rows[0] == ["NAME", "CREATED", "SIZE", "DESCRIPTION"]
    assert rows[1][0] == "imgs"
    assert rows[1][2:] == ["0 B", "Raw images"]
    assert rows[2][0] == "labels"
    assert rows[2][2:] == ["0 B"]

    repos = json_lines(run("list", "repo", "--output", "json"))
    assert [r["name"] for r in repos] == ["imgs", "labels"]
    assert set(repos[0]) == {"name", "description", "created", "branches", "size_bytes"}

    (info,) = json_lines(run("inspect", "repo", "imgs", "--output", "json"))
    assert info["description"] == "Raw images"

    run("delete", "repo", "labels")
    assert [r["name"] for r in json_lines(run("list", "repo", "--output", "json"))] == ["imgs"]


def test_put_get_list_inspect_file(run: Run, tmp_path: Path) -> None:
    local = tmp_path / "a.txt"
    local.write_bytes(b"alpha\n")
    run("create", "repo", "imgs")

    put = run("put", "file", "imgs@master", "-f", str(local))  # path defaults to /a.txt
    assert put.stdout == put.stderr == b""  # quiet: no progress bar when stderr is a pipe
    run("put", "file", "imgs@master:/log.txt", "-f", "-", input=b"one\n")
    run("put", "file", "imgs@master:/log.txt", "-f", "-", "--append", input=b"two\n")

    assert run("get", "file", "imgs@master:/log.txt").stdout == b"one\ntwo\n"
    run("get", "file", "imgs@master:/a.txt", "-o", str(tmp_path / "copy.txt"))
    assert (tmp_path / "copy.txt").read_bytes() == b"alpha\n"

    files = json_lines(run("list", "file", "imgs@master", "--output", "json"))
    assert files == [
        {"path": "/a.txt", "type": "file", "size_bytes": 6, "hash": files[0]["hash"]},
        {"path": "/log.txt", "type": "file", "size_bytes": 8, "hash": files[1]["hash"]},
    ]

    (info,) = json_lines(run("inspect", "file", "imgs@master:/log.txt", "--output", "json"))
    digest = hashlib.blake2b(b"one\ntwo\n", digest_size=32).hexdigest()
    assert info == {"path": "/log.txt", "type": "file", "size_bytes": 8, "hash": digest}

    commits = json_lines(run("list", "commit", "imgs@master", "--output", "json"))
    # Each put without an open commit is a commit of its own.
    assert [c["file_count"] for c in commits] == [2, 2, 1]


def test_put_directory_glob_delete(run: Run, tmp_path: Path) -> None:
    data = tmp_path / "data"
    (data / "sub").mkdir(parents=True)
    (data / "x.csv").write_bytes(b"1,2\n")
    (data / "sub" / "y.csv").write_bytes(b"3,4\n")
    (data / "sub" / "z.txt").write_bytes(b"zzz\n")
    run("create", "repo", "imgs")

    err = run("put", "file", "imgs@master", "-f", str(data), code=1)
    assert "use -r" in one_error_line(err)
    run("put", "file", "imgs@master", "-r", "-f", str(data))  # lands under /data/
    run("put", "file", "imgs@master:/copy", "-r", "-f", str(data))

    assert table(run("list", "file", "imgs@master:/data")) == [
        ["NAME", "TYPE", "SIZE"],
        ["/data/sub/", "dir", "8 B"],
        ["/data/x.csv", "file", "4 B"],
    ]
    matches = json_lines(run("glob", "file", "imgs@master:/**.csv", "--output", "json"))
    assert [m["path"] for m in matches] == [
        "/copy/sub/y.csv",
        "/copy/x.csv",
        "/data/sub/y.csv",
        "/data/x.csv",
    ]

    refused = run("delete", "file", "imgs@master:/data/sub", code=1)
    assert "/data/sub/ is a directory in imgs@master: delete it with -r" in one_error_line(refused)
    run("delete", "file", "imgs@master:/data/sub", "-r")
    (head,) = json_lines(run("inspect", "commit", "imgs@master", "--output", "json"))
    assert head["file_count"] == 4
    # The deleted directory is still in the parent commit, addressed as branch=commit.
    before = table(run("list", "file", f"imgs@master={head['parent']}:/data/sub"))
    assert [row[0] for row in before[1:]] == ["/data/sub/y.csv", "/data/sub/z.txt"]


def test_commit_verbs(run: Run, store_dir: Path) -> None:
    run("create", "repo", "imgs")
    run("put", "file", "imgs@master:/a", "-f", "-", input=b"1")
    first = Store.open(store_dir).branch_head("imgs", "master")

    started = run("start", "commit", "imgs@master", "-m", "batch").stdout.decode().strip()
    assert ID.match(started)
    # With one open commit on the branch, puts go into it (as after pachctl start commit).
    run("put", "file", "imgs@master:/b", "-f", "-", input=b"22")
    run("put", "file", "imgs@master:/c", "-f", "-", input=b"333")

    commits = json_lines(run("list", "commit", "imgs", "--output", "json"))
    assert [(c["id"], c["finished"] is None) for c in commits] == [(started, True), (first, False)]
    assert set(commits[0]) == {
        "repo", "id", "branch", "parent", "origin", "description", "provenance",
        "started", "finished", "size_bytes", "file_count",
    }  # fmt: skip
    rows = table(run("list", "commit", "imgs@master"))
    assert rows[0] == ["REPO", "BRANCH", "COMMIT", "FINISHED", "SIZE", "ORIGIN", "DESCRIPTION"]
    assert rows[1] == ["imgs", "master", started, "-", "-", "user", "batch"]

    run("finish", "commit", "imgs@master")
    (info,) = json_lines(run("inspect", "commit", f"imgs@{started}", "--output", "json"))
    assert (info["parent"], info["file_count"], info["size_bytes"]) == (first, 3, 6)
    assert info["finished"] is not None
    assert info["description"] == "batch"

    diff = json_lines(run("diff", "commit", "imgs@master", "--output", "json"))  # vs the parent
    assert diff == [
        {"path": "/b", "change": "added", "old_size_bytes": None, "new_size_bytes": 2},
        {"path": "/c", "change": "added", "old_size_bytes": None, "new_size_bytes": 3},
    ]
    run("put", "file", "imgs@master:/a", "-f", "-", input=b"4444")
    assert table(run("diff", "commit", "imgs@master", f"imgs@{first}")) == [
        ["CHANGE", "PATH", "OLD SIZE", "NEW SIZE"],
        ["modified", "/a", "1 B", "4 B"],
        ["added", "/b", "-", "2 B"],
        ["added", "/c", "-", "3 B"],
    ]
    assert f"imgs@{started}" in run("inspect", "commit", "imgs@master^").stdout.decode()


def test_finish_and_delete_open_commits_by_id(run: Run, store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("imgs")
    keep = store.start_commit("imgs", "master", description="keep")
    keep.put_bytes("/k", b"k")
    keep.flush()
    drop = store.start_commit("imgs", "master")

    # Two open commits on master: the branch name is ambiguous, an id is not.
    err = run("finish", "commit", "imgs@master", code=1)
    assert "2 open commits on imgs@master" in one_error_line(err)
    run("delete", "commit", f"imgs@{drop.id}")
    run("finish", "commit", f"imgs@{keep.id}")

    assert store.list_open_commits("imgs") == []
    head = store.inspect_commit("imgs", "master")
    assert (head.id, head.file_count) == (keep.id, 1)
    err = run("delete", "commit", f"imgs@{keep.id}", code=1)
    assert "finished" in one_error_line(err)


def test_branch_verbs(run: Run, seeded: dict[str, str]) -> None:
    run("create", "branch", "imgs@dev", "--head", "master^")
    run("create", "branch", "imgs@empty")
    assert table(run("list", "branch", "imgs")) == [
        ["BRANCH", "HEAD"],
        ["dev", seeded["one"]],
        ["empty", "-"],
        ["master", seeded["two"]],
    ]
    run("delete", "branch", "imgs@dev")
    assert json_lines(run("list", "branch", "imgs", "--output", "json")) == [
        {"repo": "imgs", "branch": "empty", "head": None},
        {"repo": "imgs", "branch": "master", "head": seeded["two"]},
    ]


def test_store_comes_from_option_then_env_then_default(
    run: Run, tmp_path: Path, store_dir: Path
) -> None:
    env_store = tmp_path / "env-store"
    made = run("create", "repo", "from_env", store=False, env={"DATUM_STORE": str(env_store)})
    note = f"datumctl: note: created a new, empty store at {env_store} (from $DATUM_STORE)"
    assert made.stderr.decode().splitlines() == [note]
    assert Store.open(env_store).repo_exists("from_env")
    again = run("create", "repo", "again", store=False, env={"DATUM_STORE": str(env_store)})
    assert again.stderr == b""  # only a new store is announced

    Store.open(store_dir)
    listed = run("list", "repo", "--output", "json", env={"DATUM_STORE": str(env_store)})
    assert listed.stdout == b""  # --store (to store_dir) wins over the environment

    run("create", "repo", "from_default", store=False)
    default = tmp_path / "home" / ".local" / "share" / "airflow-datum-provider" / "store"
    assert Store.open(default).repo_exists("from_default")
    shown = run("config", "-o", "json", store=False).stdout
    assert json.loads(shown) == {"store": str(default), "store_source": "the default folder"}
    version = run("version", store=False, env={"DATUM_STORE": str(env_store)}).stdout.decode()
    assert f"{env_store} (from $DATUM_STORE)" in version
    assert f"{env_store} (from $DATUM_STORE)" in run(
        "--help", store=False, env={"DATUM_STORE": str(env_store)}
    ).stdout.decode().replace("\n  ", " ")


def test_help_shows_a_long_store_path_unbroken(run: Run, tmp_path: Path) -> None:
    """A long path with hyphens is on one line of ``--help`` (click wraps at hyphens too)."""
    store = tmp_path / ("a-long-name" * 4) / "with-hyphens-every-few-letters" / "store"
    out = run("--help", store=False, env={"DATUM_STORE": str(store)}).stdout.decode()
    lines = out.splitlines()
    assert f"  {store}" in lines, out  # longer than the help's width: alone on its line
    assert lines[lines.index(f"  {store}") + 1] == "  (from $DATUM_STORE); see: datumctl config"


def test_a_typo_in_store_is_refused_by_read_verbs(run: Run, tmp_path: Path) -> None:
    """A store that does not exist is not silently a new, empty one."""
    typo = tmp_path / "stroe"
    for args in (("list", "repo"), ("inspect", "repo", "x"), ("list", "job")):
        proc = run("--store", str(typo), *args, store=False, code=1)
        line = one_error_line(proc)
        assert line.startswith(f"datumctl: error: no store at {typo} (from --store)"), line
    assert not typo.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "file", "nope@master:/"), "repo 'nope' not found"),
        (("list", "commit", "imgs@nobranch"), "branch 'nobranch' not found"),
        (("inspect", "commit", "imgs@" + "0" * 32), f"commit '{'0' * 32}' not found"),
        (("get", "file", "imgs@master:/dir/missing.txt"), "'/dir/missing.txt' not found"),
        (("get", "file", "imgs@master:/dir/b+c.txt"), "character '+' is not allowed"),
        (("put", "file", "imgs@master:/x", "-f", "/no/such/src"), "/no/such/src: No such file"),
    ],
    ids=["repo", "branch", "commit", "file", "bad-path", "missing-src"],
)
def test_user_errors_exit_1(
    run: Run, seeded: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    proc = run(*args, code=1)
    assert message in one_error_line(proc)
    assert proc.stdout == b""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("list", "file", "imgs"), '"imgs" is not of the form repo@branch[:/path]'),
        (("create", "repo"), "Missing argument 'NAME'"),
        (("frobnicate", "repo"), "No such command 'frobnicate'"),
    ],
    ids=["not-a-ref", "missing-argument", "unknown-verb"],
)
def test_bad_usage_exits_2(run: Run, args: tuple[str, ...], message: str) -> None:
    assert message in run(*args, code=2).stderr.decode()


def _on_a_terminal(argv: list[str], env: dict[str, str], stdin: bytes = b"") -> bytes:
    """Run ``argv`` with stderr on a pseudo-terminal (100 columns); return what it showed."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=follower, env=env)
    os.close(follower)
    assert proc.stdin is not None
    proc.stdin.write(stdin)
    proc.stdin.close()
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the terminal's other side closed
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    assert proc.wait(timeout=60) == 0, shown
    return shown


def test_progress_bar_on_a_terminal(
    store_dir: Path, clean_env: dict[str, str], tmp_path: Path
) -> None:
    """With the bar's delay at 0 it is drawn on every update: no timing in the test."""
    assert DATUMCTL is not None
    Store.open(store_dir).create_repo("imgs")
    env = {**clean_env, "DATUMCTL_PROGRESS_DELAY": "0"}
    put = [DATUMCTL, "--store", str(store_dir), "put", "file", "imgs@master:/slow"]
    shown = _on_a_terminal(put, env, stdin=b"headtail")
    assert re.search(rb"/slow: 8 B \[", shown), shown  # bytes from stdin, no total
    assert Store.open(store_dir).read_bytes("imgs", "master", "/slow") == b"headtail"

    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * (3 << 20))
    shown = _on_a_terminal([*put[:-1], "imgs@master:/big", "-f", str(big)], env)
    assert b"3.0 MiB / 3.0 MiB" in shown, shown  # the tables' units

    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    for name in ("a", "b", "sub/c"):
        (tree / name).write_bytes(b"data")
    shown = _on_a_terminal([*put[:-1], "imgs@master:/tree", "-r", "-f", str(tree)], env)
    assert b"3/3 files" in shown, shown

    quiet = subprocess.run(
        [*put[:-1], "imgs@master:/quiet", "-f", str(big)], env=env, capture_output=True, check=True
    )
    assert quiet.stderr == b""  # stderr is not a terminal: no bar
