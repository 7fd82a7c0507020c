"""DatumStoreHook: a store from an ``AIRFLOW_CONN_*`` connection, the extras allowlist, no leaks."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def hook_cls(airflow_home: Path) -> type[Any]:
    # Imported here, after airflow_home has pointed AIRFLOW_HOME at a temp folder.
    from airflow_datum_provider.hooks.store import DatumStoreHook

    return DatumStoreHook


@pytest.fixture
def set_conn(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Any:
    """Define a connection as ``AIRFLOW_CONN_<ID>`` JSON; return its (test-unique) id."""
    counter = iter(range(1_000))

    def _set(**fields: Any) -> str:
        # A fresh id per connection: Airflow may cache connections by id.
        conn_id = f"datum_{request.node.name}_{next(counter)}".lower()
        conn_id = "".join(c if c.isalnum() else "_" for c in conn_id)
        monkeypatch.setenv(
            f"AIRFLOW_CONN_{conn_id.upper()}",
            json.dumps({"conn_type": "datum_store", **fields}),
        )
        return conn_id

    return _set


def _roundtrip(store: Any) -> None:
    store.create_repo("images")
    with store.commit("images", "master") as c:
        c.put_bytes("/a.txt", b"hi")


@pytest.mark.parametrize("as_url", [False, True], ids=["path", "file-url"])
def test_local_store_from_connection(
    hook_cls: type[Any], set_conn: Any, tmp_path: Path, as_url: bool
) -> None:
    from airflow_datum_provider.core.store import Store

    root = tmp_path / "store"
    conn_id = set_conn(host=root.as_uri() if as_url else str(root))

    _roundtrip(hook_cls(datum_store_conn_id=conn_id).get_store())

    # The data really is in that folder: a store opened without Airflow sees it.
    again = Store.open(str(root))
    assert [r.name for r in again.list_repos()] == ["images"]
    assert again.read_bytes("images", "master", "/a.txt") == b"hi"


def test_url_extra_instead_of_host(hook_cls: type[Any], set_conn: Any, tmp_path: Path) -> None:
    conn_id = set_conn(extra={"url": str(tmp_path / "store")})
    _roundtrip(hook_cls(datum_store_conn_id=conn_id).get_store())
    assert (tmp_path / "store").is_dir()


def test_default_connection_id(
    hook_cls: type[Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_DATUM_STORE_DEFAULT",
        json.dumps({"conn_type": "datum_store", "host": str(tmp_path / "default")}),
    )
    hook = hook_cls()
    assert hook.datum_store_conn_id == "datum_store_default"
    _roundtrip(hook.get_store())


def test_s3_store_from_connection(
    hook_cls: type[Any],
    set_conn: Any,
    s3_server: str,
    s3_store_url: tuple[str, dict[str, Any]],
) -> None:
    from airflow_datum_provider.core.store import Store

    url, options = s3_store_url
    conn_id = set_conn(
        host=url,
        login="testing",
        password="testing",
        extra={"endpoint_url": s3_server, "region_name": "us-east-1"},
    )
    _roundtrip(hook_cls(datum_store_conn_id=conn_id).get_store())

    again = Store.open(url, storage_options=options)
    assert again.read_bytes("images", "master", "/a.txt") == b"hi"
    bucket = url.removeprefix("s3://").split("/")[0]
    import s3fs

    fs = s3fs.S3FileSystem(**options)
    assert fs.ls(bucket, detail=False) == [f"{bucket}/store"]


def test_test_connection_reports_success(
    hook_cls: type[Any], set_conn: Any, tmp_path: Path
) -> None:
    root = tmp_path / "store"
    conn_id = set_conn(host=str(root))
    _roundtrip(hook_cls(datum_store_conn_id=conn_id).get_store())

    ok, message = hook_cls(datum_store_conn_id=conn_id).test_connection()
    assert ok, message
    assert str(root) in message
    assert "1 repos" in message


@pytest.mark.parametrize(
    "extra",
    [
        {"client_kwargs": {"endpoint_url": "http://evil"}},
        {"config_kwargs": {"signature_version": "s3v4"}},
        {"key": "AKIA"},
        {"secret": "s"},
        {"aws_access_key_id": "AKIA"},
        {"use_ssl": False},
    ],
    ids=lambda e: next(iter(e)),
)
def test_extra_outside_the_allowlist_is_refused(
    hook_cls: type[Any], set_conn: Any, extra: dict[str, Any]
) -> None:
    conn_id = set_conn(host="s3://bucket/prefix", extra=extra)
    with pytest.raises(ValueError) as info:
        hook_cls(datum_store_conn_id=conn_id).get_store()

    message = str(info.value)
    assert "\n" not in message
    assert f"extra {next(iter(extra))!r} is not allowed" in message
    assert "allowed extras: conn_id, url, anon, endpoint_url, region_name, session_token" in message


def test_refused_extra_fails_test_connection(hook_cls: type[Any], set_conn: Any) -> None:
    conn_id = set_conn(host="s3://bucket/prefix", extra={"client_kwargs": {}})
    ok, message = hook_cls(datum_store_conn_id=conn_id).test_connection()
    assert not ok
    assert "'client_kwargs' is not allowed" in message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, "no store URL"),
        ({"host": "/data", "extra": {"url": "/other"}}, "disagree"),
        ({"host": "/data", "login": "a", "password": "b"}, "only apply to s3:// stores"),
        ({"host": "memory://x", "extra": {"region_name": "eu-west-1"}}, "only apply to s3://"),
        ({"host": "s3://AKIA:secret@bucket/p"}, "must not carry user info"),
        ({"host": "s3://b/p", "login": "a"}, "set both login"),
        ({"host": "s3://b/p", "extra": {"session_token": "t"}}, "needs login and password"),
        ({"host": "s3://b/p", "extra": {"anon": "maybe"}}, "'anon' must be true or false"),
        ({"host": "s3://b/p", "extra": {"endpoint_url": "minio:9000"}}, "http(s) URL"),
        ({"host": "s3://b/p", "extra": {"region_name": 3}}, "must be a string"),
        (
            {"host": "s3://b/p", "login": "a", "password": "b", "extra": {"anon": True}},
            "cannot be combined with credentials",
        ),
    ],
    ids=[
        "no-url",
        "host-vs-url",
        "creds-on-local",
        "s3-extra-on-memory",
        "userinfo",
        "login-only",
        "token-without-keys",
        "anon-not-bool",
        "endpoint-no-scheme",
        "region-not-str",
        "anon-with-creds",
    ],
)
def test_misconfigured_connection_is_refused(
    hook_cls: type[Any], set_conn: Any, fields: dict[str, Any], expected: str
) -> None:
    conn_id = set_conn(**fields)
    with pytest.raises(ValueError, match=f"datum_store connection '{conn_id}'") as info:
        hook_cls(datum_store_conn_id=conn_id).get_store()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_extras_map_to_s3fs_options(hook_cls: type[Any], set_conn: Any) -> None:
    conn_id = set_conn(
        host="s3://bucket/prefix",
        login="AKIAEXAMPLE",
        password="wJalrXUtnFEMI",
        extra={
            "endpoint_url": "https://minio:9000",
            "region_name": "eu-west-1",
            "session_token": "FwoGZXIv",
            "anon": "false",
            "url": "",  # the UI saves untouched fields as empty strings
        },
    )
    url, options = hook_cls(datum_store_conn_id=conn_id)._store_args()
    assert url == "s3://bucket/prefix"
    assert options == {
        "key": "AKIAEXAMPLE",
        "secret": "wJalrXUtnFEMI",
        "token": "FwoGZXIv",
        "endpoint_url": "https://minio:9000",
        "client_kwargs": {"region_name": "eu-west-1"},
    }


def test_anonymous_s3(hook_cls: type[Any], set_conn: Any) -> None:
    conn_id = set_conn(host="s3://public/data", extra={"anon": True})
    assert hook_cls(datum_store_conn_id=conn_id)._store_args() == (
        "s3://public/data",
        {"anon": True},
    )


def test_credentials_never_in_repr_or_logs(
    hook_cls: type[Any],
    set_conn: Any,
    s3_server: str,
    s3_store_url: tuple[str, dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    secret = "Sentinel-Secret-Key-0123456789"
    token = "Sentinel-Session-Token-0123456789"
    url, _ = s3_store_url
    conn_id = set_conn(
        host=url,
        login="testing",
        password=secret,
        extra={"endpoint_url": s3_server, "region_name": "us-east-1", "session_token": token},
    )
    caplog.set_level(logging.DEBUG)
    hook = hook_cls(datum_store_conn_id=conn_id)

    _roundtrip(hook.get_store())
    ok, message = hook.test_connection()
    assert ok, message

    # A failing connection's message must not echo the secret either.
    bad_id = set_conn(host=url, login="testing", password=secret, extra={"bogus": secret})
    bad_ok, bad_message = hook_cls(datum_store_conn_id=bad_id).test_connection()
    assert not bad_ok

    ours = "\n".join(
        r.getMessage()
        for r in caplog.records
        if r.name.startswith(("airflow", "airflow_datum_provider"))
    )
    # The hook's own logger is structlog under Airflow 3: it writes to the process's stdout/err.
    out, err = capfd.readouterr()
    assert "Opening datum store" in ours + out + err
    for text in (repr(hook), str(hook), message, bad_message, ours, out, err):
        assert secret not in text
        assert token not in text


def _set_aws(monkeypatch: pytest.MonkeyPatch, conn_id: str, **fields: Any) -> None:
    monkeypatch.setenv(
        f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps({"conn_type": "aws", **fields})
    )


def test_s3_credentials_and_endpoint_from_an_aws_connection(
    hook_cls: type[Any],
    set_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
    s3_server: str,
    s3_store_url: tuple[str, dict[str, Any]],
) -> None:
    from airflow_datum_provider.core.store import Store

    url, options = s3_store_url
    _set_aws(
        monkeypatch,
        "aws_for_datums",
        login="testing",
        password="testing",
        extra={"endpoint_url": s3_server, "region_name": "us-east-1", "role_arn": "ignored"},
    )
    conn_id = set_conn(host=url, extra={"conn_id": "aws_for_datums"})
    hook = hook_cls(datum_store_conn_id=conn_id)
    _roundtrip(hook.get_store())
    assert Store.open(url, storage_options=options).read_bytes("images", "master", "/a.txt") == (
        b"hi"
    )
    ok, message = hook.test_connection()
    assert ok, message
    assert "1 repos" in message


def test_aws_connection_and_own_credentials_conflict(
    hook_cls: type[Any], set_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    _set_aws(monkeypatch, "aws_x", login="AKIA", password="pw")
    conn_id = set_conn(host="s3://b/p", login="AKIA2", password="pw2", extra={"conn_id": "aws_x"})
    with pytest.raises(ValueError, match=r"extra 'conn_id' \('aws_x'\) and login/password"):
        hook_cls(datum_store_conn_id=conn_id).get_store()


def test_test_connection_redacts_the_aws_secret(
    hook_cls: type[Any], set_conn: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "very-secret-aws-key-123"
    # A local store cannot take S3 credentials: the error quotes nothing secret.
    _set_aws(monkeypatch, "aws_y", login="AKIA", password=secret)
    conn_id = set_conn(host="/tmp/somewhere", extra={"conn_id": "aws_y"})
    ok, message = hook_cls(datum_store_conn_id=conn_id).test_connection()
    assert not ok
    assert secret not in message
    assert "only apply to s3:// stores" in message


def test_connection_form_fields_are_declared(airflow_home: Path) -> None:
    from airflow_datum_provider.get_provider_info import get_provider_info

    (conn,) = get_provider_info()["connection-types"]
    fields = conn["conn-fields"]
    assert set(fields) == {"conn_id", "endpoint_url", "region_name", "session_token", "anon"}
    assert all(f["label"] and f["description"] for f in fields.values())
    assert fields["session_token"]["schema"]["format"] == "password"
    assert conn["ui-field-behaviour"]["placeholders"]["host"]
