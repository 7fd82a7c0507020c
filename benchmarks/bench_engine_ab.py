"""The engine's per-datum cost side by side with an older commit (issue 8: within 10 %).

Run: ``.venv/bin/python benchmarks/bench_engine_ab.py [--old dfaef76] [--datums N] [--rounds R]``.

Runs two workloads of ``bench_engine.py`` -- the ``cmd`` transform (``sh -c 'cp "$data"
"$PFS_ROOT/out/"'``) and the trivial Python callable -- over N one-file datums in one set, from
the tree of ``--old`` (extracted with ``git archive``) and from this tree, each job in a fresh
process, old and new alternately, R rounds. Per datum it reports the wall time and the CPU time
(the runner and the user commands it reaped: ``getrusage`` self + children), their medians and
the new / old ratios. On a shared machine the wall time follows the load; the CPU time is what
the load disturbs least.
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
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent
WORKLOADS = ("cmd", "python")


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def child(tree: Path, workload: str, n: int) -> dict[str, float]:
    """One job of ``workload`` over ``n`` datums with the code of ``tree``; per-datum figures."""
    sys.path[:0] = [str(tree), str(tree / "benchmarks")]
    import bench_engine  # type: ignore[import-not-found]

    store = bench_engine._store_with_inputs(n)
    if workload == "cmd":
        transform: dict[str, Any] = {"cmd": ["sh", "-c", 'cp "$data" "$PFS_ROOT/out/"']}
    else:
        transform = {"python": "bench_engine:noop"}
    bench_engine._pipeline(store, "p", transform, datum_set_spec={"number": n})
    wall, cpu = time.perf_counter(), _cpu()
    bench_engine._timed_job(store, "p")
    result = {"wall": (time.perf_counter() - wall) / n, "cpu": (_cpu() - cpu) / n}
    shutil.rmtree(store.url, ignore_errors=True)
    return result


def _extract(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(HERE), "archive", "--format=tar", rev],
        check=True,
        capture_output=True,
    ).stdout
    tree = into / rev
    tree.mkdir()
    with tempfile.TemporaryFile() as fh:
        fh.write(archive)
        fh.seek(0)
        with tarfile.open(fileobj=fh) as tar:
            tar.extractall(tree, filter="data")
    return tree


def _run(tree: Path, workload: str, n: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", str(tree), workload, str(n)],
        check=True,
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": ""},
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--old", default="dfaef76", help="the commit to compare with")
    parser.add_argument("--datums", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workload", choices=WORKLOADS, action="append")
    parser.add_argument(
        "--child", nargs=3, metavar=("TREE", "WORKLOAD", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        tree, workload, n = args.child
        print(json.dumps(child(Path(tree), workload, int(n))))
        return
    workloads = args.workload or list(WORKLOADS)
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        trees = {"old": _extract(args.old, Path(tmp)), "new": HERE}
        figures: dict[tuple[str, str, str], list[float]] = {}
        for round_ in range(args.rounds):
            for workload in workloads:
                for side in ("old", "new"):
                    got = _run(trees[side], workload, args.datums)
                    for metric, value in got.items():
                        figures.setdefault((workload, side, metric), []).append(value)
                    print(
                        f"round {round_ + 1} {workload:<6} {side}: wall {got['wall'] * 1e3:7.3f} ms"
                        f"  cpu {got['cpu'] * 1e3:7.3f} ms  (load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
    print(f"\n{args.datums} datums, {args.rounds} rounds, old = {args.old}; medians per datum:")
    for workload in workloads:
        for metric in ("wall", "cpu"):
            old = statistics.median(figures[(workload, "old", metric)])
            new = statistics.median(figures[(workload, "new", metric)])
            print(
                f"{workload:<6} {metric:<4} old {old * 1e3:7.3f} ms  new {new * 1e3:7.3f} ms"
                f"  new/old {new / old:.2f}"
            )


if __name__ == "__main__":
    main()
