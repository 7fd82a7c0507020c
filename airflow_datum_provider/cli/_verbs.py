"""The verb groups of ``datumctl <verb> <noun>``, and how a noun module joins them.

To add nouns (``list datum``, ``create pipeline`` ...): write ``cli/<noun>.py`` with one small
function per verb, registered on the verb's group, and add the module to ``NOUN_MODULES`` in
``cli/main.py``::

    from airflow_datum_provider.cli._verbs import verb

    @verb("list").command("pipeline")
    @output_option
    @pass_store
    def list_pipeline(store: Store, output: OutputFormat) -> None:
        ...

A verb that does not exist yet (``verb("wait")``) is created on first use; pass ``help=`` once.
"""

from __future__ import annotations

import click

__all__ = ["all_verbs", "verb"]

_HELP = {
    "create": "Create a repo or branch.",
    "delete": "Delete a repo, branch, commit or file.",
    "diff": "Show the differences between two commits.",
    "finish": "Finish (publish) an open commit.",
    "get": "Download a file.",
    "glob": "Find files matching a glob pattern.",
    "inspect": "Show the details of a repo, commit or file.",
    "list": "List repos, branches, commits or files.",
    "put": "Upload files into a commit.",
    "start": "Start a commit.",
}

_VERBS: dict[str, click.Group] = {}


def verb(name: str, *, help: str | None = None) -> click.Group:
    """The click group of verb ``name``; nouns are its subcommands."""
    group = _VERBS.get(name)
    if group is None:
        text = help or _HELP.get(name, f"{name.capitalize()} a resource.")
        group = click.Group(name=name, help=text, short_help=text)
        _VERBS[name] = group
    elif help is not None and not group.help:
        group.help = help
    return group


def all_verbs() -> list[click.Group]:
    """Every verb group registered so far, by name."""
    return [_VERBS[name] for name in sorted(_VERBS)]
