"""ruff refuses airflow / kubernetes / s3fs imports anywhere in core/ (TID251)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
RUFF = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (the dev extra)")
@pytest.mark.parametrize(
    ("source", "banned"),
    [
        ("import airflow\n", "airflow"),
        ("from airflow.sdk import DAG\n", "airflow"),
        ("def f():\n    import kubernetes.client\n", "kubernetes"),
        ("import s3fs\n", "s3fs"),
    ],
    ids=["airflow", "airflow-submodule", "kubernetes-in-function", "s3fs"],
)
def test_core_imports_of_adapters_are_refused(source: str, banned: str) -> None:
    assert RUFF is not None
    done = subprocess.run(
        [RUFF, "check", "--select", "TID251", "--stdin-filename"]
        + ["airflow_datum_provider/core/probe.py", "-"],
        input=source,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert f"`{banned}` is banned" in done.stdout


@pytest.mark.skipif(RUFF is None, reason="ruff is not installed (the dev extra)")
def test_the_same_imports_are_fine_outside_core() -> None:
    assert RUFF is not None
    done = subprocess.run(
        [
            RUFF,
            "check",
            "--select",
            "TID251",
            "--stdin-filename",
            "airflow_datum_provider/hooks/probe.py",
            "-",
        ],
        input="import airflow\n",
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout
