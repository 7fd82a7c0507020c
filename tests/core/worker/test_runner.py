from __future__ import annotations

import io
import json
import os
import sys
import time
from pathlib import Path

import pytest

from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.worker import DatumContext, DatumResult, RunOptions

from .conftest import FILES, MODES, World, needs_namespace

PY = sys.executable


def _dead(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "State:\tZ" in status  # a zombie nobody reaped (PID 1 in a container) is dead too


# -- environment and layout ----------------------------------------------------------------


@pytest.mark.parametrize("namespace", MODES)
def test_environment_has_pachyderm_names(
    world: World, namespace: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKER_ONLY", "inherited")
    datum = world.datum(
        world.input("in", "/a.txt", join_on="key1"),
        world.input("dir", "/dirA/", group_by="g1"),
    )
    dump = "import os, json; json.dump(dict(os.environ), open(os.environ['PFS_ROOT'] + '/out/env.json', 'w'))"
    result = world.run(
        datum,
        cmd=(
            PY,
            "-c",
            dump
            + "; import shutil; shutil.copy(os.environ['PFS_ROOT'] + '/.env', os.environ['PFS_ROOT'] + '/out/dotenv')",
        ),
        env={"FOO": "bar", "in": "overridden by the datum"},
        use_pfs_mount=namespace,
    )
    assert result.state == "success", result.reason
    files = world.read(result)
    env = json.loads(files["/env.json"])
    root = world.root_view(namespace)
    expected = {
        "in": f"{root}/in/a.txt",
        "in_COMMIT": world.commit,
        "dir": f"{root}/dir/dirA",
        "dir_COMMIT": world.commit,
        "PACH_DATUM_in_JOIN_ON": "key1",
        "PACH_DATUM_dir_GROUP_BY": "g1",
        "PACH_DATUM_ID": datum.id,
        "PACH_JOB_ID": "job1",
        "PACH_OUTPUT_COMMIT_ID": "outcommit1",
        "PPS_PIPELINE_NAME": "pipe",
        "PFS_ROOT": root,
        "FOO": "bar",
        "WORKER_ONLY": "inherited",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert "PACH_DATUM_in_GROUP_BY" not in env
    assert "PACH_DATUM_dir_JOIN_ON" not in env
    dotenv = dict(line.split("=", 1) for line in files["/dotenv"].decode().splitlines() if line)
    assert {k: v for k, v in expected.items() if k != "WORKER_ONLY"} == {
        k: dotenv[k] for k in expected if k != "WORKER_ONLY"
    }
    assert "WORKER_ONLY" not in dotenv  # the worker's own env never lands in .env


@pytest.mark.parametrize("namespace", MODES)
def test_layout_uses_full_repo_paths(world: World, namespace: bool) -> None:
    datum = world.datum(world.input("in", "/dirA/"), world.input("one", "/dirA/sub/y.txt"))
    listing = (
        'cd "$PFS_ROOT" && listing=$(find . -mindepth 1 | sort) && echo "$listing" > out/listing && '
        "cat in/dirA/x.txt one/dirA/sub/y.txt > out/cat"
    )
    result = world.run(datum, cmd=("sh", "-c", listing), use_pfs_mount=namespace)
    assert result.state == "success", result.reason
    files = world.read(result)
    assert files["/listing"].decode().split() == [
        "./.env",
        "./in",
        "./in/dirA",
        "./in/dirA/sub",
        "./in/dirA/sub/y.txt",
        "./in/dirA/x.txt",
        "./one",
        "./one/dirA",
        "./one/dirA/sub",
        "./one/dirA/sub/y.txt",
        "./out",
    ]
    assert files["/cat"] == FILES["/dirA/x.txt"] + FILES["/dirA/sub/y.txt"]
    assert result.download_bytes == 2 * len(FILES["/dirA/sub/y.txt"]) + len(FILES["/dirA/x.txt"])


def test_root_datum_mounts_whole_commit(world: World) -> None:
    seen: dict[str, object] = {}

    def transform(ctx: DatumContext) -> None:
        seen["in"] = ctx.inputs["in"]
        seen["files"] = sorted(
            str(p.relative_to(ctx.root)) for p in ctx.root.rglob("*") if p.is_file()
        )

    result = world.run(world.datum(world.input("in", "/")), python=transform)
    assert result.state == "success", result.reason
    assert seen["in"] == Path(os.path.realpath(world.scratch)) / "in"
    assert seen["files"] == sorted([".env"] + [f"in{p}" for p in FILES])


def test_group_of_one_name_shares_folder_last_wins(world: World) -> None:
    seen: dict[str, object] = {}

    def transform(ctx: DatumContext) -> None:
        seen["env"] = ctx.env["in"]
        seen["files"] = sorted(p.name for p in (ctx.root / "in").iterdir())

    datum = world.datum(world.input("in", "/a.txt"), world.input("in", "/b.txt"))
    result = world.run(datum, python=transform)
    assert result.state == "success", result.reason
    assert seen == {
        "env": f"{os.path.realpath(world.scratch)}/in/b.txt",
        "files": ["a.txt", "b.txt"],
    }


def test_empty_files_are_zero_byte_placeholders(world: World) -> None:
    sizes: dict[str, int] = {}

    def transform(ctx: DatumContext) -> None:
        for p in sorted(ctx.inputs["in"].rglob("*")):
            if p.is_file():
                sizes[str(p.relative_to(ctx.root))] = p.stat().st_size

    result = world.run(world.datum(world.input("in", "/dirA/", empty_files=True)), python=transform)
    assert result.state == "success", result.reason
    assert sizes == {"in/dirA/sub/y.txt": 0, "in/dirA/x.txt": 0}
    assert result.download_bytes == 0


def test_lazy_inputs_are_served_like_any_other(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt", lazy=True)),
        cmd=("sh", "-c", 'cp "$in" "$PFS_ROOT/out/a.txt"'),
    )
    assert world.read(result) == {"/a.txt": FILES["/a.txt"]}


# -- transforms ----------------------------------------------------------------------------


def test_python_callable_gets_context(world: World) -> None:
    datum = world.datum(world.input("in", "/a.txt"))
    seen: list[DatumContext] = []

    def transform(ctx: DatumContext) -> None:
        seen.append(ctx)
        (ctx.out / "sub").mkdir()
        (ctx.out / "sub" / "upper.txt").write_bytes(ctx.inputs["in"].read_bytes().upper())
        print("hello from python")

    log = io.StringIO()
    result = world.run(datum, log=log, python=transform, env={"K": "v"})
    assert result.state == "success", result.reason
    (ctx,) = seen
    root = Path(os.path.realpath(world.scratch))
    assert (ctx.id, ctx.job_id, ctx.root, ctx.out) == (datum.id, "job1", root, root / "out")
    assert dict(ctx.inputs) == {"in": root / "in" / "a.txt"}
    assert ctx.env["K"] == "v"
    assert ctx.env["PFS_ROOT"] == str(root)
    assert ctx.env["PACH_DATUM_ID"] == datum.id
    assert world.read(result) == {"/sub/upper.txt": b"ALPHA\n"}
    assert [(e.path, e.size, e.tag) for e in result.outputs] == [("/sub/upper.txt", 6, datum.id)]
    assert result.upload_bytes == 6
    assert "hello from python" in log.getvalue()


def copy_transform(ctx: DatumContext) -> None:
    """Referenced as ``tests.core.worker.test_runner:copy_transform``."""
    (ctx.out / "copy.txt").write_bytes(ctx.inputs["in"].read_bytes())


def test_python_callable_by_reference(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/b.txt")),
        python="tests.core.worker.test_runner:copy_transform",
    )
    assert world.read(result) == {"/copy.txt": FILES["/b.txt"]}


def test_python_exception_fails_attempt_with_repr(world: World) -> None:
    calls: list[int] = []

    def transform(ctx: DatumContext) -> None:
        calls.append(1)
        (ctx.out / "partial.txt").write_text("x")
        raise ValueError("boom")

    log = io.StringIO()
    result = world.run(
        world.datum(world.input("in", "/a.txt")), log=log, python=transform, datum_tries=3
    )
    assert (result.state, result.reason, result.attempts) == ("failed", "ValueError('boom')", 3)
    assert len(calls) == 3
    assert result.outputs == ()
    assert "Traceback" in log.getvalue()


def test_python_bad_reference_fails_datum(world: World) -> None:
    result = world.run(world.datum(world.input("in", "/a.txt")), python="no_such_module_x:fn")
    assert result.state == "failed"
    assert "No module named 'no_such_module_x'" in result.reason


def test_cmd_with_stdin_lines(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("bash",),
        stdin=("set -e", 'cp "$in" "$PFS_ROOT/out/copy.txt"', 'echo done > "$PFS_ROOT/out/done"'),
    )
    assert result.state == "success", result.reason
    assert world.read(result) == {"/copy.txt": FILES["/a.txt"], "/done": b"done\n"}


def test_cmd_that_does_not_read_stdin_still_succeeds(world: World) -> None:
    big = ("x" * 1000,) * 500  # more than a pipe buffer
    result = world.run(world.datum(world.input("in", "/a.txt")), cmd=("true",), stdin=big)
    assert result.state == "success", result.reason


def test_working_dir_defaults_to_worker_cwd(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(world.tmp)
    result = world.run(
        world.datum(world.input("in", "/a.txt")), cmd=("sh", "-c", 'pwd > "$PFS_ROOT/out/pwd"')
    )
    assert world.read(result)["/pwd"].decode().strip() == os.path.realpath(world.tmp)


@pytest.mark.parametrize("namespace", MODES)
def test_working_dir_under_pfs(world: World, namespace: bool) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "pwd > here"),
        working_dir="/pfs/out",
        use_pfs_mount=namespace,
    )
    assert result.state == "success", result.reason
    assert world.read(result)["/here"].decode().strip() == world.root_view(namespace) + "/out"


def test_cannot_start_command(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")), cmd=("/no/such/program",), use_pfs_mount=False
    )
    assert result.state == "failed"
    assert result.reason == "cannot run '/no/such/program': No such file or directory"


def test_killed_by_signal_reason(world: World) -> None:
    result = world.run(world.datum(world.input("in", "/a.txt")), cmd=("sh", "-c", "kill -TERM $$"))
    assert (result.state, result.reason) == ("failed", "signal: terminated")


# -- retries, err_cmd, accept_return_code, timeouts ----------------------------------------


@pytest.mark.parametrize("tries", [1, 2, 5])
def test_datum_tries_is_total_attempts(world: World, tries: int) -> None:
    counter = world.tmp / "count"
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", f'echo x >> "{counter}"; exit 1'),
        datum_tries=tries,
    )
    assert (result.state, result.reason, result.attempts) == ("failed", "exit status 1", tries)
    assert counter.read_text().count("x") == tries


def test_failed_attempt_output_is_discarded(world: World) -> None:
    counter = world.tmp / "count"
    script = f"""
    echo x >> "{counter}"
    test -e "$PFS_ROOT/out/junk.txt" && exit 7
    if [ "$(wc -l < "{counter}")" -eq 1 ]; then echo junk > "$PFS_ROOT/out/junk.txt"; exit 1; fi
    echo good > "$PFS_ROOT/out/good.txt"
    """
    result = world.run(
        world.datum(world.input("in", "/a.txt")), cmd=("sh", "-c", script), datum_tries=3
    )
    assert (result.state, result.attempts) == ("success", 2)
    assert world.read(result) == {"/good.txt": b"good\n"}


def test_err_cmd_success_recovers_only_after_every_attempt_failed(world: World) -> None:
    """Pachyderm: the user code gets all its tries; err_cmd runs after each failed one."""
    counter = world.tmp / "count"
    log = io.StringIO()
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        log=log,
        cmd=("sh", "-c", f'echo x >> "{counter}"; echo out > "$PFS_ROOT/out/o"; exit 2'),
        err_cmd=("sh",),
        err_stdin=('test -f "$in" || exit 9', "echo recovering-$PACH_DATUM_ID"),
        datum_tries=5,
    )
    assert (result.state, result.reason, result.attempts) == ("recovered", "exit status 2", 5)
    assert result.outputs == ()
    assert counter.read_text() == "x\n" * 5
    assert log.getvalue().count(f"recovering-{result.datum_id}") == 5


def test_a_later_success_beats_an_earlier_recovery(world: World) -> None:
    counter = world.tmp / "count"
    script = (
        f'echo x >> "{counter}"; [ "$(wc -l < "{counter}")" -ge 3 ] || exit 4; '
        'echo good > "$PFS_ROOT/out/good.txt"'
    )
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", script),
        err_cmd=("true",),
        datum_tries=3,
    )
    assert (result.state, result.reason, result.attempts) == ("success", "", 3)
    assert world.read(result) == {"/good.txt": b"good\n"}


def test_a_recovery_sticks_when_a_later_err_cmd_fails(world: World) -> None:
    """Pachyderm's quirk (DESIGN §5.1): recovered once, every attempt failed → recovered."""
    counter = world.tmp / "err"
    err = f'echo x >> "{counter}"; [ "$(wc -l < "{counter}")" -eq 1 ]'
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "exit 7"),
        err_cmd=("sh", "-c", err),
        datum_tries=3,
    )
    assert (result.state, result.reason, result.attempts) == ("recovered", "exit status 7", 3)
    assert counter.read_text() == "x\n" * 3


def test_err_cmd_failure_keeps_retrying(world: World) -> None:
    counter = world.tmp / "err-count"
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("false",),
        err_cmd=("sh", "-c", f'echo x >> "{counter}"; exit 1'),
        datum_tries=3,
    )
    assert (result.state, result.attempts) == ("failed", 3)
    assert counter.read_text().count("x") == 3


def test_err_cmd_after_python_failure(world: World) -> None:
    def transform(ctx: DatumContext) -> None:
        raise RuntimeError("nope")

    result = world.run(
        world.datum(world.input("in", "/a.txt")), python=transform, err_cmd=("true",)
    )
    assert (result.state, result.reason) == ("recovered", "RuntimeError('nope')")


def test_accept_return_code_applies_to_cmd_and_err_cmd(world: World) -> None:
    ok = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", 'echo y > "$PFS_ROOT/out/y"; exit 3'),
        accept_return_code=(3,),
    )
    assert ok.state == "success"
    assert world.read(ok) == {"/y": b"y\n"}
    recovered = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "exit 5"),
        err_cmd=("sh", "-c", "exit 3"),
        accept_return_code=(3,),
    )
    assert (recovered.state, recovered.reason) == ("recovered", "exit status 5")


def _background(pidfile: Path) -> str:
    """Start ``sleep 30`` in the background; its pid as this machine sees it (even in a pid ns)."""
    child = f'read pid rest < /proc/self/stat; echo $pid > "{pidfile}.tmp"; exec sleep 30'
    wait = f'while [ ! -s "{pidfile}.tmp" ]; do sleep 0.01; done; mv "{pidfile}.tmp" "{pidfile}"'
    return f"sh -c '{child}' & {wait}; "


def test_datum_timeout_kills_process_group(world: World) -> None:
    pidfile = world.tmp / "child.pid"
    start = time.monotonic()
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", _background(pidfile) + "wait"),
        datum_timeout=1,
    )
    elapsed = time.monotonic() - start
    assert (result.state, result.reason) == ("failed", "datum timed out after 1s")
    assert elapsed < 10
    assert 0.9 < result.process_time < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _dead(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(child)


def test_background_child_does_not_outlive_datum(world: World) -> None:
    pidfile = world.tmp / "child.pid"
    start = time.monotonic()
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", _background(pidfile) + "echo started"),
    )
    assert result.state == "success", result.reason
    assert time.monotonic() - start < 10
    child = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while not _dead(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _dead(child)


def test_python_timeout(world: World) -> None:
    def transform(ctx: DatumContext) -> None:
        time.sleep(10)

    start = time.monotonic()
    result = world.run(
        world.datum(world.input("in", "/a.txt")), python=transform, datum_timeout=0.3, datum_tries=2
    )
    assert (result.state, result.reason, result.attempts) == (
        "failed",
        "datum timed out after 0.3s",
        2,
    )
    assert time.monotonic() - start < 5


def test_timeout_each_attempt_then_success(world: World) -> None:
    counter = world.tmp / "count"
    script = f'echo x >> "{counter}"; [ "$(wc -l < "{counter}")" -ge 2 ] || sleep 30; touch "$PFS_ROOT/out/ok"'
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", script),
        datum_timeout=0.5,
        datum_tries=2,
    )
    assert (result.state, result.attempts) == ("success", 2)


@pytest.mark.parametrize("python", [False, True], ids=["cmd", "python"])
def test_deadline_caps_every_attempt_and_err_cmd(world: World, python: bool) -> None:
    """The job's deadline is absolute: retries and err_cmd do not each get the time again."""
    counter = world.tmp / "runs"

    def transform(ctx: DatumContext) -> None:
        with counter.open("a") as fh:
            fh.write("x\n")
        time.sleep(30)

    kind: dict[str, object] = (
        {"python": transform}
        if python
        else {"cmd": ("sh", "-c", f'echo x >> "{counter}"; sleep 30')}
    )
    start = time.monotonic()
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        err_cmd=("sh", "-c", f'echo err >> "{counter}"; sleep 30'),
        datum_tries=3,
        deadline=start + 1,
        **kind,
    )
    assert time.monotonic() - start < 2.5
    assert (result.state, result.reason, result.attempts) == ("failed", "job timed out", 1)
    assert counter.read_text().split() == ["x"]  # no err_cmd, no second attempt


def test_deadline_already_passed_runs_nothing(world: World) -> None:
    counter = world.tmp / "runs"
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", f'echo x >> "{counter}"'),
        deadline=time.monotonic() - 1,
    )
    assert (result.state, result.reason, result.attempts) == ("failed", "job timed out", 0)
    assert not counter.exists()


def test_datum_timeout_shorter_than_deadline_still_retries(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "sleep 30"),
        datum_timeout=0.3,
        datum_tries=2,
        deadline=time.monotonic() + 60,
    )
    assert (result.state, result.reason, result.attempts) == (
        "failed",
        "datum timed out after 0.3s",
        2,
    )


# -- /pfs namespace --------------------------------------------------------------------------


@needs_namespace
def test_unchanged_pachyderm_command_under_pfs(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "cp /pfs/in/a.txt /pfs/out/"),
        use_pfs_mount=True,
    )
    assert result.state == "success", result.reason
    assert world.read(result) == {"/a.txt": FILES["/a.txt"]}


@needs_namespace
def test_inputs_are_read_only_under_pfs(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", "echo tampered >> /pfs/in/a.txt"),
        use_pfs_mount=True,
    )
    assert result.state == "failed"
    assert "Read-only file system" in result.log_tail
    assert world.store.read_bytes("data", world.commit, "/a.txt") == FILES["/a.txt"]


def test_inputs_written_as_root_without_namespace_leave_store_intact(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", 'chmod u+w "$in" 2>/dev/null; echo tampered >> "$in"; true'),
        use_pfs_mount=False,
    )
    assert result.state == "success"
    assert world.store.read_bytes("data", world.commit, "/a.txt") == FILES["/a.txt"]


# -- logs, results ----------------------------------------------------------------------------


def test_logs_are_captured_per_attempt(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    log = io.StringIO()
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        log=log,
        verbose=True,
        cmd=("sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 1"),
        datum_tries=2,
    )
    text = log.getvalue()
    assert f"=== datum {result.datum_id}: attempt 1/2 (cmd) ===" in text
    assert f"=== datum {result.datum_id}: attempt 2/2 (cmd) ===" in text
    assert text.count("to-stdout") == 2
    assert text.count("to-stderr") == 2
    assert "attempt 2 failed: exit status 1" in text
    assert result.log_tail == text[-4096:]
    assert "to-stderr" in capsys.readouterr().err


def test_log_tail_is_bounded(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")), cmd=(PY, "-c", "print('z' * 100000)")
    )
    assert result.state == "success"
    assert len(result.log_tail) == 4096
    assert result.log_tail.endswith("success ===\n")


def test_result_round_trips_through_json(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/a.txt")),
        cmd=("sh", "-c", 'cp "$in" "$PFS_ROOT/out/a"'),
    )
    again = DatumResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert result.started <= result.finished
    assert result.download_bytes == len(FILES["/a.txt"])
    assert result.upload_bytes == len(FILES["/a.txt"])


def test_scratch_is_wiped_after_the_datum(world: World) -> None:
    result = world.run(
        world.datum(world.input("in", "/dirA/")),
        cmd=(
            "sh",
            "-c",
            'mkdir -p "$PFS_ROOT/ro/deep" && touch "$PFS_ROOT/ro/deep/f" && chmod 555 "$PFS_ROOT/ro/deep" "$PFS_ROOT/ro"',
        ),
    )
    assert result.state == "success", result.reason
    # Only the emptied top-level folders (and .env, rewritten in place) remain, kept for reuse.
    assert sorted(p.name for p in world.scratch.rglob("*")) == [".env", "in", "out"]
    assert not any(list((world.scratch / name).iterdir()) for name in ("in", "out"))


def test_next_datum_does_not_see_previous_layout(world: World) -> None:
    world.run(world.datum(world.input("in", "/dirA/")), cmd=("true",))
    seen: list[list[str]] = []

    def transform(ctx: DatumContext) -> None:
        seen.append(sorted(str(p.relative_to(ctx.root)) for p in ctx.root.rglob("*")))

    result = world.run(world.datum(world.input("other", "/b.txt")), python=transform)
    assert result.state == "success", result.reason
    assert seen == [[".env", "other", "other/b.txt", "out"]]


# -- options -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({}, "transform"),
        ({"cmd": ("true",), "python": "m:f"}, "transform"),
        ({"python": "no_colon"}, "transform.python"),
        ({"cmd": ("true",), "datum_tries": 0}, "datum_tries"),
        ({"cmd": ("true",), "datum_timeout": 0}, "datum_timeout"),
    ],
    ids=["neither", "both", "bad-reference", "zero-tries", "zero-timeout"],
)
def test_options_are_validated(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as info:
        RunOptions(**kwargs)  # type: ignore[arg-type]
    assert info.value.field == field


def test_options_from_spec() -> None:
    from airflow_datum_provider.core.spec import parse_spec

    spec = parse_spec(
        {
            "pipeline": {"name": "p"},
            "input": {"pfs": {"repo": "data", "glob": "/*"}},
            "transform": {
                "cmd": ["bash"],
                "stdin": ["cp /pfs/data/* /pfs/out/"],
                "err_cmd": ["true"],
                "env": {"A": "1"},
                "working_dir": "/pfs",
                "accept_return_code": [3],
            },
            "datum_tries": 5,
            "datum_timeout": "1m30s",
        }
    )
    options = RunOptions.from_spec(spec, use_pfs_mount=False)
    assert options == RunOptions(
        cmd=("bash",),
        stdin=("cp /pfs/data/* /pfs/out/",),
        err_cmd=("true",),
        env={"A": "1"},
        working_dir="/pfs",
        accept_return_code=(3,),
        datum_tries=5,
        datum_timeout=90.0,
        use_pfs_mount=False,
    )


def test_kill_job_processes_kills_only_that_jobs_processes() -> None:
    import subprocess

    from airflow_datum_provider.core.worker._process import kill_job_processes

    def spawn(job: str) -> subprocess.Popen[bytes]:
        env = {**os.environ, "PACH_JOB_ID": job}
        return subprocess.Popen(["sleep", "30"], env=env, start_new_session=True)

    mine, other = spawn("a" * 32), spawn("a" * 31 + "b")
    try:
        assert kill_job_processes("a" * 32) == 1
        assert mine.wait(timeout=5) == -9
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()
