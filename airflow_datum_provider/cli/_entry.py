"""The ``datumctl`` console script: ``next datum`` without loading the whole CLI, else ``main``.

User code under datum batching calls ``datumctl next datum`` once per datum, so that one verb
skips importing click and the store (about 0.1 s instead of about 1 s per call).
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def _fast_next(args: list[str]) -> int | None:
    """Serve ``next datum [--error MSG | --error=MSG]``; ``None`` for anything else."""
    if args[:2] != ["next", "datum"]:
        return None
    rest = args[2:]
    error: str | None
    if not rest:
        error = None
    elif len(rest) == 2 and rest[0] == "--error":
        error = rest[1]
    elif len(rest) == 1 and rest[0].startswith("--error="):
        error = rest[0][len("--error=") :]
    else:
        return None  # --help, typos: click explains
    from airflow_datum_provider.core.worker.batching_client import NextDatumError, next_datum

    try:
        next_datum(error)
    except NextDatumError as exc:
        print(f"datumctl: error: {exc}", file=sys.stderr)
        return 1
    return 0


def main() -> int:
    """Console-script entry point."""
    code = _fast_next(sys.argv[1:])
    if code is not None:
        return code
    from airflow_datum_provider.cli.main import main as full

    return full()
