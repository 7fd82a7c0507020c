"""docs/airflow.md "Run options": the DAG file and each ``--conf`` it shows, run as written.

The section's Python block is written to a file and imported as a DAG file would be; each
``airflow dags trigger shout --conf '<json>'`` line of its ``sh`` block becomes one
``dag.test(run_conf=<json>)`` (``<commit>`` replaced by a real commit of ``words``), and the
effects the table describes are checked. The one-line messages the section quotes are checked
against the product too, so the docs and the behaviour stay in sync.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import serialize_dag
from tests.operators.test_datum import _seed, _xcoms
from tests.operators.test_run_options import _states

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

DOC = Path(__file__).resolve().parents[2] / "docs" / "airflow.md"


def _section() -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index("## Run options (the trigger form)")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", _section(), re.S | re.M)


def _confs() -> list[dict[str, Any]]:
    (sh,) = _blocks("sh")
    confs = []
    for line in sh.splitlines():
        words = shlex.split(line)
        assert words[:4] == ["airflow", "dags", "trigger", "shout"], line
        assert words[4] == "--conf", line
        confs.append(json.loads(words[5]))
    return confs


def _load_dag(tmp_path: Path, name: str) -> Any:
    """Parse the section's DAG file with a ``DagBag``, as the DAG processor does."""
    from airflow.dag_processing.dagbag import DagBag

    (code,) = _blocks("python")
    folder = tmp_path / name
    folder.mkdir(exist_ok=True)
    (folder / "shout.py").write_text(code, encoding="utf-8")
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}
    dag = bag.dags["shout"]
    serialize_dag(dag)
    return dag


def _events(uri: str) -> int:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return (
            session.query(AssetEvent)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .filter(AssetModel.uri == uri)
            .count()
        )


def test_the_documented_conf_examples_do_what_the_table_says(
    airflow_db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from airflow_datum_provider.core.jobs.records import JobRecords
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    monkeypatch.setenv("DATUM_STORE", url)  # the doc's DAG names no store
    _seed(url, {"a.txt": "alpha", "b.txt": "beta"})
    store = Store.open(url)
    first = store.branch_head("words", "master")
    dag = _load_dag(tmp_path, "shout_doc_dag")
    assert dag.dag_id == "shout"
    assert {"reprocess", "pin", "dry_run"} <= set(dag.params)  # the trigger form
    assert dag.test().state == "success"
    _seed(url, {"a.txt": "changed"})
    out = store.branch_head("shout", "master")
    uri = "datum://shout@master"
    events = _events(uri)

    dry, reprocess, pin = _confs()
    assert dry == {"dry_run": True}
    assert reprocess == {"reprocess": True}
    assert pin == {"pin": {"words": "<commit>"}}

    # dry_run: a report, no branch moves, no Asset event (the merge is skipped).
    run = _load_dag(tmp_path, "shout_doc_dag").test(run_conf=dry)
    assert run.state == "success"
    states = _states("shout", run.run_id)
    assert states["shout.process_datums"] == "skipped"
    assert states["shout.merge_outputs"] == "skipped"
    values = _xcoms("shout", run.run_id)
    assert values[("shout.create_datums", -1)] == []
    merged = values[("shout.merge_outputs", -1)]
    assert (merged["state"], merged["reason"], merged["dry_run"]) == ("killed", "dry run", True)
    report = _dry_run_report(run.run_id)
    assert set(report) == {"job", "datums", "to_process", "skipped", "total", "sets"}
    assert (report["to_process"], report["skipped"], report["total"]) == (1, 1, 2)
    assert store.branch_head("shout", "master") == out
    assert store.list_open_commits("shout") == []
    assert _events(uri) == events

    # reprocess: nothing skipped; the output lands.
    run = _load_dag(tmp_path, "shout_doc_dag").test(run_conf=reprocess)
    assert run.state == "success"
    job = _xcoms("shout", run.run_id)[("shout.merge_outputs", -1)]
    assert (job["processed"], job["skipped"], job["total"]) == (2, 0, 2)
    assert store.read_bytes("shout", "master", "/a.txt") == b"CHANGED"
    assert _events(uri) == events + 1

    # pin: the first commit, not the head; named by the job's inputs and the provenance.
    conf = json.loads(json.dumps(pin).replace("<commit>", first))
    run = _load_dag(tmp_path, "shout_doc_dag").test(run_conf=conf)
    assert run.state == "success"
    job = _xcoms("shout", run.run_id)[("shout.merge_outputs", -1)]
    assert store.read_bytes("shout", "master", "/a.txt") == b"ALPHA"
    assert JobRecords(store).job("shout", job["id"]).inputs == (f"words@master={first}",)
    assert f"words@{first}" in store.inspect_commit("shout", job["output_commit"]).provenance


def _dry_run_report(run_id: str) -> dict[str, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        (row,) = session.query(XComModel).filter_by(
            dag_id="shout", run_id=run_id, task_id="shout.create_datums", key="dry_run"
        )
        value: dict[str, Any] = row.value
        return value


def _quoted(*starts: str) -> list[str]:
    """The section's quoted messages (``...``) that begin with one of ``starts``."""
    prose = re.sub(r"^```.*?^```", "", _section(), flags=re.S | re.M)  # no code blocks
    text = " ".join(prose.split())
    return [m for m in re.findall(r"`([^`]+)`", text) if m.startswith(starts)]


def test_the_documented_bad_values_fail_as_quoted(
    airflow_db: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    from airflow.exceptions import ParamValidationError

    from airflow_datum_provider.run_options import RunOptions

    url = str(tmp_path / "store")
    monkeypatch.setenv("DATUM_STORE", url)
    _seed(url, {"a.txt": "alpha"})
    quoted = _quoted("pin: ", "run option ")
    assert len(quoted) == 4, quoted

    for conf, message in (
        ({"pin": {"nope": "abc"}}, quoted[0]),
        ({"pin": {"words": "deadbeef"}}, quoted[1]),
    ):
        capfd.readouterr()
        run = _load_dag(tmp_path, "shout_doc_bad").test(run_conf=conf)
        assert run.state == "failed"
        assert _states("shout", run.run_id)["shout.create_datums"] == "failed"
        out, err = capfd.readouterr()  # the task log: dag.test() runs the task in-process
        assert message in out + err, message

    # A value of the wrong type: Airflow refuses the run (the Params declare the types) ...
    with pytest.raises(ParamValidationError):
        _load_dag(tmp_path, "shout_doc_bad").test(run_conf={"reprocess": "yes"})
    # ... and without the Params, the create task's parser refuses it with the quoted line.
    with pytest.raises(ValueError, match=f"^{re.escape(quoted[3])}$"):
        RunOptions.parse({"reprocess": "yes"})
    assert re.fullmatch(r"pin: commit '…' in repo 'words' is not finished", quoted[2])
