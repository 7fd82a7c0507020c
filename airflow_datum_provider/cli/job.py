"""``list / inspect / stop job``, ``logs``, and the datums of a job (``list / inspect datum``).

``list datum PIPELINE@JOB`` is registered by ``cli/datum.py`` (which also lists datums from a
spec) and calls :func:`list_job_datums`; ``inspect datum`` lives here with it.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import click

from airflow_datum_provider.cli._errors import unsupported_option
from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    human_size,
    human_time,
    output_option,
    print_fields,
    print_records,
    print_table,
    state_style,
)
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import examples_epilog, verb
from airflow_datum_provider.cli.pipeline import (
    check_job_id,
    input_shorthand,
    pipeline_name,
)
from airflow_datum_provider.cli.pipeline import complete_pipeline as _complete_pipeline
from airflow_datum_provider.core.datum import Datum
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
    "live_job",
    "runner_dead",
    "shown_state",
    "logs",
    "stop_job_cmd",
]

_DATUM_ID = re.compile(r"\A[0-9a-f]{8,64}\Z")
SHORT_ID = 12  # datum ids as tables show them (a unique prefix of 8+ characters names one)
FILES_WIDTH = 52  # so that list datum fits 100 columns

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

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(c) for c in _complete_job(ctx, param, incomplete)]


def _find(store: Store, ref: JobRef) -> JobInfo:
    records = JobRecords(store)
    if ref.pipeline is not None:
        records.pipeline(ref.pipeline)  # "pipeline not found" before "job not found"
    return records.find_job(ref.job, ref.pipeline)


def trim(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, ending in ``…`` when cut."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _resolve_datum(ids: Iterable[str], prefix: str, job: JobInfo) -> str:
    """The one datum id of ``ids`` starting with ``prefix`` (errors name the prefix typed)."""
    found = [i for i in ids if i.startswith(prefix)]
    if len(set(found)) > 1:
        raise InvalidNameError(
            f"datum {prefix!r} is ambiguous in job {job.id}: give more characters", name=prefix
        )
    if not found:
        raise JobNotFound(f"datum {prefix} not found in job {job.id}", job=job.id)
    return found[0]


def _check_datum_id(datum_id: str) -> str:
    if not _DATUM_ID.match(datum_id):
        raise InvalidNameError(
            f"datum id {datum_id!r} is invalid: expected 64 hex characters (or a unique prefix "
            "of 8 or more, as tables show them)",
            name=datum_id,
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


def live_job(records: JobRecords, job: JobInfo) -> JobInfo:
    """A job with its counters summed from the checkpoints (:func:`core.jobs.views.live_job`)."""
    from airflow_datum_provider.core.jobs.views import live_job as _live

    return _live(records.store, job)


_REASON_WIDTH = 25  # pachctl trims reasons in tables; `inspect job` has the whole text


def runner_dead(store: Store, job: JobInfo) -> bool:
    """A job that is not done but that no live runner works on (killed, crashed machine)."""
    if job.done:
        return False
    from airflow_datum_provider.core.jobs.liveness import runner_alive

    return not runner_alive(store, job)


def shown_state(store: Store, job: JobInfo, *, width: int | None = None) -> str:
    """A job's state for a table: ``state: reason`` (trimmed to ``width``), or ``runner dead``."""
    if runner_dead(store, job):
        return f"{job.state}: runner dead"
    reason = job.reason
    if width is not None and len(reason) > width:
        reason = reason[: width - 1].rstrip() + "…"
    return _state(job.state, reason)


@verb("list").command("job")
@click.argument("job_id", metavar="[JOB]", required=False)
@click.option("-p", "--pipeline", callback=pipeline_name, help="Only the jobs of this pipeline.")
@output_option
@pass_store
def list_job(store: Store, job_id: str | None, pipeline: str | None, output: OutputFormat) -> None:
    """List jobs, newest first (or the one job JOB, in every pipeline it ran for).

    PROGRESS is processed + skipped / total (processed + skipped + recovered / total when
    datums were recovered). Reasons are cut to 25 characters as in pachctl (the whole text:
    `inspect job`). A job whose runner died (killed, machine gone) shows `runner dead`:
    continue it with `run pipeline NAME --resume JOB`, or end it with `stop job JOB`.
    """
    records = JobRecords(store)
    if pipeline is not None:
        records.pipeline(pipeline)
    if job_id is not None:
        found = _find(store, JobRef(pipeline=pipeline, job=check_job_id(job_id)))
        jobs = [live_job(records, found)]
    else:
        jobs = [live_job(records, j) for j in records.jobs(pipeline)]
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
                shown_state(store, j, width=_REASON_WIDTH),
            )
            for j in jobs
        ),
        styles={8: state_style},
    )


@verb("inspect").command("job")
@click.argument("target", metavar="PIPELINE@JOB", type=JobRefType(bare=True))
@output_option
@pass_store
def inspect_job(store: Store, target: JobRef, output: OutputFormat) -> None:
    """Show a job: state, counters, timings, inputs and output commit."""
    records = JobRecords(store)
    job = live_job(records, _find(store, target))
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
            ("State", shown_state(store, job) if runner_dead(store, job) else job.state),
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
    from airflow_datum_provider.core.engine import stop_job

    stop_job(store, target.job, target.pipeline)


@click.command(
    "logs",
    epilog=examples_epilog(
        [
            "datumctl logs -p edges",
            "datumctl logs -j edges@<job> --datum <datum>",
            "datumctl logs -j <job> -f",
            "datumctl logs -p edges --tail 20",
        ]
    ),
)
@click.option(
    "-j",
    "--job",
    "target",
    metavar="[PIPELINE@]JOB",
    type=JobRefType(bare=True),
    help="The job (default with --pipeline: its newest job).",
)
@click.option(
    "-p",
    "--pipeline",
    callback=pipeline_name,
    shell_complete=_complete_pipeline,
    help="The job's pipeline.",
)
@click.option("--datum", "datum_id", metavar="DATUM", help="Only this datum's log.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing datums' logs until the job ends.")
@click.option(
    "--tail", type=click.IntRange(min=0), metavar="N", help="Only the last N lines (then follow)."
)
@unsupported_option(
    "--master", reason="there is no pipeline master process: every log is a datum's"
)
@unsupported_option("--worker", reason="datums run in this process or its pool; use --datum")
@pass_store
def logs(
    store: Store,
    target: JobRef | None,
    pipeline: str | None,
    datum_id: str | None,
    follow: bool,
    tail: int | None,
) -> None:
    """Print the stored stdout / stderr of a job's datums.

    Without --datum, every datum that ran, in processing order. Each attempt starts with a
    `=== datum <id>: attempt n/N ===` line. A datum's log is stored when the datum ends, so -f
    prints each datum's log as it finishes, until the job ends.
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
        if follow:
            job = _wait_for_log(records, job, datum_id)
        ids = records.log_ids(job)
        if len(datum_id) < 64:
            matches = [i for i in ids if i.startswith(datum_id)]
            datum_id = matches[0] if len(matches) == 1 else datum_id
        if datum_id not in set(ids):
            raise JobNotFound(f"no log for datum {datum_id} in job {job.id}", job=job.id)
        _echo_tail(records.read_log(job, datum_id), tail)
        return
    printed: set[str] = set()
    first = _new_logs(records, job, printed)
    _echo_tail("".join(first), tail)
    while follow and not job.done:
        time.sleep(_FOLLOW_POLL_S)
        job = records.job(job.pipeline, job.id)
        if runner_dead(store, job):
            click.echo(f"datumctl: job {job.id}: runner dead; stopped following", err=True)
            break
        for text in _new_logs(records, job, printed):
            click.echo(text, nl=False)


_FOLLOW_POLL_S = 0.5


def _new_logs(records: JobRecords, job: JobInfo, printed: set[str]) -> list[str]:
    """The logs of the job's datums not printed yet, in processing order (marks them).

    One read per checkpoint part of each set. While the job runs, a datum's log is printed
    once it has a result (until then its log may still grow).
    """
    out = []
    for number in records.set_numbers(job):
        logs = records.set_logs(job, number)
        if not logs:
            continue
        ended = set(records.results(job, number)) if not job.done else None
        for datum in records.read_set(job, number):
            if datum.id not in logs or datum.id in printed:
                continue
            if ended is not None and datum.id not in ended:
                continue
            printed.add(datum.id)
            out.append(logs[datum.id])
    return out


def _wait_for_log(records: JobRecords, job: JobInfo, datum_id: str) -> JobInfo:
    while not job.done and datum_id not in set(records.log_ids(job)):
        time.sleep(_FOLLOW_POLL_S)
        job = records.job(job.pipeline, job.id)
    return job


def _echo_tail(text: str, tail: int | None) -> None:
    if tail is None:
        click.echo(text, nl=False)
        return
    lines = text.splitlines(keepends=True)
    click.echo("".join(lines[-tail:] if tail else []), nl=False)


def _complete_job(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    from airflow_datum_provider.cli._refs import _complete_store

    store = _complete_store(ctx)
    if store is None:
        return []
    try:
        return [
            f"{j.pipeline}@{j.id}"
            for j in JobRecords(store).jobs()
            if f"{j.pipeline}@{j.id}".startswith(incomplete) or j.id.startswith(incomplete)
        ]
    except Exception:
        return []


# -- datums of a job -------------------------------------------------------------------------


def datum_records(store: Store, job: JobInfo) -> Iterator[tuple[dict[str, Any], float | None]]:
    """Every datum of ``job`` as its ``list datum`` JSON record, with its total time.

    Processed datums come first, in processing order, then the skipped ones.
    """
    from airflow_datum_provider.core.jobs.views import datum_views

    for view in datum_views(store, job):
        yield view.to_summary_dict(), view.total_time


def _files(record: dict[str, Any]) -> str:
    """A datum's inputs as ``repo:/path, ...`` (the pinned commits: JSON, inspect datum).

    A row-range datum's input ends with its rows: ``sales:/big.csv[1000:2000]``.
    """
    return ", ".join(f"{i['repo']}:{i['path']}{_rows(i)}" for i in record["inputs"])


def _rows(record: dict[str, Any]) -> str:
    """``[start:end]`` for an input record of a row-range datum, else ``""``."""
    rows = record.get("rows")
    return f"[{rows[0]}:{rows[1]}]" if rows else ""


def short_files(datum: Datum) -> str:
    """:func:`_files` of a :class:`Datum`, in the order ``describe`` uses."""
    from airflow_datum_provider.core.plan import describe

    full = describe(datum)
    for i in datum.inputs:
        full = full.replace(f"{i.repo}@{i.commit}:", f"{i.repo}:")
    return full


def list_job_datums(store: Store, pipeline: str | None, job: str, output: OutputFormat) -> None:
    """``list datum PIPELINE@JOB``: ID FILES STATUS TIME of every datum of the job.

    STATUS is success / failed / recovered (from the datum's checkpoint), skipped (unchanged
    since the base job), or ``-`` for a datum that has not finished yet (JSON: ``pending``).
    IDs show their first 12 characters and FILES is cut to fit 100 columns (JSON has both
    whole).
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
                r["id"][:SHORT_ID],
                trim(_files(r), FILES_WIDTH),
                "-" if r["state"] == "pending" else r["state"],
                human_duration(total),
            )
            for r, total in rows
        ),
        styles={2: state_style},
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
    from airflow_datum_provider.core.jobs.views import datum_views

    if len(datum_id) < 64:
        datum_id = _resolve_datum((v.id for v in datum_views(store, job)), datum_id, job)
    view = next((v for v in datum_views(store, job) if v.id == datum_id), None)
    if view is None:
        raise JobNotFound(f"datum {datum_id} not found in job {job.id}", job=job.id)
    state = view.status
    record = view.to_dict()
    if output != "text":
        print_records(output, [record])
        return
    total = view.total_time
    print_fields(
        (
            ("ID", view.id),
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
        (
            (f"  {i['name']}", i["repo"], i["commit"], i["path"] + _rows(i))
            for i in record["inputs"]
        ),
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
