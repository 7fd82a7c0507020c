"""Corrupt objects are detected and named (issue 7, §3), on every backend and through datumctl."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import CorruptObjectError
from airflow_datum_provider.core.store import Store, _layout
from tests.core.store.conftest import StoreSite

DATUMCTL = shutil.which("datumctl", path=str(Path(sys.executable).parent))


def _store_with_file(site: StoreSite) -> tuple[Store, str]:
    store = site.open()
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/a.txt", b"the right bytes")
        c.put_bytes("/b.txt", b"other")
    return store, store.inspect_file("r", "master", "/a.txt").hash


def test_corrupt_blob_is_refused_and_healed_by_a_put(site: StoreSite) -> None:
    store, digest = _store_with_file(site)
    key = _layout.blob(digest)
    entry = next(e for e in store.walk("r", "master") if e.path == "/a.txt")
    if entry.loc:  # packed: the pack's bytes are checked per blob; a new put is a new pack
        pack_key = _layout.pack(entry.loc.split(":")[0])
        body = bytearray(store.backend.read(pack_key))
        offset = int(entry.loc.split(":")[1])
        body[offset : offset + 3] = b"BAD"
        store.backend.write(pack_key, bytes(body))
        fresh = site.open()
        match = rf"store .*: {pack_key} \(blob {digest}\) is corrupt \("
        with pytest.raises(CorruptObjectError, match=match):
            fresh.read_bytes("r", "master", "/a.txt")
        with pytest.raises(CorruptObjectError, match=match):
            list(fresh.read_blobs([entry]))
        assert fresh.read_bytes("r", "master", "/b.txt") == b"other"  # its neighbour is fine
        return
    for bad in (b"the wrong bytes", b"the right"):  # same size, then truncated
        store.backend.write(key, bad)
        fresh = site.open()
        with pytest.raises(CorruptObjectError, match=rf"store .*: {key} is corrupt \("):
            fresh.read_bytes("r", "master", "/a.txt")
        with (
            fresh.open_file("r", "master", "/a.txt") as fh,
            pytest.raises(CorruptObjectError, match=rf"{key} is corrupt"),
        ):
            fh.read()
        # Putting the right bytes again rewrites the blob instead of trusting that it exists.
        with fresh.commit("r") as c:
            c.put_bytes("/again.txt", b"the right bytes")
        assert fresh.read_bytes("r", "master", "/a.txt") == b"the right bytes"


def test_large_blob_stream_checked(site: StoreSite, tmp_path: Path) -> None:
    store = site.open()
    store.create_repo("r")
    data = os.urandom(9 << 20)  # above the in-memory limit: streamed through a temp object
    src = tmp_path / "big"
    src.write_bytes(data)
    with store.commit("r") as c:
        c.put_file("/big", src)
    digest = store.inspect_file("r", "master", "/big").hash
    store.backend.write(_layout.blob(digest), data[:-1])  # truncated
    with (
        site.open().open_file("r", "master", "/big") as fh,
        pytest.raises(CorruptObjectError, match="is corrupt"),
    ):
        shutil.copyfileobj(fh, io.BytesIO(), 1 << 20)
    with site.open().commit("r") as c:
        c.put_file("/big2", src)
    assert site.open().read_bytes("r", "master", "/big") == data


def test_corrupt_chunk_is_refused(site: StoreSite) -> None:
    store, _ = _store_with_file(site)
    manifest = store.manifest("r", "master")
    key = _layout.chunk(manifest.chunks[0].key)
    good = store.backend.read(key)
    lines = gzip.decompress(good).decode().replace("/b.txt", "/c.txt")
    store.backend.write(key, gzip.compress(lines.encode(), mtime=0))  # valid gzip, wrong hash
    fresh = site.open()
    with pytest.raises(CorruptObjectError, match=rf"{key} is corrupt"):
        list(fresh.list_files("r", "master"))
    # Not spliced unread into the next commit either: finishing a commit re-cuts the chunk...
    with pytest.raises(CorruptObjectError, match=rf"{key} is corrupt"), fresh.commit("r") as c:
        c.put_bytes("/a.txt2", b"x")
    store.backend.write(key, good[: len(good) // 2])  # truncated gzip
    with pytest.raises(CorruptObjectError, match=rf"{key} is corrupt"):
        list(site.open().walk("r", "master"))


def test_truncated_ref_is_named(site: StoreSite) -> None:
    store, _ = _store_with_file(site)
    seq = int(store._ref_log("r", "master")[-1])
    key = _layout.ref("r", "master", seq)
    store.backend.write(key, store.backend.read(key)[:20])
    fresh = site.open()
    with pytest.raises(CorruptObjectError, match=rf"{key} is corrupt \(ref {seq} of r@master"):
        fresh.branch_head("r", "master")
    # The next put does not start a new history on top of "no commits".
    with pytest.raises(CorruptObjectError), fresh.commit("r") as c:
        c.put_bytes("/x", b"x")


def test_corrupt_manifest_and_records_are_named(site: StoreSite) -> None:
    store, _ = _store_with_file(site)
    info = store.inspect_commit("r", "master")
    manifest_key = _layout.manifest("r", info.manifest)
    store.backend.write(manifest_key, b'{"version":1,"count":')
    with pytest.raises(CorruptObjectError, match=rf"{manifest_key} is corrupt"):
        list(site.open().walk("r", "master"))
    record_key = _layout.commit("r", info.id)
    store.backend.write(record_key, b'{"repo": "r"')
    with pytest.raises(CorruptObjectError, match=rf"{record_key} is corrupt"):
        site.open().inspect_commit("r", info.id)


def test_history_cycle_is_refused(site: StoreSite) -> None:
    store, _ = _store_with_file(site)
    with store.commit("r") as c2:
        c2.put_bytes("/c", b"c")
    first = store.inspect_commit("r", "master^")
    # Corrupt the older record so that it points back at the newer one: a cycle.
    record = store._read_record(_layout.commit("r", first.id))
    record["parent"] = c2.id
    store._write_json(_layout.commit("r", first.id), record)
    with pytest.raises(CorruptObjectError, match="loops back"):
        list(site.open().list_commits("r", "master"))


@pytest.mark.parametrize("what", ["blob", "chunk", "ref", "segment", "repo"])
def test_datumctl_names_the_corrupt_object(tmp_path: Path, what: str) -> None:
    """No ``Aborted!``, no traceback, no bare JSONDecodeError: one line naming the key."""
    assert DATUMCTL is not None
    url = str(tmp_path / "store")
    store = Store.open(url)
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/a", b"content of a file")
    info = store.inspect_commit("r", "master")
    if what == "blob":
        key, args = (
            _layout.blob(store.inspect_file("r", "master", "/a").hash),
            ["get", "file", "r@master:/a"],
        )
    elif what == "chunk":
        key, args = (
            _layout.chunk(store.manifest("r", "master").chunks[0].key),
            ["list", "file", "r@master"],
        )
    elif what == "ref":
        key, args = _layout.ref("r", "master", 1), ["list", "commit", "r@master"]
    elif what == "segment":
        open_ = store.start_commit("r", "master")
        open_.put_bytes("/b", b"b")
        open_.flush()
        key, args = _layout.open_segment("r", open_.id, 0), ["finish", "commit", f"r@{open_.id}"]
    else:
        key, args = _layout.repo_record("r"), ["inspect", "repo", "r"]
    assert info.finished is not None
    path = Path(url) / key
    path.write_bytes(path.read_bytes()[:7])
    proc = subprocess.run(
        [DATUMCTL, "--store", url, *args], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "Aborted!" not in proc.stderr, proc.stderr
    assert f"store {url}: {key} is corrupt (" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
