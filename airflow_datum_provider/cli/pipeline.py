"""``create / update / list / inspect / delete / run pipeline``."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    human_time,
    output_option,
    print_fields,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._refs import is_commit_id
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.engine import (
    create_pipeline,
    delete_pipeline,
    job_failed,
    local_runner_warnings,
    run_pipeline,
)
from airflow_datum_provider.core.errors import InvalidNameError
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import (
    CronInput,
    CrossInput,
    GroupInput,
    Input,
    JoinInput,
    PFSInput,
    PipelineSpec,
    UnsupportedFieldWarning,
    format_duration,
    parse_spec,
)
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store.paths import check_name

__all__ = [
    "check_job_id",
    "create_pipeline_cmd",
    "delete_pipeline_cmd",
    "input_shorthand",
    "inspect_pipeline",
    "list_pipeline",
    "pipeline_name",
    "run_pipeline_cmd",
    "spec_warnings",
    "update_pipeline",
    "warn",
]


def pipeline_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for a ``PIPELINE`` argument or option: the name rule (exit 1)."""
    return None if value is None else check_name(value, "pipeline")


def input_shorthand(node: Input) -> str:
    """An input as ``pachctl list pipeline`` prints it: ``data:/*``, ``(a:/* ⨯ b:/*)``."""
    if isinstance(node, PFSInput):
        return f"{node.repo}:{node.glob}"
    if isinstance(node, CronInput):
        return f"{node.name}:{node.spec}"
    parts = [input_shorthand(child) for child in node.inputs]
    if isinstance(node, CrossInput):
        return "(" + " ⨯ ".join(parts) + ")"
    if isinstance(node, JoinInput):
        return "(" + " ⋈ ".join(parts) + ")"
    if isinstance(node, GroupInput):
        return "(Group: " + ", ".join(parts) + ")"
    return "(" + " ∪ ".join(parts) + ")"


def _read_spec(source: str) -> PipelineSpec:
    """Parse ``-f SPEC`` (``-`` reads stdin); ignored Pachyderm fields warn on stderr."""
    if source == "-":
        text = sys.stdin.read()
    else:
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    with spec_warnings():
        spec = parse_spec(text)
    for message in local_runner_warnings(spec):
        warn(message)
    return spec


def warn(message: str) -> None:
    """One ``datumctl: warning: ...`` line on stderr."""
    click.echo(f"datumctl: warning: {message}", err=True)


@contextmanager
def spec_warnings() -> Iterator[None]:
    """Show the :class:`UnsupportedFieldWarning` raised inside as ``datumctl: warning:`` lines.

    Any other warning is passed on to the ``warnings`` machinery as it was.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UnsupportedFieldWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, UnsupportedFieldWarning):
            warn(str(warning.message))
        else:
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )


_SPEC_OPTION = click.option(
    "-f",
    "--file",
    "source",
    required=True,
    metavar="SPEC",
    help="Pipeline spec, JSON or YAML (Pachyderm's format); - reads stdin.",
)


@verb("create").command("pipeline")
@_SPEC_OPTION
@pass_store
def create_pipeline_cmd(store: Store, source: str) -> None:
    """Create a pipeline and its output repo (named after the pipeline).

    The pipeline gets a new random salt, part of every datum hash.
    """
    create_pipeline(store, _read_spec(source))


@verb("update", help="Update a pipeline.").command("pipeline")
@_SPEC_OPTION
@click.option(
    "--reprocess",
    is_flag=True,
    help="New salt: the next job re-runs every datum instead of skipping unchanged ones.",
)
@pass_store
def update_pipeline(store: Store, source: str, reprocess: bool) -> None:
    """Replace a pipeline's spec; its version goes up by one.

    The salt is kept, so the next job still skips datums whose inputs did not change, unless
    --reprocess (or a `salt` in the spec).
    """
    create_pipeline(store, _read_spec(source), update=True, reprocess=reprocess)


@verb("list").command("pipeline")
@output_option
@pass_store
def list_pipeline(store: Store, output: OutputFormat) -> None:
    """List pipelines."""
    pipelines = JobRecords(store).pipelines()
    if output != "text":
        print_records(output, (p.to_dict() for p in pipelines))
        return
    print_table(
        ("NAME", "VERSION", "INPUT", "CREATED", "DESCRIPTION"),
        (
            (
                p.name,
                str(p.version),
                input_shorthand(p.spec.input),
                human_time(p.created),
                p.spec.description,
            )
            for p in pipelines
        ),
    )


def _timeout(value: Any) -> str:
    return "-" if value is None else format_duration(value)


@verb("inspect").command("pipeline")
@click.argument("name", callback=pipeline_name)
@output_option
@pass_store
def inspect_pipeline(store: Store, name: str, output: OutputFormat) -> None:
    """Show a pipeline: version, salt, input and the whole spec."""
    info = JobRecords(store).pipeline(name)
    if output != "text":
        print_records(output, [info.to_dict()])
        return
    spec = info.spec
    print_fields(
        (
            ("Name", info.name),
            ("Description", dash(spec.description)),
            ("Version", str(info.version)),
            ("Salt", info.salt),
            ("Created", f"{human_time(info.created)} ({info.created})"),
            ("Updated", f"{human_time(info.updated)} ({info.updated})"),
            ("Input", input_shorthand(spec.input)),
            ("Output Branch", f"{info.name}@{spec.output_branch}"),
            ("Parallelism", str(spec.parallelism)),
            ("Datum Tries", str(spec.datum_tries)),
            ("Datum Timeout", _timeout(spec.datum_timeout)),
            ("Job Timeout", _timeout(spec.job_timeout)),
            ("Reprocess Spec", spec.reprocess_spec),
        )
    )
    click.echo("Spec:")
    click.echo(json.dumps(spec.to_dict(), indent=2, ensure_ascii=False))


@verb("delete").command("pipeline")
@click.argument("name", callback=pipeline_name)
@click.option("--keep-repo", is_flag=True, help="Keep the output repo and its commits.")
@pass_store
def delete_pipeline_cmd(store: Store, name: str, keep_repo: bool) -> None:
    """Delete a pipeline, its job records and (unless --keep-repo) its output repo."""
    delete_pipeline(store, name, keep_repo=keep_repo)


@verb("run", help="Run a pipeline.").command("pipeline")
@click.argument("name", callback=pipeline_name)
@click.option(
    "--parallelism",
    type=click.IntRange(min=1),
    help="Process datum sets in N worker processes (default: 1, in this process).",
)
@click.option(
    "--resume",
    metavar="JOB",
    help="Continue a job that was killed (its finished datums are not run again).",
)
@click.option("-v", "--verbose", is_flag=True, help="Stream each datum's output to stderr.")
@output_option
@pass_store
def run_pipeline_cmd(
    store: Store,
    name: str,
    parallelism: int | None,
    resume: str | None,
    verbose: bool,
    output: OutputFormat,
) -> None:
    """Run one job now, locally, for the current heads of the pipeline's inputs.

    Prints the job id, its state and its progress (processed + skipped / total). A job that
    does not succeed exits 1 with its reason; it stays inspectable (`inspect job`,
    `list datum`, `logs`). A job whose runner was killed shows as running: continue it with
    --resume JOB (find the id with `list job -p NAME`).
    """
    if resume is not None:
        check_job_id(resume)
    job = run_pipeline(store, name, parallelism=parallelism, resume=resume, verbose=verbose)
    if output != "text":
        print_records(output, [job.to_dict()])
    if job.state != "success":
        raise job_failed(job)
    if output == "text":
        click.echo(f"{job.id} {job.state} {job.progress}")


def check_job_id(job_id: str) -> str:
    """A job id is its output commit's id: 32 hex characters (never a path)."""
    if not is_commit_id(job_id):
        raise InvalidNameError(
            f"job id {job_id!r} is invalid: expected 32 hex characters", name=job_id
        )
    return job_id
