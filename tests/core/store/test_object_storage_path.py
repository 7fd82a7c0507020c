"""The store opens an Airflow ``ObjectStoragePath`` (a universal-pathlib path) as its root."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_datum_provider.core.store import Store


@pytest.fixture
def object_storage_path(airflow_home: Path) -> type:
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath


def test_local_object_storage_path(object_storage_path: type, tmp_path: Path) -> None:
    root = object_storage_path(f"file://{tmp_path}/store")
    store = Store.open(root)
    store.create_repo("r")
    with store.commit("r") as c:
        c.put_bytes("/a.txt", b"hi")
    assert Store.open(tmp_path / "store").read_bytes("r", "master", "/a.txt") == b"hi"
    assert (tmp_path / "store" / "FORMAT").is_file()
