"""Pachyderm ``cron`` inputs under Airflow: the DAG's schedule ticks, once per DAG run.

A cron input's ticks are files in repo ``<pipeline>_<name>`` (:mod:`airflow_datum_provider.core.cron`).
Under Airflow the DAG's ``schedule`` decides when to tick: :func:`cron_schedule` turns the
input's ``spec`` into a schedule, and the pipeline's create task calls :func:`tick_for_run`
before it starts the job. The tick is named by the run's data-interval end (else its logical
date, else ``run_after``), so a retried create task finds its tick and does not add another.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_datum_provider.core.cron import Tick
    from airflow_datum_provider.core.spec import PipelineSpec
    from airflow_datum_provider.core.store import Store

__all__ = ["cron_schedule", "run_time", "tick_for_run"]


def cron_schedule(spec: PipelineSpec) -> str | timedelta | None:
    """The DAG schedule of a pipeline's cron input: a cron line, a preset or a timedelta.

    ``@every 90s`` becomes ``timedelta(seconds=90)``; ``None`` when the pipeline has no cron
    input. Several cron inputs must share one spec (one DAG has one schedule).
    """
    from airflow_datum_provider.core.errors import SpecError
    from airflow_datum_provider.core.spec import CronInput, iter_leaves, parse_duration

    specs = sorted({leaf.spec for leaf in iter_leaves(spec.input) if isinstance(leaf, CronInput)})
    if not specs:
        return None
    if len(specs) > 1:
        raise SpecError(
            f"pipeline {spec.name!r}: cron inputs with different specs ({', '.join(specs)}) "
            "cannot share one DAG schedule",
            field="input.cron.spec",
        )
    (line,) = specs
    if line.startswith("@every"):
        return parse_duration(line.removeprefix("@every").strip(), "input.cron.spec")
    return line


def run_time(context: Mapping[str, Any]) -> datetime:
    """When this DAG run ticks: data-interval end, else logical date, else ``run_after``."""
    for key in ("data_interval_end", "logical_date"):
        value = context.get(key)
        if isinstance(value, datetime):
            return value.astimezone(UTC)
    dag_run = context.get("dag_run")
    value = getattr(dag_run, "run_after", None)
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.now(UTC)


def tick_for_run(store: Store, pipeline: str, context: Mapping[str, Any]) -> list[Tick]:
    """Commit this DAG run's tick to every cron input of ``pipeline`` (once per run).

    A tick named by :func:`run_time` that is already in the cron repo's head is returned as is
    (a retried task), not committed again.
    """
    from airflow_datum_provider.core.cron import Tick, cron_inputs, tick, tick_name
    from airflow_datum_provider.core.pipelines import cron_repo

    when = run_time(context)
    name = tick_name(when)
    existing: list[Tick] = []
    for leaf in cron_inputs(store, pipeline):
        repo = cron_repo(pipeline, leaf)
        if not store.repo_exists(repo):
            break
        try:
            head = store.branch_head(repo, "master")
        except LookupError:
            break
        if head is None or name not in {e.path for e in store.walk(repo, head)}:
            break
        existing.append(Tick(repo=repo, path=name, commit=head))
    else:
        if existing:
            return existing
    return tick(store, pipeline, at=when)
