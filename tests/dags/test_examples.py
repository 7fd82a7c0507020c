"""The example DAGs in ``dags/``: they import cleanly and each runs under ``dag.test()``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.airflow,
    pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`"),
]

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def bag(airflow_db: Path) -> Any:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=str(DAGS))
    DagBundlesManager().sync_bundles_to_db()
    sync_bag_to_db(bag, "dags-folder", None)
    return bag


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    monkeypatch.setenv("DATUM_STORE", url)
    return Store.open(url)


def _put(store: Any, repo: str, files: dict[str, str]) -> None:
    store.create_repo(repo, exist_ok=True)
    with store.start_commit(repo, "master") as commit:
        for name, text in files.items():
            commit.put_bytes(name, text.encode())


def _job(store: Any, pipeline: str) -> Any:
    from airflow_datum_provider.core.jobs.records import JobRecords

    return JobRecords(store).jobs(pipeline)[0]


def test_every_example_dag_imports(bag: Any) -> None:
    assert bag.import_errors == {}
    assert {"word_count", "incremental", "pachyderm_spec", "join", "task_datum"} <= set(bag.dags)
    for dag in bag.dags.values():
        assert dag.doc_md, f"{dag.dag_id} has no docstring"


def test_word_count(bag: Any, store: Any) -> None:
    _put(store, "texts", {"/a.txt": "the cat the hat", "/b.txt": "The dog"})
    assert bag.get_dag("word_count").test().state == "success"
    assert store.read_bytes("wc_counts", "master", "/a.txt.counts") == b"cat 1\nhat 1\nthe 2\n"
    assert store.read_bytes("wc_totals", "master", "/totals.txt") == (
        b"the 3\ncat 1\ndog 1\nhat 1\n"
    )
    _put(store, "texts", {"/c.txt": "cat"})
    assert bag.get_dag("word_count").test().state == "success"
    counts = _job(store, "wc_counts")
    assert (counts.processed, counts.skipped) == (1, 2)
    assert store.read_bytes("wc_totals", "master", "/totals.txt").startswith(b"the 3\ncat 2\n")


def test_incremental(bag: Any, store: Any) -> None:
    _put(store, "notes", {f"/n{i}.txt": f"note {i}" for i in range(5)})
    dag = bag.get_dag("incremental")
    assert dag.test().state == "success"
    job = _job(store, "loud_notes")
    assert (job.processed, job.skipped, job.total) == (5, 0, 5)
    _put(store, "notes", {"/n2.txt": "changed"})
    assert dag.test().state == "success"
    job = _job(store, "loud_notes")
    assert (job.processed, job.skipped, job.total) == (1, 4, 5)
    assert store.read_bytes("loud_notes", "master", "/n2.txt") == b"CHANGED"
    assert store.read_bytes("loud_notes", "master", "/n4.txt") == b"NOTE 4"


def test_pachyderm_spec_file(bag: Any, store: Any) -> None:
    _put(store, "lines", {"/one.txt": "abc\nxyz\n", "/two.txt": "hello\n"})
    assert bag.get_dag("pachyderm_spec").test().state == "success"
    assert store.read_bytes("reversed_lines", "master", "/one.txt") == b"cba\nzyx\n"
    assert store.read_bytes("reversed_lines", "master", "/two.txt") == b"olleh\n"


def test_join(bag: Any, store: Any) -> None:
    _put(store, "readings", {"/oslo.csv": "1 2", "/rome.csv": "3", "/lima.csv": "9"})
    _put(
        store,
        "parameters",
        {"/oslo.json": json.dumps({"factor": 10}), "/rome.json": json.dumps({"factor": 2})},
    )
    assert bag.get_dag("join").test().state == "success"
    files = sorted(f.path for f in store.list_files("calibrated", "master", "/"))
    assert files == ["/oslo.csv", "/rome.csv"]  # lima has no parameters: no datum
    assert store.read_bytes("calibrated", "master", "/oslo.csv") == b"10\n20\n"
    assert _job(store, "calibrated").total == 2


def test_task_datum_chain(bag: Any, store: Any) -> None:
    _put(store, "words", {"/a.txt": "hello world", "/b.txt": "xy"})
    assert bag.get_dag("task_datum").test().state == "success"
    assert store.read_bytes("title_case", "master", "/a.txt") == b"Hello World"
    assert store.read_bytes("letters", "master", "/a.txt") == b"10"
    assert store.read_bytes("letters", "master", "/b.txt") == b"2"


def test_make_airflow_seeds_every_example_dags_input(bag: Any, store: Any) -> None:
    """``make airflow``'s seeding step: every example DAG finds its input and has datums.

    The input repos of each DAG (those no pipeline of the same DAG writes) exist after the
    seeding, and planning each pipeline on them gives at least one datum (the join's stations
    match). ``dag.test()`` of each DAG runs above on data of its own.
    """
    from airflow_datum_provider.core.plan import list_datums, pin_inputs
    from airflow_datum_provider.core.spec import iter_pfs_inputs, parse_spec
    from airflow_datum_provider.demo import SEEDED_REPOS, seed_examples
    from airflow_datum_provider.operators.datum import CreateDatumsOperator

    _put(store, "notes", {"/mine.txt": "my own note"})  # a repo with data is left as it is
    seed_examples(store.url)
    heads = {repo: store.branch_head(repo, "master") for repo in SEEDED_REPOS}
    seed_examples(store.url)  # idempotent: nothing moves
    assert {repo: store.branch_head(repo, "master") for repo in SEEDED_REPOS} == heads
    assert [f.path for f in store.list_files("notes", "master", "/")] == ["/mine.txt"]

    needed = set()
    for dag in bag.dags.values():
        creates = [t for t in dag.tasks if isinstance(t, CreateDatumsOperator)]
        made = {t.pipeline for t in creates}
        assert creates, dag.dag_id
        for task in creates:
            spec = parse_spec(task.spec)
            repos = {leaf.repo for leaf in iter_pfs_inputs(spec.input)}
            if repos & made:
                continue  # reads a pipeline of the same DAG, which its run makes first
            needed |= repos
            pins = pin_inputs(store, spec.input, spec.name)
            datums = list(list_datums(store, spec.input, pins, pipeline=spec.name))
            assert datums, f"{dag.dag_id}: pipeline {spec.name} has no datum on the seeded data"
    assert needed == set(SEEDED_REPOS)
