"""``datumctl list datum -f SPEC``: the planner's datums as pachctl prints them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from airflow_datum_provider.cli.main import cli
from airflow_datum_provider.core.plan import list_datums
from airflow_datum_provider.core.spec import cross, pfs
from airflow_datum_provider.core.store import Store

FILES = {"/a.txt": b"a", "/d/x.txt": b"x", "/d/e/y.txt": b"y", "/.h": b"h", "/b.csv": b"b"}


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    root = tmp_path / "store"
    store = Store.open(root)
    for repo, files in (("imgs", FILES), ("models", {"/m1": b"1", "/m2": b"2"})):
        store.create_repo(repo)
        with store.commit(repo) as commit:
            for path, data in files.items():
                commit.put_bytes(path, data)
    store.create_repo("empty")
    store.create_branch("empty", "master")
    return root


def invoke(store_dir: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["--store", str(store_dir), *args], input=input, catch_exceptions=False
    )


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


PIPELINE_YAML = """
pipeline: {name: p}
transform: {cmd: [cat]}
salt: pepper
input:
  cross:
    - pfs: {repo: models, glob: /*}
    - pfs: {repo: imgs, glob: "/*.txt", name: images}
"""


def test_table_from_yaml_spec(store_dir: Path, tmp_path: Path) -> None:
    result = invoke(store_dir, "list", "datum", "-f", _write(tmp_path, "p.yaml", PIPELINE_YAML))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["ID", "FILES", "STATUS"]
    store = Store.open(store_dir)
    imgs, models = store.branch_head("imgs", "master"), store.branch_head("models", "master")
    spec = cross(pfs("models", "/*"), pfs("imgs", "/*.txt", name="images"))
    datums = list(list_datums(store, spec, salt="pepper", pipeline="p"))
    assert len(lines) == 1 + len(datums) == 3
    for line, datum in zip(lines[1:], datums, strict=True):
        ident, files, status = line.split("   ", 2)
        assert ident == datum.id[:12]  # a unique prefix; --output json has the whole id
        assert status.strip() == "-"
        assert len(line) <= 100
    # Children are sorted by input name: `images` before `models`; the pinned commits are in
    # --output json (and inspect datum), not in the 100-column table.
    assert "imgs:/a.txt, models:/m1" in lines[1]
    assert imgs
    assert models


def test_json_lines_from_json_spec(store_dir: Path, tmp_path: Path) -> None:
    spec = {
        "pipeline": {"name": "p"},
        "transform": {"cmd": ["cat"]},
        "salt": "pepper",
        "input": {"pfs": {"repo": "imgs", "glob": "/*"}},
    }
    result = invoke(
        store_dir,
        "list",
        "datum",
        "-f",
        _write(tmp_path, "p.json", json.dumps(spec)),
        "--output",
        "json",
    )
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    store = Store.open(store_dir)
    head = store.branch_head("imgs", "master")
    expected = list(list_datums(store, pfs("imgs", "/*"), salt="pepper"))
    assert [r["id"] for r in records] == [d.id for d in expected]
    assert [r["hash"] for r in records] == [d.hash for d in expected]
    assert records[0] == {
        "id": expected[0].id,
        "hash": expected[0].hash,
        "inputs": [
            {"name": "imgs", "repo": "imgs", "branch": "master", "commit": head, "path": "/.h"}
        ],
    }
    assert [r["inputs"][0]["path"] for r in records] == ["/.h", "/a.txt", "/b.csv", "/d/"]


def test_bare_input_from_stdin(store_dir: Path) -> None:
    text = json.dumps(
        {
            "cross": [
                {"pfs": {"repo": "models", "glob": "/*"}},
                {"pfs": {"repo": "imgs", "glob": "/"}},
            ]
        }
    )
    result = invoke(store_dir, "list", "datum", "-f", "-", "--output", "json", input=text)
    assert result.exit_code == 0, result.output
    inputs = [
        [(i["name"], i["path"]) for i in json.loads(line)["inputs"]]
        for line in result.output.splitlines()
    ]
    assert inputs == [[("imgs", "/"), ("models", "/m1")], [("imgs", "/"), ("models", "/m2")]]


def test_zero_datums_prints_header_only(store_dir: Path, tmp_path: Path) -> None:
    spec = _write(tmp_path, "e.json", json.dumps({"pfs": {"repo": "empty", "glob": "/*"}}))
    result = invoke(store_dir, "list", "datum", "-f", spec)
    assert result.exit_code == 0
    assert result.output.split() == ["ID", "FILES", "STATUS"]
    assert invoke(store_dir, "list", "datum", "-f", spec, "--output", "json").output == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "give -f SPEC or [PIPELINE@]JOB"),
        (("p@j", "-f", "x.json"), "not both"),
        (("@j",), "expected [PIPELINE@]JOB"),
    ],
    ids=["neither", "both", "bad-job-ref"],
)
def test_usage_errors(store_dir: Path, args: tuple[str, ...], message: str) -> None:
    result = invoke(store_dir, "list", "datum", *args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"pfs": {"repo": "nope", "glob": "/*"}}', "nope"),
        ('{"pfs": {"repo": "imgs", "glob": "/*", "branch": "dev"}}', "dev"),
        ('{"cross": [{"pfs": {"repo": "imgs", "glob": "/a/("}}]}', "cross[0].pfs.glob"),
        ("{not json", "not valid JSON or YAML"),
    ],
    ids=["unknown-repo", "unknown-branch", "bad-glob", "bad-syntax"],
)
def test_user_errors_are_one_line(store_dir: Path, tmp_path: Path, text: str, message: str) -> None:
    result = CliRunner().invoke(
        cli, ["--store", str(store_dir), "list", "datum", "-f", _write(tmp_path, "s.json", text)]
    )
    assert result.exit_code == 1, result.output
    assert "datumctl: error:" in result.output
    assert message in result.output


def test_missing_spec_file(store_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--store", str(store_dir), "list", "datum", "-f", str(tmp_path / "none.json")]
    )
    assert result.exit_code == 1
    assert "none.json" in result.output


@pytest.mark.parametrize(
    "pattern",
    ["/*", "/**", "/*/*", "/", "/**/*.txt", "/d", "/d/*", "/[!a]*", "/.*", "/nothing"],
    ids=[
        "star",
        "all",
        "depth2",
        "root",
        "globstar-txt",
        "dir",
        "dir-children",
        "neg",
        "hidden",
        "none",
    ],
)
def test_glob_file_and_list_datum_agree(store_dir: Path, pattern: str) -> None:
    globbed = invoke(store_dir, "glob", "file", f"imgs@master:{pattern}", "--output", "json")
    assert globbed.exit_code == 0, globbed.output
    spec = json.dumps({"pfs": {"repo": "imgs", "glob": pattern}})
    listed = invoke(store_dir, "list", "datum", "-f", "-", "--output", "json", input=spec)
    assert listed.exit_code == 0, listed.output
    glob_paths = [json.loads(line)["path"] for line in globbed.output.splitlines()]
    datum_paths = [json.loads(line)["inputs"][0]["path"] for line in listed.output.splitlines()]
    assert glob_paths == datum_paths
