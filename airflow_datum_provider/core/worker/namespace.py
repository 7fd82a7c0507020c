"""``/pfs`` for unchanged Pachyderm code on a local machine: a private mount namespace.

Pachyderm code hard-codes ``/pfs/<input>`` and ``/pfs/out``. In a pod the scratch root *is*
``/pfs``. Locally each worker has its own scratch folder, so where the machine allows it a
command runs as::

    unshare --mount --propagation private [--user --map-root-user] -- /bin/sh -c SCRIPT ...

The script bind-mounts the scratch root on ``/pfs`` and each ``/pfs/<input>`` read-only onto
itself, changes to ``working_dir`` (which may then live under ``/pfs``) and ``exec``-s the
command, so the process keeps the pid (and process group) the runner started. The mounts exist
for that process tree alone and vanish with it; other workers bind their own scratch on their
own ``/pfs`` at the same time.

Requirements, checked once per process by :func:`pfs_namespace_available` with a real probe
(which also proves the read-only bind works: util-linux before 2.27 silently ignored ``ro``):
Linux, ``unshare`` and ``mount`` (util-linux), a ``/pfs`` directory to mount on (created when
running as root; an unprivileged user needs an administrator to create it once), and either
root (``CAP_SYS_ADMIN``) or unprivileged user namespaces (``unshare -r``; user code then sees
uid 0 mapped to the real user). Containers without ``CAP_SYS_ADMIN`` fail the probe.

In this mode every path user code is given uses ``/pfs`` (``PFS_ROOT=/pfs``). Without it, the
paths are the real scratch folder and ``PFS_ROOT`` tells portable code where that is. Python
callables run in-process and never see the namespace.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = [
    "PFS",
    "PFS_MOUNT_ENV",
    "PRIVATE_TMP_ENV",
    "mount_table",
    "pfs_mount_setting",
    "pfs_namespace_available",
    "private_tmp",
    "private_tmp_setting",
    "remove_private_tmp",
    "wrap_command",
]

PFS = "/pfs"

# Exit status 125 for a failed mount, like `env` / `chroot` use for their own failures. All the
# binds are one `mount -a` over a mount table written for the command (one process, not one per
# mount: a `mount` costs about a millisecond of CPU, most of a short datum's overhead).
_SCRIPT = """\
table=$1; wd=$2; shift 2
mount -a -T "$table" || {
  echo "datum worker: cannot bind the scratch root on /pfs, its /tmp or its inputs read-only" \
    "(mount table $table)" >&2; exit 125; }
if [ -n "$wd" ]; then cd "$wd" || exit 125; fi
exec "$@"
"""


def _fstab_field(path: str) -> str:
    """A path as an fstab field (octal escapes for white space and backslashes)."""
    for char, code in (("\\", "\\134"), (" ", "\\040"), ("\t", "\\011"), ("\n", "\\012")):
        path = path.replace(char, code)
    return path


def mount_table(scratch_root: Path) -> Path:
    """Where :func:`wrap_command` writes the mounts of commands run in ``scratch_root``.

    A sibling of the scratch root (never inside it: that is what user code sees at ``/pfs``),
    removed with the set's ``/tmp`` by :func:`remove_private_tmp`.
    """
    return scratch_root.with_name(scratch_root.name + ".fstab")


def wrap_command(
    argv: Sequence[str],
    *,
    scratch_root: Path,
    read_only: Iterable[str] = (),
    working_dir: str = "",
    tmp_dir: Path | None = None,
) -> list[str]:
    """``argv`` wrapped to run with ``/pfs`` bound to ``scratch_root`` in a private namespace.

    ``read_only`` names the top-level folders (the inputs) to mount read-only; ``tmp_dir``, if
    given, is bound on ``/tmp`` (a container's private ``/tmp``, see :func:`private_tmp`).
    Writes the mounts to :func:`mount_table` (a few lines, unless they are there already).
    """
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare += ["--user", "--map-root-user"]
    lines = [f"{_fstab_field(str(scratch_root))} {PFS} none bind 0 0"]
    if tmp_dir is not None:
        lines.append(f"{_fstab_field(str(tmp_dir))} /tmp none bind 0 0")
    for name in dict.fromkeys(read_only):
        target = _fstab_field(f"{PFS}/{name}")
        lines.append(f"{target} {target} none bind,ro 0 0")
    table, text = mount_table(scratch_root), "\n".join(lines) + "\n"
    try:
        written = table.read_text() == text
    except (OSError, UnicodeDecodeError):
        written = False
    if not written:  # once per set: rewriting (truncating) a file can wait for the disk
        table.write_text(text)
    return [
        *unshare,
        "--",
        "/bin/sh",
        "-c",
        _SCRIPT,
        "datum-worker",
        str(table),
        working_dir,
        *argv,
    ]


PRIVATE_TMP_ENV = "DATUM_PRIVATE_TMP"


def private_tmp_setting(argv: Sequence[str] = (), path: str | None = None) -> bool:
    """Whether commands get a private ``/tmp`` with the namespace (``DATUM_PRIVATE_TMP``).

    ``on``: always; ``off``: never (the host's ``/tmp``); ``auto`` (the default): yes, unless the
    command's program (``argv[0]`` looked up on ``path``) lives under the host's ``/tmp``, which
    a private ``/tmp`` would hide (exit status 127): a virtualenv in ``/tmp``, say.
    """
    raw = os.environ.get(PRIVATE_TMP_ENV, "").strip().lower()
    if raw not in _SETTINGS:
        from airflow_datum_provider.core.errors import SpecError

        raise SpecError(f"{raw!r} is not one of auto, on, off, 1, 0", field=f"${PRIVATE_TMP_ENV}")
    setting = _SETTINGS[raw]
    if setting is not None:
        return setting
    return not _needs_host_tmp(argv, path)


def _under_tmp(location: str) -> bool:
    real = os.path.realpath(location)
    return real == "/tmp" or real.startswith("/tmp/") or location.startswith("/tmp/")


def _needs_host_tmp(argv: Sequence[str], path: str | None) -> bool:
    return bool(argv) and _program_under_tmp(argv[0], path)


@functools.lru_cache(maxsize=64)
def _program_under_tmp(program: str, path: str | None) -> bool:
    found = program if "/" in program else shutil.which(program, path=path)
    return found is not None and _under_tmp(found)


def private_tmp(scratch_root: Path) -> Path:
    """The folder bound on ``/tmp`` for the commands run in ``scratch_root`` (its sibling).

    A datum set runs every datum in one scratch root, so its datums share this ``/tmp`` as a
    container's would; the set's runner removes it when the set ends
    (:func:`remove_private_tmp`). Without the namespace, commands use the host's ``/tmp``.
    """
    return scratch_root.with_name(scratch_root.name + ".tmp")


def remove_private_tmp(scratch_root: Path) -> None:
    """Delete :func:`private_tmp` and :func:`mount_table` of ``scratch_root`` (never raises)."""
    from airflow_datum_provider.core.worker.scratch import remove_tree

    remove_tree(private_tmp(scratch_root), ignore_errors=True)
    with contextlib.suppress(OSError):
        mount_table(scratch_root).unlink()


PFS_MOUNT_ENV = "DATUM_PFS_MOUNT"
_SETTINGS = {"": None, "auto": None, "1": True, "on": True, "0": False, "off": False}


def pfs_mount_setting() -> bool | None:
    """``DATUM_PFS_MOUNT``: ``auto`` (default) / ``on`` (required) / ``off`` (never)."""
    raw = os.environ.get(PFS_MOUNT_ENV, "").strip().lower()
    if raw not in _SETTINGS:
        from airflow_datum_provider.core.errors import SpecError

        raise SpecError(f"{raw!r} is not one of auto, on, off, 1, 0", field=f"${PFS_MOUNT_ENV}")
    return _SETTINGS[raw]


@functools.cache
def pfs_namespace_available() -> bool:
    """Whether commands can get a private ``/pfs`` here (probed once, then cached)."""
    if not sys.platform.startswith("linux"):
        return False
    if shutil.which("unshare") is None or shutil.which("mount") is None:
        return False
    if not os.path.isdir(PFS):
        if os.geteuid() != 0:
            return False
        try:
            os.mkdir(PFS, 0o755)
        except FileExistsError:
            pass
        except OSError:
            return False
    with tempfile.TemporaryDirectory(prefix="datum-pfs-probe-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / "probe").write_text("ok")
        check = 'test -f /pfs/in/probe && ! ( : > /pfs/in/probe ) 2>/dev/null && test "$PWD" = /pfs'
        argv = wrap_command(
            ["/bin/sh", "-c", check], scratch_root=root, read_only=["in"], working_dir=PFS
        )
        try:
            done = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=10,
                check=False,
            )
        except (OSError, subprocess.SubprocessError):
            return False
        finally:
            with contextlib.suppress(OSError):
                mount_table(root).unlink()
        return done.returncode == 0
