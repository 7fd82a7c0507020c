"""Pachyderm-shaped specs in camelCase run unchanged through ``datumctl`` (issue 13 §3).

Every test drives the installed ``datumctl`` (real subprocesses, a store in ``tmp_path``) and
checks the outputs and the skip counts of a second run.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.store import Store
from tests.cli.conftest import Run


def _put(run: Run, repo: str, files: dict[str, str], *, new: bool = True) -> None:
    if new:
        run("create", "repo", repo)
    for path, text in files.items():
        run("put", "file", f"{repo}@master:{path}", "-f", "-", input=text.encode())


def _spec(tmp_path: Path, spec: Any, name: str = "spec.json") -> str:
    path = tmp_path / name
    path.write_text(spec if isinstance(spec, str) else json.dumps(spec))
    return str(path)


def _job(run: Run, *args: str, code: int = 0) -> dict[str, Any]:
    proc = run("run", *args, "--output", "json", code=code)
    (line,) = proc.stdout.decode().splitlines()
    return dict(json.loads(line))


def _files(store_dir: Path, repo: str, ref: str = "master") -> dict[str, bytes]:
    store = Store.open(store_dir)
    return {e.path: store.read_bytes(repo, ref, e.path) for e in store.walk(repo, ref)}


JOIN_SCRIPT = """
r=$(ls /pfs/readings 2>/dev/null || true); s=$(ls /pfs/stations)
cat ${r:+/pfs/readings/$r} /pfs/stations/$s > "/pfs/out/${r:-none}_$s"
"""


def test_join_in_camel_case(run: Run, store_dir: Path, tmp_path: Path) -> None:
    _put(run, "readings", {"/s1-a.txt": "1", "/s1-b.txt": "2", "/s2-a.txt": "3"})
    _put(run, "stations", {"/s1.txt": "north", "/s3.txt": "south"})
    spec = {
        "pipeline": {"name": "joined"},
        "input": {
            "join": [
                {"pfs": {"repo": "readings", "glob": "/(*)-*.txt", "joinOn": "$1"}},
                {
                    "pfs": {
                        "repo": "stations",
                        "glob": "/(*).txt",
                        "joinOn": "$1",
                        "outerJoin": True,
                    }
                },
            ]
        },
        "transform": {"cmd": ["sh", "-c", JOIN_SCRIPT]},
        "parallelismSpec": {"constant": "1"},
        "datumTries": "2",
    }
    run("create", "pipeline", "-f", _spec(tmp_path, spec))
    job = _job(run, "pipeline", "joined")
    assert (job["state"], job["processed"], job["skipped"]) == ("success", 3, 0)
    # s1: two readings x north; s3: south alone (outer); s2 has no station and is not outer.
    assert _files(store_dir, "joined") == {
        "/s1-a.txt_s1.txt": b"1north",
        "/s1-b.txt_s1.txt": b"2north",
        "/none_s3.txt": b"south",
    }
    again = _job(run, "pipeline", "joined")
    assert (again["processed"], again["skipped"]) == (0, 3)


def test_group_in_camel_case(run: Run, store_dir: Path, tmp_path: Path) -> None:
    _put(run, "logs", {"/a-1.log": "x", "/a-2.log": "yy", "/b-1.log": "z"})
    spec = {
        "pipeline": {"name": "grouped"},
        "input": {"group": [{"pfs": {"repo": "logs", "glob": "/(*)-*.log", "groupBy": "$1"}}]},
        "transform": {
            "cmd": [
                "sh",
                "-c",
                'n=$(ls /pfs/logs | head -1 | cut -c1); cat /pfs/logs/* > "/pfs/out/$n"',
            ]
        },
    }
    run("create", "pipeline", "-f", _spec(tmp_path, spec))
    job = _job(run, "pipeline", "grouped")
    assert (job["state"], job["processed"]) == ("success", 2)
    assert _files(store_dir, "grouped") == {"/a": b"xyy", "/b": b"z"}
    _put(run, "logs", {"/b-2.log": "w"}, new=False)
    again = _job(run, "pipeline", "grouped")
    assert (again["processed"], again["skipped"]) == (1, 1)
    assert _files(store_dir, "grouped") == {"/a": b"xyy", "/b": b"zw"}


def test_union_with_empty_files_and_symlinked_outputs(
    run: Run, store_dir: Path, tmp_path: Path
) -> None:
    _put(run, "left", {"/l1": "L1"})
    _put(run, "right", {"/r1": "R1", "/r2": "R2"})
    spec = {
        "pipeline": {"name": "names"},
        "input": {
            "union": [
                {"pfs": {"repo": "left", "glob": "/*", "name": "in", "emptyFiles": True}},
                {"pfs": {"repo": "right", "glob": "/*", "name": "in", "emptyFiles": True}},
            ]
        },
        # Pachyderm's "shuffle" idiom: nothing is downloaded, outputs link to the inputs.
        "transform": {
            "cmd": [
                "sh",
                "-c",
                'for f in /pfs/in/*; do b=$(basename "$f"); wc -c < "$f" > "/pfs/out/$b.size";'
                ' ln -s "$f" "/pfs/out/$b"; done',
            ]
        },
    }
    run("create", "pipeline", "-f", _spec(tmp_path, spec))
    job = _job(run, "pipeline", "names")
    assert (job["processed"], job["skipped"]) == (3, 0)
    files = _files(store_dir, "names")
    sizes = {k: v.strip() for k, v in files.items() if k.endswith(".size")}
    assert sizes == {"/l1.size": b"0", "/r1.size": b"0", "/r2.size": b"0"}  # placeholders
    # A symlink in out/ to an input stores the input's real content (Pachyderm's shuffle).
    assert {k: v for k, v in files.items() if not k.endswith(".size")} == {
        "/l1": b"L1",
        "/r1": b"R1",
        "/r2": b"R2",
    }
    again = _job(run, "pipeline", "names")
    assert (again["processed"], again["skipped"]) == (0, 3)


def test_output_branch_feeds_a_downstream_pipeline_once_moved(
    run: Run, store_dir: Path, tmp_path: Path
) -> None:
    _put(run, "edges", {"/e1": "1"})
    upstream = {
        "pipeline": {"name": "edges_dp"},
        "input": {"pfs": {"repo": "edges", "glob": "/*"}},
        "transform": {"cmd": ["sh", "-c", "cp /pfs/edges/* /pfs/out/"]},
        "outputBranch": "dev",
    }
    downstream = {
        "pipeline": {"name": "montage"},
        "input": {"pfs": {"repo": "edges_dp", "branch": "master", "glob": "/"}},
        "transform": {"cmd": ["sh", "-c", "ls /pfs/edges_dp > /pfs/out/list"]},
    }
    run("create", "pipeline", "-f", _spec(tmp_path, [upstream, downstream]))
    assert _job(run, "pipeline", "edges_dp")["state"] == "success"
    assert _files(store_dir, "edges_dp", "dev") == {"/e1": b"1"}
    # edges_dp@master exists, empty, until moved: a zero-datum job that succeeds.
    first = _job(run, "pipeline", "montage")
    assert (first["state"], first["total"]) == ("success", 0)
    run("create", "branch", "edges_dp@master", "--head", "dev")
    moved = _job(run, "pipeline", "montage")
    assert (moved["processed"], moved["skipped"]) == (1, 0)
    assert _files(store_dir, "montage") == {"/list": b"e1\n"}
    again = _job(run, "pipeline", "montage")
    assert (again["processed"], again["skipped"]) == (0, 1)


MULTI = """\
# two pipelines, one file, as in Pachyderm's examples
pipeline:
  name: upper
input:
  pfs: {repo: words, glob: "/*"}
transform:
  cmd: [sh, -c, 'for f in /pfs/words/*; do tr a-z A-Z < "$f" > "/pfs/out/$(basename "$f")"; done']
---
pipeline: {name: counted}
input:
  pfs: {repo: upper, glob: "/"}
transform:
  cmd: [sh, -c, 'cat /pfs/upper/* | wc -c | tr -d " " > /pfs/out/total']
datumTries: 0
"""


def test_multi_pipeline_file_applies_in_order(run: Run, store_dir: Path, tmp_path: Path) -> None:
    _put(run, "words", {"/a": "ab", "/b": "cde"})
    proc = run("create", "pipeline", "-f", _spec(tmp_path, MULTI, "multi.yaml"))
    assert proc.stdout.decode().splitlines() == [
        "created pipeline upper",
        "created pipeline counted",
    ]
    assert _job(run, "pipeline", "upper")["processed"] == 2
    assert _job(run, "pipeline", "counted")["processed"] == 1
    assert _files(store_dir, "upper") == {"/a": b"AB", "/b": b"CDE"}
    assert _files(store_dir, "counted") == {"/total": b"5\n"}
    assert (
        _job(run, "pipeline", "upper")["skipped"],
        _job(run, "pipeline", "counted")["skipped"],
    ) == (2, 1)
    proc = run("update", "pipeline", "-f", _spec(tmp_path, MULTI, "multi.yaml"))
    assert proc.stdout.decode().splitlines() == [
        "updated pipeline upper",
        "updated pipeline counted",
    ]


def test_one_bad_spec_refuses_the_whole_file(run: Run, tmp_path: Path) -> None:
    _put(run, "words", {"/a": "ab"})
    bad = MULTI.replace("datumTries: 0", "datumTries: 0\ndatum_tries: 2")
    spec = _spec(tmp_path, bad, "bad.yaml")
    proc = run("create", "pipeline", "-f", spec, code=1)
    err = proc.stderr.decode().strip()
    assert err == (
        f"datumctl: error: {spec}: spec 2 of 2: datum_tries: `datum_tries` and `datumTries` are "
        "the same field; give one"
    )
    assert "upper" not in run("list", "pipeline").stdout.decode()
    missing = MULTI.replace("repo: upper", "repo: nowhere")
    proc = run("create", "pipeline", "-f", _spec(tmp_path, missing, "missing.yaml"), code=1)
    assert "pipeline counted: input: repo 'nowhere' not found" in proc.stderr.decode()
    assert "upper" not in run("list", "pipeline").stdout.decode()


def test_concatenated_json_objects_and_stdin(run: Run, tmp_path: Path) -> None:
    _put(run, "words", {"/a": "ab"})
    one = {
        "pipeline": {"name": "one"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
    }
    two = {**one, "pipeline": {"name": "two"}}
    text = json.dumps(one, indent=2) + "\n" + json.dumps(two)
    proc = run("create", "pipeline", "-f", "-", input=text.encode())
    assert proc.stdout.decode().splitlines() == ["created pipeline one", "created pipeline two"]


@pytest.fixture
def http_spec(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server serving ``tmp_path/www``; yields its base URL."""
    www = tmp_path / "www"
    www.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(www), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_create_pipeline_from_url(run: Run, tmp_path: Path, http_spec: str) -> None:
    _put(run, "words", {"/a": "ab"})
    (tmp_path / "www" / "p.json").write_text(
        json.dumps(
            {
                "pipeline": {"name": "web"},
                "input": {"pfs": {"repo": "words", "glob": "/*"}},
                "transform": {"cmd": ["true"]},
            }
        )
    )
    run("create", "pipeline", "-f", f"{http_spec}/p.json")
    assert "web" in run("list", "pipeline").stdout.decode()
    proc = run("create", "pipeline", "-f", f"{http_spec}/missing.json", code=1)
    assert proc.stderr.decode().startswith(
        f"datumctl: error: -f {http_spec}/missing.json: cannot fetch"
    )


@pytest.mark.parametrize("overwrite", [False, True], ids=["accumulate", "overwrite"])
def test_cron_tick_then_run(run: Run, store_dir: Path, tmp_path: Path, overwrite: bool) -> None:
    spec = {
        "pipeline": {"name": "ticker"},
        "input": {"cron": {"name": "tick", "spec": "@every 60s", "overwrite": overwrite}},
        "transform": {"cmd": ["sh", "-c", "ls /pfs/tick > /pfs/out/$(ls /pfs/tick | tr : _)"]},
    }
    run("create", "pipeline", "-f", _spec(tmp_path, spec))
    assert "ticker_tick" in run("list", "repo").stdout.decode()  # created with the pipeline
    first = _job(run, "pipeline", "ticker")
    assert (first["state"], first["processed"], first["skipped"]) == ("success", 1, 0)
    second = _job(run, "cron", "ticker")
    ticks = sorted(_files(store_dir, "ticker_tick"))
    if overwrite:
        assert len(ticks) == 1
        assert (second["processed"], second["skipped"]) == (1, 0)
        assert len(_files(store_dir, "ticker")) == 1
    else:
        assert len(ticks) == 2
        assert (second["processed"], second["skipped"]) == (1, 1)
        assert len(_files(store_dir, "ticker")) == 2
    assert all(t.endswith("Z") and t[1:5].isdigit() for t in ticks)


def test_run_cron_on_a_pipeline_without_cron_is_one_line(run: Run, tmp_path: Path) -> None:
    _put(run, "words", {"/a": "ab"})
    spec = {
        "pipeline": {"name": "plain"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
    }
    run("create", "pipeline", "-f", _spec(tmp_path, spec))
    proc = run("run", "cron", "plain", code=1)
    assert proc.stderr.decode() == "datumctl: error: pipeline 'plain' has no cron input\n"
