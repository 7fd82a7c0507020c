"""A datum's scratch root: its inputs, an empty ``out/`` and ``.env``, rebuilt for every attempt.

Layout (Pachyderm's ``/pfs``; paths are *not* relative to the glob)::

    <root>/<input name>/<full repo path>   input /dirA/x of input `in` -> <root>/in/dirA/x
    <root>/out/                            empty; what user code writes here is the output
    <root>/.env                            the per-datum variables, KEY=VALUE per line

A directory datum mounts its whole subtree; the root datum ``/`` mounts the whole commit at
``<root>/<name>/``. Several inputs sharing a name (a group) share ``<root>/<name>/``.

How inputs are materialised, and why:

* **Hard links to the store's blob files** when the store is a local folder on the same device
  and a write through the link cannot reach the blob. A hard link shares the blob's inode, so
  the blob is made read-only first (mode ``a-w``: blobs are immutable, and the store replaces
  files by rename, never writes into them). That protects it from user code running as another
  user than root, where the kernel enforces the mode (``open(..., "w")`` fails with EACCES). Root
  ignores file modes, so for root the runner asks for links only when the command runs in the
  private ``/pfs`` namespace, where every ``/pfs/<input>`` is also a **read-only bind mount**
  (writes fail with EROFS). Linking costs one ``link()`` per file whatever its size.
* **Copies** otherwise: root without the namespace (including every in-process Python
  callable run as root), a remote store, another device, or a blob this user cannot make
  read-only. Local blobs are copied with ``copy_file_range`` (a reflink on btrfs / XFS), remote
  ones streamed. Copies are made read-only too, so behaviour does not depend on the mode.

Neither is a sandbox against code that means harm (it could ``chmod`` its own files back); it
stops accidental writes to inputs from corrupting the store, which is what matters here.

``empty_files: true`` gives zero-byte placeholders (nothing is read). ``lazy: true`` inputs are
served like any other input (linked or copied up front): Pachyderm streams them through named
pipes on first read, which only changes when the bytes move, never what user code reads.

The scratch root is wiped (``rm -rf`` of its contents, after making any directory user code
left read-only writable again) before each attempt and after the datum. Empty top-level
folders (``out/``, input names) and ``.env`` may survive a wipe for reuse (``.env`` is
rewritten in place by the next layout, which is far cheaper than a new file on most disks); a
layout removes what it does not need, so user code only ever sees its own datum.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from airflow_datum_provider.core.datum import Datum, DatumInput
from airflow_datum_provider.core.errors import DatumError, PipelineError
from airflow_datum_provider.core.store import _layout
from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker.env import input_path, write_all, write_env_file

__all__ = ["InputRejected", "Scratch", "lay_out", "remove_tree", "wipe"]

_COPY_CHUNK = 1 << 20
_WRITE_BITS = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH


class InputRejected(DatumError):
    """An input cannot be laid out (a name the local file system cannot hold); the datum fails."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Scratch:
    """A laid-out scratch root. ``inputs`` maps each input name to its local path (last wins)."""

    root: Path
    out: Path
    inputs: MappingProxyType[str, Path]
    download_bytes: int
    linked: int
    copied: int
    linked_inodes: frozenset[tuple[int, int]] = frozenset()
    """``(st_dev, st_ino)`` of the store blobs hard-linked in: an output linking one is fine."""
    placeholders: tuple[DatumInput, ...] = ()
    """The ``empty_files`` inputs: an output symlink to one of their files stores its content."""


def _check_root(root: Path | str) -> None:
    """Refuse to wipe ``/``, the home folder or one of its parents (``root`` as given)."""
    _check_root_text(str(root), os.environ.get("HOME"))


@functools.lru_cache(maxsize=256)
def _check_root_text(root_text: str, home_env: str | None) -> None:
    """:func:`_check_root` once per root and ``HOME`` (a refusal raises, so it is not cached).

    Resolving the root and the home folder is most of a small datum's wipe otherwise; a root
    swapped for a symlink later is still safe, since every wipe opens it with ``O_NOFOLLOW``.
    """
    root = Path(root_text).resolve()
    home = Path.home().resolve()
    if root == Path(root.anchor) or root == home or root in home.parents:
        raise PipelineError(
            f"scratch root {str(root)!r} would delete a system or home folder; "
            "give the worker a dedicated folder",
            path=str(root),
        )


_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0)


def _writable_dir(fd: int) -> None:
    # Directories only: a file may be a hard link to a store blob that must stay read-only.
    mode = os.fstat(fd).st_mode
    if mode & stat.S_IRWXU != stat.S_IRWXU:
        os.fchmod(fd, stat.S_IMODE(mode) | stat.S_IRWXU)


def _children(fd: int) -> list[tuple[str, bool]]:
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


def _remove_contents(fd: int) -> None:
    """Delete everything inside the directory open as ``fd`` (which stays open, and empty).

    Iterative and relative to directory descriptors, so neither depth nor path length is a
    limit (user code can leave a tree thousands of levels deep, longer than ``PATH_MAX``).
    One descriptor is open at a time: a child is entered by name, left by ``..``.
    """
    top = fd
    _writable_dir(fd)
    stack: list[tuple[str, list[tuple[str, bool]]]] = []
    pending = _children(fd)
    while True:
        while pending:
            name, is_dir = pending.pop()
            if not is_dir:
                os.unlink(name, dir_fd=fd)
                continue
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            if fd != top:
                os.close(fd)
            fd = child
            _writable_dir(fd)
            stack.append((name, pending))
            pending = _children(fd)
        if not stack:
            return
        name, pending = stack.pop()
        parent = top if not stack else os.open("..", _DIR_FLAGS, dir_fd=fd)
        os.close(fd)
        fd = parent
        os.rmdir(name, dir_fd=fd)


def remove_tree(path: str | Path, *, ignore_errors: bool = False) -> None:
    """``rm -rf path`` at any depth (see :func:`_remove_contents`); a missing path is fine.

    With ``ignore_errors`` nothing is raised: what could not be deleted stays (clean-up paths
    use it, so a tree user code made hostile can never stop a job from being stopped or resumed).
    """
    try:
        try:
            fd = os.open(path, _DIR_FLAGS)
        except FileNotFoundError:
            return
        except NotADirectoryError:
            os.unlink(path)
            return
        except OSError as exc:
            if exc.errno != errno.ELOOP:  # a symlink: remove the link, not its target
                raise
            os.unlink(path)
            return
        try:
            _remove_contents(fd)
        finally:
            os.close(fd)
        os.rmdir(path)
    except Exception:
        if not ignore_errors:
            raise


def _empty(directory: str, keep: Collection[str]) -> None:
    fd = os.open(directory, _DIR_FLAGS)
    try:
        _writable_dir(fd)
        for name, is_dir in _children(fd):
            if not is_dir:
                if name != ENV_FILE or name not in keep:
                    os.unlink(name, dir_fd=fd)
                continue
            child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            try:
                _remove_contents(child)
            finally:
                os.close(child)
            if name not in keep:
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


_CLEAN: dict[str, frozenset[str]] = {}
"""Roots this process wiped and nothing has used since: root -> the empty folders it kept."""


def wipe(root: Path | str, keep: Collection[str] = ()) -> None:
    """Empty ``root`` (created if missing); the folder must be the worker's own.

    Top-level folders named in ``keep`` are emptied but kept: the next layout reuses them, and
    on some disks ``rmdir`` + ``mkdir`` is most of a small datum's overhead. ``.env`` in
    ``keep`` keeps that file: the next layout rewrites it in place (see :func:`_write_env`).
    """
    text = str(root)
    _CLEAN.pop(text, None)
    _check_root(text)
    try:
        _empty(text, keep)
    except FileNotFoundError:
        os.makedirs(text, exist_ok=True)
        keep = ()
    _CLEAN[text] = frozenset(keep)


def _ready(root: str, keep: Collection[str]) -> frozenset[str]:
    """Make ``root`` empty but for empty folders in ``keep``, before a layout; return those known.

    A root this process wiped last (``run_datum`` wipes after every datum) is known empty but
    for the folders that wipe kept: only those the new datum does not use are removed, and the
    rest are returned (they exist). Anything else (a first datum, a retry, a root another caller
    filled) gets the full :func:`wipe`, and nothing is known to exist.
    """
    kept = _CLEAN.pop(root, None)
    if kept is not None:
        try:
            for name in kept.difference(keep):
                os.rmdir(f"{root}/{name}")
            return kept.intersection(keep)
        except OSError:  # not empty after all, or gone: do it the long way
            pass
    wipe(root, keep)
    _CLEAN.pop(root, None)
    return frozenset()


ENV_FILE = ".env"


def keep_names(datum: Datum) -> frozenset[str]:
    """What a wipe between two datums keeps for reuse: ``out``, ``.env``, the input folders."""
    return frozenset(("out", ENV_FILE, *(inp.name for inp in datum.inputs)))


def _write_env(path: str, variables: dict[str, str]) -> None:
    """Write ``.env``, over the last datum's file when that is safe to write into.

    Only a regular file with no other link is reused (user code may have swapped it for a
    FIFO, a symlink, or a hard link to an input, which may be a store blob): anything else is
    removed first, and :func:`~.env.write_env_file` creates a new one.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is not None and not (stat.S_ISREG(st.st_mode) and st.st_nlink == 1):
        remove_tree(path)
    write_env_file(path, variables)


_COPY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
_READ_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def _create_read_only(dest: str) -> int:
    """A new file at ``dest``, mode 0444, open for writing; one already there is replaced.

    Two inputs of one name (a group) may carry the same path: the last one wins.
    """
    try:
        return os.open(dest, _COPY_FLAGS, 0o444)
    except FileExistsError:
        os.unlink(dest)
        return os.open(dest, _COPY_FLAGS, 0o444)


def _copy_local(src: str, dest: str, size: int = -1) -> bool:
    """Copy a local blob file to a new read-only ``dest``; False when ``src`` is not there.

    ``size`` (the blob's, when known) saves the call that would find the end.
    """
    try:
        fin = os.open(src, _READ_FLAGS)
    except FileNotFoundError:
        return False
    try:
        fout = _create_read_only(dest)
        try:
            if hasattr(os, "copy_file_range"):
                try:
                    copied = 0
                    while size < 0 or copied < size:
                        n = os.copy_file_range(fin, fout, 1 << 30)
                        if not n:
                            break
                        copied += n
                    return True
                except OSError:
                    os.lseek(fin, 0, os.SEEK_SET)
                    os.lseek(fout, 0, os.SEEK_SET)
                    os.ftruncate(fout, 0)
            while data := os.read(fin, _COPY_CHUNK):
                write_all(fout, data)
            return True
        finally:
            os.close(fout)
    finally:
        os.close(fin)


class _Placer:
    """Puts blobs at paths: hard link when allowed and possible, else copy."""

    def __init__(self, store: Store, link: bool, dirs: Collection[str] = ()) -> None:
        self.store = store
        self.link = link
        self.linked = 0
        self.copied = 0
        self.inodes: set[tuple[int, int]] = set()
        self._dirs: set[str] = set(dirs)
        """Folders known to exist."""
        local = store.backend.local_root
        self._blobs = None if local is None else f"{local}/"

    def _parent(self, dest: str) -> None:
        parent = dest.rpartition("/")[0]
        if parent not in self._dirs:
            os.makedirs(parent, exist_ok=True)
            self._dirs.add(parent)

    def _try_link(self, src: str, dest: str) -> bool:
        try:
            mode = os.stat(src).st_mode
            if mode & _WRITE_BITS:
                os.chmod(src, stat.S_IMODE(mode) & ~_WRITE_BITS)
            try:
                os.link(src, dest)
            except FileExistsError:  # a group's inputs sharing a path: the last one wins
                os.unlink(dest)
                os.link(src, dest)
            st = os.stat(dest)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.ENOTSUP, errno.EOPNOTSUPP):
                self.link = False  # no link will work on this device pair
            return False  # ENOENT: not a blob file of its own (packed), copied from the store
        self.linked += 1
        self.inodes.add((st.st_dev, st.st_ino))
        return True

    def place(self, digest: str, dest: str, *, empty: bool, loc: str = "", size: int = -1) -> None:
        self._parent(dest)
        if empty:
            os.close(_create_read_only(dest))
            return
        # A local blob that is a file of its own (not packed: ``loc`` is empty); a writer with
        # DATUM_STORE_PACK_BELOW set may have packed it anyway, then it is read from the store.
        src = None if self._blobs is None or loc else self._blobs + _layout.blob(digest)
        if src is not None:
            if self.link and self._try_link(src, dest):
                return
            if _copy_local(src, dest, size):
                self.copied += 1
                return
        # Remote or packed (one ranged read, or the set's prefetch cache).
        with self.store.open_blob(digest, loc) as fin:
            fout = _create_read_only(dest)
            try:
                while data := fin.read(_COPY_CHUNK):
                    write_all(fout, data)
            finally:
                os.close(fout)
        self.copied += 1


@functools.lru_cache(maxsize=256)
def _out_path(root: Path) -> Path:
    return root / "out"


def lay_out(
    store: Store, datum: Datum, root: Path, *, variables: dict[str, str], link: bool
) -> Scratch:
    """Wipe ``root`` and materialise ``datum`` there (see the module docstring).

    ``link`` allows hard links to local blobs; pass it only when writes through them fail.
    Store errors propagate: they are infrastructure failures, not the datum's. A path this
    machine cannot hold (an element over ``NAME_MAX``, a path over ``PATH_MAX``) raises
    :class:`InputRejected`: the datum fails, naming it.
    """
    text = str(root)
    there = _ready(text, keep_names(datum))
    placer = _Placer(store, link, [f"{text}/{name}" for name in there])
    inputs: dict[str, Path] = {}
    nbytes = 0
    for inp in datum.inputs:
        local = input_path(text, inp.name, inp.path)
        path = inp.path
        try:
            if inp.is_dir:
                os.makedirs(local, exist_ok=True)
                base = f"{text}/{inp.name}"
                for entry in store.walk(inp.repo, inp.commit, inp.path):
                    path = entry.path
                    placer.place(
                        entry.hash,
                        base + path,
                        empty=inp.empty_files,
                        loc=entry.loc,
                        size=entry.size,
                    )
                    nbytes += 0 if inp.empty_files else entry.size
            else:
                digest = inp.hash or store.inspect_file(inp.repo, inp.commit, inp.path).hash
                loc = "" if inp.empty_files else store.locate(inp.repo, inp.commit, path, digest)
                size = inp.size if inp.hash else -1
                placer.place(digest, local, empty=inp.empty_files, loc=loc, size=size)
                nbytes += 0 if inp.empty_files else inp.size
        except OSError as exc:
            if exc.errno != errno.ENAMETOOLONG:
                raise
            shown = path if len(path) <= 120 else f"{path[:60]}…{path[-60:]}"
            raise InputRejected(
                f"input {inp.name} file {inp.repo}@{inp.commit}:{shown} cannot be materialised "
                f"in the datum's scratch: {exc.strerror}",
                path=path,
            ) from None
        inputs[inp.name] = Path(local)
    out = _out_path(root)
    if "out" not in there:
        try:
            os.mkdir(f"{text}/out")
        except FileExistsError:
            pass
    _write_env(f"{text}/{ENV_FILE}", variables)
    return Scratch(
        root=root,
        out=out,
        inputs=MappingProxyType(inputs),
        download_bytes=nbytes,
        linked=placer.linked,
        copied=placer.copied,
        linked_inodes=frozenset(placer.inodes),
        placeholders=tuple(inp for inp in datum.inputs if inp.empty_files),
    )
