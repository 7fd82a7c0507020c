"""``DatumStoreHook``: open a datum store from an Airflow connection of type ``datum_store``.

The connection's host (or the ``url`` extra) is the store's root URL: a local folder,
``file://``, ``memory://`` or ``s3://bucket/prefix``. For ``s3://`` stores the login and password
are the access key id and secret key, and a short, reviewed list of extras (``_S3_EXTRAS``) becomes
s3fs storage options. Nothing else from the connection reaches fsspec: an unknown extra is an
error, not a silent pass-through, so a connection cannot smuggle arbitrary options (``client_kwargs``,
``config_kwargs``, a different ``endpoint``) into the filesystem.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow_datum_provider.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import Store

__all__ = ["DatumStoreHook"]

log = logging.getLogger(__name__)

_S3_SCHEMES = frozenset({"s3", "s3a"})
# Schemes whose filesystems take no credentials at all.
_LOCAL_SCHEMES = frozenset({"", "file", "local", "memory"})

# extra name -> what it means; every entry is mapped by hand in ``_s3_options``.
_S3_EXTRAS: Mapping[str, str] = {
    "endpoint_url": "S3-compatible endpoint, e.g. http://minio:9000",
    "region_name": "AWS region, e.g. eu-west-1",
    "session_token": "temporary-credentials session token (with login/password)",
    "anon": "true for anonymous access to a public bucket",
}
_ALLOWED_EXTRAS = ("url", *sorted(_S3_EXTRAS))


class DatumStoreHook(BaseHook):
    """Build a :class:`~airflow_datum_provider.core.store.Store` from a ``datum_store`` connection.

    Example connection (``AIRFLOW_CONN_DATUM_STORE_DEFAULT`` as JSON)::

        {"conn_type": "datum_store", "host": "s3://bucket/datums",
         "login": "AKIA...", "password": "...",
         "extra": {"region_name": "eu-west-1"}}

    Allowed extras: ``url``, ``endpoint_url``, ``region_name``, ``session_token``, ``anon``.
    """

    conn_name_attr = "datum_store_conn_id"
    default_conn_name = "datum_store_default"
    conn_type = "datum_store"
    hook_name = "Datum Store"

    allowed_extras: ClassVar[tuple[str, ...]] = _ALLOWED_EXTRAS

    def __init__(self, datum_store_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.datum_store_conn_id = datum_store_conn_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}(datum_store_conn_id={self.datum_store_conn_id!r})"

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Hide the fields a store URL does not use and name the others after what they hold."""
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {
                "host": "Store URL",
                "login": "Access key ID (S3)",
                "password": "Secret access key (S3)",
            },
            "placeholders": {
                "host": "s3://bucket/prefix, /data/datum-store or memory://scratch",
                "login": "leave empty for local stores or ambient AWS credentials",
                "extra": '{"region_name": "eu-west-1", "endpoint_url": "http://minio:9000"}',
            },
        }

    def get_store(self) -> Store:
        """Open the store the connection points at."""
        url, options = self._store_args()
        from airflow_datum_provider.core.store import Store

        self.log.info("Opening datum store %s (connection %s)", url, self.datum_store_conn_id)
        return Store.open(url, storage_options=options or None)

    def get_conn(self) -> Store:
        """Same as :meth:`get_store` (the name Airflow's ``BaseHook`` expects)."""
        return self.get_store()

    def test_connection(self) -> tuple[bool, str]:
        """Open the store and list its repos; report the outcome without raising."""
        from airflow_datum_provider.core.store import Store

        secrets: tuple[str, ...] = ()
        try:
            conn = self.get_connection(self.datum_store_conn_id)
            secrets = tuple(
                str(s) for s in (conn.password, conn.extra_dejson.get("session_token")) if s
            )
            url, options = _connection_store_args(self.datum_store_conn_id, conn)
            repos = sum(1 for _ in Store.open(url, storage_options=options or None).list_repos())
        except Exception as e:
            return False, _redact(f"{type(e).__name__}: {e}", secrets)
        return True, f"Opened datum store {url} ({repos} repos)"

    def _store_args(self) -> tuple[str, dict[str, Any]]:
        conn = self.get_connection(self.datum_store_conn_id)
        return _connection_store_args(self.datum_store_conn_id, conn)


def _connection_store_args(conn_id: str, conn: Any) -> tuple[str, dict[str, Any]]:
    return _store_args(
        conn_id=conn_id,
        host=conn.host,
        login=conn.login,
        password=conn.password,
        extra=conn.extra_dejson,
    )


def _store_args(
    *,
    conn_id: str,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any],
) -> tuple[str, dict[str, Any]]:
    """Turn connection fields into ``(url, storage_options)``; raise ``ValueError`` on misuse."""
    where = f"datum_store connection {conn_id!r}"
    # The UI stores untouched fields as "" or null; both mean "not set".
    extra = {k: v for k, v in extra.items() if v not in (None, "")}
    unknown = sorted(set(extra) - set(_ALLOWED_EXTRAS))
    if unknown:
        raise ValueError(
            f"{where}: extra {unknown[0]!r} is not allowed; allowed extras: "
            f"{', '.join(_ALLOWED_EXTRAS)}"
        )

    url = _store_url(where, host or None, extra.get("url"))
    scheme = urlsplit(url).scheme.lower() if "://" in url else ""
    s3_extras = sorted(set(extra) & set(_S3_EXTRAS))
    if scheme in _S3_SCHEMES:
        return url, _s3_options(where, login or None, password or None, extra)
    if login or password or s3_extras:
        used = ["login" if login else "", "password" if password else "", *s3_extras]
        raise ValueError(
            f"{where}: {', '.join(u for u in used if u)} only apply to s3:// stores, "
            f"not {scheme or 'local'} store {url!r}"
        )
    if scheme not in _LOCAL_SCHEMES:
        log.debug("%s: %s:// store opened with the filesystem's ambient credentials", where, scheme)
    return url, {}


def _store_url(where: str, host: str | None, url_extra: Any) -> str:
    if url_extra is not None and not isinstance(url_extra, str):
        raise ValueError(f"{where}: extra 'url' must be a string, got {type(url_extra).__name__}")
    if host and url_extra and host != url_extra:
        raise ValueError(f"{where}: host {host!r} and extra 'url' {url_extra!r} disagree; set one")
    url = host or url_extra
    if not url:
        raise ValueError(f"{where}: no store URL; set the host (or extra 'url')")
    if "://" in url and "@" in urlsplit(url).netloc:
        # Credentials in the URL would end up in logs and task metadata.
        raise ValueError(
            f"{where}: the store URL must not carry user info (user@ or key:secret@); "
            "put credentials in login/password"
        )
    return str(url)


def _s3_options(
    where: str, login: str | None, password: str | None, extra: Mapping[str, Any]
) -> dict[str, Any]:
    options: dict[str, Any] = {}
    client_kwargs: dict[str, Any] = {}
    if bool(login) != bool(password):
        raise ValueError(f"{where}: set both login (access key id) and password (secret key)")
    anon = _as_bool(where, "anon", extra.get("anon", False))
    if anon and (login or "session_token" in extra):
        raise ValueError(f"{where}: extra 'anon' cannot be combined with credentials")
    if login and password:
        options["key"] = login
        options["secret"] = password
    if "session_token" in extra:
        if not login:
            raise ValueError(f"{where}: extra 'session_token' needs login and password")
        options["token"] = _as_str(where, "session_token", extra["session_token"])
    if anon:
        options["anon"] = True
    if "endpoint_url" in extra:
        endpoint = _as_str(where, "endpoint_url", extra["endpoint_url"])
        if urlsplit(endpoint).scheme not in ("http", "https"):
            raise ValueError(
                f"{where}: extra 'endpoint_url' must be an http(s) URL, got {endpoint!r}"
            )
        options["endpoint_url"] = endpoint
    if "region_name" in extra:
        client_kwargs["region_name"] = _as_str(where, "region_name", extra["region_name"])
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    return options


def _as_str(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{where}: extra {name!r} must be a string, got {type(value).__name__}")
    return value


def _as_bool(where: str, name: str, value: Any) -> bool:
    # Connections given as URIs carry every extra as a string.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError(f"{where}: extra {name!r} must be true or false, got {value!r}")


def _redact(message: str, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        message = message.replace(secret, "***")
    return message
