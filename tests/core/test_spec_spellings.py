"""Both spellings of every field (snake_case and protojson camelCase), from one table (issue 13).

Each row names one field by its snake_case path and a value that exercises it; the tests spell
the field both ways and expect the same outcome (the same spec, warning or error), and a spec
giving both spellings of it is an error naming both. ``test_table_covers_every_field`` keeps the
table in step with what ``spec.py`` knows.
"""

from __future__ import annotations

import copy
import json
import warnings
from typing import Any

import pytest

from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.spec import FIELDS, camel, parse_spec

BASES: dict[str, dict[str, Any]] = {
    "pfs": {"pfs": {"repo": "r", "glob": "/*"}},
    "join": {
        "join": [
            {"pfs": {"repo": "a", "glob": "/(*)", "join_on": "$1"}},
            {"pfs": {"repo": "b", "glob": "/(*)", "join_on": "$1"}},
        ]
    },
    "group": {"group": [{"pfs": {"repo": "a", "glob": "/(*)", "group_by": "$1"}}]},
    "cron": {"cron": {"name": "tick", "spec": "@every 60s"}},
}

# (snake_case path, value, base input). Paths index lists with numbers.
TABLE: list[tuple[str, Any, str]] = [
    # top level
    ("pipeline", {"name": "p"}, "pfs"),
    ("pipeline.name", "p2", "pfs"),
    ("pipeline.project", {"name": "default"}, "pfs"),
    ("description", "words", "pfs"),
    ("input", {"pfs": {"repo": "s", "glob": "/"}}, "pfs"),
    ("transform", {"cmd": ["echo"]}, "pfs"),
    ("parallelism_spec", {"constant": "3"}, "pfs"),
    ("parallelism_spec.constant", 2, "pfs"),
    ("parallelism_spec.coefficient", 0.5, "pfs"),
    ("datum_tries", "5", "pfs"),
    ("datum_timeout", "90s", "pfs"),
    ("job_timeout", "1h", "pfs"),
    ("datum_set_spec", {"number": 2}, "pfs"),
    ("datum_set_spec.number", "4", "pfs"),
    ("datum_set_spec.size_bytes", 1024, "pfs"),
    ("datum_set_spec.per_worker", 2, "pfs"),
    ("reprocess_spec", "every_job", "pfs"),
    ("salt", "s", "pfs"),
    ("output_branch", "dev", "pfs"),
    ("resource_requests", {"memory": "1G", "cpu": 1}, "pfs"),
    ("resource_limits", {"memory": "2G"}, "pfs"),
    ("pod_spec", '{"a": 1}', "pfs"),
    ("pod_patch", [{"op": "add", "path": "/x", "value": 1}], "pfs"),
    # ignored (warned about)
    ("autoscaling", True, "pfs"),
    ("cache_size", "64M", "pfs"),
    ("chunk_spec", {"number": 1}, "pfs"),
    ("enable_stats", True, "pfs"),
    ("hashtree_spec", {"constant": 1}, "pfs"),
    ("max_queue_size", 2, "pfs"),
    ("maximum_expected_uptime", "1h", "pfs"),
    ("metadata", {"labels": {"a": "b"}}, "pfs"),
    ("reprocess", True, "pfs"),
    ("scheduling_spec", {"node_selector": {"a": "b"}}, "pfs"),
    ("sidecar_resource_limits", {"memory": "1G"}, "pfs"),
    ("sidecar_resource_requests", {"memory": "1G"}, "pfs"),
    ("spec_commit", {"id": "x"}, "pfs"),
    ("standby", True, "pfs"),
    ("tolerations", [{"key": "k"}], "pfs"),
    ("update", True, "pfs"),
    # refused
    ("service", {"external_port": 30000}, "pfs"),
    ("spout", {}, "pfs"),
    ("s3_out", True, "pfs"),
    ("egress", {"URL": "s3://b/x"}, "pfs"),
    ("tf_job", {"tf_job": "{}"}, "pfs"),
    ("dry_run", True, "pfs"),
    ("determined", {"workspaces": ["w"]}, "pfs"),
    # input
    ("input.pfs", {"repo": "s", "glob": "/*/*"}, "pfs"),
    ("input.pfs.name", "renamed", "pfs"),
    ("input.pfs.repo", "other", "pfs"),
    ("input.pfs.branch", "dev", "pfs"),
    ("input.pfs.glob", "/*/*", "pfs"),
    ("input.pfs.lazy", True, "pfs"),
    ("input.pfs.empty_files", True, "pfs"),
    ("input.pfs.reference", True, "pfs"),
    ("input.pfs.project", "default", "pfs"),
    ("input.pfs.repo_type", "user", "pfs"),
    ("input.pfs.rows_per_datum", "1000", "pfs"),
    ("input.pfs.propagation_spec", {"never": True}, "pfs"),
    ("input.pfs.commit", "", "pfs"),
    ("input.pfs.s3", True, "pfs"),
    ("input.pfs.trigger", {"size": "1M"}, "pfs"),
    ("input.join.0.pfs.join_on", "$1-x", "join"),
    ("input.join.0.pfs.outer_join", True, "join"),
    ("input.group.0.pfs.group_by", "$1", "group"),
    ("input.cross", [{"pfs": {"repo": "a", "glob": "/*"}}], "pfs"),
    ("input.union", [{"pfs": {"repo": "a", "glob": "/*"}}], "pfs"),
    ("input.join", [{"pfs": {"repo": "a", "glob": "/(*)", "join_on": "$1"}}], "pfs"),
    ("input.group", [{"pfs": {"repo": "a", "glob": "/(*)", "group_by": "$1"}}], "pfs"),
    ("input.cron", {"name": "t", "spec": "@daily"}, "pfs"),
    ("input.cron.name", "t2", "cron"),
    ("input.cron.spec", "*/5 * * * *", "cron"),
    ("input.cron.overwrite", True, "cron"),
    ("input.cron.start", "2024-01-01T00:00:00Z", "cron"),
    ("input.cron.project", {"name": "default"}, "cron"),
    ("input.cron.repo", "p_tick", "cron"),
    # transform
    ("transform.image", "python:3.12", "pfs"),
    ("transform.cmd", ["sh"], "pfs"),
    ("transform.stdin", ["echo hi"], "pfs"),
    ("transform.err_cmd", ["true"], "pfs"),
    ("transform.err_stdin", ["echo"], "pfs"),
    ("transform.env", {"myVar": "1", "OTHER_VAR": 2}, "pfs"),
    ("transform.secrets", [{"name": "s", "env_var": "TOKEN", "key": "k"}], "pfs"),
    ("transform.secrets.0.name", "s2", "pfs"),
    ("transform.secrets.0.key", "k2", "pfs"),
    ("transform.secrets.0.mount_path", "/secret", "pfs"),
    ("transform.secrets.0.env_var", "T2", "pfs"),
    ("transform.accept_return_code", ["1", 2], "pfs"),
    ("transform.working_dir", "/w", "pfs"),
    ("transform.user", "nobody", "pfs"),
    ("transform.datum_batching", True, "pfs"),
    ("transform.python", "pkg.mod:fn", "pfs"),
    ("transform.debug", True, "pfs"),
    ("transform.image_pull_secrets", ["reg"], "pfs"),
    ("transform.memory_volume", True, "pfs"),
    ("transform.build", {"path": "."}, "pfs"),
    ("transform.dockerfile", "Dockerfile", "pfs"),
]
_IDS = [row[0] for row in TABLE]
# Fields whose two spellings differ (``lazy`` is ``lazy`` either way).
TWO_SPELLINGS = [
    row for row in TABLE if camel(row[0].rsplit(".", 1)[-1]) != row[0].rsplit(".", 1)[-1]
]


def _base(kind: str) -> dict[str, Any]:
    return {
        "pipeline": {"name": "p"},
        "input": copy.deepcopy(BASES[kind]),
        "transform": {"cmd": ["cat"], "secrets": [{"name": "s", "mount_path": "/m"}]},
    }


def _set(data: dict[str, Any], path: str, value: Any, *, spell: str = "snake") -> None:
    """Set ``path`` (snake_case) in ``data``, spelling its last key ``snake``, ``camel`` or both."""
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    keys = {"snake": [last], "camel": [camel(last)], "both": [last, camel(last)]}[spell]
    for key in (last, camel(last)):
        node.pop(key, None)  # the base may hold the field already
    for key in keys:
        node[key] = copy.deepcopy(value)


def _outcome(data: dict[str, Any]) -> tuple[str, Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", parse_spec(data).to_dict())
        except SpecError as exc:
            result = ("error", str(exc))
    return (*result, [str(w.message) for w in caught])


@pytest.mark.parametrize(("path", "value", "base"), TABLE, ids=_IDS)
def test_both_spellings_mean_the_same(path: str, value: Any, base: str) -> None:
    snake, camel_case = _base(base), _base(base)
    _set(snake, path, value, spell="snake")
    _set(camel_case, path, value, spell="camel")
    assert _outcome(camel_case) == _outcome(snake)


@pytest.mark.parametrize(
    ("path", "value", "base"), TWO_SPELLINGS, ids=[row[0] for row in TWO_SPELLINGS]
)
def test_both_spellings_at_once_are_an_error_naming_both(path: str, value: Any, base: str) -> None:
    last = path.rsplit(".", 1)[-1]
    data = _base(base)
    _set(data, path, value, spell="both")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(SpecError) as info:
            parse_spec(data)
    assert f"`{last}` and `{camel(last)}` are the same field; give one" in str(info.value)


def test_table_covers_every_field() -> None:
    named = {path.rsplit(".", 1)[-1] for path, _, _ in TABLE}
    assert sorted(set(FIELDS) - named) == []
    assert sorted(named - set(FIELDS)) == []


def _camel_tree(value: Any, opaque: bool = False) -> Any:
    if isinstance(value, dict):
        return {
            (k if opaque else camel(k)): _camel_tree(v, opaque or k in _OPAQUE)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_camel_tree(v, opaque) for v in value]
    return value


_OPAQUE = {"env", "resource_requests", "resource_limits", "pod_patch", "pod_spec"}


def test_a_whole_camel_case_spec_round_trips_to_snake_case() -> None:
    snake = _base("join")
    for path, value in [
        ("parallelism_spec.constant", "2"),
        ("datum_set_spec.size_bytes", "1000"),
        ("transform.accept_return_code", [1]),
        ("transform.env", {"myVar": "x"}),
        ("input.join.0.pfs.outer_join", True),
        ("input.join.1.pfs.empty_files", True),
        ("output_branch", "dev"),
        ("resource_limits", {"memory": "1G"}),
        ("datum_tries", 0),
    ]:
        _set(snake, path, value)
    camel_spec = _camel_tree(snake)
    assert "parallelismSpec" in camel_spec
    assert "joinOn" in json.dumps(camel_spec)
    parsed = parse_spec(camel_spec)
    assert parsed == parse_spec(snake)
    assert parsed.datum_tries == 3
    assert parsed.parallelism == 2
    assert parsed.transform.env == (("myVar", "x"),)
    # to_dict writes the canonical snake_case, and parses back to the same spec.
    out = parsed.to_dict()
    assert "parallelism_spec" in out
    assert "parallelismSpec" not in out
    assert parse_spec(out) == parsed
