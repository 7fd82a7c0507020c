"""Run the installed ``datumctl`` console script against a store in ``tmp_path``."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Protocol

import pytest

DATUMCTL = shutil.which("datumctl", path=str(Path(sys.executable).parent))


class Run(Protocol):
    def __call__(
        self,
        *args: str,
        code: int = 0,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        store: bool = True,
    ) -> subprocess.CompletedProcess[bytes]: ...


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment without DATUM_STORE, with a private HOME (the default store's root)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATUM_STORE", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path / "home")
    return env


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
def run(store_dir: Path, clean_env: dict[str, str]) -> Run:
    """``run("list", "repo")`` → the finished process; asserts the exit code and no traceback."""
    if DATUMCTL is None:
        pytest.fail(f"datumctl is not installed next to {sys.executable} (pip install -e .)")

    def _run(
        *args: str,
        code: int = 0,
        input: bytes | None = None,
        env: dict[str, str] | None = None,
        store: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        argv = [DATUMCTL, *(["--store", str(store_dir)] if store else []), *args]
        proc = subprocess.run(
            argv, input=input, capture_output=True, env={**clean_env, **(env or {})}, timeout=60
        )
        err = proc.stderr.decode()
        assert "Traceback" not in err, err
        assert proc.returncode == code, (argv, proc.returncode, proc.stdout, err)
        return proc

    return _run
