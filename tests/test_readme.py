"""Every ``sh`` block of README.md and examples/README.md runs as written, copy-pasted.

Blocks that only call ``make`` (set-up: covered by ``test_demo.py`` and CI itself) are left
out. Each block runs in a fresh ``bash -e`` from its README's folder, with a private ``HOME``
and no ``DATUM_STORE``, so a block that needs a store has to make one the way a user would.
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
