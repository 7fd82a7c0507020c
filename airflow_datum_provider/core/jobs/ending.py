"""How a job ends: its counters folded from the checkpoints, then success or failure."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from airflow_datum_provider.core.datum import Datum
from airflow_datum_provider.core.errors import CommitFinishedError, DatumError
from airflow_datum_provider.core.jobs.records import JobInfo, JobRecords, now
from airflow_datum_provider.core.states import DatumState, JobState
from airflow_datum_provider.core.store import OWNER_JOB, Entry, Store
from airflow_datum_provider.core.worker.policy import output_entries

__all__ = ["Fold", "fail_job", "fold_results", "landed", "moved", "succeed_job"]


def landed(store: Store, job: JobInfo) -> bool:
    """Whether the job's output commit is finished (it landed before its runner died)."""
    if not job.output_commit:
        return False
    try:
        store.open_commit(job.output_repo, job.output_commit, owner=OWNER_JOB)
    except CommitFinishedError:
        return True
    except DatumError:
        return False
    return False


def moved(job: JobInfo, head: str | None) -> str:
    """The reason of a job whose output branch moved since it started."""
    return (
        f"output branch {job.output_repo}@{job.output_branch} moved since the job started "
        f"(from {job.base_commit or 'empty'} to {head or 'empty'})"
    )


@dataclass(slots=True)
class Fold:
    """The checkpointed results of a job, summed: what its record's counters say."""

    totals: dict[str, int]
    timings: dict[str, float]
    sizes: dict[str, int]
    failed: list[str]
    outputs: list[Entry]
    states: dict[str, DatumState]

    def counters(self) -> dict[str, Any]:
        return {
            "processed": self.totals["success"],
            "failed": self.totals["failed"],
            "recovered": self.totals["recovered"],
            "failed_datums": tuple(sorted(self.failed)),
            **self.timings,
            **self.sizes,
        }


def fold_results(records: JobRecords, job: JobInfo) -> Fold:
    """Sum every checkpointed result of the job."""
    fold = Fold(
        totals={"success": 0, "failed": 0, "recovered": 0},
        timings={"download_time": 0.0, "process_time": 0.0, "upload_time": 0.0},
        sizes={"download_bytes": 0, "upload_bytes": 0},
        failed=[],
        outputs=[],
        states={},
    )
    # Raw dicts, not DatumResult objects: a merge folds every result of the job once, and
    # only a successful datum's outputs become objects (entries).
    totals, timings, sizes = fold.totals, fold.timings, fold.sizes
    for _, raw in records.all_results(job):
        state = raw["state"]
        ident = raw["datum_id"]
        totals[state] = totals.get(state, 0) + 1
        fold.states[ident] = state
        timings["download_time"] += raw.get("download_time", 0.0)
        timings["process_time"] += raw.get("process_time", 0.0)
        timings["upload_time"] += raw.get("upload_time", 0.0)
        sizes["download_bytes"] += raw.get("download_bytes", 0)
        sizes["upload_bytes"] += raw.get("upload_bytes", 0)
        if state == "failed":
            fold.failed.append(ident)
        elif state == "success":
            fold.outputs.extend(output_entries(raw))
    return fold


def succeed_job(
    store: Store,
    job: JobInfo,
    skipped: list[Datum],
    states: Mapping[str, DatumState],
    hashes: Mapping[str, str],
    commit: str,
) -> JobInfo:
    """Write the job's datum index, then its record as ``success``."""
    records = JobRecords(store)
    index: list[tuple[str, str, DatumState]] = [(d.id, d.hash, "success") for d in skipped]
    index.extend((ident, hashes[ident], state) for ident, state in states.items())
    records.write_index(job, index)
    return records.update_job(job, state="success", reason="", finished=now(), output_commit=commit)


def fail_job(
    store: Store,
    job: JobInfo,
    reason: str,
    state: JobState = "failure",
    *,
    fold: bool = True,
    delete_commit: bool = True,
) -> JobInfo:
    """End a job ``state`` with its counters from the checkpoints, then drop its output commit.

    ``delete_commit=False`` keeps the commit (its runner is alive and deletes it itself).

    The record is written first: a crash in between leaves only an orphaned open commit, which
    the next ``start_job`` deletes (a job record that still said running / finishing with its
    commit gone could never be settled).
    """
    records = JobRecords(store)
    counters = fold_results(records, job).counters() if fold and job.planned else {}
    commit = job.output_commit
    job = records.update_job(
        job,
        state=state,
        reason=reason,
        finished=now(),
        output_commit="" if delete_commit else commit,
        **counters,
    )
    if delete_commit:
        with contextlib.suppress(DatumError):
            store.delete_commit(job.output_repo, commit, owner=OWNER_JOB)
    return job
