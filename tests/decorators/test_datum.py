"""``@task.datum``: its arguments are checked when it is applied, with one line naming each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow


def shout(datum: Any) -> None:
    """Stand-in user code (never run here)."""


def _pfs(**kwargs: Any) -> Any:
    from airflow_datum_provider.core.spec import pfs

    return pfs(**kwargs)


REFUSED: list[tuple[dict[str, Any], str, str]] = [
    (
        {"input": "words", "glob": "["},
        "@task.datum shout: glob: give glob inside input= (pfs(repo=..., glob='[')) or without "
        "input=, not both",
        "glob-with-input",
    ),
    (
        {"glob": "["},
        "@task.datum shout: glob: `[` is not a valid glob: unclosed character class",
        "bad-glob",
    ),
    (
        {"name": "no spaces"},
        "@task.datum no spaces: name: `no spaces` is not a valid pipeline name",
        "bad-name",
    ),
    ({"parallelism": -1}, "@task.datum shout: parallelism: must be an integer >= 0", "parallelism"),
    ({"datum_tries": 0}, "@task.datum shout: datum_tries: must be an integer >= 1", "datum-tries"),
    (
        {"input": {"pfs": {"repo": "words", "glob": "/a/("}}},
        "@task.datum shout: input.pfs.glob: `/a/(` is not a valid glob: unclosed group",
        "bad-input-dict",
    ),
    ({"input": "words"}, "@task.datum shout: input: expected an input, got 'words'", "input-str"),
]


@pytest.mark.parametrize(
    ("kwargs", "message"), [r[:2] for r in REFUSED], ids=[r[2] for r in REFUSED]
)
def test_bad_arguments_are_refused_when_applied(
    airflow_home: Path, kwargs: dict[str, Any], message: str
) -> None:
    from airflow.sdk import task

    from airflow_datum_provider.core.errors import SpecError

    if kwargs.get("input") == "words" and "glob" in kwargs:
        kwargs = {**kwargs, "input": _pfs(repo="words", glob="/*")}  # a valid input, and glob
    with pytest.raises(SpecError) as raised:
        task.datum(**kwargs)(shout)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_glob_splits_the_upstream_output(airflow_home: Path) -> None:
    import pendulum
    from airflow.sdk import DAG, task

    first = task.datum(input={"pfs": {"repo": "words", "glob": "/*"}}, name="first")(shout)
    second = task.datum(name="second", glob="/*/*")(shout)
    with DAG("chain", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
        group = second(first())
    pfs = group.create.spec["input"]["pfs"]
    assert (pfs["repo"], pfs["glob"]) == ("first", "/*/*")


def test_input_and_an_upstream_group_are_refused(airflow_home: Path) -> None:
    import pendulum
    from airflow.sdk import DAG, task

    from airflow_datum_provider.core.errors import SpecError

    first = task.datum(input=_pfs(repo="words", glob="/*"), name="first")(shout)
    second = task.datum(input=_pfs(repo="notes", glob="/*"), name="second")(shout)
    with (
        DAG("both", schedule=None, start_date=pendulum.datetime(2026, 1, 1)),
        pytest.raises(SpecError, match=r"^@task\.datum second: input: is given, so the call"),
    ):
        second(first())
