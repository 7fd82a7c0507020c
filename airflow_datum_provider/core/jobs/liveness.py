"""Whether a job's runner is alive: heartbeats, and stop requests a live runner obeys.

Every runner writes a heartbeat for its job (``pid@host`` and the time) when a step starts and,
throttled to one per :data:`HEARTBEAT_EVERY` seconds, after each datum. A runner is dead when
there is no heartbeat, when its heartbeat names a process of this machine that no longer
exists, or when the heartbeat is older than :func:`stale_after`.
"""

from __future__ import annotations

import json
import os
import socket
import time

from airflow_datum_provider.core.jobs import _layout
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords
from airflow_datum_provider.core.spec import PipelineSpec
from airflow_datum_provider.core.store import Store

__all__ = [
    "HEARTBEAT_EVERY",
    "STALE_AFTER",
    "STOPPED_REASON",
    "heartbeat",
    "runner_alive",
    "runner_id",
    "stale_after",
    "stop_reason",
    "write_stop",
]

STOPPED_REASON = "stopped by user"
HEARTBEAT_EVERY = 5.0
"""Seconds between a runner's heartbeats (written at each step's start and between datums)."""
STALE_AFTER = 60.0
"""A heartbeat older than this (or than one datum's longest possible run) means a dead runner."""

_last_beat: dict[str, float] = {}


def runner_id() -> str:
    """The ``pid@host`` by which this process signs heartbeats."""
    return f"{os.getpid()}@{socket.gethostname()}"


def heartbeat(store: Store, job: JobInfo, *, force: bool = True) -> None:
    """Record that a runner (``pid@host``) is working on the job; throttled unless ``force``."""
    last = _last_beat.get(job.id)
    tick = time.monotonic()
    if not force and last is not None and tick - last < HEARTBEAT_EVERY:
        return
    _last_beat[job.id] = tick
    beat = {"runner": runner_id(), "time": time.time()}
    store.backend.write(_layout.heartbeat(job.pipeline, job.id), json.dumps(beat).encode())


def stale_after(spec: PipelineSpec) -> float:
    """How old a heartbeat may be while a datum runs: one datum's longest possible run."""
    if spec.datum_timeout is None:
        return STALE_AFTER
    runs = spec.datum_tries * (2 if spec.transform.err_cmd else 1)
    return max(STALE_AFTER, spec.datum_timeout.total_seconds() * runs + HEARTBEAT_EVERY)


def runner_alive(store: Store, job: JobInfo) -> bool:
    """Whether some runner still works on the job, judged by its heartbeat (module docstring)."""
    try:
        beat = json.loads(store.backend.read(_layout.heartbeat(job.pipeline, job.id)))
    except FileNotFoundError:
        return False
    pid, _, host = str(beat.get("runner", "")).partition("@")
    if host == socket.gethostname() and pid.isdigit() and int(pid) != os.getpid():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
    spec = JobRecords(store).job_pipeline(job).spec
    return time.time() - float(beat.get("time", 0)) <= stale_after(spec)


def write_stop(store: Store, job: JobInfo, reason: str) -> None:
    """Ask every runner of the job to stop before its next datum."""
    store.backend.write(_layout.stop(job.pipeline, job.id), reason.encode())


def stop_reason(store: Store, job: JobInfo) -> str | None:
    """Why the job was asked to stop, or ``None``."""
    try:
        raw = store.backend.read(_layout.stop(job.pipeline, job.id))
    except FileNotFoundError:
        return None
    return raw.decode(errors="replace") or STOPPED_REASON
