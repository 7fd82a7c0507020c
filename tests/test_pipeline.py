"""``DatumPipeline`` at DAG-parse time: warnings about ignored spec fields and spec file errors."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

SPEC = """\
pipeline:
  name: scaled
input:
  pfs: {repo: words, glob: "/*"}
transform:
  cmd: ["true"]
autoscaling: true
"""


def _dag_file(folder: Path, spec: Path) -> Path:
    folder.mkdir()
    path = folder / "scaled.py"
    path.write_text(
        textwrap.dedent(
            f"""\
            import pendulum
            from airflow.sdk import DAG

            from airflow_datum_provider import DatumPipeline

            with DAG("scaled", schedule=None, start_date=pendulum.datetime(2026, 1, 1)):
                DatumPipeline({str(spec)!r})
            """
        )
    )
    return path


def _autoscaling(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in caught if "autoscaling: not supported" in str(w.message)]


def test_ignored_field_warns_once_when_airflow_parses_the_file_twice(
    tmp_path: Path, airflow_home: Path
) -> None:
    """``airflow dags test`` runs the DAG file twice in one process: one warning, not two."""
    from airflow.dag_processing.dagbag import DagBag

    spec = tmp_path / "scaled.yaml"
    spec.write_text(SPEC)
    dag_file = _dag_file(tmp_path / "dags", spec)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bags = [DagBag(dag_folder=str(dag_file.parent)) for _ in range(2)]
    assert [bag.import_errors for bag in bags] == [{}, {}]
    (warning,) = _autoscaling(caught)
    assert str(warning.message) == (
        f"{spec}: autoscaling: not supported by airflow-datum-provider; ignored"
    )
    # It points at the DatumPipeline(...) line of the DAG file, not into the parser.
    assert (warning.filename, warning.lineno) == (str(dag_file), 7)


def test_each_datum_pipeline_line_warns(airflow_home: Path) -> None:
    """Once per line (as Python's default shows a warning once per place), not once overall."""
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline

    spec: dict[str, Any] = {
        "pipeline": {"name": "a"},
        "input": {"pfs": {"repo": "words", "glob": "/*"}},
        "transform": {"cmd": ["true"]},
        "standby": True,
    }
    with (
        warnings.catch_warnings(record=True) as caught,
        DAG("lines", schedule=None, start_date=pendulum.datetime(2026, 1, 1)),
    ):
        warnings.simplefilter("always")
        for n in range(2):  # one line, twice: one warning
            DatumPipeline(spec, group_id=f"loop{n}")
        DatumPipeline({**spec, "pipeline": {"name": "b"}})
    messages = [str(w.message) for w in caught if "standby" in str(w.message)]
    assert messages == [
        "pipeline a: standby: not supported by airflow-datum-provider; ignored",
        "pipeline b: standby: not supported by airflow-datum-provider; ignored",
    ]
    assert {w.filename for w in caught if "standby" in str(w.message)} == {__file__}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            'pipeline:\n  name: x\ninput: {pfs: {repo: a, glob: "/*"}\n',
            "not valid JSON or YAML: expected ',' or '}', but got '<stream end>' (line 4, column 1)",
        ),
        (
            '{"pipeline": {"name": "x"},\n "input": 3,,}\n',
            "not valid JSON or YAML: expected the node content, but found ',' (line 2, column 13)",
        ),
        ("pipeline: {name: x}\npipeline: {name: y}\n", "key `pipeline` is given twice"),
    ],
    ids=["yaml", "json", "duplicate-key"],
)
def test_a_spec_file_that_does_not_parse_is_one_line_naming_it(
    tmp_path: Path, airflow_home: Path, text: str, error: str
) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider import DatumPipeline
    from airflow_datum_provider.core.errors import SpecError

    spec = tmp_path / "bad.yaml"
    spec.write_text(text)
    with (
        DAG("bad", schedule=None, start_date=pendulum.datetime(2026, 1, 1)),
        pytest.raises(SpecError) as raised,
    ):
        DatumPipeline(spec)
    assert str(raised.value).startswith(f"{spec}: {error}")
    assert "\n" not in str(raised.value)
    assert raised.value.path == str(spec)
