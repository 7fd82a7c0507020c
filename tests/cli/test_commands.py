"""``datumctl`` commands in-process (click's CliRunner): a broad table of errors and options.

The end-to-end tests run the real console script; these cover more cases cheaply.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.store import Store


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """Repo ``imgs`` with commit ``one`` (/a.txt, /dir/b.txt) on master; empty repo ``empty``."""
    root = tmp_path / "store"
    store = Store.open(root)
    store.create_repo("imgs")
    store.create_repo("empty")
    store.create_branch("empty", "master")
    with store.commit("imgs", "master", description="one") as c:
        c.put_bytes("/a.txt", b"alpha\n")
        c.put_bytes("/dir/b.txt", b"beta\n")
    return root


@pytest.fixture
def one(store_dir: Path) -> str:
    head = Store.open(store_dir).branch_head("imgs", "master")
    assert head is not None
    return head


def invoke(store_dir: Path, *args: str, input: bytes | None = None) -> Result:
    runner = CliRunner()
    return runner.invoke(
        cli, ["--store", str(store_dir), *args], input=input, catch_exceptions=False
    )


USER_ERRORS = [
    ("create-existing-repo", ("create", "repo", "imgs"), "repo 'imgs' already exists"),
    ("create-bad-repo-name", ("create", "repo", "my.repo"), "repo name 'my.repo' is invalid"),
    ("inspect-bad-repo-name", ("inspect", "repo", "a/b"), "repo name 'a/b' is invalid"),
    ("inspect-unknown-repo", ("inspect", "repo", "nope"), "repo 'nope' not found"),
    ("delete-unknown-repo", ("delete", "repo", "nope"), "repo 'nope' not found"),
    ("list-branch-unknown-repo", ("list", "branch", "nope"), "repo 'nope' not found"),
    ("list-commit-unknown-repo", ("list", "commit", "nope"), "repo 'nope' not found"),
    ("delete-unknown-branch", ("delete", "branch", "imgs@dev"), "branch 'dev' not found"),
    ("branch-head-unknown", ("create", "branch", "imgs@dev", "--head", "nope"), "branch 'nope'"),
    ("start-unknown-repo", ("start", "commit", "nope@master"), "repo 'nope' not found"),
    ("ref-bad-char", ("start", "commit", "imgs@ma.ster"), "character '.' is not allowed"),
    ("finish-none-open", ("finish", "commit", "imgs@master"), "no open commit on imgs@master"),
    ("delete-none-open", ("delete", "commit", "imgs@master"), "no open commit on imgs@master"),
    ("finish-unknown-id", ("finish", "commit", "imgs@" + "f" * 32), "not found"),
    ("ancestor-too-far", ("inspect", "commit", "imgs@master~5"), "does not exist"),
    ("empty-branch", ("list", "file", "empty@master"), "has no commits"),
    ("unknown-dir", ("list", "file", "imgs@master:/nope"), "'/nope' not found"),
    ("dotdot", ("list", "file", "imgs@master:/dir/../x"), "element '..' is not allowed"),
    ("get-dir", ("get", "file", "imgs@master:/dir"), "/dir/ is a directory"),
    ("bad-glob", ("glob", "file", "imgs@master:/a/("), "/a/("),
    ("inspect-unknown-file", ("inspect", "file", "imgs@master:/x"), "'/x' not found"),
    ("delete-unknown-file", ("delete", "file", "imgs@master:/x"), "'/x' not found"),
    ("delete-on-empty", ("delete", "file", "empty@master:/x"), "has no commits"),
    ("bad-path-char", ("delete", "file", "imgs@master:/x[1]"), "character '[' is not allowed"),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in USER_ERRORS], ids=[c[0] for c in USER_ERRORS]
)
def test_user_error_is_one_line_and_exit_1(
    store_dir: Path, args: tuple[str, ...], message: str
) -> None:
    result = invoke(store_dir, *args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("datumctl: error: ")
    assert message in line


def test_writing_to_a_finished_commit_is_refused(store_dir: Path, one: str) -> None:
    result = invoke(store_dir, "put", "file", f"imgs@{one}:/x", "-f", "-", input=b"x")
    assert result.exit_code == 1
    assert "is finished" in result.stderr
    result = invoke(store_dir, "delete", "commit", f"imgs@{one}")
    assert (result.exit_code, "finished" in result.stderr) == (1, True)


def test_put_directory_without_r(store_dir: Path, tmp_path: Path) -> None:
    result = invoke(store_dir, "put", "file", "imgs@master", "-f", str(tmp_path))
    assert result.exit_code == 1
    assert f"{tmp_path} is a directory: use -r" in result.stderr


USAGE_ERRORS = [
    ("stdin-needs-path", ("put", "file", "imgs@master", "-f", "-"), "needs a file path"),
    ("stdin-dir-path", ("put", "file", "imgs@master:/d/", "-f", "-"), "needs a file path"),
    ("stdin-no-path", ("put", "file", "imgs@master:/dir/"), "from stdin needs a file path"),
    ("number-0", ("list", "commit", "imgs", "-n", "0"), "0 is not in the range x>=1"),
    ("two-repos", ("diff", "commit", "imgs@master", "empty@master"), "both must be in one repo"),
    (
        "get-no-path",
        ("get", "file", "imgs@master"),
        '"imgs@master" is not of the form repo@branch:/path',
    ),
    ("glob-no-pattern", ("glob", "file", "imgs@master:"), "is not of the form repo@branch:/path"),
    ("commit-no-branch", ("inspect", "commit", "imgs"), '"imgs" is not of the form repo@branch'),
    ("commit-with-path", ("inspect", "commit", "imgs@master:/a"), "is not of the form"),
    ("no-repo", ("list", "file", "@master:/"), "is not of the form"),
    ("empty-ref", ("list", "commit", "imgs@"), "is not of the form repo[@branch]"),
    ("output-xml", ("list", "repo", "--output", "xml"), "'xml' is not one of"),
    ("unknown-noun", ("list", "pipes"), "No such command 'pipes'"),
    ("compress", ("put", "file", "imgs@master:/x", "-f", "-", "--compress"), "no compression"),
    ("project", ("list", "repo", "--project", "p"), "no projects"),
]


@pytest.mark.parametrize(
    ("args", "message"), [c[1:] for c in USAGE_ERRORS], ids=[c[0] for c in USAGE_ERRORS]
)
def test_bad_usage_exit_2(store_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(store_dir, *args)
    assert result.exit_code == 2, result.output
    assert message in result.stderr


def test_put_append_then_r_append_is_usage_error(store_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    result = invoke(
        store_dir, "put", "file", "imgs@master", "-r", "--append", "-f", str(tmp_path / "d")
    )
    assert result.exit_code == 2
    assert "cannot be used with -r" in result.stderr


def test_put_paths(store_dir: Path, tmp_path: Path) -> None:
    local = tmp_path / "x.bin"
    local.write_bytes(b"xx")
    tree = tmp_path / "tree"
    (tree / "deep").mkdir(parents=True)
    (tree / "deep" / "f").write_bytes(b"f")
    assert invoke(store_dir, "put", "file", "imgs@master:/into/", "-f", str(local)).exit_code == 0
    assert invoke(store_dir, "put", "file", "imgs@master:/t", "-r", "-f", str(tree)).exit_code == 0
    store = Store.open(store_dir)
    assert store.read_bytes("imgs", "master", "/into/x.bin") == b"xx"
    assert store.read_bytes("imgs", "master", "/t/deep/f") == b"f"


def test_open_commit_by_id_and_by_branch(store_dir: Path, one: str) -> None:
    started = invoke(store_dir, "start", "commit", "imgs@master").stdout.strip()
    assert (
        invoke(store_dir, "put", "file", f"imgs@{started}:/n", "-f", "-", input=b"n").exit_code == 0
    )
    # In an open commit the path is not checked against the head: it may come from a put.
    assert invoke(store_dir, "delete", "file", "imgs@master:/a.txt").exit_code == 0
    assert invoke(store_dir, "delete", "file", "imgs@master:/not-yet").exit_code == 0
    result = invoke(store_dir, "finish", "commit", "imgs@master", "-m", "renamed")
    assert result.exit_code == 0, result.output
    info = Store.open(store_dir).inspect_commit("imgs", "master")
    assert (info.id, info.parent, info.description, info.file_count) == (started, one, "renamed", 2)


def test_list_commit_number_and_json(store_dir: Path, one: str) -> None:
    invoke(store_dir, "put", "file", "imgs@master:/n", "-f", "-", input=b"n")
    opened = invoke(store_dir, "start", "commit", "imgs@master").stdout.strip()
    result = invoke(store_dir, "list", "commit", "imgs", "-n", "2", "--output", "json")
    ids = [json.loads(line)["id"] for line in result.stdout.splitlines()]
    assert len(ids) == 2
    assert ids[0] == opened
    assert one not in ids


def test_inspect_repo_text(store_dir: Path) -> None:
    result = invoke(store_dir, "inspect", "repo", "imgs")
    fields = dict(line.split(":", 1) for line in result.stdout.splitlines())
    assert {k: v.strip() for k, v in fields.items() if k != "Created"} == {
        "Name": "imgs",
        "Description": "-",
        "Size": "11 B",
        "Branches": "master",
    }


def test_empty_file_and_inspect_text(store_dir: Path) -> None:
    assert (
        invoke(store_dir, "put", "file", "imgs@master:/empty", "-f", "-", input=b"").exit_code == 0
    )
    assert invoke(store_dir, "get", "file", "imgs@master:/empty").stdout_bytes == b""
    text = invoke(store_dir, "inspect", "file", "imgs@master:/dir").stdout
    assert "Type: dir" in " ".join(text.split())
    assert "5 bytes" in text


def test_empty_listing_prints_the_header(store_dir: Path) -> None:
    assert invoke(store_dir, "list", "branch", "empty").stdout == "BRANCH   HEAD\nmaster   -\n"
    assert invoke(store_dir, "diff", "commit", "imgs@master", "imgs@master").stdout.split() == [
        "CHANGE", "PATH", "OLD", "SIZE", "NEW", "SIZE",
    ]  # fmt: skip
