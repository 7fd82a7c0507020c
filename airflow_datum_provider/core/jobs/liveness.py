"""Whether a job's runners are alive: heartbeats, per-set leases, and stop requests.

Two kinds of beat, both ``pid@host`` and the time:

* the job's **heartbeat**, written by the steps that are not about one set (``start_job``,
  ``plan_job``, ``finish_job``);
* one **lease per datum set** (:class:`SetLease`), written by the runner of that set when it
  starts (with a fresh token and the try number: the previous lease's plus one) and, throttled
  to one per :data:`HEARTBEAT_EVERY` seconds, after each datum. N sets of one job running at
  once on one or many machines each speak for themselves.

A beat is dead when it names a process of this machine that no longer exists, when it is
older than :func:`stale_after`, or when its set ended (``done``). A job's runner is alive while
any of its beats is (:func:`live_beat`).

A runner that finds its set's lease taken by another (it was taken for dead: a zombie task,
a long pause) stops before writing another result (:class:`SetTakenOver`), so a resume never
mixes in results of the runner it replaced; the window left is one datum's result being
checked and written, which both runners computed from the same inputs. The check costs a read
only when the runner's own lease write is 5 s old or more (a takeover needs a stale lease).
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass

from airflow_datum_provider.core.errors import SetBusy, SetTakenOver
from airflow_datum_provider.core.jobs import _layout
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords
from airflow_datum_provider.core.spec import PipelineSpec
from airflow_datum_provider.core.store import Store

__all__ = [
    "HEARTBEAT_EVERY",
    "STALE_AFTER",
    "STOPPED_REASON",
    "Beat",
    "SetLease",
    "heartbeat",
    "live_beat",
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Beat:
    """One heartbeat or set lease as read back."""

    runner: str
    time: float
    try_number: int = 0
    token: str = ""
    done: bool = False

    @classmethod
    def read(cls, store: Store, key: str) -> Beat | None:
        """The beat at ``key``; ``None`` if there is none (an unreadable one counts as none)."""
        try:
            raw = json.loads(store.backend.read(key))
            return cls(
                runner=str(raw.get("runner", "")),
                time=float(raw.get("time", 0.0)),
                try_number=int(raw.get("try", 0)),
                token=str(raw.get("token", "")),
                done=bool(raw.get("done", False)),
            )
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, AttributeError):
            return None

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "runner": self.runner,
                "time": self.time,
                "try": self.try_number,
                "token": self.token,
                "done": self.done,
            }
        ).encode()

    @property
    def age(self) -> float:
        return max(0.0, time.time() - self.time)

    @property
    def on_this_host(self) -> bool:
        return self.runner.partition("@")[2] == socket.gethostname()

    @property
    def own(self) -> bool:
        """Whether this very process wrote the beat."""
        return self.runner == runner_id()

    def process_gone(self) -> bool:
        """Whether the beat names a process of this machine that no longer exists."""
        pid = self.runner.partition("@")[0]
        if not self.on_this_host or not pid.isdigit() or int(pid) == os.getpid():
            return False
        return not _process_exists(int(pid))

    def alive(self, stale: float) -> bool:
        return not self.done and not self.process_gone() and self.age <= stale

    def describe(self) -> str:
        """``pid@host, 3 s ago``."""
        return f"{self.runner}, {round(self.age)} s ago"


def _process_exists(pid: int) -> bool:
    """Whether ``pid`` runs here; a zombie (dead, not yet reaped by its parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in (b"Z", b"X")


def heartbeat(store: Store, job: JobInfo, *, force: bool = True) -> None:
    """Record that a runner (``pid@host``) is working on the job; throttled unless ``force``."""
    last = _last_beat.get(job.id)
    tick = time.monotonic()
    if not force and last is not None and tick - last < HEARTBEAT_EVERY:
        return
    _last_beat[job.id] = tick
    beat = Beat(runner=runner_id(), time=time.time())
    store.backend.write(_layout.heartbeat(job.pipeline, job.id), beat.to_bytes())


def stale_after(spec: PipelineSpec) -> float:
    """How old a heartbeat may be while a datum runs: one datum's longest possible run."""
    if spec.datum_timeout is None:
        return STALE_AFTER
    runs = spec.datum_tries * (2 if spec.transform.err_cmd else 1)
    return max(STALE_AFTER, spec.datum_timeout.total_seconds() * runs + HEARTBEAT_EVERY)


def live_beat(store: Store, job: JobInfo, *, ignore_own: bool = False) -> Beat | None:
    """The freshest live beat (heartbeat or set lease) of the job, or ``None``.

    ``ignore_own`` skips beats this process wrote (a resume in the process that ran the job).
    """
    stale = stale_after(JobRecords(store).job_pipeline(job).spec)
    keys = [_layout.heartbeat(job.pipeline, job.id)]
    leases = _layout.leases_dir(job.pipeline, job.id)
    keys.extend(f"{leases}/{name}" for name in store.backend.list(leases))
    best: Beat | None = None
    for key in keys:
        beat = Beat.read(store, key)
        if beat is None or not beat.alive(stale) or (ignore_own and beat.own):
            continue
        if best is None or beat.time > best.time:
            best = beat
    return best


def runner_alive(store: Store, job: JobInfo) -> bool:
    """Whether some runner still works on the job (module docstring)."""
    return live_beat(store, job) is not None


class SetLease:
    """A runner's hold on one datum set of a job (see the module docstring)."""

    def __init__(self, store: Store, job: JobInfo, number: int, *, stale: float) -> None:
        self.store = store
        self.job = job
        self.number = number
        self.stale = stale
        self.key = _layout.lease(job.pipeline, job.id, number)
        self.token = uuid.uuid4().hex
        self.try_number = 0
        self._last = 0.0

    def acquire(self) -> Beat | None:
        """Take the set; returns the previous, dead lease (its leftovers may need clean-up).

        Raises :class:`SetBusy` when another live runner holds it.
        """
        previous = Beat.read(self.store, self.key)
        if previous is not None and not previous.own and previous.alive(self.stale):
            raise SetBusy(
                f"set {self.number} of job {self.job.id} is still running "
                f"(lease {previous.describe()})",
                job=self.job.id,
                set=self.number,
            )
        self.try_number = (previous.try_number if previous else 0) + 1
        self._write(done=False)
        return previous

    def _write(self, *, done: bool) -> None:
        beat = Beat(
            runner=runner_id(),
            time=time.time(),
            try_number=self.try_number,
            token=self.token,
            done=done,
        )
        self.store.backend.write(self.key, beat.to_bytes())
        self._last = time.monotonic()

    def check(self) -> None:
        """Raise :class:`SetTakenOver` if another runner has taken the set since.

        Free until our lease is :data:`HEARTBEAT_EVERY` seconds old: another runner takes the
        set only once the lease is stale (far older than that), so a recent write of ours
        means nobody has; one read otherwise (what keeps an S3 store at one GET per 5 s).
        """
        if time.monotonic() - self._last < HEARTBEAT_EVERY:
            return
        current = Beat.read(self.store, self.key)
        if current is None or current.token != self.token:
            by = f" by {current.runner} (try {current.try_number})" if current else ""
            raise SetTakenOver(
                f"set {self.number} of job {self.job.id} was taken over{by}; this runner "
                "stops without writing more results",
                job=self.job.id,
                set=self.number,
            )

    def renew(self) -> None:
        """Refresh the lease if the last write is :data:`HEARTBEAT_EVERY` seconds old."""
        if time.monotonic() - self._last >= HEARTBEAT_EVERY:
            self._write(done=False)

    def release(self) -> None:
        """Mark the set ended by this runner (the lease then counts as dead)."""
        current = Beat.read(self.store, self.key)
        if current is not None and current.token == self.token:
            self._write(done=True)


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
