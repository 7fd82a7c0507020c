"""Credentials never leave the connection: not into XCom, rendered fields, logs or the store.

A ``DatumPipeline`` on an S3 store (the moto server) reached only through Airflow connections:
``datum_store_default`` names the bucket and an ``aws`` connection (``conn_id`` extra) holds the
access key and secret. Both connections live in the metadata DB, as in a deployment, so the
secret is nowhere in the process environment. After ``dag.test()`` the secret (and the access
key) must appear in none of: the run's XCom rows, its rendered template fields, the task logs
(the log files, and everything logged during the run), the objects in the bucket (the job and
pipeline records under ``meta/`` included), nor the set descriptors and summaries.
"""

from __future__ import annotations

import json
import logging
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serialize_dag

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


_SIGNING_LOGGERS = ("botocore", "aiobotocore", "urllib3")


def shout(datum: Any) -> None:
    path = Path(datum.inputs["words"])
    (Path(datum.out) / path.name).write_text(path.read_text().upper())


def fail_on_bad(datum: Any) -> None:
    path = Path(datum.inputs["words"])
    if path.name == "bad.txt":
        raise RuntimeError("bad input")
    shout(datum)


def _add_connections(endpoint: str, bucket: str, key: str, secret: str) -> list[str]:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    suffix = uuid.uuid4().hex[:8]
    aws_id = f"aws_datums_{suffix}"
    with create_session() as session:
        for conn_id in ("datum_store_default", aws_id):
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
        session.add(
            Connection(
                conn_id=aws_id,
                conn_type="aws",
                login=key,
                password=secret,
                extra=json.dumps({"endpoint_url": endpoint, "region_name": "us-east-1"}),
            )
        )
        session.add(
            Connection(
                conn_id="datum_store_default",
                conn_type="datum_store",
                host=f"s3://{bucket}/store",
                extra=json.dumps({"conn_id": aws_id}),
            )
        )
    return ["datum_store_default", aws_id]


def _drop_connections(conn_ids: list[str]) -> None:
    from airflow.models.connection import Connection
    from airflow.utils.session import create_session

    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id.in_(conn_ids)).delete()


def _rows(dag_id: str, run_id: str) -> tuple[list[tuple[str, int, str, str]], list[str]]:
    """Every XCom of the run (task, map index, key, raw stored value) and its rendered fields."""
    from airflow.models.renderedtifields import RenderedTaskInstanceFields
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        xcoms = [
            (x.task_id, x.map_index, x.key, json.dumps(x.value, default=str))
            for x in session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id)
        ]
        rendered = [
            json.dumps([r.task_id, r.map_index, r.rendered_fields, r.k8s_pod_yaml], default=str)
            for r in session.query(RenderedTaskInstanceFields).filter_by(
                dag_id=dag_id, run_id=run_id
            )
        ]
    return xcoms, rendered


def _bucket_objects(endpoint: str, bucket: str) -> dict[str, bytes]:
    import boto3

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    out: dict[str, bytes] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for obj in page.get("Contents", []):
            out[obj["Key"]] = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
    return out


def test_the_secret_is_in_no_xcom_rendered_field_log_or_store_object(
    airflow_db: Path,
    s3_server: str,
    s3_bucket: str,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.core.store import Store

    key = f"AKIA{uuid.uuid4().hex[:16].upper()}"
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    conn_ids = _add_connections(s3_server, s3_bucket, key, secret)
    try:
        # The test seeds with moto's own keys; only the tasks go through the connections.
        store = Store.open(
            f"s3://{s3_bucket}/store",
            storage_options={"endpoint_url": s3_server, "skip_instance_cache": True},
        )
        store.create_repo("words")
        with store.start_commit("words", "master") as commit:
            for name in ("a.txt", "b.txt", "c.txt"):
                commit.put_bytes(f"/{name}", f"word {name}".encode())

        def build(dag_id: str, fn: Any) -> Any:
            with DAG(
                dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
            ) as dag:
                DatumPipeline(
                    {
                        "pipeline": {"name": "shout"},
                        "input": {"pfs": {"repo": "words", "glob": "/*"}},
                        "transform": {"cmd": ["bash"], "stdin": ["true"]},
                        "parallelism_spec": {"constant": 2},
                    },
                    python_callable=fn,  # store=None: the datum_store_default connection
                )
            serialize_dag(dag)
            return dag

        with caplog.at_level(logging.DEBUG):
            ok = build("creds_ok", shout).test()
            store.create_repo("words", exist_ok=True)
            with store.start_commit("words", "master") as commit:
                commit.put_bytes("/bad.txt", b"bad")
            failed = build("creds_failed", fail_on_bad).test()  # the failure path logs more
        assert ok.state == "success"
        assert failed.state == "failed"
        assert store.read_bytes("shout", "master", "/a.txt") == b"WORD A.TXT"

        captured = capfd.readouterr()
        records = [(r.name, r.getMessage()) for r in caplog.records]
        everything = "\n".join(m for _, m in records) + captured.out + captured.err
        # botocore's DEBUG dump of each request shows the Authorization header, which names the
        # access key id (an identifier that AWS signs with, not the secret): only there may the
        # key appear.
        ours = "\n".join(m for n, m in records if not n.startswith(_SIGNING_LOGGERS))
        places: dict[str, str] = {"everything logged in-process (DEBUG)": everything}
        key_places: dict[str, str] = {"everything logged but botocore's request dumps": ours}
        for dag_id, run in (("creds_ok", ok), ("creds_failed", failed)):
            xcoms, rendered = _rows(dag_id, run.run_id)
            keys = {(task, key) for task, _, key, _ in xcoms}
            assert ("shout.create_datums", "return_value") in keys  # the SetRefs
            assert ("shout.create_datums", "job") in keys
            assert ("shout.process_datums", "return_value") in keys  # the summaries
            for task, index, xkey, value in xcoms:
                places[f"{dag_id} XCom {task}[{index}] {xkey}"] = value
            assert rendered  # every task's rendered template fields
            for i, row in enumerate(rendered):
                places[f"{dag_id} rendered fields #{i}"] = row
        objects = _bucket_objects(s3_server, s3_bucket)
        assert any(k.startswith("store/meta/") for k in objects)  # job and pipeline records
        for name, body in objects.items():
            places[f"s3://{s3_bucket}/{name}"] = body.decode("utf-8", errors="replace")

        assert [p for p, text in places.items() if secret in text] == []
        key_places.update((p, t) for p, t in places.items() if not p.startswith("everything"))
        assert [p for p, text in key_places.items() if key in text] == []
    finally:
        _drop_connections(conn_ids)
