"""S3 benchmark (a script, not a test): requests and wall clock on a moto server, old vs new code.

    .venv/bin/python benchmarks/bench_s3.py                 # 10,000 files / datums
    .venv/bin/python benchmarks/bench_s3.py --files 1000    # smaller
    .venv/bin/python benchmarks/bench_s3.py --old dfaef76   # the code to compare with

A moto server runs as a child process; every request it answers is one line of its access log,
so request counts are exact and deterministic. Each case runs in a fresh interpreter against
this tree and against ``--old`` (extracted with ``git archive``), side by side in one run.
With ``--netem`` (default on where allowed) the server also runs inside a network namespace made
here (``ip netns add``, a veth pair, ``tc qdisc ... netem delay 10ms`` on both ends), so every
request pays real latency; without the privileges for that the case is skipped with a message.

Cases: ``datumctl put file -r`` of N files of 1 KiB; a job of N one-file datums (Python
callable, one datum set); the same over four sets with ``parallelism=2`` (two worker
processes); a re-run of the first job after changing one file; ``datumctl get file -r`` of
the N files. Job figures include planning and the merge; wall clock is the child's own.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# werkzeug colours some status lines (206, 3xx, 4xx) with ANSI escapes before the method.
_REQUEST = re.compile(rb'"(?:\x1b\[[0-9;]*m)*(GET|PUT|POST|HEAD|DELETE) ')
NS = "bench-s3"
NS_HOST, NS_PEER = "10.251.0.1", "10.251.0.2"


def noop(ctx: Any) -> None:
    """The Python transform of the job case: one small output file per datum."""
    (ctx.out / ctx.id[:16]).write_bytes(b"x")


_CHILD = r"""
import json, os, sys, time
from pathlib import Path
case, url, opts, n, src = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
from airflow_datum_provider.core.store import Store
store = Store.open(url, storage_options=opts)
start = time.perf_counter()
if case in ("job", "job4", "rerun"):
    from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
    from airflow_datum_provider.core.spec import parse_spec
    name, parallelism = ("py4", 2) if case == "job4" else ("py", None)
    if case != "rerun":
        sets = n if case == "job" else -(-n // 4)  # one set, or four sets of n/4
        spec = {"pipeline": {"name": name}, "input": {"pfs": {"repo": "data", "glob": "/*/*"}},
                "transform": {"python": "bench_s3:noop"}, "datum_set_spec": {"number": sets}}
        create_pipeline(store, parse_spec(spec))
        start = time.perf_counter()
    else:
        with store.commit("data") as c:
            c.put_bytes("/d000/f0000000", b"changed")
        start = time.perf_counter()
    job = run_pipeline(store, name, parallelism=parallelism, storage_options=opts)
    assert job.state == "success", (job.state, job.reason)
    extra = {"processed": job.processed, "skipped": job.skipped}
print(json.dumps({"seconds": time.perf_counter() - start, **extra}))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Moto:
    """A moto server child process whose access log counts requests."""

    def __init__(self, tmp: Path, netns: bool) -> None:
        self.log = tmp / f"moto-{uuid.uuid4().hex[:6]}.log"
        self.port = _free_port()
        host = NS_PEER if netns else "127.0.0.1"
        cmd = [sys.executable, "-m", "moto.server", "-H", host, "-p", str(self.port)]
        if netns:
            cmd = ["ip", "netns", "exec", NS, *cmd]
        self.endpoint = f"http://{host}:{self.port}"
        self._fh = open(self.log, "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        import urllib.request

        while True:
            try:
                urllib.request.urlopen(self.endpoint + "/moto-api/", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit(
                        f"moto server did not start: {self.log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.2)

    def requests(self) -> int:
        self._fh.flush()
        return len(_REQUEST.findall(self.log.read_bytes()))

    def bucket(self) -> str:
        import boto3

        name = f"bench-{uuid.uuid4().hex[:12]}"
        boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).create_bucket(Bucket=name)
        return name

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)
        self._fh.close()


def _env(tree: Path, endpoint: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "PYTHONPATH": f"{tree}{os.pathsep}{ROOT / 'benchmarks'}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
            "HOME": str(Path(tempfile.gettempdir()) / "bench-s3-home"),
        }
    )
    env.pop("DATUM_STORE", None)
    return env


def _counted(moto: Moto, argv: list[str], env: dict[str, str]) -> tuple[int, float, str]:
    before = moto.requests()
    start = time.perf_counter()
    # cwd: the tree under test. `python -m` / `-c` put the working directory first on
    # sys.path, so run from this checkout both trees would import this checkout's code.
    cwd = env["PYTHONPATH"].split(os.pathsep)[0]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=7200, cwd=cwd)
    elapsed = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"{argv[:6]} failed:\n{proc.stderr[-3000:]}")
    time.sleep(0.5)  # let the server write its last log lines
    return moto.requests() - before, elapsed, proc.stdout


def run_tree(label: str, tree: Path, moto: Moto, files: Path, n: int) -> dict[str, Any]:
    env = _env(tree, moto.endpoint)
    url = f"s3://{moto.bucket()}/store"
    opts = json.dumps({"endpoint_url": moto.endpoint, "key": "testing", "secret": "testing"})
    py = [sys.executable]
    cli = [*py, "-m", "airflow_datum_provider.cli", "--store", url]
    out: dict[str, Any] = {}
    _counted(moto, [*cli, "create", "repo", "data"], env)
    reqs, secs, _ = _counted(
        moto, [*cli, "put", "file", "data@master:/", "-r", "-f", str(files)], env
    )
    out["put"] = (reqs, secs)
    for case in ("job", "job4", "rerun"):
        reqs, _, stdout = _counted(moto, [*py, "-c", _CHILD, case, url, opts, str(n), ""], env)
        out[case] = (reqs, json.loads(stdout.strip().splitlines()[-1])["seconds"])
    got = files.parent / f"got-{uuid.uuid4().hex[:6]}"
    reqs, secs, _ = _counted(
        moto, [*cli, "get", "file", "data@master:/", "-r", "-o", str(got)], env
    )
    shutil.rmtree(got, ignore_errors=True)
    out["get"] = (reqs, secs)
    print(f"  [{label}] " + ", ".join(f"{k}: {v[0]:,} req {v[1]:.1f} s" for k, v in out.items()))
    return out


def netns_up() -> str | None:
    """Make the namespace with 10 ms each way; return why not, or ``None``."""
    cmds = [
        ["ip", "netns", "add", NS],
        ["ip", "link", "add", "bs3-host", "type", "veth", "peer", "name", "bs3-peer"],
        ["ip", "link", "set", "bs3-peer", "netns", NS],
        ["ip", "addr", "add", f"{NS_HOST}/24", "dev", "bs3-host"],
        ["ip", "link", "set", "bs3-host", "up"],
        ["ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_PEER}/24", "dev", "bs3-peer"],
        ["ip", "netns", "exec", NS, "ip", "link", "set", "bs3-peer", "up"],
        ["ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up"],
        ["tc", "qdisc", "add", "dev", "bs3-host", "root", "netem", "delay", "5ms"],
        [
            "ip",
            "netns",
            "exec",
            NS,
            "tc",
            "qdisc",
            "add",
            "dev",
            "bs3-peer",
            "root",
            "netem",
            "delay",
            "5ms",
        ],
    ]
    for cmd in cmds:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode:
            netns_down()
            return f"{' '.join(cmd)}: {proc.stderr.strip()}"
    return None


def netns_down() -> None:
    subprocess.run(["ip", "link", "del", "bs3-host"], capture_output=True)
    subprocess.run(["ip", "netns", "del", NS], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000, help="files / datums per case")
    parser.add_argument("--old", default="", help="git revision to compare with (e.g. dfaef76)")
    parser.add_argument("--no-netem", action="store_true", help="skip the 10 ms latency case")
    args = parser.parse_args()
    n = args.files
    with tempfile.TemporaryDirectory(prefix="bench-s3-") as tmp_name:
        tmp = Path(tmp_name)
        files = tmp / "files"
        for i in range(n):
            d = files / f"d{i // 1000:03d}"
            d.mkdir(parents=True, exist_ok=True)
            (d / f"f{i:07d}").write_bytes(i.to_bytes(8, "big") + b"x" * 1016)
        trees = [("new", ROOT)]
        if args.old:
            old = tmp / "old"
            old.mkdir()
            archive = subprocess.run(
                ["git", "-C", str(ROOT), "archive", args.old, "airflow_datum_provider"],
                capture_output=True,
                check=True,
            ).stdout
            subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
            trees.insert(0, (f"old {args.old}", old))
        settings = [("loopback", False)]
        if not args.no_netem:
            why = netns_up()
            if why is None:
                settings.append(("netns + netem 10 ms RTT", True))
            else:
                print(f"netem case skipped: cannot build a network namespace here ({why})")
        try:
            for name, netns in settings:
                print(f"{name}: {n:,} files of 1 KiB / {n:,} one-file datums")
                results = {}
                for label, tree in trees:
                    moto = Moto(tmp, netns)
                    try:
                        results[label] = run_tree(label, tree, moto, files, n)
                    finally:
                        moto.stop()
                new = results["new"]
                print(
                    f"  new: put -r {new['put'][0] / n:.3f} req/file (target <= 0.1), job "
                    f"{new['job'][0] / n:.3f} req/datum (target <= 0.3), 4 sets x2 "
                    f"{new['job4'][0] / n:.3f} req/datum, one-file re-run "
                    f"{new['rerun'][0]} req (target < 200), read back {new['get'][0] / n:.3f} req/file"
                )
                if len(results) == 2:
                    old_r = results[trees[0][0]]
                    for case in ("put", "job", "job4", "rerun", "get"):
                        print(
                            f"  {case:<6} requests {old_r[case][0]:>7,} -> {new[case][0]:>7,} "
                            f"({old_r[case][0] / max(new[case][0], 1):.1f}x fewer), wall "
                            f"{old_r[case][1]:.1f} s -> {new[case][1]:.1f} s "
                            f"({old_r[case][1] / max(new[case][1], 1e-9):.1f}x faster)"
                        )
        finally:
            if len(settings) > 1:
                netns_down()
    shutil.rmtree(Path(tempfile.gettempdir()) / "bench-s3-home", ignore_errors=True)


if __name__ == "__main__":
    main()
