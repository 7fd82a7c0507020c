"""Child process for the liveness tests: ``python -m tests.core.jobs._runner '<json>'``.

``run``: ``run_pipeline`` (``parallelism``, ``resume``) and print the job's state.
``land``: run a job whose landing pauses just before the output branch's ref compare-and-swap
(writing ``marker``) until ``gate`` exists, then print the job's state.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from airflow_datum_provider.core.engine import run_pipeline
from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store._backend import Backend, open_backend


class PausingBackend:
    """Delegates to a backend; the first ref create under ``prefix`` waits for ``gate``."""

    def __init__(self, inner: Backend, prefix: str, marker: str, gate: str) -> None:
        self._inner = inner
        self._prefix = prefix
        self._marker = marker
        self._gate = gate
        self._paused = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create(self, key: str, data: bytes) -> bool:
        if not self._paused and key.startswith(self._prefix):
            self._paused = True
            with open(self._marker, "w") as fh:
                fh.write("paused")
            deadline = time.monotonic() + 120
            while not os.path.exists(self._gate) and time.monotonic() < deadline:
                time.sleep(0.01)
        return self._inner.create(key, data)


def main() -> None:
    args = json.loads(sys.argv[1])
    if args["mode"] == "land":
        prefix = f"repos/{args['pipeline']}/branches/"
        backend = PausingBackend(open_backend(args["url"]), prefix, args["marker"], args["gate"])
        store = Store(backend)  # type: ignore[arg-type]
    else:
        store = Store.open(args["url"])
    job = run_pipeline(
        store, args["pipeline"], parallelism=args.get("parallelism"), resume=args.get("resume")
    )
    print(json.dumps({"id": job.id, "state": job.state, "reason": job.reason}))


if __name__ == "__main__":
    main()
