"""Incremental processing: only the datums that changed run again.

One datum per file of ``notes`` (glob ``/*``). Run it, change one file
(``echo "buy bread" | datumctl put file notes@master:/a.txt``), run it again: the job reports
1 processed and the rest skipped (``datumctl list job -p loud_notes``), and the unchanged
outputs are carried forward.

``make airflow`` seeds ``notes`` from ``examples/data/notes``; by hand, from the project's
folder: ``datumctl create repo notes`` then
``datumctl put file notes@master:/ -r -f examples/data/notes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_datum_provider import DatumPipeline


def shout(datum: Any) -> None:
    """Upper-case one note."""
    path = Path(datum.inputs["notes"])
    (Path(datum.out) / path.name).write_text(path.read_text(encoding="utf-8").upper())


with DAG(
    "incremental",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    tags=["datum", "example"],
    doc_md=__doc__,
):
    DatumPipeline(
        {
            "pipeline": {"name": "loud_notes"},
            "input": {"pfs": {"repo": "notes", "glob": "/*"}},
            "transform": {"cmd": ["true"]},
        },
        python_callable=shout,
    )
