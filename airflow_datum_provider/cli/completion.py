"""``datumctl completion bash|zsh``: a shell completion script (click's, with store names)."""

from __future__ import annotations

import click

from airflow_datum_provider.cli._verbs import examples_epilog

__all__ = ["completion"]

_ENV_VAR = "_DATUMCTL_COMPLETE"


@click.command(
    "completion",
    epilog=examples_epilog(
        [
            "source <(datumctl completion bash)",
            "datumctl completion zsh > ~/.zfunc/_datumctl",
        ]
    ),
)
@click.argument("shell", type=click.Choice(["bash", "zsh"]))
def completion(shell: str) -> None:
    """Print a completion script for bash or zsh.

    It completes verbs, nouns and options, and from the store in use (--store / $DATUM_STORE /
    default) repo, branch and file refs (images@master:/...), pipeline names and job ids.
    Load it in the current shell with `source <(datumctl completion bash)`, or add that line
    to ~/.bashrc.
    """
    from click.shell_completion import get_completion_class

    from airflow_datum_provider.cli.main import cli

    cls = get_completion_class(shell)
    assert cls is not None  # click ships bash and zsh
    click.echo(cls(cli, {}, "datumctl", _ENV_VAR).source())
