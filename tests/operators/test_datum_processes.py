"""The datum operators in real processes: a SIGKILLed process task and its retry; a real scheduler.

The retry test runs ``ProcessDatumsOperator.execute`` in child processes, as an Airflow worker
would, kills the first one hard while a datum is blocked (deterministically: the callable waits
for a gate file nobody creates) and runs the same set again in a fresh process, as Airflow's
retry does. The scheduler test reuses the process infrastructure of
``tests/triggers/test_processes.py`` (api-server, scheduler, dag-processor, LocalExecutor on
PostgreSQL; every process stopped by its PID) and triggers a ``DatumPipeline`` DAG with
``airflow dags trigger``. Every wait is bounded; nothing depends on speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.triggers.test_processes import (
    BIN,
    PG,
    Cluster,
    _free_port,
    _postgres_or_skip,
    _wait,
    airflow_env,
    processes_of,
)

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

KILL_WAIT = 120.0  # seconds: bounded waits for a child process (CI shares two cores)

WORKER = '''
"""One Airflow attempt of a process task: ProcessDatumsOperator(...).execute({})."""
import json
import os
import sys
import time
from pathlib import Path

from airflow_datum_provider.operators.datum import ProcessDatumsOperator

store, ref, runs, block_at, gate, blocked = sys.argv[1:7]
started = 0


def shout(datum):
    global started
    started += 1
    path = Path(datum.inputs["words"])
    # Append-only, outside the scratch: one line per run of the datum, in any process.
    with open(Path(runs) / path.name, "a") as fh:
        fh.write(f"{os.getpid()}\\n")
    (Path(datum.out) / path.name).write_text(path.read_text().upper())
    if started == int(block_at):
        Path(blocked).write_text(path.name)
        while not Path(gate).exists():  # the test never creates it: killed here
            time.sleep(0.05)


operator = ProcessDatumsOperator(
    task_id="process_datums", set_ref=json.loads(ref), store=store, python_callable=shout
)
print(json.dumps(operator.execute({})))
'''


def _popen(args: list[str], log: Path, home: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update({"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    # A checkpoint part after every datum (the default batches 100 datums or 5 s): the test
    # counts that no datum finished before the kill runs again.
    env["DATUM_CHECKPOINT_DATUMS"] = "1"
    with open(log, "ab") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", WORKER, *args],
            env=env,
            stdout=fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed with every child
        )


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_WAIT)


def test_a_sigkilled_process_task_retried_runs_each_datum_once(tmp_path: Path) -> None:
    from airflow_datum_provider.core import create_pipeline, finish_job, plan_job, start_job
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    store = Store.open(url)
    store.create_repo("words")
    words = {f"w{i}.txt": f"word {i}" for i in range(6)}
    with store.start_commit("words", "master") as commit:
        for name, text in words.items():
            commit.put_bytes(f"/{name}", text.encode())
    spec = {
        "pipeline": {"name": "shout"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["bash"], "stdin": ["true"]},
    }
    create_pipeline(store, parse_spec(spec))
    plan = plan_job(store, start_job(store, "shout"), max_sets=1)
    (ref,) = plan.sets
    assert ref.datums == len(words)

    runs = tmp_path / "runs"  # outside every datum's scratch
    runs.mkdir()
    blocked = tmp_path / "blocked"
    gate = tmp_path / "gate-never-created"
    args = [url, json.dumps(ref.to_dict()), str(runs)]
    home = tmp_path / "airflow"  # the workers' own Airflow home: never the user's
    home.mkdir()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        first = _popen([*args, "3", str(gate), str(blocked)], tmp_path / "first.log", home)
        procs.append(first)

        def reached() -> bool:
            if first.poll() is not None:
                log = (tmp_path / "first.log").read_text()[-3000:]
                raise AssertionError(f"the first attempt ended ({first.returncode}): {log}")
            return blocked.exists() and bool(blocked.read_text())

        _wait("the third datum to block", reached, timeout=KILL_WAIT, every=0.1)
        blocked_name = blocked.read_text()
        finished_before = {p.name for p in runs.iterdir()} - {blocked_name}
        assert len(finished_before) == 2
        _kill(first)
        assert first.returncode == -signal.SIGKILL

        # The Airflow retry: the same operator, a fresh process; nothing blocks this time.
        retry = _popen(
            [*args, "0", str(gate), str(tmp_path / "unused")], tmp_path / "retry.log", home
        )
        procs.append(retry)
        retry.wait(timeout=KILL_WAIT)
        log = (tmp_path / "retry.log").read_text()
        assert retry.returncode == 0, log[-3000:]
        summary = json.loads(log.strip().splitlines()[-1])
        assert (summary["success"], summary["failed"]) == (len(words), 0)
    finally:
        for proc in procs:
            _kill(proc)
    # Nothing either attempt started outlives it (the killed one's user code included).
    _wait("the attempts' processes to exit", lambda: not processes_of(home), timeout=KILL_WAIT)

    counts = {p.name: len(p.read_text().splitlines()) for p in runs.iterdir()}
    # Datums finished before the kill did not run again; the killed one ran again; all once more.
    assert counts == {name: 2 if name == blocked_name else 1 for name in words}
    assert all(counts[name] == 1 for name in finished_before)

    job = finish_job(store, JobRecords(store).job("shout", ref.job))
    assert (job.state, job.reason) == ("success", "")
    assert (job.processed, job.failed, job.total) == (len(words), 0, len(words))
    files = sorted(f.path for f in store.list_files("shout", "master", "/"))
    assert files == sorted(f"/{name}" for name in words)
    for name, text in words.items():
        assert store.read_bytes("shout", "master", f"/{name}") == text.upper().encode()
    assert store.branch_head("shout", "master") == job.output_commit


PIPELINE_DAG = '''
"""A DatumPipeline DAG run by a real scheduler (written by the test)."""
from __future__ import annotations

import os
from pathlib import Path

import pendulum
from airflow.sdk import DAG

from airflow_datum_provider import DatumPipeline

STORE = {store!r}
RECORDS = {records!r}


def shout(datum):
    path = Path(datum.inputs["words"])
    with open(os.path.join(RECORDS, "pids"), "a") as fh:
        fh.write(f"{{os.getpid()}} {{path.name}}\\n")
    (Path(datum.out) / path.name).write_text(path.read_text().upper())


with DAG("shout_e2e", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False):
    DatumPipeline(
        {{
            "pipeline": {{"name": "shout"}},
            "input": {{"pfs": {{"repo": "words", "glob": "/*"}}}},
            "transform": {{"cmd": ["bash"], "stdin": ["true"]}},
            "parallelism_spec": {{"constant": 2}},
        }},
        store=STORE,
        python_callable=shout,
    )
'''


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """api-server, dag-processor and scheduler (LocalExecutor) on a fresh PostgreSQL database."""
    db = _postgres_or_skip()  # skips first, where psycopg or PostgreSQL is missing
    import psycopg

    home = tmp_path_factory.mktemp("airflow_pipeline_procs")
    (home / "dags").mkdir()
    records = home / "records"
    records.mkdir()
    store = str(home / "store")
    port = _free_port()
    db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = airflow_env(home, db, port, store)
    (home / "dags" / "shout_e2e.py").write_text(
        textwrap.dedent(PIPELINE_DAG.format(store=store, records=str(records)))
    )
    c = Cluster(home=home, store=store, records=records, env=env, db_url=db_url)
    try:
        c.boot(port)
        yield c
    finally:
        try:
            c.stop_all()
        finally:
            with contextlib.suppress(Exception), psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{db}" with (force)')


def test_a_datum_pipeline_dag_triggered_on_a_real_scheduler(scheduler: Cluster) -> None:
    import psycopg

    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    store = Store.open(scheduler.store)
    store.create_repo("words")
    words = {f"w{i}.txt": f"word {i}" for i in range(6)}
    with store.start_commit("words", "master") as commit:
        for name, text in words.items():
            commit.put_bytes(f"/{name}", text.encode())

    def parsed() -> bool:
        with psycopg.connect(scheduler.db_url) as conn:
            row = conn.execute(
                "select count(*) from serialized_dag where dag_id = 'shout_e2e'"
            ).fetchone()
        return bool(row and row[0])

    _wait("the dag-processor to parse the DAG", parsed)
    trigger = subprocess.run(
        [str(BIN / "airflow"), "dags", "trigger", "shout_e2e"],
        env=scheduler.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trigger.returncode == 0, (trigger.stdout + trigger.stderr)[-3000:]
    _wait("the DAG run to succeed", lambda: scheduler.done_runs("shout_e2e", 1))

    for name, text in words.items():
        assert store.read_bytes("shout", "master", f"/{name}") == text.upper().encode()
    assert len(list(store.list_files("shout", "master", "/"))) == len(words)
    (job,) = JobRecords(store).jobs("shout")
    assert (job.state, job.processed, job.skipped, job.failed, job.total) == (
        "success",
        len(words),
        0,
        0,
        len(words),
    )
    assert store.branch_head("shout", "master") == job.output_commit

    with psycopg.connect(scheduler.db_url) as conn:
        mapped = conn.execute(
            "select map_index, state from task_instance where dag_id = 'shout_e2e' "
            "and task_id = 'shout.process_datums' order by map_index"
        ).fetchall()
    assert [tuple(r) for r in mapped] == [(0, "success"), (1, "success")]
    # Each mapped task ran in its own worker process, as in production; every datum once.
    lines = [line.split() for line in scheduler.lines("pids")]
    assert sorted(name for _, name in lines) == sorted(words)
    assert len({pid for pid, _ in lines}) == 2
