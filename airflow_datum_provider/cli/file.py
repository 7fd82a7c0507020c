"""``put / get / list / glob / delete / inspect file``."""

from __future__ import annotations

import os
import shutil
import stat
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any, cast

import click

from airflow_datum_provider.cli._errors import CliError
from airflow_datum_provider.cli._output import (
    OutputFormat,
    human_size,
    output_option,
    print_fields,
    print_json,
    print_table,
)
from airflow_datum_provider.cli._progress import CountingReader, progress, progress_enabled
from airflow_datum_provider.cli._refs import FileRef, FileRefType
from airflow_datum_provider.cli._store import pass_store, writing
from airflow_datum_provider.cli._verbs import verb
from airflow_datum_provider.core.errors import FileNotFound
from airflow_datum_provider.core.store import FileInfo, Store

__all__ = ["delete_file", "get_file", "glob_file", "inspect_file", "list_file", "put_file"]

_COPY_CHUNK = 1 << 20


def _path(target: FileRef) -> str:
    assert target.path is not None  # FileRefType() requires it
    return target.path


def _file_rows(files: Iterable[FileInfo]) -> Iterable[tuple[str, str, str]]:
    return ((f.path, "dir" if f.is_dir else "file", human_size(f.size)) for f in files)


def _print_files(files: Iterable[FileInfo], output: OutputFormat) -> None:
    if output == "json":
        print_json(f.to_dict() for f in files)
    else:
        print_table(("NAME", "TYPE", "SIZE"), _file_rows(files))


def _tree_size(root: Path) -> int:
    """The bytes ``put_dir`` will read: regular files only, symlinks not followed (as it does)."""
    total = 0
    for d, _, names in os.walk(root):
        for name in names:
            try:
                st = os.lstat(os.path.join(d, name))
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                total += st.st_size
    return total


def _skip_noter(bar: Any) -> Callable[[str, str], None]:
    """``put_dir``'s ``skipped`` callback: one note per entry on stderr (above the bar)."""

    def note(path: str, reason: str) -> None:
        bar.write(f"datumctl: note: skipped {path}: {reason}", file=sys.stderr)

    return note


@verb("put").command("file")
@click.argument("target", metavar="REPO@BRANCH[:/PATH]", type=FileRefType("optional"))
@click.option(
    "-f", "--file", "source", required=True, metavar="SRC", help="Local file, directory, or -."
)
@click.option("-r", "--recursive", is_flag=True, help="Put a local directory recursively.")
@click.option("-a", "--append", is_flag=True, help="Append to the file instead of overwriting.")
@pass_store
def put_file(store: Store, target: FileRef, source: str, recursive: bool, append: bool) -> None:
    """Put a file (-f -: stdin) or, with -r, a directory into a branch.

    PATH defaults to /<basename of SRC>; a PATH ending in / gets SRC's basename appended.
    -r puts regular files only: symlinks are not followed, and they, FIFOs, sockets and
    devices are skipped with a note on stderr. The only open commit on the branch is written
    into (it stays open; a note says so); several open commits are an error; otherwise one
    commit is started and finished around the put. REPO@ID puts into that open commit.
    """
    dest = target.path
    if source == "-":
        if dest is None or dest.endswith("/"):
            raise click.UsageError("put file -f - (stdin) needs a file path: REPO@BRANCH:/PATH")
        with writing(store, target.repo, target.ref) as (commit, _), progress(None, dest) as bar:
            reader = CountingReader(sys.stdin.buffer, bar)
            commit.put_stream(dest, cast("IO[bytes]", reader), append=append)
        return
    local = Path(source)
    size = local.stat().st_size  # a missing SRC fails here, before any commit is started
    name = local.resolve().name
    if local.is_dir():
        if not recursive:
            raise CliError(f"{source} is a directory: use -r to put it recursively")
        if append:
            raise click.UsageError("--append puts single files; it cannot be used with -r")
        total = _tree_size(local) if progress_enabled() else None
        with writing(store, target.repo, target.ref) as (commit, _), progress(total, name) as bar:
            commit.put_dir(dest or f"/{name}", local, progress=bar.update, skipped=_skip_noter(bar))
        return
    if dest is None or dest.endswith("/"):
        dest = (dest or "/") + name
    with (
        writing(store, target.repo, target.ref) as (commit, _),
        open(local, "rb") as fh,
        progress(size, name) as bar,
    ):
        commit.put_stream(dest, cast("IO[bytes]", CountingReader(fh, bar)), append=append)


@verb("get").command("file")
@click.argument("target", metavar="REPO@BRANCH:/PATH", type=FileRefType())
@click.option("-o", "--output", "out", metavar="FILE", help="Write to FILE instead of stdout.")
@pass_store
def get_file(store: Store, target: FileRef, out: str | None) -> None:
    """Stream a file of a commit to stdout or to a local file."""
    if out is not None and (Path(out).is_dir() or not Path(out).parent.is_dir()):
        what = "is a directory" if Path(out).is_dir() else "has no such parent directory"
        raise CliError(f"-o {out}: {what}")
    info = store.inspect_file(target.repo, target.ref, _path(target))
    if info.is_dir:
        raise CliError(
            f"{info.path} is a directory in {target.repo}@{target.ref} "
            f"(see: datumctl list file {target})"
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
    _print_files(store.glob_files(target.repo, target.ref, _path(target)), output)


@verb("inspect").command("file")
@click.argument("target", metavar="REPO@BRANCH:/PATH", type=FileRefType())
@output_option
@pass_store
def inspect_file(store: Store, target: FileRef, output: OutputFormat) -> None:
    """Show a file's size and content hash (BLAKE2b-256), or a directory's total size."""
    info = store.inspect_file(target.repo, target.ref, _path(target))
    if output == "json":
        print_json([info.to_dict()])
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
@pass_store
def delete_file(store: Store, target: FileRef) -> None:
    """Delete a file, or a directory with everything below it.

    Like put file: into the only open commit on the branch (a note says so), an error with
    several, else in a new commit (then the path must exist at the branch head).
    """
    with writing(store, target.repo, target.ref) as (commit, fresh):
        if fresh:
            if commit.info.parent is None:
                raise FileNotFound(
                    f"file {_path(target)!r} not found: {target.repo}@{target.ref} has no commits",
                    path=_path(target),
                )
            store.inspect_file(target.repo, commit.info.parent, _path(target))
        commit.delete(_path(target))
