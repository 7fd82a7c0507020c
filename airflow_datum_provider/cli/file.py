"""``put / get / list / glob / delete / inspect file``."""

from __future__ import annotations

import io
import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, cast

import click

from airflow_datum_provider.cli._errors import CliError, unsupported_option
from airflow_datum_provider.cli._output import (
    OutputFormat,
    human_size,
    output_option,
    print_fields,
    print_records,
    print_table,
)
from airflow_datum_provider.cli._progress import CountingReader, progress
from airflow_datum_provider.cli._refs import FileRef, FileRefType
from airflow_datum_provider.cli._store import pass_store, writing
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.errors import FileNotFound
from airflow_datum_provider.core.listing import glob_files
from airflow_datum_provider.core.store import FileInfo, Store, clean_path

__all__ = ["delete_file", "get_file", "glob_file", "inspect_file", "list_file", "put_file"]

_COPY_CHUNK = 1 << 20
_REMOTE_PARALLELISM = 16  # files in flight by default into a remote store (as the store uses)


def _path(target: FileRef) -> str:
    assert target.path is not None  # FileRefType() requires it
    return target.path


def _file_rows(files: Iterable[FileInfo]) -> Iterable[tuple[str, str, str]]:
    return ((f.path, "dir" if f.is_dir else "file", human_size(f.size)) for f in files)


def _print_files(files: Iterable[FileInfo], output: OutputFormat) -> None:
    if output != "text":
        print_records(output, (f.to_dict() for f in files))
    else:
        print_table(("NAME", "TYPE", "SIZE"), _file_rows(files))


# Where a put reads from: one item per file, opened when it is uploaded.
@dataclass(frozen=True, slots=True)
class _Item:
    dest: str
    label: str
    size: int | None
    open: Callable[[], IO[bytes]]


def _is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def _local_open(path: str) -> Callable[[], IO[bytes]]:
    """Open a regular file without following a symlink swapped in since it was listed."""

    def opener() -> IO[bytes]:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise CliError(f"{path}: not a regular file (for a pipe, use -f - and redirect it)")
        return os.fdopen(fd, "rb")

    return opener


def _walk(root: Path, base: str, bar_note: Callable[[str, str], None]) -> list[_Item]:
    """The regular files below ``root`` (symlinks never followed; others noted and skipped)."""
    items: list[_Item] = []
    base = base.rstrip("/") + "/"
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = os.path.relpath(dirpath, root)
        prefix = base if rel == "." else base + rel.replace(os.sep, "/") + "/"
        for name in dirnames:
            if os.path.islink(os.path.join(dirpath, name)):
                bar_note(os.path.join(dirpath, name), "symlink to a directory (not followed)")
        for name in sorted(filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            if not stat.S_ISREG(st.st_mode):
                bar_note(full, f"{_kind(st.st_mode)} (only regular files are put)")
                continue
            items.append(_Item(prefix + name, full, st.st_size, _local_open(full)))
    return items


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _note_skipped(path: str, reason: str) -> None:
    click.echo(f"datumctl: note: skipped {path}: {reason}", err=True)


def _http_open(url: str) -> Callable[[], IO[bytes]]:
    def opener() -> IO[bytes]:
        import urllib.error
        import urllib.request

        try:
            return urllib.request.urlopen(url, timeout=60)  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            raise CliError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
        except urllib.error.URLError as exc:
            raise CliError(f"{url}: {exc.reason}") from exc

    return opener


def _url_items(url: str, dest: str | None, recursive: bool, many: bool) -> list[_Item]:
    """``http(s)://`` (one file) or any fsspec URL (``s3://`` with the s3 extra; -r for a folder)."""
    from urllib.parse import urlparse

    parsed = urlparse(url)
    name = PurePosixPath(parsed.path).name
    if parsed.scheme in ("http", "https"):
        if recursive:
            raise click.UsageError(f"-r {url}: an http(s) URL is one file; -r needs a folder")
        if not name and (dest is None or dest.endswith("/")):
            raise click.UsageError(f"{url} has no file name: give REPO@BRANCH:/PATH")
        return [_Item(_dest(dest, name, many), url, None, _http_open(url))]
    try:
        import fsspec
    except ImportError as exc:  # pragma: no cover - fsspec is a core dependency
        raise CliError(f"{url}: reading URLs needs fsspec") from exc
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except (ImportError, ValueError) as exc:
        extra = " (install the s3 extra: pip install 'airflow-datum-provider[s3]')"
        hint = extra if parsed.scheme in ("s3", "s3a") else ""
        raise CliError(f"{url}: cannot read {parsed.scheme}:// URLs here{hint}: {exc}") from exc
    if fs.isdir(path):
        if not recursive:
            raise CliError(f"{url} is a folder: use -r to put it recursively")
        base = dest if dest is not None and not many else (dest or "/") + name
        items = []
        root = path.rstrip("/") + "/"
        for found in sorted(fs.find(path)):
            rel = found[len(root) :] if found.startswith(root) else PurePosixPath(found).name
            items.append(
                _Item(
                    base.rstrip("/") + "/" + rel,
                    f"{parsed.scheme}://{found}",
                    None,
                    _fs_open(fs, found),
                )
            )
        return items
    size = fs.size(path)
    return [_Item(_dest(dest, name, many), url, size, _fs_open(fs, path))]


def _fs_open(fs: Any, path: str) -> Callable[[], IO[bytes]]:
    return lambda: fs.open(path, "rb")  # type: ignore[no-any-return]


def _dest(dest: str | None, name: str, many: bool) -> str:
    """Where a single source lands: PATH, or PATH/NAME for a folder target or several sources."""
    if dest is None:
        return "/" + name
    if dest.endswith("/") or many:
        return dest.rstrip("/") + "/" + name
    return dest


def _items(sources: tuple[str, ...], dest: str | None, recursive: bool) -> list[_Item]:
    many = len(sources) > 1
    items: list[_Item] = []
    for source in sources:
        if _is_url(source):
            items.extend(_url_items(source, dest, recursive, many))
            continue
        local = Path(source[len("file://") :] if source.startswith("file://") else source)
        st = local.stat()  # a missing SRC fails here, before any commit is started
        name = local.resolve().name
        if stat.S_ISDIR(st.st_mode):
            if not recursive:
                raise CliError(f"{source} is a directory: use -r to put it recursively")
            base = dest if dest is not None and not many else (dest or "/").rstrip("/") + "/" + name
            items.extend(_walk(local, base, _note_skipped))
        else:
            items.append(
                _Item(_dest(dest, name, many), source, st.st_size, _local_open(str(local)))
            )
    return items


@verb("put").command("file")
@click.argument("target", metavar="REPO@BRANCH[:/PATH]", type=FileRefType("optional"))
@click.option(
    "-f",
    "--file",
    "sources",
    multiple=True,
    metavar="SRC",
    help="A local file, a directory (with -r), an http(s):// URL, an s3:// URL (s3 extra), or "
    "- for stdin (the default). Repeat -f for several: each lands in the target folder.",
)
@click.option("-r", "--recursive", is_flag=True, help="Put a local directory recursively.")
@click.option("-a", "--append", is_flag=True, help="Append to the file instead of overwriting.")
@click.option(
    "-p",
    "--parallelism",
    type=click.IntRange(min=1),
    help="Upload up to N files at once (into the same commit). Default: 1 into a local "
    f"store, {_REMOTE_PARALLELISM} into a remote one (each file is a round trip there).",
)
@unsupported_option("--compress", "-c", reason="the store keeps files as they are (no compression)")
@unsupported_option("--untar", reason="unpack the archive locally, then put file -r the folder")
@pass_store
def put_file(
    store: Store,
    target: FileRef,
    sources: tuple[str, ...],
    recursive: bool,
    append: bool,
    parallelism: int | None,
) -> None:
    """Put files into a branch: local files, a directory (-r), URLs, or stdin.

    Without -f (or with -f -) stdin is read, into REPO@BRANCH:/PATH. A single SRC lands at PATH
    (default /<basename of SRC>); with a PATH ending in /, or several -f, each SRC lands in that
    folder under its basename. -r puts regular files only: symlinks are not followed, and they,
    FIFOs, sockets and devices are skipped with a note on stderr. All sources go into one
    commit: the only open commit on the branch (it stays open; a note says so), else a new
    commit started and finished around the put; several open commits are an error. REPO@ID
    puts into that open commit.
    """
    dest = target.path
    if not sources or sources == ("-",):
        if dest is None or dest.endswith("/"):
            raise click.UsageError("put file from stdin needs a file path: REPO@BRANCH:/PATH")
        with writing(store, target.repo, target.ref) as (commit, _), progress(None, dest) as bar:
            reader = CountingReader(sys.stdin.buffer, bar)
            commit.put_stream(dest, cast("IO[bytes]", reader), append=append)
        return
    if "-" in sources:
        raise click.UsageError("-f - (stdin) cannot be combined with other -f sources")
    if append and recursive:
        raise click.UsageError("--append puts single files; it cannot be used with -r")
    items = _items(sources, dest, recursive)
    if append and len(items) > 1:
        raise click.UsageError("--append puts one file; give a single -f")
    seen: dict[str, str] = {}
    for item in items:
        if item.dest in seen:
            raise CliError(f"{seen[item.dest]} and {item.label} would both land at {item.dest}")
        seen[item.dest] = item.label
    total = sum(i.size or 0 for i in items) if all(i.size is not None for i in items) else None
    label = items[0].dest.rsplit("/", 1)[-1] if len(items) == 1 else f"{len(items)} files"
    counted = len(items) if recursive or len(items) > 1 else None
    with (
        writing(store, target.repo, target.ref) as (commit, _),
        progress(total, label, files=counted) as bar,
    ):
        if parallelism is None:
            remote = store.backend.local_root is None
            parallelism = _REMOTE_PARALLELISM if remote else 1
        if parallelism == 1 or len(items) == 1:
            for item in items:
                with item.open() as fh:
                    stream = cast("IO[bytes]", CountingReader(fh, bar))
                    commit.put_stream(item.dest, stream, append=append)
                bar.file_done()
            return
        _put_parallel(store, commit, items, parallelism, bar)


def _put_parallel(store: Store, commit: Any, items: list[_Item], n: int, bar: Any) -> None:
    """Upload the files' content in ``n`` threads; stage them in order once all are stored.

    Blobs are content-addressed (a second writer of the same blob is harmless), so only the
    staging, done here in one thread, needs an order.
    """
    from concurrent.futures import ThreadPoolExecutor

    from airflow_datum_provider.core.store import Entry

    def upload(item: _Item) -> Entry:
        with item.open() as fh:
            stored = commit.store_stream(item.dest, cast("IO[bytes]", CountingReader(fh, bar)))
        bar.file_done()
        return Entry(clean_path(item.dest), stored.hash, stored.size, "", stored.loc)

    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="datumctl-put") as pool:
        entries = list(pool.map(upload, items))
    for entry in entries:
        commit.put_entry(entry)


@verb("get").command("file")
@click.argument("target", metavar="REPO@BRANCH:/PATH", type=FileRefType())
@click.option(
    "-o", "--output", "out", metavar="FILE|DIR", help="Write to FILE (with -r: into DIR)."
)
@click.option("-r", "--recursive", is_flag=True, help="Download a directory into -o DIR.")
@click.option(
    "-p",
    "--parallelism",
    type=click.IntRange(min=1),
    help="With -r: up to N reads at once (small files packed together are read with one "
    f"ranged request per pack range). Default: 1 from a local store, {_REMOTE_PARALLELISM} "
    "from a remote one.",
)
@pass_store
def get_file(
    store: Store, target: FileRef, out: str | None, recursive: bool, parallelism: int | None
) -> None:
    """Stream a file of a commit to stdout or to a local file; -r a directory into -o DIR.

    FILE is written under a temporary name and renamed, so a failed download leaves no half
    file. With -r, DIR is created if missing and an existing local file is never overwritten
    (the download stops with an error naming it).
    """
    if recursive:
        if out is None:
            raise click.UsageError("get file -r needs -o DIR (where the directory is written)")
        _get_dir(store, target, Path(out), parallelism)
        return
    if out is not None and (Path(out).is_dir() or not Path(out).parent.is_dir()):
        what = "is a directory" if Path(out).is_dir() else "has no such parent directory"
        raise CliError(f"-o {out}: {what}")
    info = store.inspect_file(target.repo, target.ref, _path(target))
    if info.is_dir:
        raise CliError(
            f"{info.path} is a directory in {target.repo}@{target.ref} "
            f"(download it with: datumctl get file -r {target} -o DIR)"
        )
    with (
        store.open_file(target.repo, target.ref, info.path) as src,
        progress(info.size, info.path) as bar,
    ):
        reader = CountingReader(src, bar)
        if out is None:
            shutil.copyfileobj(reader, sys.stdout.buffer, _COPY_CHUNK)
            sys.stdout.buffer.flush()
        else:
            _write_atomically(Path(out), reader)


def _get_dir(store: Store, target: FileRef, out: Path, parallelism: int | None = None) -> None:
    """Every file below ``target``'s directory, from one commit, into ``out``."""
    commit = store.inspect_commit(target.repo, target.ref)
    info = store.inspect_file(target.repo, commit.id, _path(target))
    prefix = info.path if info.is_dir else info.path.rsplit("/", 1)[0] + "/"
    entries = [
        e
        for e in store.manifest(target.repo, commit.id).entries(store.backend, prefix)
        if info.is_dir or e.path == info.path
    ]
    if out.exists() and not out.is_dir():
        raise CliError(f"-o {out}: exists and is not a directory")
    root = out.resolve()
    plan = []
    for entry in entries:
        dest = (root / entry.path[len(prefix) :]).resolve()
        if root not in dest.parents:  # pragma: no cover - store paths are clean
            raise CliError(f"{entry.path}: would be written outside {out}")
        if dest.exists() or dest.is_symlink():
            raise CliError(f"{dest} exists: datumctl never overwrites a local file; remove it")
        plan.append((entry, dest))
    total = sum(e.size for e in entries)
    remote = store.backend.local_root is None
    if parallelism is None:
        parallelism = _REMOTE_PARALLELISM if remote else 1
    with progress(total, info.path, files=len(plan)) as bar:
        for _, dest in plan:
            dest.parent.mkdir(parents=True, exist_ok=True)
        # Packed files: one ranged read per coalesced range of a pack, several in flight.
        packed: dict[str, list[Path]] = {}
        for entry, dest in plan:
            if entry.loc:
                packed.setdefault(entry.hash, []).append(dest)
        refs = [entry for entry, _ in plan if entry.loc]
        for ref, data in store.read_blobs(refs, parallelism=parallelism):
            for dest in packed.get(ref.hash, ()):
                _write_atomically(dest, CountingReader(io.BytesIO(data), bar))
                bar.file_done()
        singles = [(entry, dest) for entry, dest in plan if not entry.loc]

        def fetch(item: tuple[Any, Path]) -> None:
            entry, dest = item
            with store.open_blob(entry.hash) as src:
                _write_atomically(dest, CountingReader(src, bar))
            bar.file_done()

        if parallelism == 1 or len(singles) <= 1:
            for item in singles:
                fetch(item)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=parallelism, thread_name_prefix="datumctl-get") as pool:
            for _ in pool.map(fetch, singles):
                pass


def _write_atomically(dest: Path, reader: CountingReader) -> None:
    """Write to a temp file next to ``dest``, then rename: no half-written FILE on failure."""
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as fh:
            shutil.copyfileobj(reader, fh, _COPY_CHUNK)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give what open() would
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@verb("list").command("file")
@click.argument("target", metavar="REPO@BRANCH[=COMMIT][:/DIR]", type=FileRefType("optional"))
@output_option
@pass_store
def list_file(store: Store, target: FileRef, output: OutputFormat) -> None:
    """List a directory of a commit (directories end with /)."""
    _print_files(store.list_files(target.repo, target.ref, target.path or "/"), output)


@verb("glob").command("file")
@click.argument("target", metavar="REPO@BRANCH:PATTERN", type=FileRefType())
@output_option
@pass_store
def glob_file(store: Store, target: FileRef, output: OutputFormat) -> None:
    """List the files and directories whose path matches a glob pattern."""
    _print_files(glob_files(store, target.repo, target.ref, _path(target)), output)


@verb("inspect").command("file")
@click.argument("target", metavar="REPO@BRANCH:/PATH", type=FileRefType())
@output_option
@pass_store
def inspect_file(store: Store, target: FileRef, output: OutputFormat) -> None:
    """Show a file's size and content hash (BLAKE2b-256), or a directory's total size."""
    info = store.inspect_file(target.repo, target.ref, _path(target))
    if output != "text":
        print_records(output, [info.to_dict()])
        return
    print_fields(
        (
            ("Path", info.path),
            ("Type", "dir" if info.is_dir else "file"),
            ("Size", f"{human_size(info.size)} ({info.size} bytes)"),
            ("Hash", info.hash),
        )
    )


@verb("delete").command("file")
@click.argument("target", metavar="REPO@BRANCH:/PATH", type=FileRefType())
@click.option("-r", "--recursive", is_flag=True, help="Delete a directory and everything below.")
@pass_store
def delete_file(store: Store, target: FileRef, recursive: bool) -> None:
    """Delete a file, or with -r a directory with everything below it.

    Like put file: into the only open commit on the branch (a note says so), an error with
    several, else in a new commit (then the path must exist at the branch head, and a
    directory needs -r).
    """
    with writing(store, target.repo, target.ref) as (commit, fresh):
        if fresh:
            if commit.info.parent is None:
                raise FileNotFound(
                    f"file {_path(target)!r} not found: {target.repo}@{target.ref} has no commits",
                    path=_path(target),
                )
            info = store.inspect_file(target.repo, commit.info.parent, _path(target))
            if info.is_dir and not recursive:
                raise CliError(
                    f"{info.path} is a directory in {target.repo}@{target.ref}: "
                    "delete it with -r (everything below it goes)"
                )
        commit.delete(_path(target))


@verb("copy").command("file")
@click.argument("src", metavar="SRC_REPO@REF:/PATH", type=FileRefType())
@click.argument("dst", metavar="DST_REPO@BRANCH:/PATH", type=FileRefType())
@pass_store
def copy_file(store: Store, src: FileRef, dst: FileRef) -> None:
    """Copy a file or directory from a commit into a branch, without moving data.

    The destination is written like put file (the only open commit on the branch, else a new
    commit). The content is shared (the store is content-addressed), so copies are instant.
    """
    with writing(store, dst.repo, dst.ref) as (commit, _):
        commit.copy(src.repo, src.ref, _path(src), _path(dst))
