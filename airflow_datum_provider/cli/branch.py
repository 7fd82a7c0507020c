"""``create / list / delete branch``."""

from __future__ import annotations

import click

from airflow_datum_provider.cli._output import (
    OutputFormat,
    dash,
    output_option,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._refs import CommitRef, CommitRefType, complete_repo, repo_name
from airflow_datum_provider.cli._store import pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.store import Store, check_name

__all__ = ["create_branch", "delete_branch", "list_branch"]


def _branch(target: CommitRef) -> str:
    assert target.ref is not None
    return check_name(target.ref, "branch")


@verb("create").command("branch")
@click.argument("target", metavar="REPO@BRANCH", type=CommitRefType())
@click.option("--head", metavar="COMMIT", help="Start the branch at this commit (id or ref).")
@pass_store
def create_branch(store: Store, target: CommitRef, head: str | None) -> None:
    """Create a branch (empty, or at --head); an existing branch is moved to --head."""
    store.create_branch(target.repo, _branch(target), head=head)


@verb("list").command("branch")
@click.argument("repo", callback=repo_name, shell_complete=complete_repo)
@output_option
@pass_store
def list_branch(store: Store, repo: str, output: OutputFormat) -> None:
    """List the branches of a repo."""
    branches = store.list_branches(repo)
    if output != "text":
        print_records(output, (b.to_dict() for b in branches))
        return
    print_table(("BRANCH", "HEAD"), ((b.name, dash(b.head)) for b in branches))


@verb("delete").command("branch")
@click.argument("target", metavar="REPO@BRANCH", type=CommitRefType())
@pass_store
def delete_branch(store: Store, target: CommitRef) -> None:
    """Delete a branch (its commits stay reachable by id)."""
    store.delete_branch(target.repo, _branch(target))
