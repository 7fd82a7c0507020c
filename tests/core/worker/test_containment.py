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


def test_a_scan_since_a_command_reads_only_processes_created_after_it(tmp_path: Path) -> None:
    """The per-datum scan skips older processes (what makes it cheap), and finds newer ones."""
    import os
    import signal
    import subprocess

    from airflow_datum_provider.core.worker import _process

    mark = "m-" + os.urandom(4).hex()
    env = {**os.environ, "TEST_MARK": mark}
    older = subprocess.Popen(["sleep", "60"], env=env)
    since = _process._since()
    assert since is not None
    leader = subprocess.Popen(["sh", "-c", "exit 0"])
    leader.wait()
    newer = subprocess.Popen(["sleep", "60"], env=env, start_new_session=True)
    try:
        window = _process._pid_window(since._replace(pid=leader.pid))
        assert window is not None
        assert window(leader.pid)
        assert window(newer.pid)
        assert not window(older.pid)
        assert _process.kill_marked("TEST_MARK", mark, since=since._replace(pid=leader.pid)) == 1
        newer.wait(timeout=30)
        assert older.poll() is None  # older than the command: not even read
        # A machine that created about pid_max processes since: the scan is not bounded.
        assert _process._pid_window(since._replace(forks=since.forks - 10**9)) is None
        assert _process.kill_marked("TEST_MARK", mark) == 1
        older.wait(timeout=30)
    finally:
        for proc in (older, newer):
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


# -- very deep trees ---------------------------------------------------------------------

DEPTH = 3000
_DEEP = (
    "import os, sys\n"
    "os.chdir(os.environ['PFS_ROOT'] + '/' + sys.argv[1])\n"
    f"for _ in range({DEPTH}):\n"
    "    os.mkdir('d'); os.chdir('d')\n"
    "open('f', 'w').write('x')\n"
    "os.chmod('.', 0o500)\n"
)


@pytest.mark.parametrize("namespace", MODES)
def test_very_deep_output_fails_the_datum_and_is_wiped(world: World, namespace: bool) -> None:
    import sys

    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=(sys.executable, "-c", _DEEP, "out"),
        use_pfs_mount=namespace,
    )
    assert result.state == "failed"
    assert result.reason.startswith("cannot read output /d/d/d/"), result.reason
    assert "File name too long" in result.reason
    assert len(result.reason) < 300  # one readable line, not a 6,000-character path
    assert not (world.scratch / "out" / "d").exists()  # the tree was wiped after the datum
    again = world.run(
        world.datum(world.input("in", "/b.txt")),
        cmd=("sh", "-c", 'cp "$in" "$PFS_ROOT/out/b"'),
        use_pfs_mount=namespace,
    )
    assert again.state == "success"
    assert world.read(again) == {"/b": b"bravo\n"}


def test_deep_tree_outside_out_is_wiped_too(world: World) -> None:
    import sys

    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=(
            sys.executable,
            "-c",
            "import os; os.mkdir(os.environ['PFS_ROOT'] + '/junk')\n" + _DEEP,
            "junk",
        ),
    )
    assert result.state == "success", result.reason
    assert sorted(p.name for p in world.scratch.iterdir()) == [".env", "in", "out"]


def test_remove_tree_any_depth_never_raises_when_asked(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from airflow_datum_provider.core.worker.scratch import remove_tree

    top = tmp_path / "top"
    top.mkdir()
    env = {**os.environ, "PFS_ROOT": str(tmp_path)}
    subprocess.run([sys.executable, "-c", _DEEP, "top"], env=env, check=True, timeout=60)
    (top / "link").symlink_to("/etc")
    remove_tree(top)
    assert not top.exists()
    assert os.path.isdir("/etc")
    remove_tree(top)  # missing: nothing to do
    remove_tree(tmp_path / "nothing", ignore_errors=True)


def test_deep_tree_fails_the_job_and_dead_runner_clean_up_never_raises(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.runtime import clean_up_after_runner, scratch_parent
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store

    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        c.put_bytes("/a", b"a")
    spec = {
        "pipeline": {"name": "deep"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": [sys.executable, "-c", _DEEP, "out"]},
        "datum_tries": 1,
    }
    create_pipeline(store, parse_spec(spec))
    job = run_pipeline(store, "deep")
    assert job.state == "failure"
    result = next(r for _, r in JobRecords(store).all_results(job))
    assert "File name too long" in result["reason"]
    # What a SIGKILLed runner leaves behind: a scratch tree deeper than PATH_MAX.
    leftover = scratch_parent(job) / "set000000-dead"
    leftover.mkdir(parents=True)
    env = {**os.environ, "PFS_ROOT": str(leftover)}
    (leftover / "out").mkdir()
    subprocess.run([sys.executable, "-c", _DEEP, "out"], env=env, check=True, timeout=60)
    clean_up_after_runner(job)  # never raises
    assert not scratch_parent(job).exists()


# -- hard links and empty_files placeholders ----------------------------------------------


@pytest.mark.parametrize("namespace", MODES)
def test_hard_link_to_a_file_outside_the_root_is_refused(world: World, namespace: bool) -> None:
    secret = world.tmp / "secret.txt"
    secret.write_text("worker secret\n")
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", f'ln "{secret}" "$PFS_ROOT/out/stolen"'),
        use_pfs_mount=namespace,
    )
    assert result.state == "failed"
    assert result.outputs == ()
    if namespace:  # /pfs is a bind mount: the kernel refuses a link across mounts (EXDEV)
        assert result.reason == "exit status 1"
    else:
        assert result.reason == (
            "output /stolen is a hard link to a file outside the datum's root; refused"
        )


def test_hard_link_from_a_python_transform_is_refused(world: World) -> None:
    import os

    from airflow_datum_provider.core.worker import DatumContext

    secret = world.tmp / "secret.txt"
    secret.write_text("worker secret\n")

    def steal(ctx: DatumContext) -> None:
        os.link(secret, ctx.out / "stolen")

    result = world.run(world.datum(world.input("in", "/a.txt")), python=steal)
    assert (result.state, result.outputs) == ("failed", ())
    assert "hard link to a file outside" in result.reason


@pytest.mark.parametrize("namespace", MODES)
def test_hard_links_inside_the_root_are_fine(world: World, namespace: bool) -> None:
    # In the namespace an input is its own (read-only) mount: a link to it fails with EXDEV.
    script = "" if namespace else 'ln "$in" "$PFS_ROOT/out/input-link" && '
    script += 'echo own > "$PFS_ROOT/out/own" && ln "$PFS_ROOT/out/own" "$PFS_ROOT/out/own2"'
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", script),
        use_pfs_mount=namespace,
    )
    assert result.state == "success", result.reason
    expected = {"/own": b"own\n", "/own2": b"own\n"}
    if not namespace:
        expected["/input-link"] = b"alpha\n"
    assert world.read(result) == expected


@pytest.mark.parametrize("namespace", MODES)
def test_empty_files_symlink_to_an_input_stores_its_content(world: World, namespace: bool) -> None:
    script = (
        'test ! -s "$in" && ln -s "$in" "$PFS_ROOT/out/a" && '
        'ln -s "$dir/sub" "$PFS_ROOT/out/sub" && cp "$dir/x.txt" "$PFS_ROOT/out/copied"'
    )
    result = world.run(
        world.datum(
            world.input("in", "/a.txt", empty_files=True),
            world.input("dir", "/dirA/", empty_files=True),
        ),
        cmd=("sh", "-c", script),
        use_pfs_mount=namespace,
    )
    assert result.state == "success", result.reason
    # A symlink stores the input's content; a copy of a placeholder is an empty file.
    assert world.read(result) == {"/a": b"alpha\n", "/sub/y.txt": b"yankee\n", "/copied": b""}
    assert result.download_bytes == 0


# -- names the file system cannot hold ----------------------------------------------------


def test_a_name_over_255_bytes_is_refused_at_put_time(tmp_path: Path) -> None:
    from airflow_datum_provider.core.errors import InvalidPathError
    from airflow_datum_provider.core.store import Store

    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    with store.commit("data") as c:
        c.put_bytes("/" + "é" * 127, b"254 bytes: fine")  # 2 bytes per character
        with pytest.raises(InvalidPathError, match="is 256 bytes long; at most 255 bytes"):
            c.put_bytes("/dir/" + "x" * 256, b"too long")
    assert [e.path for e in store.walk("data", "master")] == ["/" + "é" * 127]


def test_a_long_name_that_got_through_fails_its_datum_not_the_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from airflow_datum_provider.core.engine import create_pipeline, run_pipeline
    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store, paths

    store = Store.open(tmp_path / "store")
    store.create_repo("data")
    long_name = "/" + "n" * 300
    # A store written before the rule (or by another tool): let one name through.
    monkeypatch.setattr(paths, "MAX_ELEMENT_BYTES", 10_000, raising=False)
    with store.commit("data") as c:
        c.put_bytes(long_name, b"long")
        c.put_bytes("/short", b"short")
    monkeypatch.undo()
    spec = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": [sys.executable, "-c", "pass"]},
    }
    create_pipeline(store, parse_spec(spec))
    job = run_pipeline(store, "copy")
    assert (job.state, job.processed, job.failed) == ("failure", 1, 1)
    results = [r for _, r in JobRecords(store).all_results(job)]
    failed = [r for r in results if r["state"] == "failed"]
    assert len(failed) == 1
    assert failed[0]["attempts"] == 1  # user code never ran
    assert (
        "cannot be materialised in the datum's scratch: File name too long" in failed[0]["reason"]
    )
    assert [r["state"] for r in results if r is not failed[0]] == ["success"]


# -- a datum printing 100 MB --------------------------------------------------------------


def test_a_datum_printing_100_mb_keeps_head_and_tail_in_bounded_memory(world: World) -> None:
    import io
    import tracemalloc

    from airflow_datum_provider.core.worker._process import LOG_HEAD, LOG_TAIL

    script = "echo FIRST-LINE; yes 0123456789abcdef | head -c 100000000; echo; echo LAST-LINE"
    log = io.StringIO()
    tracemalloc.start()
    try:
        result = world.run(
            world.datum(world.input("in", "/a.txt")), log=log, cmd=("sh", "-c", script)
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result.state == "success", result.reason
    text = log.getvalue()
    assert LOG_HEAD + LOG_TAIL <= len(text) < LOG_HEAD + LOG_TAIL + 1000
    assert "FIRST-LINE" in text[:200]
    assert "LAST-LINE\n" in text[-200:]
    assert f"keeps its first {LOG_HEAD} and last {LOG_TAIL} characters" in text
    import re

    note = re.search(r"=== (\d+) characters of output dropped here", text)
    assert note is not None
    dropped = int(note.group(1))
    assert dropped > 95_000_000
    assert peak < 32 * 2**20, f"{peak / 2**20:.0f} MiB traced while a datum printed 100 MB"


def test_log_sink_cap_keeps_exact_head_and_tail() -> None:
    import io

    from airflow_datum_provider.core.worker._process import LogSink

    out = io.StringIO()
    sink = LogSink(out, False, head=5, tail=4)
    for chunk in ("abc", "defgh", "ij", "klmnopq", "rs"):
        sink.write(chunk)
    sink.flush()
    text = out.getvalue()
    assert text.startswith("abcde\n=== 10 characters of output dropped here")
    assert text.endswith("===\npqrs")
    small = io.StringIO()
    under = LogSink(small, False, head=5, tail=4)
    under.write("abcdefg")
    under.flush()
    assert small.getvalue() == "abcdefg"
