"""Batch executor benchmark: check_batch over a 10M-row polars frame, parallel vs sequential.

Run: ``.venv/bin/python benchmarks/bench_batch.py [--rows N] [--chunk N] [--repeat K] [--quick]``.
Every figure comes from this one run, side by side (medians over ``--repeat``):

* ``check_batch`` (TruthoundEngine, schema learned once up front) with SEQUENTIAL vs PARALLEL
  (``--workers``, default 2) -- the speed-up ratio;
* per-chunk overhead of the executor: a no-op engine over many tiny chunks, against calling the
  engine in a plain loop;
* peak RSS during each run (sampled every 5 ms), against the RSS with the frame loaded.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import polars as pl  # noqa: E402
import psutil  # noqa: E402

from airflow_datum_provider.batch import (  # noqa: E402
    BatchConfig,
    BatchExecutor,
    DatasetListChunker,
    ExecutionStrategy,
    TruthoundEngine,
)


def _frame(rows: int) -> pl.DataFrame:
    i = pl.int_range(0, rows, eager=True, dtype=pl.Int64)
    return pl.DataFrame(
        {
            "id": i,
            "amount": (i % 10_007).cast(pl.Float64) / 7.0,
            "kind": (i % 5).cast(pl.String),
        }
    )


class _Peak:
    """Samples this process's RSS in a thread; ``peak`` is the highest value seen."""

    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __enter__(self) -> _Peak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _timed(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    with _Peak() as peak:
        start = time.perf_counter()
        out = fn()
        elapsed = time.perf_counter() - start
    return elapsed, peak.peak, out


class _Noop:
    def check(self, data: Any, **kw: Any) -> bool:
        return True

    profile = learn = check


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--overhead-chunks", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="1M rows, 1 repeat")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.chunk, args.repeat, args.overhead_chunks = 1_000_000, 100_000, 1, 5_000

    print(
        f"machine: {os.cpu_count()} cpu(s), load {os.getloadavg()[0]:.1f}; polars {pl.__version__}"
    )
    frame = _frame(args.rows)
    engine = TruthoundEngine()
    schema = engine.learn(frame)  # learned once, as check_batch(auto_schema=True) does
    base_rss = psutil.Process().memory_info().rss
    mib = 2**20
    print(
        f"frame: {args.rows:,} rows, {frame.estimated_size() / mib:.0f} MiB; "
        f"chunk {args.chunk:,} rows ({-(-args.rows // args.chunk)} chunks); "
        f"RSS with frame loaded {base_rss / mib:.0f} MiB"
    )

    modes = {
        "SEQUENTIAL": BatchConfig(
            batch_size=args.chunk, max_workers=1, execution_strategy=ExecutionStrategy.SEQUENTIAL
        ),
        "PARALLEL": BatchConfig(
            batch_size=args.chunk,
            max_workers=args.workers,
            execution_strategy=ExecutionStrategy.PARALLEL,
        ),
    }
    # warm-up: truthound imports its validators on first use; keep that out of both timings
    BatchExecutor(engine, modes["SEQUENTIAL"]).check_batch(frame.head(args.chunk), schema=schema)
    times: dict[str, list[float]] = {m: [] for m in modes}
    peaks: dict[str, list[int]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for name, config in modes.items():  # interleaved, so load drifts hit both
            executor = BatchExecutor(engine, config)
            elapsed, peak, result = _timed(lambda ex=executor: ex.check_batch(frame, schema=schema))
            assert result.total_chunks == -(-args.rows // args.chunk), result.to_summary()
            times[name].append(elapsed)
            peaks[name].append(peak)
    seq, par = statistics.median(times["SEQUENTIAL"]), statistics.median(times["PARALLEL"])
    print(f"\ncheck_batch over {args.rows:,} rows (median of {args.repeat}):")
    for name in modes:
        t = statistics.median(times[name])
        p = max(peaks[name])
        print(
            f"  {name:<10} {t:8.2f} s  {args.rows / t / 1e6:6.2f} M rows/s  "
            f"peak RSS {p / mib:6.0f} MiB (+{(p - base_rss) / mib:.0f} MiB over the loaded frame)"
        )
    print(f"  PARALLEL ({args.workers} workers) vs SEQUENTIAL speed-up: {seq / par:.2f}x")

    # per-chunk overhead: tiny chunks, a no-op engine
    n = args.overhead_chunks
    items = [[i] for i in range(n)]
    noop = _Noop()
    loop_t, inline_t, pool_t = [], [], []
    for _ in range(max(3, args.repeat)):
        start = time.perf_counter()
        for item in items:
            noop.check(item)
        loop_t.append(time.perf_counter() - start)
        ex = BatchExecutor(noop, BatchConfig(max_workers=1), chunker=DatasetListChunker())
        start = time.perf_counter()
        ex.check_batch(items)
        inline_t.append(time.perf_counter() - start)
        ex = BatchExecutor(
            noop,
            BatchConfig(max_workers=args.workers, execution_strategy=ExecutionStrategy.PARALLEL),
            chunker=DatasetListChunker(),
        )
        start = time.perf_counter()
        ex.check_batch(items)
        pool_t.append(time.perf_counter() - start)
    us = 1e6 / n
    print(f"\nper-chunk overhead ({n:,} no-op chunks, median of {len(loop_t)}):")
    print(f"  plain loop            {statistics.median(loop_t) * us:8.2f} us/chunk")
    print(f"  SEQUENTIAL (inline)   {statistics.median(inline_t) * us:8.2f} us/chunk")
    print(f"  PARALLEL ({args.workers} threads)  {statistics.median(pool_t) * us:8.2f} us/chunk")
    print(
        f"  -> executor overhead per {args.chunk:,}-row chunk is "
        f"{statistics.median(pool_t) * us / (seq / -(-args.rows // args.chunk) * 1e6) * 100:.3f}% "
        "of the chunk's check time"
    )


if __name__ == "__main__":
    main()
