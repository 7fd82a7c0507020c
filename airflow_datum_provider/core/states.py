"""The one vocabulary of states: jobs, datums, and the incremental decision per datum.

Every record field and view that holds a state is typed with one of these ``Literal`` types,
so a misspelt word is a type error, and readers can list the words they must handle.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "DATUM_STATES",
    "DATUM_STATUSES",
    "DECISIONS",
    "JOB_STATES",
    "PROCESS",
    "SKIP",
    "TERMINAL_STATES",
    "DatumState",
    "DatumStatus",
    "Decision",
    "JobState",
]

JobState = Literal["created", "running", "finishing", "success", "failure", "killed", "unrunnable"]
"""A job's state: ``created → running → finishing → success | failure | killed``.

``unrunnable`` is reserved for inputs whose commits carry errors (Pachyderm's JOB_UNRUNNABLE).
"""

DatumState = Literal["success", "failed", "recovered"]
"""What processing a datum ended in: the state of its checkpointed result."""

DatumStatus = Literal["success", "failed", "recovered", "skipped", "pending"]
"""A datum of a job as views show it: its result's state, ``skipped`` (unchanged since the
base job, not run) or ``pending`` (planned, no result yet)."""

Decision = Literal["process", "skip"]
"""What the incremental diff decides for a datum."""

JOB_STATES: Final[tuple[JobState, ...]] = get_args(JobState)
TERMINAL_STATES: Final[frozenset[JobState]] = frozenset(
    {"success", "failure", "killed", "unrunnable"}
)
DATUM_STATES: Final[tuple[DatumState, ...]] = get_args(DatumState)
DATUM_STATUSES: Final[tuple[DatumStatus, ...]] = get_args(DatumStatus)
DECISIONS: Final[tuple[Decision, ...]] = get_args(Decision)
PROCESS: Final[Decision] = "process"
SKIP: Final[Decision] = "skip"
