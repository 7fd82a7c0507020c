"""Run options (``reprocess``, ``pin``, ``dry_run``): the trigger form's Params and their checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.store import Store
from airflow_datum_provider.run_options import RunOptions
from tests.conftest import serialize_dag

pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(str(tmp_path / "store"))
    s.create_repo("words")
    with s.commit("words") as c:
        c.put_bytes("/a", b"a")
    return s


def test_parse_and_check(store: Store) -> None:
    head = store.branch_head("words", "master")
    assert head is not None
    opts = RunOptions.parse({"reprocess": True, "pin": {"words": head}})
    assert (opts.reprocess, opts.pins, opts.dry_run) == (True, {"words": head}, False)
    opts.check(store, "shout", [("words", "master")])
    assert RunOptions.parse(None) == RunOptions()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"reprocess": "yes"}, "run option reprocess: must be true or false, got 'yes'"),
        ({"pin": ["words"]}, "run option pin: must be"),
        ({"pin": {"words": ""}}, "run option pin: 'words': the commit must be a non-empty"),
    ],
)
def test_bad_shapes_are_one_line(raw: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunOptions.parse(raw)


def test_bad_pins_name_the_repo_or_commit(store: Store) -> None:
    with pytest.raises(ValueError) as info:
        RunOptions.parse({"pin": {"nope": "abc"}}).check(store, "shout", [("words", "master")])
    assert str(info.value) == "pin: repo 'nope' is not an input of pipeline 'shout' (inputs: words)"
    missing = "0" * 32
    with pytest.raises(ValueError) as info:
        RunOptions.parse({"pin": {"words": missing}}).check(store, "shout", [("words", "master")])
    assert str(info.value) == f"pin: commit '{missing}' does not exist in repo 'words'"


def test_params_in_the_form_and_conf_through_dag_test(airflow_db: Path, store: Store) -> None:
    import pendulum
    from airflow.sdk import DAG, task

    from airflow_datum_provider.run_options import run_params

    head = store.branch_head("words", "master")
    with DAG(
        "run_options",
        schedule=None,
        start_date=pendulum.datetime(2026, 1, 1),
        catchup=False,
        params=run_params(),
    ) as dag:

        @task
        def create(**context: Any) -> dict[str, Any]:
            opts = RunOptions.from_context(context)
            opts.check(store, "shout", [("words", "master")])
            return {"reprocess": opts.reprocess, "pin": opts.pins, "dry_run": opts.dry_run}

        create()

    params = dag.params
    assert {k: params.get_param(k).description for k in ("reprocess", "pin", "dry_run")}
    serialize_dag(dag)
    run = dag.test(run_conf={"pin": {"words": head}, "dry_run": True})
    assert run.state == "success"

    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (row,) = session.query(XComModel).filter_by(
            dag_id="run_options", run_id=run.run_id, key="return_value"
        )
        assert row.value == {"reprocess": False, "pin": {"words": head}, "dry_run": True}
