"""plan_job memory and time at many datums (issue 8 §6): peak RSS of the planning process.

Run: ``.venv/bin/python benchmarks/bench_plan_job.py [--datums N ...]`` (default 100000 and
1000000). The store (one file per datum, glob ``/*``) is built once per size; the plan runs in
a fresh child process, which reports its peak RSS before and after ``plan_job``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_datum_provider.core import create_pipeline, start_job  # noqa: E402
from airflow_datum_provider.core.spec import parse_spec  # noqa: E402
from airflow_datum_provider.core.store import Store  # noqa: E402

CHILD = """
import json, sys, time
from airflow_datum_provider.core import plan_job
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.store import Store
store = Store.open(sys.argv[1])
job = JobRecords(store).job("p", sys.argv[2])
def hwm():  # VmHWM: this process's peak RSS (ru_maxrss survives exec, VmHWM does not)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
before = hwm()
start = time.perf_counter()
plan = plan_job(store, job)
elapsed = time.perf_counter() - start
after = hwm()
print(json.dumps({"before_kib": before, "after_kib": after, "seconds": elapsed,
                  "sets": len(plan.sets), "total": plan.job.total}))
"""


def build(n: int) -> tuple[str, str]:
    store = Store.open(tempfile.mkdtemp(prefix="bench-plan-job-"))
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(n):
            c.put_bytes(f"/f{i:07d}", b"x")
    spec = {
        "pipeline": {"name": "p"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
    }
    create_pipeline(store, parse_spec(spec))
    return store.url, start_job(store, "p").id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--datums", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args()
    for n in args.datums:
        t0 = time.perf_counter()
        url, job = build(n)
        built = time.perf_counter() - t0
        out = subprocess.run(
            [sys.executable, "-c", CHILD, url, job],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        r = json.loads(out.stdout)
        grown = (r["after_kib"] - r["before_kib"]) / 1024
        print(
            f"{n:>9} datums: plan_job {r['seconds']:.1f} s, peak RSS {r['after_kib'] / 1024:.0f}"
            f" MiB (+{grown:.0f} MiB over the process before planning; "
            f"{grown * 1024 * 1024 / n:.0f} B/datum), {r['sets']} sets; store built in "
            f"{built:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    main()
