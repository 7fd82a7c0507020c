"""``DatumStoreHook``: open a datum store from an Airflow connection of type ``datum_store``.

The connection's host (or the ``url`` extra) is the store's root URL: a local folder,
``file://``, ``memory://`` or ``s3://bucket/prefix``. For ``s3://`` stores the login and password
are the access key id and secret key, and a short, reviewed list of extras (``_S3_EXTRAS``) becomes
s3fs storage options. Instead of login/password, the extra ``conn_id`` may name an ``aws``-type
connection: its login/password (access key id / secret), ``aws_session_token``, ``region_name``
and ``endpoint_url`` extras are read, nothing else. Nothing else from the connection reaches
fsspec: an unknown extra is an error, not a silent pass-through, so a connection cannot smuggle
arbitrary options (``client_kwargs``, ``config_kwargs``, a different ``endpoint``) into the
filesystem.

Besides opening stores, the hook commits files (:meth:`DatumStoreHook.put_files`) and resolves
what operators get as ``store=`` (:func:`resolve_store`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit

from airflow_datum_provider.version_compat import BaseHook

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import CommitInfo, OpenCommit, Store

__all__ = ["DatumStoreHook", "resolve_store"]

STORE_ENV_VAR = "DATUM_STORE"

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
_ALLOWED_EXTRAS = ("conn_id", "url", *sorted(_S3_EXTRAS))
# What is read from an ``aws`` connection named by the ``conn_id`` extra (and nothing else).
_AWS_EXTRAS = ("aws_session_token", "region_name", "endpoint_url")


class DatumStoreHook(BaseHook):
    """Build a :class:`~airflow_datum_provider.core.store.Store` from a ``datum_store`` connection.

    Example connection (``AIRFLOW_CONN_DATUM_STORE_DEFAULT`` as JSON)::

        {"conn_type": "datum_store", "host": "s3://bucket/datums",
         "login": "AKIA...", "password": "...",
         "extra": {"region_name": "eu-west-1"}}

    Allowed extras: ``conn_id`` (an ``aws`` connection with the S3 credentials), ``url``,
    ``endpoint_url``, ``region_name``, ``session_token``, ``anon``.
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

        secrets: list[str] = []
        try:
            conn = self.get_connection(self.datum_store_conn_id)
            secrets += [
                str(s) for s in (conn.password, conn.extra_dejson.get("session_token")) if s
            ]
            url, options = _connection_store_args(
                self.datum_store_conn_id, conn, self._aws_getter(secrets)
            )
            repos = sum(1 for _ in Store.open(url, storage_options=options or None).list_repos())
        except Exception as e:
            return False, _redact(f"{type(e).__name__}: {e}", tuple(secrets))
        return True, f"Opened datum store {url} ({repos} repos)"

    def put_files(
        self,
        repo: str,
        files: Mapping[str, Any] | Iterable[tuple[str, Any]],
        *,
        branch: str = "master",
        description: str = "",
        create_repo: bool = True,
        context: Mapping[str, Any] | None = None,
    ) -> CommitInfo:
        """Commit ``{store path: source}`` to ``repo@branch`` as one commit; return it.

        A source is ``bytes`` (the content), ``{"text": str}`` or ``{"base64": str}`` (content
        that can travel through XCom, which cannot carry bytes), a local file or folder path
        (``str``), or an ``ObjectStoragePath`` (file or folder; read through its own connection). A folder is
        put recursively below the store path. Nothing lands unless every source was read: a
        failure deletes the open commit. When called inside a task (``context``, or the
        current one), the commit is attached to the task's Asset event for ``repo@branch``.
        """
        store = self.get_store()
        return put_files(
            store,
            repo,
            files,
            branch=branch,
            description=description,
            create_repo=create_repo,
            context=context,
        )

    def _store_args(self) -> tuple[str, dict[str, Any]]:
        conn = self.get_connection(self.datum_store_conn_id)
        return _connection_store_args(self.datum_store_conn_id, conn, self._aws_getter([]))

    def _aws_getter(self, secrets: list[str]) -> Callable[[str], Any]:
        def get(conn_id: str) -> Any:
            conn = self.get_connection(conn_id)
            token = conn.extra_dejson.get("aws_session_token")
            secrets.extend(str(s) for s in (conn.password, token) if s)
            return conn

        return get


def resolve_store(store: Any = None) -> Store:
    """The store an operator's ``store=`` names.

    A :class:`Store` is used as is; a URL string, path or ``ObjectStoragePath`` is opened; ``None``
    means the ``datum_store_default`` connection if it exists, else ``$DATUM_STORE``, else the
    embedded default folder (the one ``datumctl`` uses).
    """
    from airflow_datum_provider.core.store import Store

    if isinstance(store, Store):
        return store
    if store is not None:
        return Store.open(store)
    hook = DatumStoreHook()
    try:
        hook.get_connection(hook.datum_store_conn_id)
    except Exception:  # AirflowNotFoundException; the secrets backends raise their own kinds
        from airflow_datum_provider.cli._config import default_store_url

        return Store.open(os.environ.get(STORE_ENV_VAR) or default_store_url())
    return hook.get_store()


def put_files(
    store: Store,
    repo: str,
    files: Mapping[str, Any] | Iterable[tuple[str, Any]],
    *,
    branch: str = "master",
    description: str = "",
    create_repo: bool = True,
    context: Mapping[str, Any] | None = None,
) -> CommitInfo:
    """Commit sources to ``repo@branch`` in one commit (see :meth:`DatumStoreHook.put_files`)."""
    items = list(files.items()) if isinstance(files, Mapping) else list(files)
    if not items:
        raise ValueError(f"put_files: nothing to commit to {repo}@{branch}; give at least one file")
    if create_repo:
        store.create_repo(repo, exist_ok=True)
    commit = store.start_commit(repo, branch, description=description)
    try:
        for path, source in items:
            _put_one(commit, path, source)
        info = commit.finish()
    except BaseException:
        commit.abort()
        raise
    log.info("Committed %d sources to %s@%s: commit %s", len(items), repo, branch, info.id)
    if context is None:
        context = _current_context()
    if context is not None:
        from airflow_datum_provider.assets import emit_commit_event

        emit_commit_event(context, repo, branch, info.id)
    return info


def _current_context() -> Mapping[str, Any] | None:
    try:
        from airflow.sdk import get_current_context

        return get_current_context()
    except Exception:  # outside a running task
        return None


def _put_one(commit: OpenCommit, path: str, source: Any) -> None:
    if not isinstance(path, str):
        raise ValueError(f"put_files: the store path must be a string, got {path!r}")
    if isinstance(source, str) and not os.path.exists(source):
        raise ValueError(
            f"put_files: {path}: local path {source!r} does not exist (give bytes for content)"
        )
    if isinstance(source, Mapping):
        # XCom cannot carry bytes: {"text": "..."} or {"base64": "..."} is content.
        source = _content(path, source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        commit.put_bytes(path, bytes(source))
    elif isinstance(source, (str, os.PathLike)) and not hasattr(source, "fs"):
        local = os.fspath(source)
        if os.path.isdir(local):
            commit.put_dir(path, local)
        else:
            commit.put_file(path, local)
    elif hasattr(source, "fs") and hasattr(source, "open"):
        _put_object_path(commit, path, source)
    else:
        raise ValueError(
            f"put_files: {path}: a source must be bytes, {{'text': ...}}, {{'base64': ...}}, a "
            "local path or an ObjectStoragePath, "
            f"got {type(source).__name__}"
        )


def _content(path: str, source: Mapping[str, Any]) -> bytes:
    import base64
    import binascii

    if set(source) == {"text"} and isinstance(source["text"], str):
        return source["text"].encode()
    if set(source) == {"base64"} and isinstance(source["base64"], str):
        try:
            return base64.b64decode(source["base64"], validate=True)
        except binascii.Error as exc:
            raise ValueError(f"put_files: {path}: 'base64' is not valid base64 ({exc})") from None
    raise ValueError(
        f"put_files: {path}: a content mapping is {{'text': str}} or {{'base64': str}}, "
        f"got keys {sorted(map(str, source))}"
    )


def _put_object_path(commit: OpenCommit, path: str, source: Any) -> None:
    if source.is_dir():
        base = str(source).rstrip("/")
        for child in sorted(source.rglob("*"), key=str):
            if child.is_file():
                rel = str(child)[len(base) :].lstrip("/")
                with child.open("rb") as fh:
                    commit.put_stream(f"{path.rstrip('/')}/{rel}", fh)
        return
    with source.open("rb") as fh:
        commit.put_stream(path, fh)


def _connection_store_args(
    conn_id: str, conn: Any, get_aws: Callable[[str], Any] | None = None
) -> tuple[str, dict[str, Any]]:
    extra = dict(conn.extra_dejson)
    login, password = conn.login, conn.password
    aws_id = extra.pop("conn_id", None)
    if aws_id not in (None, ""):
        where = f"datum_store connection {conn_id!r}"
        if not isinstance(aws_id, str):
            raise ValueError(f"{where}: extra 'conn_id' must be a connection id string")
        if login or password or extra.get("session_token"):
            raise ValueError(
                f"{where}: extra 'conn_id' ({aws_id!r}) and login/password/session_token "
                "both give credentials; set one"
            )
        if get_aws is None:
            raise ValueError(f"{where}: extra 'conn_id' needs an Airflow connection lookup")
        aws = get_aws(aws_id)
        aws_extra = aws.extra_dejson
        login, password = aws.login, aws.password
        for name in _AWS_EXTRAS:
            value = aws_extra.get(name)
            target = "session_token" if name == "aws_session_token" else name
            if value not in (None, "") and target not in extra:
                extra[target] = value
    return _store_args(
        conn_id=conn_id,
        host=conn.host,
        login=login,
        password=password,
        extra=extra,
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
