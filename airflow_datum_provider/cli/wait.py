"""``wait commit`` and ``wait job``: block until a commit is finished or a job has ended."""

from __future__ import annotations

import time

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._refs import CommitRef, CommitRefType, is_commit_id
from airflow_datum_provider.cli._store import open_commits_on, pass_store
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.cli.job import JobRef, JobRefType, runner_dead
from airflow_datum_provider.core.jobs import JobRecords
from airflow_datum_provider.core.spec import parse_duration
from airflow_datum_provider.core.store import Store, check_name

__all__ = ["wait_commit", "wait_job"]

_POLL_S = 0.2
_DEAD_FOR_S = 3.0


def _timeout(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return parse_duration(value).total_seconds()
    except Exception as exc:
        raise click.BadParameter(f"{value!r}: expected a duration such as 30s, 10m, 1h") from exc


_TIMEOUT = click.option(
    "--timeout",
    metavar="DURATION",
    callback=_timeout,
    help="Give up after this long (30s, 10m, 1h): exit 1. Default: wait forever.",
)


def _expired(deadline: float | None, what: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise CliError(f"timed out waiting for {what}")


@verb("wait").command("commit")
@click.argument("target", metavar="REPO@BRANCH|REPO@ID", type=CommitRefType())
@_TIMEOUT
@pass_store
def wait_commit(store: Store, target: CommitRef, timeout: float | None) -> None:
    """Wait until a commit is finished, then print its id.

    REPO@ID waits for that commit. REPO@BRANCH waits for every commit open on the branch now
    (an output branch: the running job's output commit), then prints the branch head.
    """
    assert target.ref is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    if is_commit_id(target.ref):
        while store.inspect_commit(target.repo, target.ref).finished is None:
            _expired(deadline, f"commit {target}")
            time.sleep(_POLL_S)
        click.echo(target.ref)
        return
    branch = check_name(target.ref, "branch")
    store.branch_head(target.repo, branch)
    pending = {c.id for c in open_commits_on(store, target.repo, branch)}
    while pending & {c.id for c in open_commits_on(store, target.repo, branch)}:
        _expired(deadline, f"the open commits of {target}")
        time.sleep(_POLL_S)
    head = store.branch_head(target.repo, branch)
    click.echo(head or "-")


@verb("wait").command("job")
@click.argument("target", metavar="[PIPELINE@]JOB", type=JobRefType(bare=True))
@_TIMEOUT
@pass_store
def wait_job(store: Store, target: JobRef, timeout: float | None) -> None:
    """Wait until a job has ended; print `<id> <state> <progress>`, exit 1 unless success.

    A job whose runner died never ends by itself: that is an error at once (resume it with
    `run pipeline NAME --resume JOB`, or end it with `stop job`).
    """
    records = JobRecords(store)
    if target.pipeline is not None:
        records.pipeline(target.pipeline)
    job = records.find_job(target.job, target.pipeline)
    deadline = None if timeout is None else time.monotonic() + timeout
    dead_since: float | None = None
    while not job.done:
        # A runner is taken for dead only after looking so for a while: a job just started may
        # not have its first heartbeat yet.
        dead = runner_dead(store, job)
        dead_since = (dead_since or time.monotonic()) if dead else None
        if dead_since is not None and time.monotonic() - dead_since >= _DEAD_FOR_S:
            raise CliError(
                f"job {job.pipeline}@{job.id} will not end: its runner died (resume it with "
                f"datumctl run pipeline {job.pipeline} --resume {job.id}, or datumctl stop job "
                f"{job.id})"
            )
        _expired(deadline, f"job {target}")
        time.sleep(_POLL_S)
        job = records.job(job.pipeline, job.id)
    click.echo(f"{job.id} {job.state} {job.progress}")
    if job.state != "success":
        raise CliError(f"job {job.id} {job.state}: {job.reason}")
