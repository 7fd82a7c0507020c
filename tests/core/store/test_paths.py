"""Pachyderm's path rules: every forbidden character, non-printables, ``.``/``..``, cleaning."""

from __future__ import annotations

import io
import pickle
import uuid
from collections.abc import Callable

import pytest

from airflow_datum_provider.core.errors import InvalidPathError, StoreError
from airflow_datum_provider.core.store import OpenCommit, Store, clean_path
from airflow_datum_provider.core.store.paths import BAD_PATH_CHARS, clean_dir

FORBIDDEN = list("*?[]{}!()@+^")


@pytest.mark.parametrize("char", FORBIDDEN, ids=[f"char-{c}" for c in FORBIDDEN])
@pytest.mark.parametrize(
    "template",
    ["/{c}", "/dir/a{c}b.txt", "/a{c}/file", "no-slash{c}"],
    ids=["alone", "in-name", "in-dir", "relative"],
)
def test_forbidden_character(char: str, template: str) -> None:
    path = template.format(c=char)
    with pytest.raises(InvalidPathError) as err:
        clean_path(path)
    message = str(err.value)
    assert repr(path) in message
    assert f"character {char!r} is not allowed" in message
    assert err.value.path == path  # type: ignore[attr-defined]


def test_forbidden_set_is_pachyderms() -> None:
    assert frozenset(FORBIDDEN) == BAD_PATH_CHARS


NON_PRINTABLE = ["\x00", "\t", "\n", "\r", "\x1b", "\x7f", "\u200b", "\u2028"]


@pytest.mark.parametrize(
    "char", NON_PRINTABLE, ids=["nul", "tab", "newline", "cr", "esc", "del", "zwsp", "line-sep"]
)
def test_non_printable(char: str) -> None:
    path = f"/dir/a{char}b"
    with pytest.raises(InvalidPathError, match="non-printable character") as err:
        clean_path(path)
    assert repr(char) in str(err.value)
    assert repr(path) in str(err.value)


@pytest.mark.parametrize(
    ("path", "element"),
    [
        ("/.", "."),
        ("/..", ".."),
        ("/a/./b", "."),
        ("/a/../b", ".."),
        ("./a", "."),
        ("a/..", ".."),
    ],
    ids=["dot", "dotdot", "inner-dot", "inner-dotdot", "leading-dot", "trailing-dotdot"],
)
def test_dot_elements(path: str, element: str) -> None:
    with pytest.raises(InvalidPathError, match=f"element {element!r} is not allowed") as err:
        clean_path(path)
    assert repr(path) in str(err.value)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("a", "/a"),
        ("/a", "/a"),
        ("a/b/c", "/a/b/c"),
        ("//a//b///c", "/a/b/c"),
        ("/a/b/", "/a/b"),
        ("", "/"),
        ("/", "/"),
        ("///", "/"),
        ("/.hidden/..dots/a.b.c", "/.hidden/..dots/a.b.c"),
        ("/spaces are fine/ünïcode-ok_~%$#&=,;'", "/spaces are fine/ünïcode-ok_~%$#&=,;'"),
    ],
    ids=[
        "no-leading-slash",
        "plain",
        "relative-nested",
        "double-slashes",
        "trailing-slash",
        "empty",
        "root",
        "only-slashes",
        "dots-inside-names",
        "other-punctuation",
    ],
)
def test_cleaning(raw: str, clean: str) -> None:
    assert clean_path(raw) == clean


@pytest.mark.parametrize(
    ("raw", "clean"),
    [("", "/"), ("/", "/"), ("a", "/a/"), ("/a//b/", "/a/b/")],
    ids=["empty", "root", "relative", "messy"],
)
def test_clean_dir(raw: str, clean: str) -> None:
    assert clean_dir(raw) == clean


def test_not_a_string() -> None:
    with pytest.raises(InvalidPathError, match="not a string"):
        clean_path(b"/a")  # type: ignore[arg-type]


def test_error_tree_and_pickling() -> None:
    with pytest.raises(InvalidPathError) as err:
        clean_path("/a*b")
    assert isinstance(err.value, StoreError)
    assert isinstance(err.value, ValueError)
    again = pickle.loads(pickle.dumps(err.value))
    assert type(again) is InvalidPathError
    assert again.path == "/a*b"  # type: ignore[attr-defined]
    assert str(again) == str(err.value)


_BAD = "/bad(name"

VERBS: dict[str, Callable[[Store, OpenCommit], object]] = {
    "put_bytes": lambda s, c: c.put_bytes(_BAD, b""),
    "put_stream": lambda s, c: c.put_stream(_BAD, io.BytesIO(b"")),
    "delete": lambda s, c: c.delete(_BAD),
    "copy_dst": lambda s, c: c.copy("r", "master", "/ok", _BAD),
    "copy_src": lambda s, c: c.copy("r", "master", _BAD, "/x"),
    "read": lambda s, c: s.read_bytes("r", "master", _BAD),
    "list": lambda s, c: list(s.list_files("r", "master", _BAD)),
    "inspect": lambda s, c: s.inspect_file("r", "master", _BAD),
    "walk": lambda s, c: list(s.walk("r", "master", _BAD)),
}


@pytest.mark.parametrize("verb", list(VERBS), ids=str)
def test_store_verbs_enforce_rules(verb: str) -> None:
    store = Store.open(f"memory://paths-verbs-{uuid.uuid4().hex}")
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/ok", b"1")
    c = store.start_commit("r")
    with pytest.raises(InvalidPathError, match=r"'/bad\(name'.*character '\('"):
        VERBS[verb](store, c)
