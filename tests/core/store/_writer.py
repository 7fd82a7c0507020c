"""Child processes for the concurrency tests: ``python -m tests.core.store._writer '<json>'``.

``loop``: wait for a start file, then finish ``n`` commits on ``master`` and print their ids.
``kill``: start a commit, then stop at ``point`` (writing the commit id to ``marker``) and sleep
until the parent SIGKILLs it. The pause comes from a backend wrapper, so the store code under
test has no test hooks: ``puts`` keeps putting files forever; ``manifest`` stops in the first
manifest chunk write of ``finish``; ``before-cas`` stops just before the ref compare-and-swap;
``after-cas`` stops after it, before the open commit is cleaned up; ``pack`` stops in the
upload of the commit's first pack (the blobs of its puts, before any op segment names them).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from airflow_datum_provider.core.store import Store
from airflow_datum_provider.core.store._backend import Backend, open_backend


def _write_marker(path: str, commit_id: str) -> None:
    with open(path + ".tmp", "w") as fh:
        fh.write(commit_id)
    os.replace(path + ".tmp", path)


class PausingBackend:
    """Delegates to a backend; stops forever at one kind of call once ``armed``."""

    def __init__(self, inner: Backend, point: str, marker: str) -> None:
        self._inner = inner
        self._point = point
        self._marker = marker
        self.armed = False
        self.commit_id = ""

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _pause(self) -> None:
        _write_marker(self._marker, self.commit_id)
        while True:
            time.sleep(60)

    def write(self, key: str, data: bytes) -> None:
        if self.armed and self._point == "manifest" and key.startswith("chunks/"):
            self._pause()
        if self.armed and self._point == "pack" and key.startswith("packs/"):
            self._pause()
        self._inner.write(key, data)

    def create(self, key: str, data: bytes) -> bool:
        if self.armed and self._point == "before-cas" and "/branches/" in key:
            self._pause()
        return self._inner.create(key, data)

    def delete_tree(self, key: str) -> None:
        if self.armed and self._point == "after-cas" and "/open/" in key:
            self._pause()
        self._inner.delete_tree(key)


def loop(args: dict[str, Any]) -> None:
    store = Store.open(args["url"], storage_options=args["options"])
    deadline = time.monotonic() + 60
    while not os.path.exists(args["go"]) and time.monotonic() < deadline:
        time.sleep(0.01)
    ids = []
    worker = args["worker"]
    for j in range(args["n"]):
        with store.commit(args["repo"], "master") as c:
            c.put_bytes(f"/w{worker}/c{j}", f"{worker}:{j}".encode())
            c.put_bytes("/shared", f"{worker}:{j}".encode())
        ids.append(c.id)
    print(json.dumps(ids))


def kill(args: dict[str, Any]) -> None:
    backend = PausingBackend(
        open_backend(args["url"], args["options"]), args["point"], args["marker"]
    )
    store = Store(backend, pack_below=args.get("pack_below"))  # type: ignore[arg-type]
    commit = store.start_commit(args["repo"], "master")
    backend.commit_id = commit.id
    for i in range(20):
        commit.put_bytes(f"/killed/{i}", os.urandom(64))
    if args["point"] == "puts":
        commit.flush()  # one segment on storage, more ops buffered in memory
        i = 20
        while True:
            commit.put_bytes(f"/killed/{i}", os.urandom(64))
            i += 1
            if i == 40:
                _write_marker(args["marker"], commit.id)
    backend.armed = True
    commit.finish()
    raise AssertionError("the writer should have been stopped before finishing")


if __name__ == "__main__":
    payload = json.loads(sys.argv[1])
    {"loop": loop, "kill": kill}[payload["mode"]](payload)
