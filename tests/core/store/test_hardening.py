"""Store behaviour on hostile or broken input: bad ids, corrupt records, odd local trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import (
    BranchNotFound,
    CommitNotFound,
    RepoNotFound,
    StoreError,
    StoreFormatError,
)
from airflow_datum_provider.core.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    s.create_repo("r")
    with s.commit("r") as c:
        c.put_bytes("/a", b"a")
    return s


@pytest.mark.parametrize("bad", ["../../../../victim", "x" * 32, "ABCDEF" + "0" * 26, ""])
def test_commit_ids_never_reach_storage_keys(store: Store, tmp_path: Path, bad: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "info.json").write_text("{}")
    with pytest.raises(CommitNotFound, match="32 hex characters"):
        store.delete_commit("r", bad)
    with pytest.raises(CommitNotFound, match="32 hex characters"):
        store.open_commit("r", bad)
    assert (victim / "info.json").exists()


def test_corrupt_record_is_one_store_error(store: Store, tmp_path: Path) -> None:
    (tmp_path / "store" / "repos" / "r" / "repo.json").write_text("{bad")
    with pytest.raises(StoreError, match=r"repos/r/repo.json is corrupt"):
        store.inspect_repo("r")


def test_non_empty_folder_without_format_is_refused(tmp_path: Path) -> None:
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "notes.txt").write_text("mine")
    with pytest.raises(StoreFormatError, match="not empty and has no FORMAT file"):
        Store.open(tmp_path / "home")
    assert not (tmp_path / "home" / "FORMAT").exists()


def test_branch_cannot_point_at_an_open_commit(store: Store) -> None:
    open_commit = store.start_commit("r")
    with pytest.raises(CommitNotFound, match="is not finished"):
        store.create_branch("r", "dev", head=open_commit.id)
    assert "dev" not in {b.name for b in store.list_branches("r")}


def test_next_commit_names_unknown_repo_and_branch(store: Store) -> None:
    with pytest.raises(RepoNotFound):
        store.next_commit("nope", "master", None)
    with pytest.raises(BranchNotFound):
        store.next_commit("r", "nope", None)
    head = store.branch_head("r", "master")
    assert store.next_commit("r", "master", head) is None
    assert store.next_commit("r", "master", None) is not None


def test_branch_equals_id_checks_the_branch(store: Store) -> None:
    head = store.branch_head("r", "master")
    assert store.inspect_commit("r", f"master={head}").id == head
    with pytest.raises(BranchNotFound, match="'bogus'"):
        store.inspect_commit("r", f"bogus={head}")


def test_put_dir_puts_regular_files_only(store: Store, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.write_text("do not upload")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "a.txt").write_text("a")
    (tree / "sub" / "b.txt").write_text("b")
    (tree / "link").symlink_to(outside)
    (tree / "dirlink").symlink_to(tmp_path)
    os.mkfifo(tree / "pipe")
    skipped: list[tuple[str, str]] = []
    with store.commit("r") as c:
        count = c.put_dir("/t", tree, skipped=lambda p, why: skipped.append((p, why)))
    assert count == 2
    assert [e.path for e in store.walk("r", "master", "/t")] == ["/t/a.txt", "/t/sub/b.txt"]
    reasons = {Path(p).name: why for p, why in skipped}
    assert reasons == {
        "dirlink": "symlink to a directory (not followed)",
        "link": "symlink (only regular files are put)",
        "pipe": "FIFO (only regular files are put)",
    }


def test_finish_with_expected_parent_refuses_a_moved_branch(store: Store) -> None:
    from airflow_datum_provider.core.errors import ConflictError

    head = store.branch_head("r", "master")
    late = store.start_commit("r")
    late.put_bytes("/late", b"l")
    with store.commit("r") as other:
        other.put_bytes("/other", b"o")
    with pytest.raises(ConflictError, match="moved"):
        late.finish(expected_parent=head)
    assert store.branch_head("r", "master") == other.id
    assert [c.id for c in store.list_open_commits("r")] == [late.id]
    done = late.finish(expected_parent=other.id)
    assert done.parent == other.id


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://AKID:Sekr3t-7f3a9@bucket/store", "store URL s3://***@bucket/store: must not carry"),
        ("s3://someone@bucket", "store URL s3://***@bucket: must not carry user info"),
        ("file://me@host/x", "store URL file://***@host/x: must not carry user info"),
        ("nosuch://x/y", "store URL nosuch://x/y: protocol `nosuch` is not supported"),
        ("s3://", "store URL s3://: needs a bucket"),
        ("s3:///", "store URL s3:///: needs a bucket"),
    ],
)
def test_a_store_url_is_checked_without_io_and_never_repeats_a_secret(
    url: str, expected: str
) -> None:
    from airflow_datum_provider.core.store import check_store_url

    with pytest.raises(StoreError) as caught:
        check_store_url(url)
    assert str(caught.value).startswith(expected)
    assert "Sekr3t" not in str(caught.value)
    assert "AKID" not in str(caught.value)
    with pytest.raises(StoreError, match="^" + expected.replace("*", r"\*")):
        Store.open(url)


@pytest.mark.parametrize(
    "url", ["relative/folder", "/abs/folder", "file:///x", "memory://m", "s3://b/p"]
)
def test_good_store_urls_pass_the_check(url: str) -> None:
    from airflow_datum_provider.core.store import check_store_url

    check_store_url(url)
