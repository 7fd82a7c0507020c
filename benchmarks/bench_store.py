"""Store benchmark (a script, not a test): put rate, million-file listing, glob, metadata size.

    .venv/bin/python benchmarks/bench_store.py            # full run (targets of issue 2)
    .venv/bin/python benchmarks/bench_store.py --quick    # 10x smaller, for a smoke run
    .venv/bin/python benchmarks/bench_store.py --local-packs 2000 --runs 3
                                   # one file per blob vs packs on a local folder (put -r, a
                                   # job of one-file datums, get -r), interleaved, medians

Every figure is printed with its target and PASS / MISS. Timed reads of the big commit run in a
fresh subprocess, so peak RSS is that of a process that only opens and lists the commit.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from airflow_datum_provider.core.store import Entry, Store, _layout

RESULTS: list[tuple[str, str, str, bool]] = []


def report(name: str, value: float, unit: str, target: float, higher_is_better: bool) -> None:
    ok = value >= target if higher_is_better else value <= target
    op = ">=" if higher_is_better else "<="
    RESULTS.append((name, f"{value:,.2f} {unit}", f"{op} {target:,} {unit}", ok))
    print(
        f"{name:<48} {value:>14,.2f} {unit:<8} target {op} {target:<10,} {'PASS' if ok else 'MISS'}"
    )
    sys.stdout.flush()


def metadata_bytes(store: Store, repo: str, commit_id: str) -> int:
    """Bytes on disk of a commit's manifest index plus the chunks it references."""
    root = store.backend.local_root
    assert root is not None
    manifest = store.manifest(repo, commit_id)
    info = store.inspect_commit(repo, commit_id)
    total = (root / _layout.manifest(repo, info.manifest or commit_id)).stat().st_size
    total += (root / _layout.commit(repo, commit_id)).stat().st_size
    for chunk in manifest.chunks:
        total += (root / _layout.chunk(chunk.key)).stat().st_size
    return total


def bench_put(root: Path, files: int) -> tuple[float, float, float]:
    """Put ``files`` distinct 1 KiB files in one commit; (puts/s, end-to-end files/s, B/file)."""
    store = Store.open(root)
    repo = f"put{time.time_ns()}"
    store.create_repo(repo)
    payload = os.urandom(1024 - 8)
    commit = store.start_commit(repo)
    start = time.perf_counter()
    for i in range(files):
        commit.put_bytes(f"/data/{i % 100:02d}/file-{i:07d}.bin", i.to_bytes(8, "big") + payload)
    puts = time.perf_counter() - start
    info = commit.finish()
    total = time.perf_counter() - start
    return files / puts, files / total, metadata_bytes(store, repo, info.id) / files


def build_big(root: Path, files: int) -> tuple[str, float, float]:
    """A commit of ``files`` entries over 1,000 distinct blobs, built through a real finish."""
    store = Store.open(root)
    repo = "big"
    store.create_repo(repo)
    blobs = []
    with store.commit(repo) as seed:
        for b in range(1000):
            blobs.append((seed.put_bytes(f"/seed/{b:04d}", f"blob {b}\n".encode() * 20), 140))
    start = time.perf_counter()
    commit = store.start_commit(repo)
    commit.delete("/seed")
    for i in range(files):
        digest, size = blobs[i % len(blobs)]
        commit.put_entry(Entry(f"/d{i % 1000:03d}/part-{i:08d}.json", digest, size))
    info = commit.finish()
    elapsed = time.perf_counter() - start
    return info.id, elapsed, metadata_bytes(store, repo, info.id) / files


_CHILD = """
import json, resource, sys, time
from airflow_datum_provider.core.listing import glob_files
from airflow_datum_provider.core.store import Store

def peak_rss_mb():
    # VmHWM is reset by exec; ru_maxrss is not (a child forked from a big parent inherits it).
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

root, commit_id, what = sys.argv[1], sys.argv[2], sys.argv[3]
start = time.perf_counter()
store = Store.open(root)
n = 0
if what == "list":
    for entry in store.walk("big", commit_id):
        n += 1
elif what == "ls":
    n = sum(1 for _ in store.list_files("big", commit_id, "/"))
else:
    n = sum(1 for _ in glob_files(store, "big", commit_id, what))
elapsed = time.perf_counter() - start
print(json.dumps({"n": n, "seconds": elapsed, "rss_mb": peak_rss_mb()}))
"""


def bench_verify(root: Path, runs: int, scale: int) -> None:
    """Reading blobs with the hash check against raw backend reads, side by side (medians)."""
    import io
    import shutil

    store = Store.open(root)
    store.create_repo("v")
    small = [os.urandom(1024) for _ in range(20_000 // scale)]
    large = [os.urandom(8 << 20) for _ in range(max(2, 16 // scale))]
    digests = []
    with store.commit("v") as c:
        for i, data in enumerate(small + large):
            digests.append(c.put_bytes(f"/f{i}", data))
    cases = {"1 KiB blobs": digests[: len(small)], "8 MiB blobs": digests[len(small) :]}
    for name, group in cases.items():
        keys = [_layout.blob(d) for d in group]
        raw_t, checked_t, stream_raw_t, stream_t = [], [], [], []
        for _ in range(runs):
            start = time.perf_counter()
            for key in keys:
                store.backend.read(key)
            raw_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            for digest in group:
                store.read_blob(digest)
            checked_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            for key in keys:
                with store.backend.open_read(key) as fh:
                    shutil.copyfileobj(fh, io.BytesIO(), 1 << 20)
            stream_raw_t.append(time.perf_counter() - start)
            start = time.perf_counter()
            for digest in group:
                with store.open_blob(digest) as fh:
                    shutil.copyfileobj(fh, io.BytesIO(), 1 << 20)
            stream_t.append(time.perf_counter() - start)
        raw, checked = statistics.median(raw_t), statistics.median(checked_t)
        sraw, sch = statistics.median(stream_raw_t), statistics.median(stream_t)
        print(
            f"  verify on read, {len(group):,} x {name}: read {checked / raw:.2f}x raw "
            f"({raw * 1e3:.0f} -> {checked * 1e3:.0f} ms), stream {sch / sraw:.2f}x raw "
            f"({sraw * 1e3:.0f} -> {sch * 1e3:.0f} ms)"
        )


def child(root: Path, commit_id: str, what: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(root), commit_id, what],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


def baseline_rss() -> float:
    code = _CHILD.split("root, commit_id")[0] + "print(peak_rss_mb())"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(done.stdout)


def bench_local_packs(root: Path, files: int, runs: int) -> None:
    """Why a local folder keeps one file per blob: put -r, a job and get -r, with and without."""
    sys.path.insert(0, str(Path(__file__).parent))
    import bench_s3

    src = root / "files"
    for i in range(files):
        d = src / f"d{i // 1000:03d}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i:07d}").write_bytes(i.to_bytes(8, "big") + b"x" * 1016)
    settings = {
        "one file per blob (default)": "0",
        "packs (DATUM_STORE_PACK_BELOW=1 MiB)": "1048576",
    }
    times: dict[str, dict[str, list[float]]] = {k: {} for k in settings}
    tree = Path(__file__).resolve().parent.parent
    for run in range(runs):
        for name, below in settings.items():
            env = {**os.environ, "DATUM_STORE_PACK_BELOW": below}
            env["PYTHONPATH"] = f"{tree}{os.pathsep}{Path(__file__).parent}"
            url = str(root / f"store-{below}-{run}")
            cli = [sys.executable, "-m", "airflow_datum_provider.cli", "--store", url]
            subprocess.run([*cli, "create", "repo", "data"], env=env, check=True, cwd=tree)
            case_times = times[name]
            start = time.perf_counter()
            subprocess.run(
                [*cli, "put", "file", "data@master:/", "-r", "-f", str(src)],
                env=env,
                check=True,
                cwd=tree,
                capture_output=True,
            )
            case_times.setdefault("put -r", []).append(time.perf_counter() - start)
            out = subprocess.run(
                [sys.executable, "-c", bench_s3._CHILD, "job", url, "{}", str(files), ""],
                env=env,
                check=True,
                cwd=tree,
                capture_output=True,
                text=True,
            ).stdout
            seconds = json.loads(out.strip().splitlines()[-1])["seconds"]
            case_times.setdefault("job (one set)", []).append(seconds)
            got = root / f"got-{below}-{run}"
            start = time.perf_counter()
            subprocess.run(
                [*cli, "get", "file", "data@master:/", "-r", "-o", str(got)],
                env=env,
                check=True,
                cwd=tree,
                capture_output=True,
            )
            case_times.setdefault("get -r", []).append(time.perf_counter() - start)
    print(f"local folder, {files:,} files of 1 KiB / one-file datums, medians of {runs}:")
    for name, cases in times.items():
        text = ", ".join(f"{case} {statistics.median(v):.2f} s" for case, v in cases.items())
        print(f"  {name}: {text}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller run")
    parser.add_argument("--runs", type=int, default=3, help="runs per timed figure (median)")
    parser.add_argument("--dir", type=Path, default=None, help="where to build the stores")
    parser.add_argument("--verify-only", action="store_true", help="only the verify-on-read case")
    parser.add_argument(
        "--local-packs", type=int, default=0, metavar="N", help="only packs vs none locally"
    )
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    if args.local_packs:
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-store-") as tmp:
            bench_local_packs(Path(tmp), args.local_packs, args.runs)
        return
    if args.verify_only:
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-store-") as tmp:
            bench_verify(Path(tmp), args.runs, scale)
        return
    put_files, big_files = 100_000 // scale, 1_000_000 // scale

    if args.dir is not None:
        args.dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="bench-store-") as tmp:
        root = Path(tmp)
        print(
            f"store benchmark: {put_files:,} puts, {big_files:,}-file commit, {args.runs} runs, in {root}"
        )
        rates = [bench_put(root / f"put{r}", put_files) for r in range(args.runs)]
        report(
            f"put {put_files:,} x 1 KiB (puts only)",
            statistics.median(r[0] for r in rates),
            "files/s",
            5000,
            True,
        )
        report(
            f"put {put_files:,} x 1 KiB (incl. finish)",
            statistics.median(r[1] for r in rates),
            "files/s",
            5000,
            True,
        )
        report(
            "commit metadata, distinct files",
            statistics.median(r[2] for r in rates),
            "B/file",
            100,
            False,
        )

        big_root = root / "big"
        commit_id, build_s, per_file = build_big(big_root, big_files)
        print(
            f"  (built the {big_files:,}-file commit through put_entry + finish in {build_s:.1f} s)"
        )
        report(f"commit metadata, {big_files:,}-file commit", per_file, "B/file", 100, False)

        listing = [child(big_root, commit_id, "list") for _ in range(args.runs)]
        assert all(r["n"] == big_files for r in listing), listing
        report(
            f"open + stream {big_files:,}-file listing",
            statistics.median(r["seconds"] for r in listing),
            "s",
            3,
            False,
        )
        report("  peak RSS of that process", max(r["rss_mb"] for r in listing), "MB", 500, False)
        print(f"  (an interpreter that only imports the store peaks at {baseline_rss():.0f} MB)")
        ls = child(big_root, commit_id, "ls")
        print(
            f"  list_files('/'): {ls['n']:,} entries in {ls['seconds']:.2f} s, {ls['rss_mb']:.0f} MB"
        )
        for pattern, expect in (
            ("/*", 1000),
            ("/d00*/*", 10 * big_files // 1000),
            ("/d123/*", big_files // 1000),
        ):
            globbed = [child(big_root, commit_id, pattern) for _ in range(args.runs)]
            assert all(g["n"] == expect for g in globbed), (pattern, globbed)
            seconds = statistics.median(g["seconds"] for g in globbed)
            print(
                f"  glob {pattern!r}: {expect:,} matches in {seconds:.2f} s, {max(g['rss_mb'] for g in globbed):.0f} MB"
            )

        # An incremental commit on a large parent: only the chunks around the change are
        # read and written (untouched parent chunks are spliced in).
        big = Store.open(big_root)
        times = []
        for run in range(args.runs):
            start = time.perf_counter()
            with big.commit("big") as c:
                c.put_bytes(f"/d500/part-new-{run}.json", b"{}")
            times.append(time.perf_counter() - start)
        print(
            f"  one-file commit on top of the {big_files:,}-file commit: "
            f"{statistics.median(times) * 1e3:.0f} ms"
        )

        bench_verify(root / "verify", args.runs, scale)

    misses = [r for r in RESULTS if not r[3]]
    print(f"\n{len(RESULTS) - len(misses)} PASS, {len(misses)} MISS")


if __name__ == "__main__":
    main()
