"""The error a command raises for a user mistake the store cannot see (a local file, say)."""

from __future__ import annotations

import sys
from typing import IO, Any

import click

__all__ = ["CliError"]


class CliError(click.ClickException):
    """A user error: printed as one ``datumctl: error: ...`` line on stderr, exit code 1."""

    exit_code = 1

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"datumctl: error: {self.format_message()}", file=file or sys.stderr)
