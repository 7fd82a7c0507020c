"""Which store ``datumctl`` talks to, and handing it to commands.

Resolution order: ``--store URL``, then ``$DATUM_STORE``, then :func:`default_store_url`.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._refs import is_commit_id
from airflow_datum_provider.core.errors import CommitNotFound
from airflow_datum_provider.core.store import CommitInfo, OpenCommit, Store, check_name

__all__ = [
    "ENV_VAR",
    "CliState",
    "default_store_url",
    "find_open_commit",
    "open_commits_on",
    "pass_store",
    "writing",
]

ENV_VAR = "DATUM_STORE"
_APP_DIR = "airflow-datum-provider"

P = ParamSpec("P")
R = TypeVar("R")


def default_store_url() -> str:
    """The embedded default store: ``$XDG_DATA_HOME/airflow-datum-provider/store``.

    Falls back to ``~/.local/share/airflow-datum-provider/store`` when ``XDG_DATA_HOME`` is unset
    or not absolute (the XDG spec says to ignore relative values). The folder is created on first
    use, by the store.
    """
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return str(base / _APP_DIR / "store")


@dataclass(slots=True)
class CliState:
    """Per-invocation state on ``ctx.obj``: the store URL, and the store once opened."""

    store_url: str | None = None
    _store: Store | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return self.store_url or default_store_url()

    @property
    def store(self) -> Store:
        """The store, opened on first use (so ``--help`` never touches it)."""
        if self._store is None:
            self._store = Store.open(self.url)
        return self._store


def pass_store(fn: Callable[Concatenate[Store, P], R]) -> Callable[P, R]:
    """Call the decorated command with the invocation's :class:`Store` as first argument."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        state = click.get_current_context().ensure_object(CliState)
        return fn(state.store, *args, **kwargs)

    return wrapper


def open_commits_on(store: Store, repo: str, branch: str) -> list[CommitInfo]:
    """The unfinished commits of ``repo@branch``, oldest first."""
    return [c for c in store.list_open_commits(repo) if c.branch == branch]


def find_open_commit(store: Store, repo: str, ref: str) -> OpenCommit:
    """The open commit ``ref`` names: by id, or the only open commit on branch ``ref``.

    A ref of 32 hex characters is a commit id. On a branch with no open commit, or with more
    than one, the error says so (and lists the ids to choose from).
    """
    if is_commit_id(ref):
        return store.open_commit(repo, ref)
    branch = check_name(ref, "branch")
    store.branch_head(repo, branch)
    found = open_commits_on(store, repo, branch)
    if not found:
        raise CommitNotFound(
            f"no open commit on {repo}@{branch} (start one with: datumctl start commit "
            f"{repo}@{branch})",
            repo=repo,
            commit=ref,
        )
    if len(found) > 1:
        ids = ", ".join(c.id for c in found)
        raise CliError(
            f"{len(found)} open commits on {repo}@{branch} ({ids}); name one as {repo}@<id>"
        )
    return store.open_commit(repo, found[0].id)


@contextmanager
def writing(store: Store, repo: str, ref: str) -> Iterator[tuple[OpenCommit, bool]]:
    """The commit a ``put file`` / ``delete file`` writes into, and whether it is new.

    An open commit named by id, or the only open commit on the branch, is written into and
    flushed (it stays open for later calls, as after ``pachctl start commit``). Otherwise a new
    commit is started and finished around the block (deleted if the block fails).
    """
    existing: OpenCommit | None = None
    if is_commit_id(ref):
        existing = store.open_commit(repo, ref)
    else:
        found = open_commits_on(store, repo, check_name(ref, "branch"))
        if len(found) == 1:
            existing = store.open_commit(repo, found[0].id)
    if existing is not None:
        yield existing, False
        existing.flush()
        return
    with store.start_commit(repo, ref) as commit:
        yield commit, True
