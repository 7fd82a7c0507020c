"""Per-datum cost through Airflow: a DatumPipeline vs a naive one-task-per-file DAG.

Run: ``.venv/bin/python benchmarks/bench_airflow.py [--quick] [--datums N] [--naive N]
[--big N] [--repeat R]``. Both DAGs run the same trivial transform (write one small file per
input file) through ``dag.test()`` on a fresh SQLite metadata DB in a temporary Airflow home,
side by side in this one run; figures are medians over ``--repeat`` runs. The naive DAG maps one
task instance per file (``@task`` + ``.expand``), so it cannot go past ``[core] max_map_length``
(1024); the datum DAG maps one task per datum set. ``--big`` runs the datum DAG once more at that
size in a child process and reports its time and peak RSS (``dag.test()`` runs every task in
that one process, so its peak RSS is the whole run's).

Before anything is timed, one small run of each DAG warms the process up: Airflow imports much
of itself lazily on the first ``dag.test()`` (seconds, more where ``PYTHONDONTWRITEBYTECODE``
keeps it compiling from source), and that one-off cost would otherwise land on whichever DAG
runs first. Figures are per item, whole ``dag.test()`` wall time included. Every timed run
starts after ``sync`` on a disk holding no earlier run's files (each is deleted after its run):
on a shared virtual disk, another run's pending writes otherwise land on whichever DAG is next.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _airflow_home(log_level: str = "WARNING") -> Path:
    """Point Airflow at a fresh temporary home (before it is first imported)."""
    home = Path(tempfile.mkdtemp(prefix="bench-airflow-"))
    (home / "dags").mkdir()
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="True",
        AIRFLOW__LOGGING__LOGGING_LEVEL=log_level,
    )
    return home


def _init_db() -> None:
    from airflow.utils import db

    db.resetdb()


def _serialize(dag: Any) -> None:
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)


def touch(datum: Any) -> None:
    """The trivial transform: one small output file per input file."""
    for path in datum.inputs.values():
        (Path(datum.out) / f"{Path(path).name}.out").write_bytes(b"x")


def _seed(store_url: str, n: int) -> None:
    from airflow_datum_provider.core.store import Store

    store = Store.open(store_url)
    store.create_repo("files", exist_ok=True)
    with store.commit("files") as c:
        for i in range(n):
            c.put_bytes(f"/f{i:07d}", b"%d" % i)


def _datum_dag(dag_id: str, store_url: str) -> Any:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        DatumPipeline(
            {
                "pipeline": {"name": dag_id},
                "input": {"pfs": {"repo": "files", "glob": "/*"}},
                "transform": {"cmd": ["true"]},
                "parallelism_spec": {"constant": 4},
            },
            store=store_url,
            python_callable=touch,
        )
    return dag


def _naive_dag(dag_id: str, folder: Path, n: int) -> Any:
    import pendulum
    from airflow.sdk import DAG, task

    files = [str(folder / f"f{i:07d}") for i in range(n)]
    for name in files:
        Path(name).write_bytes(b"x")

    with DAG(dag_id, schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:

        @task
        def one(path: str) -> None:
            Path(path + ".out").write_bytes(b"x")

        one.expand(path=files)
    return dag


def _timed_test(dag: Any) -> float:
    _serialize(dag)
    os.sync()  # the disk's pending writes (the seed, the last run's clean-up) land untimed
    started = time.perf_counter()
    state = str(dag.test().state)
    took = time.perf_counter() - started
    if state != "success":
        raise SystemExit(f"{dag.dag_id}: DAG run ended {state}")
    return took


def _datum_run(n: int, tag: str) -> float:
    store = tempfile.mkdtemp(prefix="bench-store-")
    _seed(store, n)
    took = _timed_test(_datum_dag(f"datums_{tag}", store))
    from airflow_datum_provider.core.store import Store

    outputs = sum(1 for _ in Store.open(store).walk(f"datums_{tag}", "master"))
    shutil.rmtree(store)  # each run's store is new: none is left to slow the disk down
    if outputs != n:
        raise SystemExit(f"datums_{tag}: {outputs} outputs, expected {n}")
    return took


def _warm_up() -> None:
    """One tiny run of each DAG, untimed (see the module docstring)."""
    _datum_run(8, "warm")
    _timed_test(_naive_dag("naive_warm", Path(tempfile.mkdtemp(prefix="bench-naive-")), 2))


def _big(n: int) -> dict[str, float]:
    _airflow_home()
    _init_db()
    _warm_up()
    took = _datum_run(n, "big")
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"datums": n, "seconds": took, "peak_rss_mib": peak_kib / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2,000 datums vs 50 files, no big run")
    parser.add_argument("--datums", type=int, default=10_000)
    parser.add_argument("--naive", type=int, default=200)
    parser.add_argument("--big", type=int, default=100_000, help="0: skip")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="Airflow's logging level for both DAGs (INFO: every task-log line is written, "
        "one per datum for the datum DAG; dag.test() prints them to stdout)",
    )
    parser.add_argument("--child-big", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_big:
        print(json.dumps(_big(args.child_big)))
        return
    if args.quick:
        args.datums, args.naive, args.big = 2_000, 50, 0
    _airflow_home(args.log_level)
    _init_db()
    _warm_up()
    datum_times, naive_times = [], []
    for r in range(args.repeat):
        datum_times.append(_datum_run(args.datums, f"r{r}"))
        folder = Path(tempfile.mkdtemp(prefix="bench-naive-"))
        naive_times.append(_timed_test(_naive_dag(f"naive_r{r}", folder, args.naive)))
        shutil.rmtree(folder)
    per_datum = statistics.median(datum_times) / args.datums
    per_file = statistics.median(naive_times) / args.naive
    print(
        f"datum DAG  : {args.datums:>7,} datums in {statistics.median(datum_times):7.1f} s "
        f"= {per_datum * 1000:8.3f} ms/datum"
    )
    print(
        f"naive DAG  : {args.naive:>7,} files  in {statistics.median(naive_times):7.1f} s "
        f"= {per_file * 1000:8.3f} ms/file (one mapped task instance per file)"
    )
    print(f"ratio      : {per_file / per_datum:,.0f}x lower cost per datum (target >= 100x)")
    pairs = sorted((n / args.naive) / (d / args.datums) for d, n in zip(datum_times, naive_times))
    print(f"per pair   : {', '.join(f'{r:.0f}x' for r in pairs)} (log level {args.log_level})")
    if args.big:
        out = (
            subprocess.run(
                [sys.executable, __file__, "--child-big", str(args.big)],
                check=True,
                capture_output=True,
                text=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        big = json.loads(out)
        print(
            f"big run    : {big['datums']:>7,} datums in {big['seconds']:7.1f} s, "
            f"peak RSS {big['peak_rss_mib']:.0f} MiB (one process: dag.test runs every task); "
            f"the naive DAG cannot map more than [core] max_map_length = 1024 tasks"
        )


if __name__ == "__main__":
    main()
