"""The environment user code sees, with Pachyderm's variable names.

Later entries win: the worker's own environment, then the transform's ``env``, then
``PPS_PIPELINE_NAME``, then per input ``<name>=<root>/<name>/<path>`` (no trailing ``/``; the
last input of a repeated name wins, as in a group) and ``<name>_COMMIT``, then
``PACH_DATUM_<name>_JOIN_ON`` / ``_GROUP_BY`` when non-empty, ``DATUM_ROW_START`` /
``DATUM_ROW_END`` for a row-range datum (``rows_per_datum``: rows ``[start, end)`` of the table
at ``$<name>``, 0-based, the header not counted), ``PACH_DATUM_ID``, ``PACH_JOB_ID``,
``PACH_OUTPUT_COMMIT_ID`` and ``PFS_ROOT``. ``root`` is the path user code sees: ``/pfs`` in a
pod or inside the private mount namespace, the real scratch folder otherwise.

``<root>/.env`` holds the same variables minus the inherited worker environment, so a worker's
secrets (cloud keys, Airflow connections) never land in a file that may be kept for inspection.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from airflow_datum_provider.core.datum import Datum

__all__ = ["datum_env", "datum_variables", "input_path", "write_all", "write_env_file"]


def input_path(root: str, name: str, path: str) -> str:
    """Where an input's file or directory sits under ``root`` (Go's ``path.Join``: no ``/`` end)."""
    return f"{root}/{name}{path.rstrip('/')}"


def datum_variables(
    datum: Datum,
    *,
    root: str,
    job_id: str,
    output_commit_id: str,
    pipeline: str,
    transform_env: Mapping[str, str],
) -> dict[str, str]:
    """The variables this package sets for one datum (everything but the inherited env)."""
    out = dict(transform_env)
    out["PPS_PIPELINE_NAME"] = pipeline
    for inp in datum.inputs:
        out[inp.name] = input_path(root, inp.name, inp.path)
        out[f"{inp.name}_COMMIT"] = inp.commit
        if inp.join_on:
            out[f"PACH_DATUM_{inp.name}_JOIN_ON"] = inp.join_on
        if inp.group_by:
            out[f"PACH_DATUM_{inp.name}_GROUP_BY"] = inp.group_by
        if inp.rows is not None:
            out["DATUM_ROW_START"], out["DATUM_ROW_END"] = str(inp.rows[0]), str(inp.rows[1])
    out["PACH_DATUM_ID"] = datum.id
    out["PACH_JOB_ID"] = job_id
    out["PACH_OUTPUT_COMMIT_ID"] = output_commit_id
    out["PFS_ROOT"] = root
    return out


def datum_env(
    variables: Mapping[str, str], base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The full environment: ``base`` (default: this process's) overlaid with ``variables``."""
    env = dict(os.environ if base is None else base)
    env.update(variables)
    return env


def write_all(fd: int, data: bytes, offset: int | None = None) -> None:
    """Write all of ``data`` to ``fd`` (at ``offset`` when given, else where it stands)."""
    view = memoryview(data)
    while view:
        n = os.write(fd, view) if offset is None else os.pwrite(fd, view, offset)
        view = view[n:]
        if offset is not None:
            offset += n


_ENV_FLAGS = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def write_env_file(path: Path | str, variables: Mapping[str, str]) -> None:
    """Write ``KEY=VALUE`` lines (Pachyderm's ``/pfs/.env``), over the file already there.

    Written in place and then cut to length, never truncated first: on many disks creating a
    file, or emptying one and writing it again, costs far more than rewriting its bytes. The
    caller makes sure a file already at ``path`` is its own (a layout replaces anything else).
    """
    data = "".join(f"{k}={v}\n" for k, v in variables.items()).encode()
    fd = os.open(path, _ENV_FLAGS, 0o644)
    try:
        write_all(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
