"""The pure helpers of ``datumctl``: argument parsing, formatting, the default store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from airflow_datum_provider.cli._output import human_size, human_time
from airflow_datum_provider.cli._refs import (
    CommitRef,
    FileRef,
    RefSyntaxError,
    parse_commit_ref,
    parse_file_ref,
)
from airflow_datum_provider.cli._store import default_store_url
from airflow_datum_provider.core.errors import InvalidNameError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("imgs@master:/a/b.png", FileRef(repo="imgs", ref="master", path="/a/b.png")),
        ("imgs@master", FileRef(repo="imgs", ref="master", path=None)),
        ("imgs@master:a", FileRef(repo="imgs", ref="master", path="a")),
        (
            "imgs@master=" + "a" * 32 + ":/d",
            FileRef(repo="imgs", ref="master=" + "a" * 32, path="/d"),
        ),
        ("imgs@master^:/x", FileRef(repo="imgs", ref="master^", path="/x")),
        ("imgs@master~2:/x:y", FileRef(repo="imgs", ref="master~2", path="/x:y")),
        ("imgs@master:/**.csv", FileRef(repo="imgs", ref="master", path="/**.csv")),
    ],
    ids=["path", "no-path", "relative", "branch=commit", "parent", "colon-in-path", "glob"],
)
def test_parse_file_ref(text: str, expected: FileRef) -> None:
    assert parse_file_ref(text, path="optional") == expected


@pytest.mark.parametrize(
    ("text", "form"),
    [
        ("imgs", "repo@branch:/path"),
        ("imgs@master", "repo@branch:/path"),
        ("imgs@master:", "repo@branch:/path"),
        ("@master:/x", "repo@branch:/path"),
        ("imgs@:/x", "repo@branch:/path"),
    ],
    ids=["repo-only", "no-path", "empty-path", "no-repo", "no-branch"],
)
def test_parse_file_ref_shape_errors(text: str, form: str) -> None:
    with pytest.raises(RefSyntaxError, match=f'^"{text}" is not of the form {form}$'):
        parse_file_ref(text, path="required")


@pytest.mark.parametrize(
    ("text", "ref", "expected"),
    [
        ("imgs", "optional", CommitRef(repo="imgs", ref=None)),
        ("imgs@dev", "optional", CommitRef(repo="imgs", ref="dev")),
        ("imgs@" + "0" * 32, "required", CommitRef(repo="imgs", ref="0" * 32)),
    ],
    ids=["repo", "branch", "id"],
)
def test_parse_commit_ref(text: str, ref: str, expected: CommitRef) -> None:
    assert parse_commit_ref(text, ref=ref) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "char"),
    [("im.gs@master", "'.'"), ("imgs@mas/ter", "'/'"), ("imgs@..", "'.'"), ("imgs@a b", "' '")],
    ids=["repo-dot", "branch-slash", "branch-dotdot", "branch-space"],
)
def test_bad_names_are_store_errors(text: str, char: str) -> None:
    with pytest.raises(InvalidNameError, match=char):
        parse_commit_ref(text, ref="required")


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, "-"), (0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 << 30, "5.0 GiB")],
)
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_human_time() -> None:
    now = datetime(2026, 1, 31, 12, tzinfo=UTC)
    ago = {
        s: human_time((now - timedelta(seconds=s)).isoformat(), now=now)
        for s in (1, 120, 7200, 86400 * 3, 86400 * 40)
    }
    assert ago == {
        1: "1 second ago",
        120: "2 minutes ago",
        7200: "2 hours ago",
        259200: "3 days ago",
        3456000: "2025-12-22",
    }
    assert human_time(None) == "-"


def test_default_store_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    assert default_store_url() == str(tmp_path / ".local/share/airflow-datum-provider/store")
    monkeypatch.setenv("XDG_DATA_HOME", "relative/ignored")
    assert default_store_url() == str(tmp_path / ".local/share/airflow-datum-provider/store")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_store_url() == str(tmp_path / "xdg/airflow-datum-provider/store")
