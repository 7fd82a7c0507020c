"""Which store ``datumctl`` talks to, and handing it to commands.

Resolution order: ``--store URL``, then ``$DATUM_STORE``, then :func:`default_store_url`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Concatenate, ParamSpec, TypeVar

import click

from airflow_datum_provider.cli._config import (
    _CREATING_VERBS,
    ENV_VAR,
    CliState,
    _verb_of,
    default_store_url,
    resolve_store,
)
from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._output import human_time
from airflow_datum_provider.cli._refs import is_commit_id
from airflow_datum_provider.core.errors import CommitNotFound
from airflow_datum_provider.core.store import OWNER_PUT, CommitInfo, OpenCommit, Store, check_name

__all__ = [
    "ENV_VAR",
    "CliState",
    "default_store_url",
    "resolve_store",
    "find_open_commit",
    "only_open_commit",
    "open_commits_on",
    "pass_store",
    "refuse_output_branch",
    "writing",
]

P = ParamSpec("P")
R = TypeVar("R")


def pass_store(fn: Callable[Concatenate[Store, P], R]) -> Callable[P, R]:
    """Call the decorated command with the invocation's :class:`Store` as first argument.

    Read verbs refuse a store that does not exist (see :meth:`CliState.open`).
    """

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        ctx = click.get_current_context()
        state = ctx.ensure_object(CliState)
        store = state.open(create=_verb_of(ctx) in _CREATING_VERBS, ctx=ctx)
        return fn(store, *args, **kwargs)

    return wrapper


def open_commits_on(store: Store, repo: str, branch: str) -> list[CommitInfo]:
    """The unfinished commits of ``repo@branch``, oldest first."""
    return [c for c in store.list_open_commits(repo) if c.branch == branch]


def only_open_commit(store: Store, repo: str, branch: str) -> CommitInfo | None:
    """The one shared open commit on ``repo@branch`` (``start commit``), or ``None``.

    Commits that a put or a job opened for itself are never found through the branch (only by
    id, and a job's not even then). Several shared ones are an error listing their ids.
    """
    found = [c for c in open_commits_on(store, repo, branch) if c.joinable]
    if len(found) > 1:
        ids = ", ".join(c.id for c in found)
        raise CliError(
            f"{len(found)} open commits on {repo}@{branch} ({ids}); name one as {repo}@<id>"
        )
    return found[0] if found else None


def find_open_commit(store: Store, repo: str, ref: str, *, hint: bool = True) -> OpenCommit:
    """The open commit ``ref`` names: by id, or the only open commit on branch ``ref``.

    A ref of 32 hex characters is a commit id. On a branch with no open commit, or with more
    than one, the error says so (and lists the ids to choose from).
    """
    if is_commit_id(ref):
        return store.open_commit(repo, ref)
    branch = check_name(ref, "branch")
    store.branch_head(repo, branch)
    found = only_open_commit(store, repo, branch)
    if found is None:
        suggestion = f" (start one with: datumctl start commit {repo}@{branch})" if hint else ""
        raise CommitNotFound(
            f"no open commit on {repo}@{branch}{suggestion}",
            repo=repo,
            commit=ref,
        )
    return store.open_commit(repo, found.id)


def refuse_output_branch(store: Store, repo: str, branch: str) -> None:
    """User commits into a pipeline's output branch are refused, as in Pachyderm.

    Whatever is written there would be carried into every later job's output. There is no
    escape hatch: to change what a pipeline outputs, change its input or its spec.
    """
    # The pipeline record's key (core/jobs/_layout.py), looked at before importing the job
    # records (and the spec parser): a put into a plain repo stays cheap to start.
    if not store.backend.exists(f"meta/pipelines/{repo}/pipeline.json"):
        return
    from airflow_datum_provider.core.jobs import JobRecords

    records = JobRecords(store)
    if records.pipeline_exists(repo) and records.pipeline(repo).spec.output_branch == branch:
        raise CliError(
            f"cannot start a commit on an output branch: {repo}@{branch} is written by pipeline "
            f"{repo!r} (change its input or its spec instead)"
        )


@contextmanager
def writing(store: Store, repo: str, ref: str) -> Iterator[tuple[OpenCommit, bool]]:
    """The commit a ``put file`` / ``delete file`` writes into, and whether it is new.

    An open commit named by id, or the only open commit on the branch, is written into and
    flushed; it stays open for later calls (as after ``pachctl start commit``). When the commit
    was found through the branch, a note on stderr says so, since nothing reaches the branch
    until it is finished. Several open commits
    on the branch are an error, as for ``finish commit``. Otherwise a new commit is started and
    finished around the block, and deleted if the block fails or SIGTERM / SIGHUP arrives.
    """
    if is_commit_id(ref):
        named = store.open_commit(repo, ref)
        refuse_output_branch(store, repo, named.info.branch)
        existing: OpenCommit | None = named
    else:
        refuse_output_branch(store, repo, check_name(ref, "branch"))
        found = only_open_commit(store, repo, check_name(ref, "branch"))
        existing = None if found is None else store.open_commit(repo, found.id)
        if existing is not None:
            # Named by branch, the open commit may be one a killed writer left behind: say so.
            _note_open_commit(existing.info)
    if existing is not None:
        yield existing, False
        existing.flush()
        return
    with _TerminationGuard() as guard:
        with guard.deferred():
            # The put's own commit: no other writer joins it through the branch.
            commit = store.start_commit(repo, ref, owner=OWNER_PUT)
        try:
            guard.check()
            yield commit, True
        except BaseException:
            with guard.deferred():
                commit.abort()
            raise
        with guard.deferred():
            try:
                commit.finish()
            except BaseException:
                # A failed finish (collision, ENOSPC, S3 error) leaves no commit behind.
                with contextlib.suppress(Exception):
                    commit.abort()
                raise


def _note_open_commit(info: CommitInfo) -> None:
    name = f"{info.repo}@{info.id}"
    click.echo(
        f"datumctl: note: writing into open commit {name} (started {human_time(info.started)}); "
        f"it is published by: datumctl finish commit {name}",
        err=True,
    )


_TERMINATING = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)


class _Terminated(BaseException):
    """Raised by the signal handler so that the commit a put started is deleted on the way out."""


class _TerminationGuard:
    """Turns SIGTERM / SIGHUP into :class:`_Terminated` while a put's own commit is open.

    Python runs the handler in the main thread, which raises there; on exit the default
    handlers come back and the process ends by the signal it got, so ``timeout`` and shells see
    a killed process, not an error.

    Inside :meth:`deferred` (starting, aborting or finishing a commit) a signal is only noted,
    so it cannot leave a commit half-made; :meth:`check` raises for one noted earlier. Does
    nothing outside the main thread, or for a signal whose handler is not the default (ignored
    by the parent, or handled by a program embedding the CLI).
    """

    def __init__(self) -> None:
        main = threading.current_thread() is threading.main_thread()
        self._signals = [s for s in _TERMINATING if main and signal.getsignal(s) == signal.SIG_DFL]
        self._signum: int | None = None
        self._holding = 0
        self._raised = False

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._signum is None:
            self._signum = signum
        if not self._holding:
            self.check()

    def check(self) -> None:
        """Raise :class:`_Terminated` once, if a signal arrived."""
        if self._signum is not None and not self._raised:
            self._raised = True
            raise _Terminated(self._signum)

    @contextmanager
    def deferred(self) -> Iterator[None]:
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def __enter__(self) -> _TerminationGuard:
        for s in self._signals:
            signal.signal(s, self._handle)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        for s in self._signals:
            signal.signal(s, signal.SIG_DFL)
        if self._signum is not None:
            os.kill(os.getpid(), self._signum)  # the default action: the process ends here
            sys.exit(128 + self._signum)  # not reached
