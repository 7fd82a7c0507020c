"""CommitSensor through ``dag.test()`` on a real metadata DB: poke, reschedule and deferrable.

Each sensor's first look finds nothing; only then does a helper thread commit (so the waiting
path is really taken, whatever the machine's speed). The sensors run in one DAG (one run: each
``dag.test()`` costs several seconds), each on its own repo.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serialize_dag

MODES = ("poke", "reschedule", "deferrable")

# Airflow's in-process execution API (used by dag.test for reschedules) imports starlette's
# test client, which warns about its httpx dependency.
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def test_sensor_in_all_three_modes_returns_the_new_commit(airflow_db: Path, tmp_path: Path) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.sensors.commit import CommitSensor

    url = str(tmp_path / "store")
    store = Store.open(url)
    missed = {mode: threading.Event() for mode in MODES}
    resumed: list[str] = []
    for mode in MODES:
        store.create_repo(f"in_{mode}")

    class Probe(CommitSensor):
        """The real sensor, instrumented: says when a look found nothing, counts resumes."""

        def _claim(self, context: Any) -> Any:
            claim = super()._claim(context)
            if claim is None:
                missed[self.task_id].set()
            return claim

        def execute_complete(self, context: Any, event: dict[str, Any]) -> str:
            resumed.append(self.task_id)
            return super().execute_complete(context, event)

    with DAG(
        "sensor_modes", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
    ) as dag:
        tasks = [
            Probe(
                task_id=mode,
                repo=f"in_{mode}",
                store=url,
                poke_interval=0.2,
                timeout=240,
                mode="reschedule" if mode == "reschedule" else "poke",
                deferrable=mode == "deferrable",
            )
            for mode in MODES
        ]
        tasks[0] >> tasks[1] >> tasks[2]

    commits: dict[str, str] = {}
    errors: list[BaseException] = []

    def commit_after_miss() -> None:
        try:
            for mode in MODES:
                assert missed[mode].wait(240), f"{mode} never looked"
                with store.commit(f"in_{mode}") as c:
                    c.put_bytes("/a.txt", mode.encode())
                head = store.branch_head(f"in_{mode}", "master")
                assert head is not None
                commits[mode] = head
        except BaseException as exc:
            errors.append(exc)

    helper = threading.Thread(target=commit_after_miss, daemon=True)
    helper.start()
    serialize_dag(dag)
    run = dag.test()
    helper.join(timeout=60)
    assert not errors
    assert run.state == "success"

    from airflow.models.taskreschedule import TaskReschedule
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id="sensor_modes", run_id=run.run_id).all()
        values = {(x.task_id, x.key): x.value for x in rows}
        reschedules = (
            session.query(TaskReschedule)
            .join(TaskReschedule.task_instance)
            .filter_by(dag_id="sensor_modes", task_id="reschedule")
            .count()
        )
    for mode in MODES:
        assert values[(mode, "return_value")] == commits[mode]
        claim = values[(mode, "claim")]
        assert claim["commits"] == [commits[mode]]
        assert claim["consumer"] == f"sensor_modes.{mode}"
        assert claim["by"] == f"sensor_modes/{run.run_id}"
    assert reschedules >= 1  # the reschedule sensor gave its slot back at least once
    assert resumed == ["deferrable"]  # the deferrable one resumed from its trigger


def test_deferrable_sensor_refuses_an_unserialisable_store(airflow_home: Path) -> None:
    from airflow_datum_provider.sensors.commit import CommitSensor

    with pytest.raises(ValueError, match="deferrable sensor needs a store URL string"):
        CommitSensor(task_id="w", repo="words", store=Path("/x"), deferrable=True)
    with pytest.raises(ValueError, match="repo name 'bad name' is invalid"):
        CommitSensor(task_id="w", repo="bad name")
