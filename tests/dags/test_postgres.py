"""The incremental example DAG with PostgreSQL as the metadata DB, through ``airflow dags test``.

Airflow's CLI in a subprocess (the metadata DB is chosen when Airflow is first imported), on a
database this test creates and drops. Skipped where no PostgreSQL answers on 127.0.0.1:5432.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = [pytest.mark.airflow, pytest.mark.slow]

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
DAGS = Path(__file__).resolve().parents[2] / "dags"


def _airflow(env: dict[str, str], *args: str) -> None:
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(exe), *args], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_incremental_dag_on_postgres(tmp_path: Path) -> None:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    db = f"datum_dags_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'create database "{db}"')
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not usable ({exc})".splitlines()[0])
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    store = Store.open(url)
    store.create_repo("notes")
    with store.start_commit("notes", "master") as commit:
        for i in range(4):
            commit.put_bytes(f"/n{i}.txt", f"note {i}".encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": (
                f"postgresql+psycopg_async://postgres@127.0.0.1:5432/{db}"
            ),
            "DATUM_STORE": url,
        }
    )
    try:
        _airflow(env, "db", "migrate")
        _airflow(env, "dags", "test", "incremental")
        with store.start_commit("notes", "master") as commit:
            commit.put_bytes("/n1.txt", b"changed")
        _airflow(env, "dags", "test", "incremental")
        with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db}") as conn:
            rows = conn.execute(
                "select state from dag_run where dag_id = 'incremental' order by id"
            ).fetchall()
        assert [r[0] for r in rows] == ["success", "success"]  # the runs are in PostgreSQL
    finally:
        with contextlib.suppress(Exception), psycopg.connect(PG, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{db}" with (force)')
    jobs = JobRecords(store).jobs("loud_notes")
    assert [(j.state, j.processed, j.skipped) for j in jobs] == [
        ("success", 1, 3),
        ("success", 4, 0),
    ]
    assert store.read_bytes("loud_notes", "master", "/n1.txt") == b"CHANGED"
    assert store.read_bytes("loud_notes", "master", "/n3.txt") == b"NOTE 3"
