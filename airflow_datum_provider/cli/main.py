"""``datumctl``: the root command, the one place errors become exit codes, and ``main()``.

Exit codes: 0 success; 1 a user error (unknown repo / branch / commit / file, a bad path or
name, a missing local file) or any other failure (no S3 credentials, an unreachable endpoint,
a bug), printed as one ``datumctl: error: ...`` line on stderr; 2 bad usage (click's own
message); 141 (128 + SIGPIPE, what a shell shows for ``pachctl ... | head``) when the reader of
stdout went away, with nothing printed. ``DATUMCTL_DEBUG=1`` adds the traceback.

Start-up is kept short: the noun modules (and the engine, YAML, tqdm they need) are imported
only for the command being run (see :mod:`airflow_datum_provider.cli._verbs`).
"""

from __future__ import annotations

import errno
import importlib
import os
import re
import sys
import textwrap
import traceback
from typing import Any, NoReturn

import click

from airflow_datum_provider import __version__
from airflow_datum_provider.cli._config import ENV_VAR, CliState, resolve_store, typed_refs
from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._verbs import TOP_LEVEL, TOP_LEVEL_HELP, all_verbs, examples_epilog

__all__ = ["PIPE_CLOSED_EXIT", "cli", "main"]

DEBUG_ENV_VAR = "DATUMCTL_DEBUG"
PIPE_CLOSED_EXIT = 141

# Exceptions click handles itself (usage errors, Abort, Exit; EOFError becomes Abort).
_CLICK_OWN = (click.exceptions.ClickException, click.exceptions.Abort, click.exceptions.Exit)

_NOUNS = ("repo", "branch", "commit", "file", "pipeline", "job", "datum")


def _pipe_closed() -> NoReturn:
    """The reader of stdout is gone: exit 141 quietly, the same way every time.

    Later writes (and the interpreter's final flush) go to /dev/null instead of raising again.
    """
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    sys.exit(PIPE_CLOSED_EXIT)


class DatumGroup(click.Group):
    """The root group: turns every failure into a one-line :class:`CliError` (exit 1).

    :class:`DatumError` and OS errors keep their message; anything else (a botocore
    ``NoCredentialsError``, a bug) is prefixed with its type name. Click's own exceptions,
    ``EOFError`` and ``KeyboardInterrupt`` pass through to click, and a closed stdout pipe exits
    141 quietly. With ``DATUMCTL_DEBUG=1`` the traceback is printed first. Commands without a
    noun (``logs``, ``watch``, ``completion``) are imported when asked for; bare ``datumctl``
    prints the help and exits 0.
    """

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        found = super().get_command(ctx, cmd_name)
        if found is None and cmd_name in TOP_LEVEL:
            module = importlib.import_module(f"airflow_datum_provider.cli.{TOP_LEVEL[cmd_name]}")
            found = getattr(module, cmd_name, None)
            if isinstance(found, click.Command):
                self.add_command(found, cmd_name)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(TOP_LEVEL))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Verbs and top-level commands, without importing any noun module."""
        rows = []
        for name in self.list_commands(ctx):
            command = self.commands.get(name)
            if name in TOP_LEVEL_HELP and (
                command is None or name not in ("config", "help", "version")
            ):
                rows.append((name, TOP_LEVEL_HELP[name]))
            elif command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(formatter.width - 6 - len(name))))
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        url, source = resolve_store(ctx.params.get("store_url"), ctx)
        with formatter.section("Nouns"):
            formatter.write_text(", ".join(_NOUNS) + " (plurals work too: list repos, jobs ...)")
        with formatter.section("Store"):
            # Wrapped at spaces only: click would break a long URL at a hyphen (or anywhere),
            # and the path shown must be one a user can copy.
            indent = " " * formatter.current_indent
            text = textwrap.fill(
                f"{url} (from {source}); see: datumctl config",
                formatter.width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
            formatter.write(text + "\n")
        super().format_epilog(ctx, formatter)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except _CLICK_OWN:
            raise
        except OSError as exc:
            if exc.errno == errno.EPIPE:
                _pipe_closed()
            raise _cli_error(_os_message(exc), exc) from exc
        except EOFError:
            raise  # click turns it into Abort, like KeyboardInterrupt
        except Exception as exc:
            from airflow_datum_provider.core.errors import DatumError

            if isinstance(exc, DatumError):
                raise _cli_error(_with_typed_ref(str(exc), ctx), exc) from exc
            raise _cli_error(_unexpected_message(exc), exc) from exc


_RESOLVED_ID = re.compile(r"[0-9a-f]{32}")


def _with_typed_ref(message: str, ctx: click.Context) -> str:
    """An error naming only a resolved commit id also names the ref as the user typed it."""
    typed = typed_refs(ctx)
    if not typed or not _RESOLVED_ID.search(message) or any(t in message for t in typed):
        return message
    return f"{message} (from {', '.join(typed)})"


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
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    epilog=examples_epilog(
        [
            "datumctl create repo images",
            "datumctl put file images@master:/cat.png -f cat.png",
            "datumctl create pipeline -f edges.yaml",
            "datumctl run pipeline edges",
            "datumctl list job",
            "datumctl help put file",
        ]
    ),
)
@click.option(
    "--store",
    "store_url",
    envvar=ENV_VAR,
    metavar="URL",
    help=f"Store URL: a folder, file://, memory://, s3://bucket/prefix. [env: {ENV_VAR}]",
)
@click.version_option(__version__, "--version", prog_name="datumctl")
@click.pass_context
def cli(ctx: click.Context, store_url: str | None) -> None:
    """Pachyderm-style versioned data repos and pipelines: datumctl <verb> <noun>."""
    ctx.obj = CliState(store_url=store_url)
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


for _group in all_verbs():
    cli.add_command(_group)


def _store_record(ctx: click.Context) -> dict[str, str]:
    state = ctx.find_object(CliState) or CliState()
    url, source = resolve_store(state.store_url, ctx.find_root())
    return {"store": url, "store_source": source}


@cli.command("version", epilog=examples_epilog(["datumctl version", "datumctl version -o json"]))
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def version(ctx: click.Context, output: str) -> None:
    """Print datumctl's version and the store it uses (pachctl's `version`)."""
    record = {"datumctl": __version__, **_store_record(ctx)}
    if output == "json":
        import json

        click.echo(json.dumps(record))
        return
    click.echo(f"COMPONENT   VERSION\ndatumctl    {__version__}")
    click.echo(f"store       {record['store']} (from {record['store_source']})")


@cli.command(
    "config",
    epilog=examples_epilog(["datumctl config", "datumctl --store s3://bucket/data config -o json"]),
)
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def config(ctx: click.Context, output: str) -> None:
    """Show the configuration in use: the store, and where its URL came from.

    The store is --store URL, else $DATUM_STORE, else the embedded default folder.
    """
    record = _store_record(ctx)
    if output == "json":
        import json

        click.echo(json.dumps(record))
        return
    click.echo(f"Store:  {record['store']}")
    click.echo(f"Source: {record['store_source']}")


@cli.command(
    "help",
    context_settings={"ignore_unknown_options": True},
    epilog=examples_epilog(["datumctl help", "datumctl help list", "datumctl help put file"]),
)
@click.argument("words", nargs=-1)
@click.pass_context
def help_cmd(ctx: click.Context, words: tuple[str, ...]) -> None:
    """Show the help of datumctl, or of a verb or command: datumctl help put file."""
    root = ctx.find_root()
    command: click.Command = root.command
    names = [root.info_name or "datumctl"]
    parent = root
    for word in words:
        if not isinstance(command, click.Group):
            break
        sub = command.get_command(parent, word)
        if sub is None:
            known = ", ".join(command.list_commands(parent))
            raise click.UsageError(f"no command {' '.join([*names[1:], word])!r}; try: {known}")
        names.append(sub.name or word)
        parent = click.Context(sub, info_name=word, parent=parent)
        command = sub
    click.echo(parent.get_help())


def main(argv: list[str] | None = None) -> int:
    """Console-script entry point."""
    try:
        cli.main(args=argv, prog_name="datumctl")
    except BrokenPipeError:
        _pipe_closed()
    return 0
