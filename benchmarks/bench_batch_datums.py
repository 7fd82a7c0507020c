"""``datumctl run pipeline --batch-config`` benchmark (a script, not a test), and row counting.

    .venv/bin/python benchmarks/bench_batch_datums.py            # 200 datums, 5 runs of each
    .venv/bin/python benchmarks/bench_batch_datums.py --quick    # 60 datums, 3 runs of each

Part 1: one job of a CPU-light ``cmd`` transform (``wc -c`` of a small file into ``/pfs/out``)
over ``--datums`` files, timed wall-clock as a fresh ``datumctl run pipeline`` process, for the
default in-order loop and for ``--batch-config`` configs; every run is a new pipeline (nothing is
skipped), one set (``datum_set_spec.number``), the modes interleaved (each round starting with
the next mode), medians printed side by side with the ratio to the default run. Part 2: :func:`airflow_datum_provider.batch.rows.count_rows`
over a generated CSV (what planning a ``rows_per_datum`` input reads once per table).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_datum_provider.batch.rows import count_rows  # noqa: E402
from airflow_datum_provider.core.store import Store  # noqa: E402

DATUMCTL = shutil.which("datumctl", path=str(Path(sys.executable).parent)) or "datumctl"
CMD = 'wc -c < "$data" > "$PFS_ROOT/out/$(basename "$data")"'
MODES: dict[str, list[str]] = {
    "default (in-order loop)": [],
    "--batch-config sequential": ["--batch-config", "sequential"],
    "--batch-config '{\"max_workers\": 2}'": ["--batch-config", '{"max_workers": 2}'],
    "--batch-config parallel (8 workers)": ["--batch-config", "parallel"],
}


def _datumctl(store: Path, *args: str) -> None:
    subprocess.run(
        [DATUMCTL, "--store", str(store), *args],
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def bench_runs(datums: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        store_dir = Path(tmp) / "store"
        store = Store.open(store_dir)
        store.create_repo("data")
        with store.commit("data") as c:
            for i in range(datums):
                c.put_bytes(f"/f{i:05d}", f"datum {i}\n".encode() * 8)
        times: dict[str, list[float]] = {mode: [] for mode in MODES}
        n = 0
        order = list(MODES.items())
        for round_ in range(repeat):
            # Each round starts with another mode, so no mode always runs first (or last).
            for mode, extra in order[round_ % len(order) :] + order[: round_ % len(order)]:
                n += 1
                name = f"p{n}"
                spec = {
                    "pipeline": {"name": name},
                    "input": {"pfs": {"repo": "data", "glob": "/*"}},
                    "transform": {"cmd": ["sh", "-c", CMD]},
                    "datum_set_spec": {"number": datums},
                }
                path = Path(tmp) / f"{name}.json"
                path.write_text(json.dumps(spec))
                _datumctl(store_dir, "create", "pipeline", "-f", str(path))
                start = time.perf_counter()
                _datumctl(store_dir, "run", "pipeline", name, *extra)
                times[mode].append(time.perf_counter() - start)
        base = statistics.median(times["default (in-order loop)"])
        print(f"run pipeline, {datums} datums, one set, median of {repeat} (cpus={os.cpu_count()})")
        for mode, values in times.items():
            med = statistics.median(values)
            print(
                f"  {mode:40s} {med:7.2f} s  {datums / med:7.1f} datums/s  "
                f"x{base / med:4.2f} vs default  (min {min(values):.2f}, max {max(values):.2f})"
            )


def bench_count(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rows-") as tmp:
        plain = Path(tmp) / "plain.csv"
        with plain.open("w") as fh:
            fh.write("id,amount,kind\n")
            for i in range(rows):
                fh.write(f"{i},{i * 7 % 1000}.25,k{i % 13}\n")
        quoted = Path(tmp) / "quoted.csv"
        quoted.write_text(plain.read_text().replace(",k", ',"k', rows).replace("\n", '"\n'))
        quoted.write_text("id,amount,kind\n" + quoted.read_text().split("\n", 1)[1])
        for label, path in (("plain (newline count)", plain), ("quoted (csv module)", quoted)):
            size = path.stat().st_size
            elapsed = []
            for _ in range(repeat):
                start = time.perf_counter()
                counted = count_rows(path)
                elapsed.append(time.perf_counter() - start)
            assert counted == rows, (counted, rows)
            med = statistics.median(elapsed)
            print(
                f"count_rows {label:22s} {rows} rows, {size / 2**20:6.1f} MiB: {med:6.3f} s "
                f"({size / 2**20 / med:6.1f} MiB/s, {rows / med / 1e6:5.2f} M rows/s)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 datums, 3 runs of each")
    parser.add_argument("--datums", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the counted CSV")
    args = parser.parse_args()
    datums = args.datums or (60 if args.quick else 200)
    repeat = args.repeat or (3 if args.quick else 5)
    bench_runs(datums, repeat)
    bench_count(args.rows // (10 if args.quick else 1), repeat)


if __name__ == "__main__":
    main()
