"""Child process for the concurrent create / update tests.

``python -m tests.core._pipeline_writer '<json>'`` waits for ``start`` (a file) to exist, then
creates (or, with ``update``, updates) pipeline ``name`` whose transform writes ``tag``, and
prints ``ok <version>`` or ``error <message>``.
"""

from __future__ import annotations

import json
import os
import sys
import time

from airflow_datum_provider.core.errors import DatumError
from airflow_datum_provider.core.pipelines import create_pipeline
from airflow_datum_provider.core.spec import parse_spec
from airflow_datum_provider.core.store import Store


def spec(name: str, tag: str) -> dict[str, object]:
    """A copy pipeline whose output files hold ``tag``."""
    return {
        "pipeline": {"name": name},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": [
                "sh",
                "-c",
                f'for f in "$PFS_ROOT"/data/*; do echo {tag} > "$PFS_ROOT/out/$(basename "$f")"; done',
            ]
        },
    }


def main() -> None:
    args = json.loads(sys.argv[1])
    store = Store.open(args["url"])
    deadline = time.monotonic() + 60
    while not os.path.exists(args["start"]):
        if time.monotonic() > deadline:
            raise SystemExit("no start signal")
        time.sleep(0.005)
    try:
        info = create_pipeline(
            store, parse_spec(spec(args["name"], args["tag"])), update=args.get("update", False)
        )
    except DatumError as exc:
        import traceback

        traceback.print_exc()
        print(f"error {exc}")
        return
    print(f"ok {info.version}")


if __name__ == "__main__":
    main()
