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
    "pfs_mount_setting",
    "pfs_namespace_available",
    "private_tmp",
    "private_tmp_setting",
    "remove_private_tmp",
    "wrap_command",
]

PFS = "/pfs"

# Exit status 125 for a failed mount, like `env` / `chroot` use for their own failures.
_SCRIPT = """\
root=$1; wd=$2; tmp=$3; shift 3
mount --bind "$root" /pfs || { echo "datum worker: cannot bind $root on /pfs" >&2; exit 125; }
if [ -n "$tmp" ]; then
  mount --bind "$tmp" /tmp || { echo "datum worker: cannot bind $tmp on /tmp" >&2; exit 125; }
fi
while [ "$1" != "--" ]; do
  mount -o bind,ro "/pfs/$1" "/pfs/$1" || {
    echo "datum worker: cannot mount /pfs/$1 read-only" >&2; exit 125; }
  shift
done
shift
if [ -n "$wd" ]; then cd "$wd" || exit 125; fi
exec "$@"
"""


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
    """
    unshare = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        unshare += ["--user", "--map-root-user"]
    names = list(dict.fromkeys(read_only))
    return [
        *unshare,
        "--",
        "/bin/sh",
        "-c",
        _SCRIPT,
        "datum-worker",
        str(scratch_root),
        working_dir,
        "" if tmp_dir is None else str(tmp_dir),
        *names,
        "--",
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
    """Delete :func:`private_tmp` of ``scratch_root`` (any depth; never raises)."""
    from airflow_datum_provider.core.worker.scratch import remove_tree

    remove_tree(private_tmp(scratch_root), ignore_errors=True)


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
        return done.returncode == 0
