"""``make demo``: a walkthrough of repos, commits and an incremental pipeline job.

It runs real ``datumctl`` commands on the files of ``examples/`` (left in place, so every
command it prints can be typed again) against the embedded default store (or ``DATUM_STORE``):
what it prints is what a user would type and see. Running it again adds new commits and jobs:
it is idempotent in the sense that it never fails on what an earlier run left behind.

``python -m airflow_datum_provider.demo seed`` (what ``make airflow`` runs before it starts
Airflow) only seeds the input repos of every example DAG in ``dags/`` from ``examples/data/``,
leaving a repo that already has data as it is.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_datum_provider.cli._store import default_store_url

if TYPE_CHECKING:
    from airflow_datum_provider.core.store import Store

__all__ = ["EXAMPLES", "SEEDED_REPOS", "activate_hint", "main", "seed_examples"]

# The repository's examples/ folder: specs, input data and a README (not part of the wheel).
ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DAGS = ROOT / "dags"

# The input repos of the example DAGs in dags/, each seeded from examples/data/<repo>/.
SEEDED_REPOS = {
    "texts": "Texts to count",  # word_count (and the datumctl walkthrough)
    "notes": "Notes to shout",  # incremental
    "lines": "Lines to reverse",  # pachyderm_spec
    "readings": "Station readings",  # join
    "parameters": "Station parameters",  # join
    "words": "Words to title-case",  # task_datum
}


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


def _has_data(store: Store, repo: str) -> bool:
    head = store.branch_head(repo, "master") if store.repo_exists(repo) else None
    return head is not None and next(iter(store.list_files(repo, head, "/")), None) is not None


def _seed(store: Store, repo: str, *, reset: bool) -> None:
    """Create ``repo`` if needed and put ``examples/data/<repo>/`` into its master branch.

    With ``reset`` the files are put again even if the repo has data (the walkthrough starts
    from the same texts every time); without it a repo that has data is left as it is.
    """
    if not store.repo_exists(repo):
        _datumctl("create", "repo", repo, "-d", SEEDED_REPOS[repo])
    elif not reset and _has_data(store, repo):
        print(f"# repo {repo} has data: left as it is")
        return
    _datumctl("put", "file", f"{repo}@master:/", "-r", "-f", f"data/{repo}")


def seed_examples(store_url: str | None = None) -> None:
    """Seed the input repos of every example DAG (:data:`SEEDED_REPOS`); idempotent.

    What ``make airflow`` runs first, so that each example DAG triggered from the UI finds its
    input. A repo that exists and has files on ``master`` is left as it is.
    """
    from airflow_datum_provider.core.store import Store

    url = store_url or os.environ.get("DATUM_STORE") or default_store_url()
    os.environ["DATUM_STORE"] = url  # what the datumctl commands below use
    print(f"Seeding the example DAGs' input repos in {url} from {EXAMPLES}/data")
    store = Store.open(url)
    for repo in SEEDED_REPOS:
        _seed(store, repo, reset=False)


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
    _seed(existing, "texts", reset=True)
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
    if sys.argv[1:] == ["seed"]:
        seed_examples()
    elif sys.argv[1:]:
        raise SystemExit("usage: python -m airflow_datum_provider.demo [seed]")
    else:
        main()
