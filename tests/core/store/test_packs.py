"""Packs (format 3): blob batches, ranged and coalesced reads, dedup, and datumctl put/get -r."""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.store import Store, _layout
from airflow_datum_provider.core.store._backend import Backend, open_backend
from airflow_datum_provider.core.store.packs import PACK_TARGET, plan_spans
from tests.core.store.conftest import StoreSite


class CountingBackend:
    """Delegates to a backend and counts the calls that are requests on object storage."""

    def __init__(self, inner: Backend) -> None:
        self._inner = inner
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if name in ("read", "write", "create", "read_range", "list", "exists", "size"):

            def counted(*args: Any, **kwargs: Any) -> Any:
                self.calls[name] = self.calls.get(name, 0) + 1
                return attr(*args, **kwargs)

            return counted
        return attr


def _packing(site: StoreSite) -> Store:
    """The site's store with packs on (the local folder does not pack by default)."""
    site.open()  # writes FORMAT
    return Store(open_backend(site.url, site.options), pack_below=1 << 20)


def test_batch_blobs_are_visible_after_flush_and_large_ones_stay_single(site: StoreSite) -> None:
    store = _packing(site)
    small = [os.urandom(100) + bytes([i]) for i in range(50)]
    big = os.urandom(2 << 20)
    with store.blob_batch() as blobs:
        refs = [blobs.put_bytes(data) for data in small]
        again = blobs.put_bytes(small[0])
        assert store.backend.list(_layout.packs()) == []  # nothing uploaded before the flush
        large = blobs.put_bytes(big)
        assert large.loc == ""  # a single object, stored at once
        assert store.read_blob(large.hash) == big
    assert again == refs[0]  # stored once per batch
    assert len({r.loc.split(":")[0] for r in refs}) == 1
    assert len(store.backend.list(_layout.packs())) == 1
    for ref, data in zip(refs, small, strict=True):
        assert store.read_blob(ref.hash, ref.loc) == data
    # Without the location (an old record): found through the pack's index.
    fresh = site.open()
    assert fresh.read_blob(refs[3].hash) == small[3]
    with fresh.open_blob(refs[4].hash) as fh:
        assert fh.read() == small[4]


def test_a_full_pack_uploads_before_the_flush(site: StoreSite) -> None:
    store = _packing(site)
    blobs = store.blob_batch()
    chunk = os.urandom(1 << 19)
    for i in range(PACK_TARGET // len(chunk) + 1):
        blobs.put_bytes(chunk + i.to_bytes(4, "big"))
    blobs.flush()
    assert blobs.packs_written == 2  # one sealed when full, one at the flush


def test_many_blobs_of_one_pack_are_one_ranged_read(site: StoreSite) -> None:
    store = _packing(site)
    store.create_repo("r")
    with store.commit("r") as c:
        for i in range(300):
            c.put_bytes(f"/f{i:03d}", f"file {i}".encode() * 10)
    counting = CountingBackend(open_backend(site.url, site.options))
    reader = Store(counting)  # type: ignore[arg-type]
    entries = list(reader.walk("r", "master"))
    before = dict(counting.calls)
    got = {ref.hash: data for ref, data in reader.read_blobs(entries)}
    assert counting.calls.get("read_range", 0) - before.get("read_range", 0) == 1
    assert counting.calls.get("read", 0) == before.get("read", 0)
    assert all(got[e.hash] == f"file {int(e.path[2:])}".encode() * 10 for e in entries)
    # One file: one ranged read of its own bytes.
    before = dict(counting.calls)
    assert reader.read_bytes("r", "master", "/f123") == b"file 123" * 10
    assert counting.calls["read_range"] - before["read_range"] == 1


def test_plan_spans_splits_far_apart_blobs() -> None:
    from airflow_datum_provider.core.store.packs import BlobRef

    pack = uuid.uuid4().hex
    refs = [BlobRef(f"h{i}", 10, f"{pack}:{off}:10") for i, off in enumerate((0, 10, 5 << 20))]
    spans, single = plan_spans([*refs, BlobRef("x", 3)])
    assert [(s.start, s.end) for s in spans] == [(0, 20), (5 << 20, (5 << 20) + 10)]
    assert [r.hash for r in single] == ["x"]


def test_put_dir_reuses_the_parent_entry_of_an_unchanged_file(
    site: StoreSite, tmp_path: Path
) -> None:
    store = _packing(site)
    store.create_repo("r")
    src = tmp_path / "src"
    (src / "d").mkdir(parents=True)
    for i in range(20):
        (src / "d" / f"f{i}").write_bytes(f"content {i}".encode())
    with store.commit("r") as c:
        c.put_dir("/", src)
    packs = store.backend.list(_layout.packs())
    assert len(packs) == 1
    (src / "d" / "f3").write_bytes(b"changed")
    with store.commit("r") as c:
        c.put_dir("/", src)
    assert len(store.backend.list(_layout.packs())) == 2  # the new pack holds one blob
    new_pack = next(p for p in store.backend.list(_layout.packs()) if p not in packs)
    entries = {e.path: e for e in store.walk("r", "master")}
    assert entries["/d/f3"].loc.startswith(new_pack)
    assert all(e.loc.split(":")[0] == packs[0] for p, e in entries.items() if p != "/d/f3")
    assert store.read_bytes("r", "master", "/d/f3") == b"changed"


def test_a_failed_batch_uploads_nothing(site: StoreSite) -> None:
    store = _packing(site)
    blobs = store.blob_batch()
    blobs.put_bytes(b"never stored")
    blobs.__exit__(RuntimeError, RuntimeError("boom"), None)  # what a failing `with` does
    assert store.backend.list(_layout.packs()) == []
    blobs.flush()  # and a later flush has nothing left to upload
    assert store.backend.list(_layout.packs()) == []


def test_datumctl_put_and_get_recursive_through_packs(tmp_path: Path) -> None:
    url = f"memory://cli-packs-{uuid.uuid4().hex}"
    src = tmp_path / "src"
    for i in range(120):
        d = src / f"d{i % 3}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:03d}").write_bytes(f"{i}".encode() * (i + 1))
    (src / "big").write_bytes(os.urandom(3 << 20))
    runner = CliRunner()

    def run(*args: str) -> None:
        result = runner.invoke(cli, ["--store", url, *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    run("create", "repo", "r")
    run("put", "file", "r@master:/", "-r", "-f", str(src), "--parallelism", "4")
    store = Store.open(url)
    entries = list(store.walk("r", "master"))
    assert len(entries) == 121
    assert sum(1 for e in entries if e.loc) == 120  # the 3 MiB file is a single object
    out = tmp_path / "out"
    run("get", "file", "r@master:/", "-r", "-o", str(out), "--parallelism", "3")
    got = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    want = {p.relative_to(src).as_posix(): p.read_bytes() for p in src.rglob("*") if p.is_file()}
    assert got == want


def test_job_sigkilled_during_a_pack_upload_leaves_no_commit_and_resumes(
    tmp_path: Path, monkeypatch: Any
) -> None:
    """A set's runner killed while it uploads the pack of a datum's outputs: the output branch
    does not move, no record names the lost pack, and the next run completes every datum."""
    import signal
    import subprocess
    import sys

    from airflow_datum_provider.core.engine import run_pipeline
    from airflow_datum_provider.core.jobs import JobRecords
    from tests.core.test_engine import COPY, outputs, pipeline, put

    monkeypatch.setenv("DATUM_STORE_PACK_BELOW", str(1 << 20))  # the local folder packs here
    store = Store.open(tmp_path / "store")
    put(store, "data", {f"/f{i}": f"v{i}".encode() for i in range(4)})
    pipeline(store, "copy", COPY)
    code = (
        "import sys; from airflow_datum_provider.core.store import Store; "
        "from airflow_datum_provider.core.engine import run_pipeline; "
        "run_pipeline(Store.open(sys.argv[1]), 'copy')"
    )
    # A checkpoint part (so a pack flush) after every datum; killed in the third pack upload.
    env = {
        **os.environ,
        "DATUM_FAILPOINT": "pack-upload:3",
        "DATUM_CHECKPOINT_DATUMS": "1",
    }
    proc = subprocess.run([sys.executable, "-c", code, store.url], env=env, check=False)
    assert proc.returncode == -signal.SIGKILL
    fresh = Store.open(tmp_path / "store")
    assert fresh.branch_head("copy", "master") is None  # no partial output commit
    assert len(fresh.backend.list(_layout.packs())) >= 3  # the input's, two datums' outputs

    job = run_pipeline(fresh, "copy")
    assert (job.state, job.processed + job.skipped) == ("success", 4)
    assert outputs(fresh, "copy") == {f"/f{i}.out": f"v{i}".encode() for i in range(4)}
    assert all(e.loc for e in fresh.walk("copy", "master"))
    assert JobRecords(fresh).job("copy", job.id).state == "success"
