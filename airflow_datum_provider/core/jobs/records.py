"""Pipeline and job records: what they hold and how they are read and written.

Where each record lives is in :mod:`~airflow_datum_provider.core.jobs._layout`. A job's id is
its output commit's id (Pachyderm's global id): the output commit is opened when the job
starts, so user code sees ``PACH_OUTPUT_COMMIT_ID`` and the job's id in one value. Records hold
no local paths, so any machine with the store URL can continue a job.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import IO, Any

from airflow_datum_provider.core._failpoints import failpoint
from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import (
    JobNotFound,
    PipelineError,
    PipelineNotFound,
    SetTakenOver,
)
from airflow_datum_provider.core.incremental import IndexRecord
from airflow_datum_provider.core.jobs import _layout
from airflow_datum_provider.core.spec import PipelineSpec
from airflow_datum_provider.core.states import (
    DATUM_STATES,
    JOB_STATES,
    TERMINAL_STATES,
    DatumState,
    JobState,
)
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.worker.policy import DatumResult

JSON_LINE = json.JSONEncoder(separators=(",", ":"))
"""``json.dumps(..., separators=(",", ":"))`` without a new encoder per call."""

__all__ = [
    "CHECKPOINT_DATUMS",
    "CHECKPOINT_LOG_CHARS",
    "CHECKPOINT_SECONDS",
    "JOB_STATES",
    "RECORD_VERSION",
    "TERMINAL_STATES",
    "CheckpointPolicy",
    "JobInfo",
    "JobRecords",
    "PipelineInfo",
    "SetCheckpoint",
    "SetRecords",
    "now",
]

RECORD_VERSION = 2
"""Written into every pipeline and job record as ``record``; readers ignore unknown keys, so an
older worker reads what a newer one wrote during a rolling upgrade (and keeps what it knows).

Version 2 keeps a set's results and logs in checkpoint parts (:class:`SetCheckpoint`) instead of
one object per datum; this release still reads the per-datum objects of version 1."""

CHECKPOINT_DATUMS = 100
"""A set's runner publishes a checkpoint part after this many new results (at the latest)..."""
CHECKPOINT_SECONDS = 5.0
"""...or once this many seconds passed since its last part (checked as each datum ends)."""
CHECKPOINT_LOG_CHARS = 4 << 20
"""Pending log text and results beyond this many characters are published at once (a datum
still running included), so what a set holds in memory stays bounded."""


def now() -> str:
    """The current UTC time as an ISO 8601 stamp with milliseconds (what records hold)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineInfo:
    """A created pipeline: its spec, its salt and how often it was updated."""

    name: str
    spec: PipelineSpec
    salt: str
    version: int = 1
    created: str = ""
    updated: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": RECORD_VERSION,
            "name": self.name,
            "spec": self.spec.to_dict(),
            "salt": self.salt,
            "version": self.version,
            "created": self.created,
            "updated": self.updated,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> PipelineInfo:
        return cls(
            name=raw["name"],
            spec=PipelineSpec.from_dict(raw["spec"]),
            salt=raw["salt"],
            version=raw.get("version", 1),
            created=raw.get("created", ""),
            updated=raw.get("updated", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class JobInfo:
    """One job: state machine, counters, timings and provenance.

    ``base_commit`` is the output branch's head when the job started (``""``: the branch was
    empty; ``None``: a record written before the field existed). The job plans against it and
    lands only on it.
    """

    id: str
    pipeline: str
    state: JobState = "created"
    reason: str = ""
    created: str = ""
    started: str = ""
    finished: str = ""
    restarts: int = 0
    processed: int = 0
    skipped: int = 0
    failed: int = 0
    recovered: int = 0
    total: int = 0
    download_time: float = 0.0
    process_time: float = 0.0
    upload_time: float = 0.0
    download_bytes: int = 0
    upload_bytes: int = 0
    inputs: tuple[str, ...] = ()
    output_repo: str = ""
    output_branch: str = "master"
    output_commit: str = ""
    base_commit: str | None = None
    base_job: str = ""
    sets: int = 0
    planned: bool = False
    pipeline_version: int = 1
    salt: str = ""
    failed_datums: tuple[str, ...] = field(default=())
    origin: str = ""

    @property
    def done(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def progress(self) -> str:
        """``processed + skipped / total`` (``+ recovered`` when any), as pachctl prints it."""
        text = f"{self.processed} + {self.skipped}"
        if self.recovered:
            text += f" + {self.recovered}"
        return f"{text} / {self.total}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "record": RECORD_VERSION,
            "id": self.id,
            "pipeline": self.pipeline,
            "state": self.state,
            "reason": self.reason,
            "created": self.created,
            "started": self.started,
            "finished": self.finished,
            "restarts": self.restarts,
            "processed": self.processed,
            "skipped": self.skipped,
            "failed": self.failed,
            "recovered": self.recovered,
            "total": self.total,
            "download_time": self.download_time,
            "process_time": self.process_time,
            "upload_time": self.upload_time,
            "download_bytes": self.download_bytes,
            "upload_bytes": self.upload_bytes,
            "inputs": list(self.inputs),
            "output_repo": self.output_repo,
            "output_branch": self.output_branch,
            "output_commit": self.output_commit,
            "base_commit": self.base_commit,
            "base_job": self.base_job,
            "sets": self.sets,
            "planned": self.planned,
            "pipeline_version": self.pipeline_version,
            "salt": self.salt,
            "failed_datums": list(self.failed_datums),
            "origin": self.origin,
        }

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> JobInfo:
        """Read a job record; keys this version does not know are ignored."""
        data = {k: v for k, v in raw.items() if k in _JOB_FIELDS}
        data["inputs"] = tuple(data.get("inputs", ()))
        data["failed_datums"] = tuple(data.get("failed_datums", ()))
        return cls(**data)


_JOB_FIELDS = frozenset(JobInfo.__dataclass_fields__)
_KNOWN_STATES: dict[str, DatumState] = {state: state for state in DATUM_STATES}


_SPILL = 8 << 20


class LinesWriter:
    """Streams JSON lines, gzipped, into one store object: memory stays bounded at any size.

    Up to 8 MiB of compressed output is kept in memory and written in one piece; beyond that
    it goes to a temporary object that is moved into place on :meth:`close`.
    """

    mode = "wb"

    def __init__(self, backend: Any, key: str) -> None:
        self._backend = backend
        self._key = key
        self._buffer = io.BytesIO()
        self._temp: str | None = None
        self._out: IO[bytes] = self._buffer
        self._gzip = gzip.GzipFile(fileobj=self, mode="wb", compresslevel=1, mtime=0)  # type: ignore[call-overload]
        self._pending: list[str] = []
        self.count = 0

    def write(self, data: bytes) -> int:
        """The compressed side (what ``GzipFile`` writes to)."""
        if self._temp is None and self._buffer.tell() + len(data) > _SPILL:
            self._temp, self._out = self._backend.open_write_temp()
            self._out.write(self._buffer.getvalue())
            self._buffer = io.BytesIO()
        return self._out.write(data)

    def flush(self) -> None:
        """Nothing to do: the data is written on :meth:`close`."""

    def add(self, item: dict[str, Any]) -> None:
        self.add_line(JSON_LINE.encode(item))

    def add_line(self, line: str) -> None:
        """Add one JSON line (without its newline)."""
        self._pending.append(line)
        self.count += 1
        if len(self._pending) >= 2048:  # compress in batches: one call per line is slower
            self._drain()

    def _drain(self) -> None:
        if self._pending:
            self._pending.append("")
            self._gzip.write("\n".join(self._pending).encode())
            self._pending = []

    def close(self) -> None:
        self._drain()
        self._gzip.close()
        if self._temp is None:
            self._backend.write(self._key, self._buffer.getvalue())
            return
        self._out.close()
        self._backend.move_into(self._temp, self._key)

    def abort(self) -> None:
        """Drop what was written (nothing reaches ``key``)."""
        if self._temp is not None:
            self._out.close()
            with contextlib.suppress(OSError):
                self._backend.delete(self._temp)


def _unlines(data: bytes) -> Iterator[dict[str, Any]]:
    for line in gzip.decompress(data).decode().splitlines():
        if line:
            yield json.loads(line)


@dataclass(frozen=True, slots=True)
class CheckpointPolicy:
    """When a set's runner publishes a checkpoint part (see :class:`SetCheckpoint`).

    ``datums`` new results or ``seconds`` since the last part, whichever comes first; both from
    ``DATUM_CHECKPOINT_DATUMS`` / ``DATUM_CHECKPOINT_SECONDS`` when set (``1`` / ``0``: a part
    after every datum, the most a crash can lose is the datum in flight).
    """

    datums: int = CHECKPOINT_DATUMS
    seconds: float = CHECKPOINT_SECONDS
    log_chars: int = CHECKPOINT_LOG_CHARS

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CheckpointPolicy:
        env = os.environ if env is None else env
        datums, seconds = CHECKPOINT_DATUMS, CHECKPOINT_SECONDS
        raw = env.get("DATUM_CHECKPOINT_DATUMS", "").strip()
        if raw:
            try:
                datums = int(raw)
            except ValueError:
                datums = 0
            if datums < 1:
                raise PipelineError(
                    f"DATUM_CHECKPOINT_DATUMS={raw!r:.40}: expected a whole number >= 1"
                )
        raw = env.get("DATUM_CHECKPOINT_SECONDS", "").strip()
        if raw:
            try:
                seconds = float(raw)
            except ValueError:
                seconds = -1.0
            if not 0 <= seconds < 1e9:
                raise PipelineError(f"DATUM_CHECKPOINT_SECONDS={raw!r:.40}: expected seconds >= 0")
        return cls(datums=datums, seconds=seconds)


Guard = Callable[[bool], None]
"""Called before a part is published, with whether it holds results: raises to refuse it
(:class:`SetTakenOver` when the set's lease was lost), flushes what the results reference."""


class SetCheckpoint:
    """The records of one set's try: results and log pieces, published as immutable parts.

    Each part is one gzipped JSON-lines object ``results/<set>/<try>-<seq>.jsonl.gz`` written
    with a create-if-absent, so two runners never overwrite each other's parts (a second runner
    that got the same try number loses the create and stops, :class:`SetTakenOver`). Lines:
    a header ``{"part": 2, ...}``, ``{"l": <datum>, "t": <text>}`` log pieces (a datum's pieces
    in order, across parts) and ``{"r": <DatumResult dict>}`` results. A part is published when
    :meth:`due` (see :class:`CheckpointPolicy`), at the end of the set, and at once when pending
    text passes ``log_chars`` (then holding the log pieces only: results wait for their
    outputs). ``guard`` runs first (the engine checks its lease and flushes blobs there).
    Thread-safe: a set's datums may run on several threads.
    """

    def __init__(
        self,
        backend: Any,
        job: JobInfo,
        number: int,
        try_number: int,
        *,
        policy: CheckpointPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        guard: Guard | None = None,
    ) -> None:
        self._backend = backend
        self._job = job
        self.number = number
        self.try_number = try_number
        self.policy = policy or CheckpointPolicy()
        self._clock = clock
        self._guard = guard
        self._lock = threading.RLock()
        self._results: list[str] = []
        self._logs: dict[str, list[str]] = {}
        self._chars = 0
        self._error: Exception | None = None
        self.seq = 0
        self.last = clock()
        self.parts: list[str] = []
        """Keys of the parts published so far."""

    def log(self, datum_id: str, text: str) -> None:
        """Append to a datum's log (published with the next part).

        Never raises: it runs in the threads that drain a command's pipes; a failed publish
        is raised by the next :meth:`add` or :meth:`flush`, and the log text pending then is
        dropped.
        """
        if not text:
            return
        with self._lock:
            self._logs.setdefault(datum_id, []).append(text)
            self._chars += len(text)
            if self._chars >= self.policy.log_chars and self._error is None:
                try:
                    self._publish(with_results=False)
                except Exception as exc:
                    self._error = exc
            if self._error is not None:
                self._logs = {}
                self._chars = sum(len(line) for line in self._results)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def writer(self, datum_id: str) -> DatumLogWriter:
        """A text stream of one datum's log into this checkpoint."""
        return DatumLogWriter(self, datum_id)

    def add(self, result: DatumResult) -> None:
        """Record one datum's result (published with the next part)."""
        line = JSON_LINE.encode({"r": result.to_dict()})
        with self._lock:
            self._raise_error()
            self._results.append(line)
            self._chars += len(line)

    @property
    def pending(self) -> int:
        """Results recorded and not published yet."""
        return len(self._results)

    def due(self) -> bool:
        """Whether the policy wants a part now."""
        with self._lock:
            if not self._results and not self._logs:
                return False
            return (
                len(self._results) >= self.policy.datums
                or self._chars >= self.policy.log_chars
                or self._clock() - self.last >= self.policy.seconds
            )

    def flush(self) -> str | None:
        """Publish everything pending as one part (nothing pending: nothing written)."""
        with self._lock:
            self._raise_error()
            return self._publish(with_results=True)

    def drop(self) -> None:
        """Forget what is pending (a runner that lost its set must not publish it)."""
        with self._lock:
            self._results, self._logs, self._chars, self._error = [], {}, 0, None

    def _publish(self, *, with_results: bool) -> str | None:
        results = self._results if with_results else []
        if not results and not self._logs:
            return None
        if self._guard is not None:
            self._guard(bool(results))
        header = {
            "part": RECORD_VERSION,
            "set": self.number,
            "try": self.try_number,
            "seq": self.seq,
            "results": len(results),
        }
        lines = [JSON_LINE.encode(header)]
        lines.extend(
            JSON_LINE.encode({"l": ident, "t": "".join(texts)})
            for ident, texts in self._logs.items()
        )
        lines.extend(results)
        lines.append("")
        data = gzip.compress("\n".join(lines).encode(), compresslevel=1, mtime=0)
        job = self._job
        key = _layout.part(job.pipeline, job.id, self.number, self.try_number, self.seq)
        if not self._backend.create(key, data):
            raise SetTakenOver(
                f"set {self.number} of job {job.id}: checkpoint part {key} was written by "
                f"another runner of try {self.try_number}; this runner stops without "
                "writing more results",
                job=job.id,
                set=self.number,
            )
        self.seq += 1
        self.parts.append(key)
        self._logs = {}
        if with_results:
            self._results = []
            self._chars = 0
        else:
            self._chars = sum(len(line) for line in self._results)
        self.last = self._clock()
        failpoint("after-flush")
        return key


class DatumLogWriter(io.TextIOBase):
    """One datum's log as a text stream: every write goes to its :class:`SetCheckpoint`."""

    def __init__(self, checkpoint: SetCheckpoint, datum_id: str) -> None:
        super().__init__()
        self._checkpoint = checkpoint
        self._datum = datum_id

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:  # type: ignore[override]
        self._checkpoint.log(self._datum, text)
        return len(text)


@dataclass(slots=True)
class SetRecords:
    """What a set's records say: each datum's latest result, and its log (latest try's)."""

    results: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, str] = field(default_factory=dict)
    parts: int = 0
    """Checkpoint parts read (record 2)."""


def _parse_part(
    data: bytes, key: str, *, logs: bool = True
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    results: list[dict[str, Any]] = []
    pieces: list[tuple[str, str]] = []
    try:
        text = gzip.decompress(data).decode()
        for line in text.split("\n"):
            if not line or (not logs and line.startswith('{"l":')):
                continue
            item = json.loads(line)
            if "r" in item:
                results.append(item["r"])
            elif "l" in item:
                pieces.append((str(item["l"]), str(item.get("t", ""))))
    except (OSError, EOFError, ValueError, UnicodeDecodeError) as exc:
        raise PipelineError(f"checkpoint part {key} is corrupt ({exc})") from None
    return results, pieces


class JobRecords:
    """Reads and writes pipeline and job records in a store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.backend = store.backend

    # -- pipelines ----------------------------------------------------------------------

    def add_pipeline_version(self, info: PipelineInfo) -> bool:
        """Write version ``info.version`` of a pipeline unless it exists (a compare-and-swap).

        Versions are immutable: a job reads its own (:meth:`pipeline_version`) in every step.
        ``pipeline.json`` then mirrors the newest version for readers of older releases.
        Returns ``False`` when another writer created that version first.
        """
        data = json.dumps(info.to_dict()).encode()
        if not self.backend.create(_layout.version(info.name, info.version), data):
            return False
        self.backend.write(_layout.pipeline(info.name), data)
        return True

    def _versions(self, name: str) -> list[int]:
        names = self.backend.list(_layout.versions_dir(name))
        return sorted(int(n[:-5]) for n in names if n.endswith(".json") and n[:-5].isdigit())

    def pipeline(self, name: str) -> PipelineInfo:
        """The pipeline's newest version."""
        versions = self._versions(name)
        key = _layout.version(name, versions[-1]) if versions else _layout.pipeline(name)
        try:
            raw = json.loads(self.backend.read(key))
        except FileNotFoundError:
            raise PipelineNotFound(f"pipeline {name!r} not found", pipeline=name) from None
        return PipelineInfo.from_dict(raw)

    def pipeline_version(self, name: str, version: int) -> PipelineInfo:
        """Version ``version`` of a pipeline: what a job created under it runs.

        A store written before versions were kept has only ``pipeline.json``: that is read.
        """
        try:
            raw = json.loads(self.backend.read(_layout.version(name, version)))
        except FileNotFoundError:
            return self.pipeline(name)
        return PipelineInfo.from_dict(raw)

    def job_pipeline(self, job: JobInfo) -> PipelineInfo:
        """The pipeline version the job was created under."""
        return self.pipeline_version(job.pipeline, job.pipeline_version)

    def pipeline_exists(self, name: str) -> bool:
        return self.backend.exists(_layout.pipeline(name)) or bool(self._versions(name))

    def pipelines(self) -> list[PipelineInfo]:
        return [
            self.pipeline(name)
            for name in self.backend.list(_layout.pipelines())
            if self.pipeline_exists(name)
        ]

    def delete_pipeline(self, name: str) -> None:
        self.pipeline(name)
        self.backend.delete_tree(_layout.pipeline_dir(name))

    # -- jobs ---------------------------------------------------------------------------

    def new_job_id(self) -> str:
        return uuid.uuid4().hex

    def save_job(self, job: JobInfo) -> None:
        key = _layout.job(job.pipeline, job.id)
        self.backend.write(key, json.dumps(job.to_dict()).encode())

    def update_job(self, job: JobInfo, **changes: Any) -> JobInfo:
        updated = replace(job, **changes)
        self.save_job(updated)
        return updated

    def job(self, pipeline: str, job_id: str) -> JobInfo:
        try:
            raw = json.loads(self.backend.read(_layout.job(pipeline, job_id)))
        except FileNotFoundError:
            raise JobNotFound(
                f"job {job_id!r} of pipeline {pipeline!r} not found", job=job_id
            ) from None
        return JobInfo.from_dict(raw)

    def find_job(self, job_id: str, pipeline: str | None = None) -> JobInfo:
        """A job by id, searching every pipeline when none is given."""
        names = [pipeline] if pipeline else self.backend.list(_layout.pipelines())
        for name in names:
            if self.backend.exists(_layout.job(name, job_id)):
                return self.job(name, job_id)
        raise JobNotFound(f"job {job_id!r} not found", job=job_id)

    def jobs(self, pipeline: str | None = None) -> list[JobInfo]:
        """Jobs newest first."""
        names = [pipeline] if pipeline else self.backend.list(_layout.pipelines())
        result = []
        for name in names:
            for job_id in self.backend.list(_layout.jobs_dir(name)):
                try:
                    result.append(self.job(name, job_id))
                except JobNotFound:
                    continue
        return sorted(result, key=lambda j: j.created, reverse=True)

    # -- datum sets, checkpoints, index -------------------------------------------------

    def write_set(self, job: JobInfo, number: int, datums: Iterable[Datum]) -> None:
        writer = self.set_writer(job, number)
        for datum in datums:
            writer.add(datum.to_dict())
        writer.close()

    def set_writer(self, job: JobInfo, number: int) -> LinesWriter:
        """A streaming writer of one datum set (lines of ``Datum.to_dict()``)."""
        return LinesWriter(self.backend, _layout.datum_set(job.pipeline, job.id, number))

    def skipped_writer(self, job: JobInfo) -> LinesWriter:
        """A streaming writer of the job's skipped datums."""
        return LinesWriter(self.backend, _layout.skipped(job.pipeline, job.id))

    def read_set(self, job: JobInfo, number: int) -> list[Datum]:
        key = _layout.datum_set(job.pipeline, job.id, number)
        return [Datum.from_dict(raw) for raw in _unlines(self.backend.read(key))]

    def set_hashes(self, job: JobInfo, number: int) -> dict[str, str]:
        """``{datum id: datum hash}`` of one set, read without building the datums."""
        key = _layout.datum_set(job.pipeline, job.id, number)
        return {raw["id"]: raw["hash"] for raw in _unlines(self.backend.read(key))}

    def set_numbers(self, job: JobInfo) -> list[int]:
        names = self.backend.list(_layout.sets_dir(job.pipeline, job.id))
        return sorted(int(n.split(".")[0]) for n in names)

    def write_skipped(self, job: JobInfo, datums: Iterable[Datum]) -> None:
        writer = self.skipped_writer(job)
        for datum in datums:
            writer.add(datum.to_dict())
        writer.close()

    def read_skipped(self, job: JobInfo) -> Iterator[Datum]:
        key = _layout.skipped(job.pipeline, job.id)
        try:
            data = self.backend.read(key)
        except FileNotFoundError:
            return
        for raw in _unlines(data):
            yield Datum.from_dict(raw)

    def _result_dir(self, job: JobInfo, number: int) -> str:
        return _layout.results_dir(job.pipeline, job.id, number)

    def checkpoint(
        self,
        job: JobInfo,
        number: int,
        try_number: int,
        *,
        policy: CheckpointPolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
        guard: Guard | None = None,
    ) -> SetCheckpoint:
        """The writer of set ``number``'s records for try ``try_number`` (:class:`SetCheckpoint`)."""
        return SetCheckpoint(
            self.backend, job, number, try_number, policy=policy, clock=clock, guard=guard
        )

    def write_result(self, job: JobInfo, number: int, result: DatumResult) -> None:
        """Checkpoint one datum's result in a part of its own (tests, tools; the engine batches)."""
        part = self.checkpoint(job, number, result.try_number or 1)
        names = self._list(self._result_dir(job, number))
        orders = [o for o in map(_layout.part_order, names) if o and o[0] == part.try_number]
        part.seq = max((seq for _, seq in orders), default=-1) + 1
        part.add(result)
        part.flush()

    def _list(self, key: str) -> list[str]:
        try:
            return self.backend.list(key)
        except FileNotFoundError:
            return []

    def _part(
        self, key: str, *, logs: bool = True
    ) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
        """One checkpoint part, read and parsed; ``logs=False`` skips its log pieces.

        Not cached: a merge of a million datums reads each part once, and holding them all
        would cost their size in memory.
        """
        return _parse_part(self.backend.read(key), key, logs=logs)

    def set_records(self, job: JobInfo, number: int, *, logs: bool = True) -> SetRecords:
        """One set's results and logs: one read per checkpoint part.

        Each datum's result is the one of the latest try (then the latest part) that has one;
        its log is the pieces of the latest try that logged it. Per-datum objects of record 1
        (``<datum>.json``; their logs under ``logs/``) are read too. ``logs=False``: results
        only (what the merge and the views need; a set's logs may be large).
        """
        base = self._result_dir(job, number)
        found = SetRecords()
        order: dict[str, tuple[int, int]] = {}
        log_try: dict[str, int] = {}
        pieces: dict[str, list[str]] = {}
        parts: list[tuple[tuple[int, int], str]] = []
        for name in self._list(base):
            rank = _layout.part_order(name)
            if rank is not None:
                parts.append((rank, name))
            elif name.endswith(".json"):  # record 1: one object per datum
                raw = json.loads(self.backend.read(f"{base}/{name}"))
                ident = name[:-5]
                rank = (int(raw.get("try", 0) or 0), -1)
                if ident not in order or rank >= order[ident]:
                    order[ident] = rank
                    found.results[ident] = raw
        for rank, name in sorted(parts):
            results, pieces_of_part = self._part(f"{base}/{name}", logs=logs)
            found.parts += 1
            for raw in results:
                ident = str(raw["datum_id"])
                if ident not in order or rank >= order[ident]:
                    order[ident] = rank
                    found.results[ident] = raw
            for ident, text in pieces_of_part:
                if log_try.get(ident, -1) < rank[0]:
                    log_try[ident] = rank[0]
                    pieces[ident] = []
                pieces[ident].append(text)
        found.logs = {ident: "".join(texts) for ident, texts in pieces.items()}
        return found

    def results(self, job: JobInfo, number: int) -> dict[str, dict[str, Any]]:
        """Checkpointed results of one set, by datum id, as raw dicts (:meth:`datum_results`)."""
        return self.set_records(job, number, logs=False).results

    def datum_results(self, job: JobInfo, number: int) -> dict[str, DatumResult]:
        """Checkpointed results of one set, by datum id, read through :class:`DatumResult`."""
        return {k: DatumResult.from_dict(v) for k, v in self.results(job, number).items()}

    def all_datum_results(self, job: JobInfo) -> Iterator[tuple[int, DatumResult]]:
        """Every checkpointed result of the job with its set number."""
        for number in self.set_numbers(job):
            for result in self.datum_results(job, number).values():
                yield number, result

    def all_results(self, job: JobInfo) -> Iterator[tuple[int, dict[str, Any]]]:
        for number in self.set_numbers(job):
            for result in self.results(job, number).values():
                yield number, result

    def write_log(self, job: JobInfo, datum_id: str, text: str) -> None:
        """Write a datum's whole log as one record-1 object.

        For tests of old jobs and tools; the engine streams logs into its checkpoint parts.
        """
        key = _layout.log(job.pipeline, job.id, datum_id)
        self.backend.write(key, text.encode())

    def _old_log_ids(self, job: JobInfo) -> list[str]:
        return self._list(_layout.logs_dir(job.pipeline, job.id))

    def set_logs(self, job: JobInfo, number: int) -> dict[str, str]:
        """The logs of one set's datums, by datum id (record 1 logs of its datums included)."""
        logs = self.set_records(job, number).logs
        old = set(self._old_log_ids(job)) - set(logs)
        if old:
            for datum in self.read_set(job, number):
                if datum.id in old:
                    logs[datum.id] = self._read_old_log(job, datum.id)
        return logs

    def _read_old_log(self, job: JobInfo, datum_id: str) -> str:
        key = _layout.log(job.pipeline, job.id, datum_id)
        try:
            return self.backend.read(key).decode(errors="replace")
        except FileNotFoundError:
            return ""

    def read_log(self, job: JobInfo, datum_id: str) -> str:
        """A datum's stored stdout / stderr (``""`` when it has none)."""
        for number in self.set_numbers(job):
            text = self.set_records(job, number).logs.get(datum_id)
            if text is not None:
                return text
        return self._read_old_log(job, datum_id)

    def log_ids(self, job: JobInfo) -> list[str]:
        """Ids of the datums that have a log."""
        ids = set(self._old_log_ids(job))
        for number in self.set_numbers(job):
            ids.update(self.set_records(job, number).logs)
        return sorted(ids)

    def write_index(self, job: JobInfo, records: Iterable[tuple[str, str, DatumState]]) -> None:
        text = "".join(f"{i}\t{h}\t{s}\n" for i, h, s in sorted(records))
        key = _layout.index(job.pipeline, job.id)
        self.backend.write(key, gzip.compress(text.encode(), compresslevel=1, mtime=0))

    def read_index(self, job: JobInfo) -> dict[str, IndexRecord]:
        """The job's datum index; a state this version does not know reads as ``failed``."""
        key = _layout.index(job.pipeline, job.id)
        index: dict[str, IndexRecord] = {}
        known = _KNOWN_STATES.get
        for line in gzip.decompress(self.backend.read(key)).decode().splitlines():
            ident, digest, state = line.split("\t")
            index[ident] = IndexRecord(digest, known(state, "failed"))
        return index

    def clear_plan(self, job: JobInfo) -> None:
        """Drop a half-written plan (sets and skipped datums) before planning again."""
        self.backend.delete_tree(_layout.sets_dir(job.pipeline, job.id))
        self.backend.delete(_layout.skipped(job.pipeline, job.id))

    def has_index(self, job: JobInfo) -> bool:
        return self.backend.exists(_layout.index(job.pipeline, job.id))
