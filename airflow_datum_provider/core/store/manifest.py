"""Commit manifests: sorted, compact, streamable lists of ``(path, hash, size, tag)``.

A manifest is a small JSON index plus content-addressed chunks. Each chunk is a gzip'd TSV of
entries sorted by path; chunk boundaries are content-defined (a cut after a path whose CRC32 has
its low 12 bits zero, or at 16,384 entries), so two commits that share most files share most
chunks. Opening a commit reads only the index; listing streams chunks one at a time; looking up
one path or one directory reads only the chunks whose path range covers it.

``tag`` is the id of the datum that wrote the file (empty for files put by users); the merge
uses it to detect two datums writing one path. ``loc`` (format 3) says where a packed blob
lives (``<pack id>:<offset>``, see ``packs.py``); it is a fifth column only when set, so a
store that does not pack writes the chunks format 2 wrote.
"""

from __future__ import annotations

import gzip
import hashlib
import heapq
import itertools
import json
import weakref
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from airflow_datum_provider.core.errors import CorruptObjectError, InvalidPathError
from airflow_datum_provider.core.store import _layout
from airflow_datum_provider.core.store._backend import Backend, put_immutable

__all__ = ["ChunkRef", "Entry", "Manifest", "ManifestWriter", "Op", "build_manifest", "merge_ops"]

_CUT_MASK = 0xFFF
_MAX_CHUNK = 16384


class Entry(NamedTuple):
    """One file of a commit."""

    path: str
    hash: str
    size: int
    tag: str = ""
    loc: str = ""  # where a packed blob lives ("" = the single object blobs/<hash>)


class Op(NamedTuple):
    """One staged change: ``P`` put, ``A`` append, ``D`` delete (path and everything below)."""

    kind: str
    path: str
    hash: str = ""
    size: int = 0
    tag: str = ""
    loc: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChunkRef:
    """Where one chunk lives and which paths it covers."""

    first: str
    last: str
    count: int
    size: int
    key: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    """The index of a commit's files; chunks are read lazily."""

    chunks: tuple[ChunkRef, ...]
    count: int
    size: int

    @classmethod
    def empty(cls) -> Manifest:
        return cls(chunks=(), count=0, size=0)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "version": 1,
                "count": self.count,
                "size": self.size,
                "chunks": [[c.first, c.last, c.count, c.size, c.key] for c in self.chunks],
            },
            separators=(",", ":"),
        ).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        raw = json.loads(data)
        chunks = tuple(
            ChunkRef(first=f, last=la, count=n, size=s, key=k) for f, la, n, s, k in raw["chunks"]
        )
        return cls(chunks=chunks, count=raw["count"], size=raw["size"])

    def entries(self, backend: Backend, prefix: str = "/") -> Iterator[Entry]:
        """Stream entries whose path starts with ``prefix``, in path order."""
        if prefix == "/":
            for chunk in self.chunks:
                yield from read_chunk(backend, chunk.key)
            return
        lasts = [c.last for c in self.chunks]
        start = bisect_left(lasts, prefix)
        for chunk in self.chunks[start:]:
            if chunk.first > prefix and not chunk.first.startswith(prefix):
                return
            for entry in read_chunk(backend, chunk.key):
                if entry.path.startswith(prefix):
                    yield entry
                elif entry.path > prefix:
                    return

    def lookup(self, backend: Backend, path: str) -> Entry | None:
        """Find one file, reading at most one chunk."""
        lasts = [c.last for c in self.chunks]
        idx = bisect_left(lasts, path)
        if idx == len(self.chunks) or self.chunks[idx].first > path:
            return None
        entries = list(read_chunk(backend, self.chunks[idx].key, cache=True))
        paths = _CHUNK_PATHS.get(self.chunks[idx].key)
        if paths is None or len(paths) != len(entries):
            paths = [e.path for e in entries]
            if len(_CHUNK_PATHS) > 256:
                _CHUNK_PATHS.clear()
            _CHUNK_PATHS[self.chunks[idx].key] = paths
        at = bisect_left(paths, path)  # many lookups in one chunk (a set's inputs): no scan
        return entries[at] if at < len(entries) and paths[at] == path else None


_CHUNK_CACHES: weakref.WeakKeyDictionary[Backend, dict[str, list[Entry]]] = (
    weakref.WeakKeyDictionary()
)
_CHUNK_CACHE_ENTRIES = 50_000  # about 12 MB of parsed entries at most
_CHUNK_PATHS: dict[str, list[str]] = {}  # chunk hash -> its sorted paths (for lookups)


def read_chunk(backend: Backend, key: str, *, cache: bool = False) -> Iterator[Entry]:
    """The entries of one chunk, checked against its hash (a mismatch is reported as corrupt).

    Chunks are immutable and named by their hash, so with ``cache`` verified ones are kept in
    a small cache per backend (per opened store): many single-path lookups read each once.
    Streaming a whole listing does not use it (that stays constant-memory).
    """
    cache_of = _CHUNK_CACHES.get(backend) if cache else None
    cached = None if cache_of is None else cache_of.get(key)
    if cached is not None:
        return iter(cached)
    name = _layout.chunk(key)
    data = backend.read(name)
    try:
        if hashlib.blake2b(data, digest_size=32).hexdigest() != key:
            raise ValueError(f"{len(data)} bytes that do not match its hash")
        text = gzip.decompress(data).decode()
    except (ValueError, OSError, EOFError, zlib.error) as exc:
        raise _corrupt_chunk(backend, name, exc) from None
    if not cache:
        return _parse_chunk(backend, name, text)
    entries = list(_parse_chunk(backend, name, text))
    if len(entries) <= _CHUNK_CACHE_ENTRIES // 4:
        cache_of = _CHUNK_CACHES.setdefault(backend, {})
        if sum(len(v) for v in cache_of.values()) + len(entries) > _CHUNK_CACHE_ENTRIES:
            cache_of.clear()
        cache_of[key] = entries
    return iter(entries)


def _corrupt_chunk(backend: Backend, name: str, exc: Exception) -> CorruptObjectError:
    return CorruptObjectError(
        f"store {backend.url}: {name} is corrupt ({exc})", url=backend.url, key=name
    )


def _parse_chunk(backend: Backend, name: str, text: str) -> Iterator[Entry]:
    for line in text.splitlines():
        try:
            fields = line.split("\t")
            if len(fields) == 4:
                path, digest, size, tag = fields
                entry = Entry(path, digest, int(size), tag)
            else:
                path, digest, size, tag, loc = fields
                entry = Entry(path, digest, int(size), tag, loc)
        except ValueError as exc:
            raise _corrupt_chunk(backend, name, exc) from None
        yield entry


class ManifestWriter:
    """Collects sorted entries into content-addressed chunks."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.chunks: list[ChunkRef] = []
        self.count = 0
        self.size = 0
        self._lines: list[str] = []
        self._first = ""
        self._last = ""
        self._chunk_size = 0
        self._prev = ""
        # Pachyderm refuses a path that is a file and a directory. Sorted input makes that
        # cheap: a file F can only collide with paths before F + "0" ("0" follows "/").
        self._files: list[str] = []
        self._spliced: list[ChunkRef] = []
        self._spliced_lasts: list[str] = []
        self._spliced_paths: dict[str, frozenset[str]] = {}

    def add(self, entry: Entry) -> None:
        path = entry.path
        if path <= self._prev and self.count:
            raise ValueError(f"manifest entries out of order: {path!r} after {self._prev!r}")
        self._prev = path
        if self._files:
            self._files = [f for f in self._files if path < f + "0"]
            for f in self._files:
                if path.startswith(f + "/"):
                    raise InvalidPathError(f"file / directory path collision ({f})", path=f)
        if self._spliced:
            self._check_spliced(path)
        self._files.append(path)
        if not self._lines:
            self._first = path
        if entry.loc:
            self._lines.append(f"{path}\t{entry.hash}\t{entry.size}\t{entry.tag}\t{entry.loc}\n")
        else:
            self._lines.append(f"{path}\t{entry.hash}\t{entry.size}\t{entry.tag}\n")
        self._last = path
        self._chunk_size += entry.size
        self.count += 1
        self.size += entry.size
        if (zlib.crc32(path.encode()) & _CUT_MASK) == 0 or len(self._lines) >= _MAX_CHUNK:
            self._flush()

    @property
    def empty(self) -> bool:
        """No entries are waiting to be cut into a chunk."""
        return not self._lines

    def can_splice(self, chunk: ChunkRef) -> bool:
        """Whether ``chunk`` can be reused unread: nothing pending, no file reaching into it."""
        return not self._lines and all(f + "0" <= chunk.first for f in self._files)

    def _check_spliced(self, path: str) -> None:
        """A directory of ``path`` must not be a file inside a chunk reused without reading.

        Every path between a file F and a path below F starts with F, so F can only be such a
        file if the last reused path starts with F too (and not with F + "/", which would be a
        collision inside a chunk, refused when it was written). That test is a string compare;
        the chunk is read only when it passes.
        """
        last = self._spliced_lasts[-1]
        slash = path.find("/", 1)
        while slash > 0:
            parent = path[:slash]
            if not last.startswith(parent):
                return
            if len(last) == len(parent) or last[len(parent)] != "/":
                self._check_file_in_spliced(parent)
            slash = path.find("/", slash + 1)

    def _check_file_in_spliced(self, parent: str) -> None:
        idx = bisect_left(self._spliced_lasts, parent)
        if idx == len(self._spliced) or self._spliced[idx].first > parent:
            return
        chunk = self._spliced[idx]
        paths = self._spliced_paths.get(chunk.key)
        if paths is None:
            paths = frozenset(e.path for e in read_chunk(self.backend, chunk.key))
            self._spliced_paths[chunk.key] = paths
        if parent in paths:
            raise InvalidPathError(f"file / directory path collision ({parent})", path=parent)

    def add_chunk(self, chunk: ChunkRef) -> None:
        """Reuse an existing chunk as it is (the writer must be :attr:`empty`)."""
        if self._lines:
            raise ValueError("add_chunk needs an empty writer")
        if chunk.first <= self._prev and self.count:
            raise ValueError(f"manifest chunk out of order: {chunk.first!r} after {self._prev!r}")
        self.chunks.append(chunk)
        self.count += chunk.count
        self.size += chunk.size
        self._prev = chunk.last
        self._files = []
        self._spliced.append(chunk)
        self._spliced_lasts.append(chunk.last)

    def _flush(self) -> None:
        if not self._lines:
            return
        data = gzip.compress("".join(self._lines).encode(), compresslevel=6, mtime=0)
        key = hashlib.blake2b(data, digest_size=32).hexdigest()
        put_immutable(self.backend, _layout.chunk(key), data)
        self.chunks.append(
            ChunkRef(
                first=self._first,
                last=self._last,
                count=len(self._lines),
                size=self._chunk_size,
                key=key,
            )
        )
        self._lines = []
        self._chunk_size = 0

    def finish(self) -> Manifest:
        self._flush()
        return Manifest(chunks=tuple(self.chunks), count=self.count, size=self.size)


_Keyed = tuple[str, int, int, str, "Entry | Op"]


def merge_ops(
    base: Iterable[Entry],
    segments: Iterable[Iterable[Op]],
    append: Callable[[Entry | None, Op], Entry],
) -> Iterator[Entry]:
    """Apply sorted op segments (later segments win) to a sorted base listing, streaming.

    Each segment is sorted by path with ops on one path kept in the order they were made. A
    ``D`` op removes the path and everything below it (``path + "/"``) as of its position.
    """
    return _merge_keyed(base, _keyed_ops(segments), append)


def build_manifest(
    writer: ManifestWriter,
    backend: Backend,
    base: Manifest | None,
    segments: Iterable[Iterable[Op]],
    append: Callable[[Entry | None, Op], Entry],
) -> Manifest:
    """:func:`merge_ops` into ``writer``, reusing every base chunk that no op touches.

    A chunk whose path range holds no op (and no earlier delete reaching into it) is spliced
    into the new manifest as it is, without being read, so a small change to a large commit
    reads and writes only the chunks around it.
    """
    ops = _Peekable(_keyed_ops(segments))
    carry: list[_Keyed] = []  # deletes whose subtree may reach into later chunks
    for chunk in base.chunks if base is not None else ():
        upcoming = ops.peek()
        # A delete still matters while anything left to merge (this chunk or a pending op, which
        # may come from an earlier segment) could sit below it.
        bound = chunk.first if upcoming is None else min(chunk.first, upcoming[0])
        carry = [k for k in carry if _delete_upper(k[0]) > bound]
        if (
            not carry
            and (upcoming is None or upcoming[0] > chunk.last)
            and writer.can_splice(chunk)
        ):
            writer.add_chunk(chunk)
            continue
        region = carry + ops.take_through(chunk.last)
        for entry in _merge_keyed(read_chunk(backend, chunk.key), iter(region), append):
            writer.add(entry)
        carry = [k for k in region if k[3] == "D" and _delete_upper(k[0]) > chunk.last]
    for entry in _merge_keyed((), itertools.chain(carry, ops), append):
        writer.add(entry)
    return writer.finish()


def _delete_upper(path: str) -> str:
    """The first path after everything a delete of ``path`` removes."""
    return path.rstrip("/") + "0"


class _Peekable:
    def __init__(self, items: Iterator[_Keyed]) -> None:
        self._items = items
        self._next: _Keyed | None = next(items, None)

    def peek(self) -> _Keyed | None:
        return self._next

    def take_through(self, last: str) -> list[_Keyed]:
        taken = []
        while self._next is not None and self._next[0] <= last:
            taken.append(self._next)
            self._next = next(self._items, None)
        return taken

    def __iter__(self) -> Iterator[_Keyed]:
        while self._next is not None:
            item = self._next
            self._next = next(self._items, None)
            yield item


def _keyed_ops(segments: Iterable[Iterable[Op]]) -> Iterator[_Keyed]:
    # A function, not a generator expression in the loop: that would read ``seg_no`` lazily and
    # give every segment the last number, so an earlier segment could win.
    return heapq.merge(*(_keyed(seg_no, segment) for seg_no, segment in enumerate(segments)))


def _merge_keyed(
    base: Iterable[Entry],
    ops: Iterable[_Keyed],
    append: Callable[[Entry | None, Op], Entry],
) -> Iterator[Entry]:
    merged = heapq.merge(((e.path, -1, i, "E", e) for i, e in enumerate(base)), ops)
    deletes: list[tuple[str, str, tuple[int, int]]] = []  # (prefix, upper bound, seq)
    current_path: str | None = None
    state: Entry | None = None
    for path, seg_no, idx, kind, item in merged:
        if path != current_path:
            if state is not None:
                yield state
            current_path = path
            state = None
            if deletes:
                deletes = [d for d in deletes if path < d[1]]
        seq = (seg_no, idx)
        if deletes and any(path.startswith(p) and seq < s for p, _, s in deletes):
            continue
        if kind == "E":
            assert isinstance(item, Entry)
            state = item
        elif kind == "P":
            assert isinstance(item, Op)
            state = Entry(item.path, item.hash, item.size, item.tag, item.loc)
        elif kind == "A":
            assert isinstance(item, Op)
            state = append(state, item)
        else:
            state = None
            prefix = path.rstrip("/") + "/"
            deletes.append((prefix, prefix[:-1] + "0", seq))
    if state is not None:
        yield state


def _keyed(seg_no: int, segment: Iterable[Op]) -> Iterator[tuple[str, int, int, str, Entry | Op]]:
    for i, op in enumerate(segment):
        yield op.path, seg_no, i, op.kind, op
