"""Glob matching: Python ``re`` vs RE2 per match, side by side, and the pathological pattern.

Run: ``.venv/bin/python benchmarks/bench_glob.py [--names N] [--repeat R]``.
Every figure comes from this one run: medians over ``--repeat`` rounds of matching ``--names``
paths. ``re2/re`` is the cost of RE2 for a pattern that could run on ``re``; the pathological
row shows what the engine choice prevents (``re`` is capped at 22 characters: it doubles per
character past that).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
from pathlib import Path

import re2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from airflow_datum_provider.core.glob import compile_glob  # noqa: E402

PATTERNS = ["/*", "/(*)-(*).txt", "/**/*.csv", "/*/*"]


def _time(fn: object, paths: list[str], repeat: int) -> float:
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for p in paths:
            fn(p)  # type: ignore[operator]
        rounds.append(time.perf_counter() - start)
    return statistics.median(rounds) / len(paths) * 1e9  # ns per match


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    paths = [f"/d{i % 100:02d}/file-{i:07d}.txt" for i in range(args.names)]
    print(f"{'pattern':<16} {'engine':<7} {'re ns':>8} {'re2 ns':>8} {'re2/re':>7}")
    for pattern in PATTERNS:
        glob = compile_glob(pattern)
        linear = re2.compile(glob.regex.pattern.replace(r"\Z", r"\z"))
        t_re = _time(glob.regex.match, paths, args.repeat)
        t_re2 = _time(linear.match, paths, args.repeat)
        print(f"{pattern:<16} {glob.engine:<7} {t_re:>8.0f} {t_re2:>8.0f} {t_re2 / t_re:>7.1f}")
    bad = compile_glob("/*(*(a))b")
    python = re.compile(bad.regex.pattern)
    for n in (16, 20, 22):
        name = "/" + "a" * n
        start = time.perf_counter()
        python.match(name)
        t_py = time.perf_counter() - start
        start = time.perf_counter()
        bad.matcher.match(name)
        t_bad = time.perf_counter() - start
        print(
            f"/*(*(a))b over {n} chars: re {t_py * 1e3:.1f} ms, {bad.engine} {t_bad * 1e3:.3f} ms"
        )
    start = time.perf_counter()
    bad.matcher.match("/" + "a" * 40)
    print(f"/*(*(a))b over 40 chars: {bad.engine} {(time.perf_counter() - start) * 1e3:.3f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
