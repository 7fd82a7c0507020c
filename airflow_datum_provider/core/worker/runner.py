"""Run one datum: lay out scratch, run the transform under the attempt policy, collect outputs.

:func:`run_datum` wires the pieces together: the attempt policy
(:mod:`~airflow_datum_provider.core.worker.policy`: ``datum_tries``, ``err_cmd`` → recovered,
``datum_timeout``, the job's deadline, output collection, the result) and a runtime
(:mod:`~airflow_datum_provider.core.worker.runtime`: a command or a Python callable) that runs
each attempt. The semantics are in the policy's docstring.

Commands run in their own session (process group, killed as a whole on timeout and when the
command exits, so no background child outlives its datum), with the worker's environment plus
the datum's (:mod:`~airflow_datum_provider.core.worker.env`). Their working directory is
``working_dir`` or, unset, the worker's own: Pachyderm uses the image's default, and the local
analogue of the image is the environment the worker runs in, so ``cmd: [python3, main.py]``
works when the job runs from the project folder. A ``working_dir`` under ``/pfs`` is mapped to
the scratch root when the ``/pfs`` namespace is not in use.

A Python transform is called in-process with one :class:`DatumContext`; an exception (or
``SystemExit`` with a non-zero code) fails the attempt with its ``repr`` as the reason. Its
``sys.stdout`` / ``sys.stderr`` are captured into the log (output written straight to the file
descriptors by C code or child processes is not). Its working directory is never changed. The
timeout interrupts it with ``SIGALRM`` when called on the main thread; elsewhere an attempt that
overran fails once it returns.

Store and disk errors (a missing blob, a full disk) are not the datum's fault and propagate,
so the job engine can retry or resume the job; only user-code outcomes land in the result.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import PipelineError
from airflow_datum_provider.core.store.manifest import Entry
from airflow_datum_provider.core.store.packs import BlobBatch
from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker._process import LogSink
from airflow_datum_provider.core.worker.env import datum_variables
from airflow_datum_provider.core.worker.namespace import PFS, pfs_namespace_available
from airflow_datum_provider.core.worker.options import RunOptions
from airflow_datum_provider.core.worker.outputs import collect_outputs
from airflow_datum_provider.core.worker.policy import (
    JOB_TIMEOUT_REASON,
    AttemptPolicy,
    DatumResult,
    DatumState,
    attempts,
)
from airflow_datum_provider.core.worker.runtime import AttemptRuntime, drive, runtime_for
from airflow_datum_provider.core.worker.scratch import Scratch, keep_names, lay_out, wipe

__all__ = [
    "JOB_TIMEOUT_REASON",
    "DatumContext",
    "DatumResult",
    "DatumState",
    "JobContext",
    "run_datum",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class JobContext:
    """The job a datum runs for: ids user code sees, and the job's deadline.

    ``deadline`` is a :func:`time.monotonic` instant (the job's ``job_timeout``) no attempt
    or ``err_cmd`` run may pass; ``None``: no job timeout. ``env`` is added to every command's
    environment after the datum's variables (the engine marks each set's processes with it).
    """

    job_id: str
    output_commit: str
    pipeline: str
    deadline: float | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    try_number: int = 0
    """The set runner's try, stamped on every result (0: not checkpointed)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumContext:
    """What a Python transform gets: ids, the scratch ``root``, ``out``, inputs and env.

    ``inputs`` maps each input name to the local path of its matched file or directory;
    ``env`` is the environment a command would get. Paths are real local paths (never
    ``/pfs``), since the callable runs in the worker's own process. ``rows`` is a row-range
    datum's ``(start, end)`` (``rows_per_datum``; ``read_rows(path, *ctx.rows)``), else None.
    """

    id: str
    job_id: str
    root: Path
    out: Path
    inputs: Mapping[str, Path]
    env: Mapping[str, str]
    rows: tuple[int, int] | None = None


def run_datum(
    store: Store,
    datum: Datum,
    *,
    options: RunOptions,
    job: JobContext,
    scratch_root: Path,
    log: IO[str] | None = None,
    verbose: bool = False,
    runtime: AttemptRuntime | None = None,
    blobs: BlobBatch | None = None,
) -> DatumResult:
    """Process one datum to a :class:`DatumResult` (see the module docstring).

    ``scratch_root`` is this worker's own folder (``/pfs`` in a pod); its contents are deleted.
    ``log`` receives every attempt's output under a header line; ``verbose`` echoes it to
    stderr. Outputs are stored as blobs tagged with the datum id; the caller merges them.
    ``runtime`` replaces the command / Python runtime ``options`` choose. ``blobs`` is the
    set's blob batch for the outputs (flush it before writing the result).
    """
    root = real_root(scratch_root)
    in_pod = str(root) == PFS
    use_ns = False
    if options.python is None and not in_pod and options.use_pfs_mount is not False:
        use_ns = pfs_namespace_available()
        if options.use_pfs_mount and not use_ns:
            raise PipelineError(
                "use_pfs_mount=True, but this machine cannot give commands a private /pfs "
                "(needs Linux, util-linux `unshare`, a /pfs directory, and root or "
                "unprivileged user namespaces)"
            )
    view_root = PFS if use_ns or in_pod else str(root)
    variables = datum_variables(
        datum,
        root=view_root,
        job_id=job.job_id,
        output_commit_id=job.output_commit,
        pipeline=job.pipeline,
        transform_env=options.env,
    )
    variables.update(job.env)
    # Hard links are safe only where writes through them fail (see scratch.py); a runtime
    # without read-only input mounts (batching) says so with ``read_only_inputs = False``.
    link = (use_ns and getattr(runtime, "read_only_inputs", True)) or os.geteuid() != 0
    sink = LogSink(log, verbose)
    attach = getattr(runtime, "attach", None)
    if attach is not None:  # a runtime that outlives the datum (batching) logs into its sink
        attach(sink)
    local = runtime_for(
        options, root=root, variables=variables, use_ns=use_ns, sink=sink, job_id=job.job_id
    )
    policy = AttemptPolicy(
        tries=options.datum_tries,
        datum_timeout=options.datum_timeout,
        err_cmd=bool(options.err_cmd),
        deadline=job.deadline,
    )

    laid: list[Scratch] = []

    def prepare() -> Scratch:
        laid[:] = [lay_out(store, datum, root, variables=variables, link=link)]
        return laid[0]

    def collect() -> tuple[tuple[Entry, ...], int]:
        scratch = laid[0] if laid else None
        return collect_outputs(
            store,
            root,
            tag=datum.id,
            view_root=view_root,
            scratch=scratch,
            blobs=blobs,
            resolved=True,
        )

    steps = attempts(
        datum,
        policy,
        prepare=prepare,
        collect=collect,
        sink=sink,
        label=local.label,
        try_number=job.try_number,
    )
    try:
        result = drive(steps, runtime or local)
    finally:
        steps.close()
        wipe(root, keep=keep_names(datum))
        sink.flush()
    return result


def real_root(scratch_root: str | Path) -> Path:
    """The real path of a scratch root, resolved once per root (not once per datum).

    A scratch root is the worker's own folder; every later step uses the real path this gives,
    so a root swapped for a symlink afterwards is never followed (wipes also open it with
    ``O_NOFOLLOW``).
    """
    return _real_root(os.fspath(scratch_root))


@functools.lru_cache(maxsize=256)
def _real_root(text: str) -> Path:
    return Path(os.path.realpath(text))
