"""Read-only views of jobs and datums for the CLI, the operators and a UI.

:func:`live_job` is a job with its counters summed from the per-datum checkpoints (the record
holds them only once the job merged); :func:`datum_views` lists every datum of a job with its
:data:`~airflow_datum_provider.core.states.DatumStatus` and checkpointed result.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords
from airflow_datum_provider.core.states import DatumStatus
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.worker.policy import DatumResult

__all__ = ["DatumView", "datum_views", "live_job"]


@dataclass(frozen=True, slots=True, kw_only=True)
class DatumView:
    """One datum of a job: where it is (``set``; ``None`` when skipped), status and result."""

    datum: Datum
    job: str
    pipeline: str
    set: int | None
    status: DatumStatus
    result: DatumResult | None = None

    @property
    def id(self) -> str:
        return self.datum.id

    @property
    def total_time(self) -> float | None:
        """Download + process + upload seconds; ``None`` before the datum has a result."""
        r = self.result
        return None if r is None else r.download_time + r.process_time + r.upload_time

    def _inputs(self) -> list[dict[str, Any]]:
        return [
            {"name": i.name, "repo": i.repo, "branch": i.branch, "commit": i.commit, "path": i.path}
            | ({} if i.rows is None else {"rows": list(i.rows)})  # a row-range datum
            for i in self.datum.inputs
        ]

    def to_summary_dict(self) -> dict[str, Any]:
        """The ``list datum`` JSON record."""
        r = self.result
        return {
            "id": self.datum.id,
            "hash": self.datum.hash,
            "state": self.status,
            "reason": r.reason if r else "",
            "inputs": self._inputs(),
            "process_time": r.process_time if r else 0.0,
            "attempts": r.attempts if r else 0,
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``inspect datum`` JSON record."""
        r = self.result or DatumResult(datum_id=self.datum.id, state="failed")
        return {
            "id": self.datum.id,
            "job": self.job,
            "pipeline": self.pipeline,
            "hash": self.datum.hash,
            "state": self.status,
            "reason": r.reason,
            "attempts": r.attempts,
            "started": r.started,
            "finished": r.finished,
            "download_time": r.download_time,
            "process_time": r.process_time,
            "upload_time": r.upload_time,
            "download_bytes": r.download_bytes,
            "upload_bytes": r.upload_bytes,
            "inputs": self._inputs(),
            "outputs": [{"path": o.path, "hash": o.hash, "size_bytes": o.size} for o in r.outputs],
            "log_tail": r.log_tail,
        }


def datum_views(store: Store, job: JobInfo) -> Iterator[DatumView]:
    """Every datum of ``job``: processed ones first, in processing order, then skipped ones."""
    records = JobRecords(store)
    for number in records.set_numbers(job):
        results = records.datum_results(job, number)
        for datum in records.read_set(job, number):
            result = results.get(datum.id)
            yield DatumView(
                datum=datum,
                job=job.id,
                pipeline=job.pipeline,
                set=number,
                status="pending" if result is None else result.state,
                result=result,
            )
    for datum in records.read_skipped(job):
        yield DatumView(datum=datum, job=job.id, pipeline=job.pipeline, set=None, status="skipped")


def live_job(store: Store, job: JobInfo) -> JobInfo:
    """A job with its counters, times and bytes summed from the per-datum checkpoints.

    The engine writes them into the job record when it merges; until then (running, or a
    runner killed mid-job) the checkpoints are the only account of what has finished.
    """
    if job.done or not job.planned:
        return job
    counts = {"success": 0, "failed": 0, "recovered": 0}
    times = [0.0, 0.0, 0.0]
    sizes = [0, 0]
    for _, r in JobRecords(store).all_datum_results(job):
        counts[r.state] += 1
        times[0] += r.download_time
        times[1] += r.process_time
        times[2] += r.upload_time
        sizes[0] += r.download_bytes
        sizes[1] += r.upload_bytes
    return replace(
        job,
        processed=counts["success"],
        failed=counts["failed"],
        recovered=counts["recovered"],
        download_time=times[0],
        process_time=times[1],
        upload_time=times[2],
        download_bytes=sizes[0],
        upload_bytes=sizes[1],
    )
