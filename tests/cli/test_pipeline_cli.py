"""``datumctl create / update / list / inspect / delete / run pipeline``, end to end.

The sessions a user would type go through the installed console script (subprocesses, ~0.3 s
each); checks of many small cases use click's CliRunner in-process. Crash safety is proved by
SIGKILLing the real ``datumctl run pipeline`` process, both from outside (``kill -9``
mid-datum) and at the engine's named failpoints, then resuming the job.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.store import Store
from tests.cli.conftest import DATUMCTL, Run
from tests.cli.test_datumctl import ID, json_lines, table

# One datum per input file: log a line, copy the file to <name>.out, then record the run in
# $COUNTER (outside the scratch folder, so it survives the datum) once the work is done.
COPY = (
    'n=$(basename "$data"); echo "hello from $n"; sleep "${PAUSE:-0}"; '
    'case "$n" in bad*) echo "cannot read $n" >&2; exit 3;; esac; '
    'cp "$data" "$PFS_ROOT/out/$n.out"; echo "$n" >> "$COUNTER"'
)


def write_spec(
    path: Path, counter: Path, *, name: str = "copy", pause: float = 0, **extra: Any
) -> Path:
    spec: dict[str, Any] = {
        "pipeline": {"name": name},
        "description": "copy every file",
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", COPY],
            "env": {"COUNTER": str(counter), "PAUSE": str(pause)},
        },
        **extra,
    }
    path.write_text(json.dumps(spec))
    return path


def put(store: Store, files: dict[str, bytes]) -> str:
    if not store.repo_exists("data"):
        store.create_repo("data")
    with store.commit("data", "master") as c:
        for path, data in files.items():
            c.put_bytes(path, data)
    return c.id


def runs(counter: Path) -> Counter[str]:
    """How often user code finished each input file (across every job and attempt)."""
    if not counter.exists():
        return Counter()
    return Counter(counter.read_text().split())


def outputs(store: Store, repo: str = "copy") -> dict[str, bytes]:
    return {e.path: store.read_bytes(repo, "master", e.path) for e in store.walk(repo, "master")}


def cells(text: str) -> list[list[str]]:
    """A table printed in-process, as rows of cells (columns: two or more spaces apart)."""
    return [re.split(r"\s{2,}", line.strip()) for line in text.splitlines()]


def invoke(store_dir: Path, *args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, ["--store", str(store_dir), *args])
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


@pytest.fixture
def store(store_dir: Path) -> Store:
    return Store.open(store_dir)


@pytest.fixture
def counter(tmp_path: Path) -> Path:
    return tmp_path / "runs.txt"


# -- a whole session through the console script ------------------------------------------


def test_create_run_rerun_list(run: Run, store: Store, tmp_path: Path, counter: Path) -> None:
    put(store, {"/a.txt": b"alpha", "/b.txt": b"beta"})
    spec = write_spec(tmp_path / "copy.json", counter)
    run("create", "pipeline", "-f", str(spec))

    rows = table(run("list", "pipeline"))
    assert rows[0] == ["NAME", "VERSION", "INPUT", "CREATED", "STATE / LAST JOB", "DESCRIPTION"]
    assert rows[1][:3] == ["copy", "1", "data:/*"]
    assert rows[1][-2:] == ["idle / -", "copy every file"]
    assert store.repo_exists("copy")  # the output repo is created with the pipeline

    first = run("run", "pipeline", "copy")
    first_id, state, progress = first.stdout.decode().split(" ", 2)
    assert ID.match(first_id)
    # The job id comes first, on stderr, with the command to follow it.
    assert first.stderr.decode().splitlines() == [
        f"datumctl: job {first_id} started (pipeline copy; follow it with: "
        f"datumctl logs -j copy@{first_id} -f)"
    ]
    assert table(run("list", "pipeline", "copy"))[1][4] == "idle / success"
    assert (state, progress.strip()) == ("success", "2 + 0 / 2")
    assert outputs(store) == {"/a.txt.out": b"alpha", "/b.txt.out": b"beta"}

    put(store, {"/a.txt": b"ALPHA"})
    second = json_lines(run("run", "pipeline", "copy", "--output", "json"))[0]
    assert second["state"] == "success"
    assert outputs(store) == {"/a.txt.out": b"ALPHA", "/b.txt.out": b"beta"}
    assert runs(counter) == {"a.txt": 2, "b.txt": 1}

    rows = table(run("list", "job", "-p", "copy"))
    assert rows[0] == [
        "PIPELINE",
        "ID",
        "STARTED",
        "DURATION",
        "RESTART",
        "PROGRESS",
        "DL",
        "UL",
        "STATE",
    ]
    newest, oldest = rows[1], rows[2]
    assert newest[:2] == ["copy", second["id"]]
    assert newest[3] in ("Less than a second", "1 second", "2 seconds")
    assert newest[4:] == ["0", "1 + 1 / 2", "5 B", "5 B", "success"]
    assert oldest[1] == first_id
    assert oldest[4:] == ["0", "2 + 0 / 2", "9 B", "9 B", "success"]

    (info,) = json_lines(run("inspect", "job", f"copy@{second['id']}", "--output", "json"))
    assert info == second
    assert set(info) == set(JobInfo(id="x", pipeline="p").to_dict())
    assert (info["processed"], info["skipped"], info["total"]) == (1, 1, 2)
    assert info["base_job"] == first_id
    assert info["output_commit"] == store.branch_head("copy", "master")
    assert info["inputs"] == [f"data@master={store.branch_head('data', 'master')}"]


def test_failed_job_exits_1_and_stays_inspectable(
    run: Run, store: Store, tmp_path: Path, counter: Path
) -> None:
    put(store, {"/a.txt": b"alpha"})
    invoke(
        store.url,
        "create",
        "pipeline",
        "-f",
        str(write_spec(tmp_path / "s.json", counter, datum_tries=2)),
    )
    invoke(store.url, "run", "pipeline", "copy")
    head = store.branch_head("copy", "master")
    put(store, {"/bad.txt": b"?"})

    proc = run("run", "pipeline", "copy", code=1)
    assert proc.stdout == b""
    job = JobRecords(store).jobs("copy")[0]
    assert job.state == "failure"
    (bad,) = job.failed_datums
    said = proc.stderr.decode().splitlines()
    assert said[0].startswith(f"datumctl: job {job.id} started")
    assert said[1] == f"datumctl: error: job {job.id} failure: datum {bad} failed"
    # The failed datum: its files, exit status and attempts, its last lines, and where to
    # read the rest.
    assert (
        said[2]
        == f"datumctl: datum {bad} (data@{store.branch_head('data', 'master')}:/bad.txt): exit status 3 after 2 attempts"
    )
    assert "datumctl:   | cannot read bad.txt" in said
    assert said[-1] == f"datumctl: more: datumctl logs -j copy@{job.id} --datum {bad}"
    logs = run("logs", "-j", f"copy@{job.id}", "--datum", bad).stdout.decode()
    assert "hello from bad.txt" in logs
    assert store.branch_head("copy", "master") == head  # the output branch did not move
    assert runs(counter) == {"a.txt": 1}  # a.txt was skipped, bad.txt never finished

    rows = cells(invoke(store.url, "list", "job", "-p", "copy").output)
    assert rows[1][-1] == "failure: " + f"datum {bad} failed"[:24] + "…"  # as pachctl trims
    assert rows[1][5] == "0 + 1 / 2"


# -- create / update / delete --------------------------------------------------------------


def test_update_keeps_salt_unless_reprocess(store: Store, tmp_path: Path, counter: Path) -> None:
    put(store, {"/a.txt": b"alpha", "/b.txt": b"beta"})
    spec = write_spec(tmp_path / "s.json", counter)
    invoke(store.url, "create", "pipeline", "-f", str(spec))
    invoke(store.url, "run", "pipeline", "copy")
    (before,) = [
        json.loads(x)
        for x in invoke(store.url, "list", "pipeline", "--output", "json").output.splitlines()
    ]

    write_spec(spec, counter, description="changed")
    invoke(store.url, "update", "pipeline", "-f", str(spec))
    (after,) = json.loads(
        "[" + invoke(store.url, "inspect", "pipeline", "copy", "--output", "json").output + "]"
    )
    assert after["salt"] == before["salt"]
    assert (before["version"], after["version"]) == (1, 2)
    assert after["spec"]["description"] == "changed"
    assert invoke(store.url, "run", "pipeline", "copy").stdout.split()[1:] == [
        "success",
        "0",
        "+",
        "2",
        "/",
        "2",
    ]
    assert runs(counter) == {"a.txt": 1, "b.txt": 1}  # unchanged datums skipped

    invoke(store.url, "update", "pipeline", "-f", str(spec), "--reprocess")
    info = JobRecords(store).pipeline("copy")
    assert (info.version, info.salt != before["salt"]) == (3, True)
    assert invoke(store.url, "run", "pipeline", "copy").stdout.split()[1:] == [
        "success",
        "2",
        "+",
        "0",
        "/",
        "2",
    ]
    assert runs(counter) == {"a.txt": 2, "b.txt": 2}
    assert outputs(store) == {"/a.txt.out": b"alpha", "/b.txt.out": b"beta"}


def test_inspect_and_delete_pipeline(store: Store, tmp_path: Path, counter: Path) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(tmp_path / "s.yaml", counter, datum_timeout="30s")
    invoke(store.url, "create", "pipeline", "-f", str(spec))
    text = invoke(store.url, "inspect", "pipeline", "copy").output
    salt = JobRecords(store).pipeline("copy").salt
    assert f"Salt:           {salt}" in text
    assert "Datum Timeout:  30s" in text
    assert "Input:          data:/*" in text
    assert '"datum_timeout": "30s"' in text  # the whole spec follows, as JSON

    invoke(store.url, "run", "pipeline", "copy")
    invoke(store.url, "delete", "pipeline", "copy")
    assert invoke(store.url, "list", "pipeline").output.splitlines() == [
        "NAME   VERSION   INPUT   CREATED   STATE / LAST JOB   DESCRIPTION"
    ]
    assert not store.repo_exists("copy")
    assert invoke(store.url, "list", "job", "--output", "json").output == ""
    assert store.repo_exists("data")

    invoke(store.url, "create", "pipeline", "-f", str(spec))
    invoke(store.url, "delete", "pipeline", "copy", "--keep-repo")
    assert store.repo_exists("copy")


def test_spec_from_stdin_and_input_shorthand(store: Store) -> None:
    put(store, {"/a.txt": b"alpha"})
    store.create_repo("labels")
    spec = {
        "pipeline": {"name": "pairs"},
        "input": {
            "cross": [
                {"pfs": {"repo": "data", "glob": "/*"}},
                {
                    "union": [
                        {"pfs": {"repo": "labels", "glob": "/"}},
                        {"pfs": {"repo": "data", "glob": "/", "name": "all"}},
                    ]
                },
            ]
        },
        "transform": {"cmd": ["true"]},
    }
    result = CliRunner().invoke(
        cli, ["--store", store.url, "create", "pipeline", "-f", "-"], input=json.dumps(spec)
    )
    assert result.exit_code == 0, result.output
    rows = invoke(store.url, "list", "pipeline").output.splitlines()
    # pachctl prints repos (not input names), children sorted by input name as Pachyderm does.
    assert "((data:/ ∪ labels:/) ⨯ data:/*)" in rows[1]


USER_ERRORS = [
    ("unknown-pipeline", ("inspect", "pipeline", "nope"), "pipeline 'nope' not found"),
    ("bad-name", ("inspect", "pipeline", "a.b"), "pipeline name 'a.b' is invalid"),
    ("delete-unknown", ("delete", "pipeline", "nope"), "pipeline 'nope' not found"),
    ("run-unknown", ("run", "pipeline", "nope"), "pipeline 'nope' not found"),
    ("update-unknown", ("update", "pipeline", "-f", "{spec_nope}"), "pipeline 'nope' not found"),
    ("create-twice", ("create", "pipeline", "-f", "{spec}"), "already exists"),
    ("missing-file", ("create", "pipeline", "-f", "{missing}"), "No such file or directory"),
    ("bad-spec", ("create", "pipeline", "-f", "{bad}"), "datum_tries"),
    ("unknown-input-repo", ("create", "pipeline", "-f", "{spec_norepo}"), "repo 'nope'"),
    ("resume-bad-id", ("run", "pipeline", "copy", "--resume", "x/y"), "job id 'x/y' is invalid"),
    ("resume-unknown", ("run", "pipeline", "copy", "--resume", "a" * 32), "not found"),
]


@pytest.mark.parametrize(
    ("args", "message"), [e[1:] for e in USER_ERRORS], ids=[e[0] for e in USER_ERRORS]
)
def test_user_errors_are_one_line(
    store: Store, tmp_path: Path, counter: Path, args: tuple[str, ...], message: str
) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(tmp_path / "spec.json", counter)
    invoke(store.url, "create", "pipeline", "-f", str(spec))
    files = {
        "spec": str(spec),
        "spec_nope": str(write_spec(tmp_path / "nope.json", counter, name="nope")),
        "missing": str(tmp_path / "missing.json"),
        "bad": str(write_spec(tmp_path / "bad.json", counter, name="b", datum_tries=-1)),
        "spec_norepo": str(
            write_spec(
                tmp_path / "nr.json",
                counter,
                name="nr",
                input={"pfs": {"repo": "nope", "glob": "/*"}},
            )
        ),
    }
    result = CliRunner().invoke(cli, ["--store", store.url, *(a.format(**files) for a in args)])
    assert result.exit_code == 1, result.output
    (line,) = [x for x in result.output.splitlines() if not x.startswith("datumctl: job ")]
    assert line.startswith("datumctl: error: ")
    assert message in line


@pytest.mark.parametrize("verb", ["create pipeline", "update pipeline", "list datum"])
@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            "pipeline:\n  name: x\ninput: {pfs: {repo: a, glob: /*}\ntransform: {cmd: [sh]}\n",
            "not valid JSON or YAML: expected ',' or '}', but got '<scalar>' (line 4, column 1)",
        ),
        ('{"pipeline": {"name": "x"},\n "input": 3,,}', "(line 2, column 13)"),
        (
            "pipeline: {name: x}\npipeline: {name: y}\n",
            "key `pipeline` is given twice in one mapping (line 2)",
        ),
        ("\xff\xfe", "not UTF-8 text"),
    ],
    ids=["yaml", "json", "duplicate-key", "not-utf8"],
)
def test_a_spec_file_that_does_not_parse_is_one_line_naming_it(
    store: Store, tmp_path: Path, verb: str, text: str, error: str
) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_bytes(text.encode("latin-1") if text.startswith("\xff") else text.encode())
    result = CliRunner().invoke(cli, ["--store", store.url, *verb.split(), "-f", str(spec)])
    assert result.exit_code == 1, result.output
    (line,) = result.output.splitlines()
    assert line.startswith(f"datumctl: error: {spec}: ")
    assert error in line


def test_ignored_spec_fields_warn(store: Store, tmp_path: Path, counter: Path) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(tmp_path / "s.json", counter, enable_stats=True)
    result = CliRunner().invoke(cli, ["--store", store.url, "create", "pipeline", "-f", str(spec)])
    assert result.exit_code == 0, result.output
    assert "datumctl: warning: enable_stats: not supported" in result.output


def test_list_datum_from_spec_shows_ignored_fields_as_datumctl_warnings(
    store: Store, tmp_path: Path, counter: Path
) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(tmp_path / "s.json", counter, enable_stats=True)
    result = CliRunner().invoke(cli, ["--store", store.url, "list", "datum", "-f", str(spec)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert (
        "datumctl: warning: enable_stats: not supported by airflow-datum-provider; ignored" in lines
    )
    assert "UnsupportedFieldWarning" not in result.output
    assert any("a.txt" in line for line in lines)


def test_create_pipeline_warns_about_kubernetes_only_fields(
    store: Store, tmp_path: Path, counter: Path
) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(
        tmp_path / "s.json",
        counter,
        resource_limits={"memory": "1G"},
        pod_patch="[]",
    )
    raw = json.loads(spec.read_text())
    raw["transform"]["image"] = "python:3.12"
    spec.write_text(json.dumps(raw))
    result = CliRunner().invoke(cli, ["--store", store.url, "create", "pipeline", "-f", str(spec)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "datumctl: warning: transform.image, resource_limits, pod_patch: used only by the "
        "Kubernetes runner; ignored when running locally"
    ]
    assert invoke(store.url, "run", "pipeline", "copy").stdout.split()[1] == "success"


def test_pipeline_the_local_runner_cannot_run_is_created_but_refused(
    store: Store, tmp_path: Path, counter: Path
) -> None:
    put(store, {"/a.txt": b"alpha"})
    spec = write_spec(tmp_path / "s.json", counter)
    raw = json.loads(spec.read_text())
    raw["transform"]["user"] = "nobody"
    spec.write_text(json.dumps(raw))
    created = CliRunner().invoke(cli, ["--store", store.url, "create", "pipeline", "-f", str(spec)])
    assert created.exit_code == 0, created.output
    assert created.output.splitlines() == [
        "datumctl: warning: transform.user: not supported by the local runner yet; "
        "`run pipeline` will refuse this pipeline"
    ]
    result = CliRunner().invoke(cli, ["--store", store.url, "run", "pipeline", "copy"])
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "datumctl: error: transform.user: not supported by the local runner yet"
    ]
    assert JobRecords(store).jobs("copy") == []


# -- crash safety --------------------------------------------------------------------------


def _wait_for(predicate: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _results(store: Store, pipeline: str = "copy") -> dict[str, dict[str, Any]]:
    records = JobRecords(store)
    jobs = records.jobs(pipeline)
    if not jobs or not jobs[0].planned:
        return {}
    return {r["datum_id"]: r for _, r in records.all_results(jobs[0])}


def test_resume_after_kill_9(
    run: Run,
    store: Store,
    store_dir: Path,
    tmp_path: Path,
    counter: Path,
    clean_env: dict[str, str],
) -> None:
    files = {f"/f{i}": f"v{i}".encode() for i in range(4)}
    put(store, files)
    invoke(
        store.url,
        "create",
        "pipeline",
        "-f",
        str(write_spec(tmp_path / "s.json", counter, pause=1)),
    )
    assert DATUMCTL is not None
    proc = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "run", "pipeline", "copy"],
        env={**clean_env, "DATUM_CHECKPOINT_DATUMS": "1"},  # a part per datum (default: 100)
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for(lambda: len(_results(store)) >= 1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finished = set(_results(store))
    (job,) = JobRecords(store).jobs("copy")
    assert job.state == "running"
    assert 1 <= len(finished) < 4
    assert store.branch_head("copy", "master") is None  # the output branch did not move
    # A killed job's counters come from its checkpoints.
    (live,) = map(json.loads, invoke(store.url, "list", "job", "--output", "json").output.split())
    assert (live["state"], live["processed"], live["total"]) == ("running", len(finished), 4)
    time.sleep(1.2)  # let the orphaned datum in flight (its own process group) finish

    done_before = runs(counter)
    out = run("run", "pipeline", "copy", "--resume", job.id).stdout.decode().split()
    assert out[:2] == [job.id, "success"]
    resumed = JobRecords(store).job("copy", job.id)
    assert (resumed.restarts, resumed.processed, resumed.total) == (1, 4, 4)
    assert outputs(store) == {f"{p}.out": v for p, v in files.items()}
    after = runs(counter)
    by_id = {r["datum_id"]: r for _, r in JobRecords(store).all_results(resumed)}
    for datum_id in finished:  # checkpointed datums were not run again
        name = by_id[datum_id]["outputs"][0]["path"].removesuffix(".out").lstrip("/")
        assert after[name] == done_before[name] == 1
    rows = table(run("list", "job"))
    assert rows[1][4:6] == ["1", "4 + 0 / 4"]


FAILPOINTS = ["after-plan", "after-datum", "after-datum:3", "before-land", "after-land"]


@pytest.mark.parametrize("point", FAILPOINTS)
def test_sigkill_at_failpoint_then_resume(
    run: Run, store: Store, tmp_path: Path, counter: Path, point: str
) -> None:
    put(store, {f"/f{i}": f"v{i}".encode() for i in range(2)})
    invoke(store.url, "create", "pipeline", "-f", str(write_spec(tmp_path / "s.json", counter)))
    invoke(store.url, "run", "pipeline", "copy")
    head = store.branch_head("copy", "master")
    put(store, {"/f1": b"new", "/f2": b"v2", "/f3": b"v3"})  # 3 to run, 1 skipped
    before = runs(counter)

    # A checkpoint part after every datum (the default batches 100): each datum finished before
    # the kill is recorded, so none runs twice.
    per_datum = {"DATUM_FAILPOINT": point, "DATUM_CHECKPOINT_DATUMS": "1"}
    run("run", "pipeline", "copy", code=-signal.SIGKILL, env=per_datum)
    job = JobRecords(store).jobs("copy")[0]
    assert job.state in ("running", "finishing")
    # Until the output commit lands the branch does not move; after-land it holds the job's
    # complete output and only the records are left to finish.
    landed = point == "after-land"
    assert store.branch_head("copy", "master") == (job.id if landed else head)
    checkpointed = set(_results(store))

    out = run("run", "pipeline", "copy", "--resume", job.id).stdout.decode().split()
    assert out[:3] == [job.id, "success", "3"]
    resumed = JobRecords(store).job("copy", job.id)
    assert (resumed.restarts, resumed.processed, resumed.skipped) == (1, 3, 1)
    assert store.branch_head("copy", "master") == job.id
    assert outputs(store) == {
        "/f0.out": b"v0",
        "/f1.out": b"new",
        "/f2.out": b"v2",
        "/f3.out": b"v3",
    }
    new_runs = runs(counter) - before
    assert new_runs == {"f1": 1, "f2": 1, "f3": 1}  # no datum ran twice
    assert len(checkpointed) == {"after-plan": 0, "after-datum": 1, "after-datum:3": 3}.get(
        point, 3
    )
    # A resumed job that already succeeded is left alone.
    assert invoke(store.url, "run", "pipeline", "copy", "--resume", job.id).stdout.split()[1] == (
        "success"
    )
    assert JobRecords(store).job("copy", job.id).restarts == 1


def test_parallel_run(store: Store, tmp_path: Path, counter: Path) -> None:
    put(store, {f"/f{i}": f"v{i}".encode() for i in range(6)})
    invoke(
        store.url,
        "create",
        "pipeline",
        "-f",
        str(write_spec(tmp_path / "s.json", counter, datum_set_spec={"number": 1})),
    )
    out = invoke(store.url, "run", "pipeline", "copy", "--parallelism", "3").stdout.split()
    assert out[1:] == ["success", "6", "+", "0", "/", "6"]
    assert len(outputs(store)) == 6
    assert os.path.getsize(counter) > 0
