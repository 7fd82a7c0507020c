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
    env = {
        **os.environ,
        "DATUM_STORE": str(tmp_path / "store"),
        "DATUM_PFS_MOUNT": pfs_mount,
        "DATUM_DEMO_AIRFLOW": "off",  # the Airflow part runs once, below
    }
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


@pytest.mark.airflow
@pytest.mark.slow
def test_demo_continues_through_airflow(tmp_path: Path) -> None:
    """``make demo``'s second half: ``airflow dags test word_count`` twice, 1 processed + 2 skipped."""
    env = {
        **os.environ,
        "DATUM_STORE": str(tmp_path / "store"),
        "DATUM_DEMO_AIRFLOW_HOME": str(tmp_path / "airflow"),
    }
    env.pop("AIRFLOW_HOME", None)
    proc = subprocess.run(
        [sys.executable, "-m", "airflow_datum_provider.demo"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "$ airflow dags test word_count" in proc.stdout
    tables = proc.stdout.split("$ datumctl list job -p wc_counts")
    assert len(tables) == 3
    assert "3 + 0 / 3" in tables[1]
    assert "1 + 2 / 3" in tables[2].split("\n\n")[0]
    # The top words of examples/data/texts, most frequent first: the texts repeat common words.
    top = tables[1].split("$ datumctl get file wc_totals@master:/totals.txt\n")[1]
    assert top.startswith("the 8\ndata 5\nday 3\nevery 3\npipeline 3\n"), top[:200]
