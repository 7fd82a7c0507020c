"""pachctl's spellings, nothing dropped silently, and the first hour: issue 14 end to end.

Sessions a user would type go through the installed console script; many small cases use
click's CliRunner in-process. Nothing here waits on a clock: waits poll a condition with a
generous bound.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from airflow_datum_provider.cli._verbs import COMMANDS, TOP_LEVEL, load_all, verb
from airflow_datum_provider.cli.main import PIPE_CLOSED_EXIT, cli
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.store import Store
from tests.cli.conftest import DATUMCTL, Run
from tests.cli.test_datumctl import json_lines, one_error_line, table

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def invoke(store: Path | str, *args: str, code: int = 0, input: bytes | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--store", str(store), *args], input=input)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


@pytest.fixture
def texts(store_dir: Path) -> Store:
    """Repo ``texts`` with the examples' three files, and pipelines wordcount -> total."""
    store = Store.open(store_dir)
    store.create_repo("texts")
    with store.commit("texts", "master") as c:
        for f in sorted((EXAMPLES / "data" / "texts").iterdir()):
            c.put_bytes(f"/{f.name}", f.read_bytes())
    invoke(store_dir, "create", "pipeline", "-f", str(EXAMPLES / "wordcount.yaml"))
    invoke(store_dir, "create", "pipeline", "-f", str(EXAMPLES / "total.yaml"))
    return store


# -- 1. several -f, stdin, URLs, -p -------------------------------------------------------------


def test_several_f_each_land_in_the_target_folder(run: Run, tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / name).write_bytes(name.encode())
    run("create", "repo", "r")
    run("put", "file", "r@master:/m/", "-f", str(tmp_path / "a"), "-f", str(tmp_path / "b"))
    run("put", "file", "r@master:/n", "-f", str(tmp_path / "a"), "-f", str(tmp_path / "b"))
    listed = [row[0] for row in table(run("list", "file", "r@master:/"))[1:]]
    assert listed == ["/m/", "/n/"]
    assert [r[0] for r in table(run("list", "file", "r@master:/m"))[1:]] == ["/m/a", "/m/b"]
    commits = json_lines(run("list", "commit", "r@master", "-o", "json"))
    assert len(commits) == 2  # one commit per put, whatever the number of -f
    twice = run(
        "put", "file", "r@master:/x/", "-f", str(tmp_path / "a"), "-f", str(tmp_path / "a"), code=1
    )
    assert "would both land at /x/a" in one_error_line(twice)


def test_put_reads_stdin_without_f(store_dir: Path) -> None:
    Store.open(store_dir).create_repo("r")
    invoke(store_dir, "put", "file", "r@master:/in.txt", input=b"from stdin")
    invoke(store_dir, "put", "file", "r@master:/dash.txt", "-f", "-", input=b"dash")
    store = Store.open(store_dir)
    assert store.read_bytes("r", "master", "/in.txt") == b"from stdin"
    assert store.read_bytes("r", "master", "/dash.txt") == b"dash"


@pytest.fixture
def http_root(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A local HTTP server over a folder: ``(base URL, folder)``."""
    root = tmp_path / "www"
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def test_put_from_an_http_url(run: Run, http_root: tuple[str, Path]) -> None:
    base, root = http_root
    (root / "data.csv").write_bytes(b"1,2\n")
    run("create", "repo", "r")
    run("put", "file", "r@master", "-f", f"{base}/data.csv")
    run("put", "file", "r@master:/renamed.csv", "-f", f"{base}/data.csv")
    store_rows = [row[0] for row in table(run("list", "file", "r@master:/"))[1:]]
    assert store_rows == ["/data.csv", "/renamed.csv"]
    missing = run("put", "file", "r@master", "-f", f"{base}/nope.csv", code=1)
    assert one_error_line(missing) == f"datumctl: error: {base}/nope.csv: HTTP 404 File not found"
    assert len(json_lines(run("list", "commit", "r@master", "-o", "json"))) == 2


def test_put_from_an_s3_url(
    run: Run,
    s3_server: str,
    s3_bucket: str,
    s3_storage_options: dict[str, Any],
    tmp_path: Path,
) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(**s3_storage_options)
    fs.pipe(f"{s3_bucket}/in/one.txt", b"one")
    fs.pipe(f"{s3_bucket}/in/sub/two.txt", b"two")
    env = {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    run("create", "repo", "r")
    run("put", "file", "r@master:/one.txt", "-f", f"s3://{s3_bucket}/in/one.txt", env=env)
    run("put", "file", "r@master:/tree", "-r", "-f", f"s3://{s3_bucket}/in", env=env)
    files = [f["path"] for f in json_lines(run("glob", "file", "r@master:/**", "-o", "json"))]
    assert "/one.txt" in files
    assert "/tree/sub/two.txt" in files
    folder = run("put", "file", "r@master", "-f", f"s3://{s3_bucket}/in", env=env, code=1)
    assert "is a folder: use -r" in one_error_line(folder)

    # Into a store on S3, a directory goes up several files at a time by default.
    local = tmp_path / "s3tree"
    for i in range(12):
        (local / f"d{i % 2}").mkdir(parents=True, exist_ok=True)
        (local / f"d{i % 2}" / f"f{i}").write_bytes(f"v{i}".encode())
    remote = ["--store", f"s3://{s3_bucket}/store"]
    run(*remote, "create", "repo", "s", store=False, env=env)
    run(*remote, "put", "file", "s@master:/t", "-r", "-f", str(local), store=False, env=env)
    listed = json_lines(
        run(*remote, "glob", "file", "s@master:/t/**", "-o", "json", store=False, env=env)
    )
    assert len([f for f in listed if not f["path"].endswith("/")]) == 12


def test_put_p_n_uploads_in_parallel_into_one_commit(run: Run, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    for i in range(24):
        (tree / f"d{i % 3}").mkdir(parents=True, exist_ok=True)
        (tree / f"d{i % 3}" / f"f{i:02}").write_bytes(f"content {i}".encode() * (i + 1))
    run("create", "repo", "r")
    run("put", "file", "r@one:/t", "-r", "-f", str(tree))
    run("put", "file", "r@many:/t", "-r", "-f", str(tree), "-p", "6")
    one = json_lines(run("glob", "file", "r@one:/**", "-o", "json"))
    many = json_lines(run("glob", "file", "r@many:/**", "-o", "json"))
    assert one == many
    assert len([f for f in many if not f["path"].endswith("/")]) == 24
    assert len(json_lines(run("list", "commit", "r@many", "-o", "json"))) == 1


# -- 2. get -r, delete -r, copy, diff, inspect branch, list commit, ^N ------------------------


def test_get_file_recursive_never_overwrites(run: Run, store_dir: Path, tmp_path: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("r")
    with store.commit("r", "master") as c:
        c.put_bytes("/d/a.txt", b"a")
        c.put_bytes("/d/sub/b.txt", b"b")
        c.put_bytes("/other", b"o")
    out = tmp_path / "out"
    run("get", "file", "r@master:/d", "-r", "-o", str(out))
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "a.txt",
        "sub/b.txt",
    ]
    assert (out / "sub" / "b.txt").read_bytes() == b"b"
    again = run("get", "file", "r@master:/d", "-r", "-o", str(out), code=1)
    assert "never overwrites a local file" in one_error_line(again)
    single = tmp_path / "single"
    run("get", "file", "r@master:/other", "-r", "-o", str(single))  # -r of a file: that file
    assert [p.name for p in single.iterdir()] == ["other"]
    dir_without_r = run("get", "file", "r@master:/d", code=1)
    assert "get file -r r@master:/d -o DIR" in one_error_line(dir_without_r)


def test_copy_diff_inspect_branch_list_commit_and_caret_n(store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("r")
    store.create_repo("s")
    for n in range(3):
        with store.commit("r", "master") as c:
            c.put_bytes("/d/f.txt", f"v{n}".encode())
            c.put_bytes(f"/d/new{n}", b"x")
    ids = [c.id for c in store.list_commits("r", "master")]
    # pachctl's foo@master^2 is two commits back (like ~2).
    shown = json.loads(invoke(store_dir, "inspect", "commit", "r@master^2", "-o", "json").output)
    assert shown["id"] == ids[2]
    invoke(store_dir, "copy", "file", "r@master:/d", "s@master:/copied")
    assert store.read_bytes("s", "master", "/copied/f.txt") == b"v2"
    diff = [
        json.loads(x)
        for x in invoke(store_dir, "diff", "file", "r@master:/d", "-o", "json").output.splitlines()
    ]
    assert [(d["change"], d["path"]) for d in diff] == [("modified", "/f.txt"), ("added", "/new2")]
    against = invoke(store_dir, "diff", "file", "s@master:/copied", "r@master~2:/d").output
    assert [row.split()[:2] for row in against.splitlines()[1:]] == [
        ["modified", "/f.txt"],
        ["added", "/new1"],
        ["added", "/new2"],
    ]
    every = [
        json.loads(x) for x in invoke(store_dir, "list", "commit", "-o", "json").output.splitlines()
    ]
    assert {c["repo"] for c in every} == {"r", "s"}
    assert len(every) == 4
    branch = invoke(store_dir, "inspect", "branch", "r@master").output
    assert "Head:" in branch
    assert ids[0] in branch


def test_delete_commit_with_none_open_does_not_suggest_starting_one(store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("r")
    with store.commit("r", "master") as c:
        c.put_bytes("/a", b"a")
    result = invoke(store_dir, "delete", "commit", "r@master", code=1)
    assert result.stderr.strip() == "datumctl: error: no open commit on r@master"
    result = invoke(store_dir, "finish", "commit", "r@master", code=1)
    assert "start one with: datumctl start commit r@master" in result.stderr


def test_errors_name_the_ref_typed(store_dir: Path) -> None:
    store = Store.open(store_dir)
    store.create_repo("images")
    with store.commit("images", "master") as c:
        c.put_bytes("/a", b"a")
    result = invoke(store_dir, "inspect", "file", "images@master:/nope", code=1)
    assert result.stderr.strip().endswith("(from images@master:/nope)")


def test_aliases_yaml_and_raw(store_dir: Path) -> None:
    Store.open(store_dir).create_repo("r", description="d")
    assert invoke(store_dir, "list", "repos").output == invoke(store_dir, "list", "repo").output
    raw = invoke(store_dir, "list", "repo", "--raw").output
    assert json.loads(raw)["name"] == "r"
    assert (
        yaml.safe_load(invoke(store_dir, "inspect", "repo", "r", "-o", "yaml").output)[
            "description"
        ]
        == "d"
    )
    assert invoke(store_dir, "list", "repos", "-o", "json").output == raw


# -- 3. nothing dropped or broken silently -------------------------------------------------------


def test_deleting_what_pipelines_need_is_refused(texts: Store, store_dir: Path) -> None:
    error = invoke(store_dir, "delete", "repo", "texts", code=1).stderr
    assert "repo 'texts' is an input of pipeline wordcount" in error
    error = invoke(store_dir, "delete", "repo", "wordcount", code=1).stderr
    assert "repo 'wordcount' is the output of pipeline 'wordcount'" in error
    error = invoke(store_dir, "delete", "pipeline", "wordcount", code=1).stderr
    assert "its output repo 'wordcount' is an input of pipeline total" in error
    assert texts.repo_exists("texts")
    assert JobRecords(texts).pipeline_exists("wordcount")

    invoke(store_dir, "delete", "pipeline", "total")  # nothing reads total's output
    invoke(store_dir, "delete", "pipeline", "--all")
    assert JobRecords(texts).pipelines() == []
    assert not texts.repo_exists("wordcount")
    invoke(store_dir, "delete", "repo", "texts")  # no pipeline left that reads it


def test_force_deletes_anyway(texts: Store, store_dir: Path) -> None:
    invoke(store_dir, "delete", "repo", "texts", "--force")
    assert not texts.repo_exists("texts")
    invoke(store_dir, "delete", "pipeline", "wordcount", "--force")
    assert not texts.repo_exists("wordcount")


def test_user_commits_into_an_output_branch_are_refused(texts: Store, store_dir: Path) -> None:
    invoke(store_dir, "run", "pipeline", "wordcount")
    head = texts.branch_head("wordcount", "master")
    for args in (
        ("put", "file", "wordcount@master:/x"),
        ("start", "commit", "wordcount@master"),
        ("copy", "file", "texts@master:/bob.txt", "wordcount@master:/bob.txt"),
        ("delete", "file", "wordcount@master:/bob.txt.count"),
    ):
        result = invoke(store_dir, *args, code=1, input=b"x")
        assert result.stderr.startswith(
            "datumctl: error: cannot start a commit on an output branch: wordcount@master is "
            "written by pipeline 'wordcount'"
        ), (args, result.stderr)
    assert texts.branch_head("wordcount", "master") == head
    assert texts.list_open_commits("wordcount") == []


# -- 4. run pipeline --downstream, watch, wait, logs --------------------------------------------


def test_run_downstream_runs_what_moved_in_provenance_order(texts: Store, store_dir: Path) -> None:
    result = invoke(store_dir, "run", "pipeline", "wordcount", "--downstream")
    lines = result.stdout.splitlines()
    assert [line.split()[1:] for line in lines] == [
        ["success", "3", "+", "0", "/", "3"],
        ["success", "1", "+", "0", "/", "1"],
    ]
    assert texts.read_bytes("total", "master", "/total").strip() == b"36"
    (total_job,) = JobRecords(texts).jobs("total")
    assert total_job.id == lines[1].split()[0]
    # Nothing moved upstream of total: --downstream from total itself runs it, and only it.
    again = invoke(store_dir, "run", "pipeline", "total", "--downstream")
    assert len(again.stdout.splitlines()) == 1


def test_watch_runs_pipelines_whose_inputs_moved(
    texts: Store, store_dir: Path, clean_env: dict[str, str]
) -> None:
    assert DATUMCTL is not None
    watcher = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "watch", "--interval", "0.1"],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        records = JobRecords(texts)

        def total_saw(words: bytes) -> bool:
            jobs = records.jobs("total")
            if not jobs or jobs[0].state != "success":
                return False
            return texts.read_bytes("total", "master", "/total").strip() == words

        _wait_for(lambda: total_saw(b"36"))
        with texts.commit("texts", "master") as c:
            c.put_bytes("/bob.txt", (EXAMPLES / "data" / "more" / "bob.txt").read_bytes())
        _wait_for(lambda: total_saw(b"42"))
    finally:
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert b"datumctl: watching every pipeline" in err
    assert len(JobRecords(texts).jobs("wordcount")) == 2  # each change ran once


def _wait_for(predicate: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_wait_job_and_commit(texts: Store, store_dir: Path, clean_env: dict[str, str]) -> None:
    invoke(store_dir, "run", "pipeline", "wordcount")
    (job,) = JobRecords(texts).jobs("wordcount")
    assert invoke(store_dir, "wait", "job", job.id).stdout.split()[:2] == [job.id, "success"]
    head = texts.branch_head("texts", "master")
    assert invoke(store_dir, "wait", "commit", "texts@master").stdout.strip() == head
    assert DATUMCTL is not None
    commit = texts.start_commit("texts", "master")
    waiter = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "wait", "commit", f"texts@{commit.id}"],
        env=clean_env,
        stdout=subprocess.PIPE,
    )
    commit.finish()
    out, _ = waiter.communicate(timeout=60)
    assert (waiter.returncode, out.strip()) == (0, commit.id.encode())
    late = invoke(store_dir, "wait", "commit", f"texts@{commit.id}", "--timeout", "bogus", code=2)
    assert "expected a duration" in late.stderr


def test_logs_tail_and_follow(texts: Store, store_dir: Path) -> None:
    invoke(store_dir, "run", "pipeline", "wordcount")
    whole = invoke(store_dir, "logs", "-p", "wordcount").stdout
    assert whole.count("=== datum ") >= 3
    tail = invoke(store_dir, "logs", "-p", "wordcount", "--tail", "2").stdout
    assert tail.splitlines() == whole.splitlines()[-2:]
    followed = invoke(store_dir, "logs", "-p", "wordcount", "-f").stdout
    assert followed == whole  # a job that ended: -f prints it all and returns
    master = invoke(store_dir, "logs", "-p", "wordcount", "--master", code=2)
    assert "no pipeline master process" in master.stderr


def test_a_dead_runner_is_shown_as_such(texts: Store, store_dir: Path) -> None:
    # A job started by a process that is gone: no runner will ever finish it.
    code = (
        "import sys; from airflow_datum_provider.core.store import Store; "
        "from airflow_datum_provider.core.jobs.lifecycle import start_job; "
        "start_job(Store.open(sys.argv[1]), 'wordcount')"
    )
    subprocess.run([sys.executable, "-c", code, str(store_dir)], check=True)
    (job,) = JobRecords(texts).jobs("wordcount")
    row = table_of(invoke(store_dir, "list", "job").stdout)[1]
    assert row[-1] == f"{job.state}: runner dead"
    assert "idle / " + f"{job.state}: runner dead" in invoke(store_dir, "list", "pipeline").stdout
    error = invoke(store_dir, "wait", "job", job.id, code=1).stderr
    assert "its runner died" in error


def table_of(text: str) -> list[list[str]]:
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


# -- 5. help, start-up, pipes, completion --------------------------------------------------------


def test_bare_datumctl_and_help_exit_0(run: Run) -> None:
    bare = run(store=False).stdout.decode()
    assert bare.startswith("Usage: datumctl")
    for noun in ("repo", "branch", "commit", "file", "pipeline", "job", "datum"):
        assert noun in bare
    assert run("help", store=False).stdout.decode() == bare
    put_help = run("help", "put", "file", store=False).stdout.decode()
    assert put_help.startswith("Usage: datumctl put file")
    assert "Examples:" in put_help
    assert run("list", store=False).stdout.decode().startswith("Usage: datumctl list")


def test_every_command_lists_its_examples(store_dir: Path) -> None:
    load_all()
    for name, nouns in COMMANDS.items():
        group_help = invoke(store_dir, name, "--help").output
        assert "Examples:" in group_help, name
        registered = set(verb(name).commands)
        assert registered == set(nouns), (name, registered)
        for noun in nouns:
            text = invoke(store_dir, name, noun, "--help").output
            assert "Examples:" in text, f"{name} {noun}"
            assert f"datumctl {name} {noun}" in text
    for name in TOP_LEVEL:
        assert "Examples:" in invoke(store_dir, name, "--help").output, name


def test_help_loads_no_engine_and_list_repo_no_yaml() -> None:
    code = (
        "import sys\n"
        "from airflow_datum_provider.cli.main import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('airflow_datum_provider', 'yaml', 'tqdm', 'fsspec'))))\n"
    )
    helped = (
        subprocess.run(
            [sys.executable, "-c", code, "--help"], capture_output=True, text=True, check=True
        )
        .stdout.splitlines()[-1]
        .split()
    )
    assert "airflow_datum_provider.core.store" not in helped
    assert "airflow_datum_provider.core.engine" not in helped
    assert "yaml" not in helped
    assert "tqdm" not in helped


def test_a_closed_pipe_exits_quietly_the_same_way_every_time(
    store_dir: Path, clean_env: dict[str, str]
) -> None:
    store = Store.open(store_dir)
    store.create_repo("r")
    with store.commit("r", "master") as c:
        for i in range(4000):  # far more than a pipe holds
            c.put_bytes(f"/file-with-a-long-name-{i:05}.txt", b"x")
    assert DATUMCTL is not None
    for _ in range(3):
        proc = subprocess.Popen(
            [DATUMCTL, "--store", str(store_dir), "list", "file", "r@master:/"],
            env=clean_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(b"NAME")
        proc.stdout.close()  # `| head -1`
        assert proc.wait(timeout=60) == PIPE_CLOSED_EXIT
        assert proc.stderr is not None
        assert proc.stderr.read() == b""


def test_completion_scripts_and_names_from_the_store(
    texts: Store, store_dir: Path, clean_env: dict[str, str]
) -> None:
    assert DATUMCTL is not None
    invoke(store_dir, "run", "pipeline", "wordcount")
    for shell in ("bash", "zsh"):
        script = invoke(store_dir, "completion", shell).stdout
        assert "_DATUMCTL_COMPLETE" in script

    def complete(words: str) -> list[str]:
        env = {
            **clean_env,
            "DATUM_STORE": str(store_dir),
            "_DATUMCTL_COMPLETE": "bash_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(len(words.split(" ")) - 1),
        }
        out = subprocess.run([DATUMCTL], env=env, capture_output=True, text=True, check=True)
        return [line.split(",", 1)[1] for line in out.stdout.splitlines()]  # "type,value"

    assert complete("datumctl list branch te") == ["texts"]
    assert complete("datumctl list commit te") == ["texts@"]
    assert complete("datumctl list commit texts@ma") == ["texts@master"]
    assert "texts@master:/bob.txt" in complete("datumctl get file texts@master:/b")
    assert complete("datumctl run pipeline wo") == ["wordcount"]
    (job,) = JobRecords(texts).jobs("wordcount")
    assert complete("datumctl inspect job word") == [f"wordcount@{job.id}"]
    assert "repos" not in complete("datumctl list re")  # aliases stay hidden


def test_unsupported_pachctl_flags_say_why(store_dir: Path) -> None:
    Store.open(store_dir).create_repo("r")
    cases = {
        ("list", "repo", "--project", "x"): "datumctl has no projects",
        ("put", "file", "r@master:/x", "--untar"): "unpack the archive locally",
    }
    for args, why in cases.items():
        result = invoke(store_dir, *args, code=2, input=b"")
        assert why in result.stderr, args


def test_run_pipeline_shows_a_datum_bar_on_a_terminal(
    store_dir: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """The datums wait for a gate the test opens once the bar is up: no timing involved."""
    import fcntl
    import pty
    import struct
    import termios

    assert DATUMCTL is not None
    store = Store.open(store_dir)
    store.create_repo("data")
    with store.commit("data", "master") as c:
        for i in range(3):
            c.put_bytes(f"/f{i}", b"x")
    gate = tmp_path / "gate"
    spec = {
        "pipeline": {"name": "gated"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", f'while [ ! -e "{gate}" ]; do sleep 0.02; done'],
        },
    }
    (tmp_path / "gated.json").write_text(json.dumps(spec))
    invoke(store_dir, "create", "pipeline", "-f", str(tmp_path / "gated.json"))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "run", "pipeline", "gated"],
        stdout=subprocess.PIPE,
        stderr=follower,
        env={**clean_env, "DATUMCTL_PROGRESS_DELAY": "0"},
    )
    os.close(follower)
    shown = b""
    try:
        deadline = time.monotonic() + 60
        while b"0/3 datums" not in shown:
            assert time.monotonic() < deadline, shown
            shown += os.read(leader, 4096)
        gate.touch()  # the bar is up with nothing done: let the datums finish
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # EIO: datumctl closed the terminal
                break
            if not chunk:
                break
            shown += chunk
    finally:
        gate.touch()
        os.close(leader)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    assert re.search(rb"datumctl: job [0-9a-f]{32} started", shown)
    assert b"gated:" in shown
    assert b"3/3 datums" in shown
    assert b"processed 3, skipped 0, failed 0" in shown
    assert out.split()[1:] == [b"success", b"3", b"+", b"0", b"/", b"3"]


def test_states_are_coloured_on_a_terminal(texts: Store, store_dir: Path) -> None:
    invoke(store_dir, "run", "pipeline", "wordcount")
    coloured = CliRunner().invoke(cli, ["--store", str(store_dir), "list", "job"], color=True)
    assert "\x1b[32msuccess\x1b[0m" in coloured.stdout
    plain = invoke(store_dir, "list", "job").stdout  # not a terminal: no escape codes
    assert "\x1b[" not in plain


def test_logs_follow_a_running_job(
    store_dir: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    """-f prints each datum's log as it ends and returns when the job does (gated, not timed)."""
    assert DATUMCTL is not None
    store = Store.open(store_dir)
    store.create_repo("data")
    with store.commit("data", "master") as c:
        c.put_bytes("/first", b"1")
        c.put_bytes("/second", b"2")
    gate = tmp_path / "gate"
    # Whichever datum runs first (their order follows their hashes) ends at once; the other
    # waits for the gate.
    claimed = tmp_path / "claimed"
    script = (
        f'if mkdir "{claimed}" 2>/dev/null; then echo "log of first"; '
        f'else while [ ! -e "{gate}" ]; do sleep 0.02; done; echo "log of second"; fi'
    )
    spec = {
        "pipeline": {"name": "slow"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", script]},
    }
    (tmp_path / "slow.json").write_text(json.dumps(spec))
    invoke(store_dir, "create", "pipeline", "-f", str(tmp_path / "slow.json"))
    runner = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "run", "pipeline", "slow"],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    follower = None
    try:
        records = JobRecords(store)
        _wait_for(lambda: bool(records.jobs("slow")) and records.jobs("slow")[0].planned)
        (job,) = records.jobs("slow")
        follower = subprocess.Popen(
            [DATUMCTL, "--store", str(store_dir), "logs", "-j", job.id, "-f"],
            env=clean_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert follower.stdout is not None
        seen = b""
        while b"log of first" not in seen:  # printed while the job still runs
            line = follower.stdout.readline()
            assert line, "logs -f ended before the job did"
            seen += line
        assert follower.poll() is None
        gate.touch()
        rest, _ = follower.communicate(timeout=60)
        assert b"log of second" in rest
        assert follower.returncode == 0
    finally:
        gate.touch()
        runner.communicate(timeout=60)
        if follower is not None and follower.poll() is None:
            follower.kill()
    assert runner.returncode == 0
