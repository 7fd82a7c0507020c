"""The package root: a small, pinned public surface, loaded lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import airflow_datum_provider


def test_root_all_is_pinned() -> None:
    assert airflow_datum_provider.__all__ == [
        "DatumError",
        "DatumPipeline",
        "Store",
        "__version__",
        "batch_all_datums",
        "next_datum",
    ]


def test_root_names_resolve() -> None:
    from airflow_datum_provider.core.errors import DatumError
    from airflow_datum_provider.core.store import Store

    assert airflow_datum_provider.Store is Store
    assert airflow_datum_provider.DatumError is DatumError
    from airflow_datum_provider.core.worker import batching_client

    assert airflow_datum_provider.next_datum is batching_client.next_datum
    assert airflow_datum_provider.batch_all_datums is batching_client.batch_all_datums


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


def _type_checking_names(module: object) -> set[str]:
    """Names the module imports under ``if TYPE_CHECKING:``."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING":
            for stmt in node.body:
                if isinstance(stmt, ast.ImportFrom):
                    names.update(alias.asname or alias.name for alias in stmt.names)
    return names


@pytest.mark.parametrize("name", ["airflow_datum_provider", "airflow_datum_provider.core"])
def test_type_checkers_see_every_lazy_name(name: str) -> None:
    import importlib

    module = importlib.import_module(name)
    lazy = set(module._LAZY)  # type: ignore[attr-defined]
    assert _type_checking_names(module) == lazy
    assert lazy <= set(module.__all__)
    for attr in lazy:
        assert getattr(module, attr) is not None
