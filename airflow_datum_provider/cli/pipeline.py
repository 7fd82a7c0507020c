"""``create / update / list / inspect / delete / run pipeline``."""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, assert_never

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    human_time,
    output_option,
    print_fields,
    print_records,
    print_table,
    state_style,
)
from airflow_datum_provider.cli._refs import is_commit_id
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import examples_epilog, verb
from airflow_datum_provider.core.errors import InvalidNameError, SpecError
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import (
    CronInput,
    CrossInput,
    GroupInput,
    Input,
    JoinInput,
    PFSInput,
    PipelineSpec,
    UnionInput,
    UnsupportedFieldWarning,
    format_duration,
    in_spec_file,
    iter_pfs_inputs,
    parse_specs,
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
    "run_cron_cmd",
    "run_pipeline_cmd",
    "spec_warnings",
    "update_pipeline",
    "warn",
    "watch",
]


def pipeline_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Click callback for a ``PIPELINE`` argument or option: the name rule (exit 1)."""
    return None if value is None else check_name(value, "pipeline")


def complete_pipeline(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[str]:
    """Shell completion of a pipeline name."""
    from airflow_datum_provider.cli._refs import _complete_store

    store = _complete_store(ctx)
    if store is None:
        return []
    try:
        return [p.name for p in JobRecords(store).pipelines() if p.name.startswith(incomplete)]
    except Exception:
        return []


def input_shorthand(node: Input) -> str:
    """An input as ``pachctl list pipeline`` prints it: ``data:/*``, ``(a:/* ⨯ b:/*)``."""
    match node:
        case PFSInput():
            return f"{node.repo}:{node.glob}"
        case CronInput():
            return f"{node.name}:{node.spec}"
        case CrossInput():
            return "(" + " ⨯ ".join(input_shorthand(c) for c in node.inputs) + ")"
        case JoinInput():
            return "(" + " ⋈ ".join(input_shorthand(c) for c in node.inputs) + ")"
        case GroupInput():
            return "(Group: " + ", ".join(input_shorthand(c) for c in node.inputs) + ")"
        case UnionInput():
            return "(" + " ∪ ".join(input_shorthand(c) for c in node.inputs) + ")"
        case _:
            assert_never(node)


_MAX_SPEC_BYTES = 16 << 20


def _read_text(source: str) -> str:
    """The text of ``-f SOURCE``: ``-`` is stdin, ``http(s)://`` is fetched, else a file."""
    if source == "-":
        return sys.stdin.read()
    if source.startswith(("http://", "https://")):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(source, timeout=30) as response:
                data: bytes = response.read(_MAX_SPEC_BYTES + 1)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CliError(f"-f {source:.200}: cannot fetch the spec ({reason})") from None
        if len(data) > _MAX_SPEC_BYTES:
            raise CliError(f"-f {source:.200}: the spec is larger than 16 MiB")
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise CliError(f"-f {source:.200}: the spec is not UTF-8 text") from None
    try:
        with open(source, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise SpecError(f"{source}: not UTF-8 text", path=source) from None


def _read_specs(source: str) -> tuple[PipelineSpec, ...]:
    """Parse ``-f SPEC``: one or several pipelines; ignored Pachyderm fields warn on stderr."""
    from airflow_datum_provider.core.engine import local_runner_warnings

    text = _read_text(source)
    try:
        with spec_warnings():
            specs = parse_specs(text)
    except SpecError as exc:
        raise in_spec_file(exc, "<stdin>" if source == "-" else source) from None
    for spec in specs:
        for message in local_runner_warnings(spec):
            warn(message if len(specs) == 1 else f"pipeline {spec.name}: {message}")
    return specs


def _check_creatable(store: Store, specs: tuple[PipelineSpec, ...], *, update: bool) -> None:
    """Refuse the whole file before anything is created (or updated)."""
    records = JobRecords(store)
    made: set[str] = set()
    for spec in specs:
        exists = records.pipeline_exists(spec.name)
        if exists and not update:
            raise CliError(f"pipeline {spec.name!r} already exists; use update pipeline")
        if update and not exists:
            raise CliError(f"pipeline {spec.name!r} not found")
        for leaf in iter_pfs_inputs(spec.input):
            if leaf.repo not in made and not store.repo_exists(leaf.repo):
                raise CliError(f"pipeline {spec.name}: input: repo {leaf.repo!r} not found")
        made.add(spec.name)


def _apply(store: Store, source: str, *, update: bool, reprocess: bool = False) -> None:
    """Create or update every pipeline of ``-f SOURCE`` in file order, after checking them all."""
    from airflow_datum_provider.core.engine import create_pipeline

    specs = _read_specs(source)
    if len(specs) > 1:
        _check_creatable(store, specs, update=update)
    for spec in specs:
        info = create_pipeline(store, spec, update=update, reprocess=reprocess)
        if len(specs) > 1:
            click.echo(f"{'updated' if update else 'created'} pipeline {info.name}")


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
    help="Pipeline spec(s), JSON or YAML (Pachyderm's format; several as a YAML --- stream, a "
    "JSON list or concatenated JSON objects, applied in order); - reads stdin, an http(s) URL is "
    "fetched.",
)


@verb("create").command("pipeline")
@_SPEC_OPTION
@pass_store
def create_pipeline_cmd(store: Store, source: str) -> None:
    """Create a pipeline and its output repo (named after the pipeline).

    The pipeline gets a new random salt, part of every datum hash.
    """
    _apply(store, source, update=False)


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
    _apply(store, source, update=True, reprocess=reprocess)


@verb("list").command("pipeline")
@click.argument("name", required=False, callback=pipeline_name, shell_complete=complete_pipeline)
@output_option
@pass_store
def list_pipeline(store: Store, name: str | None, output: OutputFormat) -> None:
    """List pipelines (or one): version, input, and the state of the last job.

    STATE / LAST JOB is pachctl's column: the pipeline's state (there is no pipeline process
    here, so it is always idle) and the state of its newest job (`-` before the first run).
    """
    records = JobRecords(store)
    pipelines = [records.pipeline(name)] if name is not None else records.pipelines()
    if output != "text":
        print_records(output, (p.to_dict() for p in pipelines))
        return
    print_table(
        ("NAME", "VERSION", "INPUT", "CREATED", "STATE / LAST JOB", "DESCRIPTION"),
        (
            (
                p.name,
                str(p.version),
                input_shorthand(p.spec.input),
                human_time(p.created),
                f"idle / {last_job_state(store, records, p.name)}",
                p.spec.description,
            )
            for p in pipelines
        ),
        styles={4: state_style},
    )


def last_job_state(store: Store, records: JobRecords, name: str) -> str:
    """The state of a pipeline's newest job as shown in tables (``-`` without jobs)."""
    from airflow_datum_provider.cli.job import shown_state

    jobs = records.jobs(name)
    return shown_state(store, jobs[0]) if jobs else "-"


def _timeout(value: Any) -> str:
    return "-" if value is None else format_duration(value)


@verb("inspect").command("pipeline")
@click.argument("name", callback=pipeline_name, shell_complete=complete_pipeline)
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
@click.argument("name", required=False, callback=pipeline_name, shell_complete=complete_pipeline)
@click.option("--keep-repo", is_flag=True, help="Keep the output repo and its commits.")
@click.option("--all", "all_", is_flag=True, help="Delete every pipeline (downstream first).")
@click.option(
    "-f", "--force", is_flag=True, help="Delete it even if other pipelines read its output."
)
@pass_store
def delete_pipeline_cmd(
    store: Store, name: str | None, keep_repo: bool, all_: bool, force: bool
) -> None:
    """Delete a pipeline, its job records and (unless --keep-repo) its output repo.

    A pipeline whose output repo other pipelines read is refused (their next job would fail
    with "repo not found"): delete those first, keep the repo with --keep-repo, or pass --force
    as in pachctl. --all deletes every pipeline, downstream ones first.
    """
    from airflow_datum_provider.cli._dag import pipeline_graph
    from airflow_datum_provider.core.engine import delete_pipeline

    if all_ == (name is not None):
        raise click.UsageError("give a pipeline NAME or --all")
    graph = pipeline_graph(store)
    if all_:
        for each in reversed(graph.order()):
            delete_pipeline(store, each, keep_repo=keep_repo)
        return
    assert name is not None
    JobRecords(store).pipeline(name)
    if not keep_repo and not force:
        repo, branch = graph.outputs[name]
        readers = [r for r in graph.readers_of(repo) if r != name]
        if readers:
            raise CliError(
                f"pipeline {name!r}: its output repo {repo!r} is an input of "
                f"pipeline{'s' if len(readers) > 1 else ''} {', '.join(readers)}; delete "
                f"{'them' if len(readers) > 1 else 'it'} first, keep the repo with --keep-repo, "
                "or delete anyway with --force"
            )
    delete_pipeline(store, name, keep_repo=keep_repo)


@verb("run", help="Run a pipeline.").command("pipeline")
@click.argument("name", callback=pipeline_name, shell_complete=complete_pipeline)
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
@click.option(
    "--downstream",
    is_flag=True,
    help="Then run every pipeline downstream of it whose inputs moved, in provenance order.",
)
@click.option(
    "--batch-config",
    "batch_config",
    metavar="CONFIG",
    callback=lambda ctx, param, value: _batch_config(value),
    help="Run each set's datums through the batch executor: a preset (default, parallel, "
    "sequential, fail-fast, large-data), a JSON/YAML file, or inline JSON "
    '(\'{"max_workers": 2, "fail_fast": true}\').',
)
@click.option("-v", "--verbose", is_flag=True, help="Stream each datum's output to stderr.")
@output_option
@pass_store
def run_pipeline_cmd(
    store: Store,
    name: str,
    parallelism: int | None,
    resume: str | None,
    downstream: bool,
    batch_config: Any,
    verbose: bool,
    output: OutputFormat,
) -> None:
    """Run one job now, locally, for the current heads of the pipeline's inputs.

    The job id is printed first (on stderr: `datumctl: job <id> started ...`); on a terminal a
    progress bar follows the datums (processed / skipped / failed, datums/s, ETA). The last
    line on stdout is `<id> <state> <processed + skipped / total>`. A job that does not succeed
    exits 1 with its reason, the failed datum's exit status and last stderr lines, and the
    `datumctl logs` command that shows the rest; it stays inspectable (`inspect job`,
    `list datum`, `logs`). A job whose runner was killed: continue it with --resume JOB.

    With --downstream, the pipelines reading this one's output (transitively) run after it, in
    provenance order, each only if one of its inputs moved since its last job (pachctl starts
    them on every commit; locally this, or `datumctl watch`, does).

    With --batch-config, each set's datums run through the batch executor: `max_workers`
    datums at once (threads, each in its own scratch folder), `fail_fast` stops the set at the
    first failed datum, `chunk_timeout_seconds` fails a datum that runs longer, and
    `timeout_seconds` ends the set (the job is killed, as at job_timeout). See
    docs/batch.md.
    """
    from airflow_datum_provider.cli._run import run_and_report, runs_needed

    if resume is not None:
        check_job_id(resume)
        if downstream:
            raise click.UsageError(
                "--resume continues one job; it cannot be used with --downstream"
            )
    JobRecords(store).pipeline(name)
    if resume is None:
        from airflow_datum_provider.core.cron import cron_inputs, tick

        if cron_inputs(store, name):
            tick(store, name)  # a cron pipeline's run is a tick, as `pachctl run cron`
    names = [name]
    if downstream:
        from airflow_datum_provider.cli._dag import pipeline_graph

        names += [n for n in pipeline_graph(store).downstream(name) if n != name]
    for index, each in enumerate(names):
        if index and not runs_needed(store, each):
            click.echo(f"datumctl: {each}: inputs unchanged since its last job; not run", err=True)
            continue
        if batch_config is not None:
            spec = JobRecords(store).pipeline(each).spec
            if spec.transform.datum_batching:
                warn(
                    f"pipeline {each} uses datum_batching: one user process serves each set "
                    "in order, so --batch-config does not apply to it"
                )
        run_and_report(
            store,
            each,
            parallelism=parallelism,
            resume=resume,
            verbose=verbose,
            output=output,
            batch_config=batch_config,
        )


@verb("run").command("cron")
@click.argument("name", callback=pipeline_name, shell_complete=complete_pipeline)
@click.option("-v", "--verbose", is_flag=True, help="Stream each datum's output to stderr.")
@output_option
@pass_store
def run_cron_cmd(store: Store, name: str, verbose: bool, output: OutputFormat) -> None:
    """Tick a cron pipeline now: commit a tick to each cron input's repo, then run a job.

    The tick is an empty file named by the time (RFC 3339, UTC) in repo `<pipeline>_<input>`;
    with `overwrite: true` it replaces the earlier ticks.
    """
    from airflow_datum_provider.cli._run import run_and_report
    from airflow_datum_provider.core.cron import tick

    tick(store, name)
    run_and_report(store, name, parallelism=None, resume=None, verbose=verbose, output=output)


@click.command(
    "watch",
    epilog=examples_epilog(
        ["datumctl watch", "datumctl watch -p wordcount --interval 5", "datumctl watch &"]
    ),
)
@click.option(
    "-p",
    "--pipeline",
    "only",
    multiple=True,
    callback=lambda ctx, param, value: tuple(check_name(v, "pipeline") for v in value),
    help="Watch only these pipelines (and what they feed); default: every pipeline.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between looks at the branch heads.",
)
@click.option("--parallelism", type=click.IntRange(min=1), help="As for run pipeline.")
@click.option(
    "--batch-config",
    "batch_config",
    metavar="CONFIG",
    callback=lambda ctx, param, value: _batch_config(value),
    help="As for run pipeline: every job's sets run through the batch executor.",
)
@pass_store
def watch(
    store: Store,
    only: tuple[str, ...],
    interval: float,
    parallelism: int | None,
    batch_config: Any,
) -> None:
    """Run every pipeline whose inputs moved, in provenance order, until stopped (Ctrl-C).

    What Pachyderm (or, in production, Airflow) does on every commit, for a laptop or a test:
    each --interval seconds the heads of every pipeline input are compared with the inputs of
    the pipeline's last job, and the pipelines whose inputs moved run, upstream first. A
    failed job is reported and watching goes on. SIGINT / SIGTERM stop it after the job in
    flight.
    """
    from airflow_datum_provider.cli._run import watch_loop

    watch_loop(
        store, only=only, interval=interval, parallelism=parallelism, batch_config=batch_config
    )


def _batch_config(value: str | None) -> Any:
    """``--batch-config``: a checked BatchConfig, or None; a bad value is one line, exit 1."""
    if value is None:
        return None
    from airflow_datum_provider.batch.config import load_batch_config
    from airflow_datum_provider.batch.datums import datum_executor

    config = load_batch_config(value)
    datum_executor(config)
    return config


def check_job_id(job_id: str) -> str:
    """A job id is its output commit's id: 32 hex characters (never a path)."""
    if not is_commit_id(job_id):
        raise InvalidNameError(
            f"job id {job_id!r} is invalid: expected 32 hex characters", name=job_id
        )
    return job_id
