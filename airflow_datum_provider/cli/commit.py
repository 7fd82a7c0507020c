"""``start / finish / list / inspect / delete / diff commit``."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator

import click

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
from airflow_datum_provider.cli._refs import CommitRef, CommitRefType
from airflow_datum_provider.cli._store import find_open_commit, pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.store import CommitInfo, Store

__all__ = [
    "delete_commit",
    "diff_commit",
    "finish_commit",
    "inspect_commit",
    "list_commit",
    "start_commit",
]


def _ref(target: CommitRef) -> str:
    assert target.ref is not None  # CommitRefType() requires it
    return target.ref


@verb("start").command("commit")
@click.argument("target", metavar="REPO@BRANCH", type=CommitRefType())
@click.option("-m", "--message", "--description", "description", default="", help="Description.")
@pass_store
def start_commit(store: Store, target: CommitRef, description: str) -> None:
    """Start a commit on a branch (created if missing) and print its id.

    Later `put file` / `delete file` calls on the branch write into it until `finish commit`.
    """
    commit = store.start_commit(target.repo, _ref(target), description=description)
    click.echo(commit.id)


@verb("finish").command("commit")
@click.argument("target", metavar="REPO@BRANCH|REPO@ID", type=CommitRefType())
@click.option("-m", "--message", "--description", "description", help="Replace the description.")
@pass_store
def finish_commit(store: Store, target: CommitRef, description: str | None) -> None:
    """Finish an open commit, by id or as the only open commit on a branch."""
    find_open_commit(store, target.repo, _ref(target)).finish(description=description)


def _newest_first(store: Store, repo: str, branch: str | None) -> Iterator[CommitInfo]:
    """Finished and open commits merged newest first (open ones by start time)."""
    pending = [c for c in store.list_open_commits(repo) if branch is None or c.branch == branch]
    pending.sort(key=lambda c: c.started, reverse=True)
    finished = store.list_commits(repo, branch)
    return heapq.merge(pending, finished, key=lambda c: c.finished or c.started, reverse=True)


@verb("list").command("commit")
@click.argument("target", metavar="REPO[@BRANCH]", type=CommitRefType("optional"))
@click.option("-n", "--number", type=click.IntRange(min=1), help="Show at most N commits.")
@output_option
@pass_store
def list_commit(store: Store, target: CommitRef, number: int | None, output: OutputFormat) -> None:
    """List commits, newest first.

    Unfinished commits are included (FINISHED and SIZE show "-"), ordered by start time.
    """
    commits = itertools.islice(_newest_first(store, target.repo, target.ref), number)
    if output != "text":
        print_records(output, (c.to_dict() for c in commits))
        return
    print_table(
        ("REPO", "BRANCH", "COMMIT", "FINISHED", "SIZE", "ORIGIN", "DESCRIPTION"),
        (
            (
                c.repo,
                c.branch,
                c.id,
                human_time(c.finished),
                human_size(c.size_bytes) if c.finished else "-",
                c.origin,
                c.description,
            )
            for c in commits
        ),
    )


@verb("inspect").command("commit")
@click.argument("target", metavar="REPO@BRANCH|REPO@ID", type=CommitRefType())
@output_option
@pass_store
def inspect_commit(store: Store, target: CommitRef, output: OutputFormat) -> None:
    """Show a commit's details (a ref may be branch, id, branch=id, branch^ or branch~N)."""
    c = store.inspect_commit(target.repo, _ref(target))
    if output != "text":
        print_records(output, [c.to_dict()])
        return
    print_fields(
        (
            ("Commit", f"{c.repo}@{c.id}"),
            ("Branch", c.branch),
            ("Parent", dash(c.parent)),
            ("Origin", c.origin),
            ("Description", dash(c.description)),
            ("Provenance", dash(", ".join(c.provenance))),
            ("Started", f"{human_time(c.started)} ({c.started})"),
            ("Finished", f"{human_time(c.finished)} ({c.finished})" if c.finished else "-"),
            ("Size", human_size(c.size_bytes) if c.finished else "-"),
            ("Files", str(c.file_count) if c.finished else "-"),
        )
    )


@verb("delete").command("commit")
@click.argument("target", metavar="REPO@ID|REPO@BRANCH", type=CommitRefType())
@pass_store
def delete_commit(store: Store, target: CommitRef) -> None:
    """Delete an unfinished commit (finished commits are immutable)."""
    store.delete_commit(target.repo, find_open_commit(store, target.repo, _ref(target)).id)


@verb("diff").command("commit")
@click.argument("new", metavar="REPO@NEW", type=CommitRefType())
@click.argument("old", metavar="[REPO@OLD]", type=CommitRefType(), required=False)
@output_option
@pass_store
def diff_commit(store: Store, new: CommitRef, old: CommitRef | None, output: OutputFormat) -> None:
    """Files added, modified and deleted from OLD (default: NEW's parent) to NEW."""
    if old is not None and old.repo != new.repo:
        raise click.BadParameter(
            f"{old} is in repo {old.repo!r}, NEW in {new.repo!r}: both must be in one repo",
            param_hint="REPO@OLD",
        )
    new_info = store.inspect_commit(new.repo, _ref(new))
    old_id = store.inspect_commit(old.repo, _ref(old)).id if old else new_info.parent
    changes = store.diff(new.repo, old_id, new_info.id)
    if output != "text":
        print_records(output, (d.to_dict() for d in changes))
        return
    print_table(
        ("CHANGE", "PATH", "OLD SIZE", "NEW SIZE"),
        ((d.change, d.path, human_size(d.old_size), human_size(d.new_size)) for d in changes),
    )
