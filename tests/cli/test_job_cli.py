"""``datumctl list / inspect / stop job``, ``logs``, ``list / inspect datum`` of a job."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from airflow_datum_provider.cli.job import human_duration
from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.store import Store
from tests.cli.conftest import DATUMCTL, Run
from tests.cli.test_datumctl import json_lines, table

# bad* fails; rescue* fails but err_cmd recovers it; everything else is copied.
SCRIPT = (
    'n=$(basename "$data"); echo "hello from $n"; sleep "${PAUSE:-0}"; '
    'case "$n" in bad*|rescue*) echo "cannot read $n" >&2; exit 3;; esac; '
    'cp "$data" "$PFS_ROOT/out/$n.out"'
)
ERR_CMD = 'case "$(basename "$data")" in rescue*) exit 0;; esac; exit 1'


def put(store: Store, files: dict[str, bytes]) -> str:
    if not store.repo_exists("data"):
        store.create_repo("data")
    with store.commit("data", "master") as c:
        for path, data in files.items():
            c.put_bytes(path, data)
    return c.id


def invoke(store: Store, *args: str, code: int = 0, input: str | None = None) -> Result:
    result = CliRunner().invoke(cli, ["--store", store.url, *args], input=input)
    assert result.exit_code == code, (args, result.output, result.exception)
    return result


def lines(result: Result) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.output.splitlines()]


def create(store: Store, tmp_path: Path, *, pause: float = 0) -> None:
    spec = {
        "pipeline": {"name": "copy"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": ["sh", "-c", SCRIPT],
            "err_cmd": ["sh", "-c", ERR_CMD],
            "env": {"PAUSE": str(pause)},
        },
        "datum_tries": 1,
    }
    path = tmp_path / "copy.json"
    path.write_text(json.dumps(spec))
    invoke(store, "create", "pipeline", "-f", str(path))


@pytest.fixture
def store(store_dir: Path) -> Store:
    return Store.open(store_dir)


@pytest.fixture
def jobs(store: Store, tmp_path: Path) -> dict[str, JobInfo]:
    """Job ``first`` (a.txt, b.txt: success), then ``second`` (a.txt skipped, b.txt changed,
    bad.txt failed, rescue.txt recovered)."""
    put(store, {"/a.txt": b"alpha", "/b.txt": b"beta"})
    create(store, tmp_path)
    invoke(store, "run", "pipeline", "copy")
    put(store, {"/b.txt": b"BETA", "/bad.txt": b"?", "/rescue.txt": b"!"})
    invoke(store, "run", "pipeline", "copy", code=1)
    second, first = JobRecords(store).jobs("copy")
    return {"first": first, "second": second}


def _name(record: dict[str, Any]) -> str:
    (one,) = record["inputs"]
    return str(one["path"]).lstrip("/")


def test_list_datum_of_a_job(run: Run, store: Store, jobs: dict[str, JobInfo]) -> None:
    job = jobs["second"]
    head = store.branch_head("data", "master")
    records = json_lines(run("list", "datum", f"copy@{job.id}", "--output", "json"))
    by_name = {_name(r): r for r in records}
    assert {n: r["state"] for n, r in by_name.items()} == {
        "a.txt": "skipped",
        "b.txt": "success",
        "bad.txt": "failed",
        "rescue.txt": "recovered",
    }
    bad = by_name["bad.txt"]
    assert set(bad) == {"id", "hash", "state", "reason", "inputs", "process_time", "attempts"}
    assert bad["inputs"] == [
        {"name": "data", "repo": "data", "branch": "master", "commit": head, "path": "/bad.txt"}
    ]
    assert bad["attempts"] == 1
    assert bad["reason"] == "exit status 3"
    assert by_name["rescue.txt"]["reason"] == "exit status 3"  # recovered keeps the failure
    assert job.failed_datums == (bad["id"],)
    assert by_name["a.txt"]["attempts"] == 0

    rows = table(run("list", "datum", f"copy@{job.id}"))
    assert rows[0] == ["ID", "FILES", "STATUS", "TIME"]
    status = {row[1]: row[2] for row in rows[1:]}
    assert status["data:/bad.txt"] == "failed"
    assert status["data:/a.txt"] == "skipped"
    bare = table(run("list", "datum", job.id))  # a bare job id, as in pachctl
    assert bare == rows
    assert all(len(line) <= 100 for line in run("list", "datum", job.id).stdout.splitlines())
    skipped_row = next(r for r in rows if r[2] == "skipped")
    assert skipped_row[3] == "-"


def test_inspect_datum(store: Store, jobs: dict[str, JobInfo]) -> None:
    job = jobs["second"]
    (bad,) = job.failed_datums
    (info,) = lines(invoke(store, "inspect", "datum", f"copy@{job.id}", bad, "--output", "json"))
    assert (info["id"], info["job"], info["pipeline"], info["state"]) == (
        bad,
        job.id,
        "copy",
        "failed",
    )
    assert info["attempts"] == 1
    assert info["outputs"] == []
    assert "cannot read bad.txt" in info["log_tail"]
    assert set(info) == {
        "id", "job", "pipeline", "hash", "state", "reason", "attempts", "started", "finished",
        "download_time", "process_time", "upload_time", "download_bytes", "upload_bytes",
        "inputs", "outputs", "log_tail",
    }  # fmt: skip

    ok = next(
        r
        for r in lines(invoke(store, "list", "datum", f"copy@{job.id}", "--output", "json"))
        if r["state"] == "success"
    )
    text = invoke(store, "inspect", "datum", f"copy@{job.id}", ok["id"]).output
    assert "State:           success" in text
    assert "/b.txt.out" in text
    assert "hello from b.txt" in text

    missing = invoke(store, "inspect", "datum", f"copy@{job.id}", "0" * 64, code=1).output
    assert missing.startswith(f"datumctl: error: datum {'0' * 64} not found in job {job.id}")


def test_logs(run: Run, store: Store, jobs: dict[str, JobInfo]) -> None:
    job = jobs["second"]
    text = run("logs", "--job", job.id).stdout.decode()
    assert "hello from b.txt" in text
    assert "cannot read bad.txt" in text
    assert "hello from a.txt" not in text  # skipped: it did not run in this job
    (bad,) = job.failed_datums
    only = invoke(store, "logs", "--job", f"copy@{job.id}", "--datum", bad).output
    assert "cannot read bad.txt" in only
    assert "b.txt" not in only.replace("bad.txt", "")
    assert invoke(store, "logs", "-p", "copy").output == text  # newest job by default
    assert "hello from a.txt" in invoke(store, "logs", "-j", jobs["first"].id).output


def test_inspect_job_text(store: Store, jobs: dict[str, JobInfo]) -> None:
    job = jobs["second"]
    text = invoke(store, "inspect", "job", f"copy@{job.id}").output
    fields = dict(line.split(":", 1) for line in text.splitlines() if ": " in line[:20])
    assert fields["ID"].strip() == job.id
    assert fields["State"].strip() == "failure"
    assert fields["Reason"].strip() == f"datum {job.failed_datums[0]} failed"
    assert fields["Progress"].strip() == "1 + 1 + 1 / 4"
    assert fields["Recovered"].strip() == "1"
    assert fields["Base Job"].strip() == jobs["first"].id
    assert fields["Input"].strip() == "data:/*"


def test_list_job_json(store: Store, jobs: dict[str, JobInfo]) -> None:
    (failed,) = jobs["second"].failed_datums
    records = lines(invoke(store, "list", "job", "--output", "json"))
    assert [r["id"] for r in records] == [jobs["second"].id, jobs["first"].id]
    assert set(records[0]) == set(jobs["second"].to_dict())
    newest = re.split(r"\s{2,}", invoke(store, "list", "job").output.splitlines()[1])
    # pachctl trims reasons to 25 characters in tables; inspect job has the whole text.
    trimmed = f"datum {failed}"[:24] + "…"
    assert newest[5:] == ["1 + 1 + 1 / 4", "6 B", "4 B", f"failure: {trimmed}"]
    whole = f"datum {failed} failed"
    assert f"Reason:          {whole}" in invoke(store, "inspect", "job", jobs["second"].id).output
    one = invoke(store, "list", "job", jobs["first"].id).output.splitlines()  # list job JOB
    assert len(one) == 2
    assert jobs["first"].id in one[1]


JOB_ERRORS = [
    ("inspect-unknown-job", ("inspect", "job", "copy@" + "a" * 32), 1, "not found"),
    ("inspect-unknown-pipeline", ("inspect", "job", "nope@" + "a" * 32), 1, "'nope' not found"),
    ("inspect-bad-id", ("inspect", "job", "copy@../x"), 1, "job id '../x' is invalid"),
    ("inspect-bad-pipeline", ("inspect", "job", "a.b@" + "a" * 32), 1, "pipeline name 'a.b'"),
    ("inspect-empty-id", ("inspect", "job", "copy@"), 2, "not of the form pipeline@job"),
    ("list-job-unknown", ("list", "job", "-p", "nope"), 1, "pipeline 'nope' not found"),
    ("stop-unknown", ("stop", "job", "b" * 32), 1, "not found"),
    ("logs-nothing", ("logs",), 2, "give --job JOB"),
    ("logs-bad-datum", ("logs", "-p", "copy", "--datum", "x/y"), 1, "datum id 'x/y'"),
    ("logs-no-datum", ("logs", "-p", "copy", "--datum", "f" * 64), 1, "no log for datum"),
    ("inspect-datum-bad", ("inspect", "datum", "copy@" + "a" * 32, "zz"), 1, "datum id 'zz'"),
    ("list-datum-unknown", ("list", "datum", "copy@" + "a" * 32), 1, "not found"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), [e[1:] for e in JOB_ERRORS], ids=[e[0] for e in JOB_ERRORS]
)
def test_job_errors(
    store: Store, tmp_path: Path, args: tuple[str, ...], code: int, message: str
) -> None:
    put(store, {"/a.txt": b"alpha"})
    create(store, tmp_path)
    invoke(store, "run", "pipeline", "copy")
    result = CliRunner().invoke(cli, ["--store", store.url, *args])
    assert result.exit_code == code, result.output
    assert message in result.output
    if code == 1:
        assert len(result.output.splitlines()) == 1


def test_stop_job(
    run: Run, store: Store, store_dir: Path, tmp_path: Path, clean_env: dict[str, str]
) -> None:
    put(store, {f"/f{i}": b"x" for i in range(4)})
    create(store, tmp_path, pause=1)
    assert DATUMCTL is not None
    proc = subprocess.Popen(
        [DATUMCTL, "--store", str(store_dir), "run", "pipeline", "copy"],
        env=clean_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    records = JobRecords(store)
    deadline = time.monotonic() + 30
    while not (records.jobs("copy") and records.jobs("copy")[0].planned):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    job = records.jobs("copy")[0]
    invoke(store, "stop", "job", job.id)  # a bare id works too
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 1
    said = err.decode().splitlines()
    assert said[0].startswith(f"datumctl: job {job.id} started (pipeline copy")  # the id first
    assert said[1] == f"datumctl: error: job {job.id} killed: stopped by user"
    assert said[2:] == [
        f"datumctl: more: datumctl logs -j copy@{job.id}   (and: datumctl inspect job copy@{job.id})"
    ]
    stopped = records.job("copy", job.id)
    assert stopped.state == "killed"
    assert store.branch_head("copy", "master") is None
    states = [
        r["state"]
        for r in lines(invoke(store, "list", "datum", f"copy@{job.id}", "--output", "json"))
    ]
    assert states.count("pending") >= 2  # stopped after the datum in flight
    invoke(store, "stop", "job", f"copy@{job.id}")  # stopping an ended job does nothing
    proc2 = run("inspect", "job", f"copy@{job.id}", "--output", "json")
    assert json_lines(proc2)[0]["state"] == "killed"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.4, "Less than a second"),
        (1.2, "1 second"),
        (3, "3 seconds"),
        (59.9, "59 seconds"),
        (60, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float | None, text: str) -> None:
    assert human_duration(seconds) == text
