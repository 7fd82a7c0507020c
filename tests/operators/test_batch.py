"""BatchCheckOperator on real Airflow (``dag.test()`` on a metadata DB) and via ``execute``."""

from __future__ import annotations

import datetime
import io
import uuid
from pathlib import Path
from typing import Any

import pytest

pl = pytest.importorskip("polars")
pytest.importorskip("truthound")

pytestmark = [
    pytest.mark.airflow,
    # dag.test() runs the task API through starlette's TestClient, which warns about httpx
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient` is deprecated"),
]


def _csv(frame: Any) -> bytes:
    buf = io.BytesIO()
    frame.write_csv(buf)
    return buf.getvalue()


def _parquet(frame: Any) -> bytes:
    buf = io.BytesIO()
    frame.write_parquet(buf)
    return buf.getvalue()


CLEAN = pl.DataFrame(
    {
        "id": list(range(3000)),
        "amount": [float(i % 50) for i in range(3000)],
        "kind": ["a", "b", "c"] * 1000,
    }
)
DIRTY = CLEAN.with_columns(
    pl.when(pl.col("id") >= 2500).then(None).otherwise(pl.col("amount")).alias("amount")
)


def _store(url: str) -> Any:
    from airflow_datum_provider.core.store import Store

    store = Store.open(url)
    store.create_repo("tables")
    with store.commit("tables") as commit:
        commit.put_bytes("/clean.csv", _csv(CLEAN))
        commit.put_bytes("/dirty.csv", _csv(DIRTY))
        commit.put_bytes("/parts/a.parquet", _parquet(CLEAN.head(1000)))
        commit.put_bytes("/parts/b.parquet", _parquet(CLEAN.tail(2000)))
        commit.put_bytes("/notes.txt", b"hello")
    return store


@pytest.fixture(scope="module")
def airflow_db(airflow_home: Path) -> Path:
    """A migrated metadata DB (SQLite in the session's Airflow home) with the DAG bundles synced."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.utils import db

    db.initdb()
    DagBundlesManager().sync_bundles_to_db()
    return airflow_home


def _serialize(dag: Any) -> None:
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder",
            None,
            [LazyDeserializedDAG.from_dag(dag)],
            {},
            None,
            set(),
            session=session,
        )


def test_dag_test_passes_clean_and_fails_dirty_with_summaries(
    airflow_db: Path, tmp_path: Path
) -> None:
    from airflow.sdk import DAG

    from airflow_datum_provider.operators.batch import BatchCheckOperator

    url = str(tmp_path / "store")
    _store(url)
    config = {"batch_size": 1000, "max_workers": 2}
    with DAG(
        dag_id=f"batch_check_{uuid.uuid4().hex[:8]}",
        schedule=None,
        start_date=datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC),
    ) as dag:
        BatchCheckOperator(
            task_id="clean", repo="tables", path="/clean.csv", store_url=url, batch_config=config
        )
        BatchCheckOperator(
            task_id="dirty", repo="tables", path="/dirty.csv", store_url=url, batch_config=config
        )
    _serialize(dag)
    run = dag.test()

    states = {ti.task_id: ti.state for ti in run.get_task_instances()}
    assert states == {"clean": "success", "dirty": "failed"}
    tis = {ti.task_id: ti for ti in run.get_task_instances()}
    clean = tis["clean"].xcom_pull(task_ids="clean")
    assert clean["status"] == "PASSED"
    assert (clean["total_chunks"], clean["passed_chunks"], clean["total_rows"]) == (3, 3, 3000)
    assert clean["value"]["row_count"] == 3000
    dirty = tis["dirty"].xcom_pull(task_ids="dirty", key="batch_summary")
    assert dirty["status"] == "FAILED"
    assert dirty["failed_chunks"] == 1
    assert dirty["failures"][0]["index"] == 2  # rows 2500.. are in the third 1,000-row chunk
    assert dirty["value"]["issues"][0]["column"] == "amount"
    assert len(str(dirty)) < 4000  # compact


def _context() -> dict[str, Any]:
    return {}


def test_execute_profile_over_a_list_of_parquet_files_in_a_memory_store() -> None:
    from airflow_datum_provider.operators.batch import BatchCheckOperator

    url = f"memory://batch-{uuid.uuid4().hex[:8]}"
    _store(url)
    op = BatchCheckOperator(
        task_id="profile",
        repo="tables",
        paths=["/parts/a.parquet", "/parts/b.parquet"],
        operation="profile",
        store_url=url,
    )
    summary = op.execute(_context())
    assert summary["total_chunks"] == 2
    assert summary["status"] == "PASSED"
    columns = {c["name"]: c for c in summary["value"]["columns"]}
    assert list(columns) == ["id", "amount", "kind"]
    assert columns["id"]["row_count"] == 3000
    assert (columns["id"]["min"], columns["id"]["max"]) == (0.0, 2999.0)
    assert columns["kind"]["distinct_count"] == 3


def test_execute_failure_message_names_the_table_and_first_chunk(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    from airflow_datum_provider.operators.batch import BatchCheckOperator

    url = str(tmp_path / "store")
    _store(url)
    op = BatchCheckOperator(
        task_id="dirty",
        repo="tables",
        path="/dirty.csv",
        store_url=url,
        batch_config={"batch_size": 1000},
    )
    with pytest.raises(
        AirflowException,
        match=r"batch check of tables@master:/dirty.csv: FAILED \(1/3 chunks failed\); first failure: chunk 2 FAILED",
    ):
        op.execute(_context())
    # the same table passes when only ERROR fails the task
    lenient = BatchCheckOperator(
        task_id="lenient", repo="tables", path="/dirty.csv", store_url=url, fail_on=["ERROR"]
    )
    assert lenient.execute(_context())["status"] == "FAILED"


def test_execute_refuses_a_non_table_with_one_line(tmp_path: Path) -> None:
    from airflow.sdk.exceptions import AirflowException

    from airflow_datum_provider.operators.batch import BatchCheckOperator

    url = str(tmp_path / "store")
    _store(url)
    op = BatchCheckOperator(task_id="t", repo="tables", path="/notes.txt", store_url=url)
    with pytest.raises(
        AirflowException, match=r"tables@master:/notes.txt: unsupported file type '.txt'"
    ):
        op.execute(_context())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"path": "/a.csv", "operation": "scan"},
            "operation: 'scan' is not one of check, profile, learn",
        ),
        ({}, "path / paths: give exactly one"),
        ({"path": "/a.csv", "paths": ["/b.csv"]}, "path / paths: give exactly one"),
        ({"paths": "/a.csv"}, "paths: must be a non-empty list"),
        ({"path": "/a.csv", "fail_on": ["BAD"]}, "fail_on: BAD not a status"),
        (
            {"path": "/a.csv", "batch_config": {"batch_size": 0}},
            "batch_config.batch_size: must be a positive integer",
        ),
    ],
    ids=["operation", "neither", "both", "paths-str", "fail-on", "config"],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    from airflow_datum_provider.operators.batch import BatchCheckOperator

    with pytest.raises(ValueError, match=message):
        BatchCheckOperator(task_id="t", repo="tables", **kwargs)
