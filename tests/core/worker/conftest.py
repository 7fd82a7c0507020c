"""A real store on ``tmp_path`` with one repo, and helpers to build datums and run them."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from airflow_datum_provider.core.datum import Datum, DatumInput
from airflow_datum_provider.core.store.store import Store
from airflow_datum_provider.core.worker import (
    DatumResult,
    JobContext,
    RunOptions,
    pfs_namespace_available,
    run_datum,
)

FILES = {
    "/a.txt": b"alpha\n",
    "/b.txt": b"bravo\n",
    "/dirA/x.txt": b"x-ray\n",
    "/dirA/sub/y.txt": b"yankee\n",
}

NAMESPACE = pfs_namespace_available()
needs_namespace = pytest.mark.skipif(
    not NAMESPACE, reason="no private /pfs mount namespace here (needs unshare + root or userns)"
)
# Both ways user code can see its root: the real scratch folder, and /pfs in a namespace.
MODES = [
    pytest.param(False, id="scratch-path"),
    pytest.param(True, id="pfs-namespace", marks=needs_namespace),
]


@dataclass
class World:
    """A store, one finished commit of repo ``data``, and a scratch root."""

    store: Store
    commit: str
    scratch: Path
    tmp: Path

    def input(self, name: str, path: str, **kw: Any) -> DatumInput:
        info = self.store.inspect_file("data", self.commit, path)
        if path.endswith("/") and not info.path.endswith("/"):
            raise AssertionError(path)
        return DatumInput(name, "data", "master", self.commit, path, info.hash, info.size, **kw)

    def datum(self, *inputs: DatumInput) -> Datum:
        return Datum.of(tuple(inputs), "salt")

    def run(
        self,
        datum: Datum,
        log: io.StringIO | None = None,
        verbose: bool = False,
        deadline: float | None = None,
        **kw: Any,
    ) -> DatumResult:
        kw.setdefault("datum_tries", 1)
        return run_datum(
            self.store,
            datum,
            options=RunOptions(**kw),
            job=JobContext(
                job_id="job1", output_commit="outcommit1", pipeline="pipe", deadline=deadline
            ),
            scratch_root=self.scratch,
            log=log,
            verbose=verbose,
        )

    def read(self, result: DatumResult) -> dict[str, bytes]:
        out = {}
        for entry in result.outputs:
            with self.store.open_blob(entry.hash) as fh:
                out[entry.path] = fh.read()
        return out

    def root_view(self, namespace: bool) -> str:
        return "/pfs" if namespace else os.path.realpath(self.scratch)


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = Store.open(str(tmp_path / "store"))
    store.create_repo("data")
    with store.commit("data") as c:
        for path, data in FILES.items():
            c.put_bytes(path, data)
    head = store.branch_head("data", "master")
    assert head is not None
    scratch = tmp_path / "scratch"
    return World(store=store, commit=head, scratch=scratch, tmp=tmp_path)
