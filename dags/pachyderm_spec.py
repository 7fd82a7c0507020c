"""A Pachyderm pipeline spec file, used unchanged.

``specs/reverse.json`` is a spec as ``pachctl create pipeline -f`` takes it (camelCase fields
included): a ``cmd`` + ``stdin`` shell script that reads ``/pfs/lines/...`` and writes
``/pfs/out``. ``DatumPipeline`` takes the file's path; the command runs on the Airflow worker
(``transform.image`` is ignored by the local runtime).

``make airflow`` seeds ``lines`` from ``examples/data/lines``; by hand, from the project's
folder: ``datumctl create repo lines`` then
``datumctl put file lines@master:/ -r -f examples/data/lines``.
"""

from __future__ import annotations

from pathlib import Path

import pendulum
from airflow.sdk import DAG

from airflow_datum_provider import DatumPipeline

with DAG(
    "pachyderm_spec",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    tags=["datum", "example"],
    doc_md=__doc__,
):
    DatumPipeline(Path(__file__).parent / "specs" / "reverse.json")
