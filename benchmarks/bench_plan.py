"""Planner benchmark: glob, cross, join and incremental diff at a million datums.

Usage: ``python benchmarks/bench_plan.py [--quick] [--runs N] [--store DIR]``

The store is built once (in a temporary folder unless ``--store`` names one that already holds
it). Every case then runs ``--runs`` times, each in a fresh Python process, so peak RSS
(``VmHWM`` read inside the child) belongs to that case alone. Medians are printed with the
target and PASS / MISS. ``--quick`` divides every size by 10 (by 100 for the million-file
commits) for a smoke run; targets apply to the full sizes only.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from airflow_datum_provider.core.incremental import SKIP, IndexRecord, diff_datums
from airflow_datum_provider.core.plan import list_datums
from airflow_datum_provider.core.spec import Input, cross, join, pfs, union
from airflow_datum_provider.core.store import Entry, Store

GB = 1 << 30


def sizes(quick: bool) -> dict[str, int]:
    if quick:
        return {"flat": 10_000, "dirs": 100, "per_dir": 100, "side": 1_000, "join": 10_000}
    return {"flat": 1_000_000, "dirs": 1_000, "per_dir": 1_000, "side": 1_000, "join": 100_000}


# --- building the store --------------------------------------------------------------------


def _blobs(store: Store) -> list[str]:
    """Sixteen real blobs (sizes 1..16 bytes), stored once through a side repo."""
    if not store.repo_exists("seeds"):
        store.create_repo("seeds")
        with store.start_commit("seeds") as commit:
            for i in range(16):
                commit.put_bytes(f"/{i:02d}", bytes([65 + i]) * (i + 1))
    return [e.hash for e in store.walk("seeds", "master")]


def _fill(store: Store, repo: str, paths: Any) -> int:
    """One commit of ``paths`` whose entries share the seed blobs (no data is copied)."""
    blobs = _blobs(store)
    store.create_repo(repo)
    commit = store.start_commit(repo)
    count = 0
    for i, path in enumerate(paths):
        n = i % 16
        commit.put_entry(Entry(path, blobs[n], n + 1))
        count += 1
    commit.finish()
    return count


def build(root: Path, n: dict[str, int]) -> None:
    marker = root / "built.json"
    if marker.exists() and json.loads(marker.read_text()) == n:
        return
    store = Store.open(str(root / "store"))
    start = time.perf_counter()
    _fill(store, "flat", (f"/f{i:07d}" for i in range(n["flat"])))
    _fill(
        store,
        "nested",
        (f"/d{d:04d}/f{f:04d}" for d in range(n["dirs"]) for f in range(n["per_dir"])),
    )
    _fill(store, "left", (f"/l{i:05d}" for i in range(n["side"])))
    _fill(store, "right", (f"/r{i:05d}" for i in range(n["side"])))
    _fill(store, "jl", (f"/k{i:07d}.txt" for i in range(n["join"])))
    _fill(store, "jr", (f"/k{i:07d}.csv" for i in range(n["join"])))
    print(f"built store in {time.perf_counter() - start:.1f} s", flush=True)
    marker.write_text(json.dumps(n))


# --- cases (run inside a child process) --------------------------------------------------


def _count(it: Any) -> int:
    count = 0
    for _ in it:
        count += 1
    return count


Timing = tuple[float, float, int]  # wall seconds, CPU seconds, datums


def _timed(work: Callable[[], int]) -> Timing:
    wall, cpu = time.perf_counter(), time.process_time()
    count = work()
    return time.perf_counter() - wall, time.process_time() - cpu, count


def _plan(store: Store, spec: Input) -> Timing:
    return _timed(lambda: _count(list_datums(store, spec, salt="s")))


def case_glob_flat(store: Store) -> Timing:
    return _plan(store, pfs("flat", "/*"))


def case_glob_nested(store: Store) -> Timing:
    return _plan(store, pfs("nested", "/*/*"))


def case_cross(store: Store) -> Timing:
    return _plan(store, cross(pfs("left", "/*"), pfs("right", "/*")))


def case_sides(store: Store) -> Timing:
    return _plan(store, union(pfs("left", "/*"), pfs("right", "/*")))


def case_join(store: Store) -> Timing:
    return _plan(
        store, join(pfs("jl", "/(*).txt", join_on="$1"), pfs("jr", "/(*).csv", join_on="$1"))
    )


def case_diff(store: Store) -> Timing:
    """Diff only: the new datums are planned first, the base index has 1% changed hashes."""
    datums = list(list_datums(store, pfs("flat", "/*"), salt="s"))
    base = {
        d.id: IndexRecord("changed" if i % 100 == 0 else d.hash, "success")
        for i, d in enumerate(datums)
    }

    def work() -> int:
        skipped = sum(1 for decision in diff_datums(datums, base) if decision.action == SKIP)
        assert skipped == len(datums) - len(range(0, len(datums), 100)), skipped
        return len(datums)

    return _timed(work)


CASES: dict[str, Callable[[Store], Timing]] = {
    "glob-flat": case_glob_flat,
    "glob-nested": case_glob_nested,
    "cross": case_cross,
    "sides": case_sides,
    "join": case_join,
    "diff": case_diff,
}


def peak_rss_bytes() -> int:
    """This process's peak RSS: ``VmHWM``, which exec resets (``ru_maxrss`` survives fork+exec,
    so a child of a large parent would report the parent's peak)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def child(case: str, store_dir: str) -> None:
    store = Store.open(store_dir)
    seconds, cpu, count = CASES[case](store)
    rss = peak_rss_bytes()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "count": count, "rss": rss}))


# --- driver --------------------------------------------------------------------------------


def run_case(case: str, store_dir: Path, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, __file__, "--child", case, "--store", str(store_dir)],
            capture_output=True,
            text=True,
        )
        if out.returncode:
            sys.exit(f"case {case} failed (exit {out.returncode}):\n{out.stderr}")
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "cpu": statistics.median(r["cpu"] for r in results),
        "count": results[0]["count"],
        "rss": statistics.median(r["rss"] for r in results),
    }


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (smoke run)")
    parser.add_argument("--runs", type=int, default=3, help="runs per case (median)")
    parser.add_argument("--store", help="folder for the benchmark store (kept between runs)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.store)
        return 0

    n = sizes(args.quick)
    with tempfile.TemporaryDirectory(prefix="bench_plan_") as tmp:
        root = Path(args.store) if args.store else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        build(root, n)
        store_dir = root / "store"
        r = {case: run_case(case, store_dir, args.runs) for case in CASES}

    full = not args.quick
    flat, nested, cr, sides, jn, df = (r[c] for c in CASES)
    rows: list[tuple[str, str, str, bool | None]] = [
        (
            f"glob /* over {n['flat']:,} files ({flat['count']:,} datums)",
            f"{flat['seconds']:.2f} s (CPU {flat['cpu']:.2f} s), peak RSS {flat['rss'] / 2**20:.0f} MiB",
            "<= 10 s and <= 1.5 GB",
            (flat["seconds"] <= 10 and flat["rss"] <= 1.5 * GB) if full else None,
        ),
        (
            f"glob /*/* over {n['dirs']:,} dirs x {n['per_dir']:,} files ({nested['count']:,})",
            f"{nested['seconds']:.2f} s (CPU {nested['cpu']:.2f} s), peak RSS {nested['rss'] / 2**20:.0f} MiB",
            "<= 10 s and <= 1.5 GB (same budget as /*)",
            (nested["seconds"] <= 10 and nested["rss"] <= 1.5 * GB) if full else None,
        ),
        (
            f"cross {n['side']:,} x {n['side']:,} ({cr['count']:,} datums)",
            f"{cr['seconds']:.2f} s (CPU {cr['cpu']:.2f} s), peak RSS {cr['rss'] / 2**20:.0f} MiB "
            f"vs {sides['rss'] / 2**20:.0f} MiB for {n['side']:,} + {n['side']:,} "
            f"({(cr['rss'] / sides['rss'] - 1) * 100:+.1f}%)",
            "RSS within 10% of the 1,000 + 1,000 case",
            cr["rss"] <= sides["rss"] * 1.10,
        ),
        (
            f"join {n['join']:,} x {n['join']:,} on a key ({jn['count']:,} datums)",
            f"{jn['seconds']:.2f} s (CPU {jn['cpu']:.2f} s), peak RSS {jn['rss'] / 2**20:.0f} MiB",
            "(reported)",
            None,
        ),
        (
            f"incremental diff of {df['count']:,} datums, 1% changed",
            f"{df['seconds']:.2f} s (CPU {df['cpu']:.2f} s; diff only), peak RSS {df['rss'] / 2**20:.0f} MiB",
            "<= 5 s",
            (df["seconds"] <= 5) if full else None,
        ),
    ]
    print(f"\nplanner benchmark ({'quick' if args.quick else 'full'}, median of {args.runs})")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    for what, figure, target, ok in rows:
        print(f"  {what}\n      {figure}   target {target}   {verdict(ok)}")
    return 0 if all(ok is not False for *_, ok in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
