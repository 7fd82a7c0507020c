"""``datumctl`` start-up benchmark (a script, not a test): --help, list repo, a one-file put.

    .venv/bin/python benchmarks/bench_cli.py            # 21 runs of each, interleaved
    .venv/bin/python benchmarks/bench_cli.py --quick    # 7 runs of each

Each command runs as a fresh process, the way a shell runs it, and is timed wall-clock. Every
figure is the median of interleaved runs, printed side by side with the same command with
every noun module imported up front (what ``datumctl`` did before it loaded lazily) and with a
bare interpreter start (``python -c pass``, the floor): ratios, not absolute times, are what
carry over to another machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LAZY = "from airflow_datum_provider.cli.main import main; main(sys.argv[1:])"
_EAGER = (
    "from airflow_datum_provider.cli._verbs import load_all; load_all(); "
    "from airflow_datum_provider.cli.main import main; main(sys.argv[1:])"
)


def _time(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="7 runs of each instead of 21")
    runs = 7 if parser.parse_args().quick else 21

    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp, "store")
        payload = Path(tmp, "one.bin")
        payload.write_bytes(os.urandom(1024))
        env = {**os.environ, "DATUM_STORE": str(store)}
        py = sys.executable
        setup = [py, "-c", f"import sys; {_LAZY}", "create", "repo", "bench"]
        subprocess.run(setup, env=env, check=True, capture_output=True)
        for i in range(9):
            subprocess.run([*setup[:-1], f"bench{i}"], env=env, check=True, capture_output=True)

        commands = {
            "--help": ["--help"],
            "list repo": ["list", "repo"],
            "put file (1 KiB)": ["put", "file", "bench@master:/one.bin", "-f", str(payload)],
        }
        times: dict[tuple[str, str], list[float]] = {}
        for _ in range(runs):
            times.setdefault(("floor", ""), []).append(_time([py, "-c", "pass"], env))
            for name, args in commands.items():
                for mode, code in (("lazy", _LAZY), ("eager", _EAGER)):
                    argv = [py, "-c", f"import sys; {code}", *args]
                    times.setdefault((mode, name), []).append(_time(argv, env))

    floor = statistics.median(times[("floor", "")])
    print(
        f"datumctl start-up, median of {runs} interleaved runs (python -c pass: {floor * 1000:.0f} ms)"
    )
    print(
        f"{'command':<20} {'lazy ms':>9} {'eager ms':>9} {'lazy/eager':>11} {'lazy - floor ms':>16}"
    )
    for name in commands:
        lazy = statistics.median(times[("lazy", name)])
        eager = statistics.median(times[("eager", name)])
        print(
            f"{name:<20} {lazy * 1000:>9.0f} {eager * 1000:>9.0f} {lazy / eager:>11.2f} "
            f"{(lazy - floor) * 1000:>16.0f}"
        )


if __name__ == "__main__":
    main()
