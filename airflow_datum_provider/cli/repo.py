"""``create / list / inspect / delete repo``."""

from __future__ import annotations

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    human_size,
    human_time,
    output_option,
    print_fields,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._refs import complete_repo, repo_name
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.store import Store

__all__ = ["create_repo", "delete_repo", "inspect_repo", "list_repo"]


@verb("create").command("repo")
@click.argument("name", callback=repo_name)
@click.option("-d", "--description", default="", help="A description of the repo.")
@pass_store
def create_repo(store: Store, name: str, description: str) -> None:
    """Create a new repo."""
    store.create_repo(name, description=description)


@verb("list").command("repo")
@output_option
@pass_store
def list_repo(store: Store, output: OutputFormat) -> None:
    """List repos."""
    repos = store.list_repos()
    if output != "text":
        print_records(output, (r.to_dict() for r in repos))
        return
    print_table(
        ("NAME", "CREATED", "SIZE", "DESCRIPTION"),
        ((r.name, human_time(r.created), human_size(r.size_bytes), r.description) for r in repos),
    )


@verb("inspect").command("repo")
@click.argument("name", callback=repo_name, shell_complete=complete_repo)
@output_option
@pass_store
def inspect_repo(store: Store, name: str, output: OutputFormat) -> None:
    """Show a repo's details."""
    info = store.inspect_repo(name)
    if output != "text":
        print_records(output, [info.to_dict()])
        return
    print_fields(
        (
            ("Name", info.name),
            ("Description", dash(info.description)),
            ("Created", f"{human_time(info.created)} ({info.created})"),
            ("Size", human_size(info.size_bytes)),
            ("Branches", dash(", ".join(info.branches))),
        )
    )


@verb("delete").command("repo")
@click.argument("name", callback=repo_name, shell_complete=complete_repo)
@click.option("-f", "--force", is_flag=True, help="Delete it even if pipelines read or write it.")
@pass_store
def delete_repo(store: Store, name: str, force: bool) -> None:
    """Delete a repo with its branches and commits.

    A repo that a pipeline reads, or that is a pipeline's output, is refused (the pipeline's
    next job would fail): delete those pipelines first, or pass --force as in pachctl.
    """
    store.inspect_repo(name)
    if not force:
        from airflow_datum_provider.cli._dag import pipeline_graph

        graph = pipeline_graph(store)
        writer = graph.writer_of(name)
        if writer is not None:
            raise CliError(
                f"repo {name!r} is the output of pipeline {writer!r}: delete the pipeline "
                f"(datumctl delete pipeline {writer}), or delete the repo anyway with --force"
            )
        readers = graph.readers_of(name)
        if readers:
            raise CliError(
                f"repo {name!r} is an input of pipeline{'s' if len(readers) > 1 else ''} "
                f"{', '.join(readers)}: delete {'them' if len(readers) > 1 else 'it'} first, or "
                "delete the repo anyway with --force (then their next jobs fail)"
            )
    store.delete_repo(name)
