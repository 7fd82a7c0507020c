"""PutFilesOperator through ``dag.test()``: bytes from XCom, a local folder, an ObjectStoragePath.

One commit, its id returned, and the branch's Asset event carrying that commit id.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serialize_dag

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_put_files_commits_once_and_emits_the_asset_event(airflow_db: Path, tmp_path: Path) -> None:
    import pendulum
    from airflow.sdk import DAG, ObjectStoragePath, task

    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.operators.put_files import PutFilesOperator

    url = str(tmp_path / "store")
    folder = tmp_path / "local"
    (folder / "sub").mkdir(parents=True)
    (folder / "one.txt").write_text("one")
    (folder / "sub" / "two.txt").write_text("two")
    remote = tmp_path / "remote.txt"
    remote.write_text("remote")

    with DAG(
        "ingest_words", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
    ) as dag:

        @task
        def extract() -> dict[str, Any]:
            import base64

            return {
                "/from_xcom.bin": {"base64": base64.b64encode(b"\x00bytes\xff").decode()},
                "/note.txt": {"text": "hello"},
            }

        data = extract()
        put_xcom = PutFilesOperator(task_id="put_xcom", repo="words", files=data, store=url)
        put_more = PutFilesOperator(
            task_id="put_more",
            repo="words",
            store=url,
            files={
                "/local": str(folder),
                "/remote.txt": ObjectStoragePath(remote.as_uri()),
            },
            description="more words",
        )
        put_xcom >> put_more

    serialize_dag(dag)
    run = dag.test()
    assert run.state == "success"

    store = Store.open(url)
    commits = list(store.list_commits("words", "master"))
    assert len(commits) == 2
    assert store.read_bytes("words", commits[1].id, "/from_xcom.bin") == b"\x00bytes\xff"
    head = commits[0]
    assert head.description == "more words"
    assert store.read_bytes("words", "master", "/note.txt") == b"hello"
    assert store.read_bytes("words", "master", "/local/sub/two.txt") == b"two"
    assert store.read_bytes("words", "master", "/local/one.txt") == b"one"
    assert store.read_bytes("words", "master", "/remote.txt") == b"remote"

    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        returned = {
            x.task_id: x.value
            for x in session.query(XComModel).filter_by(
                dag_id="ingest_words", run_id=run.run_id, key="return_value"
            )
        }
        events = (
            session.query(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .filter(AssetModel.uri == "datum://words@master")
            .order_by(AssetEvent.timestamp)
            .all()
        )
        extras = [(e.source_task_id, e.extra) for e in events if e.source_run_id == run.run_id]
    assert returned["put_xcom"] == commits[1].id
    assert returned["put_more"] == head.id
    assert extras == [
        (
            "put_xcom",
            {
                "repo": "words",
                "branch": "master",
                "commit": commits[1].id,
                "commits": [commits[1].id],
            },
        ),
        (
            "put_more",
            {"repo": "words", "branch": "master", "commit": head.id, "commits": [head.id]},
        ),
    ]


def test_bad_sources_fail_in_one_line_and_commit_nothing(
    airflow_home: Path, tmp_path: Path
) -> None:
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.hooks.store import put_files

    store = Store.open(str(tmp_path / "store"))
    with pytest.raises(ValueError, match=r"/x: local path '/nope/x' does not exist"):
        put_files(store, "words", {"/a": b"a", "/x": "/nope/x"})
    with pytest.raises(ValueError, match=r"/y: a source must be bytes, "):
        put_files(store, "words", {"/y": 42})
    with pytest.raises(ValueError, match=r"/z: 'base64' is not valid base64"):
        put_files(store, "words", {"/z": {"base64": "!!"}})
    with pytest.raises(ValueError, match="nothing to commit"):
        put_files(store, "words", {})
    assert store.branch_head("words", "master") is None
    assert store.list_open_commits("words") == []
