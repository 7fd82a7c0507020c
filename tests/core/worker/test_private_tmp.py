"""Each datum set gets a private ``/tmp`` where the ``/pfs`` mount namespace is available.

Pachyderm's word-count reduce step keeps ``/tmp/out`` between commands: in a container that
``/tmp`` is the pod's, so a second job starts clean. Here one set's datums share it, and the
next set (or job) gets a new one; the host's ``/tmp`` is never written.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.worker.namespace import (
    pfs_mount_setting,
    pfs_namespace_available,
    private_tmp,
)

pytestmark = pytest.mark.skipif(
    pfs_mount_setting() is False or not pfs_namespace_available(),
    reason="no private mount namespace here (unshare/mount, or DATUM_PFS_MOUNT=off)",
)


def test_a_set_shares_a_private_tmp_that_the_next_job_does_not_see(tmp_path: Path) -> None:
    marker = f"datum-private-tmp-{uuid.uuid4().hex}"
    store = Store.open(tmp_path / "store")
    store.create_repo("words")
    with store.commit("words") as commit:
        commit.put_bytes("/a", b"a")
        commit.put_bytes("/b", b"b")
    script = (
        f'echo "$(ls /pfs/words)" >> /tmp/{marker}; '
        f'wc -l < /tmp/{marker} | tr -d " " > "/pfs/out/$(ls /pfs/words)"'
    )
    spec = parse_spec(
        {
            "pipeline": {"name": "count"},
            "input": {"pfs": {"repo": "words", "glob": "/*"}},
            "transform": {"cmd": ["sh", "-c", script]},
            "datumSetSpec": {"number": 10},  # both datums in one set, in path order
        }
    )
    create_pipeline(store, spec)
    assert run_pipeline(store, "count").state == "success"
    outputs = {
        e.path: store.read_bytes("count", "master", e.path) for e in store.walk("count", "master")
    }
    assert outputs == {"/a": b"1\n", "/b": b"2\n"}  # kept across the datums of the set
    assert not (Path("/tmp") / marker).exists()  # the host's /tmp was never written

    with store.commit("words") as commit:
        commit.put_bytes("/c", b"c")
    assert run_pipeline(store, "count").state == "success"
    assert store.read_bytes("count", "master", "/c") == b"1\n"  # a new set: a fresh /tmp


def test_private_tmp_is_the_scratch_roots_sibling(tmp_path: Path) -> None:
    root = tmp_path / "try1-abc"
    assert private_tmp(root) == tmp_path / "try1-abc.tmp"


def test_private_tmp_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATUM_PRIVATE_TMP", "off")
    marker = Path("/tmp") / f"datum-private-tmp-off-{uuid.uuid4().hex}"
    store = Store.open(tmp_path / "store")
    store.create_repo("words")
    with store.commit("words") as commit:
        commit.put_bytes("/a", b"a")
    spec = parse_spec(
        {
            "pipeline": {"name": "host"},
            "input": {"pfs": {"repo": "words", "glob": "/*"}},
            "transform": {"cmd": ["sh", "-c", f"echo x > {marker}"]},
        }
    )
    create_pipeline(store, spec)
    try:
        assert run_pipeline(store, "host").state == "success"
        assert marker.read_text() == "x\n"  # the host's /tmp, as before
    finally:
        marker.unlink(missing_ok=True)


@pytest.mark.parametrize(("setting", "found"), [("auto", True), ("on", False)])
def test_a_program_under_the_hosts_tmp_keeps_the_hosts_tmp_in_auto(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str, found: bool
) -> None:
    """A virtualenv in /tmp: a private /tmp would hide the command itself (exit status 127)."""
    monkeypatch.setenv("DATUM_PRIVATE_TMP", setting)
    tools = Path("/tmp") / f"datum-private-tmp-tool-{uuid.uuid4().hex}"
    tools.mkdir()
    tool = tools / "tool"
    tool.write_text('#!/bin/sh\necho ran > "$PFS_ROOT/out/$(ls "$PFS_ROOT/words")"\n')
    tool.chmod(0o755)
    store = Store.open(tmp_path / "store")
    store.create_repo("words")
    with store.commit("words") as commit:
        commit.put_bytes("/a", b"a")
    spec = {
        "pipeline": {"name": "tool"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": [str(tool)]},
    }
    create_pipeline(store, parse_spec(spec))
    try:
        job = run_pipeline(store, "tool")
    finally:
        tool.unlink()
        tools.rmdir()
    assert (job.state == "success") is found
    if found:
        assert store.read_bytes("tool", "master", "/a") == b"ran\n"
