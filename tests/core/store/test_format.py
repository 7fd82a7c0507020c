"""A store written by the previous release (FORMAT 1) still opens and reads right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import StoreFormatError
from airflow_datum_provider.core.store import Store, _layout
from tests.core.store.conftest import StoreSite


def _to_format_1(store: Store, repo: str) -> None:
    """Rewrite a store's objects the way format 1 wrote them (bare-id refs, id-named manifests)."""
    backend = store.backend
    for seq in store._ref_log(repo, "master"):
        key = _layout.ref(repo, "master", int(seq))
        commit = json.loads(backend.read(key))["commit"]
        backend.write(key, (commit or "").encode())
        if commit:
            record = store._read_record(_layout.commit(repo, commit))
            manifest = backend.read(_layout.manifest(repo, record.pop("manifest")))
            backend.write(_layout.manifest(repo, commit), manifest)
            for field in ("v", "owner", "finished_by"):
                record.pop(field, None)
            backend.write(_layout.commit(repo, commit), json.dumps(record).encode())
    backend.write(_layout.FORMAT, b'{"format": "datum-store", "version": 1}')


def test_format_1_store_opens_and_is_marked_3(site: StoreSite) -> None:
    store = site.open()
    store.create_repo("r")
    with store.commit("r") as first:
        first.put_bytes("/a", b"a")
    with store.commit("r") as second:
        second.put_bytes("/b", b"b")
    _to_format_1(store, "r")

    old = site.open()
    meta = json.loads(old.backend.read(_layout.FORMAT))
    assert meta["version"] == 3  # an older release now refuses it instead of misreading it
    assert [c.id for c in old.list_commits("r", "master")] == [second.id, first.id]
    assert old.read_bytes("r", "master", "/a") == b"a"
    assert old.read_bytes("r", "master^", "/a") == b"a"
    assert {e.path for e in old.walk("r", second.id)} == {"/a", "/b"}
    with old.commit("r") as third:  # a new commit on top of format-1 history
        third.put_bytes("/c", b"c")
    fresh = site.open()
    assert [c.id for c in fresh.list_commits("r", "master")] == [third.id, second.id, first.id]
    assert {e.path for e in fresh.walk("r", "master")} == {"/a", "/b", "/c"}


_FORMAT_2 = Path(__file__).parent / "data" / "format2"  # written by 1bd81f7, the last format 2


def _load_fixture(site: StoreSite, root: Path) -> None:
    """Copy a store written by an older release onto the site's backend, object by object."""
    backend = site.open_raw()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            backend.write(path.relative_to(root).as_posix(), path.read_bytes())


def test_store_written_by_the_format_2_release_reads_and_takes_packed_commits(
    site: StoreSite,
) -> None:
    _load_fixture(site, _FORMAT_2)
    store = site.open()
    assert json.loads(store.backend.read(_layout.FORMAT))["version"] == 3
    head = "0910011e94354d4d91ce3e85fda3d251"
    assert store.branch_head("r", "master") == head
    assert store.read_bytes("r", "master", "/a.txt") == b"alpha\nmore\n"
    assert store.read_bytes("r", "master", "/dir/b.txt") == b"bravo two\n"
    assert store.read_bytes("r", "old", "/dir/same.txt") == b"alpha\n"
    assert [e.path for e in store.walk("r", "master")] == ["/a.txt", "/dir/b.txt"]
    assert all(not e.loc for e in store.walk("r", "master"))  # format 2: single objects
    # New commits on top: packed where the store packs; old files still read from blobs/.
    with store.commit("r") as c:
        c.put_bytes("/new.txt", b"new")
        c.put_bytes("/dir/b.txt", b"bravo three\n")
    fresh = site.open()
    got = {e.path: fresh.read_blob(e.hash, e.loc) for e in fresh.walk("r", "master")}
    assert got == {"/a.txt": b"alpha\nmore\n", "/dir/b.txt": b"bravo three\n", "/new.txt": b"new"}
    assert bool(fresh.pack_below) == any(e.loc for e in fresh.walk("r", "master"))
    assert [c.parent for c in fresh.list_commits("r", "master")][:1] == [head]


def test_newer_format_is_refused_by_name(site: StoreSite) -> None:
    site.open_raw().write(_layout.FORMAT, b'{"format": "datum-store", "version": 4}')
    with pytest.raises(
        StoreFormatError, match=r"version 4; .* reads 'datum-store' versions 1, 2, 3"
    ):
        site.open()
