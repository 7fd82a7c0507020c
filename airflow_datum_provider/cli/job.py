"""``list / inspect / stop job``, ``logs``, and the datums of a job (``list / inspect datum``).

``list datum PIPELINE@JOB`` is registered by ``cli/datum.py`` (which also lists datums from a
spec) and calls :func:`list_job_datums`; ``inspect datum`` lives here with it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import click

from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    human_size,
    human_time,
    output_option,
    print_fields,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.cli.pipeline import check_job_id, input_shorthand, pipeline_name
from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.engine import stop_job
from airflow_datum_provider.core.errors import InvalidNameError, JobNotFound
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.spec import format_duration
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store.paths import check_name

__all__ = [
    "JobRef",
    "JobRefType",
    "datum_records",
    "human_duration",
    "inspect_datum",
    "inspect_job",
    "list_job",
    "list_job_datums",
    "logs",
    "stop_job_cmd",
]

_DATUM_ID = re.compile(r"\A[0-9a-f]{64}\Z")

# -- arguments -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class JobRef:
    """``PIPELINE@JOB``, or a bare ``JOB`` (``pipeline`` is ``None``: search every pipeline)."""

    pipeline: str | None
    job: str

    def __str__(self) -> str:
        return self.job if self.pipeline is None else f"{self.pipeline}@{self.job}"


class JobRefType(click.ParamType):  # type: ignore[type-arg]  # generic in click>=8.4 only
    """A click parameter for ``PIPELINE@JOB`` (and a bare ``JOB`` when ``bare=True``).

    A missing ``@`` is a usage error (exit 2); a bad pipeline name or job id exits 1, as every
    other error about what the user named.
    """

    name = "pipeline@job"

    def __init__(self, *, bare: bool = False) -> None:
        self.bare = bare

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, JobRef):
            return value
        text = str(value)
        pipeline, at, job = text.rpartition("@")
        if not at and not self.bare:
            self.fail(f'"{text}" is not of the form pipeline@job', param, ctx)
        if at and (not pipeline or not job):
            self.fail(f'"{text}" is not of the form pipeline@job', param, ctx)
        return JobRef(
            pipeline=check_name(pipeline, "pipeline") if at else None, job=check_job_id(job)
        )


def _find(store: Store, ref: JobRef) -> JobInfo:
    records = JobRecords(store)
    if ref.pipeline is not None:
        records.pipeline(ref.pipeline)  # "pipeline not found" before "job not found"
    return records.find_job(ref.job, ref.pipeline)


def _check_datum_id(datum_id: str) -> str:
    if not _DATUM_ID.match(datum_id):
        raise InvalidNameError(
            f"datum id {datum_id!r} is invalid: expected 64 hex characters", name=datum_id
        )
    return datum_id


# -- formatting ------------------------------------------------------------------------------


def human_duration(seconds: float | None) -> str:
    """Seconds as pachctl (Docker's ``units.HumanDuration``) prints them: ``3 seconds``.

    ``None`` → ``-``.
    """
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 1:
        return "Less than a second"
    if whole == 1:
        return "1 second"
    if whole < 60:
        return f"{whole} seconds"
    minutes = whole // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{whole // 3600 // 24 // 365} years"


def _elapsed(start: str, end: str) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _seconds(value: float) -> str:
    """A measured time, precise (``inspect``): ``12.3ms``, ``4.567s``."""
    return f"{value * 1000:.1f}ms" if value < 1 else f"{value:.3f}s"


def _state(state: str, reason: str) -> str:
    return f"{state}: {reason}" if reason else state


def _when(stamp: str) -> str:
    return f"{human_time(stamp)} ({stamp})" if stamp else "-"


# -- jobs ------------------------------------------------------------------------------------


def _live(records: JobRecords, job: JobInfo) -> JobInfo:
    """A job with its counters, times and bytes summed from the per-datum checkpoints.

    The engine writes them into the job record when it merges; until then (running, or a
    runner killed mid-job) the checkpoints are the only account of what has finished.
    """
    if job.done or not job.planned:
        return job
    counts = {"success": 0, "failed": 0, "recovered": 0}
    times = [0.0, 0.0, 0.0]
    sizes = [0, 0]
    for _, result in records.all_results(job):
        state = str(result["state"])
        counts[state] = counts.get(state, 0) + 1
        for i, key in enumerate(("download_time", "process_time", "upload_time")):
            times[i] += float(result.get(key, 0.0))
        for i, key in enumerate(("download_bytes", "upload_bytes")):
            sizes[i] += int(result.get(key, 0))
    return replace(
        job,
        processed=counts["success"],
        failed=counts["failed"],
        recovered=counts["recovered"],
        download_time=times[0],
        process_time=times[1],
        upload_time=times[2],
        download_bytes=sizes[0],
        upload_bytes=sizes[1],
    )


@verb("list").command("job")
@click.option("-p", "--pipeline", callback=pipeline_name, help="Only the jobs of this pipeline.")
@output_option
@pass_store
def list_job(store: Store, pipeline: str | None, output: OutputFormat) -> None:
    """List jobs, newest first.

    PROGRESS is processed + skipped / total (processed + skipped + recovered / total when
    datums were recovered). A job whose runner was killed shows as running; continue it with
    `run pipeline NAME --resume JOB`.
    """
    records = JobRecords(store)
    if pipeline is not None:
        records.pipeline(pipeline)
    jobs = [_live(records, j) for j in records.jobs(pipeline)]
    if output != "text":
        print_records(output, (j.to_dict() for j in jobs))
        return
    print_table(
        ("PIPELINE", "ID", "STARTED", "DURATION", "RESTART", "PROGRESS", "DL", "UL", "STATE"),
        (
            (
                j.pipeline,
                j.id,
                human_time(j.started or j.created),
                human_duration(_elapsed(j.started, j.finished)),
                str(j.restarts),
                j.progress,
                human_size(j.download_bytes),
                human_size(j.upload_bytes),
                _state(j.state, j.reason),
            )
            for j in jobs
        ),
    )


@verb("inspect").command("job")
@click.argument("target", metavar="PIPELINE@JOB", type=JobRefType(bare=True))
@output_option
@pass_store
def inspect_job(store: Store, target: JobRef, output: OutputFormat) -> None:
    """Show a job: state, counters, timings, inputs and output commit."""
    records = JobRecords(store)
    job = _live(records, _find(store, target))
    if output != "text":
        print_records(output, [job.to_dict()])
        return
    spec = records.pipeline(job.pipeline).spec
    print_fields(
        (
            ("ID", job.id),
            ("Pipeline", f"{job.pipeline} (version {job.pipeline_version})"),
            ("Created", _when(job.created)),
            ("Started", _when(job.started)),
            ("Duration", human_duration(_elapsed(job.started, job.finished))),
            ("State", job.state),
            ("Reason", dash(job.reason)),
            ("Processed", str(job.processed)),
            ("Failed", str(job.failed)),
            ("Skipped", str(job.skipped)),
            ("Recovered", str(job.recovered)),
            ("Total", str(job.total)),
            ("Progress", job.progress),
            ("Data Downloaded", human_size(job.download_bytes)),
            ("Data Uploaded", human_size(job.upload_bytes)),
            ("Download Time", _seconds(job.download_time)),
            ("Process Time", _seconds(job.process_time)),
            ("Upload Time", _seconds(job.upload_time)),
            ("Datum Timeout", format_duration(spec.datum_timeout) if spec.datum_timeout else "-"),
            ("Job Timeout", format_duration(spec.job_timeout) if spec.job_timeout else "-"),
            ("Restarts", str(job.restarts)),
            ("Parallelism", str(spec.parallelism)),
            ("Datum Sets", str(job.sets)),
            ("Input", input_shorthand(spec.input)),
            ("Input Commits", dash(", ".join(job.inputs))),
            ("Base Job", dash(job.base_job)),
            ("Output Commit", f"{job.output_repo}@{job.output_commit}"),
            ("Failed Datums", dash(", ".join(job.failed_datums))),
        )
    )
    click.echo("Transform:")
    click.echo(json.dumps(spec.transform.to_dict(), indent=2, ensure_ascii=False))


@verb("stop", help="Stop a job.").command("job")
@click.argument("target", metavar="PIPELINE@JOB|JOB", type=JobRefType(bare=True))
@pass_store
def stop_job_cmd(store: Store, target: JobRef) -> None:
    """Stop a job: it ends killed ("stopped by user").

    A live runner stops after the datum in flight. A job whose runner died (no heartbeat for
    60 s, or longer than its datum_timeout allows, or a process of this machine that is gone)
    ends killed at once. Its finished datums stay recorded; the output branch does not move.
    Stopping a job that already ended does nothing.
    """
    stop_job(store, target.job, target.pipeline)


@click.command("logs")
@click.option(
    "-j",
    "--job",
    "target",
    metavar="[PIPELINE@]JOB",
    type=JobRefType(bare=True),
    help="The job (default with --pipeline: its newest job).",
)
@click.option("-p", "--pipeline", callback=pipeline_name, help="The job's pipeline.")
@click.option("--datum", "datum_id", metavar="DATUM", help="Only this datum's log.")
@pass_store
def logs(store: Store, target: JobRef | None, pipeline: str | None, datum_id: str | None) -> None:
    """Print the stored stdout / stderr of a job's datums.

    Without --datum, every datum that ran, in processing order. Each attempt starts with a
    `=== datum <id>: attempt n/N ===` line.
    """
    records = JobRecords(store)
    if target is None:
        if pipeline is None:
            raise click.UsageError("give --job JOB, or --pipeline PIPELINE for its newest job")
        records.pipeline(pipeline)
        jobs = records.jobs(pipeline)
        if not jobs:
            raise JobNotFound(f"pipeline {pipeline!r} has no jobs", job="")
        job = jobs[0]
    else:
        job = _find(store, JobRef(pipeline=target.pipeline or pipeline, job=target.job))
    if datum_id is not None:
        _check_datum_id(datum_id)
        if datum_id not in set(records.log_ids(job)):
            raise JobNotFound(f"no log for datum {datum_id} in job {job.id}", job=job.id)
        click.echo(records.read_log(job, datum_id), nl=False)
        return
    have = set(records.log_ids(job))
    for number in records.set_numbers(job):
        for datum in records.read_set(job, number):
            if datum.id in have:
                click.echo(records.read_log(job, datum.id), nl=False)


# -- datums of a job -------------------------------------------------------------------------


def _inputs(datum: Datum) -> list[dict[str, str]]:
    return [
        {"name": i.name, "repo": i.repo, "branch": i.branch, "commit": i.commit, "path": i.path}
        for i in datum.inputs
    ]


def _datum_record(datum: Datum, state: str, result: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": datum.id,
        "hash": datum.hash,
        "state": state,
        "reason": result.get("reason", "") if result else "",
        "inputs": _inputs(datum),
        "process_time": float(result.get("process_time", 0.0)) if result else 0.0,
        "attempts": int(result.get("attempts", 0)) if result else 0,
    }


def _total_time(result: dict[str, Any] | None) -> float | None:
    if not result:
        return None
    return sum(float(result.get(k, 0.0)) for k in ("download_time", "process_time", "upload_time"))


def _datums(
    records: JobRecords, job: JobInfo
) -> Iterator[tuple[int | None, Datum, dict[str, Any] | None]]:
    """(set number or ``None`` for skipped, datum, checkpointed result or ``None``)."""
    for number in records.set_numbers(job):
        results = records.results(job, number)
        for datum in records.read_set(job, number):
            yield number, datum, results.get(datum.id)
    for datum in records.read_skipped(job):
        yield None, datum, None


def datum_records(store: Store, job: JobInfo) -> Iterator[tuple[dict[str, Any], float | None]]:
    """Every datum of ``job`` as its ``list datum`` JSON record, with its total time.

    Processed datums come first, in processing order, then the skipped ones.
    """
    for number, datum, result in _datums(JobRecords(store), job):
        if number is None:
            state = "skipped"
        elif result is None:
            state = "pending"
        else:
            state = str(result["state"])
        yield _datum_record(datum, state, result), _total_time(result)


def _files(record: dict[str, Any]) -> str:
    return ", ".join(f"{i['repo']}@{i['commit']}:{i['path']}" for i in record["inputs"])


def list_job_datums(store: Store, pipeline: str | None, job: str, output: OutputFormat) -> None:
    """``list datum PIPELINE@JOB``: ID FILES STATUS TIME of every datum of the job.

    STATUS is success / failed / recovered (from the datum's checkpoint), skipped (unchanged
    since the base job), or ``-`` for a datum that has not finished yet (JSON: ``pending``).
    """
    if pipeline is not None:
        check_name(pipeline, "pipeline")
    info = _find(store, JobRef(pipeline=pipeline, job=check_job_id(job)))
    rows = datum_records(store, info)
    if output != "text":
        print_records(output, (record for record, _ in rows))
        return
    print_table(
        ("ID", "FILES", "STATUS", "TIME"),
        (
            (
                r["id"],
                _files(r),
                "-" if r["state"] == "pending" else r["state"],
                human_duration(total),
            )
            for r, total in rows
        ),
    )


@verb("inspect").command("datum")
@click.argument("target", metavar="PIPELINE@JOB", type=JobRefType(bare=True))
@click.argument("datum_id", metavar="DATUM")
@output_option
@pass_store
def inspect_datum(store: Store, target: JobRef, datum_id: str, output: OutputFormat) -> None:
    """Show one datum of a job: state, attempts, timings, inputs, outputs and log tail."""
    _check_datum_id(datum_id)
    job = _find(store, target)
    records = JobRecords(store)
    found = next(((n, d, r) for n, d, r in _datums(records, job) if d.id == datum_id), None)
    if found is None:
        raise JobNotFound(f"datum {datum_id} not found in job {job.id}", job=job.id)
    number, datum, result = found
    state = "skipped" if number is None else "pending" if result is None else result["state"]
    res = result or {}
    record = {
        "id": datum.id,
        "job": job.id,
        "pipeline": job.pipeline,
        "hash": datum.hash,
        "state": state,
        "reason": res.get("reason", ""),
        "attempts": int(res.get("attempts", 0)),
        "started": res.get("started", ""),
        "finished": res.get("finished", ""),
        "download_time": float(res.get("download_time", 0.0)),
        "process_time": float(res.get("process_time", 0.0)),
        "upload_time": float(res.get("upload_time", 0.0)),
        "download_bytes": int(res.get("download_bytes", 0)),
        "upload_bytes": int(res.get("upload_bytes", 0)),
        "inputs": _inputs(datum),
        "outputs": [
            {"path": o["path"], "hash": o["hash"], "size_bytes": o["size_bytes"]}
            for o in res.get("outputs", ())
        ],
        "log_tail": res.get("log_tail", ""),
    }
    if output != "text":
        print_records(output, [record])
        return
    total = _total_time(result)
    print_fields(
        (
            ("ID", datum.id),
            ("Job ID", f"{job.pipeline}@{job.id}"),
            ("State", state if state != "pending" else "- (not finished)"),
            ("Reason", dash(record["reason"])),
            ("Attempts", str(record["attempts"])),
            ("Started", _when(record["started"])),
            ("Finished", _when(record["finished"])),
            ("Data Downloaded", human_size(record["download_bytes"])),
            ("Data Uploaded", human_size(record["upload_bytes"])),
            ("Total Time", "-" if total is None else _seconds(total)),
            ("Download Time", _seconds(record["download_time"])),
            ("Process Time", _seconds(record["process_time"])),
            ("Upload Time", _seconds(record["upload_time"])),
        )
    )
    click.echo("Inputs:")
    print_table(
        ("  NAME", "REPO", "COMMIT", "PATH"),
        ((f"  {i['name']}", i["repo"], i["commit"], i["path"]) for i in record["inputs"]),
    )
    click.echo("Outputs:")
    if record["outputs"]:
        print_table(
            ("  PATH", "SIZE"),
            ((f"  {o['path']}", human_size(o["size_bytes"])) for o in record["outputs"]),
        )
    else:
        click.echo("  -")
    click.echo("Log Tail:")
    tail = str(record["log_tail"])
    for line in tail.splitlines() or ["-"]:
        click.echo(f"  {line}")
