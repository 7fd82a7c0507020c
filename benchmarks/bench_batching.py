"""Datum batching benchmark: per-datum overhead, batching vs one process per datum.

Run: ``.venv/bin/python benchmarks/bench_batching.py [--datums N] [--repeat R] [--startup S]``.

Python user code with a simulated model load (``--startup``, default 200 ms) copies each input to
``out/``; ``--datums`` (default 100) datums in one datum set. Both jobs run side by side in this
one run, through the real engine (``run_pipeline``), real processes and the real socket
protocol; figures are medians over ``--repeat`` runs. Per-datum overhead is the job's wall time
over the datums minus the work itself (a file copy, negligible). The protocol's own round trip
is measured apart: the worker answers ``next_datum()`` calls of a real process with no layout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_datum_provider.core.datum import Datum, DatumInput  # noqa: E402
from airflow_datum_provider.core.engine import create_pipeline, run_pipeline  # noqa: E402
from airflow_datum_provider.core.spec import parse_spec  # noqa: E402
from airflow_datum_provider.core.store import Store  # noqa: E402

_BATCHED = """\
import os, shutil, time
time.sleep({startup})  # the model load
from airflow_datum_provider.core.worker.batching_client import batch_all_datums

@batch_all_datums
def datum():
    shutil.copy(os.environ["data"], os.environ["PFS_ROOT"] + "/out/")

datum()
"""

_PER_DATUM = """\
import os, shutil, time
time.sleep({startup})  # the model load, once per datum without batching
shutil.copy(os.environ["data"], os.environ["PFS_ROOT"] + "/out/")
"""


def _store(n: int) -> Store:
    store = Store.open(tempfile.mkdtemp(prefix="bench-batching-"))
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(n):
            c.put_bytes(f"/f{i:05d}", f"content {i}".encode())
    return store


def _job(store: Store, name: str, source: str, n: int, batching: bool) -> float:
    spec: dict[str, Any] = {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": [sys.executable, "-c", source], "datum_batching": batching},
        "datum_set_spec": {"number": n},
    }
    create_pipeline(store, parse_spec(spec))
    start = time.perf_counter()
    job = run_pipeline(store, name)
    elapsed = time.perf_counter() - start
    if job.state != "success" or job.processed != n:
        raise SystemExit(f"{name}: job {job.state} ({job.reason}), {job.processed}/{n}")
    return elapsed


_CLIENT = """\
import sys, time
from airflow_datum_provider.core.worker.batching_client import next_datum
next_datum()
while True:
    next_datum()
"""


def _round_trips(count: int) -> float:
    """Seconds per next-datum round trip (worker answers, process asks again), no layout."""
    from airflow_datum_provider.core.worker import JobContext, RunOptions
    from airflow_datum_provider.core.worker.batching import batching_runtime
    from airflow_datum_provider.core.worker.runtime import Run
    from airflow_datum_provider.core.worker.scratch import Scratch

    root = Path(tempfile.mkdtemp(prefix="bench-batching-rt-"))
    options = RunOptions(cmd=(sys.executable, "-c", _CLIENT), datum_batching=True)
    job = JobContext(job_id="bench", output_commit="c", pipeline="p")
    inp = DatumInput("data", "data", "master", "c" * 32, "/f", "h", 1)
    datum = Datum.of((inp,), "salt")
    from types import MappingProxyType

    scratch = Scratch(
        root=root,
        out=root / "out",
        inputs=MappingProxyType({}),
        download_bytes=0,
        linked=0,
        copied=0,
    )
    run = Run(kind="transform", datum=datum, attempt=1, tries=1, timeout=60, scratch=scratch)
    with batching_runtime(options, root=root, job=job) as runtime:
        if runtime.run(run) is not None:  # start-up and the first call, not timed
            raise SystemExit("round trip: the client failed")
        start = time.perf_counter()
        for _ in range(count):
            if runtime.run(run) is not None:
                raise SystemExit("round trip: the client failed")
        return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datums", type=int, default=100, help="datums per set (default 100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    parser.add_argument("--startup", type=float, default=0.2, help="model load seconds")
    parser.add_argument("--round-trips", type=int, default=2000, help="protocol round trips")
    args = parser.parse_args()
    n = args.datums
    batched: list[float] = []
    separate: list[float] = []
    trips: list[float] = []
    for r in range(args.repeat):
        store = _store(n)
        batched.append(_job(store, f"b{r}", _BATCHED.format(startup=args.startup), n, True))
        separate.append(_job(store, f"s{r}", _PER_DATUM.format(startup=args.startup), n, False))
        trips.append(_round_trips(args.round_trips))
    per_batched = statistics.median(batched) / n
    per_separate = statistics.median(separate) / n
    trip = statistics.median(trips)
    ratio = per_separate / per_batched
    print(f"{n} datums in one set, {args.startup * 1e3:.0f} ms start-up; medians of {args.repeat}")
    print(f"{'per-datum overhead, one process per datum':<48} {per_separate * 1e3:9.2f} ms")
    print(f"{'per-datum overhead, batching':<48} {per_batched * 1e3:9.2f} ms")
    verdict = "PASS" if ratio >= 20 else "FAIL"
    print(f"{'ratio (target >= 20x)':<48} {ratio:9.1f} x   {verdict}")
    verdict = "PASS" if trip <= 0.002 else "FAIL"
    print(f"{'protocol round trip per datum (target <= 2 ms)':<48} {trip * 1e3:9.3f} ms  {verdict}")


if __name__ == "__main__":
    main()
