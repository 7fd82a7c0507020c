"""``make demo`` runs: the walkthrough succeeds twice on one store (idempotent)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_datum_provider.demo import EXAMPLES


@pytest.mark.parametrize("pfs_mount", ["auto", "off"])
def test_demo_runs_twice(tmp_path: Path, pfs_mount: str) -> None:
    """Both ways user code can find its data: ``/pfs`` (private mount) and ``$PFS_ROOT``."""
    env = {**os.environ, "DATUM_STORE": str(tmp_path / "store"), "DATUM_PFS_MOUNT": pfs_mount}
    before = sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*"))
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "airflow_datum_provider.demo"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stderr
        assert "success 1 + 2 / 3" in proc.stdout
        assert "Traceback" not in proc.stderr
    # The examples the demo used are still there, unchanged, for the user to type again.
    assert sorted(p.relative_to(EXAMPLES) for p in EXAMPLES.rglob("*")) == before
    bin_dir = Path(sys.executable).parent
    assert str(bin_dir) in proc.stdout  # the exact line that puts datumctl on PATH
    assert proc.stdout.rstrip().endswith("Then explore with: datumctl --help")
