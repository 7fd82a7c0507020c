"""A store written by the previous release (FORMAT 1) still opens and reads right."""

from __future__ import annotations

import json

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
