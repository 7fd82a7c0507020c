"""``list datum``: the datums of a pipeline spec or bare input (``-f SPEC``), or of a job.

Like ``pachctl list datum -f spec.json``: the spec's inputs are pinned to their branch heads and
planned exactly as a job would plan them (same ids, same order). Datums listed from a spec have
no state, so STATUS is ``-``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import Any

import click

from airflow_datum_provider.cli._output import (
    OutputFormat,
    output_option,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.cli.pipeline import spec_warnings
from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import SpecError
from airflow_datum_provider.core.plan import list_datums, pin_inputs
from airflow_datum_provider.core.spec import (
    Input,
    PipelineSpec,
    in_spec_file,
    parse_spec_or_input,
)
from airflow_datum_provider.core.store import Store

__all__ = ["datum_record", "list_datum", "spec_datums"]


@verb("list").command("datum")
@click.argument("job", metavar="[[PIPELINE@]JOB]", required=False)
@click.option(
    "-f",
    "--file",
    "spec_file",
    metavar="SPEC",
    help="A pipeline spec or a bare input, JSON or YAML (- for stdin).",
)
@output_option
@pass_store
def list_datum(store: Store, job: str | None, spec_file: str | None, output: OutputFormat) -> None:
    """List the datums of a pipeline spec (-f SPEC) or of a job (PIPELINE@JOB, or JOB).

    With -f, every input is pinned to its branch head and planned as a job would: the same
    datum ids, hashes (with the spec's salt) and order.
    """
    if job is None and spec_file is None:
        raise click.UsageError("give -f SPEC or [PIPELINE@]JOB")
    if job is not None and spec_file is not None:
        raise click.UsageError("give -f SPEC or [PIPELINE@]JOB, not both")
    if spec_file is not None:
        try:
            with spec_warnings():  # `datumctl: warning: ...` lines, as create pipeline prints them
                datums = spec_datums(store, _read(spec_file))
        except SpecError as exc:
            raise in_spec_file(exc, "<stdin>" if spec_file == "-" else spec_file) from None
        _print(datums, output, status="-")
        return
    assert job is not None
    pipeline, at, job_id = job.rpartition("@")
    if at and (not pipeline or not job_id):
        raise click.UsageError(f"expected [PIPELINE@]JOB, got {job!r}")
    _list_job_datums(store, pipeline or None, job_id, output)


def _list_job_datums(store: Store, pipeline: str | None, job: str, output: OutputFormat) -> None:
    """The datums of one job with their states (success / failed / recovered / skipped)."""
    from airflow_datum_provider.cli.job import list_job_datums

    list_job_datums(store, pipeline, job, output)


def _read(spec_file: str) -> str:
    if spec_file == "-":
        return sys.stdin.read()
    try:
        with open(spec_file, encoding="utf-8") as fh:
            return fh.read()
    except UnicodeDecodeError:
        raise SpecError(f"{spec_file}: not UTF-8 text", path=spec_file) from None


def spec_datums(store: Store, text: str) -> Iterator[Datum]:
    """Plan a spec's (or bare input's) datums with its inputs pinned to their branch heads."""
    parsed = parse_spec_or_input(text)
    spec: Input
    if isinstance(parsed, PipelineSpec):
        spec, salt, pipeline = parsed.input, parsed.salt, parsed.name
    else:
        spec, salt, pipeline = parsed, "", ""
    pins = pin_inputs(store, spec, pipeline)
    return list_datums(store, spec, pins, salt=salt, pipeline=pipeline)


def datum_record(datum: Datum) -> dict[str, Any]:
    """The ``--output json`` shape of one datum (inputs in datum order)."""
    return {
        "id": datum.id,
        "hash": datum.hash,
        "inputs": [
            {"name": i.name, "repo": i.repo, "branch": i.branch, "commit": i.commit, "path": i.path}
            | ({} if i.rows is None else {"rows": list(i.rows)})  # a row-range datum
            for i in datum.inputs
        ],
    }


def _print(datums: Iterable[Datum], output: OutputFormat, *, status: str) -> None:
    if output != "text":
        print_records(output, (datum_record(d) for d in datums))
    else:
        from airflow_datum_provider.cli.job import FILES_WIDTH, SHORT_ID, short_files, trim

        print_table(
            ("ID", "FILES", "STATUS"),
            ((d.id[:SHORT_ID], trim(short_files(d), FILES_WIDTH), status) for d in datums),
        )
