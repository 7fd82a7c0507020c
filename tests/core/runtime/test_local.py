"""Set executors: every kind runs every set once and gives the same output."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_datum_provider.core import create_pipeline, finish_job, plan_job, set_executor
from airflow_datum_provider.core.engine import run_pipeline
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.jobs.lifecycle import start_job
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store

COPY = 'for f in "$PFS_ROOT"/data/*; do cp "$f" "$PFS_ROOT/out/$(basename "$f").out"; done'


@pytest.fixture
def store(tmp_path: Path) -> Store:
    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(6):
            c.put_bytes(f"/f{i}", f"v{i}".encode())
    spec = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", COPY]},
        "datum_set_spec": {"number": 2},
    }
    create_pipeline(store, parse_spec(spec))
    return store


@pytest.mark.parametrize("kind", ["inline", "thread", "process"])
def test_every_executor_runs_each_set_once(store: Store, kind: str) -> None:
    plan = plan_job(store, start_job(store, "copy"))
    with set_executor(kind, store, workers=2) as executor:
        summaries = list(executor.map(plan.sets))
    assert sorted(s.set for s in summaries) == [0, 1, 2]
    assert sum(s.success for s in summaries) == 6
    job = finish_job(store, plan.job)
    assert (job.state, job.processed) == ("success", 6)
    paths = sorted(e.path for e in store.walk("copy", "master"))
    assert paths == [f"/f{i}.out" for i in range(6)]


def test_run_pipeline_takes_an_executor(store: Store) -> None:
    job = run_pipeline(store, "copy", parallelism=2, executor="thread")
    assert (job.state, job.processed, job.sets) == ("success", 6, 3)


@pytest.mark.parametrize(
    ("kind", "workers", "message"),
    [
        ("pods", 1, "'pods' is not a set executor; use one of inline, thread, process"),
        ("thread", 0, "executor workers: 0 is not allowed; use 1 or more"),
    ],
    ids=["unknown-kind", "no-workers"],
)
def test_bad_executor_is_refused_in_one_line(
    store: Store, kind: str, workers: int, message: str
) -> None:
    with pytest.raises(PipelineError, match=message):
        set_executor(kind, store, workers=workers)


def test_a_new_set_scratch_survives_a_sibling_removing_the_job_folder(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sibling set that ends removes the job's folder once empty; a starting set remakes it."""
    import shutil
    import tempfile

    from airflow_datum_provider.core.runtime import local

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    job = start_job(store, "copy")
    real_mkdtemp = tempfile.mkdtemp
    removed: list[Path] = []

    def sibling_ends_first(*args: object, **kwargs: object) -> str:
        if len(removed) < 3:  # the job folder vanishes between mkdir and mkdtemp, three times
            folder = local.scratch_parent(job)
            shutil.rmtree(folder)
            removed.append(folder)
        return real_mkdtemp(*args, **kwargs)  # type: ignore[call-overload,no-any-return]

    monkeypatch.setattr(tempfile, "mkdtemp", sibling_ends_first)
    root = local.new_set_scratch(job, 3, 2)
    assert len(removed) == 3
    assert root.is_dir()
    assert root.parent == local.set_scratch_parent(job, 3)
    assert root.name.startswith("try2-")
