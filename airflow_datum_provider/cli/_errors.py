"""The error a command raises for a user mistake the store cannot see (a local file, say)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import IO, Any

import click

__all__ = ["CliError", "unsupported_option"]


class CliError(click.ClickException):
    """A user error: printed as one ``datumctl: error: ...`` line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"datumctl: error: {self.format_message()}", file=file or sys.stderr)


def unsupported_option(
    *decls: str, reason: str, takes_value: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A hidden pachctl option that has no meaning here: using it is a usage error saying why."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value not in (None, False, ()):
            raise click.UsageError(f"{decls[0]} is not supported by datumctl: {reason}", ctx)

    return click.option(
        *decls,
        hidden=True,
        is_flag=not takes_value,
        expose_value=False,
        callback=refuse,
        default=None,
    )
