"""Run options (``reprocess``, ``pin``, ``dry_run``) through ``dag.test(run_conf=...)``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.operators.test_datum import _seed, _shout, _xcoms, upper

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


def _states(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance).filter_by(dag_id=dag_id, run_id=run_id)
        return {ti.task_id: ti.state for ti in rows if ti.map_index == -1}


def test_dry_run_reprocess_and_pin(airflow_db: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {f"w{i}.txt": f"word {i}" for i in range(3)})
    store = Store.open(url)
    first = store.branch_head("words", "master")
    dag = _shout("opts", url, upper)
    assert set(dag.params) >= {"reprocess", "pin", "dry_run"}  # the trigger form
    assert dag.test().state == "success"
    _seed(url, {"w1.txt": "changed"})
    out_head = store.branch_head("shout", "master")

    # dry_run: plans and reports the one changed datum, moves no branch.
    run = _shout("opts", url, upper).test(run_conf={"dry_run": True})
    assert run.state == "success"
    assert store.branch_head("shout", "master") == out_head
    assert store.list_open_commits("shout") == []
    values = _xcoms("opts", run.run_id)
    assert values[("shout.create_datums", -1)] == []
    merged = values[("shout.merge_outputs", -1)]
    assert (merged["state"], merged["reason"], merged["dry_run"]) == ("killed", "dry run", True)
    report = JobRecords(store).job("shout", merged["id"])
    assert (report.total, report.skipped) == (3, 2)
    assert store.read_bytes("shout", "master", "/w1.txt") == b"WORD 1"

    # reprocess: every datum runs again, although only one changed.
    run = _shout("opts", url, upper).test(run_conf={"reprocess": True})
    assert run.state == "success"
    job = _xcoms("opts", run.run_id)[("shout.merge_outputs", -1)]
    assert (job["processed"], job["skipped"], job["total"]) == (3, 0, 3)
    assert store.read_bytes("shout", "master", "/w1.txt") == b"CHANGED"

    # pin: runs against the first commit, not the head; recorded in the job's provenance.
    run = _shout("opts", url, upper).test(run_conf={"pin": {"words": first}})
    assert run.state == "success"
    job = _xcoms("opts", run.run_id)[("shout.merge_outputs", -1)]
    assert store.read_bytes("shout", "master", "/w1.txt") == b"WORD 1"
    assert JobRecords(store).job("shout", job["id"]).inputs == (f"words@master={first}",)
    provenance = store.inspect_commit("shout", job["output_commit"]).provenance
    assert f"words@{first}" in provenance


def test_a_bad_pin_fails_the_create_task(airflow_db: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a"})
    run = _shout("opts_bad", url, upper).test(run_conf={"pin": {"nope": "abc"}})
    assert run.state == "failed"
    states = _states("opts_bad", run.run_id)
    assert states["shout.create_datums"] == "failed"
    assert states["shout.merge_outputs"] != "success"
    store = Store.open(url)
    assert store.branch_head("shout", "master") is None
    assert store.list_open_commits("shout") == []


def test_start_job_pins_validate_with_one_line(tmp_path: Path) -> None:
    from airflow_datum_provider.core import create_pipeline, start_job
    from airflow_datum_provider.core.errors import PipelineError
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a"})
    store = Store.open(url)
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
    }
    create_pipeline(store, parse_spec(spec))
    with pytest.raises(
        PipelineError, match=r"^pin: repo 'nope' is not an input of pipeline 'p' \(inputs: words\)$"
    ):
        start_job(store, "p", pins={"nope": "x"})
    with pytest.raises(
        PipelineError, match=r"^pin: commit 'deadbeef' does not exist in repo 'words'$"
    ):
        start_job(store, "p", pins={"words": "deadbeef"})
    assert store.list_open_commits("p") == []  # nothing was started


def test_a_dry_run_of_chained_pipelines_changes_nothing_and_starts_nothing(
    airflow_db: Path, tmp_path: Path
) -> None:
    import pendulum
    from airflow.models.asset import AssetEvent
    from airflow.sdk import DAG
    from airflow.utils.session import create_session

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.core.store import Store
    from tests.conftest import serialize_dag

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a", "b.txt": "b"})

    def build() -> Any:
        with DAG(
            "opts_chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
        ) as dag:
            first = DatumPipeline(
                {
                    "pipeline": {"name": "shout"},
                    "input": {"pfs": {"repo": "words", "glob": "/*"}},
                    "transform": {"cmd": ["bash"], "stdin": ["true"]},
                },
                store=url,
                python_callable=upper,
            )
            second = DatumPipeline(
                {
                    "pipeline": {"name": "again"},
                    "input": {"pfs": {"repo": "shout", "glob": "/*"}},
                    "transform": {"cmd": ["bash"], "stdin": ["true"]},
                },
                store=url,
                python_callable=_copy,
            )
            first.merge >> second.create
        serialize_dag(dag)
        return dag

    assert build().test().state == "success"
    store = Store.open(url)
    heads = {repo: store.branch_head(repo, "master") for repo in ("shout", "again")}
    with create_session() as session:
        events = session.query(AssetEvent).count()
    _seed(url, {"a.txt": "changed"})

    run = build().test(run_conf={"dry_run": True})
    assert run.state == "success"
    states = _states("opts_chain", run.run_id)
    assert states["shout.merge_outputs"] == "skipped"
    # The downstream pipeline's input does not change in a dry run: its tasks are skipped.
    assert {states[f"again.{t}"] for t in ("create_datums", "merge_outputs")} == {"skipped"}
    assert {repo: store.branch_head(repo, "master") for repo in heads} == heads
    with create_session() as session:
        assert session.query(AssetEvent).count() == events  # no event starts another DAG


def _copy(datum: Any) -> None:
    path = Path(datum.inputs["shout"])
    (Path(datum.out) / path.name).write_bytes(path.read_bytes())
