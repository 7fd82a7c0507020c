"""``start / finish / list / inspect / delete / diff commit``."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from typing import Any

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
from airflow_datum_provider.cli._refs import CommitRef, CommitRefType, FileRef, FileRefType
from airflow_datum_provider.cli._store import find_open_commit, pass_store, refuse_output_branch
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.store import CommitInfo, Entry, Store, check_name, clean_path

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
    refuse_output_branch(store, target.repo, check_name(_ref(target), "branch"))
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
@click.argument("target", metavar="[REPO[@BRANCH]]", type=CommitRefType("optional"), required=False)
@click.option("-n", "--number", type=click.IntRange(min=1), help="Show at most N commits.")
@output_option
@pass_store
def list_commit(
    store: Store, target: CommitRef | None, number: int | None, output: OutputFormat
) -> None:
    """List commits, newest first: of a branch, a repo, or (no argument) every repo.

    Unfinished commits are included (FINISHED and SIZE show "-"), ordered by start time.
    """
    if target is None:
        every = [_newest_first(store, r.name, None) for r in store.list_repos()]
        merged: Iterator[CommitInfo] = heapq.merge(
            *every, key=lambda c: c.finished or c.started, reverse=True
        )
    else:
        merged = _newest_first(store, target.repo, target.ref)
    commits = itertools.islice(merged, number)
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
    found = find_open_commit(store, target.repo, _ref(target), hint=False)
    store.delete_commit(target.repo, found.id)


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


@verb("diff").command("file")
@click.argument("new", metavar="REPO@NEW:/PATH", type=FileRefType())
@click.argument("old", metavar="[REPO@OLD:/PATH]", type=FileRefType(), required=False)
@output_option
@pass_store
def diff_file(store: Store, new: FileRef, old: FileRef | None, output: OutputFormat) -> None:
    """Files added, modified and deleted below PATH, from OLD (default: NEW's parent) to NEW.

    pachctl's `diff file`. A file path compares that file; a directory, everything below it.
    OLD may be in another repo or at another path (paths are compared relative to each PATH).
    """
    assert new.path is not None
    new_info = store.inspect_commit(new.repo, new.ref)
    if old is None:
        if new_info.parent is None:
            old_repo, old_id, old_path = new.repo, None, new.path
        else:
            old_repo, old_id, old_path = new.repo, new_info.parent, new.path
    else:
        assert old.path is not None
        old_repo, old_id, old_path = old.repo, store.inspect_commit(old.repo, old.ref).id, old.path
    new_entries = _entries_below(store, new.repo, new_info.id, new.path)
    old_entries = {} if old_id is None else _entries_below(store, old_repo, old_id, old_path)
    rows: list[dict[str, Any]] = []
    for rel in sorted(set(new_entries) | set(old_entries)):
        a, b = old_entries.get(rel), new_entries.get(rel)
        if a is not None and b is not None and a.hash == b.hash:
            continue
        change = "added" if a is None else "deleted" if b is None else "modified"
        rows.append(
            {
                "path": rel,
                "change": change,
                "old_size_bytes": None if a is None else a.size,
                "new_size_bytes": None if b is None else b.size,
            }
        )
    if output != "text":
        print_records(output, rows)
        return
    print_table(
        ("CHANGE", "PATH", "OLD SIZE", "NEW SIZE"),
        (
            (
                r["change"],
                r["path"],
                human_size(r["old_size_bytes"]),
                human_size(r["new_size_bytes"]),
            )
            for r in rows
        ),
    )


def _entries_below(store: Store, repo: str, commit: str, path: str) -> dict[str, Entry]:
    """The files at or below ``path`` in a commit, keyed by their path below it (a file: its name)."""
    clean = clean_path(path)
    manifest = store.manifest(repo, commit)
    single = manifest.lookup(store.backend, clean) if clean != "/" else None
    if single is not None:
        return {clean: single}
    prefix = clean.rstrip("/") + "/"
    return {"/" + e.path[len(prefix) :]: e for e in manifest.entries(store.backend, prefix)}


@verb("inspect").command("branch")
@click.argument("target", metavar="REPO@BRANCH", type=CommitRefType())
@output_option
@pass_store
def inspect_branch(store: Store, target: CommitRef, output: OutputFormat) -> None:
    """Show a branch: its head commit, open commits, and the pipelines reading or writing it."""
    branch = check_name(_ref(target), "branch")
    head = store.branch_head(target.repo, branch)
    pending = [c.id for c in store.list_open_commits(target.repo) if c.branch == branch]
    readers, writer = _pipelines_of(store, target.repo, branch)
    record = {
        "repo": target.repo,
        "branch": branch,
        "head": head,
        "open_commits": pending,
        "output_of": writer,
        "input_to": readers,
    }
    if output != "text":
        print_records(output, [record])
        return
    print_fields(
        (
            ("Name", f"{target.repo}@{branch}"),
            ("Head", dash(head)),
            ("Open Commits", dash(", ".join(pending))),
            ("Output Of", dash(writer)),
            ("Input To", dash(", ".join(readers))),
        )
    )


def _pipelines_of(store: Store, repo: str, branch: str) -> tuple[list[str], str | None]:
    """The pipelines reading ``repo@branch``, and the pipeline writing it (``None``)."""
    from airflow_datum_provider.cli._dag import pipeline_graph

    graph = pipeline_graph(store)
    readers = sorted(graph.readers_of(repo, branch))
    return readers, graph.writer_of(repo, branch)
