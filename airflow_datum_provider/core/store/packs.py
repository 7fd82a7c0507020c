r"""Packs: many small blobs in one immutable object, read back with ranged GETs.

On object storage every request costs a round trip (and money), so small blobs are not stored
one object each: a :class:`BlobBatch` appends them to an in-memory pack and uploads it as one
object ``packs/<id>`` once it holds :data:`PACK_TARGET` bytes, or when the batch is flushed.

A pack is the blobs back to back, then its index, then a fixed trailer::

    <blob> <blob> ... <index: gzip of "hash \t offset \t size \n" lines> <trailer: 24 bytes>
    trailer = b"DPACK\x00\x01\x00" + index length (8 bytes, big-endian) + blob count (8 bytes)

Blobs are stored raw (not compressed), so a blob is one ranged GET of ``size`` bytes at
``offset``, and neighbouring blobs of one pack are read with one coalesced range.

**How a reader finds a packed blob.** The writer knows the location as soon as the blob is
appended (the pack id is random, chosen when the pack is started), so it travels with the
blob: a manifest entry, a staged op and a datum result carry
``loc = "<pack id>:<offset>:<size>"``.
Reading by entry is therefore one ranged GET and no lookup. A blob asked for by hash alone
(an old record, an API caller that has only the hash) is looked for as a single object
``blobs/<h>`` first, then in the packs' indexes (read from their trailers, cached per store):
slow, but never a wrong answer.

Packs are immutable and uniquely named, so uploading one is a plain PUT; a batch's blobs are
durable only after :meth:`BlobBatch.flush` returns, and whatever references them (an op
segment, a datum result) is written after that.
"""

from __future__ import annotations

import collections
import gzip
import hashlib
import struct
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from airflow_datum_provider.core._failpoints import failpoint
from airflow_datum_provider.core.store import _layout

if TYPE_CHECKING:
    from airflow_datum_provider.core.store.store import Store

__all__ = [
    "PACK_BELOW",
    "PACK_TARGET",
    "BlobBatch",
    "BlobRef",
    "Stored",
    "pack_bytes",
    "parse_loc",
    "parse_trailer",
]

PACK_BELOW = 1 << 20  # blobs smaller than this are packed (on stores that pack)
PACK_TARGET = 8 << 20  # a pack is uploaded once it holds this many bytes
TRAILER = struct.Struct(">8sQQ")
MAGIC = b"DPACK\x00\x01\x00"
COALESCE_GAP = 256 << 10  # blobs this close in one pack are read with one range
COALESCE_SPAN = 8 << 20  # ... up to this many bytes per range


class Stored(NamedTuple):
    """A stored blob: its hash, size, and where it lives (``""``: the object ``blobs/<h>``)."""

    hash: str
    size: int
    loc: str = ""


class BlobRef(NamedTuple):
    """What a reader needs to fetch a blob."""

    hash: str
    size: int
    loc: str = ""


def parse_loc(loc: str) -> tuple[str, int, int]:
    """``(pack id, offset, size)`` of a location; ``ValueError`` when it is malformed."""
    parts = loc.split(":")
    if len(parts) != 3 or len(parts[0]) != 32 or not parts[1].isdigit() or not parts[2].isdigit():
        raise ValueError(f"not a pack location: {loc[:60]!r}")
    return parts[0], int(parts[1]), int(parts[2])


def pack_bytes(blobs: list[tuple[str, bytes]]) -> bytes:
    """The object of a pack holding ``blobs`` (``(hash, data)``, in order)."""
    offset = 0
    lines = []
    for digest, data in blobs:
        lines.append(f"{digest}\t{offset}\t{len(data)}\n")
        offset += len(data)
    index = gzip.compress("".join(lines).encode(), compresslevel=1, mtime=0)
    trailer = TRAILER.pack(MAGIC, len(index), len(blobs))
    return b"".join([*(d for _, d in blobs), index, trailer])


def parse_trailer(data: bytes) -> tuple[int, int]:
    """``(index length, blob count)`` from a pack's last :data:`TRAILER` bytes."""
    magic, index_len, count = TRAILER.unpack(data[-TRAILER.size :])
    if magic != MAGIC:
        raise ValueError("no pack trailer")
    return index_len, count


def parse_index(data: bytes) -> dict[str, tuple[int, int]]:
    """``hash -> (offset, size)`` of a pack's index bytes."""
    found = {}
    for line in gzip.decompress(data).decode().splitlines():
        digest, offset, size = line.split("\t")
        found[digest] = (int(offset), int(size))
    return found


class _Pack:
    def __init__(self) -> None:
        self.id = uuid.uuid4().hex
        self.blobs: list[tuple[str, bytes]] = []
        self.size = 0


class BlobBatch:
    """Put many blobs with few requests; they are durable once :meth:`flush` returns.

    ``with store.blob_batch() as blobs: ref = blobs.put_bytes(data)`` (flushed on a clean exit).
    On a store that packs (object storage), blobs below ``store.pack_below`` go into packs,
    uploaded in the background (at most ``parallelism`` at once) as each fills up; larger ones
    are single content-addressed objects, as are all blobs on a store that does not pack (the
    local folder, where a blob file is what a datum's input is hard-linked to). Within a batch
    a blob is stored once however often it is put. Thread-safe.
    """

    def __init__(self, store: Store, *, parallelism: int | None = None) -> None:
        self.store = store
        self.pack_below = store.pack_below
        self.parallelism = max(1, parallelism or store.parallelism)
        self._lock = threading.Lock()
        self._pack = _Pack()
        self._seen: dict[str, Stored] = {}
        self._uploads: collections.deque[Future[None]] = collections.deque()
        self.packs_written = 0
        self._failed: BaseException | None = None

    # -- writing ---------------------------------------------------------------------------

    def put_bytes(self, data: bytes) -> Stored:
        """Store ``data``; return where it is (durable after :meth:`flush`)."""
        digest = hashlib.blake2b(data, digest_size=32).hexdigest()
        return self.put_hashed(digest, data)

    def put_hashed(self, digest: str, data: bytes) -> Stored:
        """:meth:`put_bytes` for bytes whose hash the caller has just computed."""
        seen = self._seen.get(digest)
        if seen is not None:
            return seen
        if len(data) >= self.pack_below:
            self.store._put_blob_bytes(data, digest=digest)
            stored = Stored(digest, len(data))
            self._seen[digest] = stored
            return stored
        sealed = None
        with self._lock:
            seen = self._seen.get(digest)
            if seen is not None:
                return seen
            pack = self._pack
            stored = Stored(digest, len(data), f"{pack.id}:{pack.size}:{len(data)}")
            pack.blobs.append((digest, data))
            pack.size += len(data)
            self._seen[digest] = stored
            if pack.size >= PACK_TARGET:
                sealed, self._pack = pack, _Pack()
        if sealed is not None:
            self._upload(sealed)
        return stored

    def put_stream(self, stream: IO[bytes] | Any) -> Stored:
        """Store a binary stream (small ones packed; large ones streamed to a single object)."""
        if self.pack_below:
            head = stream.read(self.pack_below)
            if len(head) < self.pack_below:
                return self.put_bytes(head)
            digest, size = self.store._put_blob_stream(Prefixed(head, stream))
        else:
            digest, size = self.store._put_blob_stream(stream)
        return Stored(digest, size)

    def put_stream_file(self, local: str) -> Stored:
        """:meth:`put_stream` of a local file."""
        with open(local, "rb") as fh:
            return self.put_stream(fh)

    def seen(self, digest: str) -> Stored | None:
        """Where this batch put ``digest``, if it did."""
        return self._seen.get(digest)

    def _upload(self, pack: _Pack) -> None:
        if not pack.blobs:
            return
        body = pack_bytes(pack.blobs)
        key = _layout.pack(pack.id)
        failpoint("pack-upload")  # crash tests: SIGKILL before this pack is on storage
        future = _pool().submit(self.store.backend.write, key, body)
        wait: list[Future[None]] = []
        with self._lock:
            self.packs_written += 1
            self._uploads.append(future)
            while len(self._uploads) > self.parallelism:
                wait.append(self._uploads.popleft())
        for done in wait:
            self._result(done)

    def _result(self, future: Future[None]) -> None:
        try:
            future.result()
        except BaseException as exc:
            self._failed = exc  # every later flush() raises: these blobs are not durable
            raise

    def flush(self) -> None:
        """Upload the open pack and wait for every upload: all blobs put so far are durable."""
        with self._lock:
            pack, self._pack = self._pack, _Pack()
        self._upload(pack)
        while True:
            with self._lock:
                if not self._uploads:
                    break
                future = self._uploads.popleft()
            self._result(future)
        if self._failed is not None:
            raise self._failed

    def discard(self) -> None:
        """Drop what is not uploaded yet (waiting for uploads in flight; errors ignored)."""
        with self._lock:
            self._pack = _Pack()
            uploads, self._uploads = list(self._uploads), collections.deque()
        for future in uploads:
            try:
                future.result()
            except Exception:  # noqa: S110 - discarding: the batch's blobs are not wanted
                pass

    def __enter__(self) -> BlobBatch:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.flush()
        else:
            self.discard()


class Prefixed:
    """A stream whose first bytes were already read."""

    def __init__(self, head: bytes, rest: Any) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                head, self._head = self._head, b""
                if size < 0:
                    rest: bytes = self._rest.read()
                    return head + rest
                more = self._rest.read(size - len(head)) if size > len(head) else b""
                return head + more
            head, self._head = self._head[:size], self._head[size:]
            return head
        data: bytes = self._rest.read(size)
        return data


# -- reading ---------------------------------------------------------------------------------


class Span(NamedTuple):
    """One ranged read of a pack, and the blobs it covers."""

    pack: str
    start: int
    end: int
    refs: tuple[tuple[int, BlobRef], ...]  # (offset, ref)


def plan_spans(refs: Iterable[BlobRef]) -> tuple[list[Span], list[BlobRef]]:
    """Group packed blobs into coalesced ranges per pack; return them and the unpacked refs."""
    by_pack: dict[str, list[tuple[int, BlobRef]]] = {}
    single: list[BlobRef] = []
    seen: set[str] = set()
    for ref in refs:
        if ref.hash in seen:
            continue
        seen.add(ref.hash)
        if not ref.loc:
            single.append(ref)
            continue
        pack, offset, _ = parse_loc(ref.loc)
        by_pack.setdefault(pack, []).append((offset, ref))
    spans = []
    for pack, items in by_pack.items():
        items.sort(key=lambda item: item[0])
        current: list[tuple[int, BlobRef]] = []
        start = end = 0
        for offset, ref in items:
            if current and (
                offset - end > COALESCE_GAP or offset + ref.size - start > COALESCE_SPAN
            ):
                spans.append(Span(pack, start, end, tuple(current)))
                current = []
            if not current:
                start = offset
            current.append((offset, ref))
            end = max(end, offset + ref.size)
        if current:
            spans.append(Span(pack, start, end, tuple(current)))
    return spans, single


def read_many(
    store: Store, refs: Iterable[BlobRef], *, parallelism: int | None = None
) -> Iterator[tuple[BlobRef, bytes]]:
    """Every blob of ``refs`` (each once), checked against its hash, in no particular order.

    Packed blobs are read with one ranged GET per coalesced range of a pack; single objects
    with one GET each; up to ``parallelism`` requests in flight.
    """
    spans, single = plan_spans(refs)
    jobs: list[Callable[[], list[tuple[BlobRef, bytes]]]] = []
    for span in spans:
        jobs.append(lambda span=span: _read_span(store, span))  # type: ignore[misc]
    for ref in single:
        jobs.append(lambda ref=ref: [(ref, store.read_blob(ref.hash))])  # type: ignore[misc]
    if len(jobs) <= 1 or store.backend.local_root is not None:
        for job in jobs:
            yield from job()
        return
    limit = max(1, parallelism or store.parallelism)
    pending: collections.deque[Future[list[tuple[BlobRef, bytes]]]] = collections.deque()
    pool = _pool()
    try:
        for job in jobs:
            pending.append(pool.submit(job))
            if len(pending) >= limit:
                yield from pending.popleft().result()
        while pending:
            yield from pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def _read_span(store: Store, span: Span) -> list[tuple[BlobRef, bytes]]:
    key = _layout.pack(span.pack)
    data = store.backend.read_range(key, span.start, span.end)
    out = []
    for offset, ref in span.refs:
        blob = data[offset - span.start : offset - span.start + ref.size]
        store._check_blob(key, ref.hash, blob)
        out.append((ref, blob))
    return out


_POOL: ThreadPoolExecutor | None = None
_POOL_LOCK = threading.Lock()


def _pool() -> ThreadPoolExecutor:
    """The process-wide pool for pack transfers (s3fs runs the requests on its event loop)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(32, thread_name_prefix="datum-packs")
        return _POOL
