"""Word count as map/reduce across two pipelines.

``wc_counts`` maps: one datum per text file of the ``texts`` repo (glob ``/*``), each writing
``<file>.counts`` ("word count" lines). ``wc_totals`` reduces: one datum over the whole of
``wc_counts`` (glob ``/``) that sums every count into ``totals.txt``. Adding a text re-runs one
map datum and the reduce; the other map datums are skipped.

``make airflow`` seeds ``texts`` from ``examples/data/texts`` (three short texts). By hand, from
the project's folder: ``datumctl create repo texts`` then
``datumctl put file texts@master:/ -r -f examples/data/texts``; after a run,
``datumctl get file wc_totals@master:/totals.txt`` shows the top words.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pendulum
from airflow.sdk import DAG

from airflow_datum_provider import DatumPipeline


def count_words(datum: Any) -> None:
    """Map: count the words of one text."""
    path = Path(datum.inputs["texts"])
    counts = Counter(path.read_text(encoding="utf-8").lower().split())
    lines = "".join(f"{word} {n}\n" for word, n in sorted(counts.items()))
    (Path(datum.out) / f"{path.name}.counts").write_text(lines, encoding="utf-8")


def sum_counts(datum: Any) -> None:
    """Reduce: sum every file's counts."""
    totals: Counter[str] = Counter()
    for path in sorted(Path(datum.inputs["wc_counts"]).rglob("*.counts")):
        for line in path.read_text(encoding="utf-8").splitlines():
            word, _, n = line.rpartition(" ")
            totals[word] += int(n)
    ranked = sorted(totals.items(), key=lambda item: (-item[1], item[0]))
    text = "".join(f"{word} {n}\n" for word, n in ranked)
    (Path(datum.out) / "totals.txt").write_text(text, encoding="utf-8")


with DAG(
    "word_count",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1),
    catchup=False,
    tags=["datum", "example"],
    doc_md=__doc__,
):
    counts = DatumPipeline(
        {
            "pipeline": {"name": "wc_counts"},
            "input": {"pfs": {"repo": "texts", "glob": "/*"}},
            "transform": {"cmd": ["true"]},
            "parallelism_spec": {"constant": 2},
        },
        python_callable=count_words,
    )
    totals = DatumPipeline(
        {
            "pipeline": {"name": "wc_totals"},
            "input": {"pfs": {"repo": "wc_counts", "glob": "/"}},
            "transform": {"cmd": ["true"]},
        },
        python_callable=sum_counts,
    )
    counts >> totals
