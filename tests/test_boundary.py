"""core/ never imports Airflow: proven by importing it with Airflow blocked, and by reading it."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import airflow_datum_provider

PACKAGE_ROOT = Path(airflow_datum_provider.__file__).parent
CORE = PACKAGE_ROOT / "core"
BATCH = PACKAGE_ROOT / "batch"  # Airflow-free like core/


def _core_files() -> list[Path]:
    return sorted(p for d in (CORE, BATCH) for p in d.rglob("*.py") if "__pycache__" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


_IMPORT_ALL = """
import importlib, json, sys, traceback
sys.modules["airflow"] = None  # any `import airflow...` now raises ImportError
failures = {}
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except BaseException:
        failures[name] = traceback.format_exc(limit=-3)
leaked = sorted(
    m for m, mod in sys.modules.items() if mod is not None and (m == "airflow" or m.startswith("airflow."))
)
print(json.dumps({"failures": failures, "leaked": leaked}))
"""


def test_core_imports_with_airflow_blocked() -> None:
    modules = [_module_name(p) for p in _core_files()]
    assert "airflow_datum_provider.core" in modules
    assert "airflow_datum_provider.batch" in modules
    proc = subprocess.run(
        [sys.executable, "-c", _IMPORT_ALL, json.dumps(modules)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["failures"] == {}, "\n".join(
        f"{name}:\n{tb}" for name, tb in result["failures"].items()
    )
    assert result["leaked"] == []


def _airflow_imports(tree: ast.AST) -> list[tuple[int, str]]:
    def is_airflow(name: str | None) -> bool:
        return bool(name) and (name == "airflow" or str(name).startswith("airflow."))

    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if is_airflow(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and is_airflow(node.module):
                found.append((node.lineno, str(node.module)))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            fname = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            arg = node.args[0]
            if (
                fname in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and is_airflow(arg.value)
            ):
                found.append((node.lineno, arg.value))
    return found


def test_no_file_under_core_imports_airflow() -> None:
    files = _core_files()
    assert files, f"no Python files under {CORE}"
    offenders = [
        f"{path.relative_to(PACKAGE_ROOT.parent)}:{line}: imports {name}"
        for path in files
        for line, name in _airflow_imports(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert offenders == []


def test_ast_check_catches_airflow_imports() -> None:
    source = (
        "import airflow\n"
        "from airflow.sdk import BaseHook\n"
        "import importlib\n"
        "importlib.import_module('airflow.models')\n"
        "import airflow_datum_provider.core\n"
        "from airflow_datum_provider import core\n"
    )
    assert [line for line, _ in _airflow_imports(ast.parse(source))] == [1, 2, 4]
