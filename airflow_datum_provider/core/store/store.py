"""The versioned store: repos, branches, immutable commits and content-addressed files.

Publishing follows one rule: write immutable objects first (blobs, chunks, manifest, commit
record), move the branch with one small exclusive create last (the ref log). A writer killed at
any point leaves at most unreferenced objects and an unfinished commit that can be listed and
deleted; no reader ever sees a partial commit, and no lock is held that could block others.
"""

from __future__ import annotations

import collections
import contextlib
import gzip
import hashlib
import io
import json
import os
import re
import stat
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, BinaryIO

from airflow_datum_provider.core.errors import (
    AlreadyExistsError,
    BranchNotFound,
    CommitFinishedError,
    CommitNotFound,
    CommitOwnedError,
    ConflictError,
    CorruptObjectError,
    FileNotFound,
    RepoNotFound,
    StoreFormatError,
)
from airflow_datum_provider.core.store import _layout
from airflow_datum_provider.core.store._backend import (
    Backend,
    iter_chunks,
    open_backend,
    put_immutable,
)
from airflow_datum_provider.core.store.manifest import (
    Entry,
    Manifest,
    ManifestWriter,
    Op,
    build_manifest,
)
from airflow_datum_provider.core.store.packs import (
    PACK_BELOW,
    BlobBatch,
    BlobRef,
    Prefixed,
    Stored,
    parse_index,
    parse_loc,
    parse_trailer,
    read_many,
)
from airflow_datum_provider.core.store.paths import check_name, clean_dir, clean_path

__all__ = [
    "OWNER_JOB",
    "OWNER_PUT",
    "OWNER_SHARED",
    "BranchInfo",
    "CommitInfo",
    "FileDiff",
    "FileInfo",
    "OpenCommit",
    "RepoInfo",
    "Store",
]

_SMALL = 8 << 20
_SEGMENT_OPS = 200_000
_STREAM_SEGMENT = 1 << 20  # compressed bytes above which a segment is streamed at finish
_HEX32 = frozenset("0123456789abcdef")
_ANY = object()  # "any head": finish() rebases onto whatever it finds
_ANCESTRY = re.compile(r"(?:\^|~\d+)*\Z")
_RECORD_VERSION = 2  # commit records written after their ref CAS (see _land)

#: Who may write into an open commit. A shared commit (``start commit``) is joined by any writer
#: that names its branch; a put's own commit is joined only by a writer naming its id; a job's
#: output commit is refused to everyone but the job (``owner=OWNER_JOB``).
OWNER_SHARED = ""
OWNER_PUT = "put"
OWNER_JOB = "job"
_OWNERS = (OWNER_SHARED, OWNER_PUT, OWNER_JOB)


_PARALLEL = 16  # concurrent transfers to a remote store
_BLOB_CACHE_BYTES = 64 << 20  # prefetched blobs kept per store
_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process-wide pool for remote transfers (threads; s3fs runs them on its event loop)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(_PARALLEL, thread_name_prefix="datum-store")
        return _POOL


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _hasher() -> Any:
    return hashlib.blake2b(digest_size=32)


@dataclass(frozen=True, slots=True, kw_only=True)
class RepoInfo:
    """A repo as ``inspect repo`` shows it."""

    name: str
    description: str
    created: str
    branches: tuple[str, ...] = ()
    size_bytes: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "created": self.created,
            "branches": list(self.branches),
            "size_bytes": self.size_bytes,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class BranchInfo:
    """A branch and its head commit (``None`` for an empty branch)."""

    repo: str
    name: str
    head: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"repo": self.repo, "branch": self.name, "head": self.head}


@dataclass(frozen=True, slots=True, kw_only=True)
class CommitInfo:
    """One commit. ``finished`` is ``None`` while the commit is open."""

    repo: str
    id: str
    branch: str
    parent: str | None
    origin: str = "user"
    description: str = ""
    provenance: tuple[str, ...] = ()
    started: str
    finished: str | None = None
    size_bytes: int = 0
    file_count: int = 0
    owner: str = OWNER_SHARED
    finished_by: str = ""
    manifest: str = field(default="", repr=False)

    @property
    def joinable(self) -> bool:
        """Whether a writer naming only the branch may write into this (open) commit."""
        return self.owner == OWNER_SHARED

    def to_dict(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "id": self.id,
            "branch": self.branch,
            "parent": self.parent,
            "origin": self.origin,
            "description": self.description,
            "provenance": list(self.provenance),
            "started": self.started,
            "finished": self.finished,
            "size_bytes": self.size_bytes,
            "file_count": self.file_count,
        }

    def to_record(self) -> dict[str, Any]:
        """What the store writes: :meth:`to_dict` plus who owns / finished the commit."""
        return {**self.to_dict(), "owner": self.owner, "finished_by": self.finished_by}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CommitInfo:
        return cls(
            repo=raw["repo"],
            id=raw["id"],
            branch=raw["branch"],
            parent=raw.get("parent"),
            origin=raw.get("origin", "user"),
            description=raw.get("description", ""),
            provenance=tuple(raw.get("provenance", ())),
            started=raw["started"],
            finished=raw.get("finished"),
            size_bytes=raw.get("size_bytes", 0),
            file_count=raw.get("file_count", 0),
            owner=raw.get("owner", OWNER_SHARED),
            finished_by=raw.get("finished_by", ""),
            manifest=raw.get("manifest", ""),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileInfo:
    """A file (or, with a trailing ``/`` in ``path``, a directory) of a commit."""

    path: str
    size: int
    hash: str = ""
    tag: str = ""

    @property
    def is_dir(self) -> bool:
        return self.path.endswith("/")

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": "dir" if self.is_dir else "file",
            "size_bytes": self.size,
            "hash": self.hash,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FileDiff:
    """One difference between two commits: ``added``, ``modified`` or ``deleted``."""

    path: str
    change: str
    old_size: int | None
    new_size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "change": self.change,
            "old_size_bytes": self.old_size,
            "new_size_bytes": self.new_size,
        }


@dataclass(slots=True)
class OpenCommit:
    """An unfinished commit: stage puts / deletes / copies, then :meth:`finish`.

    Ops are buffered in memory and flushed as sorted segments, so a commit can be built across
    several processes (``datumctl put file`` calls) and a million-file commit stays streamable.
    """

    store: Store
    info: CommitInfo
    _ops: list[Op] = field(default_factory=list)
    _closed: bool = False
    as_owner: str = OWNER_SHARED  # who this handle writes as (recorded as ``finished_by``)
    _blobs: BlobBatch | None = None
    _parent: Manifest | None | bool = False  # the parent's manifest once looked up

    @property
    def blobs(self) -> BlobBatch:
        """The commit's blob batch, flushed before every op segment that names its blobs."""
        if self._blobs is None:
            self._blobs = self.store.blob_batch()
        return self._blobs

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def repo(self) -> str:
        return self.info.repo

    def _check_open(self) -> None:
        if self._closed:
            raise CommitFinishedError(
                f"commit {self.repo}@{self.id} is finished; finished commits are immutable",
                commit=self.id,
            )

    def _stage(self, op: Op) -> None:
        self._check_open()
        self._ops.append(op)
        if len(self._ops) >= _SEGMENT_OPS:
            self.flush()

    def put_bytes(self, path: str, data: bytes, *, append: bool = False, tag: str = "") -> str:
        """Stage ``data`` at ``path``; return its content hash."""
        path = clean_path(path)
        self._check_open()
        stored = self.blobs.put_bytes(data)
        self._stage(Op("A" if append else "P", path, stored.hash, stored.size, tag, stored.loc))
        return stored.hash

    def put_stream(
        self, path: str, stream: IO[bytes], *, append: bool = False, tag: str = ""
    ) -> str:
        """Stage the content of a binary stream, hashed while it is copied (constant memory)."""
        path = clean_path(path)
        self._check_open()
        stored = self.store_stream(path, stream)
        self._stage(Op("A" if append else "P", path, stored.hash, stored.size, tag, stored.loc))
        return stored.hash

    def store_stream(self, path: str, stream: IO[bytes] | BinaryIO | Any) -> Stored:
        """Store a stream's content for ``path`` without staging it (thread-safe).

        On a store that packs, a small file equal to the parent commit's file at ``path`` is
        not uploaded again (its entry is reused); others go into this commit's blob batch.
        """
        batch = self.blobs
        if not batch.pack_below:
            return batch.put_stream(stream)
        head = stream.read(batch.pack_below)
        if len(head) >= batch.pack_below:
            digest, size = self.store._put_blob_stream(Prefixed(head, stream))
            return Stored(digest, size)
        digest = hashlib.blake2b(head, digest_size=32).hexdigest()
        old = self.parent_entry(path)
        if old is not None and old.hash == digest and old.size == len(head):
            return Stored(old.hash, old.size, old.loc)
        return batch.put_hashed(digest, head)

    def stage_stored(self, path: str, stored: Stored, *, tag: str = "") -> None:
        """Stage a blob this commit's :attr:`blobs` (or any finished put) stored at ``path``."""
        self._stage(Op("P", clean_path(path), stored.hash, stored.size, tag, stored.loc))

    def parent_entry(self, path: str) -> Entry | None:
        """The entry at ``path`` in the commit this one started on (``None`` if none there).

        A put whose content hash equals it reuses it (no upload): the cross-commit dedup of
        packed blobs, which are not named by their hash. Chunks read for it are cached.
        """
        if self._parent is False:
            parent = self.info.parent
            self._parent = (
                self.store._manifest(self.store.inspect_commit(self.repo, parent))
                if parent
                else None
            )
        manifest = self._parent
        if manifest is None or manifest is True:
            return None
        assert isinstance(manifest, Manifest)
        return manifest.lookup(self.store.backend, clean_path(path))

    def put_file(self, path: str, local: str | os.PathLike[str], *, append: bool = False) -> str:
        """Stage a local file."""
        with open(local, "rb") as fh:
            return self.put_stream(path, fh, append=append)

    def put_dir(
        self,
        path: str,
        local: str | os.PathLike[str],
        *,
        progress: Callable[[int], None] | None = None,
        skipped: Callable[[str, str], None] | None = None,
    ) -> int:
        """Stage every regular file below a local directory under ``path``; return the count.

        Symlinks are never followed (a link could point anywhere, ``~/.aws`` included) and
        FIFOs, sockets and devices are never opened (a FIFO would block forever): each such
        entry is reported to ``skipped(local_path, reason)`` instead.
        """
        base = clean_dir(path)
        root = Path(local)
        count = 0
        self._check_open()
        # Remote stores: small files go into packs (uploaded in the background as they fill);
        # large ones are single objects, up to ``store.parallelism`` uploads in flight. Ops are
        # still staged in walk order.
        blobs = self.blobs
        packing = bool(self.store.pack_below)
        pool = None if self.store.backend.local_root is not None else _pool()
        pending: collections.deque[tuple[str, Future[Stored]]] = collections.deque()

        def drain(limit: int) -> None:
            while len(pending) > limit:
                name, future = pending.popleft()
                stored = future.result()
                self._stage(Op("P", clean_path(name), stored.hash, stored.size, "", stored.loc))
                if progress is not None:
                    progress(stored.size)

        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            rel = os.path.relpath(dirpath, root)
            prefix = base if rel == "." else base + rel.replace(os.sep, "/") + "/"
            for name in sorted(dirnames):
                full = os.path.join(dirpath, name)
                if os.path.islink(full) and skipped is not None:
                    skipped(full, "symlink to a directory (not followed)")
            for name in sorted(filenames):
                full = os.path.join(dirpath, name)
                mode = os.lstat(full).st_mode
                if not stat.S_ISREG(mode):
                    if skipped is not None:
                        skipped(full, _kind_of(mode) + " (only regular files are put)")
                    continue
                count += 1
                if packing and os.path.getsize(full) < blobs.pack_below:
                    drain(0)  # keep the walk order of staged ops
                    stored = self._put_small_file(prefix + name, full)
                    self._stage(Op("P", clean_path(prefix + name), *stored[:2], "", stored.loc))
                    if progress is not None:
                        progress(stored.size)
                    continue
                if pool is not None:
                    pending.append((prefix + name, pool.submit(blobs.put_stream_file, full)))
                    drain(self.store.parallelism * 2)
                    continue
                self.put_file(prefix + name, full)
                if progress is not None:
                    progress(os.path.getsize(full))
        drain(0)
        return count

    def _put_small_file(self, path: str, local: str) -> Stored:
        """A small local file into this commit's batch, unless the parent holds it already."""
        with open(local, "rb") as fh:
            return self.store_stream(path, fh)

    def put_entry(self, entry: Entry) -> None:
        """Stage an already-stored blob (copy without moving data)."""
        self._stage(Op("P", clean_path(entry.path), entry.hash, entry.size, entry.tag, entry.loc))

    def delete(self, path: str) -> None:
        """Stage the deletion of a file, or of a directory and everything below it."""
        self._stage(Op("D", clean_path(path)))

    def copy(self, src_repo: str, src_ref: str, src_path: str, dst_path: str) -> int:
        """Stage a copy of a file or directory from a finished commit; return the file count."""
        src = self.store.inspect_commit(src_repo, src_ref)
        manifest = self.store._manifest(src)
        src_clean = clean_path(src_path)
        dst_clean = clean_path(dst_path)
        entry = manifest.lookup(self.store.backend, src_clean) if src_clean != "/" else None
        if entry is not None:
            self.put_entry(entry._replace(path=dst_clean))
            return 1
        prefix = clean_dir(src_clean)
        dst_prefix = clean_dir(dst_clean)
        count = 0
        for entry in manifest.entries(self.store.backend, prefix):
            self.put_entry(entry._replace(path=dst_prefix + entry.path[len(prefix) :]))
            count += 1
        if not count:
            raise FileNotFound(
                f"file {src_clean!r} not found in {src_repo}@{src.id}",
                path=src_clean,
                commit=src.id,
            )
        return count

    def _check_still_open(self) -> None:
        """Refuse to write to a commit that another handle finished or deleted."""
        self._check_open()
        if not self.store.backend.exists(_layout.open_info(self.repo, self.id)):
            self._closed = True
            if self.store.backend.exists(_layout.commit(self.repo, self.id)):
                raise CommitFinishedError(
                    f"commit {self.repo}@{self.id} is finished; finished commits are immutable",
                    commit=self.id,
                )
            raise CommitNotFound(
                f"commit {self.id!r} not found in repo {self.repo!r} (deleted?)",
                repo=self.repo,
                commit=self.id,
            )

    def flush(self) -> None:
        """Persist buffered ops as one sorted segment (other processes can then continue)."""
        if not self._ops:
            return
        self._check_still_open()
        if self._blobs is not None:
            self._blobs.flush()  # packs first: the segment names them
        ordered = sorted(enumerate(_drop_deleted(self._ops)), key=lambda p: (p[1].path, p[0]))
        lines = "".join(
            f"{op.kind}\t{op.path}\t{op.hash}\t{op.size}\t{op.tag}\t{op.loc}\n"
            if op.loc
            else f"{op.kind}\t{op.path}\t{op.hash}\t{op.size}\t{op.tag}\n"
            for _, op in ordered
        )
        backend = self.store.backend
        seq = len(backend.list(_layout.open_ops(self.repo, self.id)))
        while not backend.create(
            _layout.open_segment(self.repo, self.id, seq),
            gzip.compress(lines.encode(), compresslevel=1, mtime=0),
        ):
            seq += 1
        self._ops = []

    def finish(
        self, *, description: str | None = None, expected_parent: str | None | object = _ANY
    ) -> CommitInfo:
        """Finish the commit: build its manifest and move the branch head (compare-and-swap).

        By default a head that moved meanwhile is rebased onto. With ``expected_parent`` (a
        commit id, or ``None`` for an empty branch) the commit lands only on that head, else
        :class:`ConflictError` is raised and the commit stays open.
        """
        self.flush()
        self._check_still_open()
        info = self.info if description is None else replace(self.info, description=description)
        try:
            done = self.store._land(info, expected_parent, self.as_owner)
        except (CommitFinishedError, CommitNotFound):
            self._closed = True
            raise
        self._closed = True
        return done

    def abort(self) -> None:
        """Drop the commit and everything staged in it (nothing happens if it landed)."""
        self._ops = []
        self._closed = True
        if self._blobs is not None:
            self._blobs.discard()
        try:
            self.store.delete_commit(self.repo, self.id, owner=self.as_owner)
        except (CommitFinishedError, CommitNotFound):
            pass

    def __enter__(self) -> OpenCommit:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self._closed:
            return
        if exc_type is None:
            self.finish()
        else:
            self.abort()


class Store:
    """A versioned store rooted at one URL (local folder, ``memory://``, ``s3://``, ...).

    Constructing one does no I/O; :meth:`open` checks (or writes) the ``FORMAT`` file.
    """

    def __init__(
        self,
        backend: Backend,
        *,
        pack_below: int | None = None,
        parallelism: int | None = None,
    ) -> None:
        self.backend = backend
        self._manifests: dict[str, Manifest] = {}
        # Landed commit records are immutable: cached by (repo, id) for this Store's lifetime.
        self._records: dict[tuple[str, str], CommitInfo] = {}
        #: Blobs below this size are packed by blob batches; 0: every blob is its own object.
        #: Default: no packs on a local folder (a datum input is a hard link to its blob file,
        #: see docs/storage.md), packs elsewhere. ``DATUM_STORE_PACK_BELOW`` overrides it.
        if pack_below is None:
            env = os.environ.get("DATUM_STORE_PACK_BELOW", "")
            if env.strip():
                pack_below = _parse_size(env, "DATUM_STORE_PACK_BELOW")
            else:
                pack_below = 0 if backend.local_root is not None else PACK_BELOW
        self.pack_below = pack_below
        #: Requests in flight for batch uploads and many-blob reads on a remote store.
        self.parallelism = parallelism or _PARALLEL
        self._blob_cache: collections.OrderedDict[str, bytes] = collections.OrderedDict()
        self._blob_cache_bytes = 0
        self._blob_cache_lock = threading.Lock()
        self._pack_index: dict[str, tuple[str, int, int]] | None = None  # hash -> where
        self._packs_indexed: set[str] = set()

    @classmethod
    def open(cls, url: Any, *, storage_options: Mapping[str, Any] | None = None) -> Store:
        """Open (and initialise, if empty) the store at ``url``."""
        store = cls(open_backend(url, storage_options))
        store.check_format()
        return store

    def blob_batch(self, *, parallelism: int | None = None) -> BlobBatch:
        """A batch of blob puts: ``with store.blob_batch() as blobs: blobs.put_bytes(...)``.

        Blobs are durable once ``flush()`` returns (or the ``with`` block ends cleanly); write
        whatever names them (an op segment, a datum result) after that. See ``packs.py``.
        """
        return BlobBatch(self, parallelism=parallelism)

    @property
    def url(self) -> str:
        return self.backend.url

    def check_format(self) -> None:
        """Read ``FORMAT`` (writing it in an empty root); refuse a store this code cannot read.

        A version-1 or -2 store (the previous layouts) is read as it is; opening it marks it
        version 3 so that an older release refuses it instead of misreading refs or packs.
        """
        try:
            raw = self.backend.read(_layout.FORMAT)
        except FileNotFoundError:
            if self.backend.list(""):
                raise StoreFormatError(
                    f"store {self.url}: the folder is not empty and has no FORMAT file, so it is "
                    "not a datum store; point the store at an empty or new folder",
                    url=self.url,
                ) from None
            self.backend.create(_layout.FORMAT, _format_body())
            raw = self.backend.read(_layout.FORMAT)
        try:
            meta = json.loads(raw)
            name, version = meta["format"], meta["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise StoreFormatError(
                f"store {self.url}: {_layout.FORMAT} is corrupt (not a FORMAT record: "
                f"{type(exc).__name__}: {exc})",
                url=self.url,
                key=_layout.FORMAT,
            ) from None
        if name != _layout.FORMAT_NAME or version not in _layout.READABLE_VERSIONS:
            raise StoreFormatError(
                f"store {self.url} has format {name!r} version {version!r}; this "
                f"airflow-datum-provider reads {_layout.FORMAT_NAME!r} versions "
                f"{', '.join(map(str, _layout.READABLE_VERSIONS))} only",
                url=self.url,
                version=version,
            )
        if version != _layout.FORMAT_VERSION:
            self.backend.write(_layout.FORMAT, _format_body())

    # -- json helpers -------------------------------------------------------------------

    def _corrupt(self, key: str, detail: str) -> CorruptObjectError:
        return CorruptObjectError(
            f"store {self.url}: {key} is corrupt ({detail})", url=self.url, key=key
        )

    def _read_json(self, key: str) -> Any:
        data = self.backend.read(key)
        try:
            return json.loads(data)
        except ValueError as exc:
            raise self._corrupt(key, f"not JSON: {exc}") from None

    def _read_record(self, key: str) -> dict[str, Any]:
        """A JSON object with the fields of a commit record, or a corrupt-object error."""
        raw = self._read_json(key)
        if not isinstance(raw, dict) or not all(
            isinstance(raw.get(k), str) for k in ("repo", "id", "branch", "started")
        ):
            raise self._corrupt(key, "not a commit record")
        return raw

    def _write_json(self, key: str, value: Any) -> None:
        self.backend.write(key, json.dumps(value, separators=(",", ":")).encode())

    # -- repos --------------------------------------------------------------------------

    def create_repo(self, name: str, *, description: str = "", exist_ok: bool = False) -> RepoInfo:
        """Create a repo."""
        check_name(name, "repo")
        record = {"name": name, "description": description, "created": _now()}
        if not self.backend.create(_layout.repo_record(name), json.dumps(record).encode()):
            if exist_ok:
                return self.inspect_repo(name)
            raise AlreadyExistsError(f"repo {name!r} already exists", repo=name)
        return RepoInfo(name=name, description=description, created=record["created"])

    def _require_repo(self, name: str) -> dict[str, Any]:
        check_name(name, "repo")
        key = _layout.repo_record(name)
        try:
            raw = self._read_json(key)
        except FileNotFoundError:
            raise RepoNotFound(f"repo {name!r} not found", repo=name) from None
        if not isinstance(raw, dict) or not isinstance(raw.get("created"), str):
            raise self._corrupt(key, "not a repo record")
        return raw

    def repo_exists(self, name: str) -> bool:
        return self.backend.exists(_layout.repo_record(name))

    def inspect_repo(self, name: str) -> RepoInfo:
        """Describe a repo: branches, and size (the size of the ``master`` head, or largest)."""
        raw = self._require_repo(name)
        branches = tuple(self.backend.list(_layout.branches(name)))
        size = 0
        for branch in branches:
            head = self.branch_head(name, branch)
            if head is not None:
                size = max(size, self.inspect_commit(name, head).size_bytes)
        return RepoInfo(
            name=name,
            description=raw.get("description", ""),
            created=raw["created"],
            branches=branches,
            size_bytes=size,
        )

    def list_repos(self) -> list[RepoInfo]:
        """Every repo, by name."""
        repos = []
        for name in self.backend.list(_layout.repos()):
            if self.repo_exists(name):
                repos.append(self.inspect_repo(name))
        return repos

    def delete_repo(self, name: str) -> None:
        """Delete a repo with all its branches and commits (blobs stay until a GC)."""
        self._require_repo(name)
        self.backend.delete(_layout.repo_record(name))
        self.backend.delete_tree(_layout.repo_dir(name))
        self._records = {k: v for k, v in self._records.items() if k[0] != name}

    # -- branches -----------------------------------------------------------------------

    def _ref_log(self, repo: str, branch: str) -> list[str]:
        return [n for n in self.backend.list(_layout.branch_dir(repo, branch)) if n.isdigit()]

    def _read_ref(
        self, repo: str, branch: str, seq: int
    ) -> tuple[str | None, dict[str, Any] | None]:
        """(commit id or ``None``, the landed record it carries or ``None``) of one ref version.

        Refs are self-checking JSON (``{"commit": id}``, plus ``"record"`` when a commit landed
        by it); a format-1 ref is the bare id. Anything else is reported as corrupt, by name.
        """
        key = _layout.ref(repo, branch, seq)
        data = self.backend.read(key)
        where = f"ref {seq} of {repo}@{branch}"
        if data[:1] == b"{":
            try:
                raw = json.loads(data)
                commit = raw["commit"]
                record = raw.get("record")
            except (ValueError, KeyError, TypeError) as exc:
                raise self._corrupt(key, f"{where}: {type(exc).__name__}: {exc}") from None
            if commit is not None and not _is_id(commit):
                raise self._corrupt(key, f"{where}: {commit!r} is not a commit id")
            if record is not None and (not isinstance(record, dict) or record.get("id") != commit):
                raise self._corrupt(key, f"{where}: its record is not commit {commit}")
            return commit, record
        text = data.decode("ascii", errors="replace")
        if not text:
            return None, None  # format 1: an empty branch
        if not _is_id(text):
            raise self._corrupt(key, f"{where}: {text[:40]!r} is not a commit id")
        return text, None

    def _head_state(
        self, repo: str, branch: str
    ) -> tuple[int, str | None, dict[str, Any] | None] | None:
        """(sequence, head commit id, its landed record if the ref carries it), or ``None``."""
        check_name(repo, "repo")
        check_name(branch, "branch")
        versions = self._ref_log(repo, branch)
        if not versions:
            return None
        seq = int(versions[-1])
        head, record = self._read_ref(repo, branch, seq)
        return seq, head, record

    def _head(self, repo: str, branch: str) -> tuple[int, str | None] | None:
        """(sequence, head commit id) of a branch, or ``None`` if it does not exist."""
        state = self._head_state(repo, branch)
        return None if state is None else (state[0], state[1])

    def branch_head(self, repo: str, branch: str) -> str | None:
        """The head commit id of a branch; ``None`` if the branch is empty.

        Raises :class:`BranchNotFound` when the branch does not exist.
        """
        state = self._head(repo, branch)
        if state is None:
            self._require_repo(repo)
            raise BranchNotFound(
                f"branch {branch!r} not found in repo {repo!r}", repo=repo, branch=branch
            )
        return state[1]

    def create_branch(self, repo: str, branch: str, *, head: str | None = None) -> BranchInfo:
        """Create a branch (empty, or at ``head``, a commit ref); an existing one is moved."""
        self._require_repo(repo)
        check_name(branch, "branch")
        head_id = None
        if head:
            target = self.inspect_commit(repo, head)
            if target.finished is None:
                raise CommitNotFound(
                    f"commit {repo}@{target.id} is not finished; a branch can only point at a "
                    "finished commit",
                    repo=repo,
                    commit=target.id,
                )
            head_id = target.id
        while True:
            state = self._head(repo, branch)
            seq = 0 if state is None else state[0] + 1
            if self.backend.create(_layout.ref(repo, branch, seq), _ref_body(head_id)):
                return BranchInfo(repo=repo, name=branch, head=head_id)

    def ensure_branch(self, repo: str, branch: str) -> bool:
        """Create an empty branch unless it exists; never moves one. True if this call made it.

        Safe against a concurrent writer: the branch's first ref-log entry is created only if
        absent, so a put landing meanwhile is never reset.
        """
        self._require_repo(repo)
        check_name(branch, "branch")
        if self._head(repo, branch) is not None:
            return False
        return self.backend.create(_layout.ref(repo, branch, 0), _ref_body(None))

    def list_branches(self, repo: str) -> list[BranchInfo]:
        self._require_repo(repo)
        result = []
        for name in self.backend.list(_layout.branches(repo)):
            state = self._head(repo, name)
            if state is not None:
                result.append(BranchInfo(repo=repo, name=name, head=state[1]))
        return result

    def delete_branch(self, repo: str, branch: str) -> None:
        self.branch_head(repo, branch)
        self.backend.delete_tree(_layout.branch_dir(repo, branch))

    # -- commits ------------------------------------------------------------------------

    def start_commit(
        self,
        repo: str,
        branch: str = "master",
        *,
        description: str = "",
        origin: str = "user",
        provenance: Iterable[str] = (),
        owner: str = OWNER_SHARED,
    ) -> OpenCommit:
        """Open a new commit on ``branch`` (created if missing). Finish it to publish it.

        ``owner`` says who may write into it: :data:`OWNER_SHARED` (any writer naming the
        branch, as after ``start commit``), :data:`OWNER_PUT` (a put's own commit: only writers
        naming its id) or :data:`OWNER_JOB` (a job's output: only ``owner=OWNER_JOB`` callers).
        """
        if owner not in _OWNERS:
            raise ValueError(f"owner {owner!r} is not one of {_OWNERS}")
        self._require_repo(repo)
        check_name(branch, "branch")
        state = self._head(repo, branch)
        if state is None:
            # Create version 0 only: a concurrent writer that created the branch (and maybe
            # landed on it) meanwhile must not be reset to empty, as create_branch would.
            self.backend.create(_layout.ref(repo, branch, 0), _ref_body(None))
            state = self._head(repo, branch) or (0, None)
        info = CommitInfo(
            repo=repo,
            id=uuid.uuid4().hex,
            branch=branch,
            parent=state[1],
            origin=origin,
            description=description,
            provenance=tuple(provenance),
            started=_now(),
            owner=owner,
        )
        self._write_json(_layout.open_info(repo, info.id), info.to_record())
        return OpenCommit(self, info, as_owner=owner)

    def commit(self, repo: str, branch: str = "master", **kwargs: Any) -> OpenCommit:
        """``with store.commit(repo, branch) as c: c.put_bytes(...)``: finish on success."""
        return self.start_commit(repo, branch, **kwargs)

    def _check_owner(self, info: CommitInfo, owner: str, verb: str) -> None:
        if info.owner == OWNER_JOB and owner != OWNER_JOB:
            raise CommitOwnedError(
                f"commit {info.repo}@{info.id} is the output commit of job {info.id} of "
                f"pipeline {info.repo}; only the job may {verb} it (to end the job: "
                f"datumctl stop job {info.repo}@{info.id})",
                repo=info.repo,
                commit=info.id,
            )

    def open_commit(self, repo: str, commit_id: str, *, owner: str = OWNER_SHARED) -> OpenCommit:
        """Re-open an unfinished commit (for example from another ``datumctl`` call).

        A job's output commit is refused (:class:`CommitOwnedError`) unless ``owner`` is
        :data:`OWNER_JOB`.
        """
        self._require_repo(repo)
        _check_commit_id(repo, commit_id)
        key = _layout.open_info(repo, commit_id)
        try:
            raw = self._read_record(key)
        except FileNotFoundError:
            if self._finished_record(repo, commit_id) is not None:
                raise CommitFinishedError(
                    f"commit {repo}@{commit_id} is finished; finished commits are immutable",
                    commit=commit_id,
                ) from None
            raise CommitNotFound(
                f"commit {commit_id!r} not found in repo {repo!r}", repo=repo, commit=commit_id
            ) from None
        info = CommitInfo.from_dict(raw)
        if self._finished_record(repo, commit_id) is not None:
            raise CommitFinishedError(
                f"commit {repo}@{commit_id} is finished; finished commits are immutable",
                commit=commit_id,
            )
        self._check_owner(info, owner, "write into or finish")
        return OpenCommit(self, info, as_owner=owner)

    def _landed_legacy(self, repo: str, commit_id: str, record: Mapping[str, Any]) -> bool:
        """Whether a format-1 record (written before its ref CAS) belongs to a landed commit.

        No open folder means landed; with one, the commit landed only if the ref version it
        aimed at (``ref_seq``) names it.
        """
        if not self.backend.exists(_layout.open_info(repo, commit_id)):
            return True
        seq = record.get("ref_seq")
        if not isinstance(seq, int):
            return False
        try:
            ref = self._read_ref(repo, record["branch"], seq)[0]
        except FileNotFoundError:
            return False
        return ref == commit_id

    def _landed_unrecorded(self, repo: str, commit_id: str) -> dict[str, Any] | None:
        """The record of a commit whose ref CAS succeeded but whose record is not written yet.

        A finisher marks ``open/<id>/landing-<seq>`` before it creates ref ``seq`` (the ref
        carries the record). If such a ref names the commit, the record is written here (the
        finisher died or is about to) and returned.
        """
        for seq, branch in self._landing_marks(repo, commit_id):
            try:
                named, record = self._read_ref(repo, branch, seq)
            except FileNotFoundError:
                continue
            if named == commit_id and record is not None:
                self._write_json(_layout.commit(repo, commit_id), record)
                return record
        return None

    def _landing_marks(self, repo: str, commit_id: str) -> list[tuple[int, str]]:
        marks = []
        for name in self.backend.list(_layout.open_dir(repo, commit_id)):
            if name.startswith(_layout.LANDING_PREFIX):
                seq = name[len(_layout.LANDING_PREFIX) :]
                if seq.isdigit():
                    try:
                        branch = self.backend.read(_layout.open_landing(repo, commit_id, int(seq)))
                    except FileNotFoundError:
                        continue
                    marks.append((int(seq), branch.decode("utf-8", errors="replace")))
        return marks

    def _finished_record(
        self, repo: str, commit_id: str, *, trusted: bool = False
    ) -> CommitInfo | None:
        """The landed commit record of ``commit_id``, or ``None``.

        ``trusted`` skips the landed check of format-1 records for ids read from a ref or a
        landed commit's parent (format-2 records exist only once their commit landed).
        """
        cached = self._records.get((repo, commit_id))
        if cached is not None:
            return cached
        key = _layout.commit(repo, commit_id)
        try:
            raw: dict[str, Any] | None = self._read_record(key)
        except FileNotFoundError:
            raw = self._landed_unrecorded(repo, commit_id)
            if raw is None:
                return None
        assert raw is not None
        legacy = raw.get("v") != _RECORD_VERSION
        if legacy and not trusted and not self._landed_legacy(repo, commit_id, raw):
            return None
        if raw.get("id") != commit_id:
            raise self._corrupt(key, f"the record is of commit {raw.get('id')!r}")
        info = CommitInfo.from_dict(raw)
        if not legacy or trusted:
            if len(self._records) > 4096:
                self._records.clear()
            self._records[(repo, commit_id)] = info
        return info

    def list_open_commits(self, repo: str) -> list[CommitInfo]:
        """Unfinished commits (for example left by a killed writer), oldest first."""
        self._require_repo(repo)
        result = []
        for commit_id in self.backend.list(_layout.open_commits(repo)):
            try:
                raw = self._read_record(_layout.open_info(repo, commit_id))
            except FileNotFoundError:
                continue
            info = CommitInfo.from_dict(raw)
            if self._finished_record(repo, commit_id) is not None:
                # Its writer died after the CAS, before cleaning up: finish the cleanup.
                self.backend.delete_tree(_layout.open_dir(repo, commit_id))
                continue
            result.append(info)
        return sorted(result, key=lambda c: c.started)

    def delete_commit(self, repo: str, commit_id: str, *, owner: str = OWNER_SHARED) -> None:
        """Delete an unfinished commit. Finished commits are immutable and cannot be deleted.

        A job's output commit is refused (:class:`CommitOwnedError`) unless ``owner`` is
        :data:`OWNER_JOB`.
        """
        self._require_repo(repo)
        _check_commit_id(repo, commit_id)
        finished = self._finished_record(repo, commit_id)
        if finished is not None:
            self.backend.delete_tree(_layout.open_dir(repo, commit_id))
            raise CommitFinishedError(
                f"commit {repo}@{commit_id} is finished and cannot be deleted",
                commit=commit_id,
            )
        try:
            info = CommitInfo.from_dict(self._read_record(_layout.open_info(repo, commit_id)))
        except FileNotFoundError:
            raise CommitNotFound(
                f"commit {commit_id!r} not found in repo {repo!r}", repo=repo, commit=commit_id
            ) from None
        self._check_owner(info, owner, "delete")
        # A format-1 writer killed between writing its record and the CAS left these: the
        # record goes first, so that no crash here can make the commit look landed.
        with contextlib.suppress(FileNotFoundError, CorruptObjectError):
            if self._read_record(_layout.commit(repo, commit_id)).get("v") != _RECORD_VERSION:
                self.backend.delete(_layout.commit(repo, commit_id))
                self.backend.delete(_layout.manifest(repo, commit_id))
        self.backend.delete_tree(_layout.open_dir(repo, commit_id))

    def _segments(self, info: CommitInfo) -> list[Iterable[Op]]:
        """The staged op segments of a commit, in order; re-iterable (``_land`` may retry).

        Small segments (one ``datumctl put file`` each) are decoded up front; large ones (a
        flush of ``_SEGMENT_OPS`` ops) are streamed, so finishing a huge commit stays small.
        """
        folder = _layout.open_ops(info.repo, info.id)
        segments: list[Iterable[Op]] = []
        for name in self.backend.list(folder):
            key = f"{folder}/{name}"
            data = self.backend.read(key)
            if len(data) < _STREAM_SEGMENT:
                try:
                    text = gzip.decompress(data).decode()
                except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
                    raise self._corrupt(key, f"{type(exc).__name__}: {exc}") from None
                segments.append(list(_parse_ops(text.split("\n"), self._corrupt, key)))
            else:
                segments.append(_StreamedSegment(self, key))
        return segments

    def _append(self, old: Entry | None, op: Op) -> Entry:
        if old is None:
            return Entry(op.path, op.hash, op.size, op.tag)
        with self.open_blob(old.hash, old.loc) as first, self.open_blob(op.hash, op.loc) as second:
            digest, size = self.put_blob(_Concat(first, second))
        return Entry(op.path, digest, size, op.tag)

    def _already_finished(self, info: CommitInfo) -> CommitFinishedError:
        return CommitFinishedError(
            f"commit {info.repo}@{info.id} is already finished (by another writer)",
            commit=info.id,
        )

    def _vanished(self, info: CommitInfo, exc: FileNotFoundError) -> Exception:
        """What a finisher raises when an object of the commit's open folder disappeared.

        Another finisher landed the commit and removed the folder (or a writer deleted the
        commit) while this one read its segments or wrote its landing mark. The local backend
        re-creates a missing parent folder on write, so the folder is removed again here (the
        record is written first). A folder that is still there means ``exc`` has another cause.
        """
        repo = info.repo
        if self._finished_record(repo, info.id) is not None:
            self.backend.delete_tree(_layout.open_dir(repo, info.id))
            return self._already_finished(info)
        if self.backend.exists(_layout.open_info(repo, info.id)):
            return exc
        self.backend.delete_tree(_layout.open_dir(repo, info.id))
        return CommitNotFound(
            f"commit {info.id!r} not found in repo {repo!r} (deleted?)",
            repo=repo,
            commit=info.id,
        )

    def _refuse_if_landed(self, info: CommitInfo) -> None:
        """Raise if another finisher landed this commit (or deleted it) meanwhile.

        Called after reading the head: any landing at a ref version up to that head marked
        ``landing-<seq>`` before its CAS (seen by the listing), or wrote the record before
        cleaning up (seen by the read after the listing).
        """
        repo = info.repo
        names = self.backend.list(_layout.open_dir(repo, info.id))
        try:
            if self._read_record(_layout.commit(repo, info.id)).get("v") == _RECORD_VERSION:
                raise self._already_finished(info)
        except FileNotFoundError:
            pass
        if "info.json" not in names:
            raise CommitNotFound(
                f"commit {info.id!r} not found in repo {repo!r} (deleted?)",
                repo=repo,
                commit=info.id,
            )
        for name in names:
            if (
                name.startswith(_layout.LANDING_PREFIX)
                and name[len(_layout.LANDING_PREFIX) :].isdigit()
            ):
                seq = int(name[len(_layout.LANDING_PREFIX) :])
                with contextlib.suppress(FileNotFoundError):
                    if self._read_ref(repo, info.branch, seq)[0] == info.id:
                        raise self._already_finished(info)

    def _land(
        self,
        info: CommitInfo,
        expected_parent: str | None | object = _ANY,
        finished_by: str = OWNER_SHARED,
    ) -> CommitInfo:
        """Build the manifest over the current head and CAS the branch; rebase on conflict.

        The manifest is named by its hash and the new ref carries the whole commit record, so
        two finishers of one commit never overwrite each other's objects: whichever creates
        the ref lands, the other finds its id there (or a ``landing-`` mark naming a ref that
        holds it) and raises :class:`CommitFinishedError`. ``commits/<id>.json`` is written
        after the CAS (by the finisher, or by the first reader that needs it).
        """
        try:
            done, record, manifest = self._cas(info, expected_parent, finished_by)
        except FileNotFoundError as exc:
            raise self._vanished(info, exc) from None
        self._write_json(_layout.commit(info.repo, info.id), record)
        self.backend.delete_tree(_layout.open_dir(info.repo, info.id))
        self._manifests[info.id] = manifest
        return done

    def _cas(
        self, info: CommitInfo, expected_parent: str | None | object, finished_by: str
    ) -> tuple[CommitInfo, dict[str, Any], Manifest]:
        """Build the manifest over the current head and create the ref; rebase on conflict.

        The part of :meth:`_land` that reads and writes the commit's open folder.
        """
        segments = self._segments(info)
        repo, branch = info.repo, info.branch
        while True:
            state = self._head(repo, branch)
            seq, head = (0, None) if state is None else state
            if head == info.id:
                raise self._already_finished(info)
            self._refuse_if_landed(info)
            if expected_parent is not _ANY and head != expected_parent:
                raise ConflictError(
                    f"branch {repo}@{branch} moved: head is {head or 'empty'}, expected "
                    f"{expected_parent or 'empty'}",
                    repo=repo,
                    branch=branch,
                )
            parent = self.inspect_commit(repo, head) if head else None
            base = self._manifest(parent) if parent else None
            writer = ManifestWriter(self.backend)
            manifest = build_manifest(writer, self.backend, base, segments, self._append)
            body = manifest.to_json()
            manifest_key = hashlib.blake2b(body, digest_size=32).hexdigest()
            put_immutable(self.backend, _layout.manifest(repo, manifest_key), body)
            done = replace(
                info,
                parent=head,
                finished=_now(),
                size_bytes=manifest.size,
                file_count=manifest.count,
                finished_by=finished_by,
                manifest=manifest_key,
            )
            record = {
                **done.to_record(),
                "manifest": manifest_key,
                "ref_seq": seq + 1,
                "v": _RECORD_VERSION,
            }
            self.backend.write(_layout.open_landing(repo, info.id, seq + 1), branch.encode())
            if self.backend.create(_layout.ref(repo, branch, seq + 1), _ref_body(info.id, record)):
                break
            try:
                named = self._read_ref(repo, branch, seq + 1)[0]
            except FileNotFoundError:
                named = None
            if named == info.id:
                # Landed by another finisher, which may have removed the folder before our
                # landing mark re-created it: record first (if not yet), then the folder.
                if self._finished_record(repo, info.id) is not None:
                    self.backend.delete_tree(_layout.open_dir(repo, info.id))
                raise self._already_finished(info)
        return done, record, manifest

    def _resolve(self, repo: str, ref: str) -> str:
        """A commit id from ``branch``, ``id``, ``branch=id``, with ``^`` / ``~N`` ancestry."""
        return self._resolve_trusted(repo, ref)[0]

    def _resolve_trusted(self, repo: str, ref: str) -> tuple[str, bool]:
        """:meth:`_resolve`, and whether the id is known to be landed (it came from a ref)."""
        ancestry = 0
        base = ref
        while True:
            suffix = _ANCESTRY.search(base)
            if suffix is None or not suffix.group(0):
                break
            base = base[: suffix.start()]
            ancestry += sum(int(n or 1) for n in re.findall(r"[~^](\d*)", suffix.group(0)))
        if "~" in base or "^" in base:
            raise CommitNotFound(
                f"commit ref {ref!r}: ancestry is ^ or ~N after the branch or id", commit=ref
            )
        check_name(repo, "repo")
        if "=" in base:
            branch, _, base = base.partition("=")
            if self._head(repo, branch) is None:
                self._require_repo(repo)
                raise BranchNotFound(
                    f"branch {branch!r} not found in repo {repo!r}", repo=repo, branch=branch
                )
        if len(base) == 32 and set(base) <= _HEX32 and self._known_id(repo, base):
            commit_id: str | None = base
            trusted = False
        else:
            self._require_repo(repo)
            state = self._head(repo, base)
            if state is None:
                if len(base) == 32 and set(base) <= _HEX32:
                    raise CommitNotFound(
                        f"commit {base!r} not found in repo {repo!r}", repo=repo, commit=base
                    )
                raise BranchNotFound(
                    f"branch {base!r} not found in repo {repo!r}", repo=repo, branch=base
                )
            commit_id = state[1]
            trusted = True
            if commit_id is None:
                raise CommitNotFound(f"branch {repo}@{base} has no commits", repo=repo, commit=ref)
        for _ in range(ancestry):
            assert commit_id is not None
            commit_id = self.inspect_commit(repo, commit_id).parent
            trusted = True
            if commit_id is None:
                raise CommitNotFound(f"commit {repo}@{ref} does not exist", commit=ref)
        assert commit_id is not None
        return commit_id, trusted

    def _known_id(self, repo: str, commit_id: str) -> bool:
        """Whether a commit of this id exists (landed or open); one GET for a landed one."""
        if (repo, commit_id) in self._records:
            return True
        key = _layout.commit(repo, commit_id)
        try:
            raw = self._read_record(key)
        except FileNotFoundError:
            return self.backend.exists(_layout.open_info(repo, commit_id))
        if raw.get("v") == _RECORD_VERSION and raw.get("id") == commit_id:
            self._records[(repo, commit_id)] = CommitInfo.from_dict(raw)  # landed: immutable
        return True

    def inspect_commit(self, repo: str, ref: str) -> CommitInfo:
        """A finished or open commit by branch name, id, or ``branch^`` / ``branch~N``."""
        commit_id, trusted = self._resolve_trusted(repo, ref)
        found = self._finished_record(repo, commit_id, trusted=trusted)
        if found is not None:
            return found
        try:
            return CommitInfo.from_dict(self._read_record(_layout.open_info(repo, commit_id)))
        except FileNotFoundError:
            raise CommitNotFound(
                f"commit {commit_id!r} not found in repo {repo!r}", repo=repo, commit=commit_id
            ) from None

    def list_commits(
        self, repo: str, branch: str | None = None, *, number: int | None = None
    ) -> Iterator[CommitInfo]:
        """Finished commits, newest first: a branch's history, or every commit of the repo.

        An unknown repo or branch raises here, not on the first iteration.
        """
        self._require_repo(repo)
        if branch is not None:
            self.branch_head(repo, branch)
        return self._iter_commits(repo, branch, number)

    def _iter_commits(
        self, repo: str, branch: str | None, number: int | None
    ) -> Iterator[CommitInfo]:
        if branch is not None:
            commit_id = self._resolve(repo, branch) if self.branch_head(repo, branch) else None
            count = 0
            seen: set[str] = set()
            while commit_id is not None and (number is None or count < number):
                if commit_id in seen:
                    raise self._corrupt(
                        _layout.commit(repo, commit_id),
                        f"the history of {repo}@{branch} loops back to commit {commit_id}",
                    )
                seen.add(commit_id)
                # Ids on a landed commit's parent chain are landed: no per-commit check.
                found = self._finished_record(repo, commit_id, trusted=True)
                if found is None:
                    raise CommitNotFound(
                        f"commit {commit_id!r} not found in repo {repo!r}",
                        repo=repo,
                        commit=commit_id,
                    )
                yield found
                count += 1
                commit_id = found.parent
            return
        infos = []
        for name in self.backend.list(_layout.commits(repo)):
            if not name.endswith(".json"):
                continue
            found = self._finished_record(repo, name.removesuffix(".json"))
            if found is not None and found.finished:
                infos.append(found)
        infos.sort(key=lambda c: c.finished or "", reverse=True)
        yield from infos[:number] if number is not None else infos

    def next_commit(self, repo: str, branch: str, after: str | None) -> CommitInfo | None:
        """The newest finished commit on ``branch`` if its head differs from ``after``.

        One poll is a listing of the branch's ref log and one small read: what sensors and
        triggers call. An unknown repo or branch raises instead of waiting forever.
        """
        state = self._head(repo, branch)
        if state is None:
            self.branch_head(repo, branch)  # raises RepoNotFound / BranchNotFound
            return None
        if state[1] is None or state[1] == after:
            return None
        return self.inspect_commit(repo, state[1])

    def wait_for_commit(
        self,
        repo: str,
        branch: str,
        *,
        after: str | None = None,
        timeout: float | None = None,
        poll: float = 0.5,
    ) -> CommitInfo:
        """Block until the head of ``branch`` is a commit other than ``after``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            found = self.next_commit(repo, branch, after)
            if found is not None:
                return found
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"no new commit on {repo}@{branch} within {timeout}s")
            time.sleep(poll)

    # -- manifests and files ------------------------------------------------------------

    def _manifest(self, info: CommitInfo) -> Manifest:
        if info.finished is None:
            raise CommitNotFound(
                f"commit {info.repo}@{info.id} is not finished yet", commit=info.id
            )
        cached = self._manifests.get(info.id)
        if cached is None:
            key = _layout.manifest(info.repo, info.manifest or info.id)
            data = self.backend.read(key)
            if info.manifest and hashlib.blake2b(data, digest_size=32).hexdigest() != info.manifest:
                raise self._corrupt(key, "its content does not match its hash")
            try:
                cached = Manifest.from_json(data)
            except (ValueError, KeyError, TypeError) as exc:
                raise self._corrupt(key, f"not a manifest: {type(exc).__name__}: {exc}") from None
            if len(self._manifests) > 256:
                self._manifests.clear()
            self._manifests[info.id] = cached
        return cached

    def manifest(self, repo: str, ref: str) -> Manifest:
        """The manifest of a finished commit (entries stream from it)."""
        return self._manifest(self.inspect_commit(repo, ref))

    def walk(self, repo: str, ref: str, prefix: str = "/") -> Iterator[Entry]:
        """Every file of a commit under ``prefix`` (a directory), in path order."""
        return self.manifest(repo, ref).entries(self.backend, clean_dir(prefix))

    def list_files(self, repo: str, ref: str, path: str = "/") -> Iterator[FileInfo]:
        """The direct children of a directory; sub-directories end with ``/``.

        Listing a file path returns that file alone.
        """
        info = self.inspect_commit(repo, ref)
        manifest = self._manifest(info)
        clean = clean_path(path)
        if clean != "/":
            entry = manifest.lookup(self.backend, clean)
            if entry is not None:
                yield FileInfo(path=entry.path, size=entry.size, hash=entry.hash, tag=entry.tag)
                return
        prefix = clean_dir(clean)
        found = False
        current_dir: str | None = None
        dir_size = 0
        for entry in manifest.entries(self.backend, prefix):
            found = True
            rest = entry.path[len(prefix) :]
            slash = rest.find("/")
            if slash < 0:
                if current_dir is not None:
                    yield FileInfo(path=current_dir, size=dir_size)
                    current_dir = None
                yield FileInfo(path=entry.path, size=entry.size, hash=entry.hash, tag=entry.tag)
                continue
            name = prefix + rest[: slash + 1]
            if name != current_dir:
                if current_dir is not None:
                    yield FileInfo(path=current_dir, size=dir_size)
                current_dir, dir_size = name, 0
            dir_size += entry.size
        if current_dir is not None:
            yield FileInfo(path=current_dir, size=dir_size)
        if not found and clean != "/":
            raise FileNotFound(
                f"file {clean!r} not found in {repo}@{info.id}", path=clean, commit=info.id
            )

    def inspect_file(self, repo: str, ref: str, path: str) -> FileInfo:
        """Size and hash of a file, or total size of a directory."""
        info = self.inspect_commit(repo, ref)
        manifest = self._manifest(info)
        clean = clean_path(path)
        entry = manifest.lookup(self.backend, clean) if clean != "/" else None
        if entry is not None:
            return FileInfo(path=entry.path, size=entry.size, hash=entry.hash, tag=entry.tag)
        prefix = clean_dir(clean)
        size, hasher, found = 0, _hasher(), False
        for child in manifest.entries(self.backend, prefix):
            found = True
            size += child.size
            hasher.update(f"{child.path[len(prefix) :]}\0{child.hash}\n".encode())
        if not found:
            raise FileNotFound(
                f"file {clean!r} not found in {repo}@{info.id}", path=clean, commit=info.id
            )
        return FileInfo(path=prefix, size=size, hash=hasher.hexdigest())

    def _file_entry(self, repo: str, ref: str, path: str) -> tuple[CommitInfo, Entry]:
        info = self.inspect_commit(repo, ref)
        clean = clean_path(path)
        entry = self._manifest(info).lookup(self.backend, clean)
        if entry is None:
            raise FileNotFound(
                f"file {clean!r} not found in {repo}@{info.id}", path=clean, commit=info.id
            )
        return info, entry

    def open_file(self, repo: str, ref: str, path: str) -> IO[bytes]:
        """Open a file of a commit for streaming reads."""
        _, entry = self._file_entry(repo, ref, path)
        return self.open_blob(entry.hash, entry.loc)

    def open_blob(self, digest: str, loc: str = "") -> IO[bytes]:
        """Stream a blob; its hash is checked as it is read (a mismatch raises at the end).

        ``loc`` is where a packed blob lives (an entry's ``loc``): one ranged GET. Without it a
        blob is the object ``blobs/<hash>``, or looked for in the packs (slow; see packs.py).
        """
        cached = self._cached_blob(digest)
        if cached is not None:
            return io.BytesIO(cached)
        if loc:
            return io.BytesIO(self.read_blob(digest, loc))
        key = _layout.blob(digest)
        try:
            raw = self.backend.open_read(key)
        except FileNotFoundError:
            found = self._find_packed(digest)
            if found is None:
                raise
            return io.BytesIO(self.read_blob(digest, found))
        return io.BufferedReader(_VerifyingReader(self, key, digest, raw))

    def read_blob(self, digest: str, loc: str = "") -> bytes:
        """The whole content of a blob, checked against its hash (``loc``: see open_blob)."""
        cached = self._cached_blob(digest)
        if cached is not None:
            return cached
        if not loc:
            key = _layout.blob(digest)
            try:
                data = self.backend.read(key)
            except FileNotFoundError:
                found = self._find_packed(digest)
                if found is None:
                    raise
                return self.read_blob(digest, found)
            self._check_blob(key, digest, data)
            return data
        try:
            pack, offset, size = parse_loc(loc)
        except ValueError as exc:
            raise self._corrupt(_layout.blob(digest), f"bad location: {exc}") from None
        key = _layout.pack(pack)
        data = self.backend.read_range(key, offset, offset + size)
        self._check_blob(key, digest, data)
        return data

    def _check_blob(self, key: str, digest: str, data: bytes) -> None:
        if hashlib.blake2b(data, digest_size=32).hexdigest() != digest:
            where = key if key.startswith("blobs/") else f"{key} (blob {digest})"
            raise self._corrupt(where, f"{len(data)} bytes that do not match its hash")

    def read_blobs(
        self, refs: Iterable[BlobRef | Entry], *, parallelism: int | None = None
    ) -> Iterator[tuple[BlobRef, bytes]]:
        """Many blobs, each checked, in no particular order (``get file -r``, a set's inputs).

        One ranged GET per coalesced range of a pack, up to ``parallelism`` requests in flight.
        """
        return read_many(
            self,
            (BlobRef(r.hash, r.size, r.loc) for r in refs),
            parallelism=parallelism,
        )

    def prefetch(self, refs: Iterable[BlobRef | Entry]) -> int:
        """Read blobs ahead into this store's small cache (packed ones only); return bytes read.

        ``open_blob`` / ``read_blob`` of a prefetched blob need no request. The cache keeps
        the most recent :data:`_BLOB_CACHE_BYTES`.
        """
        wanted = [r for r in refs if r.loc and r.size < _BLOB_CACHE_BYTES // 4]
        with self._blob_cache_lock:
            wanted = [r for r in wanted if r.hash not in self._blob_cache]
        total = 0
        for ref, data in self.read_blobs(wanted):
            self._cache_blob(ref.hash, data)
            total += len(data)
        return total

    def _cache_blob(self, digest: str, data: bytes) -> None:
        with self._blob_cache_lock:
            if digest in self._blob_cache:
                return
            self._blob_cache[digest] = data
            self._blob_cache_bytes += len(data)
            while self._blob_cache_bytes > _BLOB_CACHE_BYTES and self._blob_cache:
                _, old = self._blob_cache.popitem(last=False)
                self._blob_cache_bytes -= len(old)

    def _cached_blob(self, digest: str) -> bytes | None:
        if not self._blob_cache:
            return None
        with self._blob_cache_lock:
            return self._blob_cache.get(digest)

    def locate(self, repo: str, ref: str, path: str, digest: str = "") -> str:
        """The location (``loc``) of the blob of a file, ``""`` when it is a single object.

        For a caller that has a file's hash but not its entry (a datum input): one lookup in
        the commit's manifest (its chunks are cached). A ``digest`` that is not the file's
        gives ``""``.
        """
        if not self.pack_below and self.backend.local_root is not None:
            return ""  # a local store that does not pack: every blob is blobs/<hash>
        try:
            _, entry = self._file_entry(repo, ref, path)
        except (FileNotFound, CommitNotFound):
            return ""
        return entry.loc if not digest or entry.hash == digest else ""

    def _find_packed(self, digest: str) -> str | None:
        """Find a blob that is not a single object in the packs' indexes (read and cached)."""
        if self._pack_index is None:
            self._pack_index = {}
        found = self._pack_index.get(digest)
        if found is None:
            for name in self.backend.list(_layout.packs()):
                if len(name) == 32 and name not in self._packs_indexed:
                    self._load_pack_index(name)
            found = self._pack_index.get(digest)
        return None if found is None else f"{found[0]}:{found[1]}:{found[2]}"

    def _load_pack_index(self, pack: str) -> None:
        """Read one pack's index from its trailer (three small requests; immutable, cached)."""
        if pack in self._packs_indexed:
            return
        key = _layout.pack(pack)
        size = self.backend.size(key)
        if size is None:
            raise FileNotFoundError(key)
        try:
            tail = self.backend.read_range(key, max(0, size - 4096), size)
            index_len, _ = parse_trailer(tail)
            start = size - 24 - index_len
            if len(tail) >= 24 + index_len:
                raw = tail[len(tail) - 24 - index_len : len(tail) - 24]
            else:
                raw = self.backend.read_range(key, start, size - 24)
            index = parse_index(raw)
        except (ValueError, OSError, EOFError, zlib.error) as exc:
            if isinstance(exc, FileNotFoundError):
                raise
            raise self._corrupt(key, f"not a pack: {exc}") from None
        if self._pack_index is None:
            self._pack_index = {}
        for digest, (offset, blob_size) in index.items():
            self._pack_index.setdefault(digest, (pack, offset, blob_size))
        self._packs_indexed.add(pack)

    def read_bytes(self, repo: str, ref: str, path: str) -> bytes:
        """The whole content of one file."""
        _, entry = self._file_entry(repo, ref, path)
        return self.read_blob(entry.hash, entry.loc)

    def blob_path(self, digest: str, loc: str = "") -> Path | None:
        """The local path of a blob when the store is a local folder (for hard links).

        ``None`` for a remote store, a packed blob, or a blob that is not a file of its own.
        """
        root = self.backend.local_root
        if root is None or loc:
            return None
        path = root / _layout.blob(digest)
        # Not a file of its own (packed, e.g. by a writer with DATUM_STORE_PACK_BELOW set):
        # the caller reads it with open_blob instead.
        return path if path.exists() else None

    def entries(self, repo: str, ref: str, prefix: str = "/") -> Iterator[Entry]:
        """Every file of a commit whose path starts with the string ``prefix``, in path order.

        Unlike :meth:`walk`, ``prefix`` need not be a directory (``/d00`` reads ``/d00…``).
        """
        return self.manifest(repo, ref).entries(self.backend, prefix)

    def diff(self, repo: str, old_ref: str | None, new_ref: str) -> Iterator[FileDiff]:
        """Added / modified / deleted files from ``old_ref`` to ``new_ref`` (path order)."""
        new = self.manifest(repo, new_ref).entries(self.backend)
        old: Iterator[Entry] = (
            self.manifest(repo, old_ref).entries(self.backend) if old_ref else iter(())
        )
        sentinel = Entry("\U0010ffff", "", 0, "")
        a, b = next(old, sentinel), next(new, sentinel)
        while a is not sentinel or b is not sentinel:
            if a.path == b.path:
                if a.hash != b.hash:
                    yield FileDiff(path=a.path, change="modified", old_size=a.size, new_size=b.size)
                a, b = next(old, sentinel), next(new, sentinel)
            elif a.path < b.path:
                yield FileDiff(path=a.path, change="deleted", old_size=a.size, new_size=None)
                a = next(old, sentinel)
            else:
                yield FileDiff(path=b.path, change="added", old_size=None, new_size=b.size)
                b = next(new, sentinel)

    # -- blobs --------------------------------------------------------------------------

    def put_blob(self, data: bytes | IO[bytes] | BinaryIO | _Concat) -> tuple[str, int]:
        """Store content (bytes or a binary stream) as a blob; return ``(hash, size)``.

        Streams are hashed while they are copied (constant memory). A blob already stored under
        that hash is kept only if its bytes match: a corrupted or truncated one is rewritten.
        """
        if isinstance(data, bytes):
            return self._put_blob_bytes(data), len(data)
        return self._put_blob_stream(data)

    def _put_local_file(self, local: str) -> tuple[str, int]:
        with open(local, "rb") as fh:
            return self.put_blob(fh)

    def _put_blob_bytes(self, data: bytes, *, digest: str = "") -> str:
        digest = digest or hashlib.blake2b(data, digest_size=32).hexdigest()
        put_immutable(self.backend, _layout.blob(digest), data)
        return digest

    def _put_blob_stream(
        self, stream: IO[bytes] | BinaryIO | _Concat | Prefixed
    ) -> tuple[str, int]:
        head = stream.read(_SMALL)
        if len(head) < _SMALL:
            return self._put_blob_bytes(head), len(head)
        hasher = _hasher()
        size = 0
        temp_key, out = self.backend.open_write_temp()
        try:
            with out:
                for data in _chain(head, stream):
                    hasher.update(data)
                    out.write(data)
                    size += len(data)
            digest = hasher.hexdigest()
            key = _layout.blob(digest)
            if self.backend.local_root is None and self.backend.size(key) == size:
                # Remote: a same-size object under this hash is kept (rewriting would copy it
                # server-side); reads still check the hash. Locally the rename is free.
                self.backend.delete(temp_key)
            else:
                self.backend.move_into(temp_key, key)
        except BaseException:
            self.backend.delete(temp_key)
            raise
        return digest, size


class _VerifyingReader(io.RawIOBase):
    """A blob stream that hashes what it returns and raises at its end on a mismatch."""

    def __init__(self, store: Store, key: str, digest: str, raw: IO[bytes]) -> None:
        self._store = store
        self._key = key
        self._digest = digest
        self._raw = raw
        self._hasher = _hasher()
        self._size = 0
        self._checked = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        n = len(data)
        if n:
            view[:n] = data
            self._hasher.update(data)
            self._size += n
        elif not self._checked:
            self._checked = True
            if self._hasher.hexdigest() != self._digest:
                raise self._store._corrupt(
                    self._key, f"{self._size} bytes that do not match its hash"
                )
        return n

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._raw.close()
        super().close()


def _parse_ops(
    lines: Iterable[str], corrupt: Callable[[str, str], CorruptObjectError], key: str
) -> Iterator[Op]:
    for line in lines:
        if line:
            try:
                fields = line.rstrip("\n").split("\t")
                if len(fields) == 5:
                    kind, path, digest, size, tag = fields
                    yield Op(kind, path, digest, int(size), tag)
                else:
                    kind, path, digest, size, tag, loc = fields
                    yield Op(kind, path, digest, int(size), tag, loc)
            except ValueError:
                raise corrupt(key, f"bad op line {line[:60]!r}") from None


class _StreamedSegment:
    """A large op segment read line by line each time it is iterated."""

    def __init__(self, store: Store, key: str) -> None:
        self.store = store
        self.key = key

    def __iter__(self) -> Iterator[Op]:
        try:
            with (
                self.store.backend.open_read(self.key) as raw,
                gzip.GzipFile(fileobj=raw, mode="rb") as unzipped,
                io.TextIOWrapper(unzipped, encoding="utf-8", newline="\n") as text,
            ):
                yield from _parse_ops(text, self.store._corrupt, self.key)
        except (OSError, EOFError, UnicodeDecodeError, zlib.error) as exc:
            raise self.store._corrupt(self.key, f"{type(exc).__name__}: {exc}") from None


def _chain(head: bytes, stream: Any) -> Iterator[bytes]:
    yield head
    yield from iter_chunks(stream)


class _Concat(io.RawIOBase):
    """Two binary streams read as one (for ``--append``)."""

    def __init__(self, first: IO[bytes], second: IO[bytes]) -> None:
        self._parts = [first, second]

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        out = b""
        while self._parts and (size < 0 or len(out) < size):
            data = self._parts[0].read(-1 if size < 0 else size - len(out))
            if not data:
                self._parts.pop(0)
                continue
            out += data
        return out


def _drop_deleted(ops: list[Op]) -> list[Op]:
    """Drop ops that a later delete in the same buffer removes.

    A segment is sorted by path, so ``D /d`` sorts before an earlier ``P /d/x``; without this
    the put would look newer than the delete and survive it.
    """
    if not any(op.kind == "D" for op in ops):
        return ops
    deleted: set[str] = set()
    kept: list[Op] = []
    for op in reversed(ops):
        path = op.path
        covered = (
            path in deleted
            or "/" in deleted
            or any(path[:i] in deleted for i in range(1, len(path)) if path[i] == "/")
        )
        if op.kind == "D":
            deleted.add(path)
            if covered:
                continue
        elif covered:
            continue
        kept.append(op)
    kept.reverse()
    return kept


def _parse_size(text: str, name: str) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{name}={text!r}: not a number of bytes") from None
    if value < 0:
        raise ValueError(f"{name}={text!r}: must be 0 (no packs) or more")
    return value


def _is_id(value: object) -> bool:
    return isinstance(value, str) and len(value) == 32 and set(value) <= _HEX32


def _ref_body(commit_id: str | None, record: Mapping[str, Any] | None = None) -> bytes:
    body: dict[str, Any] = {"commit": commit_id}
    if record is not None:
        body["record"] = record
    return json.dumps(body, separators=(",", ":")).encode()


def _format_body() -> bytes:
    return json.dumps({"format": _layout.FORMAT_NAME, "version": _layout.FORMAT_VERSION}).encode()


def _check_commit_id(repo: str, commit_id: str) -> None:
    """Commit ids are 32 hex characters; anything else never reaches a storage key."""
    if not isinstance(commit_id, str) or len(commit_id) != 32 or not set(commit_id) <= _HEX32:
        raise CommitNotFound(
            f"commit {commit_id!r} not found in repo {repo!r}: a commit id is 32 hex characters",
            repo=repo,
            commit=commit_id,
        )


def _kind_of(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"
