from __future__ import annotations

import copy
import json
import pickle
import warnings
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from airflow_datum_provider.core.errors import GlobError, SpecError
from airflow_datum_provider.core.spec import (
    CronInput,
    CrossInput,
    DatumSetSpec,
    GroupInput,
    JoinInput,
    PFSInput,
    PipelineSpec,
    Secret,
    Transform,
    UnionInput,
    UnsupportedFieldWarning,
    cron,
    cross,
    format_duration,
    group,
    input_name,
    iter_leaves,
    iter_pfs_inputs,
    join,
    load_spec,
    load_specs,
    parse_duration,
    parse_input,
    parse_spec,
    parse_spec_or_input,
    pfs,
    union,
    validate_input,
)

REALISTIC_YAML = """
pipeline:
  name: train-models
description: Joins features with labels, per customer, crossed with a model config.
input:
  cross:
    - join:
        - pfs:
            repo: labels
            branch: prod
            glob: "/(*)/labels.csv"
            join_on: "$1"
            outer_join: true
        - pfs:
            repo: features
            glob: "/(*)/*.parquet"
            join_on: "$1"
            lazy: true
    - pfs:
        repo: config
        glob: "/"
        reference: true
    - union:
        - group:
            - pfs:
                repo: logs
                glob: "/(*)-(*).log"
                group_by: "$2"
                name: events
        - pfs:
            repo: events_backfill
            glob: "/*"
            name: events
            empty_files: true
    - cron:
        name: tick
        spec: "@every 1h"
        overwrite: true
        start: 2024-05-01T00:00:00Z
transform:
  image: registry.example.com/train:1.4
  cmd: [bash]
  stdin:
    - python /code/train.py --in /pfs --out /pfs/out
  err_cmd: [bash]
  err_stdin: ["exit 0"]
  env:
    MODE: full
    THREADS: 8
  secrets:
    - name: s3-creds
      key: access-key
      env_var: AWS_ACCESS_KEY_ID
    - name: tls
      mount_path: /etc/tls
  accept_return_code: [3, 4]
  working_dir: /code
  user: "1000"
  datum_batching: true
parallelism_spec:
  constant: 4
datum_tries: 5
datum_timeout: 10m
job_timeout: 2h30m
datum_set_spec:
  number: 20
reprocess_spec: every_job
salt: 8c2d4a1e
output_branch: main
resource_requests:
  memory: 2G
  cpu: 1.5
  gpu: {type: nvidia.com/gpu, number: 1}
resource_limits: {memory: 4G}
pod_patch: '[{"op": "add", "path": "/spec/priorityClassName", "value": "high"}]'
pod_spec: '{"nodeSelector": {"pool": "gpu"}}'
"""


def base_spec() -> dict[str, Any]:
    return {
        "pipeline": {"name": "edges"},
        "input": {"pfs": {"repo": "images", "glob": "/*"}},
        "transform": {"cmd": ["python3", "/edges.py"], "image": "pachyderm/opencv"},
    }


# --- round trips ------------------------------------------------------------------------------


def test_realistic_yaml_round_trips() -> None:
    spec = parse_spec(REALISTIC_YAML)
    data = spec.to_dict()
    assert PipelineSpec.from_dict(data) == spec
    assert parse_spec(json.dumps(data)) == spec
    assert parse_spec(yaml.safe_dump(data)) == spec
    assert json.loads(json.dumps(data)) == data  # plain JSON types only


def test_realistic_yaml_values() -> None:
    spec = parse_spec(REALISTIC_YAML)
    assert spec.name == "train-models"
    assert spec.parallelism == 4
    assert spec.datum_tries == 5
    assert spec.datum_timeout == timedelta(minutes=10)
    assert spec.job_timeout == timedelta(hours=2, minutes=30)
    assert spec.datum_set_spec == DatumSetSpec(number=20)
    assert spec.reprocess_spec == "every_job"
    assert spec.output_branch == "main"
    assert spec.transform.env == (("MODE", "full"), ("THREADS", "8"))
    assert spec.transform.secrets == (
        Secret(name="s3-creds", key="access-key", env_var="AWS_ACCESS_KEY_ID"),
        Secret(name="tls", mount_path="/etc/tls"),
    )
    assert spec.transform.accept_return_code == (3, 4)
    assert json.loads(spec.resource_requests or "") == {
        "memory": "2G",
        "cpu": 1.5,
        "gpu": {"type": "nvidia.com/gpu", "number": 1},
    }
    # Children sorted by input name: config < events (union) < features (join) < tick.
    assert isinstance(spec.input, CrossInput)
    assert [input_name(c) for c in spec.input.inputs] == ["config", "events", "features", "tick"]
    joined = spec.input.inputs[2]
    assert isinstance(joined, JoinInput)
    assert [input_name(c) for c in joined.inputs] == ["features", "labels"]
    assert [(p.name, p.repo) for p in iter_pfs_inputs(spec.input)] == [
        ("config", "config"),
        ("events", "logs"),
        ("events", "events_backfill"),
        ("features", "features"),
        ("labels", "labels"),
    ]
    tick = spec.input.inputs[3]
    assert tick == CronInput(
        name="tick", spec="@every 1h", overwrite=True, start=datetime(2024, 5, 1, tzinfo=UTC)
    )


def test_realistic_to_dict_shape() -> None:
    data = parse_spec(REALISTIC_YAML).to_dict()
    assert data["pipeline"] == {"name": "train-models"}
    assert data["parallelism_spec"] == {"constant": 4}
    assert data["datum_timeout"] == "600s"
    assert data["job_timeout"] == "9000s"
    assert data["datum_set_spec"] == {"number": 20}
    assert data["transform"]["env"] == {"MODE": "full", "THREADS": "8"}
    assert data["resource_limits"] == {"memory": "4G"}
    assert data["pod_spec"] == '{"nodeSelector": {"pool": "gpu"}}'
    assert data["input"]["cross"][3] == {
        "cron": {
            "name": "tick",
            "spec": "@every 1h",
            "overwrite": True,
            "start": "2024-05-01T00:00:00Z",
        }
    }
    assert data["input"]["cross"][0] == {
        "pfs": {
            "name": "config",
            "repo": "config",
            "branch": "master",
            "glob": "/",
            "reference": True,
        }
    }


def test_minimal_json_defaults_and_round_trip() -> None:
    spec = parse_spec(json.dumps(base_spec()))
    assert spec == PipelineSpec(
        name="edges",
        input=pfs("images", "/*"),
        transform=Transform(cmd=("python3", "/edges.py"), image="pachyderm/opencv"),
    )
    assert spec.datum_tries == 3
    assert spec.parallelism == 1
    assert spec.datum_set_spec is None
    assert spec.reprocess_spec == "until_success"
    assert spec.to_dict() == {
        "pipeline": {"name": "edges"},
        "input": {"pfs": {"name": "images", "repo": "images", "branch": "master", "glob": "/*"}},
        "transform": {"image": "pachyderm/opencv", "cmd": ["python3", "/edges.py"]},
        "parallelism_spec": {"constant": 1},
        "datum_tries": 3,
        "reprocess_spec": "until_success",
        "output_branch": "master",
    }
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def test_tab_indented_json_parses() -> None:
    text = json.dumps(base_spec(), indent="\t")
    assert parse_spec(text).name == "edges"


def test_python_transform_round_trips() -> None:
    data = base_spec()
    data["transform"] = {"python": "my_pkg.jobs:process_datum", "env": {"A": "1"}}
    spec = parse_spec(data)
    assert spec.transform.python == "my_pkg.jobs:process_datum"
    assert spec.transform.cmd == ()
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def test_load_spec(tmp_path: Path) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(REALISTIC_YAML, encoding="utf-8")
    assert load_spec(path) == parse_spec(REALISTIC_YAML)
    assert load_spec(str(path)).name == "train-models"


SPEC_FILE_ERRORS: list[tuple[bytes | None, str, str]] = [
    (
        b"pipeline:\n  name: x\n input: 3\n",
        "not valid JSON or YAML: ",
        "(line 3, column 2)",
    ),
    (b"pipeline: {name: x}\npipeline: {name: y}\n", "key `pipeline` is given twice", "(line 2)"),
    (
        b"pipeline: {name: x}\ninput: {pfs: {repo: a, glob: '/a/('}}\ntransform: {cmd: [sh]}\n",
        "input.pfs.glob: `/a/(`",
        "is not a valid glob",
    ),
    (b"\xff\xfe", "not UTF-8 text", ""),
    (None, "cannot read the spec file (No such file or directory)", ""),
]


@pytest.mark.parametrize(
    ("data", "start", "end"),
    SPEC_FILE_ERRORS,
    ids=["yaml-syntax", "duplicate-key", "bad-field", "not-utf8", "missing"],
)
def test_spec_file_errors_are_one_line_naming_the_file(
    tmp_path: Path, data: bytes | None, start: str, end: str
) -> None:
    path = tmp_path / "bad.yaml"
    if data is not None:
        path.write_bytes(data)
    for load in (load_spec, load_specs):
        with pytest.raises(SpecError) as raised:
            load(path)
        message = str(raised.value)
        assert message.startswith(f"{path}: {start}"), message
        assert end in message
        assert "\n" not in message
        assert raised.value.path == str(path)
        assert pickle.loads(pickle.dumps(raised.value)).args == raised.value.args


def test_glob_is_cleaned_and_defaults_applied() -> None:
    node = parse_input({"pfs": {"repo": "r", "glob": "*/", "branch": ""}})
    assert node == PFSInput(repo="r", name="r", glob="/*", branch="master")


def test_null_values_count_as_absent() -> None:
    spec = parse_spec(
        "pipeline: {name: p}\ndescription:\ninput: {pfs: {repo: r, glob: /, name: }}\n"
        "transform: {cmd: [x]}\nsalt:\n"
    )
    assert spec.description == ""
    assert spec.input == pfs("r", "/")


# --- builders, ordering, helpers --------------------------------------------------------------


def test_combinators_sort_children_by_name() -> None:
    node = cross(pfs("zeta", "/*"), pfs("alpha", "/*"), union(pfs("m", "/*"), pfs("b", "/*")))
    assert [input_name(c) for c in node.inputs] == ["alpha", "b", "zeta"]
    assert cross(pfs("b", "/*"), pfs("a", "/*")) == cross(pfs("a", "/*"), pfs("b", "/*"))


def test_sort_is_stable_for_equal_names() -> None:
    node = union(pfs("y", "/*", name="in"), pfs("x", "/*", name="in"))
    assert [p.repo for p in iter_pfs_inputs(node)] == ["y", "x"]


def test_sort_uses_explicit_name_not_repo() -> None:
    node = join(pfs("a", "/(*)", name="z", join_on="$1"), pfs("b", "/(*)", join_on="$1"))
    assert [p.repo for p in iter_pfs_inputs(node)] == ["b", "a"]


def test_iter_leaves_includes_cron() -> None:
    node = cross(cron("tick", "@daily"), pfs("a", "/*"))
    assert [leaf.name for leaf in iter_leaves(node)] == ["a", "tick"]
    assert [leaf.name for leaf in iter_pfs_inputs(node)] == ["a"]


def test_builders_match_parsing() -> None:
    built = group(
        pfs("a", "/(*)", group_by="$1"), join(pfs("b", "/(*)", join_on="$1", outer_join=True))
    )
    parsed = parse_input(
        {
            "group": [
                {
                    "join": [
                        {"pfs": {"repo": "b", "glob": "/(*)", "join_on": "$1", "outer_join": True}}
                    ]
                },
                {"pfs": {"repo": "a", "glob": "/(*)", "group_by": "$1"}},
            ]
        }
    )
    assert parsed == built
    assert isinstance(parsed, GroupInput)
    assert parse_input(built.to_dict()) == built


def test_with_builders_return_new_specs() -> None:
    spec = parse_spec(base_spec())
    salted = spec.with_salt("abc")
    assert salted.salt == "abc"
    assert spec.salt == ""
    assert spec.with_parallelism(0).parallelism == 1
    assert spec.with_datum_tries(1).datum_tries == 1
    assert spec.with_input(pfs("other", "/")).input == pfs("other", "/")
    assert spec.with_transform(Transform(python="m:f")).transform.python == "m:f"
    with pytest.raises(SpecError, match="datum_tries: must be an integer >= 1, got 0"):
        spec.with_datum_tries(0)


def test_values_are_frozen_and_hashable() -> None:
    spec = parse_spec(REALISTIC_YAML)
    assert hash(spec) == hash(parse_spec(REALISTIC_YAML))
    with pytest.raises(AttributeError):
        spec.name = "x"  # type: ignore[misc]


def test_resource_json_is_canonical() -> None:
    a = parse_spec({**base_spec(), "resource_requests": {"memory": "1G", "cpu": 1}})
    b = parse_spec({**base_spec(), "resource_requests": {"cpu": 1, "memory": "1G"}})
    assert a == b
    assert a.resource_requests == '{"cpu":1,"memory":"1G"}'


def test_pod_patch_object_is_serialised() -> None:
    spec = parse_spec({**base_spec(), "pod_patch": [{"op": "remove", "path": "/x"}]})
    assert spec.pod_patch == '[{"op":"remove","path":"/x"}]'
    assert PipelineSpec.from_dict(spec.to_dict()) == spec


def test_naive_cron_start_is_utc() -> None:
    node = cron("t", "0 * * * *", start=datetime(2024, 1, 1))
    assert node.start == datetime(2024, 1, 1, tzinfo=UTC)


# --- parse_spec_or_input ----------------------------------------------------------------------


def test_spec_or_input_full_spec() -> None:
    assert isinstance(parse_spec_or_input(json.dumps(base_spec())), PipelineSpec)


def test_spec_or_input_bare_input() -> None:
    assert parse_spec_or_input('{"pfs": {"repo": "a", "glob": "/*"}}') == pfs("a", "/*")


def test_spec_or_input_wrapped_input() -> None:
    assert parse_spec_or_input("input:\n  pfs: {repo: a, glob: /*}\n") == pfs("a", "/*")


def test_spec_or_input_error_paths() -> None:
    with pytest.raises(GlobError, match=r"^cross\[1\]\.pfs\.glob: `/a/\(` is not a valid glob"):
        parse_spec_or_input(
            '{"cross": [{"pfs": {"repo": "a", "glob": "/"}}, {"pfs": {"repo": "b", "glob": "/a/("}}]}'
        )
    with pytest.raises(GlobError, match=r"^input\.pfs\.glob: "):
        parse_spec_or_input('{"input": {"pfs": {"repo": "b", "glob": "/a/("}}}')


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "spec: expected an object, got [1, 2]"),
        ("a: [b", "spec: not valid JSON or YAML"),
        ("", "spec: expected an object, got None"),
    ],
    ids=["list", "bad-yaml", "empty"],
)
def test_bad_documents(text: str, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(text)
    assert str(info.value).startswith(message)


# --- validation errors ------------------------------------------------------------------------

_P = {"pfs": {"repo": "a", "glob": "/*"}}


def _pfs(**kw: Any) -> dict[str, Any]:
    return {"pfs": {"repo": "a", "glob": "/*", **kw}}


INPUT_ERRORS: list[tuple[Any, str, str]] = [
    (
        {"cross": [_P, {"pfs": {"repo": "b", "glob": "/a/("}}]},
        "input.cross[1].pfs.glob: `/a/(` is not a valid glob: unclosed group",
        "bad-glob-nested",
    ),
    ({"pfs": {"repo": "a"}}, "input.pfs.glob: required", "glob-missing"),
    (_pfs(glob=""), "input.pfs.glob: required", "glob-empty"),
    ({"pfs": {"glob": "/*"}}, "input.pfs.repo: required", "repo-missing"),
    (
        _pfs(repo="my repo"),
        "input.pfs.repo: `my repo` is not a valid repo name: use letters, digits, `_` and `-`",
        "repo-name",
    ),
    (
        _pfs(branch="dev/x"),
        "input.pfs.branch: `dev/x` is not a valid branch name: use letters, digits, `_` and `-`",
        "branch-name",
    ),
    (
        _pfs(name="a.b"),
        "input.pfs.name: `a.b` is not a valid input name: use letters, digits, `_` and `-`",
        "input-name",
    ),
    (_pfs(name="out"), "input.pfs.name: `out` is a reserved input name", "name-out"),
    (_pfs(name=".env"), "input.pfs.name: `.env` is a reserved input name", "name-env"),
    (
        _pfs(repo="out"),
        "input.pfs.name: `out` is a reserved input name (a repo with that name needs an explicit `name`)",
        "repo-out",
    ),
    (
        _pfs(commit="abc123"),
        "input.pfs.commit: not allowed in a pipeline spec; use a branch whose head points to the commit",
        "commit",
    ),
    (
        _pfs(globb="/*"),
        "input.pfs.globb: unknown field; allowed: name, repo, branch, glob, join_on, outer_join, "
        "group_by, lazy, empty_files, reference",
        "unknown-pfs-field",
    ),
    (
        {"pfs": {"repo": "a", "glob": "/*"}, "cross": [_P]},
        "input: exactly one of pfs, cron, cross, union, join, group must be set; got pfs, cross",
        "two-types",
    ),
    (
        {},
        "input: exactly one of pfs, cron, cross, union, join, group must be set; got none",
        "no-type",
    ),
    (
        {"git": {"url": "x"}},
        "input.git: unknown field; allowed: pfs, cron, cross, union, join, group",
        "unknown-type",
    ),
    ({"cross": []}, "input.cross: needs at least one input", "empty-cross"),
    ({"union": []}, "input.union: needs at least one input", "empty-union"),
    ({"cross": [{"join": []}]}, "input.cross[0].join: needs at least one input", "empty-nested"),
    ({"cross": _P}, "input.cross: expected a list, got", "cross-not-list"),
    ("pfs", "input: expected an object, got 'pfs'", "input-not-object"),
    (
        {"cross": [_P, _P]},
        "input.cross[1].pfs.name: input name `a` is used more than once",
        "duplicate-name-cross",
    ),
    (
        {"join": [_pfs(join_on="$1"), {"cross": [_pfs(repo="b"), _pfs(repo="c", name="b")]}]},
        "input.join[1].cross[1].pfs.name: input name `b` is used more than once",
        "duplicate-name-nested",
    ),
    (
        {
            "cross": [
                {"union": [_pfs(name="in"), _pfs(repo="b", name="in")]},
                _pfs(repo="c", name="in"),
            ]
        },
        "input.cross[1].pfs.name: input name `in` is used more than once",
        "union-name-escapes-to-cross",
    ),
    (
        {"cross": [{"cron": {"name": "a", "spec": "@daily"}}, _pfs()]},
        "input.cross[1].pfs.name: input name `a` is used more than once",
        "cron-name-duplicate",
    ),
    (_pfs(join_on="$1"), "input.pfs.join_on: only allowed under a join input", "join-on-top"),
    (
        {"cross": [_pfs(outer_join=True)]},
        "input.cross[0].pfs.outer_join: only allowed under a join input",
        "outer-join-under-cross",
    ),
    (
        {"join": [_pfs(group_by="$1")]},
        "input.join[0].pfs.group_by: only allowed under a group input",
        "group-by-under-join",
    ),
    (_pfs(lazy="yes"), "input.pfs.lazy: expected true or false, got 'yes'", "lazy-type"),
    (_pfs(glob=3), "input.pfs.glob: expected a string, got 3", "glob-type"),
    ({"cron": {"name": "t"}}, "input.cron.spec: required", "cron-spec-missing"),
    ({"cron": {"spec": "@daily"}}, "input.cron.name: required", "cron-name-missing"),
    (
        {"cron": {"name": "t", "spec": "* * *"}},
        "input.cron.spec: `* * *` is not a cron spec: expected 5 or 6 fields",
        "cron-fields",
    ),
    (
        {"cron": {"name": "t", "spec": "@often"}},
        "input.cron.spec: `@often` is not a cron descriptor; allowed: @annually, @daily, @hourly, "
        "@midnight, @monthly, @weekly, @yearly, @every <duration>",
        "cron-descriptor",
    ),
    (
        {"cron": {"name": "t", "spec": "@every soon"}},
        "input.cron.spec: `soon` is not a duration; use e.g. 30s, 1.5s, 1m, 1h30m, 250ms",
        "cron-every",
    ),
    (
        {"cron": {"name": "t", "spec": "@daily", "start": "yesterday"}},
        "input.cron.start: `yesterday` is not an RFC 3339 timestamp",
        "cron-start",
    ),
    (
        {"cron": {"name": "out", "spec": "@daily"}},
        "input.cron.name: `out` is a reserved input name",
        "cron-out",
    ),
]


@pytest.mark.parametrize(
    ("data", "message"), [c[:2] for c in INPUT_ERRORS], ids=[c[2] for c in INPUT_ERRORS]
)
def test_input_errors(data: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_input(data)
    assert str(info.value).startswith(message)
    # The same tree inside a full spec reports the same path.
    with pytest.raises(SpecError) as info:
        parse_spec({**base_spec(), "input": data})
    assert str(info.value).startswith(message)


def _with(path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base_spec())
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node.setdefault(part, {})
    if value is _DELETE:
        del node[last]
    else:
        node[last] = value
    return data


_DELETE = object()

SPEC_ERRORS: list[tuple[str, Any, str, str]] = [
    ("pipeline", _DELETE, "pipeline: required", "pipeline-missing"),
    ("pipeline.name", _DELETE, "pipeline.name: required", "name-missing"),
    (
        "pipeline.name",
        "a.b",
        "pipeline.name: `a.b` is not a valid pipeline name: use letters, digits, `_` and `-`",
        "name-chars",
    ),
    (
        "pipeline.name",
        "x" * 64,
        f"pipeline.name: `{'x' * 64}` is longer than 63 characters",
        "name-length",
    ),
    (
        "pipeline.nmae",
        "x",
        "pipeline.nmae: unknown field; allowed: name, project",
        "pipeline-unknown",
    ),
    ("input", _DELETE, "input: required", "input-missing"),
    ("transform", _DELETE, "transform: required", "transform-missing"),
    ("transform.cmd", _DELETE, "transform.cmd: required unless `python` is given", "cmd-missing"),
    ("transform.cmd", [], "transform.cmd: required unless `python` is given", "cmd-empty"),
    (
        "transform.cmd",
        "python x.py",
        "transform.cmd: expected a list, got 'python x.py'",
        "cmd-str",
    ),
    ("transform.cmd", ["a", 1], "transform.cmd[1]: expected a string, got 1", "cmd-item"),
    (
        "transform.python",
        "m:f",
        "transform.python: give either `cmd` or `python`, not both",
        "cmd-and-python",
    ),
    (
        "transform.cmdd",
        ["x"],
        "transform.cmdd: unknown field; allowed: image, cmd, stdin, err_cmd, err_stdin, env, "
        "secrets, accept_return_code, working_dir, user, datum_batching, python",
        "transform-unknown",
    ),
    ("transform.env", ["A=1"], "transform.env: expected an object, got ['A=1']", "env-list"),
    ("transform.env", {"A": [1]}, "transform.env.A: expected a string, got [1]", "env-value"),
    (
        "transform.accept_return_code",
        [1, "two"],
        "transform.accept_return_code[1]: expected an integer, got 'two'",
        "return-code",
    ),
    (
        "transform.secrets",
        [{"name": "s", "env_var": "X"}],
        "transform.secrets[0].key: required with `env_var`",
        "secret-key",
    ),
    (
        "transform.secrets",
        [{"name": "s"}],
        "transform.secrets[0]: set `mount_path` or `env_var`",
        "secret-target",
    ),
    (
        "transform.secrets",
        [{"mount_path": "/s"}],
        "transform.secrets[0].name: required",
        "secret-name",
    ),
    (
        "transform.secrets",
        [{"name": "s", "mount": "/s"}],
        "transform.secrets[0].mount: unknown field; allowed: name, key, mount_path, env_var",
        "secret-unknown",
    ),
    ("datum_tries", -1, "datum_tries: must be an integer >= 1, got -1", "tries-negative"),
    ("datum_tries", "three", "datum_tries: expected an integer, got 'three'", "tries-type"),
    (
        "datum_timeout",
        "soon",
        "datum_timeout: `soon` is not a duration; use e.g. 30s, 1.5s, 1m, 1h30m, 250ms",
        "datum-timeout",
    ),
    ("job_timeout", "0s", "job_timeout: `0s` must be a positive duration", "job-timeout-zero"),
    ("job_timeout", -5, "job_timeout: `-5` must be a positive duration", "job-timeout-negative"),
    (
        "parallelism_spec.constant",
        -1,
        "parallelism_spec.constant: must be an integer >= 0, got -1",
        "parallelism-negative",
    ),
    (
        "parallelism_spec.max",
        2,
        "parallelism_spec.max: unknown field; allowed: constant",
        "parallelism-unknown",
    ),
    (
        "datum_set_spec",
        {"number": 0, "size_bytes": 0, "per_worker": 0},
        "datum_set_spec: at least one of number, size_bytes, per_worker must be > 0",
        "datum-set-all-zero",
    ),
    (
        "datum_set_spec",
        {},
        "datum_set_spec: at least one of number, size_bytes, per_worker must be > 0",
        "datum-set-empty",
    ),
    (
        "datum_set_spec",
        {"number": -1},
        "datum_set_spec.number: expected an integer >= 0, got -1",
        "datum-set-negative",
    ),
    (
        "datum_set_spec",
        {"per_worker": 2, "number": 5},
        "datum_set_spec: per_worker cannot be combined with number or size_bytes",
        "datum-set-per-worker-mix",
    ),
    (
        "reprocess_spec",
        "never",
        "reprocess_spec: `never` is not allowed; use until_success or every_job",
        "reprocess",
    ),
    (
        "output_branch",
        "a b",
        "output_branch: `a b` is not a valid branch name: use letters, digits, `_` and `-`",
        "output-branch",
    ),
    (
        "resource_requests",
        {"ram": "1G"},
        "resource_requests.ram: unknown field; allowed: cpu, memory, gpu, disk",
        "resources-unknown",
    ),
    ("pod_patch", "{not json", "pod_patch: not valid JSON", "pod-patch-json"),
    ("description", 5, "description: expected a string, got 5", "description-type"),
    (
        "transformer",
        {},
        "transformer: unknown field; allowed: pipeline, description, input, transform, "
        "parallelism_spec, datum_tries, datum_timeout, job_timeout, datum_set_spec, "
        "reprocess_spec, salt, output_branch, resource_requests, resource_limits, pod_spec, "
        "pod_patch",
        "top-unknown",
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [c[:3] for c in SPEC_ERRORS],
    ids=[c[3] for c in SPEC_ERRORS],
)
def test_spec_errors(path: str, value: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_with(path, value))
    assert str(info.value) == message


def test_error_carries_field() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec(_with("transform.cmd", []))
    assert info.value.field == "transform.cmd"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: pfs("a", "/a/("), "pfs.glob: `/a/(` is not a valid glob: unclosed group"),
        (lambda: pfs("out", "/"), "pfs.name: `out` is a reserved input name"),
        (lambda: cross(), "cross: needs at least one input"),
        (lambda: CrossInput(inputs=("x",)), "cross[0]: expected an input, got 'x'"),  # type: ignore[arg-type]
        (lambda: cron("t", "bad"), "cron.spec: `bad` is not a cron spec"),
        (lambda: Transform(), "transform.cmd: required unless `python` is given"),
        (lambda: Transform(python="not a ref"), "transform.python: `not a ref` is not a callable"),
        (
            lambda: Transform(cmd=("x",), env=(("A", "1"), ("A", "2"))),
            "transform.env: `A` is set more",
        ),
        (lambda: DatumSetSpec(), "datum_set_spec: at least one of"),
        (
            lambda: PipelineSpec(
                name="p",
                input=pfs("a", "/"),
                transform=Transform(cmd=("x",)),
                resource_limits="[1]",
            ),
            "resource_limits: expected an object, got [1]",
        ),
    ],
    ids=[
        "pfs-glob",
        "pfs-out",
        "cross-empty",
        "cross-not-input",
        "cron-spec",
        "transform-empty",
        "python-ref",
        "env-duplicate",
        "datum-set-zero",
        "resources-not-object",
    ],
)
def test_builder_errors_name_relative_fields(build: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        build()
    assert str(info.value).startswith(message)


def test_validate_input_on_built_trees() -> None:
    with pytest.raises(SpecError, match=r"^input\.cross\[1\]\.pfs\.name: input name `a`"):
        validate_input(cross(pfs("a", "/"), pfs("b", "/", name="a")))
    with pytest.raises(SpecError, match=r"^input\.cross\[0\]\.pfs\.join_on: only allowed"):
        PipelineSpec(
            name="p", input=cross(pfs("a", "/(*)", join_on="$1")), transform=Transform(cmd=("x",))
        )
    # Union branches may reuse a name; join_on below a join through a cross is fine.
    validate_input(union(pfs("a", "/", name="in"), pfs("b", "/", name="in")))
    validate_input(
        join(cross(pfs("a", "/(*)", join_on="$1"), pfs("b", "/*")), pfs("c", "/(*)", join_on="$1"))
    )
    validate_input(group(join(pfs("a", "/(*)", join_on="$1", group_by="$1"))))


# --- unsupported fields -----------------------------------------------------------------------

UNSUPPORTED: list[tuple[str, Any, str]] = [
    ("autoscaling", True, "autoscaling"),
    ("sidecar_resource_limits", {"memory": "1G"}, "sidecar_resource_limits"),
    ("scheduling_spec", {"node_selector": {"a": "b"}}, "scheduling_spec"),
    ("tolerations", [{"key": "x"}], "tolerations"),
    ("metadata", {"labels": {"a": "b"}}, "metadata"),
    ("spec_commit", {"id": "x"}, "spec_commit"),
    ("enable_stats", True, "enable_stats"),
    ("standby", True, "standby"),
    ("max_queue_size", 2, "max_queue_size"),
    ("cache_size", "64M", "cache_size"),
    ("chunk_spec", {"number": 1}, "chunk_spec"),
    ("update", True, "update"),
    ("transform.debug", True, "transform.debug"),
    ("transform.image_pull_secrets", ["reg"], "transform.image_pull_secrets"),
    ("parallelism_spec.coefficient", 0.5, "parallelism_spec.coefficient"),
]


@pytest.mark.parametrize(
    ("path", "value"), [c[:2] for c in UNSUPPORTED], ids=[c[2] for c in UNSUPPORTED]
)
def test_unsupported_fields_warn_and_are_dropped(path: str, value: Any) -> None:
    data = _with(path, value)
    with pytest.warns(
        UnsupportedFieldWarning,
        match=rf"^{path}: not supported by airflow-datum-provider; ignored$",
    ):
        spec = parse_spec(data)
    assert spec == parse_spec(base_spec())


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("autoscaling", False),
        ("standby", False),
        ("max_queue_size", 0),
        ("tolerations", []),
        ("input.pfs.s3", False),
    ],
    ids=["false", "false-2", "zero", "empty-list", "nested-false"],
)
def test_empty_unsupported_fields_are_silent(path: str, value: Any) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        parse_spec(_with(path, value))
    assert [str(w.message) for w in caught] == []


def test_empty_pfs_commit_is_tolerated() -> None:
    assert parse_input({"pfs": {"repo": "a", "glob": "/", "commit": ""}}) == pfs("a", "/")


def test_cron_ignored_fields_warn() -> None:
    with pytest.warns(UnsupportedFieldWarning, match=r"^input\.cron\.repo: "):
        node = parse_input({"cron": {"name": "t", "spec": "@daily", "repo": "p_t"}})
    assert node == cron("t", "@daily")


# --- durations --------------------------------------------------------------------------------

DURATIONS: list[tuple[Any, timedelta, str, str]] = [
    ("30s", timedelta(seconds=30), "30s", "seconds"),
    ("1m", timedelta(minutes=1), "60s", "minutes"),
    ("1h30m", timedelta(hours=1, minutes=30), "5400s", "hours-minutes"),
    ("1.5s", timedelta(seconds=1.5), "1.5s", "fractional"),
    ("250ms", timedelta(milliseconds=250), "0.25s", "millis"),
    ("1.5h", timedelta(minutes=90), "5400s", "fractional-hours"),
    ("10us", timedelta(microseconds=10), "0.00001s", "micros"),
    ("1µs", timedelta(microseconds=1), "0.000001s", "micro-sign"),
    ("1500ns", timedelta(microseconds=2), "0.000002s", "nanos-rounded"),
    (
        "2h3m4s5ms",
        timedelta(hours=2, minutes=3, seconds=4, milliseconds=5),
        "7384.005s",
        "all-units",
    ),
    (".5s", timedelta(milliseconds=500), "0.5s", "leading-dot"),
    (" 5s ", timedelta(seconds=5), "5s", "whitespace"),
    (30, timedelta(seconds=30), "30s", "int-seconds"),
    (0.5, timedelta(milliseconds=500), "0.5s", "float-seconds"),
    (timedelta(minutes=2), timedelta(minutes=2), "120s", "timedelta"),
]


@pytest.mark.parametrize(
    ("value", "expected", "text"), [c[:3] for c in DURATIONS], ids=[c[3] for c in DURATIONS]
)
def test_parse_duration(value: Any, expected: timedelta, text: str) -> None:
    assert parse_duration(value) == expected
    assert format_duration(expected) == text
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30", "`30` is not a duration"),
        ("1d", "`1d` is not a duration"),
        ("s", "`s` is not a duration"),
        ("", "`` is not a duration"),
        ("1m 30s", "`1m 30s` is not a duration"),
        ("-1s", "`-1s` is not a duration"),
        ("0s", "`0s` must be a positive duration"),
        (0, "`0` must be a positive duration"),
        (True, "expected a duration string or seconds, got True"),
        (float("inf"), "`inf` is not a duration"),
        (None, "expected a duration string or seconds, got None"),
    ],
    ids=[
        "no-unit",
        "days",
        "no-number",
        "empty",
        "space",
        "negative",
        "zero",
        "zero-int",
        "bool",
        "inf",
        "none",
    ],
)
def test_parse_duration_errors(value: Any, message: str) -> None:
    with pytest.raises(SpecError) as info:
        parse_duration(value, "datum_timeout")
    assert str(info.value).startswith(f"datum_timeout: {message}")


# --- value classes ----------------------------------------------------------------------------


def test_input_classes_to_dict_shapes() -> None:
    assert UnionInput(inputs=(pfs("a", "/"),)).to_dict() == {
        "union": [{"pfs": {"name": "a", "repo": "a", "branch": "master", "glob": "/"}}]
    }
    assert (
        JoinInput(inputs=(pfs("a", "/(*)", join_on="$1"),)).to_dict()["join"][0]["pfs"]["join_on"]
        == "$1"
    )
    assert cron("t", "*/5 * * * *").to_dict() == {"cron": {"name": "t", "spec": "*/5 * * * *"}}


def test_transform_env_dict_and_tuples() -> None:
    t = Transform(cmd=["sh", "-c", "x"], env=(("B", "2"), ("A", "1")))  # type: ignore[arg-type]
    assert t.cmd == ("sh", "-c", "x")
    assert t.env_dict == {"B": "2", "A": "1"}
    assert list(t.to_dict()["env"]) == ["B", "A"]


@pytest.mark.parametrize(
    "value",
    ["99999999999999999999s", "2562048h", 1e300, 10**30],
    ids=["huge-string", "past-go-max", "huge-float", "huge-int"],
)
def test_overlong_duration_is_one_line_naming_the_field(value: Any) -> None:
    with pytest.raises(SpecError, match=r"^datum_timeout: .* is longer than the longest") as info:
        parse_spec(_with("datum_timeout", value))
    assert len(str(info.value)) < 200


def test_go_max_duration_is_accepted() -> None:
    spec = parse_spec(_with("job_timeout", "2562047h"))
    assert spec.job_timeout == timedelta(hours=2562047)


# --- exhaustive dispatch over the input algebra (issue 8 §6) ----------------------------------


def test_dispatch_names_every_kind_and_refuses_the_unknown() -> None:
    from airflow_datum_provider.core import spec as spec_module
    from airflow_datum_provider.core.plan import pfs_leaves

    leaf = pfs("a", "/*")
    kinds = {
        leaf: "pfs",
        cron("t", "@daily"): "cron",
        cross(leaf): "cross",
        union(leaf): "union",
        join(leaf): "join",
        group(leaf): "group",
    }
    for node, kind in kinds.items():
        assert spec_module._kind(node) == kind
    for bad in (object(), {"pfs": {}}, None):
        with pytest.raises(AssertionError):
            spec_module._kind(bad)  # type: ignore[arg-type]
        with pytest.raises(AssertionError):
            list(pfs_leaves(bad))  # type: ignore[arg-type]
        with pytest.raises(AssertionError):
            list(spec_module.iter_leaves(bad))  # type: ignore[arg-type]


def test_spout_spec_is_refused_naming_spout_not_input() -> None:
    spec = {"pipeline": {"name": "s"}, "spout": {"overwrite": True}, "transform": {"cmd": ["x"]}}
    with pytest.raises(SpecError, match=r"^spout: not supported by airflow-datum-provider: "):
        parse_spec(spec)


@pytest.mark.parametrize(
    ("project", "ok"),
    [
        ("default", True),
        ({"name": "default"}, True),
        ("", True),
        ("p", False),
        ({"name": "p"}, False),
    ],
    ids=["default", "default-object", "empty", "other", "other-object"],
)
def test_project_default_only(project: Any, ok: bool) -> None:
    for path in ("pipeline.project", "input.pfs.project"):
        data = _with(path, project)
        if ok:
            assert parse_spec(data) == parse_spec(base_spec())
        else:
            with pytest.raises(SpecError, match=rf"^{path}: project 'p' is not supported"):
                parse_spec(data)
