"""The verb groups of ``datumctl <verb> <noun>``, loaded lazily, and how a noun module joins them.

Which module defines ``<verb> <noun>`` is the table :data:`COMMANDS`, so ``datumctl --help``
imports no noun module at all and ``datumctl list repo`` imports only ``cli/repo.py`` (and what
it needs), not the engine. A noun module registers its commands on the verb groups when
imported::

    from airflow_datum_provider.cli._verbs import verb

    @verb("list").command("pipeline")
    @output_option
    @pass_store
    def list_pipeline(store: Store, output: OutputFormat) -> None:
        ...

To add a command, add it to :data:`COMMANDS` too (a test checks the two agree), and its
``Examples:`` to :data:`EXAMPLES`. Plural nouns (``list repos``) are hidden aliases.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

__all__ = [
    "COMMANDS",
    "EXAMPLES",
    "NOUN_PLURALS",
    "TOP_LEVEL",
    "TOP_LEVEL_HELP",
    "LazyVerb",
    "all_verbs",
    "examples_epilog",
    "load_all",
    "verb",
]

# verb -> noun -> the cli module that defines ``datumctl <verb> <noun>``.
COMMANDS: dict[str, dict[str, str]] = {
    "copy": {"file": "file"},
    "create": {"repo": "repo", "branch": "branch", "pipeline": "pipeline"},
    "delete": {
        "repo": "repo",
        "branch": "branch",
        "commit": "commit",
        "file": "file",
        "pipeline": "pipeline",
    },
    "diff": {"commit": "commit", "file": "commit"},
    "finish": {"commit": "commit"},
    "get": {"file": "file"},
    "glob": {"file": "file"},
    "inspect": {
        "repo": "repo",
        "branch": "commit",
        "commit": "commit",
        "file": "file",
        "pipeline": "pipeline",
        "job": "job",
        "datum": "job",
    },
    "next": {"datum": "next"},
    "list": {
        "repo": "repo",
        "branch": "branch",
        "commit": "commit",
        "file": "file",
        "pipeline": "pipeline",
        "job": "job",
        "datum": "datum",
    },
    "put": {"file": "file"},
    "run": {"pipeline": "pipeline", "cron": "pipeline"},
    "start": {"commit": "commit"},
    "stop": {"job": "job"},
    "update": {"pipeline": "pipeline"},
    "wait": {"commit": "wait", "job": "wait"},
}

# Commands without a noun: name -> module (``main`` is cli/main.py itself).
TOP_LEVEL: dict[str, str] = {
    "completion": "completion",
    "config": "main",
    "help": "main",
    "logs": "job",
    "version": "main",
    "watch": "pipeline",
}

# Their one-line help, for ``datumctl --help`` without importing them.
TOP_LEVEL_HELP: dict[str, str] = {
    "completion": "Print a bash or zsh completion script (completes repo, branch, pipeline, job names).",
    "config": "Show the store in use and where its URL came from.",
    "help": "Show the help of datumctl, a verb, or a command.",
    "logs": "Print the stdout / stderr of a job's datums (-f follows a running job).",
    "version": "Print datumctl's version and the store in use.",
    "watch": "Run every pipeline whose inputs moved, on each new commit, until stopped.",
}

NOUN_PLURALS = {
    "repos": "repo",
    "branches": "branch",
    "commits": "commit",
    "files": "file",
    "pipelines": "pipeline",
    "jobs": "job",
    "datums": "datum",
}

_NOUN_PLURAL = {noun: plural for plural, noun in NOUN_PLURALS.items()}

_VERB_TEXT = {
    "copy": "Copy",
    "create": "Create",
    "delete": "Delete",
    "diff": "Show the differences between two commits of",
    "finish": "Finish (publish)",
    "get": "Download",
    "glob": "Find by glob pattern:",
    "inspect": "Show the details of",
    "list": "List",
    "next": "Ask the datum worker (datum batching) for",
    "put": "Upload",
    "run": "Run",
    "start": "Start",
    "stop": "Stop",
    "update": "Update",
    "wait": "Wait for",
}

# "verb noun" -> example command lines, shown under ``Examples:`` in the command's help.
EXAMPLES: dict[str, tuple[str, ...]] = {
    "copy file": ("datumctl copy file images@master:/cat.png images@master:/backup/cat.png",),
    "create repo": ("datumctl create repo images", 'datumctl create repo images -d "Raw images"'),
    "create branch": (
        "datumctl create branch images@dev",
        "datumctl create branch images@dev --head master^",
    ),
    "create pipeline": (
        "datumctl create pipeline -f edges.yaml",
        "cat edges.json | datumctl create pipeline -f -",
        "datumctl create pipeline -f https://example.com/pipelines.yaml",
    ),
    "delete repo": ("datumctl delete repo images", "datumctl delete repo images --force"),
    "delete branch": ("datumctl delete branch images@dev",),
    "delete commit": ("datumctl delete commit images@master", "datumctl delete commit images@<id>"),
    "delete file": (
        "datumctl delete file images@master:/cat.png",
        "datumctl delete file images@master:/old -r",
    ),
    "delete pipeline": ("datumctl delete pipeline edges", "datumctl delete pipeline --all"),
    "diff commit": (
        "datumctl diff commit images@master",
        "datumctl diff commit images@master images@master~3",
    ),
    "diff file": (
        "datumctl diff file images@master:/cat.png",
        "datumctl diff file images@master:/ images@master^:/",
    ),
    "finish commit": (
        "datumctl finish commit images@master",
        'datumctl finish commit images@<id> -m "nightly"',
    ),
    "get file": (
        "datumctl get file images@master:/cat.png -o cat.png",
        "datumctl get file images@master:/photos -r -o ./photos",
    ),
    "glob file": ('datumctl glob file "images@master:/**.png"',),
    "inspect repo": ("datumctl inspect repo images",),
    "inspect branch": ("datumctl inspect branch images@master",),
    "inspect commit": (
        "datumctl inspect commit images@master",
        "datumctl inspect commit images@master^2",
    ),
    "inspect file": ("datumctl inspect file images@master:/cat.png",),
    "inspect pipeline": (
        "datumctl inspect pipeline edges",
        "datumctl inspect pipeline edges -o yaml",
    ),
    "inspect job": ("datumctl inspect job edges@<job>", "datumctl inspect job <job>"),
    "inspect datum": ("datumctl inspect datum edges@<job> <datum>",),
    "list repo": ("datumctl list repo", "datumctl list repos -o json"),
    "list branch": ("datumctl list branch images",),
    "list commit": ("datumctl list commit images@master -n 5", "datumctl list commit"),
    "list file": (
        "datumctl list file images@master:/",
        "datumctl list file images@master^:/photos",
    ),
    "list pipeline": ("datumctl list pipeline", "datumctl list pipeline edges"),
    "list job": ("datumctl list job", "datumctl list job -p edges", "datumctl list job <job>"),
    "list datum": ("datumctl list datum -f edges.yaml", "datumctl list datum <job>"),
    "put file": (
        "datumctl put file images@master:/cat.png -f cat.png",
        "datumctl put file images@master:/photos/ -f a.png -f b.png",
        "datumctl put file images@master -r -f ./photos -p 4",
        "curl -s https://example.com/x.csv | datumctl put file data@master:/x.csv",
        "datumctl put file data@master:/x.csv -f https://example.com/x.csv",
    ),
    "run cron": ("datumctl run cron nightly",),
    "run pipeline": (
        "datumctl run pipeline edges",
        "datumctl run pipeline edges --downstream",
        "datumctl run pipeline edges --resume <job>",
    ),
    "start commit": ("datumctl start commit images@master",),
    "stop job": ("datumctl stop job edges@<job>",),
    "update pipeline": (
        "datumctl update pipeline -f edges.yaml",
        "datumctl update pipeline -f edges.yaml --reprocess",
    ),
    "next datum": (
        "while datumctl next datum; do ./process.sh; done",
        'datumctl next datum --error "bad input"',
    ),
    "wait commit": ("datumctl wait commit images@master",),
    "wait job": ("datumctl wait job edges@<job>", "datumctl wait job <job> --timeout 10m"),
}

_VERBS: dict[str, LazyVerb] = {}

_NO_PROJECTS = "datumctl has no projects: every repo and pipeline lives in the one store"


def _refused(*decls: str, why: str, flag: bool) -> click.Option:
    """A hidden pachctl option with no meaning here; using it is a usage error saying why."""

    def refuse(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value:
            raise click.UsageError(f"{decls[0]} is not supported: {why}", ctx)

    return click.Option(
        list(decls), hidden=True, is_flag=flag, expose_value=False, callback=refuse, default=None
    )


def examples_epilog(lines: tuple[str, ...] | list[str]) -> str:
    """An ``Examples:`` block that click prints as written, without re-wrapping it."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)


def _help_alone() -> None:
    """A verb without a noun (``datumctl list``): its help, exit 0."""
    ctx = click.get_current_context()
    if ctx.invoked_subcommand is None:
        click.echo(ctx.get_help())


def _plural(noun: str) -> str:
    return _NOUN_PLURAL.get(noun, noun + "s")


def _verb_help(name: str) -> str:
    nouns = [_plural(n) if name == "list" else n for n in COMMANDS.get(name, {})]
    text = _VERB_TEXT.get(name, name.capitalize())
    if not nouns:
        return f"{text}."
    joined = nouns[0] if len(nouns) == 1 else ", ".join(nouns[:-1]) + " or " + nouns[-1]
    return f"{text} a {joined}." if name != "list" else f"{text} {joined}."


class LazyVerb(click.Group):
    """A verb group that imports the module of a noun only when that noun is asked for.

    ``datumctl list`` alone prints the verb's help and exits 0; plural nouns resolve to the
    singular one (``list repos`` is ``list repo``).
    """

    def __init__(self, name: str, **kwargs: Any) -> None:
        super().__init__(name=name, invoke_without_command=True, callback=_help_alone, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMANDS.get(self.name or "", {})) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        noun = NOUN_PLURALS.get(cmd_name, cmd_name)
        if noun not in self.commands:
            module = COMMANDS.get(self.name or "", {}).get(noun)
            if module is None:
                return None
            importlib.import_module(f"airflow_datum_provider.cli.{module}")
        command = self.commands.get(noun)
        if command is not None and not any(p.name == "project" for p in command.params):
            lines = EXAMPLES.get(f"{self.name} {noun}")
            if lines and command.epilog is None:
                command.epilog = examples_epilog(lines)
            command.params.append(_refused("--project", why=_NO_PROJECTS, flag=False))
            command.params.append(_refused("--all-projects", "-A", why=_NO_PROJECTS, flag=True))
        return command


def verb(name: str, *, help: str | None = None) -> click.Group:
    """The click group of verb ``name``; nouns are its subcommands."""
    group = _VERBS.get(name)
    if group is None:
        text = help or _verb_help(name)
        nouns = COMMANDS.get(name, {})
        lines = [EXAMPLES[f"{name} {noun}"][0] for noun in nouns if f"{name} {noun}" in EXAMPLES]
        group = LazyVerb(
            name,
            help=text,
            short_help=text,
            epilog=examples_epilog(lines) if lines else None,
        )
        _VERBS[name] = group
    return group


def all_verbs() -> list[click.Group]:
    """Every verb group, by name (none of their noun modules is imported)."""
    for name in COMMANDS:
        verb(name)
    return [_VERBS[name] for name in sorted(_VERBS)]


def load_all() -> None:
    """Import every noun module (for a test, or shell completion of every command)."""
    for nouns in COMMANDS.values():
        for module in set(nouns.values()):
            importlib.import_module(f"airflow_datum_provider.cli.{module}")
    for module in set(TOP_LEVEL.values()):
        importlib.import_module(f"airflow_datum_provider.cli.{module}")
