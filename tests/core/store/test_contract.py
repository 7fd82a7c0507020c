"""The store contract: every backend (memory, local folder, S3 on moto) behaves the same."""

from __future__ import annotations

import hashlib
import io
import re
import threading
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import (
    AlreadyExistsError,
    BranchNotFound,
    CommitFinishedError,
    CommitNotFound,
    FileNotFound,
    InvalidNameError,
    InvalidPathError,
    NotFoundError,
    RepoNotFound,
    StoreFormatError,
)
from airflow_datum_provider.core.listing import glob_files
from airflow_datum_provider.core.store import Entry, Store, _layout
from tests.core.store.conftest import StoreSite

HEX32 = re.compile(r"\A[0-9a-f]{32}\Z")


def blake(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=32).hexdigest()


def commit_files(store: Store, repo: str, files: dict[str, bytes], branch: str = "master") -> str:
    with store.commit(repo, branch) as c:
        for path, data in files.items():
            c.put_bytes(path, data)
    head = store.branch_head(repo, branch)
    assert head is not None
    return head


def names(infos: object) -> list[str]:
    return [i.path for i in infos]  # type: ignore[attr-defined]


# -- format ------------------------------------------------------------------------------


def test_new_store_writes_format_file(site: StoreSite) -> None:
    store = site.open()
    assert store.backend.read(_layout.FORMAT)
    assert site.open().list_repos() == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b'{"format": "datum-store", "version": 99}', "version 99"),
        (b'{"format": "something-else", "version": 1}', "something-else"),
        (b"not json", "FORMAT is corrupt"),
    ],
    ids=["future-version", "foreign-format", "garbage"],
)
def test_unknown_format_is_refused(site: StoreSite, body: bytes, needle: str) -> None:
    site.open().backend.write(_layout.FORMAT, body)
    with pytest.raises(StoreFormatError, match=needle) as err:
        site.open()
    assert site.url.rstrip("/").split("://")[-1] in str(err.value)


# -- repos -------------------------------------------------------------------------------


def test_repo_lifecycle(store: Store) -> None:
    info = store.create_repo("images", description="raw images")
    assert (info.name, info.description) == ("images", "raw images")
    store.create_repo("b-repo_2")
    assert [r.name for r in store.list_repos()] == ["b-repo_2", "images"]
    commit_files(store, "images", {"/a": b"12345"})
    inspected = store.inspect_repo("images")
    assert inspected.description == "raw images"
    assert inspected.branches == ("master",)
    assert inspected.size_bytes == 5
    assert inspected.created == info.created
    store.delete_repo("images")
    assert [r.name for r in store.list_repos()] == ["b-repo_2"]
    with pytest.raises(RepoNotFound):
        store.inspect_repo("images")
    store.create_repo("images")  # the name is free again, and the repo is empty
    assert store.list_branches("images") == []


def test_duplicate_repo(store: Store) -> None:
    store.create_repo("r")
    with pytest.raises(AlreadyExistsError, match="repo 'r' already exists"):
        store.create_repo("r")
    assert store.create_repo("r", exist_ok=True).name == "r"


@pytest.mark.parametrize(
    "name",
    ["", "has space", "dot.name", "slash/name", "ünïcode", "x" * 64, "a@b"],
    ids=["empty", "space", "dot", "slash", "unicode", "too-long", "at"],
)
def test_repo_name_rule(store: Store, name: str) -> None:
    with pytest.raises(InvalidNameError, match="repo name") as err:
        store.create_repo(name)
    assert err.value.name == name  # type: ignore[attr-defined]
    assert isinstance(err.value, ValueError)


def test_unknown_repo_errors(store: Store) -> None:
    calls = [
        lambda: store.inspect_repo("nope"),
        lambda: store.delete_repo("nope"),
        lambda: store.list_branches("nope"),
        lambda: store.branch_head("nope", "master"),
        lambda: store.start_commit("nope"),
        lambda: list(store.list_commits("nope")),
        lambda: store.inspect_commit("nope", "master"),
        lambda: list(store.list_files("nope", "master")),
    ]
    for call in calls:
        with pytest.raises(RepoNotFound, match="repo 'nope' not found") as err:
            call()
        assert err.value.repo == "nope"  # type: ignore[attr-defined]
        assert isinstance(err.value, LookupError)


# -- branches ----------------------------------------------------------------------------


def test_branches(store: Store) -> None:
    store.create_repo("r")
    assert store.create_branch("r", "empty").head is None
    assert store.branch_head("r", "empty") is None
    first = commit_files(store, "r", {"/a": b"1"})
    second = commit_files(store, "r", {"/b": b"2"})
    at = store.create_branch("r", "at-first", head=first)
    assert at.head == first
    assert store.branch_head("r", "at-first") == first
    assert [(b.name, b.head) for b in store.list_branches("r")] == [
        ("at-first", first),
        ("empty", None),
        ("master", second),
    ]
    # Moving a branch: create_branch on an existing one points it elsewhere.
    store.create_branch("r", "at-first", head="master")
    assert store.branch_head("r", "at-first") == second
    store.create_branch("r", "at-first", head=f"{second}^")
    assert store.branch_head("r", "at-first") == first
    store.delete_branch("r", "empty")
    assert [b.name for b in store.list_branches("r")] == ["at-first", "master"]
    # Commits stay reachable by id when their branch is deleted.
    store.delete_branch("r", "master")
    assert store.inspect_commit("r", second).parent == first
    with pytest.raises(BranchNotFound, match="branch 'master' not found in repo 'r'"):
        store.branch_head("r", "master")


def test_branch_errors(store: Store) -> None:
    store.create_repo("r")
    with pytest.raises(BranchNotFound, match="branch 'dev' not found in repo 'r'") as err:
        store.branch_head("r", "dev")
    assert (err.value.repo, err.value.branch) == ("r", "dev")  # type: ignore[attr-defined]
    with pytest.raises(BranchNotFound):
        store.delete_branch("r", "dev")
    with pytest.raises(BranchNotFound, match="'dev'"):
        store.inspect_commit("r", "dev")
    with pytest.raises(BranchNotFound, match="'dev'"):
        list(store.list_commits("r", "dev"))
    with pytest.raises(InvalidNameError, match="branch name 'a b'"):
        store.create_branch("r", "a b")
    with pytest.raises(CommitNotFound, match="not found in repo 'r'"):
        store.create_branch("r", "x", head="0" * 32)
    store.create_branch("r", "empty")
    with pytest.raises(CommitNotFound, match="has no commits"):
        store.inspect_commit("r", "empty")


# -- commits -----------------------------------------------------------------------------


def test_commit_fields(store: Store) -> None:
    store.create_repo("r")
    c = store.start_commit("r", description="first", provenance=["in@" + "a" * 32])
    assert HEX32.match(c.id)
    opened = store.inspect_commit("r", c.id)
    assert opened.finished is None
    assert opened.branch == "master"
    c.put_bytes("/x/one", b"hello")
    c.put_bytes("two", b"world!")
    info = c.finish()
    assert info.id == c.id
    assert info.parent is None
    assert info.origin == "user"
    assert info.description == "first"
    assert info.provenance == ("in@" + "a" * 32,)
    assert info.started <= (info.finished or "")
    assert (info.size_bytes, info.file_count) == (11, 2)
    assert store.inspect_commit("r", "master") == info
    assert store.inspect_commit("r", c.id) == info

    auto = store.start_commit("r", origin="auto")
    auto.put_bytes("/three", b"3")
    second = auto.finish(description="by a pipeline")
    assert second.parent == info.id
    assert second.origin == "auto"
    assert second.description == "by a pipeline"
    assert (second.size_bytes, second.file_count) == (12, 3)
    assert store.inspect_commit("r", "master^") == info
    assert store.inspect_commit("r", "master~1") == info
    assert store.inspect_commit("r", f"master={second.id}") == second
    assert second.to_dict()["provenance"] == []


def test_finished_commit_is_immutable(site: StoreSite) -> None:
    store = site.open()
    store.create_repo("r")
    c = store.start_commit("r")
    c.put_bytes("/a", b"1")
    c.finish()
    for call in (
        lambda: c.put_bytes("/b", b"2"),
        lambda: c.delete("/a"),
        lambda: c.put_stream("/b", io.BytesIO(b"2")),
        lambda: c.finish(),
    ):
        with pytest.raises(CommitFinishedError, match=f"r@{c.id} is finished") as err:
            call()
        assert err.value.commit == c.id  # type: ignore[attr-defined]
    with pytest.raises(CommitFinishedError):
        site.open().open_commit("r", c.id)
    with pytest.raises(CommitFinishedError, match="cannot be deleted"):
        store.delete_commit("r", c.id)


def test_stale_handle_cannot_write_a_finished_commit(site: StoreSite) -> None:
    store = site.open()
    store.create_repo("r")
    c = store.start_commit("r")
    other = site.open().open_commit("r", c.id)
    c.put_bytes("/a", b"1")
    c.finish()
    other.put_bytes("/b", b"2")  # buffered; the backend notices at flush
    with pytest.raises(CommitFinishedError):
        other.finish()
    assert [i.id for i in store.list_commits("r", "master")] == [c.id]
    assert names(store.list_files("r", "master")) == ["/a"]


def test_commit_ops_put_delete_copy(store: Store) -> None:
    store.create_repo("src")
    store.create_repo("r")
    src = commit_files(store, "src", {"/d/a": b"aa", "/d/sub/b": b"bbb", "/top": b"t"})
    commit_files(store, "r", {"/keep": b"k", "/gone/x": b"x", "/gone/y": b"y", "/f": b"f"})
    with store.commit("r") as c:
        c.delete("/gone")
        c.delete("/f")
        assert c.copy("src", src, "/d", "/copied") == 2
        assert c.copy("src", "master", "/top", "/top-copy") == 1
        c.put_bytes("/f", b"new f")  # a put after a delete in one commit wins
    files = {e.path: e.size for e in store.walk("r", "master")}
    assert files == {
        "/copied/a": 2,
        "/copied/sub/b": 3,
        "/f": 5,
        "/keep": 1,
        "/top-copy": 1,
    }
    with store.commit("r") as c, pytest.raises(FileNotFound, match="'/nothing' not found"):
        c.copy("src", src, "/nothing", "/x")


def test_context_manager_aborts_on_error(store: Store) -> None:
    store.create_repo("r")
    c = store.commit("r")
    c.put_bytes("/a", b"1")
    with pytest.raises(RuntimeError), c:
        raise RuntimeError("boom")
    assert store.branch_head("r", "master") is None
    assert store.list_open_commits("r") == []


def test_list_commits_newest_first(store: Store) -> None:
    store.create_repo("r")
    ids = [commit_files(store, "r", {f"/f{i}": b"x"}) for i in range(5)]
    listed = [c.id for c in store.list_commits("r", "master")]
    assert listed == ids[::-1]
    assert [c.id for c in store.list_commits("r", "master", number=2)] == ids[:2:-1]
    assert [c.id for c in store.list_commits("r")] == ids[::-1]
    assert [c.id for c in store.list_commits("r", number=3)] == ids[:1:-1]
    # An open commit is not listed.
    store.start_commit("r")
    assert len(list(store.list_commits("r"))) == 5


def test_diff(store: Store) -> None:
    store.create_repo("r")
    old = commit_files(store, "r", {"/same": b"s", "/mod": b"12", "/del": b"123"})
    with store.commit("r") as c:
        c.put_bytes("/mod", b"12345")
        c.delete("/del")
        c.put_bytes("/add", b"1234")
    diff = [d.to_dict() for d in store.diff("r", old, "master")]
    assert diff == [
        {"path": "/add", "change": "added", "old_size_bytes": None, "new_size_bytes": 4},
        {"path": "/del", "change": "deleted", "old_size_bytes": 3, "new_size_bytes": None},
        {"path": "/mod", "change": "modified", "old_size_bytes": 2, "new_size_bytes": 5},
    ]
    assert [d.change for d in store.diff("r", None, old)] == ["added"] * 3


def test_next_and_wait_for_commit(site: StoreSite) -> None:
    store = site.open()
    store.create_repo("r")
    store.create_branch("r", "master")
    assert store.next_commit("r", "master", None) is None
    first = commit_files(store, "r", {"/a": b"1"})
    found = store.next_commit("r", "master", None)
    assert found is not None
    assert found.id == first
    assert store.next_commit("r", "master", first) is None
    with pytest.raises(TimeoutError, match="r@master"):
        store.wait_for_commit("r", "master", after=first, timeout=0.2, poll=0.05)

    def later() -> None:
        commit_files(site.open(), "r", {"/b": b"2"})

    thread = threading.Timer(0.2, later)
    thread.start()
    try:
        got = store.wait_for_commit("r", "master", after=first, timeout=30, poll=0.05)
    finally:
        thread.join()
    assert got.parent == first


def test_open_commit_from_another_store(site: StoreSite) -> None:
    """``datumctl start commit`` / ``put file`` / ``finish commit`` run as separate processes."""
    store = site.open()
    store.create_repo("r")
    commit_id = store.start_commit("r").id
    one = site.open().open_commit("r", commit_id)
    one.put_bytes("/a", b"first")
    one.flush()
    two = site.open().open_commit("r", commit_id)
    two.put_bytes("/b", b"second")
    two.put_bytes("/a", b"overwritten", append=False)
    two.flush()
    assert [c.id for c in site.open().list_open_commits("r")] == [commit_id]
    info = site.open().open_commit("r", commit_id).finish()
    assert info.file_count == 2
    fresh = site.open()
    assert fresh.read_bytes("r", "master", "/a") == b"overwritten"
    assert fresh.read_bytes("r", "master", "/b") == b"second"
    assert fresh.list_open_commits("r") == []


def test_delete_open_commit(store: Store) -> None:
    store.create_repo("r")
    c = store.start_commit("r")
    c.put_bytes("/a", b"1")
    c.flush()
    assert [o.id for o in store.list_open_commits("r")] == [c.id]
    store.delete_commit("r", c.id)
    assert store.list_open_commits("r") == []
    with pytest.raises(CommitNotFound, match=f"commit '{c.id}' not found in repo 'r'"):
        store.delete_commit("r", c.id)
    with pytest.raises(CommitNotFound):
        store.open_commit("r", c.id)


def test_unknown_commit_errors(store: Store) -> None:
    store.create_repo("r")
    commit_files(store, "r", {"/a": b"1"})
    missing = "f" * 32
    for call in (
        lambda: store.inspect_commit("r", missing),
        lambda: store.open_commit("r", missing),
        lambda: store.delete_commit("r", missing),
        lambda: list(store.list_files("r", missing)),
    ):
        with pytest.raises(CommitNotFound, match=f"'{missing}' not found in repo 'r'") as err:
            call()
        assert err.value.commit == missing  # type: ignore[attr-defined]
    with pytest.raises(CommitNotFound, match="does not exist"):
        store.inspect_commit("r", "master^")
    with pytest.raises(CommitNotFound, match="ancestry is \\^ or ~N"):
        store.inspect_commit("r", "master~x")
    # Files of an open commit are not readable before it is finished.
    c = store.start_commit("r")
    with pytest.raises(CommitNotFound, match="not finished"):
        list(store.list_files("r", c.id))


# -- files -------------------------------------------------------------------------------


def test_put_and_get(store: Store, tmp_path: Path) -> None:
    store.create_repo("r")
    local = tmp_path / "local.bin"
    local.write_bytes(b"L" * 1000)
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "x.txt").write_bytes(b"x")
    (tree / "sub" / "y.txt").write_bytes(b"yy")
    with store.commit("r") as c:
        assert c.put_bytes("/bytes", b"abc") == blake(b"abc")
        assert c.put_stream("/stream", io.BytesIO(b"s" * 100)) == blake(b"s" * 100)
        assert c.put_file("/file", local) == blake(b"L" * 1000)
        assert c.put_dir("/dir", tree) == 2
    assert store.read_bytes("r", "master", "/bytes") == b"abc"
    with store.open_file("r", "master", "/stream") as fh:
        assert fh.read() == b"s" * 100
    assert store.read_bytes("r", "master", "file") == b"L" * 1000
    assert store.read_bytes("r", "master", "/dir/sub/y.txt") == b"yy"
    assert names(store.list_files("r", "master", "/dir")) == ["/dir/sub/", "/dir/x.txt"]


def test_large_stream_is_streamed(store: Store) -> None:
    """Above the small-file threshold the blob goes through a temp object."""
    store.create_repo("r")
    data = bytes(range(256)) * (40 * 1024)  # 10 MiB
    with store.commit("r") as c:
        assert c.put_stream("/big", io.BytesIO(data)) == blake(data)
    with store.open_file("r", "master", "/big") as fh:
        assert fh.read() == data
    assert store.inspect_file("r", "master", "/big").size == len(data)


def test_overwrite_and_append(store: Store) -> None:
    store.create_repo("r")
    commit_files(store, "r", {"/f": b"one"})
    with store.commit("r") as c:
        c.put_bytes("/f", b"two")
    assert store.read_bytes("r", "master", "/f") == b"two"
    with store.commit("r") as c:
        c.put_bytes("/f", b"+three", append=True)
        c.put_bytes("/new", b"a", append=True)
        c.put_bytes("/new", b"b", append=True)
    assert store.read_bytes("r", "master", "/f") == b"two+three"
    assert store.read_bytes("r", "master", "/new") == b"ab"
    info = store.inspect_file("r", "master", "/f")
    assert (info.size, info.hash) == (9, blake(b"two+three"))


def test_list_files(store: Store) -> None:
    store.create_repo("r")
    commit_files(
        store,
        "r",
        {"/a/b/c": b"123", "/a/b/d": b"4", "/a/e": b"56", "/a-z": b"7", "/top": b"8"},
    )
    root = list(store.list_files("r", "master"))
    # Byte order of the entry paths, directories with their trailing ``/`` ("-" < "/").
    assert [(f.path, f.size, f.is_dir) for f in root] == [
        ("/a-z", 1, False),
        ("/a/", 6, True),
        ("/top", 1, False),
    ]
    assert names(store.list_files("r", "master", "/a")) == ["/a/b/", "/a/e"]
    assert names(store.list_files("r", "master", "/a/")) == ["/a/b/", "/a/e"]
    assert names(store.list_files("r", "master", "/a/b")) == ["/a/b/c", "/a/b/d"]
    assert names(store.list_files("r", "master", "/a/e")) == ["/a/e"]
    assert root[1].to_dict()["type"] == "dir"
    with pytest.raises(FileNotFound, match="file '/nope' not found in r@") as err:
        list(store.list_files("r", "master", "/nope"))
    assert err.value.path == "/nope"  # type: ignore[attr-defined]


def test_glob_files(store: Store) -> None:
    store.create_repo("r")
    commit_files(store, "r", {"/a/1.txt": b"1", "/a/2.csv": b"22", "/b/3.txt": b"333"})
    assert names(glob_files(store, "r", "master", "/*")) == ["/a/", "/b/"]
    assert names(glob_files(store, "r", "master", "/*/*.txt")) == ["/a/1.txt", "/b/3.txt"]
    assert names(glob_files(store, "r", "master", "/a/*")) == ["/a/1.txt", "/a/2.csv"]
    assert names(glob_files(store, "r", "master", "/**")) == [
        "/a/",
        "/a/1.txt",
        "/a/2.csv",
        "/b/",
        "/b/3.txt",
    ]
    assert names(glob_files(store, "r", "master", "/")) == ["/"]
    assert list(glob_files(store, "r", "master", "/c/*")) == []


def test_glob_literal_prefix_inside_a_name(store: Store) -> None:
    """Only the manifest range of the literal prefix is read; matches must not change."""
    store.create_repo("r")
    commit_files(store, "r", {"/ab/x": b"1", "/a-1": b"2", "/a": b"3", "/b/ab": b"4"})
    assert names(glob_files(store, "r", "master", "/a*")) == ["/a", "/a-1", "/ab/"]
    assert names(glob_files(store, "r", "master", "/ab*/*")) == ["/ab/x"]
    assert names(glob_files(store, "r", "master", "/a")) == ["/a"]
    assert names(glob_files(store, "r", "master", "/ab")) == ["/ab/"]
    assert names(glob_files(store, "r", "master", "/*/ab")) == ["/b/ab"]


def test_inspect_file(store: Store) -> None:
    store.create_repo("r")
    commit_files(store, "r", {"/d/a": b"12", "/d/b": b"345"})
    f = store.inspect_file("r", "master", "/d/a")
    assert (f.path, f.size, f.hash, f.is_dir) == ("/d/a", 2, blake(b"12"), False)
    d = store.inspect_file("r", "master", "/d")
    assert (d.path, d.size, d.is_dir) == ("/d/", 5, True)
    with pytest.raises(FileNotFound, match="file '/x' not found"):
        store.inspect_file("r", "master", "/x")


def test_unknown_file_errors(store: Store) -> None:
    store.create_repo("r")
    head = commit_files(store, "r", {"/a": b"1"})
    for call in (
        lambda: store.read_bytes("r", "master", "/missing"),
        lambda: store.open_file("r", "master", "/missing"),
        lambda: store.inspect_file("r", "master", "/missing"),
    ):
        with pytest.raises(FileNotFound, match=f"file '/missing' not found in r@{head}") as err:
            call()
        assert err.value.path == "/missing"  # type: ignore[attr-defined]
        assert err.value.commit == head  # type: ignore[attr-defined]
        assert isinstance(err.value, NotFoundError)


def test_paths_are_cleaned_and_checked(store: Store) -> None:
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("a//b", b"1")
        with pytest.raises(InvalidPathError, match="'/x\\*'"):
            c.put_bytes("/x*", b"")
    assert names(store.walk("r", "master")) == ["/a/b"]


def test_dedup(store: Store) -> None:
    """One blob per content: globally for single objects, within a batch for packed blobs."""
    store.create_repo("r")
    store.create_repo("other")
    data = b"same content"
    commit_files(store, "r", {"/a": data, "/b/c": data})
    commit_files(store, "other", {"/z": data})
    digest = blake(data)
    entries = list(store.walk("r", "master"))
    if store.pack_below:  # packed: once per batch (one commit), not once per file
        assert entries[0].loc
        assert entries[0].loc == entries[1].loc
        assert store.backend.list("blobs") == []
    else:
        assert store.backend.list(f"blobs/{digest[:2]}") == [digest]
        blob_dirs = [d for d in store.backend.list("blobs")]
        total = sum(len(store.backend.list(f"blobs/{d}")) for d in blob_dirs)
        assert total == 1
    # A blob above the pack threshold is a single content-addressed object, shared by repos.
    big = b"b" * (store.pack_below or 1)
    commit_files(store, "r", {"/big": big})
    commit_files(store, "other", {"/big2": big})
    big_digest = blake(big)
    assert store.backend.list(f"blobs/{big_digest[:2]}") == [big_digest]
    assert store.read_bytes("other", "master", "/big2") == big


def test_many_files_span_several_chunks(store: Store) -> None:
    """Lookups, directory listings and diffs across manifest chunk boundaries."""
    store.create_repo("r")
    with store.commit("r") as c:
        digest = c.put_bytes("/d0/f000000", b"x")
        for i in range(1, 20_000):
            c.put_entry(Entry(f"/d{i % 7}/f{i:06d}", digest, 1))
    manifest = store.manifest("r", "master")
    assert len(manifest.chunks) > 2
    assert manifest.count == 20_000
    assert len(names(store.list_files("r", "master", "/d3"))) == len(range(3, 20_000, 7))
    assert store.inspect_file("r", "master", "/d6/f019998").size == 1
    with store.commit("r") as c:
        c.delete("/d0")
    assert [d.change for d in store.diff("r", "master^", "master")] == ["deleted"] * len(
        range(0, 20_000, 7)
    )


@pytest.mark.parametrize(
    ("ops", "expected"),
    [
        ([("P", "/seed/0"), ("P", "/x"), ("D", "/seed")], ["/x"]),
        ([("P", "/seed/0"), ("D", "/seed"), ("P", "/seed/1")], ["/seed/1"]),
        ([("P", "/a"), ("P", "/b/c"), ("D", "/")], []),
        ([("D", "/"), ("P", "/y")], ["/y"]),
        ([("P", "/d/x"), ("D", "/d/x"), ("P", "/d/y")], ["/d/y"]),
    ],
    ids=["put-then-delete-dir", "delete-then-put-again", "delete-root", "root-then-put", "file"],
)
def test_delete_after_put_in_one_commit(
    store: Store, ops: list[tuple[str, str]], expected: list[str]
) -> None:
    store.create_repo("order")
    with store.commit("order") as c:
        for kind, path in ops:
            if kind == "P":
                c.put_bytes(path, path.encode())
            else:
                c.delete(path)
    assert [e.path for e in store.walk("order", "master")] == expected
