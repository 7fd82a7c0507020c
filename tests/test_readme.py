"""The READMEs' and docs' blocks work as written, copy-pasted.

Every ``sh`` block of README.md and examples/README.md runs. Blocks that only call ``make``
(set-up: covered by ``test_demo.py`` and CI itself) are left out. Each block runs in a fresh
``bash -e`` from its README's folder, with a private ``HOME`` and no ``DATUM_STORE``, so a
block that needs a store has to make one the way a user would.

Every ``python`` block of README.md and docs/*.md that is a whole DAG file (it has
``with DAG(`` and no ``...`` placeholder; a block with ``...`` is an excerpt) is saved as a file
and loaded into a DagBag, which must find a DAG and no import error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
READMES = [ROOT / "README.md", ROOT / "examples" / "README.md"]
_BLOCK = re.compile(r"^```sh\n(.*?)^```", re.S | re.M)
_PYTHON = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks() -> list[tuple[str, Path, str]]:
    found = []
    for readme in READMES:
        for n, match in enumerate(_BLOCK.finditer(readme.read_text(encoding="utf-8"))):
            body = match.group(1)
            commands = [
                line
                for line in body.splitlines()
                if line.strip() and not line.lstrip().startswith("#")
            ]
            if all(line.startswith("make ") for line in commands):
                continue
            found.append((f"{readme.relative_to(ROOT)}#{n}", readme.parent, body))
    return found


def test_the_readmes_have_runnable_blocks() -> None:
    names = [name for name, _, _ in _blocks()]
    assert any(name.startswith("README.md") for name in names), names
    assert any(name.startswith("examples") for name in names), names


@pytest.mark.parametrize(("name", "cwd", "body"), _blocks(), ids=[b[0] for b in _blocks()])
def test_readme_block_runs(name: str, cwd: Path, body: str, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    if "source .venv/bin/activate" in body and venv_bin != ROOT / ".venv" / "bin":
        pytest.skip(f"the tests do not run from {ROOT}/.venv, which the block activates")
    env = {k: v for k, v in os.environ.items() if k not in ("DATUM_STORE", "XDG_DATA_HOME")}
    env["HOME"] = str(tmp_path / "home")
    env["TMPDIR"] = str(tmp_path)
    path = [d for d in env.get("PATH", "").split(os.pathsep) if d and Path(d) != venv_bin]
    if "source .venv/bin/activate" not in body:
        path.insert(0, str(venv_bin))  # what an activated venv gives
    # else the block's own `source` is what must put datumctl on PATH
    env["PATH"] = os.pathsep.join(path)
    env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", body],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, f"{name} failed:\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert "datumctl: error" not in proc.stderr


def _dag_files() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        for n, match in enumerate(_PYTHON.finditer(doc.read_text(encoding="utf-8"))):
            body = match.group(1)
            if "with DAG(" in body and "..." not in body:
                found.append((f"{doc.relative_to(ROOT)}#python{n}", body))
    return found


def test_the_docs_have_whole_dag_files() -> None:
    docs = [name.partition("#")[0] for name, _ in _dag_files()]
    assert docs.count("README.md") == 1, docs
    assert docs.count("docs/airflow.md") >= 2, docs  # PutFilesOperator, run options


@pytest.mark.airflow
@pytest.mark.parametrize(("name", "body"), _dag_files(), ids=[b[0] for b in _dag_files()])
def test_dag_file_block_imports(
    name: str, body: str, tmp_path: Path, airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The block as a DAG file: its imports are all there and it builds a DAG."""
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("DATUM_STORE", str(tmp_path / "store"))  # never touched at parse time
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "block.py").write_text(body, encoding="utf-8")
    bag = DagBag(dag_folder=str(folder))
    assert bag.import_errors == {}, f"{name}:\n" + "\n".join(bag.import_errors.values())
    assert bag.dags, f"{name} defines no DAG"
