"""The datum operators and ``DatumPipeline`` through ``dag.test()`` on a real metadata DB."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serialize_dag

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]


def upper(datum: Any) -> None:
    """Write the datum's input file upper-cased to /pfs/out (the issue's example callable)."""
    path = Path(datum.inputs["words"])
    (Path(datum.out) / path.name).write_text(path.read_text().upper())


def fail_on_bad(datum: Any) -> None:
    path = Path(datum.inputs["words"])
    if path.name == "bad.txt":
        raise RuntimeError("bad input")
    (Path(datum.out) / path.name).write_text(path.read_text().upper())


def same_path(datum: Any) -> None:
    (Path(datum.out) / "all.txt").write_text("x")


def _seed(url: str, files: dict[str, str]) -> None:
    from airflow_datum_provider.core.store import Store

    store = Store.open(url)
    store.create_repo("words", exist_ok=True)
    with store.start_commit("words", "master") as commit:
        for name, text in files.items():
            commit.put_bytes(f"/{name}", text.encode())


def _shout(dag_id: str, url: str, callable_: Any, parallelism: int = 4) -> Any:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False) as dag:
        DatumPipeline(
            {
                "pipeline": {"name": "shout"},
                "input": {"pfs": {"repo": "words", "glob": "/*"}},
                "transform": {"cmd": ["bash"], "stdin": ["true"]},
                "parallelism_spec": {"constant": parallelism},
            },
            store=url,
            python_callable=callable_,
        )
    serialize_dag(dag)
    return dag


def _xcoms(dag_id: str, run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(XComModel).filter_by(dag_id=dag_id, run_id=run_id, key="return_value")
        return {(x.task_id, x.map_index): x.value for x in rows}


def test_the_issue_example_runs_then_skips_unchanged(airflow_db: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {f"w{i}.txt": f"word {i}" for i in range(10)})
    dag = _shout("shout", url, upper)

    run = dag.test()
    assert run.state == "success"
    store = Store.open(url)
    assert store.read_bytes("shout", "master", "/w3.txt") == b"WORD 3"
    assert len(list(store.list_files("shout", "master", "/"))) == 10
    values = _xcoms("shout", run.run_id)
    refs = values[("shout.create_datums", -1)]
    assert 1 <= len(refs) <= 4  # never more sets than the parallelism
    assert sum(r["datums"] for r in refs) == 10
    job = values[("shout.merge_outputs", -1)]
    assert (job["state"], job["processed"], job["skipped"], job["total"]) == ("success", 10, 0, 10)
    summaries = [v for (task, _), v in values.items() if task == "shout.process_datums"]
    assert sum(s["download_bytes"] for s in summaries) == sum(len(f"word {i}") for i in range(10))
    assert sum(s["upload_bytes"] for s in summaries) == sum(len(f"WORD {i}") for i in range(10))
    assert {s["set"] for s in summaries} == {r["set"] for r in refs}

    from airflow.models import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        shown = {
            ti.rendered_map_index
            for ti in session.query(TaskInstance).filter_by(
                dag_id="shout", run_id=run.run_id, task_id="shout.process_datums"
            )
        }
    noun = {1: "datum"}
    assert shown == {
        f"set {r['set']} · {r['datums']} {noun.get(r['datums'], 'datums')}" for r in refs
    }

    _seed(url, {"w3.txt": "changed"})
    run = _shout("shout", url, upper).test()
    assert run.state == "success"
    job = _xcoms("shout", run.run_id)[("shout.merge_outputs", -1)]
    assert (job["processed"], job["skipped"], job["total"]) == (1, 9, 10)
    assert store.read_bytes("shout", "master", "/w3.txt") == b"CHANGED"
    assert store.read_bytes("shout", "master", "/w4.txt") == b"WORD 4"


def test_a_job_with_nothing_to_process_still_merges(airflow_db: Path, tmp_path: Path) -> None:
    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a"})
    assert _shout("shout_noop", url, upper).test().state == "success"
    run = _shout("shout_noop", url, upper).test()
    assert run.state == "success"
    values = _xcoms("shout_noop", run.run_id)
    assert values[("shout.create_datums", -1)] == []
    job = values[("shout.merge_outputs", -1)]
    assert (job["state"], job["processed"], job["skipped"]) == ("success", 0, 1)


def test_a_failed_datum_fails_the_merge_after_every_set_ran(
    airflow_db: Path, tmp_path: Path
) -> None:
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a", "bad.txt": "b", "c.txt": "c", "d.txt": "d"})
    run = _shout("shout_fail", url, fail_on_bad, parallelism=2).test()
    assert run.state == "failed"
    with create_session() as session:
        states = {
            (ti.task_id, ti.map_index): ti.state
            for ti in session.query(TaskInstance).filter_by(dag_id="shout_fail", run_id=run.run_id)
        }
    process = [s for (t, _), s in states.items() if t == "shout.process_datums"]
    assert process
    assert all(s == "success" for s in process)
    assert states[("shout.merge_outputs", -1)] == "failed"
    store = Store.open(url)
    assert list(store.list_commits("shout", "master")) == []  # the branch did not move
    job = JobRecords(store).jobs("shout")[0]
    assert job.state == "failure"
    assert job.reason.startswith("datum ")
    assert job.reason.endswith(" failed")
    assert job.processed == 3
    assert job.failed == 1


def test_two_datums_writing_one_path_fail_with_pachyderms_text(
    airflow_db: Path, tmp_path: Path
) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a", "b.txt": "b"})
    run = _shout("shout_collide", url, same_path).test()
    assert run.state == "failed"
    job = JobRecords(Store.open(url)).jobs("shout")[0]
    assert job.reason.startswith("duplicate path output by different datums (/all.txt from ")


def test_process_task_logs_one_line_per_datum_and_progress(
    airflow_db: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from airflow_datum_provider.core import plan_job, start_job
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.operators._progress import DatumLog

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a", "bad.txt": "b", "c.txt": "c"})
    dag = _shout("shout_logs", url, fail_on_bad, parallelism=1)
    assert dag.test().state == "failed"  # creates the pipeline; the next job re-runs bad.txt

    from airflow_datum_provider.core import run_set

    store = Store.open(url)
    plan = plan_job(store, start_job(store, "shout"), max_sets=1)
    (ref,) = plan.sets
    assert ref.datums == 3
    ticks = iter([0.0, 1.0, 6.0, 7.0, 8.0])
    logger = logging.getLogger("test.datumlog")
    log = DatumLog(logger, total=ref.datums, ref=ref, clock=lambda: next(ticks))
    with caplog.at_level(logging.INFO, logger="test.datumlog"):
        run_set(store, ref, python=fail_on_bad, on_datum=log.datum)
        log.done()
    lines = [r.getMessage() for r in caplog.records]
    datum_lines = [line for line in lines if line.startswith("datum ")]
    assert len(datum_lines) == 3
    assert sum(" success " in line for line in datum_lines) == 2
    (failed,) = [line for line in datum_lines if " failed " in line]
    assert "bad input" in failed
    assert any(line.startswith("  full log: datumctl logs -j shout@") for line in lines)
    # The clock reads 0 at the start, then 1, 6, 7 after each datum and 8 at the end: a
    # progress line is due after the second datum (6 - 0 >= 5) and at the end.
    progress = [line for line in lines if " datums · " in line]
    assert len(progress) == 2
    assert progress[0].startswith("2/3 datums · ")
    assert progress[1].startswith("3/3 datums · 1 failed · ")


def test_process_operator_runs_a_set_through_the_batch_executor(
    airflow_home: Path, tmp_path: Path
) -> None:
    from airflow_datum_provider.core import create_pipeline, plan_job, start_job
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.operators.datum import ProcessDatumsOperator

    url = str(tmp_path / "store")
    _seed(url, {f"w{i}.txt": f"w{i}" for i in range(6)})
    store = Store.open(url)
    spec = {
        "pipeline": {"name": "shout"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
    }
    create_pipeline(store, parse_spec(spec))
    plan = plan_job(store, start_job(store, "shout"), max_sets=1)
    (ref,) = plan.sets
    op = ProcessDatumsOperator(
        task_id="p",
        set_ref=ref.to_dict(),
        store=url,
        python_callable=upper,
        batch_config={"max_workers": 2},
    )
    summary = op.execute({})  # type: ignore[arg-type]
    assert (summary["set"], summary["success"], summary["failed"]) == (ref.set, 6, 0)
    with pytest.raises(ValueError, match="batch_config"):
        ProcessDatumsOperator(task_id="q", set_ref={}, batch_config={"max_workers": 0})


def test_kubernetes_runtime_wires_one_pod_per_set(airflow_home: Path) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.operators.kubernetes import DatumBatchingOperator

    spec = {
        "pipeline": {"name": "pods"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["python", "run.py"], "image": "example/run:1"},
    }
    with DAG("pods", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        group = DatumPipeline(spec, store="s3://bucket/store", runtime="kubernetes")
    assert group.process.operator_class is DatumBatchingOperator
    with pytest.raises(ValueError, match="runtime"):
        DatumPipeline(spec, runtime="docker")


def test_a_bad_spec_is_a_parse_time_error_naming_the_field(airflow_home: Path) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.core.errors import SpecError

    bad = {
        "pipeline": {"name": "bad"},
        "input": {"pfs": {"repo": "words", "glob": "/a/("}},
        "transform": {"cmd": ["true"]},
    }
    with (
        DAG("bad", schedule=None, start_date=pendulum.datetime(2026, 1, 1)),
        pytest.raises(SpecError, match=r"input\.pfs\.glob"),
    ):
        DatumPipeline(bad, store="/nonexistent/never/touched")
    assert not Path("/nonexistent/never/touched").exists()


def test_a_pipeline_behind_a_branch_not_taken_is_skipped_not_failed(
    airflow_db: Path, tmp_path: Path
) -> None:
    import pendulum
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.core.store import Store
    from tests.operators.test_run_options import _states

    url = str(tmp_path / "store")
    _seed(url, {"a.txt": "a"})
    with DAG(
        "behind_a_branch", schedule=None, start_date=pendulum.datetime(2026, 1, 1), catchup=False
    ) as dag:
        # Only the create task is skipped directly; the merge's trigger rule (none_failed)
        # lets it run, and it must see that there is no job rather than fail.
        gate = ShortCircuitOperator(
            task_id="gate", python_callable=lambda: False, ignore_downstream_trigger_rules=False
        )
        group = DatumPipeline(
            {
                "pipeline": {"name": "shout"},
                "input": {"pfs": {"repo": "words", "glob": "/*"}},
                "transform": {"cmd": ["bash"], "stdin": ["true"]},
            },
            store=url,
            python_callable=upper,
        )
        gate >> group
    serialize_dag(dag)
    run = dag.test()
    assert run.state == "success"
    states = _states("behind_a_branch", run.run_id)
    assert {states[f"shout.{t}"] for t in ("create_datums", "merge_outputs")} == {"skipped"}
    assert not Store.open(url).repo_exists("shout")  # nothing was created


SPEC = {
    "pipeline": {"name": "shout"},
    "input": {"pfs": {"repo": "words", "glob": "/*"}},
    "transform": {"cmd": ["true"]},
}


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"store": "s3://AKID:Sekr3t-7f3a9@bucket/store"}, "store URL s3://***@bucket/store: must"),
        ({"store": "ftp://host/x"}, "store URL ftp://host/x: protocol `ftp` is not supported"),
        ({"store": "s3://"}, "store URL s3://: needs a bucket"),
        ({"store": 42}, "store: expected a folder, a store URL"),
        ({"python_callable": "upper"}, "python_callable: expected a function of the datum"),
        ({"python_callable": 3}, "python_callable: expected a function of the datum"),
    ],
    ids=["user-info", "protocol", "no-bucket", "type", "bare-name", "not-callable"],
)
def test_a_bad_store_or_callable_is_a_parse_time_error(
    airflow_home: Path, kwargs: dict[str, Any], expected: str
) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline

    with (
        DAG("bad_args", schedule=None, start_date=pendulum.datetime(2026, 1, 1)),
        pytest.raises((ValueError, TypeError)) as caught,
    ):
        DatumPipeline(SPEC, **kwargs)
    text = str(caught.value)
    assert text.startswith(expected), text
    assert "\n" not in text
    assert "Sekr3t" not in text
    with DAG("good_args", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        DatumPipeline(SPEC, store="s3://bucket/store", python_callable="tests.mod:fn")


def test_bad_input_at_run_time_fails_the_task_in_one_line_without_retry(
    airflow_home: Path, tmp_path: Path
) -> None:
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    from airflow_datum_provider.operators.datum import (
        CreateDatumsOperator,
        MergeOutputsOperator,
        ProcessDatumsOperator,
    )

    url = str(tmp_path / "store")
    create = CreateDatumsOperator(task_id="c", pipeline="shout", spec=SPEC, store=url)
    with pytest.raises(AirflowFailException) as caught:  # the usual first mistake
        create.execute({})  # type: ignore[arg-type]
    assert str(caught.value) == "pipeline shout: input: repo 'words' not found"

    missing = CreateDatumsOperator(task_id="m", pipeline="nope", store=url)
    with pytest.raises(AirflowFailException, match=r"^pipeline 'nope' not found"):
        missing.execute({})  # type: ignore[arg-type]

    blocked = tmp_path / "file"
    blocked.write_text("a file, so no store folder can be made below it")
    process = ProcessDatumsOperator(
        task_id="p",
        set_ref={"pipeline": "shout", "job": "0" * 32, "set": 0},
        store=str(blocked / "s"),
    )
    with pytest.raises(AirflowException) as caught_os:  # OSError: one line, and Airflow retries
        process.execute({})  # type: ignore[arg-type]
    assert not isinstance(caught_os.value, AirflowFailException)
    assert str(caught_os.value).startswith(f"store {blocked / 's'}: [Errno 20] Not a directory")

    bad_ref = ProcessDatumsOperator(task_id="r", set_ref={"set": 0}, store=url)
    with pytest.raises(AirflowFailException, match=r"^set_ref: set ref .*needs pipeline, job"):
        bad_ref.execute({})  # type: ignore[arg-type]

    class _TI:
        def xcom_pull(self, **_: Any) -> dict[str, str]:
            return {"pipeline": "shout", "id": "f" * 32}

    merge = MergeOutputsOperator(task_id="g", pipeline="shout", create_task_id="c", store=url)
    with pytest.raises(AirflowFailException, match=r"^pipeline shout: job .*not found"):
        merge.execute({"ti": _TI()})  # type: ignore[arg-type]
