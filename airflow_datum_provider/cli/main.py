"""``datumctl``: the root command, the one place errors become exit codes, and ``main()``.

Exit codes: 0 success; 1 a user error (unknown repo / branch / commit / file, a bad path or
name, a missing local file), printed as one ``datumctl: error: ...`` line on stderr; 2 bad
usage (click's own message).
"""

from __future__ import annotations

import errno
from typing import Any

import click

from airflow_datum_provider import __version__

# Noun modules register their commands on the verb groups when imported; add new ones here.
from airflow_datum_provider.cli import branch, commit, datum, file, job, pipeline, repo
from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._store import ENV_VAR, CliState, default_store_url
from airflow_datum_provider.cli._verbs import all_verbs
from airflow_datum_provider.core.errors import DatumError

__all__ = ["cli", "main"]

NOUN_MODULES = (repo, branch, commit, file, datum, pipeline, job)


class DatumGroup(click.Group):
    """The root group: turns :class:`DatumError` and OS errors into :class:`CliError`."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DatumError as exc:
            raise CliError(str(exc)) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click silences a closed pipe (``datumctl get file ... | head``)
            raise CliError(_os_message(exc)) from exc


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


@click.group(
    cls=DatumGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=f"Without --store or ${ENV_VAR}, the store is the folder {default_store_url()}",
)
@click.option(
    "--store",
    "store_url",
    envvar=ENV_VAR,
    metavar="URL",
    help=f"Store URL: a folder, file://, memory://, s3://bucket/prefix. [env: {ENV_VAR}]",
)
@click.version_option(__version__, prog_name="datumctl")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None) -> None:
    """Pachyderm-style versioned data repos: datumctl <verb> <noun>."""
    ctx.obj = CliState(store_url=store_url)


for _group in all_verbs():
    cli.add_command(_group)
cli.add_command(job.logs)  # pachctl's `logs` is a verb without a noun


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="datumctl")
    return 0
