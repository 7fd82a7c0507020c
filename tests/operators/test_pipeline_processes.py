"""``DatumPipeline`` DAGs on a real scheduler: a crashed merge retried, chaining pinned to events.

One Airflow home and one PostgreSQL database for the module: ``airflow api-server``, ``airflow
dag-processor`` and ``airflow scheduler`` (LocalExecutor, so every task runs in its own worker
process under Airflow's supervisor), each started here and stopped by its PID
(``tests/triggers/test_processes.py`` has the infrastructure).

- **Merge crash and retry.** The merge task's first try SIGKILLs itself at the core's
  ``before-land`` or ``after-land`` failpoint (``DATUM_FAILPOINT``, armed by an
  ``on_execute_callback`` on try 1 only, in the task's own process); Airflow's retry
  (``retries=1``) finishes the job: one output commit, a successful job with the right counters,
  the right files. Clearing the merge task again (a second retry) changes nothing. A failed job's
  merge fails without retry and, cleared, fails again with the branch where it was.
- **Chaining pinned to the event's commit.** An ingestion DAG commits C1 with
  ``PutFilesOperator`` (its Asset event names C1), then moves the branch on to C2 without an
  event. The DAG scheduled on ``DatumAsset("letters")`` waits (a task, bounded) until the branch
  has moved, then its ``DatumPipeline`` runs: the job processes C1, not the head. Its merge emits
  the output repo's event, and the next ``DatumPipeline`` DAG (scheduled on it) pins to exactly
  that output commit. (``dag.test()`` cannot carry Asset events: it always creates a new
  ``manual`` run, deleting any run at that logical date first, so the tasks'
  ``triggering_asset_events`` are empty; hence the real scheduler.)
- **Credentials** on an S3 store (moto) through connections in the metadata DB: the secret is in
  none of the worker processes' log files, Airflow's own process logs, XCom, rendered fields, or
  the bucket.

Every wait is bounded; nothing depends on speed.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.triggers.test_processes import (
    BIN,
    PG,
    Cluster,
    _free_port,
    _postgres_or_skip,
    _wait,
    airflow_env,
)

# The stack's start-up counts against the first test; a loaded 2-core machine is slow, not wrong.
pytestmark = [pytest.mark.slow, pytest.mark.airflow, pytest.mark.timeout(1200)]

DAGS = '''
"""DatumPipeline DAGs for the process tests (written by the test)."""
from __future__ import annotations

import os
import time
from datetime import timedelta
from pathlib import Path

import pendulum
from airflow.sdk import DAG, task

from airflow_datum_provider import DatumPipeline
from airflow_datum_provider.assets import DatumAsset, commit_from_events
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.operators.put_files import PutFilesOperator

STORE = "@STORE@"
RECORDS = "@RECORDS@"
START = pendulum.datetime(2026, 1, 1)


def record(name, line):
    with open(os.path.join(RECORDS, name), "a") as fh:
        fh.write(line + "\\n")


def shout(datum):
    path = Path(datum.inputs[next(iter(datum.inputs))])
    if path.name.startswith("bad"):
        raise RuntimeError("bad input")
    (Path(datum.out) / path.name).write_text(path.read_text().upper())


def spec(name, repo, glob="/*"):
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": repo, "glob": glob}},
        "transform": {"cmd": ["bash"], "stdin": ["true"]},
        "parallelism_spec": {"constant": 2},
    }


def arm(point):
    """Kill the merge's first try at ``point`` (the core failpoint), in the task's process."""

    def callback(context):
        try_number = context["ti"].try_number
        record(f"tries_{context['dag'].dag_id}", f"{context['run_id']} {try_number}")
        if try_number == 1:
            os.environ["DATUM_FAILPOINT"] = point
        else:
            os.environ.pop("DATUM_FAILPOINT", None)

    return callback


for dag_id, point in (("merge_before_land", "before-land"), ("merge_after_land", "after-land")):
    with DAG(dag_id, schedule=None, start_date=START, catchup=False):
        group = DatumPipeline(spec(dag_id, f"{dag_id}_in"), store=STORE, python_callable=shout)
        group.merge.retries = 1
        group.merge.retry_delay = timedelta(0)
        group.merge.on_execute_callback = [arm(point)]


# Chaining: C1 (with an event), then C2 (without); the pipeline must run on C1.
with DAG("ingest_letters", schedule=None, start_date=START, catchup=False):
    put = PutFilesOperator(
        task_id="put",
        repo="letters",
        files={"/a.txt": {"text": "alpha"}, "/b.txt": {"text": "beta"}},
        store=STORE,
    )

    @task
    def move_on(c1):
        store = Store.open(STORE)
        with store.start_commit("letters", "master") as commit:
            commit.put_bytes("/a.txt", b"changed after the event")
            commit.put_bytes("/c.txt", b"gamma")
        record("ingest", f"{c1} {store.branch_head('letters', 'master')}")

    move_on(put.output)


with DAG("upper_pinned", schedule=[DatumAsset("letters")], start_date=START, catchup=False):

    @task
    def wait_for_the_branch_to_move(**context):
        pinned = commit_from_events(context["triggering_asset_events"], "letters")
        store = Store.open(STORE)
        deadline = time.monotonic() + 300
        while store.branch_head("letters", "master") == pinned:
            if time.monotonic() > deadline:
                raise RuntimeError("letters never moved past the event's commit")
            time.sleep(0.2)
        record("gate", f"{pinned} {store.branch_head('letters', 'master')}")

    wait_for_the_branch_to_move() >> DatumPipeline(
        spec("upper", "letters"), store=STORE, python_callable=shout
    )


def concat(datum):
    root = Path(datum.inputs["upper"])
    text = "|".join(f"{p.name}={p.read_text()}" for p in sorted(root.iterdir()))
    (Path(datum.out) / "all.txt").write_text(text)


with DAG("total_chained", schedule=[DatumAsset("upper")], start_date=START, catchup=False):
    DatumPipeline(spec("total", "upper", glob="/"), store=STORE, python_callable=concat)


# Credentials: store=None, so the datum_store_default connection (added by the test).
with DAG("creds_procs", schedule=None, start_date=START, catchup=False):
    DatumPipeline(spec("secretive", "secret_words"), python_callable=shout)
'''


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """api-server, dag-processor and scheduler (LocalExecutor) on a fresh PostgreSQL database."""
    db = _postgres_or_skip()  # skips first, where psycopg or PostgreSQL is missing
    import psycopg

    home = tmp_path_factory.mktemp("airflow_pipeline_stack")
    (home / "dags").mkdir()
    records = home / "records"
    records.mkdir()
    store = str(home / "store")
    port = _free_port()
    db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = airflow_env(home, db, port, store)
    env.pop("DATUM_STORE")  # the credentials DAG must find its store through the connection
    dags = DAGS.replace("@STORE@", store).replace("@RECORDS@", str(records))
    (home / "dags" / "pipelines.py").write_text(textwrap.dedent(dags))
    c = Cluster(home=home, store=store, records=records, env=env, db_url=db_url)
    try:
        c.boot(port)
        wanted = {
            "merge_before_land",
            "merge_after_land",
            "ingest_letters",
            "upper_pinned",
            "total_chained",
            "creds_procs",
        }

        def parsed() -> bool:
            return wanted <= set(_query(c, "select dag_id from serialized_dag", row=False))

        _wait("the dag-processor to parse the DAGs", parsed)
        yield c
    finally:
        try:
            c.stop_all()
        finally:
            with contextlib.suppress(Exception), psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{db}" with (force)')


def _query(c: Cluster, sql: str, *args: Any, row: bool = True) -> list[Any]:
    import psycopg

    with psycopg.connect(c.db_url) as conn:
        rows = conn.execute(sql, args).fetchall()
    return [tuple(r) for r in rows] if row else [r[0] for r in rows]


def _airflow(c: Cluster, *args: str) -> str:
    done = subprocess.run(
        [str(BIN / "airflow"), *args], env=c.env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done.stdout


def _trigger(c: Cluster, dag_id: str) -> str:
    run_id = f"test_{uuid.uuid4().hex[:10]}"
    _airflow(c, "dags", "trigger", dag_id, "--run-id", run_id)
    return run_id


def _run_state(c: Cluster, dag_id: str, run_id: str) -> str | None:
    rows = _query(
        c, "select state from dag_run where dag_id = %s and run_id = %s", dag_id, run_id, row=False
    )
    return rows[0] if rows else None


def _ended(c: Cluster, dag_id: str, run_id: str) -> str:
    state = _wait(
        f"{dag_id} {run_id} to end",
        lambda: (s := _run_state(c, dag_id, run_id)) in ("success", "failed") and s,
    )
    return str(state)


def _ti(c: Cluster, dag_id: str, run_id: str, task_id: str) -> tuple[str, int]:
    ((state, try_number),) = _query(
        c,
        "select state, try_number from task_instance where dag_id = %s and run_id = %s "
        "and task_id = %s and map_index = -1",
        dag_id,
        run_id,
        task_id,
    )
    return state, try_number


def _try_is(c: Cluster, dag_id: str, run_id: str, task_id: str, n: int) -> Any:
    return lambda: _ti(c, dag_id, run_id, task_id)[1] == n


def _events(c: Cluster, uri: str) -> list[dict[str, Any]]:
    rows = _query(
        c,
        "select e.extra from asset_event e join asset a on a.id = e.asset_id "
        "where a.uri = %s order by e.timestamp",
        uri,
        row=False,
    )
    return [r if isinstance(r, dict) else json.loads(r) for r in rows]


def _seed(store: Any, repo: str, files: dict[str, str]) -> str:
    store.create_repo(repo, exist_ok=True)
    with store.start_commit(repo, "master") as commit:
        for name, text in files.items():
            commit.put_bytes(f"/{name}", text.encode())
    head: str = store.branch_head(repo, "master")
    return head


def _outputs(store: Any, repo: str) -> dict[str, bytes]:
    return {
        f.path: store.read_bytes(repo, "master", f.path)
        for f in store.list_files(repo, "master", "/")
    }


def test_a_merge_killed_before_or_after_landing_is_retried_once(stack: Cluster) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    store = Store.open(stack.store)
    words = {"a.txt": "alpha", "b.txt": "beta", "c.txt": "gamma"}
    pipelines = ("merge_before_land", "merge_after_land")
    for name in pipelines:
        _seed(store, f"{name}_in", words)
    runs = {name: _trigger(stack, name) for name in pipelines}  # both at once
    for name, run_id in runs.items():
        assert _ended(stack, name, run_id) == "success", f"{name}: logs in {stack.home}"

    merge = "merge_before_land.merge_outputs"
    jobs: dict[str, Any] = {}
    for name, run_id in runs.items():
        merge = f"{name}.merge_outputs"
        # The first try was SIGKILLed at the failpoint; Airflow's retry finished the job.
        assert _ti(stack, name, run_id, merge) == ("success", 2)
        assert stack.lines(f"tries_{name}") == [f"{run_id} 1", f"{run_id} 2"]
        history = _query(
            stack,
            "select try_number, state from task_instance_history where dag_id = %s "
            "and run_id = %s and task_id = %s",
            name,
            run_id,
            merge,
        )
        assert history == [(1, "failed")]  # the killed try, before Airflow retried it
        (job,) = JobRecords(store).jobs(name)
        assert (job.state, job.reason) == ("success", "")
        assert (job.processed, job.skipped, job.failed, job.recovered, job.total) == (
            3,
            0,
            0,
            0,
            3,
        )
        # Exactly one output commit, on the branch, holding each datum's file once.
        commits = [c.id for c in store.list_commits(name, "master")]
        assert commits == [job.output_commit]
        assert store.branch_head(name, "master") == job.output_commit
        assert store.list_open_commits(name) == []
        assert _outputs(store, name) == {f"/{k}": v.upper().encode() for k, v in words.items()}
        # One Asset event, from the successful try, naming the commit.
        (event,) = _events(stack, f"datum://{name}@master")
        assert (event["commit"], event["job_id"]) == (job.output_commit, job.id)
        assert event["counters"]["processed"] == 3
        jobs[name] = job

    # A second retry (the merge task cleared and run again) is a no-op.
    for name in pipelines:
        _airflow(stack, "tasks", "clear", name, "-t", f"{name}.merge_outputs", "-y")
    for name, run_id in runs.items():
        merge = f"{name}.merge_outputs"
        _wait(f"{name}'s cleared merge to run again", _try_is(stack, name, run_id, merge, 3))
        assert _ended(stack, name, run_id) == "success"
        assert _ti(stack, name, run_id, merge) == ("success", 3)
        (job,) = JobRecords(store).jobs(name)
        assert job == jobs[name]  # the record did not change
        assert [c.id for c in store.list_commits(name, "master")] == [job.output_commit]
        assert _outputs(store, name) == {f"/{k}": v.upper().encode() for k, v in words.items()}
        (xcom,) = _query(
            stack,
            "select value from xcom where dag_id = %s and run_id = %s and task_id = %s "
            "and key = 'return_value'",
            name,
            run_id,
            merge,
            row=False,
        )
        value = xcom if isinstance(xcom, dict) else json.loads(xcom)
        assert (value["state"], value["output_commit"]) == ("success", job.output_commit)
        # Events are at-least-once: the re-run merge names the same commit again (a downstream
        # job on a commit it already processed skips every datum).
        events = _events(stack, f"datum://{name}@master")
        assert [e["commit"] for e in events] == [job.output_commit] * 2

    # A failed job: the merge fails (no retry: it is the job's verdict, not a crash), and
    # cleared, it fails again; the branch stays where the last successful job left it.
    name = "merge_after_land"
    merge = f"{name}.merge_outputs"
    before = store.branch_head(name, "master")
    events_before = len(_events(stack, f"datum://{name}@master"))
    _seed(store, f"{name}_in", {"bad.txt": "boom", "a.txt": "changed"})
    run_id = _trigger(stack, name)
    assert _ended(stack, name, run_id) == "failed"
    assert _ti(stack, name, run_id, merge) == ("failed", 1)
    failed = [j for j in JobRecords(store).jobs(name) if j.id != jobs[name].id]
    assert len(failed) == 1
    (job,) = failed
    assert job.state == "failure"
    assert job.reason.startswith("datum ")
    assert job.reason.endswith(" failed")
    assert (job.processed, job.failed) == (1, 1)
    _airflow(stack, "tasks", "clear", name, "-t", f"{name}.merge_outputs", "-f", "-y")
    _wait("the failed merge to run again", _try_is(stack, name, run_id, merge, 2))
    assert _ended(stack, name, run_id) == "failed"
    assert _ti(stack, name, run_id, merge) == ("failed", 2)
    assert [j for j in JobRecords(store).jobs(name) if j.id != jobs[name].id] == [job]
    assert store.branch_head(name, "master") == before
    assert store.list_open_commits(name) == []
    assert _outputs(store, name) == {f"/{k}": v.upper().encode() for k, v in words.items()}
    assert len(_events(stack, f"datum://{name}@master")) == events_before  # no event


def test_chained_pipelines_run_on_the_commit_their_event_names(stack: Cluster) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    run_id = _trigger(stack, "ingest_letters")
    assert _ended(stack, "ingest_letters", run_id) == "success"
    ((c1, c2),) = [line.split() for line in stack.lines("ingest")]
    assert c1 != c2

    _wait("the upper pipeline's run", lambda: stack.done_runs("upper_pinned", 1))
    _wait("the total pipeline's run", lambda: stack.done_runs("total_chained", 1))
    assert stack.lines("gate") == [f"{c1} {c2}"]  # the branch had moved on before the job began

    store = Store.open(stack.store)
    assert store.branch_head("letters", "master") == c2
    (upper,) = JobRecords(store).jobs("upper")
    assert upper.state == "success"
    assert upper.inputs == (f"letters@master={c1}",)  # pinned from the event, not the head
    assert (upper.processed, upper.total) == (2, 2)
    assert _outputs(store, "upper") == {"/a.txt": b"ALPHA", "/b.txt": b"BETA"}
    assert f"letters@{c1}" in store.inspect_commit("upper", upper.output_commit).provenance

    (event,) = _events(stack, "datum://upper@master")  # the merge's outlet
    assert (event["commit"], event["job_id"]) == (upper.output_commit, upper.id)
    (total,) = JobRecords(store).jobs("total")
    assert total.state == "success"
    assert total.inputs == (f"upper@master={upper.output_commit}",)
    assert store.read_bytes("total", "master", "/all.txt") == b"a.txt=ALPHA|b.txt=BETA"
    assert len(stack.runs("upper_pinned")) == 1
    assert len(stack.runs("total_chained")) == 1

    # Events are at-least-once: upper's merge cleared and run again emits the same commit again;
    # total runs again, on that same commit, and skips its datum.
    _airflow(stack, "tasks", "clear", "upper_pinned", "-t", "upper.merge_outputs", "-y")
    _wait("total's second run", lambda: stack.done_runs("total_chained", 2))
    assert [e["commit"] for e in _events(stack, "datum://upper@master")] == [
        upper.output_commit
    ] * 2
    assert JobRecords(store).jobs("upper") == [upper]
    again = [j for j in JobRecords(store).jobs("total") if j.id != total.id]
    assert len(again) == 1
    assert again[0].inputs == total.inputs
    assert (again[0].state, again[0].processed, again[0].skipped) == ("success", 0, 1)
    assert store.read_bytes("total", "master", "/all.txt") == b"a.txt=ALPHA|b.txt=BETA"


def test_credentials_reach_no_worker_log_xcom_rendered_field_or_object(
    stack: Cluster, s3_server: str, s3_bucket: str
) -> None:
    import boto3

    key = f"AKIA{uuid.uuid4().hex[:16].upper()}"
    secret = f"s3cr3t-{uuid.uuid4().hex}"
    aws = {"endpoint_url": s3_server, "region_name": "us-east-1"}
    _airflow(
        stack,
        *("connections", "add", "aws_datums", "--conn-type", "aws"),
        *("--conn-login", key, "--conn-password", secret, "--conn-extra", json.dumps(aws)),
    )
    _airflow(
        stack,
        *("connections", "add", "datum_store_default", "--conn-type", "datum_store"),
        *("--conn-host", f"s3://{s3_bucket}/store"),
        *("--conn-extra", json.dumps({"conn_id": "aws_datums"})),
    )
    from airflow_datum_provider.core.store import Store

    seed = Store.open(
        f"s3://{s3_bucket}/store",
        storage_options={"endpoint_url": s3_server, "skip_instance_cache": True},
    )
    _seed(seed, "secret_words", {"a.txt": "alpha", "b.txt": "beta"})
    run_id = _trigger(stack, "creds_procs")
    assert _ended(stack, "creds_procs", run_id) == "success", f"logs in {stack.home}"
    assert seed.read_bytes("secretive", "master", "/a.txt") == b"ALPHA"

    places: dict[str, str] = {}
    logs = sorted(p for p in (stack.home / "logs").rglob("*") if p.is_file())
    task_logs = [p for p in logs if "dag_id=creds_procs" in str(p)]
    assert len(task_logs) >= 3  # create, each mapped process task, merge
    assert any("Opening datum store s3://" in p.read_text() for p in task_logs)
    for path in [*logs, *stack.home.glob("*.log")]:  # worker logs and Airflow's own
        places[str(path.relative_to(stack.home))] = path.read_text(errors="replace")
    for task, index, xkey, value in _query(
        stack,
        "select task_id, map_index, key, value::text from xcom where dag_id = 'creds_procs'",
    ):
        places[f"XCom {task}[{index}] {xkey}"] = str(value)
    rendered = _query(
        stack,
        "select task_id, rendered_fields::text from rendered_task_instance_fields "
        "where dag_id = 'creds_procs'",
    )
    assert rendered
    for task, fields in rendered:
        places[f"rendered fields {task}"] = str(fields)
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])]
    assert any(k.startswith("store/meta/") for k in keys)
    for name in keys:
        body = client.get_object(Bucket=s3_bucket, Key=name)["Body"].read()
        places[f"s3://{s3_bucket}/{name}"] = body.decode("utf-8", errors="replace")
    assert [p for p, text in places.items() if secret in text] == []
    assert [p for p, text in places.items() if key in text] == []
