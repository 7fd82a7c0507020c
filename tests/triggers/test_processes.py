"""Real Airflow processes: AssetWatcher(CommitTrigger) runs, chained pipelines, triggerer restart.

One Airflow home and one PostgreSQL database for the module: ``airflow api-server`` (the
execution API the LocalExecutor's tasks talk to), ``airflow scheduler``, ``airflow
dag-processor`` and ``airflow triggerer``, each started here and stopped by its PID. Commits are
made with the real ``datumctl put file``. Every wait is bounded; nothing depends on speed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests._ports import free_port as _free_port

pytestmark = [pytest.mark.slow, pytest.mark.airflow]

PG = "postgresql://postgres@127.0.0.1:5432/postgres"
BIN = Path(sys.executable).parent
WAIT = 420.0  # seconds; generous: CI shares two cores among many processes

DAGS = '''
"""DAGs for the process tests (written by the test)."""
from __future__ import annotations

import os

import pendulum
from airflow.sdk import DAG, AssetWatcher, task

from airflow_datum_provider.assets import DatumAsset, commit_from_events, emit_commit_event
from airflow_datum_provider.triggers.commit import CommitTrigger

STORE = {store!r}
RECORDS = {records!r}
START = pendulum.datetime(2026, 1, 1)


def record(name, line):
    with open(os.path.join(RECORDS, name), "a") as fh:
        fh.write(line + "\\n")


def watched(repo):
    trigger = CommitTrigger(repo=repo, store=STORE, poll_interval=1)
    return DatumAsset(repo, watchers=[AssetWatcher(name=f"{{repo}}_watcher", trigger=trigger)])


with DAG("on_words", schedule=[watched("words")], start_date=START, catchup=False):

    @task
    def take(**context):
        commit = commit_from_events(context["triggering_asset_events"], "words")
        record("on_words", commit)

    take()


def run_pipeline_task(spec, input_repo, context):
    from airflow_datum_provider.core.engine import run_pipeline
    from airflow_datum_provider.core.pipelines import create_pipeline
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store

    store = Store.open(STORE)
    pinned = commit_from_events(context["triggering_asset_events"], input_repo)
    head = store.branch_head(input_repo, "master")
    assert pinned == head, (pinned, head)
    name = spec["pipeline"]["name"]
    create_pipeline(store, parse_spec(spec), update=store.repo_exists(name))
    job = run_pipeline(store, name, parallelism=1, executor="inline")
    assert job.state == "success", job.reason
    emit_commit_event(
        context, name, "master", job.output_commit, job_id=job.id,
        counters={{"processed": job.processed, "skipped": job.skipped, "total": job.total}},
    )
    record("chain", f"{{name}} {{pinned}} {{job.output_commit}}")


UPPER = {{
    "pipeline": {{"name": "upper"}},
    "input": {{"pfs": {{"repo": "letters", "glob": "/*"}}}},
    "transform": {{"cmd": ["bash", "-c", "tr a-z A-Z < $letters > /pfs/out/$(basename $letters)"]}},
}}
TOTAL = {{
    "pipeline": {{"name": "total"}},
    "input": {{"pfs": {{"repo": "upper", "glob": "/"}}}},
    "transform": {{"cmd": ["bash", "-c", "cat /pfs/upper/* | tr -d '\\\\n' > /pfs/out/all"]}},
}}

with DAG("upper", schedule=[watched("letters")], start_date=START, catchup=False):

    @task(outlets=[DatumAsset("upper")])
    def run_upper(**context):
        run_pipeline_task(UPPER, "letters", context)

    run_upper()

with DAG("total", schedule=[DatumAsset("upper")], start_date=START, catchup=False):

    @task(outlets=[DatumAsset("total")])
    def run_total(**context):
        run_pipeline_task(TOTAL, "upper", context)

    run_total()
'''


def _wait(what: str, check: Callable[[], Any], timeout: float = WAIT, every: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


@dataclass
class Cluster:
    home: Path
    store: str
    records: Path
    env: dict[str, str]
    db_url: str
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *args: str) -> None:
        log = open(self.home / f"{name}.log", "ab")  # noqa: SIM115 - closed with the process
        self.procs[name] = subprocess.Popen(
            [str(BIN / "airflow"), *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped with every child
        )
        log.close()

    def boot(self, port: int, *more: str) -> None:
        """Migrate the database, start api-server, dag-processor, scheduler and ``more``
        (e.g. ``triggerer``), and wait until the api-server answers its health check."""
        migrate = subprocess.run(
            [str(BIN / "airflow"), "db", "migrate"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert migrate.returncode == 0, (migrate.stdout + migrate.stderr)[-3000:]
        self.start("api-server", "api-server", "--port", str(port))
        for name in ("dag-processor", "scheduler", *more):
            self.start(name, name)

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5
                ) as resp:
                    return bool(resp.status == 200)
            except OSError:
                return False

        _wait("the api-server", healthy)

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)

    def stop_all(self) -> None:
        """Stop every process by PID, then check nothing with this Airflow home is left.

        That covers what the three started themselves: LocalExecutor workers, task
        supervisors and task processes, api-server workers, the DAG processor's parsers.
        """
        for name in list(self.procs):
            self.stop(name)
        try:
            _wait("every process of the stack to exit", lambda: not processes_of(self.home), 120)
        except AssertionError:
            raise AssertionError(f"still running: {processes_of(self.home)}") from None

    def put(self, repo: str, path: str, text: str) -> str:
        source = self.home / "upload.txt"
        source.write_text(text)
        subprocess.run(
            [
                str(BIN / "datumctl"),
                "--store",
                self.store,
                "put",
                "file",
                f"{repo}@master:{path}",
                "-f",
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=120,
            env=self.env,
        )
        from airflow_datum_provider.core.store import Store

        head = Store.open(self.store).branch_head(repo, "master")
        assert head is not None
        return head

    def lines(self, name: str) -> list[str]:
        path = self.records / name
        return path.read_text().splitlines() if path.exists() else []

    def runs(self, dag_id: str) -> list[tuple[str, str, Any, Any]]:
        import psycopg

        with psycopg.connect(self.db_url) as conn:
            rows = conn.execute(
                "select run_id, state, start_date, end_date from dag_run where dag_id = %s "
                "order by start_date nulls last",
                (dag_id,),
            ).fetchall()
        return [tuple(r) for r in rows]

    def task_times(self, dag_id: str) -> list[tuple[Any, Any]]:
        import psycopg

        with psycopg.connect(self.db_url) as conn:
            rows = conn.execute(
                "select start_date, end_date from task_instance where dag_id = %s",
                (dag_id,),
            ).fetchall()
        return [tuple(r) for r in rows]

    def done_runs(self, dag_id: str, count: int) -> list[Any] | None:
        runs = self.runs(dag_id)
        failed = [r for r in runs if r[1] == "failed"]
        if failed:
            raise AssertionError(f"{dag_id}: failed runs {failed}; logs in {self.home}")
        ok = [r for r in runs if r[1] == "success"]
        return ok if len(ok) >= count else None


def processes_of(home: Path) -> list[str]:
    """Live processes (not zombies) whose environment has ``AIRFLOW_HOME=<home>``."""
    needle = f"AIRFLOW_HOME={home}".encode()
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
            status = (proc / "status").read_text()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        if needle in environ.split(b"\0") and "State:\tZ" not in status:
            found.append(f"{proc.name} {cmdline[:120]}")
    return found


def airflow_env(home: Path, db: str, port: int, store: str) -> dict[str, str]:
    """The environment of Airflow's processes: LocalExecutor, PostgreSQL ``db``, fast loops."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}",
            # Airflow derives an asyncpg URL otherwise; psycopg 3 serves both.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": (
                f"postgresql+psycopg_async://postgres@127.0.0.1:5432/{db}"
            ),
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": uuid.uuid4().hex,
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "1",
            "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            # Own log-server ports: two stacks on one machine must not fight over 8793/8794.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(_free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(_free_port()),
            "DATUM_STORE": store,
        }
    )
    return env


def _postgres_or_skip() -> str:
    psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed")
    name = f"datum_trg_{uuid.uuid4().hex[:12]}"
    try:
        with psycopg.connect(PG, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'create database "{name}"')
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 is not usable ({exc})".splitlines()[0])
    return name


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Airflow's four processes on a temporary home and a fresh PostgreSQL database."""
    db = _postgres_or_skip()  # skips first, where psycopg or PostgreSQL is missing
    import psycopg

    home = tmp_path_factory.mktemp("airflow_procs")
    (home / "dags").mkdir()
    records = home / "records"
    records.mkdir()
    store = str(home / "store")
    port = _free_port()
    db_url = f"postgresql://postgres@127.0.0.1:5432/{db}"
    env = airflow_env(home, db, port, store)
    (home / "dags" / "datum_chain.py").write_text(
        textwrap.dedent(DAGS.format(store=store, records=str(records)))
    )
    c = Cluster(home=home, store=store, records=records, env=env, db_url=db_url)
    try:
        from airflow_datum_provider.core.store import Store

        s = Store.open(store)
        for repo in ("words", "letters"):
            s.create_repo(repo)
        c.boot(port, "triggerer")

        def watchers_running() -> bool:
            with psycopg.connect(db_url) as conn:
                rows = conn.execute(
                    "select count(*) from trigger where triggerer_id is not null"
                ).fetchone()
            return bool(rows and rows[0] >= 2)

        _wait("both asset watchers to run in the triggerer", watchers_running)
        yield c
    finally:
        try:
            c.stop_all()
        finally:
            with contextlib.suppress(Exception), psycopg.connect(PG, autocommit=True) as conn:
                conn.execute(f'drop database if exists "{db}" with (force)')


def test_a_commit_from_datumctl_starts_exactly_one_run_also_across_a_triggerer_kill(
    cluster: Cluster,
) -> None:
    first = cluster.put("words", "/a.txt", "a")
    _wait("the run for the first commit", lambda: cluster.done_runs("on_words", 1))
    assert cluster.lines("on_words") == [first]

    # Kill the triggerer hard; a commit lands while it is down; a new triggerer takes over.
    cluster.stop("triggerer", signal.SIGKILL)
    second = cluster.put("words", "/b.txt", "b")
    cluster.start("triggerer", "triggerer")
    _wait("the run for the second commit", lambda: cluster.done_runs("on_words", 2))
    # A third commit proves the watcher is alive and flushes out any late duplicate.
    third = cluster.put("words", "/c.txt", "c")
    _wait("the run for the third commit", lambda: cluster.done_runs("on_words", 3))
    assert cluster.lines("on_words") == [first, second, third]
    assert len(cluster.runs("on_words")) == 3


def test_two_chained_pipelines_run_in_order_with_the_right_output(cluster: Cluster) -> None:
    from airflow_datum_provider.core.store import Store

    cluster.put("letters", "/x.txt", "hello")
    _wait("the downstream pipeline's run", lambda: cluster.done_runs("total", 1))
    assert cluster.done_runs("upper", 1) is not None
    (upper_task,) = cluster.task_times("upper")
    (total_task,) = cluster.task_times("total")
    assert upper_task[1] <= total_task[0]  # upper's task ended before total's started
    store = Store.open(cluster.store)
    assert store.read_bytes("upper", "master", "/x.txt") == b"HELLO"
    assert store.read_bytes("total", "master", "/all") == b"HELLO"
    chain = [line.split() for line in cluster.lines("chain")]
    assert [c[0] for c in chain] == ["upper", "total"]
    # total was pinned to the commit upper's event named: upper's output commit.
    assert chain[1][1] == chain[0][2]
