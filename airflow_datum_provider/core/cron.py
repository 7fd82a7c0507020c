"""Cron inputs: a tick is a commit of one empty file, named by its time, to the cron repo.

As in Pachyderm (``monitor.go`` ``cronTick``): repo ``<pipeline>_<name>``, branch ``master``, the
file named by the tick's RFC 3339 time in UTC (``/2024-05-01T12:00:00Z``); ``overwrite: true``
deletes the earlier ticks in the same commit, so each job sees one datum. ``datumctl run
pipeline`` / ``run cron`` tick every cron input of the pipeline and then run it; under Airflow the
DAG's schedule decides when to tick.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.jobs.records import JobRecords
from airflow_datum_provider.core.pipelines import cron_repo
from airflow_datum_provider.core.spec import CronInput, iter_leaves
from airflow_datum_provider.core.store import Store

__all__ = ["Tick", "cron_inputs", "tick", "tick_name"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    """One tick written: the cron repo, the file and the commit that holds it."""

    repo: str
    path: str
    commit: str


def tick_name(at: datetime, *, precise: bool = False) -> str:
    """The tick's file name: RFC 3339 in UTC, to the second (``precise``: microseconds)."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    text = at.strftime("%Y-%m-%dT%H:%M:%S.%f" if precise else "%Y-%m-%dT%H:%M:%S")
    return f"/{text}Z"


def cron_inputs(store: Store, pipeline: str) -> list[CronInput]:
    """The cron inputs of a pipeline's current spec."""
    spec = JobRecords(store).pipeline(pipeline).spec
    return [leaf for leaf in iter_leaves(spec.input) if isinstance(leaf, CronInput)]


def tick(store: Store, pipeline: str, *, at: datetime | None = None) -> list[Tick]:
    """Commit one tick to every cron input of ``pipeline``; raises if it has none.

    Two ticks within one second get distinct names (the second one to the microsecond), so a
    tick always adds a datum.
    """
    leaves = cron_inputs(store, pipeline)
    if not leaves:
        raise PipelineError(f"pipeline {pipeline!r} has no cron input", pipeline=pipeline)
    when = at or datetime.now(UTC)
    ticks = []
    for leaf in leaves:
        repo = cron_repo(pipeline, leaf)
        store.create_repo(repo, description=f"Cron ticks of pipeline {pipeline}.", exist_ok=True)
        store.ensure_branch(repo, "master")
        head = store.branch_head(repo, "master")
        existing = {e.path for e in store.walk(repo, head)} if head else set()
        name = tick_name(when)
        if name in existing:
            name = tick_name(when, precise=True)
        with store.commit(repo, "master") as commit:
            if leaf.overwrite:
                for path in existing:
                    commit.delete(path)
            commit.put_bytes(name, b"")
        ticks.append(Tick(repo=repo, path=name, commit=commit.id))
    return ticks
