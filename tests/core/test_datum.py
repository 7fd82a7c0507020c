"""Datum identity: ids are stable across processes and commits; hashes follow content and salt."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_datum_provider.core.datum import Datum, DatumInput, datum_hash, datum_id
from airflow_datum_provider.core.plan import list_datums
from airflow_datum_provider.core.spec import cross, pfs
from airflow_datum_provider.core.store import Store


def _store(tmp_path: Path, files: dict[str, bytes], repo: str = "in") -> Store:
    store = Store.open(str(tmp_path / "store"))
    store.create_repo(repo)
    _commit(store, repo, files)
    return store


def _commit(store: Store, repo: str, files: dict[str, bytes]) -> str:
    commit = store.start_commit(repo)
    for path, data in files.items():
        commit.put_bytes(path, data)
    return commit.finish().id


def _by_path(datums: list[Datum]) -> dict[str, Datum]:
    return {d.inputs[0].path: d for d in datums}


def _input(
    name: str, repo: str, path: str, digest: str = "h", reference: bool = False
) -> DatumInput:
    return DatumInput(name, repo, "master", "c0ffee", path, digest, 1, reference=reference)


def _by_hand_id(*fields: tuple[str, str, str, str]) -> str:
    h = hashlib.blake2b(digest_size=32)
    for values in fields:
        for value in values:
            data = value.encode()
            h.update(data)
            h.update(len(data).to_bytes(8, "big"))
    return h.hexdigest()


def test_datum_id_known_answer() -> None:
    inputs = (_input("in", "images", "/a.png"), _input("model", "models", "/dir/"))
    expected = _by_hand_id(
        ("in", "images", "master", "/a.png"), ("model", "models", "master", "/dir/")
    )
    assert datum_id(inputs) == expected
    # A literal, so an accidental change to the formula (or to the by-hand helper) shows up.
    single = _by_hand_id(("in", "repo", "master", "/a"))
    assert datum_id((_input("in", "repo", "/a"),)) == single
    assert single == "41da4911cb8ee86bb66089cf0e32e7409f57f021c64f6c863976a144fc26d245"
    assert (
        single
        == hashlib.blake2b(
            b"in"
            + (2).to_bytes(8, "big")
            + b"repo"
            + (4).to_bytes(8, "big")
            + b"master"
            + (6).to_bytes(8, "big")
            + b"/a"
            + (2).to_bytes(8, "big"),
            digest_size=32,
        ).hexdigest()
    )


def test_datum_hash_known_answer() -> None:
    inputs = (_input("in", "r", "/a", "h1"), _input("ref", "r", "/b", "h2", reference=True))
    ident = datum_id(inputs)
    expected = hashlib.blake2b((ident + "h1" + "salt").encode(), digest_size=32).hexdigest()
    assert datum_hash(ident, inputs, "salt") == expected
    assert Datum.of(inputs, "salt") == Datum(ident, expected, inputs)


def test_id_ignores_commit_content_and_size() -> None:
    a = DatumInput("in", "r", "master", "c1", "/a", "h1", 1)
    b = DatumInput("in", "r", "master", "c2", "/a", "h2", 99)
    assert datum_id((a,)) == datum_id((b,))


@pytest.mark.parametrize(
    "other",
    [
        _input("in2", "r", "/a"),
        _input("in", "r2", "/a"),
        DatumInput("in", "r", "dev", "c0ffee", "/a", "h", 1),
        _input("in", "r", "/a/"),
    ],
    ids=["name", "repo", "branch", "path-dir-slash"],
)
def test_id_depends_on_name_repo_branch_path(other: DatumInput) -> None:
    assert datum_id((_input("in", "r", "/a"),)) != datum_id((other,))


def test_id_length_suffix_separates_fields() -> None:
    assert datum_id((_input("ab", "c", "/x"),)) != datum_id((_input("a", "bc", "/x"),))


def test_id_depends_on_input_order() -> None:
    a, b = _input("a", "r", "/1"), _input("b", "r", "/2")
    assert datum_id((a, b)) != datum_id((b, a))


_CHILD = """
import json, sys
from airflow_datum_provider.core.plan import list_datums
from airflow_datum_provider.core.spec import cross, pfs
from airflow_datum_provider.core.store import Store
store = Store.open(sys.argv[1])
spec = cross(pfs("in", "/*"), pfs("other", "/"))
print(json.dumps([[d.id, d.hash] for d in list_datums(store, spec, salt="s")]))
"""


def test_same_ids_and_hashes_in_another_process(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/a": b"1", "/b/c": b"2", "/.h": b"3"})
    store.create_repo("other")
    _commit(store, "other", {"/x": b"x"})
    spec = cross(pfs("in", "/*"), pfs("other", "/"))
    here = [[d.id, d.hash] for d in list_datums(store, spec, salt="s")]
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(tmp_path / "store")],
        check=True,
        capture_output=True,
        text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
    )
    assert len(here) == 3
    assert json.loads(out.stdout) == here


def test_changed_content_keeps_id_changes_hash(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/a": b"1", "/b": b"2"})
    before = _by_path(list(list_datums(store, pfs("in", "/*"), salt="s")))
    _commit(store, "in", {"/a": b"changed"})
    after = _by_path(list(list_datums(store, pfs("in", "/*"), salt="s")))
    assert after["/a"].id == before["/a"].id
    assert after["/a"].hash != before["/a"].hash
    assert after["/b"] == before["/b"]._replace(
        inputs=(before["/b"].inputs[0]._replace(commit=after["/b"].inputs[0].commit),)
    )


def test_changed_salt_changes_every_hash(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/a": b"1", "/b": b"2", "/d/e": b"3"})
    one = list(list_datums(store, pfs("in", "/*"), salt="one"))
    two = list(list_datums(store, pfs("in", "/*"), salt="two"))
    assert [d.id for d in one] == [d.id for d in two]
    assert all(a.hash != b.hash for a, b in zip(one, two, strict=True))


def test_reference_input_does_not_affect_hash(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/a": b"1"})
    store.create_repo("ref")
    _commit(store, "ref", {"/cfg": b"v1"})
    spec = cross(pfs("in", "/*"), pfs("ref", "/", reference=True))
    (before,) = list(list_datums(store, spec))
    _commit(store, "ref", {"/cfg": b"v2"})
    (after,) = list(list_datums(store, spec))
    assert after.inputs[1].hash != before.inputs[1].hash
    assert (after.id, after.hash) == (before.id, before.hash)
    _commit(store, "in", {"/a": b"2"})
    (changed,) = list(list_datums(store, spec))
    assert changed.hash != before.hash


def test_directory_hash_changes_when_a_file_inside_is_renamed(tmp_path: Path) -> None:
    """Our decision: names count in a directory's hash (Pachyderm ignores them)."""
    store = _store(tmp_path, {"/d/old.txt": b"same", "/e/x": b"1"})
    before = _by_path(list(list_datums(store, pfs("in", "/*"))))
    with store.start_commit("in") as commit:
        commit.delete("/d/old.txt")
        commit.put_bytes("/d/new.txt", b"same")
    after = _by_path(list(list_datums(store, pfs("in", "/*"))))
    assert after["/d/"].id == before["/d/"].id
    assert after["/d/"].hash != before["/d/"].hash
    assert after["/e/"].hash == before["/e/"].hash


def test_directory_hash_follows_content(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/d/a": b"1", "/d/b": b"2"})
    (before,) = list(list_datums(store, pfs("in", "/d")))
    _commit(store, "in", {"/d/b": b"3"})
    (after,) = list(list_datums(store, pfs("in", "/d")))
    assert (after.id, after.inputs[0].path) == (before.id, "/d/")
    assert after.hash != before.hash


def test_datum_round_trips_through_dict(tmp_path: Path) -> None:
    store = _store(tmp_path, {"/a": b"1"})
    (datum,) = list(list_datums(store, pfs("in", "/*")))
    assert Datum.from_dict(json.loads(json.dumps(datum.to_dict()))) == datum


@pytest.mark.parametrize("reference", [False, True], ids=["plain", "reference"])
def test_single_input_fast_path_matches_the_formula(reference: bool) -> None:
    inputs = (_input("in", "r", "/a", "h1", reference=reference),)
    ident = _by_hand_id(("in", "r", "master", "/a"))
    content = "" if reference else "h1"
    expected = hashlib.blake2b(f"{ident}{content}salt".encode(), digest_size=32).hexdigest()
    assert Datum.of(inputs, "salt") == Datum(ident, expected, inputs)
