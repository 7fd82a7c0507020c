"""``datumctl``: the root command, the one place errors become exit codes, and ``main()``.

Exit codes: 0 success; 1 a user error (unknown repo / branch / commit / file, a bad path or
name, a missing local file) or any other failure (no S3 credentials, an unreachable endpoint,
a bug), printed as one ``datumctl: error: ...`` line on stderr; 2 bad usage (click's own
message). ``DATUMCTL_DEBUG=1`` adds the traceback.
"""

from __future__ import annotations

import errno
import os
import sys
import traceback
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


DEBUG_ENV_VAR = "DATUMCTL_DEBUG"

# Exceptions click handles itself (usage errors, Abort, Exit; EOFError becomes Abort).
_CLICK_OWN = (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit)


class DatumGroup(click.Group):
    """The root group: turns every failure into a one-line :class:`CliError` (exit 1).

    :class:`DatumError` and OS errors keep their message; anything else (a botocore
    ``NoCredentialsError``, a bug) is prefixed with its type name. Click's own exceptions,
    ``EOFError`` and ``KeyboardInterrupt`` pass through to click, and a closed stdout pipe stays
    silent. With ``DATUMCTL_DEBUG=1`` the traceback is printed first.
    """

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_OWN:
            raise
        except DatumError as exc:
            raise _cli_error(str(exc), exc) from exc
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                raise  # click silences a closed pipe (``datumctl get file ... | head``)
            raise _cli_error(_os_message(exc), exc) from exc
        except EOFError:
            raise  # click turns it into Abort, like KeyboardInterrupt
        except Exception as exc:
            raise _cli_error(_unexpected_message(exc), exc) from exc


def debug_enabled() -> bool:
    """Whether ``$DATUMCTL_DEBUG`` asks for tracebacks (any value but empty / 0 / false / no)."""
    return os.environ.get(DEBUG_ENV_VAR, "").strip().lower() not in ("", "0", "false", "no")


def _cli_error(message: str, exc: BaseException) -> CliError:
    if debug_enabled():
        traceback.print_exception(exc, file=sys.stderr)
    return CliError(_one_line(message))


def _one_line(message: str) -> str:
    """Multi-line messages (some botocore ones) joined into one line."""
    return " ".join(line.strip() for line in message.splitlines() if line.strip())


def _os_message(exc: OSError) -> str:
    if exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc) or type(exc).__name__


def _unexpected_message(exc: Exception) -> str:
    """``NoCredentialsError: Unable to locate credentials``: the type says where it came from."""
    message = _one_line(str(exc))
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


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
