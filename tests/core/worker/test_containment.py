"""User code is contained: escaped daemons, deep trees, long names, huge logs, hard links."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from .conftest import MODES, World


def _dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status


def _wait_dead(pid: int, seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not _dead(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    return _dead(pid)


# `read` is a shell builtin, so /proc/self is the shell itself: its pid as this machine sees it,
# also inside a pid namespace (/proc is not remounted there).
_OWN_PID = "read pid rest < /proc/self/stat"


def _daemon_script(pidfile: Path, body: str) -> str:
    daemon = f'{_OWN_PID}; echo $pid > "{pidfile}.tmp"; mv "{pidfile}.tmp" "{pidfile}"; {body}'
    return (
        f"setsid sh -c '{daemon}' >/dev/null 2>&1 </dev/null &\n"
        # wait (bounded) until the daemon is up, so the datum cannot end before it exists
        f'i=0; while [ ! -s "{pidfile}" ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done\n'
    )


@pytest.mark.parametrize("namespace", MODES)
def test_setsid_daemon_is_killed_when_its_datum_ends(world: World, namespace: bool) -> None:
    pidfile = world.tmp / "daemon.pid"
    leak = 'while :; do echo leak > "$PFS_ROOT/out/leak" 2>/dev/null; sleep 0.02; done'
    first = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", _daemon_script(pidfile, leak)),
        use_pfs_mount=namespace,
    )
    assert first.state == "success", first.reason
    pid = int(pidfile.read_text())
    assert _wait_dead(pid), f"the daemon {pid} outlived its datum"
    # The next datum's output holds only what it wrote itself.
    second = world.run(
        world.datum(world.input("in", "/b.txt")),
        cmd=("sh", "-c", 'sleep 0.3; echo mine > "$PFS_ROOT/out/own"'),
        use_pfs_mount=namespace,
    )
    assert second.state == "success", second.reason
    assert world.read(second) == {"/own": b"mine\n"}


@pytest.mark.parametrize("namespace", MODES)
def test_daemon_of_a_timed_out_attempt_is_killed(world: World, namespace: bool) -> None:
    pidfile = world.tmp / "daemon.pid"
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", _daemon_script(pidfile, "exec sleep 60") + "sleep 60"),
        datum_timeout=1,
        use_pfs_mount=namespace,
    )
    assert (result.state, result.reason) == ("failed", "datum timed out after 1s")
    assert _wait_dead(int(pidfile.read_text()))


def test_kill_marked_finds_double_forked_children(tmp_path: Path) -> None:
    import os
    import subprocess

    from airflow_datum_provider.core.worker._process import kill_marked

    pidfile = tmp_path / "pid"
    env = {**os.environ, "TEST_MARK": "m-" + os.urandom(4).hex()}
    script = f"(setsid sh -c '{_OWN_PID}; echo $pid > \"{pidfile}\"; exec sleep 60' &) ; exit 0"
    subprocess.run(["sh", "-c", script], env=env, check=True, timeout=30)
    deadline = time.monotonic() + 10
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pid = int(pidfile.read_text())
    assert not _dead(pid)
    assert kill_marked("TEST_MARK", env["TEST_MARK"]) == 1
    assert _wait_dead(pid)
    assert kill_marked("TEST_MARK", env["TEST_MARK"]) == 0
