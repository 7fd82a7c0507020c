"""A join of two repos: each reading meets the parameters of its station.

``readings`` holds ``/<station>.csv`` and ``parameters`` holds ``/<station>.json``; both globs
capture the station name and ``join_on: $1`` pairs the files that share it. A station with
readings but no parameters makes no datum (no ``outer_join``).

``make airflow`` seeds both from ``examples/data/readings`` and ``examples/data/parameters``
(``lima`` has readings only); by hand, from the project's folder, for each of the two repos:
``datumctl create repo readings`` then
``datumctl put file readings@master:/ -r -f examples/data/readings``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_datum_provider import DatumPipeline


def calibrate(datum: Any) -> None:
    """Scale one station's readings by its factor."""
    readings = Path(datum.inputs["readings"])
    factor = json.loads(Path(datum.inputs["parameters"]).read_text())["factor"]
    values = [float(v) * factor for v in readings.read_text().split()]
    (Path(datum.out) / readings.name).write_text("".join(f"{v:g}\n" for v in values))


with DAG(
    "join",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    tags=["datum", "example"],
    doc_md=__doc__,
):
    DatumPipeline(
        {
            "pipeline": {"name": "calibrated"},
            "input": {
                "join": [
                    {"pfs": {"repo": "readings", "glob": "/(*).csv", "join_on": "$1"}},
                    {"pfs": {"repo": "parameters", "glob": "/(*).json", "join_on": "$1"}},
                ]
            },
            "transform": {"cmd": ["true"]},
        },
        python_callable=calibrate,
    )
