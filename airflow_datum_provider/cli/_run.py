"""``run pipeline`` that talks, and ``watch``: the job id first, a datum bar, a useful failure.

The engine runs the job in this thread; a second thread only looks at the job's records (for
the id as soon as the job exists, and, on a terminal, the counters for the bar), so what is
shown never changes what runs.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from airflow_datum_provider.cli._output import OutputFormat, print_records
from airflow_datum_provider.cli._progress import progress_enabled, progress_options
from airflow_datum_provider.core.jobs import JobInfo, JobRecords
from airflow_datum_provider.core.store import Store

__all__ = ["failure_report", "run_and_report", "runs_needed", "watch_loop"]

_POLL_S = 0.25  # how often the display thread looks at the records (display only)
_TAIL_LINES = 5


def _jobs_key(pipeline: str) -> str:
    """Where the job records of a pipeline are listed (one folder per job id)."""
    return f"meta/pipelines/{pipeline}/jobs"


def runs_needed(store: Store, name: str) -> bool:
    """Whether a pipeline's inputs moved (or its spec changed) since its last job.

    A pipeline without jobs needs a run once any of its inputs has a commit.
    """
    from airflow_datum_provider.core.plan import pin_inputs

    records = JobRecords(store)
    info = records.pipeline(name)
    pins = pin_inputs(store, info.spec.input, name)
    current = {f"{repo}@{branch}={commit or ''}" for (repo, branch), commit in pins.items()}
    jobs = records.jobs(name)
    if not jobs:
        return any(commit is not None for commit in pins.values())
    last = jobs[0]
    if not last.done:
        return False  # a job is running (or its runner died: resume or stop it first)
    return current != set(last.inputs) or last.pipeline_version != info.version


class _Display:
    """Announces the job id once, and keeps a datum bar up to date on a terminal."""

    def __init__(self, store: Store, pipeline: str, known: set[str], bar: bool) -> None:
        self.store = store
        self.pipeline = pipeline
        self.known = known
        self.job_id: str | None = None
        self._lock = threading.Lock()
        self._bar: Any = None
        self._want_bar = bar

    def announce(self, job_id: str) -> None:
        with self._lock:
            if self.job_id is not None:
                return
            self.job_id = job_id
        click.echo(
            f"datumctl: job {job_id} started (pipeline {self.pipeline}; follow it with: "
            f"datumctl logs -j {self.pipeline}@{job_id} -f)",
            err=True,
        )

    def find(self) -> JobInfo | None:
        records = JobRecords(self.store)
        if self.job_id is None:
            try:
                ids = self.store.backend.list(_jobs_key(self.pipeline))
            except FileNotFoundError:
                return None
            fresh = [i for i in ids if i not in self.known]
            if not fresh:
                return None
            self.announce(fresh[0])
        assert self.job_id is not None
        try:
            return records.job(self.pipeline, self.job_id)
        except Exception:
            return None

    def update(self, job: JobInfo) -> None:
        if not self._want_bar or not job.planned or not job.total:
            return
        from airflow_datum_provider.cli.job import live_job

        live = live_job(JobRecords(self.store), job)
        done = live.processed + live.skipped + live.failed + live.recovered
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=live.total,
                desc=self.pipeline,
                unit="datum",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n}/{total} datums "
                "[{elapsed}<{remaining}, {rate_fmt}] {postfix}",
                leave=False,
                file=sys.stderr,
                **progress_options(),
            )
        self._bar.set_postfix_str(
            f"processed {live.processed}, skipped {live.skipped}, failed {live.failed}",
            refresh=False,
        )
        self._bar.update(max(0, done - self._bar.n))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


@contextmanager
def _displayed(display: _Display) -> Iterator[list[JobInfo]]:
    """Poll in a thread while the block runs; the block appends the final job to the list."""
    stop = threading.Event()
    final: list[JobInfo] = []

    def loop() -> None:
        while not stop.wait(_POLL_S):
            job = display.find()
            if job is not None:
                display.update(job)

    thread = threading.Thread(target=loop, name="datumctl-display", daemon=True)
    thread.start()
    try:
        yield final
    finally:
        stop.set()
        thread.join()
        if final:
            display.update(final[0])  # the bar ends on the final counts
        display.close()


def run_and_report(
    store: Store,
    name: str,
    *,
    parallelism: int | None = None,
    resume: str | None = None,
    verbose: bool = False,
    output: OutputFormat = "text",
    exit_on_failure: bool = True,
    batch_config: Any = None,
) -> JobInfo:
    """Run one job of ``name`` and print what ``run pipeline`` prints (module docstring).

    A job that does not succeed prints ``datumctl: error: ...`` and its :func:`failure_report`
    on stderr, then exits 1 (or, with ``exit_on_failure=False``, returns it).
    """
    from airflow_datum_provider.core.engine import run_pipeline

    known = set() if resume else set(_list_ids(store, name))
    display = _Display(store, name, known, bar=output == "text" and progress_enabled())
    if resume:
        display.announce(resume)
    with _displayed(display) as final:
        job = run_pipeline(
            store,
            name,
            parallelism=parallelism,
            resume=resume,
            verbose=verbose,
            batch_config=batch_config,
        )
        final.append(job)
    display.announce(job.id)
    if output != "text":
        print_records(output, [job.to_dict()])
    if job.state == "success":
        if output == "text":
            click.echo(f"{job.id} {job.state} {job.progress}")
        return job
    click.echo(f"datumctl: error: job {job.id} {job.state}: {job.reason}", err=True)
    for line in failure_report(store, job):
        click.echo(f"datumctl: {line}", err=True)
    if exit_on_failure:
        raise click.exceptions.Exit(1)
    return job


def _list_ids(store: Store, name: str) -> list[str]:
    try:
        return store.backend.list(_jobs_key(name))
    except FileNotFoundError:
        return []


def failure_report(store: Store, job: JobInfo) -> list[str]:
    """What a user needs after a failed job: the failed datum, its exit, its last lines, logs."""
    from airflow_datum_provider.core.plan import describe

    records = JobRecords(store)
    logs = f"datumctl logs -j {job.pipeline}@{job.id}"
    failed = None
    for number in records.set_numbers(job):
        results = records.results(job, number)
        bad = [(i, r) for i, r in results.items() if r.get("state") == "failed"]
        if bad:
            failed = (number, *bad[0])
            break
    if failed is None:
        return [f"more: {logs}   (and: datumctl inspect job {job.pipeline}@{job.id})"]
    number, datum_id, result = failed
    files = ""
    for datum in records.read_set(job, number):
        if datum.id == datum_id:
            files = f" ({describe(datum)})"
    attempts = int(result.get("attempts", 0))
    reason = str(result.get("reason", "")) or "failed"
    lines = [
        f"datum {datum_id}{files}: {reason}"
        + (f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else "")
    ]
    tail = [t for t in str(result.get("log_tail", "")).splitlines() if t.strip()]
    if tail:
        lines.append(f"last {min(len(tail), _TAIL_LINES)} lines of its output:")
        lines.extend(f"  | {t}" for t in tail[-_TAIL_LINES:])
    lines.append(f"more: {logs} --datum {datum_id}")
    return lines


def _note_dead_runner(store: Store, name: str, noted: set[str]) -> None:
    """Say once that a pipeline waits on a job nobody runs (watch will not start another)."""
    from airflow_datum_provider.cli.job import runner_dead

    jobs = JobRecords(store).jobs(name)
    if jobs and jobs[0].id not in noted and runner_dead(store, jobs[0]):
        noted.add(jobs[0].id)
        click.echo(
            f"datumctl: watch: {name}: job {jobs[0].id} has no live runner; continue it with "
            f"datumctl run pipeline {name} --resume {jobs[0].id}, or datumctl stop job "
            f"{jobs[0].id}",
            err=True,
        )


def watch_loop(
    store: Store,
    *,
    only: tuple[str, ...],
    interval: float,
    parallelism: int | None,
    batch_config: Any = None,
) -> None:
    """Run the pipelines whose inputs moved, upstream first, until SIGINT / SIGTERM."""
    from airflow_datum_provider.cli._dag import pipeline_graph

    stop = threading.Event()
    previous: dict[int, Any] = {}
    noted: set[str] = set()

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # a second signal: stop now
            signal.signal(signum, previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
        stop.set()
        click.echo("datumctl: watch: stopping after the job in flight", err=True)

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.signal(sig, handle)
    for name in only:
        JobRecords(store).pipeline(name)
    click.echo(
        f"datumctl: watching {', '.join(only) if only else 'every pipeline'} "
        f"(every {interval:g}s; Ctrl-C stops)",
        err=True,
    )
    try:
        while not stop.is_set():
            graph = pipeline_graph(store)
            names = graph.order()
            if only:
                wanted = {d for name in only for d in graph.downstream(name)}
                names = [n for n in names if n in wanted]
            for name in names:
                if stop.is_set():
                    break
                if runs_needed(store, name):
                    run_and_report(
                        store,
                        name,
                        parallelism=parallelism,
                        exit_on_failure=False,
                        batch_config=batch_config,
                    )
                else:
                    _note_dead_runner(store, name, noted)
            stop.wait(interval)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
