"""The leak check of ``tests/conftest.py`` (``tests/_leaks.py``), run on inner pytest sessions.

Each inner session is a real ``python -m pytest`` over a folder whose conftest takes this
suite's hooks; its tests leave processes behind on purpose, each carrying a token, and the
outer test checks what was reported and that no process with the token is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from tests import _leaks

pytestmark = pytest.mark.skipif(not _leaks.supported(), reason="needs Linux /proc children")

REPO_ROOT = Path(__file__).resolve().parents[1]

CONFTEST = """
from tests.conftest import (
    pytest_configure,
    pytest_runtest_setup,
    pytest_runtest_teardown,
    pytest_sessionfinish,
    pytest_terminal_summary,
)
"""

INNER = """
import os
import signal
import subprocess
import time

TOKEN = {token!r}


def _env(**extra):
    return {{**os.environ, "LEAK_TOKEN": TOKEN, **extra}}


def test_leaves_user_code():
    subprocess.Popen(["sleep", "300"], env=_env(DATUM_SET="job:0"), start_new_session=True)


def test_leaves_the_daemon_of_a_sigkilled_runner():
    runner = subprocess.Popen(
        ["sh", "-c", "setsid sleep 300 & echo $!; wait"],
        env=_env(DATUM_WORKER_RUN="t"),
        stdout=subprocess.PIPE,
    )
    daemon = int(runner.stdout.readline())
    # Kill the runner only once the daemon runs `sleep` (not mid-exec, when /proc may not yet
    # show its environment): the check then finds it whatever the machine's load.
    for _ in range(3000):
        with open(f"/proc/{{daemon}}/cmdline", "rb") as fh:
            if fh.read().split(b"\\0")[0] == b"sleep":
                break
        time.sleep(0.01)
    runner.kill()
    runner.wait()


def test_leaves_another_process():
    subprocess.Popen(["sleep", "300"], env=_env())


def test_cleans_up():
    child = subprocess.Popen(["sleep", "300"], env=_env(DATUM_SET="job:1"))
    child.kill()
    child.wait()
"""

DIES = """
import os
import signal
import subprocess


def test_dies_without_teardown():
    env = {{**os.environ, "LEAK_TOKEN": {token!r}, "DATUM_SET": "job:2"}}
    subprocess.Popen(["sleep", "300"], env=env, start_new_session=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _holding(token: str) -> list[int]:
    found = []
    needle = f"LEAK_TOKEN={token}".encode()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/environ", "rb") as fh:
                    if needle in fh.read().split(b"\0"):
                        found.append(int(name))
            except OSError:
                continue
    return found


def _session(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != _leaks.SESSION_ENV}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
        + ["--rootdir", str(folder), "-c", os.devnull, str(folder), *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_leftovers_are_killed_and_user_code_fails_its_test(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER.format(token=token)))
    done = _session(tmp_path)
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "4 passed, 2 errors" in out, out  # the two errors are at teardown
    for name in ("test_leaves_user_code", "test_leaves_the_daemon_of_a_sigkilled_runner"):
        assert f"ERROR at teardown of {name}" in out, out
        assert f"ERROR test_inner.py::{name}" in out, out
    # Counted in the error reports: the short summary repeats each message, cut to the terminal's
    # width or whole (pytest does not cut it where $CI is set).
    reports = out.split("short test summary info")[0]
    assert reports.count("the test left user code running (killed now): ") == 2, out
    summary = reports.split("processes left behind by tests (killed)")[1]
    # Another process is not the test's failure (it may be a fixture's), but the session's end
    # kills it and says so.
    assert "(at the session's end) " in summary, out
    assert summary.count("sleep 300") == 3, out
    assert "test_cleans_up" not in summary
    assert _holding(token) == []


def test_a_later_session_kills_what_a_dead_one_left(tmp_path: Path) -> None:
    token = uuid.uuid4().hex
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_dies.py").write_text(textwrap.dedent(DIES.format(token=token)))
    first = _session(tmp_path)
    assert first.returncode == -9, first.stdout + first.stderr
    (left,) = _holding(token)
    second = _session(tmp_path, "-k", "nothing")
    assert f"(a dead earlier session) {left} sleep 300" in second.stdout, second.stdout
    assert _holding(token) == []
