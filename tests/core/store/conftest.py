"""Store fixtures: one store per backend (memory, local folder, S3 on the moto server)."""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store._backend import Backend, open_backend

BACKENDS = ["memory", "local", pytest.param("s3", marks=pytest.mark.s3)]
DISK_BACKENDS = ["local", pytest.param("s3", marks=pytest.mark.s3)]


@dataclass
class StoreSite:
    """Where a test store lives; :meth:`open` gives a fresh ``Store`` (as another process would)."""

    kind: str
    url: str
    options: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def open(self) -> Store:
        return Store.open(self.url, storage_options=self.options)

    def open_raw(self) -> Backend:
        """The site's backend, without reading or writing ``FORMAT``."""
        return open_backend(self.url, self.options)


_PUT_LOCK = threading.Lock()
_PATCHED = False


def make_moto_conditional_puts_atomic() -> None:
    """Serialise moto's PutObject handler so that ``If-None-Match: *`` is atomic, as on S3.

    moto 5.2 answers a conditional PUT with a ``PreconditionFailed`` (s3fs raises
    ``FileExistsError``, which the backend maps to "lost the race"), but it checks for the key
    and stores it in two unlocked steps on a threaded server. We never saw two winners (40
    eight-way races, three 8-process runs without this lock), but the window exists; the lock
    keeps the tests from ever flaking on a moto artefact. It only makes moto stricter.
    """
    global _PATCHED
    if _PATCHED:
        return
    from moto.s3.responses import S3Response

    original = S3Response.put_object

    def put_object(self: Any) -> Any:
        with _PUT_LOCK:
            return original(self)

    S3Response.put_object = put_object  # type: ignore[method-assign]
    _PATCHED = True


def _site(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> StoreSite:
    if kind == "memory":
        return StoreSite(kind, f"memory://store-{uuid.uuid4().hex}")
    if kind == "local":
        return StoreSite(kind, str(tmp_path / "store"))
    url, options = request.getfixturevalue("s3_store_url")
    make_moto_conditional_puts_atomic()
    return StoreSite(kind, url, options, {"endpoint": request.getfixturevalue("s3_server")})


@pytest.fixture(params=BACKENDS)
def site(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSite:
    return _site(request.param, request, tmp_path)


@pytest.fixture(params=DISK_BACKENDS)
def disk_site(request: pytest.FixtureRequest, tmp_path: Path) -> StoreSite:
    """Backends that several processes can share (not ``memory://``)."""
    return _site(request.param, request, tmp_path)


@pytest.fixture
def store(site: StoreSite) -> Store:
    return site.open()
