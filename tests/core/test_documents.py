"""Bad spec input is bounded: one-line errors, no RecursionError, no alias expansion (issue 7 §5)."""

from __future__ import annotations

import json

import pytest

from airflow_datum_provider.core._documents import MAX_VALUES, load_documents, show
from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.spec import parse_spec, parse_specs

BASE = "pipeline: {name: p}\ninput: {pfs: {repo: r, glob: /*}}\ntransform: {cmd: [cat]}\n"


def _one_line(exc: pytest.ExceptionInfo[SpecError], limit: int = 400) -> str:
    text = str(exc.value)
    assert "\n" not in text
    assert len(text) < limit
    return text


def _billion_laughs() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, 10):
        prev = f"*a{i - 1}"
        lines.append(f"a{i}: &a{i} [{', '.join([prev] * 10)}]")
    body = "\n".join("  " + line for line in lines)
    return BASE + "metadata:\n" + body + "\n"


def test_alias_bomb_is_refused_before_expansion() -> None:
    with pytest.raises(SpecError, match=f"expands to more than {MAX_VALUES} values") as info:
        parse_spec(_billion_laughs())
    _one_line(info)


def test_alias_bomb_under_pod_patch_is_refused() -> None:
    text = _billion_laughs().replace("metadata:", "pod_patch:")
    with pytest.raises(SpecError, match="expands to more than") as info:
        parse_spec(text)
    _one_line(info)


def test_small_aliases_still_work() -> None:
    text = BASE.replace("transform: {cmd: [cat]}", "transform: {cmd: &c [cat], stdin: *c}")
    assert parse_spec(text).transform.stdin == ("cat",)


def test_self_referencing_alias_is_refused() -> None:
    with pytest.raises(SpecError, match="refers to the value that contains it") as info:
        parse_spec(BASE + "pod_patch: &x [1, *x]\n")
    _one_line(info)


@pytest.mark.parametrize("kind", ["json", "yaml"])
def test_deep_nesting_is_one_line(kind: str) -> None:
    deep: object = 1
    for _ in range(5000):
        deep = [deep]
    if kind == "json":
        text = '{"pipeline": {"name": "p"}, "pod_patch": ' + "[" * 5000 + "1" + "]" * 5000 + "}"
    else:
        text = BASE + "pod_patch: " + "[" * 5000 + "1" + "]" * 5000 + "\n"
    with pytest.raises(SpecError, match="nest more than 100 levels deep") as info:
        parse_spec(text)
    _one_line(info)


def test_deep_mapping_passed_in_is_one_line() -> None:
    deep: object = 1
    for _ in range(5000):
        deep = {"a": deep}
    data = {**json.loads(json.dumps(parse_spec(BASE).to_dict())), "pod_patch": deep}
    with pytest.raises(SpecError, match="nest more than") as info:
        parse_spec(data)
    _one_line(info)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (BASE + "pipeline: {name: q}\n", "pipeline"),
        (BASE.replace("{repo: r,", "{repo: r, repo: s,"), "repo"),
        (
            '{"pipeline": {"name": "p"}, "pipeline": {"name": "q"}, '
            '"input": {"pfs": {"repo": "r", "glob": "/*"}}, "transform": {"cmd": ["cat"]}}',
            "pipeline",
        ),
    ],
    ids=["yaml-top", "yaml-nested", "json"],
)
def test_duplicate_keys_are_refused_naming_the_key(text: str, key: str) -> None:
    with pytest.raises(SpecError, match=f"key `{key}` is given twice") as info:
        parse_spec(text)
    _one_line(info)


def test_yaml_merge_keys_may_be_overridden() -> None:
    text = (
        "defaults: &d {cmd: [cat], working_dir: /a}\n"
        "pipeline: {name: p}\ninput: {pfs: {repo: r, glob: /*}}\n"
        "transform: {<<: *d, working_dir: /b}\n"
    )
    # `defaults` is no spec field: parse the transform alone through the loader.
    (doc,) = load_documents(text)
    assert isinstance(doc, dict)
    assert doc["transform"] == {"cmd": ["cat"], "working_dir": "/b"}


def test_huge_values_are_not_formatted_into_errors() -> None:
    with pytest.raises(SpecError) as info:
        parse_spec({"pipeline": {"name": "p"}, "input": "x" * 10_000_000, "transform": {}})
    _one_line(info)
    with pytest.raises(SpecError) as info:
        parse_spec(BASE.replace("r,", "r!" * 1_000_000 + ","))
    _one_line(info)


def test_show_is_bounded() -> None:
    assert len(show(list(range(1_000_000)))) < 100
    assert len(show("x" * 1_000_000)) < 100
    assert "\n" not in show("a\nb")


def test_yaml_error_is_one_line() -> None:
    with pytest.raises(SpecError, match=r"^spec: not valid JSON or YAML: .*\(line 1") as info:
        parse_spec("a: [b")
    _one_line(info)


def test_tab_after_a_value_is_accepted_like_pachctl() -> None:
    text = BASE.replace("pipeline: {name: p}", "pipeline:\n  name: p\t\t# the name\t")
    assert parse_spec(text).name == "p"


def test_several_documents_are_refused_by_parse_spec() -> None:
    with pytest.raises(SpecError, match="got 2 documents"):
        parse_spec(BASE + "---\n" + BASE.replace("name: p", "name: q"))
    assert [s.name for s in parse_specs(BASE + "---\n" + BASE.replace("name: p", "name: q"))] == [
        "p",
        "q",
    ]


def test_aliased_long_strings_count_their_length() -> None:
    text = (
        BASE + "pod_patch:\n  a: &s " + "x" * 100_000 + "\n  b: [" + ", ".join(["*s"] * 200) + "]\n"
    )
    with pytest.raises(SpecError, match="expands to more than") as info:
        parse_spec(text)
    _one_line(info)
