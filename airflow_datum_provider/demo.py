"""``make demo``: a walkthrough of repos, commits and an incremental pipeline job.

It runs real ``datumctl`` commands against the embedded default store (or ``DATUM_STORE``), so
what it prints is what a user would type and see. Running it again adds new commits and jobs:
it is idempotent in the sense that it never fails on what an earlier run left behind.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

from airflow_datum_provider.cli._store import default_store_url

SPEC = """\
pipeline:
  name: demo-wordcount
description: Count the words of every text file (one datum per file).
input:
  pfs:
    repo: demo-texts
    glob: "/*"
transform:
  cmd: [sh]
  stdin:
    - 'for f in /pfs/demo-texts/*; do wc -w < "$f" > /pfs/out/$(basename "$f").count; done'
"""

_PFS_FREE_SPEC = SPEC.replace("/pfs/demo-texts/*", '"$PFS_ROOT"/demo-texts/*').replace(
    "/pfs/out/", '"$PFS_ROOT"/out/'
)


def _datumctl(*args: str, check: bool = True) -> None:
    print(f"\n$ datumctl {shlex.join(args)}", flush=True)
    exe = Path(sys.executable).with_name("datumctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "airflow_datum_provider.cli"]
    result = subprocess.run([*cmd, *args], check=False)
    if check and result.returncode != 0:
        raise SystemExit(result.returncode)


def main() -> None:
    """Walk through repos, commits, a pipeline and an incremental re-run."""
    store = os.environ.get("DATUM_STORE") or default_store_url()
    os.environ["DATUM_STORE"] = store
    print(f"Store: {store}  (set DATUM_STORE or --store to use another)")
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.core.worker.namespace import (
        pfs_mount_setting,
        pfs_namespace_available,
    )

    existing = Store.open(store)
    with tempfile.TemporaryDirectory() as tmp:
        texts = Path(tmp, "texts")
        texts.mkdir()
        for name, words in {
            "alice.txt": "Alice was beginning to get very tired",
            "bob.txt": "Bob builds pipelines",
            "carol.txt": "Carol reads datums all day long",
        }.items():
            (texts / name).write_text(words + "\n")
        if not existing.repo_exists("demo-texts"):
            _datumctl("create", "repo", "demo-texts", "-d", "Texts to count")
        _datumctl("put", "file", "demo-texts@master:/", "-f", str(texts), "-r")
        _datumctl("list", "file", "demo-texts@master:/")
        _datumctl("list", "commit", "demo-texts@master", "-n", "3")

        spec = Path(tmp, "wordcount.yaml")
        use_pfs = pfs_mount_setting() is not False and pfs_namespace_available()
        spec.write_text(SPEC if use_pfs else _PFS_FREE_SPEC)
        print(
            f"\n# user code sees {'/pfs' if use_pfs else '$PFS_ROOT'} (DATUM_PFS_MOUNT=auto|on|off)"
        )
        verb = "update" if existing.repo_exists("demo-wordcount") else "create"
        _datumctl(verb, "pipeline", "-f", str(spec))
        _datumctl("list", "datum", "-f", str(spec))
        _datumctl("run", "pipeline", "demo-wordcount")

        (texts / "bob.txt").write_text("Bob builds pipelines and now also sensors\n")
        _datumctl("put", "file", "demo-texts@master:/bob.txt", "-f", str(texts / "bob.txt"))
        print("\n# bob.txt changed: the next job processes 1 datum and skips the other 2")
        _datumctl("run", "pipeline", "demo-wordcount")
        _datumctl("list", "job", "-p", "demo-wordcount")
        _datumctl("list", "file", "demo-wordcount@master:/")
        _datumctl("get", "file", "demo-wordcount@master:/bob.txt.count")
    print("\nDone. Explore with: datumctl --help")


if __name__ == "__main__":
    main()
