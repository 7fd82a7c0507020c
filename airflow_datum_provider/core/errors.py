"""The one exception tree of airflow-datum-provider.

::

    DatumError                      root; ``transient`` says whether a retry can help
    ├── SpecError (ValueError)      a pipeline spec, input or option is malformed (``field``, ``path``)
    │   └── GlobError               a glob pattern does not compile (``pattern``)
    ├── StoreError                  anything the versioned store refuses
    │   ├── StoreFormatError        the store's format-version file is missing a known version
    │   ├── InvalidPathError (ValueError)   a file path breaks Pachyderm's path rules (``path``)
    │   ├── InvalidNameError (ValueError)   a repo or branch name is not allowed (``name``)
    │   ├── InvalidURLError (ValueError)    a store URL no store can be opened at (``url``)
    │   ├── NotFoundError (LookupError)     repo / branch / commit / file does not exist
    │   │   ├── RepoNotFound
    │   │   ├── BranchNotFound
    │   │   ├── CommitNotFound
    │   │   └── FileNotFound
    │   ├── AlreadyExistsError      a repo or branch to create is there already
    │   ├── CommitFinishedError     a finished commit cannot be written to
    │   ├── CommitOwnedError        an open commit belongs to another writer (a job)
    │   ├── CorruptObjectError      a stored object does not match its name or format (``key``)
    │   └── ConflictError           a compare-and-swap lost a race (transient)
    ├── PipelineError               a pipeline or job cannot run as asked
    │   ├── PipelineNotFound (LookupError)
    │   ├── JobNotFound (LookupError)
    │   ├── JobFailed               the job ended failed / killed (``reason``)
    │   ├── JobKilled               the job was stopped or hit its ``job_timeout`` (``job``)
    │   ├── JobRunning              a live runner still works on the job (``runner``; transient)
    │   ├── SetBusy                 another live runner holds the datum set (transient)
    │   └── SetTakenOver            another runner took this runner's datum set over
    ├── OutputRejected              a datum's out/ holds what cannot be stored (``path``)
    ├── MergeError                  outputs cannot be merged (``path``)
    └── BatchError                  the batch executor (``airflow_datum_provider.batch``) refuses
        ├── ChunkingError (ValueError)  the data cannot be split into chunks (``data_type``)
        ├── BatchExecutionError     a chunk failed under fail-fast (``chunk_index``; ``__cause__``
        │   │                       is the chunk's original exception), or the batch cannot run
        │   └── BatchTimeoutError (TimeoutError)  a chunk or the whole batch ran out of time
        └── AggregationError        chunk results cannot be aggregated (``strategy``)

Each class declares the attributes it carries (``e.commit`` type-checks; unset ones read as
their default). Errors carry their data as attributes and pickle cleanly (they cross process
boundaries in worker pools and Airflow's XCom of failures).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AggregationError",
    "AlreadyExistsError",
    "BatchError",
    "BatchExecutionError",
    "BatchTimeoutError",
    "BranchNotFound",
    "ChunkingError",
    "CommitFinishedError",
    "CommitNotFound",
    "CommitOwnedError",
    "ConflictError",
    "CorruptObjectError",
    "DatumError",
    "FileNotFound",
    "GlobError",
    "InvalidNameError",
    "InvalidPathError",
    "InvalidURLError",
    "JobFailed",
    "JobKilled",
    "JobNotFound",
    "JobRunning",
    "MergeError",
    "NotFoundError",
    "OutputRejected",
    "PipelineError",
    "PipelineNotFound",
    "RepoNotFound",
    "SetBusy",
    "SetTakenOver",
    "SpecError",
    "StoreError",
    "StoreFormatError",
]


class DatumError(Exception):
    """Root of every error this package raises on purpose."""

    transient: bool = False

    def __init__(self, message: str, **attrs: Any) -> None:
        super().__init__(message)
        self.message = message
        self._attrs = attrs
        for key, value in attrs.items():
            setattr(self, key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self.message, self._attrs))

    def __str__(self) -> str:
        return self.message


def _rebuild(cls: type[DatumError], message: str, attrs: dict[str, Any]) -> DatumError:
    return cls(message, **attrs)


class SpecError(DatumError, ValueError):
    """A pipeline spec, input spec or option is malformed; ``field`` names where.

    An error in a spec file names the file first (``path``); the field it was about is then
    ``spec_field``.
    """

    field: str = ""
    document: str = ""
    spec_field: str = ""
    path: str = ""

    def __init__(self, message: str, *, field: str = "", **attrs: Any) -> None:
        super().__init__(f"{field}: {message}" if field else message, field=field, **attrs)
        self._bare = message

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._bare, self._attrs))


class GlobError(SpecError):
    """A glob pattern does not compile."""

    pattern: str = ""


class StoreError(DatumError):
    """The versioned store refuses an operation."""

    url: str = ""
    key: str = ""


class StoreFormatError(StoreError):
    """The store's format-version file names a version this package does not know."""

    version: Any = None


class InvalidPathError(StoreError, ValueError):
    """A file path breaks Pachyderm's path rules."""

    path: str = ""


class InvalidNameError(StoreError, ValueError):
    """A repo, branch or pipeline name is not allowed."""

    name: str = ""


class InvalidURLError(StoreError, ValueError):
    """A store URL names no store this package can open (protocol, bucket, user info)."""

    url: str = ""


class NotFoundError(StoreError, LookupError):
    """Something that was asked for does not exist."""

    repo: str = ""
    branch: str = ""
    commit: str = ""
    path: str = ""


class RepoNotFound(NotFoundError):
    """The repo does not exist."""


class BranchNotFound(NotFoundError):
    """The branch does not exist."""


class CommitNotFound(NotFoundError):
    """The commit does not exist."""


class FileNotFound(NotFoundError):
    """The file does not exist in that commit."""


class AlreadyExistsError(StoreError):
    """A repo or branch to create already exists."""

    repo: str = ""


class CommitFinishedError(StoreError):
    """A finished commit is immutable."""

    commit: str = ""


class CommitOwnedError(StoreError):
    """An open commit belongs to another writer (a job's output commit) and is refused."""

    repo: str = ""
    commit: str = ""


class CorruptObjectError(StoreError):
    """A stored object does not match its content hash or cannot be decoded; ``key`` names it."""


class ConflictError(StoreError):
    """A compare-and-swap lost a race; retrying can succeed."""

    repo: str = ""
    branch: str = ""
    pipeline: str = ""

    transient = True


class PipelineError(DatumError):
    """A pipeline or job cannot run as asked."""

    pipeline: str = ""
    job: str = ""
    path: str = ""


class PipelineNotFound(PipelineError, LookupError):
    """The pipeline does not exist."""


class JobNotFound(PipelineError, LookupError):
    """The job does not exist."""


class JobFailed(PipelineError):
    """A job ended in failure or was killed; ``reason`` is Pachyderm's reason text."""

    reason: str = ""


class JobKilled(PipelineError):
    """The job was stopped or hit its ``job_timeout``: a runner ends it ``killed``."""


class JobRunning(PipelineError):
    """A live runner still works on the job (``runner`` is its ``pid@host``)."""

    runner: str = ""

    transient = True


class SetBusy(PipelineError):
    """A live runner holds the datum set's lease; retrying once it ended or died can help."""

    set: int = -1

    transient = True


class SetTakenOver(PipelineError):
    """Another runner took this runner's datum set over (it was taken for dead): stop, quietly."""

    set: int = -1


class OutputRejected(DatumError):
    """User code left something in ``out/`` that cannot be stored; the attempt fails (``path``)."""

    path: str = ""


class MergeError(DatumError):
    """Datum outputs cannot be merged into one commit (collisions)."""

    path: str = ""


class BatchError(DatumError):
    """The batch executor cannot run as asked."""


class ChunkingError(BatchError, ValueError):
    """The data cannot be split into chunks (unsupported type, bad chunk size, a failing source)."""

    chunk_index: int | None = None
    data_type: str = ""
    field: str = ""
    path: str = ""


class BatchExecutionError(BatchError):
    """A chunk failed under fail-fast, or the batch could not run; ``chunk_index`` names the chunk."""

    chunk_index: int | None = None


class BatchTimeoutError(BatchExecutionError, TimeoutError):
    """A chunk exceeded its per-chunk timeout, or the batch exceeded its total timeout."""

    timeout_seconds: float | None = None


class AggregationError(BatchError):
    """Chunk results cannot be aggregated into one batch result."""

    strategy: str = ""
