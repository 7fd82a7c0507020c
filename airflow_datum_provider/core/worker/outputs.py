"""Collect a datum's ``out/`` folder into the store as content-addressed blobs.

Rules (Pachyderm's, plus a security rule of ours):

* Every regular file becomes an entry ``(path, hash, size, tag=datum id)``, sorted by path.
  Empty directories produce nothing (2.x cannot represent them).
* A name that breaks the path rules fails the datum, naming the file, with Pachyderm's text
  ``cannot upload file produced by the user code because its name cannot be represented in
  PFS``. Nothing is uploaded then: every name is checked before the first blob is written.
* A symlink whose target lies inside the datum's scratch root (an input, ``.env``, another
  output) is stored as that content; a link to a directory is walked. A symlink whose target
  lies outside, dangles, or loops is refused: the datum fails, naming it. Pachyderm uploads
  outside targets; we do not, so user code cannot publish arbitrary files of the worker.
* Symlinks are resolved component by component in the view user code had: inside the ``/pfs``
  namespace, an absolute ``/pfs/...`` target means the scratch root, and ``..`` climbs from
  ``/pfs``. No symlink is ever followed except to read the target of one that resolved inside.
* A hard link is refused like a symlink when one of the file's links lies outside the scratch
  root (``ln /etc/passwd out/``): every link of the inode must be inside the root, or the
  inode is a store blob the layout linked in as an input.
* With ``empty_files: true`` an input is a zero-byte placeholder; an output symlink to one
  (Pachyderm's ``shuffle`` example) stores the input's real content (its blob, not read).
* FIFOs, sockets and devices fail the datum (reading them could block or leak).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from airflow_datum_provider.core.datum import DatumInput
from airflow_datum_provider.core.errors import InvalidPathError, OutputRejected
from airflow_datum_provider.core.store.manifest import Entry
from airflow_datum_provider.core.store.packs import BlobBatch
from airflow_datum_provider.core.store.paths import clean_path
from airflow_datum_provider.core.store.store import Store

if TYPE_CHECKING:
    from airflow_datum_provider.core.worker.scratch import Scratch

__all__ = ["OutputRejected", "collect_outputs"]

_MAX_HOPS = 40  # Linux's MAXSYMLINKS
_BAD_NAME = (
    "cannot upload file produced by the user code because its name cannot be represented in PFS"
)


class _View:
    """Paths as user code saw them (``view``) mapped onto the real scratch root (``real``)."""

    def __init__(self, real: str, view: str) -> None:
        self.real = real
        self.view = view.rstrip("/") or "/"

    def inside(self, path: str) -> bool:
        return path == self.view or path.startswith(self.view + "/")

    def to_real(self, path: str) -> str:
        return self.real + path[len(self.view) :] if self.inside(path) else path

    def to_view(self, real: str) -> str:
        return self.view + real[len(self.real) :]

    def resolve(self, path: str) -> str | None:
        """``realpath`` in the view, or ``None`` if a component is missing or links loop."""
        pending = path.split("/")
        pending.reverse()
        done = ""
        hops = 0
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                done = done.rpartition("/")[0]
                continue
            candidate = f"{done}/{part}"
            real = self.to_real(candidate)
            try:
                mode = os.lstat(real).st_mode
            except OSError:
                return None
            if not stat.S_ISLNK(mode):
                done = candidate
                continue
            hops += 1
            if hops > _MAX_HOPS:
                return None
            target = os.readlink(real)
            if target.startswith("/"):
                done = ""
            pending.extend(reversed(target.split("/")))
        return done or "/"


def _rejected(message: str, path: str) -> OutputRejected:
    return OutputRejected(message, path=path)


def _short(path: str, limit: int = 120) -> str:
    """``path``, cut in the middle when long (a message stays one readable line)."""
    if len(path) <= limit:
        return path
    half = limit // 2
    return f"{path[:half]}…{path[-half:]} ({len(path)} characters)"


class _Chain:
    """A directory's ancestors as a linked list of ``(st_dev, st_ino)``."""

    __slots__ = ("key", "parent")

    def __init__(self, key: tuple[int, int], parent: _Chain | None) -> None:
        self.key = key
        self.parent = parent

    def holds(self, key: tuple[int, int]) -> bool:
        node: _Chain | None = self
        while node is not None:
            if node.key == key:
                return True
            node = node.parent
        return False


def _plan(out: str, view: _View) -> list[tuple[str, str]]:
    """``(store path, real file path)`` for every output file, checked, nothing read yet."""
    found: list[tuple[str, str]] = []

    def link_target(real: str, rel: str) -> str:
        target = view.resolve(view.to_view(real))
        shown = f"/pfs/out{rel}" if view.view == "/pfs" else rel
        if target is None or not view.inside(target):
            text = os.readlink(real)
            why = "dangles or loops" if target is None else "points outside the datum's root"
            raise _rejected(f"output {shown} is a symlink to {text!r} that {why}; refused", rel)
        return view.to_real(target)

    def checked(child: str) -> str:
        try:
            return clean_path(child)
        except InvalidPathError as exc:
            raise _rejected(f"{_BAD_NAME}: {exc}", child) from None

    try:
        top = os.lstat(out)
    except FileNotFoundError:
        return found
    real_out = out
    if stat.S_ISLNK(top.st_mode):
        real_out = link_target(real_out, "")
        top = os.stat(real_out)
    if not stat.S_ISDIR(top.st_mode):
        raise _rejected("the output folder `out` is not a directory", "/")

    # Iterative (a tree thousands of levels deep is user code's to make); each pending
    # directory carries its chain of ancestors, to refuse a symlink back into one of them.
    # An entry's type comes from the directory listing (no stat call for plain files).
    pending: list[tuple[str, str, _Chain | None]] = [(real_out, "", None)]
    first: os.stat_result | None = top
    while pending:
        directory, rel, parent = pending.pop()
        try:
            st = first or os.stat(directory)
            first = None
            key = (st.st_dev, st.st_ino)
            if parent is not None and parent.holds(key):
                raise _rejected(f"output {rel or '/'} is a symlink loop; refused", rel or "/")
            chain = _Chain(key, parent)
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
            for entry in entries:
                child = f"{rel}/{entry.name}"
                if entry.is_file(follow_symlinks=False):
                    found.append((checked(child), entry.path))
                    continue
                if entry.is_dir(follow_symlinks=False):
                    pending.append((entry.path, child, chain))
                    continue
                real = entry.path
                mode = entry.stat(follow_symlinks=False).st_mode
                if stat.S_ISLNK(mode):
                    real = link_target(real, child)
                    mode = os.lstat(real).st_mode
                if stat.S_ISDIR(mode):
                    pending.append((real, child, chain))
                elif stat.S_ISREG(mode):
                    found.append((checked(child), real))
                else:
                    raise _rejected(f"output {child} is not a regular file or directory", child)
        except OSError as exc:
            shown = _short(rel or "/")
            raise _rejected(f"cannot read output {shown}: {exc.strerror or exc}", shown) from None

    found.sort()
    return found


class _Links:
    """Which hard-linked outputs are allowed: every link of the inode lies inside the root."""

    def __init__(self, real_root: str, trusted: frozenset[tuple[int, int]]) -> None:
        self.real_root = real_root
        self.trusted = trusted
        self._inside: dict[tuple[int, int], int] | None = None

    def _count(self) -> dict[tuple[int, int], int]:
        counts: dict[tuple[int, int], int] = {}
        pending = [self.real_root]
        while pending:
            directory = pending.pop()
            try:
                with os.scandir(directory) as it:
                    for entry in it:
                        st = entry.stat(follow_symlinks=False)
                        if stat.S_ISDIR(st.st_mode):
                            pending.append(entry.path)
                        elif stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                            key = (st.st_dev, st.st_ino)
                            counts[key] = counts.get(key, 0) + 1
            except OSError:
                continue  # unreadable: its links count as outside
        return counts

    def allowed(self, st: os.stat_result) -> bool:
        if st.st_nlink <= 1:
            return True
        key = (st.st_dev, st.st_ino)
        if key in self.trusted:
            return True
        if self._inside is None:
            self._inside = self._count()
        return self._inside.get(key, 0) >= st.st_nlink


def _placeholder(
    store: Store, real: str, real_root: str, placeholders: tuple[DatumInput, ...]
) -> tuple[str, int] | None:
    """``(hash, size)`` of the input file an ``empty_files`` placeholder at ``real`` stands for."""
    for inp in reversed(placeholders):  # inputs sharing a name: the last one wins, as laid out
        base = f"{real_root}/{inp.name}"
        if not real.startswith(base + "/"):
            continue
        repo_path = real[len(base) :]
        if inp.is_dir:
            if not (inp.path == "/" or repo_path.startswith(inp.path)):
                continue
        elif repo_path != inp.path:
            continue
        info = store.inspect_file(inp.repo, inp.commit, repo_path)
        return info.hash, info.size
    return None


_READ_WHOLE = 1 << 20
"""Outputs smaller than this (by their size when opened) are read whole in one call."""


def _read_all(fd: int, size: int) -> bytes:
    """The whole file open as ``fd``, ``size`` bytes when opened (user code may still write)."""
    data = os.read(fd, size + 1)
    if len(data) <= size:  # a short read of a regular file: its end
        return data
    parts = [data]
    while data := os.read(fd, 1 << 20):
        parts.append(data)
    return b"".join(parts)


def collect_outputs(
    store: Store,
    root: Path,
    *,
    tag: str,
    view_root: str | None = None,
    scratch: Scratch | None = None,
    blobs: BlobBatch | None = None,
    resolved: bool = False,
) -> tuple[tuple[Entry, ...], int]:
    """Store every file of ``<root>/out``; return the entries (sorted) and the bytes stored.

    ``root`` is the real scratch root; ``view_root`` the root user code saw (``/pfs`` in the
    namespace; default ``root``); ``scratch`` the layout of the attempt (which blobs were
    hard-linked in, which inputs are ``empty_files`` placeholders). Raises
    :class:`OutputRejected` for the datum's own faults; store errors propagate.

    ``blobs``: the set's blob batch (small outputs are packed; they are durable only once the
    caller flushes it, before it writes the result that names them). Without one every output
    is stored as its own object at once. ``resolved``: ``root`` is a real path already.
    """
    real_root = os.fspath(root) if resolved else os.path.realpath(root)
    view = _View(real_root, view_root or real_root)
    plan = _plan(f"{real_root}/out", view)
    links = _Links(real_root, scratch.linked_inodes if scratch is not None else frozenset())
    placeholders = scratch.placeholders if scratch is not None else ()
    entries: list[Entry] = []
    total = 0
    for path, real in plan:
        try:
            fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError as exc:
            raise _rejected(f"cannot read output {path}: {exc.strerror or exc}", path) from None
        try:
            st = os.fstat(fd)
            if not links.allowed(st):
                raise _rejected(
                    f"output {path} is a hard link to a file outside the datum's root; refused",
                    path,
                )
            found = None
            if placeholders and st.st_size == 0 and not real.startswith(f"{real_root}/out/"):
                found = _placeholder(store, real, real_root, placeholders)
            loc = ""
            if found is not None:
                digest, size = found
            elif st.st_size < _READ_WHOLE:  # most outputs: one read, no stream objects
                data = _read_all(fd, st.st_size)
                if blobs is not None:
                    digest, size, loc = blobs.put_bytes(data)
                else:
                    digest, size = store._put_blob_bytes(data), len(data)
            else:
                with os.fdopen(fd, "rb", closefd=False) as fh:
                    if blobs is not None:
                        digest, size, loc = blobs.put_stream(fh)
                    else:
                        digest, size = store._put_blob_stream(fh)
        finally:
            os.close(fd)
        entries.append(Entry(path, digest, size, tag, loc))
        total += size
    return tuple(entries), total
