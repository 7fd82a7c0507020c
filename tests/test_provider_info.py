"""Airflow discovers the provider: schema-valid metadata, and the real ``airflow providers`` CLI."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from packaging.utils import canonicalize_name

from airflow_datum_provider.get_provider_info import get_provider_info

DIST = "airflow-datum-provider"


def _airflow_schema(name: str) -> dict[str, Any]:
    # find_spec locates the package without importing (and so configuring) Airflow.
    spec = importlib.util.find_spec("airflow")
    assert spec is not None
    assert spec.submodule_search_locations
    schema: dict[str, Any] = json.loads(
        (Path(next(iter(spec.submodule_search_locations))) / name).read_text()
    )
    return schema


def test_provider_info_matches_airflow_schema() -> None:
    jsonschema.validate(get_provider_info(), _airflow_schema("provider_info.schema.json"))


def test_package_name_is_the_normalised_distribution_name() -> None:
    info = get_provider_info()
    dist = importlib.metadata.distribution(DIST)
    assert info["package-name"] == canonicalize_name(dist.metadata["Name"]) == DIST
    assert info["versions"][0] == dist.version


def test_entry_point_points_at_get_provider_info() -> None:
    (ep,) = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.dist is not None and canonicalize_name(ep.dist.name) == DIST
    ]
    assert ep.load() is get_provider_info


def test_provider_info_is_fresh_each_call() -> None:
    # Airflow adds keys to the dict it gets; a shared module-level dict would leak them.
    first = get_provider_info()
    first["documentation-url"] = None
    assert "documentation-url" not in get_provider_info()


def test_hook_modules_and_classes_resolve(airflow_home: Path) -> None:
    from airflow_datum_provider.hooks.store import DatumStoreHook

    info = get_provider_info()
    (conn_type,) = info["connection-types"]
    module, _, cls = conn_type["hook-class-name"].rpartition(".")
    assert getattr(importlib.import_module(module), cls) is DatumStoreHook
    assert conn_type["connection-type"] == DatumStoreHook.conn_type
    assert [m for h in info["hooks"] for m in h["python-modules"]] == [module]
    jsonschema.validate(
        DatumStoreHook.get_ui_field_behaviour(),
        _airflow_schema("customized_form_field_behaviours.schema.json"),
    )


def _airflow_cli(home: Path, *args: str) -> Any:
    airflow = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(airflow), *args, "--output", "json"],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=home,
        env={**os.environ, "AIRFLOW_HOME": str(home)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    # Unit-test mode logs a line to stdout before the table; the JSON is the last line.
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.airflow
def test_airflow_providers_list_shows_the_provider(airflow_home: Path) -> None:
    rows = _airflow_cli(airflow_home, "providers", "list")
    (row,) = [r for r in rows if r["package_name"] == DIST]
    assert row["version"] == importlib.metadata.version(DIST)


@pytest.mark.airflow
def test_airflow_providers_hooks_shows_the_connection_type(airflow_home: Path) -> None:
    rows = _airflow_cli(airflow_home, "providers", "hooks")
    (row,) = [r for r in rows if r["connection_type"] == "datum_store"]
    assert row["class"] == "airflow_datum_provider.hooks.store.DatumStoreHook"
    assert row["conn_id_attribute_name"] == "datum_store_conn_id"
    assert row["package_name"] == DIST
    assert row["hook_name"] == "Datum Store"
