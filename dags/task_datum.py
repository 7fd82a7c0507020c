"""``@task.datum``: plain functions of one datum become chained pipelines.

``title_case`` runs once per file of ``words``; ``letters`` takes ``title_case``'s output repo
as its input (passing one decorated call to the other wires it) and counts the letters of
each file.

``make airflow`` seeds ``words`` from ``examples/data/words``; by hand, from the project's
folder: ``datumctl create repo words`` then
``datumctl put file words@master:/ -r -f examples/data/words``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_datum_provider.core.spec import pfs


@task.datum(input=pfs(repo="words", glob="/*"), name="title_case")
def title_case(datum: Any) -> None:
    path = Path(datum.inputs["words"])
    (Path(datum.out) / path.name).write_text(path.read_text().title())


@task.datum(name="letters")
def letters(datum: Any) -> None:
    path = Path(datum.inputs["title_case"])
    (Path(datum.out) / path.name).write_text(str(sum(c.isalpha() for c in path.read_text())))


with DAG(
    "task_datum",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    tags=["datum", "example"],
    doc_md=__doc__,
):
    letters(title_case())
