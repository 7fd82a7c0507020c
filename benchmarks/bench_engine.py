"""Job engine benchmark: per-datum overhead, incremental re-runs, parallel workers.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--quick] [--datums N]``.
Every figure is measured in this one run, side by side; repeat with ``--repeat`` for medians.
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

from airflow_datum_provider.core.engine import create_pipeline, run_pipeline  # noqa: E402
from airflow_datum_provider.core.spec import parse_spec  # noqa: E402
from airflow_datum_provider.core.store import Store  # noqa: E402


def noop(ctx: Any) -> None:
    """The trivial Python transform: write one small output file."""
    (ctx.out / ctx.id[:16]).write_bytes(b"x")


def burn(ctx: Any) -> None:
    """A CPU-bound Python transform (about 100 ms of pure Python per datum)."""
    total = 0
    for i in range(2_000_000):
        total += i * i
    (ctx.out / ctx.id[:16]).write_text(str(total))


def _store_with_inputs(n: int) -> Store:
    store = Store.open(tempfile.mkdtemp(prefix="bench-engine-"))
    store.create_repo("data")
    with store.commit("data") as c:
        for i in range(n):
            c.put_bytes(f"/f{i:07d}", f"content {i}".encode())
    return store


def _pipeline(store: Store, name: str, transform: dict[str, Any], **extra: Any) -> None:
    spec = {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": transform,
        **extra,
    }
    create_pipeline(store, parse_spec(spec))


def _timed_job(store: Store, name: str, **kwargs: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    job = run_pipeline(store, name, **kwargs)
    elapsed = time.perf_counter() - start
    if job.state != "success":
        raise SystemExit(f"{name}: job {job.id} {job.state}: {job.reason}")
    return elapsed, job


def _change(store: Store, n: int, fraction: float) -> int:
    count = max(1, int(n * fraction))
    step = n // count
    with store.commit("data") as c:
        for i in range(0, n, step)[:count]:
            c.put_bytes(f"/f{i:07d}", f"changed {i}".encode())
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="1,000 datums instead of 10,000")
    parser.add_argument("--datums", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=1, help="runs per figure (median)")
    args = parser.parse_args()
    n = args.datums or (1_000 if args.quick else 10_000)
    rows: list[tuple[str, str, str, str]] = []

    def row(name: str, value: str, target: str = "", ok: bool | None = None) -> None:
        verdict = "" if ok is None else ("PASS" if ok else "MISS")
        rows.append((name, value, target, verdict))
        print(f"{name:<52} {value:>16}  {target:<14} {verdict}", flush=True)

    py_first, py_rerun, cmd_first, skips = [], [], [], []
    for _ in range(args.repeat):
        store = _store_with_inputs(n)
        _pipeline(store, "py", {"python": "bench_engine:noop"}, datum_set_spec={"number": n})
        elapsed, _ = _timed_job(store, "py")
        py_first.append(elapsed)
        changed = _change(store, n, 0.01)
        elapsed2, job2 = _timed_job(store, "py")
        py_rerun.append(elapsed2)
        if (job2.processed, job2.skipped) != (changed, n - changed):
            raise SystemExit(f"unexpected re-run counters: {job2.progress}")

        # Skip cost alone: a re-run with nothing changed processes zero datums.
        _change(store, n, 0.0001)
        start = time.perf_counter()
        job3 = run_pipeline(store, "py")
        skips.append((time.perf_counter() - start) / max(job3.skipped, 1))

        _pipeline(
            store,
            "cp",
            {"cmd": ["sh", "-c", 'cp "$data" "$PFS_ROOT/out/"']},
            datum_set_spec={"number": n},
        )
        cmd_first.append(_timed_job(store, "cp")[0])

    per_datum = statistics.median(py_first) / n
    row(
        "python callable: per-datum overhead",
        f"{per_datum * 1e3:.3f} ms",
        "<= 2 ms",
        per_datum <= 0.002,
    )
    row("cmd transform (cp): per datum", f"{statistics.median(cmd_first) / n * 1e3:.3f} ms")
    ratio = statistics.median(py_rerun) / statistics.median(py_first)
    row("re-run with 1% changed / first run", f"{ratio * 100:.1f} %", "<= 10 %", ratio <= 0.10)
    skip = statistics.median(skips)
    row(
        "skip cost per skipped datum (whole job / skipped)",
        f"{skip * 1e6:.1f} us",
        "<= 50 us",
        skip <= 50e-6,
    )

    cpu_n = 24 if args.quick else 48
    store = _store_with_inputs(cpu_n)
    _pipeline(store, "cpu1", {"python": "bench_engine:burn"}, datum_set_spec={"number": cpu_n // 4})
    _pipeline(store, "cpu2", {"python": "bench_engine:burn"}, datum_set_spec={"number": cpu_n // 4})
    t1 = _timed_job(store, "cpu1", parallelism=1)[0]
    t2 = _timed_job(store, "cpu2", parallelism=2)[0]
    row("CPU-bound: --parallelism 2 speed-up over 1", f"{t1 / t2:.2f}x", "report")
    print(f"\n{n} datums; medians of {args.repeat} run(s); machine: {sys.platform}")


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
