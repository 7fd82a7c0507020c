"""Finishing a commit reuses untouched parent chunks and gives the same files as a full merge."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from airflow_datum_provider.core.errors import InvalidPathError
from airflow_datum_provider.core.store import Store, manifest
from airflow_datum_provider.core.store.manifest import (
    Entry,
    Manifest,
    ManifestWriter,
    Op,
    build_manifest,
)

PATHS = st.sampled_from(
    ["/a", "/b", "/c/x", "/c/y", "/c/z/1", "/d", "/d/e", "/e", "/f/g", "/f/h", "/g", "/h"]
)
OPS = st.lists(
    st.tuples(st.sampled_from("PPD"), PATHS, st.integers(min_value=0, max_value=3)),
    max_size=12,
)


def _no_append(old: Entry | None, op: Op) -> Entry:
    raise AssertionError("no appends here")


def _outcome(build: Callable[[], Manifest], backend: Any) -> list[Entry] | str:
    try:
        return list(build().entries(backend))
    except InvalidPathError as exc:
        return str(exc)


@example(
    base_paths={"/a", "/b", "/c/x", "/d", "/e"},
    segments=[[("P", "/d/e", 0)], [("D", "/d", 0)]],
)
@settings(max_examples=500, deadline=None)
@given(base_paths=st.sets(PATHS, max_size=10), segments=st.lists(OPS, min_size=1, max_size=3))
def test_spliced_build_equals_full_merge(
    base_paths: set[str], segments: list[list[tuple[str, str, int]]]
) -> None:
    """Same files, or the same file / directory collision, with and without chunk reuse."""
    assume(not any(q.startswith(p + "/") for p in base_paths for q in base_paths))
    store = Store.open(f"memory://splice-{uuid.uuid4().hex}")
    backend = store.backend
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(manifest, "_MAX_CHUNK", 2)
        base_writer = ManifestWriter(backend)
        for path in sorted(base_paths):
            base_writer.add(Entry(path, "h-base", 1, ""))
        base = base_writer.finish()
        op_segments = [
            sorted(
                (
                    Op(kind, path, f"h{n}" if kind == "P" else "", n if kind == "P" else 0)
                    for kind, path, n in seg
                ),
                key=lambda op: op.path,
            )
            for seg in segments
        ]

        def full() -> Manifest:
            writer = ManifestWriter(backend)
            for entry in manifest.merge_ops(base.entries(backend), op_segments, _no_append):
                writer.add(entry)
            return writer.finish()

        def spliced() -> Manifest:
            return build_manifest(ManifestWriter(backend), backend, base, op_segments, _no_append)

        assert _outcome(spliced, backend) == _outcome(full, backend)


def test_small_change_reuses_parent_chunks(tmp_path: object) -> None:
    store = Store.open(f"memory://splice-{uuid.uuid4().hex}")
    store.create_repo("r")
    with store.commit("r") as c:
        for i in range(50_000):
            c.put_bytes(f"/f{i:06d}", b"x")
    parent = store.manifest("r", "master")
    assert len(parent.chunks) > 5
    with store.commit("r") as c:
        c.put_bytes("/f025000", b"changed")
    child = store.manifest("r", "master")
    shared = set(c.key for c in parent.chunks) & set(c.key for c in child.chunks)
    assert len(shared) >= len(parent.chunks) - 2
    assert child.count == parent.count
    assert store.read_bytes("r", "master", "/f025000") == b"changed"
