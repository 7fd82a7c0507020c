"""Running sets on this machine: set executors (pools) and clean-up after dead runners.

A **set executor** runs :func:`~airflow_datum_provider.core.jobs.steps.run_set` over datum sets
and yields each set's :class:`~airflow_datum_provider.core.jobs.steps.SetSummary` as it ends.
:func:`set_executor` is the one factory:

* ``inline``: one set after another in this process (the default, and the only kind under
  which a Python transform's ``datum_timeout`` can interrupt it with ``SIGALRM``);
* ``thread``: ``workers`` threads of this process sharing one store object;
* ``process``: ``workers`` spawned processes, each opening the store by URL (so the store
  must be reachable by URL: not a ``memory://`` store of this process). On Linux each worker
  asks the kernel to SIGKILL it when the runner that spawned it dies (``PR_SET_PDEATHSIG``,
  set once per worker), so a SIGKILLed runner leaves no pool worker writing results behind
  it; elsewhere the set leases stop such a worker before its next result.

The first set that raises ends the iteration with its exception once the sets already
started have ended (nothing half-runs: a set is the unit of work and of retry).

``batch_config`` (a :class:`~airflow_datum_provider.batch.BatchConfig` in its dict form, so it
crosses to spawned workers) runs each set's datums through the batch executor
(:func:`airflow_datum_provider.batch.datums.datum_executor`) instead of the in-order loop.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import signal
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, get_args

from airflow_datum_provider.core.errors import PipelineError

if TYPE_CHECKING:
    from airflow_datum_provider.core.jobs.records import JobInfo
    from airflow_datum_provider.core.jobs.steps import DatumExecutor, SetRef, SetSummary
    from airflow_datum_provider.core.store import Store

__all__ = [
    "ExecutorKind",
    "SetExecutor",
    "SET_MARKER",
    "clean_up_after_runner",
    "clean_up_set",
    "scratch_parent",
    "set_executor",
    "set_marker",
    "set_scratch_parent",
    "new_set_scratch",
]

ExecutorKind = Literal["inline", "thread", "process"]
EXECUTOR_KINDS: tuple[str, ...] = get_args(ExecutorKind)


SET_MARKER = "DATUM_SET"
"""The variable in every user command's environment that names its set: ``<job id>:<set>``."""


def scratch_parent(job: JobInfo) -> Path:
    """The job's scratch folder on this machine: ``<tmp>/datum-<job id>/``."""
    return Path(tempfile.gettempdir()) / f"datum-{job.id}"


def set_scratch_parent(job: JobInfo, number: int) -> Path:
    """One set's scratch folder: ``<tmp>/datum-<job id>/set<n>/``, a folder per try below."""
    return scratch_parent(job) / f"set{number:06d}"


def new_set_scratch(job: JobInfo, number: int, try_number: int) -> Path:
    """A fresh scratch root for one try of a set: ``<set folder>/try<n>-<random>/``.

    A sibling set that ends meanwhile removes the job's folder once it looks empty (between
    this ``mkdir`` of the job folder and of the set folder, or of the try folder): then make
    the missing parents again.
    """
    parent = set_scratch_parent(job, number)
    for _ in range(100):
        try:
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix=f"try{try_number}-", dir=parent))
        except FileNotFoundError:
            continue
    raise OSError(f"cannot create a scratch folder under {parent}: its parents keep vanishing")


def set_marker(job_id: str, number: int) -> str:
    """The value of :data:`SET_MARKER` for a set."""
    return f"{job_id}:{number}"


def clean_up_after_runner(job: JobInfo) -> None:
    """Kill what dead runners of the job left running on this machine; drop its scratch.

    A runner SIGKILLed mid-datum leaves the datum's command running (its own session) and its
    scratch folder behind. Only this machine is cleaned: other machines' leftovers stay. Call
    it only when no runner of the job is alive (it is job-wide: every set's processes).
    """
    from airflow_datum_provider.core.worker._process import kill_job_processes
    from airflow_datum_provider.core.worker.scratch import remove_tree

    kill_job_processes(job.id)
    remove_tree(scratch_parent(job), ignore_errors=True)  # any depth; never raises


def clean_up_set(job: JobInfo, number: int) -> None:
    """Kill what a dead runner of one set left on this machine; drop that set's scratch only.

    Sibling sets of the job, running in other processes here, are left alone: their
    processes carry another :data:`SET_MARKER` and their scratch is in other folders.
    """
    from airflow_datum_provider.core.worker._process import kill_marked
    from airflow_datum_provider.core.worker.scratch import remove_tree

    kill_marked(SET_MARKER, set_marker(job.id, number))
    remove_tree(set_scratch_parent(job, number), ignore_errors=True)


def _die_with_parent(parent: int) -> None:
    """Pool worker initializer: get SIGKILLed when the runner that spawned it dies (Linux)."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the runner died before the line above
        os._exit(1)


_PR_SET_PDEATHSIG = 1


class SetExecutor:
    """Runs sets and yields their summaries; use as a context manager (see the module doc)."""

    kind: ExecutorKind = "inline"

    def __init__(
        self,
        store: Store,
        *,
        verbose: bool = False,
        batch_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.verbose = verbose
        self.batch_config = batch_config

    def map(self, refs: Sequence[SetRef]) -> Iterator[SetSummary]:
        """Run every set of ``refs``; yield each summary as its set ends."""
        from airflow_datum_provider.core.jobs.steps import run_set

        for ref in refs:
            yield run_set(
                self.store,
                ref,
                verbose=self.verbose,
                datum_executor=_datum_executor(self.batch_config),
            )

    def close(self) -> None:
        """Release the executor's workers (waits for running sets)."""

    def __enter__(self) -> SetExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _datum_executor(batch_config: Mapping[str, Any] | None) -> DatumExecutor | None:
    if batch_config is None:
        return None
    from airflow_datum_provider.batch.config import BatchConfig
    from airflow_datum_provider.batch.datums import datum_executor

    return datum_executor(BatchConfig.from_dict(dict(batch_config)))


class _PoolExecutor(SetExecutor):
    def __init__(
        self,
        store: Store,
        pool: concurrent.futures.Executor,
        *,
        verbose: bool,
        batch_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(store, verbose=verbose, batch_config=batch_config)
        self.pool = pool

    def _submit(self, ref: SetRef) -> concurrent.futures.Future[SetSummary]:
        raise NotImplementedError

    def map(self, refs: Sequence[SetRef]) -> Iterator[SetSummary]:
        futures = [self._submit(ref) for ref in refs]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield future.result()
        finally:  # the caller stopped early (fail-fast): sets not started are not started
            for future in futures:
                future.cancel()

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class _ThreadExecutor(_PoolExecutor):
    kind: ExecutorKind = "thread"

    def _submit(self, ref: SetRef) -> concurrent.futures.Future[SetSummary]:
        from airflow_datum_provider.core.jobs.steps import run_set

        return self.pool.submit(
            run_set,
            self.store,
            ref,
            verbose=self.verbose,
            datum_executor=_datum_executor(self.batch_config),
        )


def _run_set_in_child(
    url: str,
    options: Mapping[str, Any],
    ref: dict[str, Any],
    verbose: bool,
    batch_config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    from airflow_datum_provider.core.jobs.steps import SetRef, run_set
    from airflow_datum_provider.core.store import Store

    store = Store.open(url, storage_options=options)
    executor = _datum_executor(batch_config)
    return run_set(store, SetRef.from_dict(ref), verbose=verbose, datum_executor=executor).to_dict()


class _ProcessExecutor(_PoolExecutor):
    kind: ExecutorKind = "process"

    def __init__(
        self,
        store: Store,
        pool: concurrent.futures.Executor,
        *,
        verbose: bool,
        storage_options: Mapping[str, Any] | None,
        batch_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(store, pool, verbose=verbose, batch_config=batch_config)
        self.options = dict(storage_options or {})

    def map(self, refs: Sequence[SetRef]) -> Iterator[SetSummary]:
        from airflow_datum_provider.core.jobs.steps import SetSummary

        futures = [
            self.pool.submit(
                _run_set_in_child,
                self.store.url,
                self.options,
                ref.to_dict(),
                self.verbose,
                self.batch_config,
            )
            for ref in refs
        ]
        try:
            for future in concurrent.futures.as_completed(futures):
                yield SetSummary.from_dict(future.result())
        finally:  # the caller stopped early (fail-fast): sets not started are not started
            for future in futures:
                future.cancel()


def set_executor(
    kind: str,
    store: Store,
    *,
    workers: int = 1,
    storage_options: Mapping[str, Any] | None = None,
    verbose: bool = False,
    batch_config: Mapping[str, Any] | None = None,
) -> SetExecutor:
    """The set executor of ``kind`` (``inline``, ``thread`` or ``process``) with ``workers``."""
    if kind not in EXECUTOR_KINDS:
        raise PipelineError(
            f"executor: {kind!r} is not a set executor; use one of {', '.join(EXECUTOR_KINDS)}"
        )
    if workers < 1:
        raise PipelineError(f"executor workers: {workers} is not allowed; use 1 or more")
    if kind == "inline":
        return SetExecutor(store, verbose=verbose, batch_config=batch_config)
    if kind == "thread":
        threads = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="datum-set"
        )
        return _ThreadExecutor(store, threads, verbose=verbose, batch_config=batch_config)
    ctx = multiprocessing.get_context("spawn")
    processes = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers,
        mp_context=ctx,
        initializer=_die_with_parent,
        initargs=(os.getpid(),),
    )
    return _ProcessExecutor(
        store,
        processes,
        verbose=verbose,
        storage_options=storage_options,
        batch_config=batch_config,
    )
