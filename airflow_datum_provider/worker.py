"""Process entrypoint that runs one datum set: what a pod or a subprocess executes.

::

    python -m airflow_datum_provider.worker run-set --store URL --pipeline P --job J --set N
        [--summary-file PATH] [--scratch-root DIR] [--verbose]

It calls :func:`airflow_datum_provider.core.run_set` and writes the set's summary as JSON to
``--summary-file`` (``/airflow/xcom/return.json`` in a pod) and to stdout. Storage options for
the store URL come from the environment variable ``DATUM_STORAGE_OPTIONS`` (a JSON object), so
credentials never appear on a command line. Exit status: 0 when the set ran (even if some of
its datums failed: the summary says so), 3 when the job was stopped or timed out, 2 for bad
arguments or any other error, printed as one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

STORAGE_OPTIONS_ENV = "DATUM_STORAGE_OPTIONS"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m airflow_datum_provider.worker")
    verbs = parser.add_subparsers(dest="verb", required=True)
    run = verbs.add_parser("run-set", help="run every datum of one datum set of a planned job")
    run.add_argument("--store", required=True, help="the store URL")
    run.add_argument("--pipeline", required=True)
    run.add_argument("--job", required=True, help="the job id")
    run.add_argument("--set", required=True, type=int, dest="number", help="the set number")
    run.add_argument("--summary-file", type=Path, help="write the summary JSON here too")
    run.add_argument("--scratch-root", type=Path, help="run datums in this folder")
    run.add_argument("--verbose", action="store_true", help="echo datum logs to stderr")
    return parser


def _storage_options() -> dict[str, Any]:
    raw = os.environ.get(STORAGE_OPTIONS_ENV, "")
    if not raw:
        return {}
    try:
        options = json.loads(raw)
    except ValueError as exc:
        raise SystemExit(f"worker: {STORAGE_OPTIONS_ENV} is not valid JSON ({exc})") from None
    if not isinstance(options, dict):
        raise SystemExit(f"worker: {STORAGE_OPTIONS_ENV} must be a JSON object")
    return options


def main(argv: Sequence[str] | None = None) -> int:
    """Run the entrypoint; returns the exit status."""
    args = _parser().parse_args(argv)
    from airflow_datum_provider.core.errors import DatumError, JobKilled
    from airflow_datum_provider.core.jobs.steps import SetRef, run_set
    from airflow_datum_provider.core.store import Store

    try:
        store = Store.open(args.store, storage_options=_storage_options())
        ref = SetRef(pipeline=args.pipeline, job=args.job, set=args.number)
        summary = run_set(store, ref, scratch_root=args.scratch_root, verbose=args.verbose)
    except JobKilled as exc:
        print(f"worker: job {args.job} killed: {exc}", file=sys.stderr)
        return 3
    except DatumError as exc:
        print(f"worker: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(summary.to_dict())
    if args.summary_file is not None:
        args.summary_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.summary_file.with_name(args.summary_file.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.summary_file)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
