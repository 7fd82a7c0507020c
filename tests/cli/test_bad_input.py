"""Bad input through ``datumctl``: one line naming the field or URL, bounded (issue 7 §5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.conftest import Run

SPEC = "pipeline: {name: p}\ninput: {pfs: {repo: r, glob: '%s'}}\ntransform: {cmd: [cat]}\n"


def _error_line(proc: object) -> str:
    err = proc.stderr.decode()  # type: ignore[attr-defined]
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("datumctl: error: ")
    return lines[0]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ftp://127.0.0.1:1/x", "store URL ftp://127.0.0.1:1/x: protocol `ftp` is not supported"),
        ("", "store URL '': not a path or URL"),
        ("   ", "store URL '   ': not a path or URL"),
        ("s3://", "store URL s3://: needs a bucket"),
        ("s3://AKID:Sekr3t-7f3a9@bucket/s", "store URL s3://***@bucket/s: must not carry user"),
    ],
    ids=["ftp", "empty", "blank", "no-bucket", "user-info"],
)
def test_bad_store_url_is_one_line(run: Run, url: str, expected: str) -> None:
    proc = run("--store", url, "list", "repo", code=1, store=False)
    assert expected in _error_line(proc)
    assert b"Sekr3t" not in proc.stderr + proc.stdout  # type: ignore[attr-defined]


def test_empty_store_does_not_fall_back_to_the_default(run: Run, clean_env: dict[str, str]) -> None:
    run("--store", "", "create", "repo", "r", code=1, store=False)
    assert not (Path(clean_env["HOME"]) / ".local").exists()


def _create(run: Run, tmp_path: Path, text: str) -> str:
    spec = tmp_path / "spec.yaml"
    spec.write_text(text)
    run("create", "repo", "r")
    return _error_line(run("create", "pipeline", "-f", str(spec), code=1))


def test_pathological_glob_plans_in_bounded_time(run: Run, tmp_path: Path) -> None:
    # A backtracking regex needs minutes for this name; RE2 does not (pytest's timeout bounds it).
    run("create", "repo", "r")
    run("put", "file", "r@master:/" + "a" * 40, "-f", "-", input=b"x")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC % "/*(*(a))b")
    run("create", "pipeline", "-f", str(spec))
    out = run("list", "datum", "-f", str(spec)).stdout.decode()
    assert "a" * 40 not in out


def test_glob_with_500_nested_groups_is_one_line(run: Run, tmp_path: Path) -> None:
    line = _create(run, tmp_path, SPEC % ("/" + "(" * 500 + "a" + ")" * 500))
    assert "input.pfs.glob:" in line
    assert "groups nest more than 64 deep" in line
    assert len(line) < 400


def test_huge_duration_names_the_field(run: Run, tmp_path: Path) -> None:
    line = _create(run, tmp_path, SPEC % "/*" + "datum_timeout: 99999999999999999999s\n")
    spec = tmp_path / "spec.yaml"  # a spec file's error names the file first
    assert line.startswith(f"datumctl: error: {spec}: datum_timeout: `99999999999999999999s` is")


def test_deep_value_is_one_line(run: Run, tmp_path: Path) -> None:
    line = _create(run, tmp_path, SPEC % "/*" + "pod_patch: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nest more than 100 levels deep" in line


def test_alias_bomb_is_one_line(run: Run, tmp_path: Path) -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        lines.append(f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]")
    text = SPEC % "/*" + "metadata:\n" + "".join(f"  {line}\n" for line in lines)
    line = _create(run, tmp_path, text)
    assert "expands to more than 200000 values" in line


def test_duplicate_key_is_one_line_naming_it(run: Run, tmp_path: Path) -> None:
    line = _create(run, tmp_path, SPEC % "/*" + "pipeline: {name: q}\n")
    assert "key `pipeline` is given twice in one mapping (line 4)" in line
