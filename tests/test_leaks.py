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
import time
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
    pytest_testnodedown,
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


HOLDS = """
import os
import subprocess
import time
from pathlib import Path


def test_holds_a_process_until_told():
    ready, go = Path({ready!r}), Path({go!r})
    child = subprocess.Popen(["sleep", "300"], env={{**os.environ, "LEAK_TOKEN": {token!r}}})
    (ready.parent / "ready.tmp").write_text(str(child.pid))
    (ready.parent / "ready.tmp").rename(ready)
    deadline = time.monotonic() + 240
    while not go.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert child.poll() is None, "killed while its session was running"
    child.kill()
    child.wait()
"""

XDIST = ("-n", "2")


def _argv(folder: Path, *args: str) -> list[str]:
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"]
    return [*pytest, "--rootdir", str(folder), "-c", os.devnull, str(folder), *args]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != _leaks.SESSION_ENV}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _session(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(folder, *args),
        cwd=folder,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("workers", [(), XDIST], ids=["serial", "xdist"])
def test_leftovers_are_killed_and_user_code_fails_its_test(
    tmp_path: Path, workers: tuple[str, ...]
) -> None:
    token = uuid.uuid4().hex
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER.format(token=token)))
    done = _session(tmp_path, *workers)
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


def test_a_later_session_leaves_a_running_xdist_workers_processes_alone(tmp_path: Path) -> None:
    """Its processes carry the controller's marker (a pytest command line), not the worker's."""
    token = uuid.uuid4().hex
    inner = tmp_path / "inner"
    inner.mkdir()
    ready, go = tmp_path / "ready", tmp_path / "go"
    (inner / "conftest.py").write_text(CONFTEST)
    holds = HOLDS.format(ready=str(ready), go=str(go), token=token)
    (inner / "test_holds.py").write_text(textwrap.dedent(holds))
    running = subprocess.Popen(
        _argv(inner, *XDIST),
        cwd=inner,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not ready.exists() and running.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert ready.exists(), "the xdist session's test never started its process"
        held = int(ready.read_text())
        assert _holding(token) == [held]
        later = _session(inner, "-k", "nothing")
        assert "(a dead earlier session)" not in later.stdout, later.stdout
        assert _holding(token) == [held]
    finally:
        go.touch()
        out, err = running.communicate(timeout=300)
    assert running.returncode == 0, out + err
    assert "1 passed" in out, out
    assert _holding(token) == []
