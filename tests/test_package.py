"""The package root: a small, pinned public surface, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import airflow_datum_provider


def test_root_all_is_pinned() -> None:
    assert airflow_datum_provider.__all__ == ["DatumError", "Store", "__version__"]


def test_root_names_resolve() -> None:
    from airflow_datum_provider.core.errors import DatumError
    from airflow_datum_provider.core.store import Store

    assert airflow_datum_provider.Store is Store
    assert airflow_datum_provider.DatumError is DatumError


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="Nope"):
        _ = airflow_datum_provider.Nope  # type: ignore[attr-defined]


def test_importing_the_root_loads_nothing_heavy() -> None:
    """Provider discovery imports the package: it must not pull in the store, fsspec or airflow."""
    code = (
        "import sys, airflow_datum_provider; "
        "print(sorted(m for m in ('fsspec', 'airflow', 'airflow_datum_provider.core.store') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
