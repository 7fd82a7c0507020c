"""``datumctl next datum [--error MSG]``: the shell side of datum batching."""

from __future__ import annotations

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._verbs import verb

__all__ = ["next_datum_command"]


@verb("next", help="Ask the datum worker for the next datum (datum batching).").command("datum")
@click.option("--error", "error", default=None, help="the previous datum failed with MSG")
def next_datum_command(error: str | None) -> None:
    """Report the previous datum and wait until the next one is laid out under $PFS_ROOT.

    For user code of a pipeline with ``transform.datum_batching: true``:
    ``while datumctl next datum; do ...; done``. The first call's result is ignored; after the
    set's last datum the call never returns (the worker stops the user code).
    """
    from airflow_datum_provider.core.worker.batching_client import NextDatumError, next_datum

    try:
        next_datum(error)
    except NextDatumError as exc:
        raise CliError(str(exc)) from None
