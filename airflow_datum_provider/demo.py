"""``make demo``: a walkthrough of repos, commits and an incremental pipeline job.

It runs real ``datumctl`` commands on the files of ``examples/`` (left in place, so every
command it prints can be typed again) against the embedded default store (or ``DATUM_STORE``):
what it prints is what a user would type and see. Running it again adds new commits and jobs:
it is idempotent in the sense that it never fails on what an earlier run left behind.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

from airflow_datum_provider.cli._store import default_store_url

__all__ = ["EXAMPLES", "activate_hint", "main"]

# The repository's examples/ folder: specs, input data and a README (not part of the wheel).
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DAGS = ROOT / "dags"


def _datumctl(*args: str, check: bool = True) -> None:
    print(f"\n$ datumctl {shlex.join(args)}", flush=True)
    exe = Path(sys.executable).with_name("datumctl")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "airflow_datum_provider.cli"]
    result = subprocess.run([*cmd, *args], check=False, cwd=EXAMPLES)
    if check and result.returncode != 0:
        raise SystemExit(result.returncode)


def _airflow(env: dict[str, str], *args: str) -> None:
    print(f"\n$ airflow {shlex.join(args)}", flush=True)
    exe = Path(sys.executable).with_name("airflow")
    result = subprocess.run(
        [str(exe), *args], env=env, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    if result.returncode != 0:
        sys.stderr.write(result.stderr.decode(errors="replace")[-4000:])
        raise SystemExit(result.returncode)


def _airflow_part(store: str) -> None:
    """The same data as a DAG author sees it: ``dags/word_count.py`` run by ``airflow dags test``."""
    home = Path(os.environ.get("DATUM_DEMO_AIRFLOW_HOME") or ROOT / ".airflow")
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "DATUM_STORE": store,
    }
    print(f"\n# Now through Airflow: AIRFLOW_HOME={home} (SQLite), DAG dags/word_count.py")
    _airflow(env, "db", "migrate")
    _datumctl("put", "file", "texts@master:/bob.txt", "-f", "data/texts/bob.txt")
    _airflow(env, "dags", "test", "word_count")
    _datumctl("list", "job", "-p", "wc_counts")
    print("\n# The top words (wc_totals: one reduce datum over every count file)")
    _datumctl("get", "file", "wc_totals@master:/totals.txt")
    _datumctl("put", "file", "texts@master:/bob.txt", "-f", "data/more/bob.txt")
    print("\n# bob.txt changed again: the DAG's next run processes 1 map datum, skips 2")
    _airflow(env, "dags", "test", "word_count")
    _datumctl("list", "job", "-p", "wc_counts")
    print("\nTrigger it from the UI with: make airflow")


def activate_hint() -> str:
    """The shell line that puts this interpreter's ``datumctl`` on PATH."""
    bin_dir = Path(sys.executable).parent
    activate = bin_dir / "activate"
    if activate.exists():
        return f"source {shlex.quote(str(activate))}"
    return f'export PATH={shlex.quote(str(bin_dir))}:"$PATH"'


def main() -> None:
    """Walk through repos, commits, a pipeline and an incremental re-run on ``examples/``."""
    if not (EXAMPLES / "wordcount.yaml").is_file():
        raise SystemExit(f"demo: {EXAMPLES}/wordcount.yaml not found (run it from a clone)")
    store = os.environ.get("DATUM_STORE") or default_store_url()
    os.environ["DATUM_STORE"] = store
    print(f"Store: {store}  (set DATUM_STORE or --store to use another)")
    print(f"Working in {EXAMPLES} (see its README.md)")
    from airflow_datum_provider.core.store import Store

    existing = Store.open(store)
    if not existing.repo_exists("texts"):
        _datumctl("create", "repo", "texts", "-d", "Texts to count")
    _datumctl("put", "file", "texts@master:/", "-r", "-f", "data/texts")
    _datumctl("list", "file", "texts@master:/")
    _datumctl("list", "commit", "texts@master", "-n", "3")

    verb = "update" if existing.repo_exists("wordcount") else "create"
    _datumctl(verb, "pipeline", "-f", "wordcount.yaml")
    _datumctl("list", "datum", "-f", "wordcount.yaml")
    _datumctl("run", "pipeline", "wordcount")

    _datumctl("put", "file", "texts@master:/bob.txt", "-f", "data/more/bob.txt")
    print("\n# bob.txt changed: the next job processes 1 datum and skips the other 2")
    _datumctl("run", "pipeline", "wordcount")
    _datumctl("list", "job", "-p", "wordcount")
    _datumctl("list", "file", "wordcount@master:/")
    _datumctl("get", "file", "wordcount@master:/bob.txt.count")
    if os.environ.get("DATUM_DEMO_AIRFLOW", "on") != "off":
        _airflow_part(store)
    print(f"\nDone. Put datumctl on your PATH with:\n  {activate_hint()}")
    print("Then explore with: datumctl --help")


if __name__ == "__main__":
    main()
