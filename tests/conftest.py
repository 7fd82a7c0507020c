"""Shared fixtures: an isolated Airflow home and an S3 server (moto) on localhost.

Nothing here imports ``airflow`` or sets environment variables at import time: core tests must
run without Airflow, and Airflow reads ``AIRFLOW_HOME`` once, when it is first imported. Tests that
need Airflow depend on ``airflow_home`` and import Airflow (or the adapters) inside the test or a
fixture, never at module level.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from tests import _leaks
from tests._ports import free_port

_WATCHING = pytest.StashKey[bool]()
_BASELINE = pytest.StashKey[set[int]]()
_LEFT: list[str] = []
_WORKER_LEFT = "datum_processes_left"

# No per-example deadline (a loaded 2-core machine is slow, not wrong); CI replays the same
# examples every run so a red build is reproducible.
settings.register_profile("default", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")

_AIRFLOW_ENV = {
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
}

# Fake credentials for moto, and no user config that could point boto at a real account.
_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_AWS_UNSET = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3")


def pytest_configure(config: pytest.Config) -> None:
    """Keep ``tmp_path`` out of ``/tmp``: user code in a datum gets a private ``/tmp``.

    Where the ``/pfs`` mount namespace works, each datum set's commands see their own ``/tmp``
    (docs/pachyderm.md), so a test whose user code writes marks into ``tmp_path`` needs
    ``tmp_path`` elsewhere. ``/var/tmp`` is the other standard temporary root.
    """
    if "PYTEST_DEBUG_TEMPROOT" not in os.environ and os.access("/var/tmp", os.W_OK):
        os.environ["PYTEST_DEBUG_TEMPROOT"] = "/var/tmp"
    # Processes left behind by tests (tests/_leaks.py): this process adopts orphans, and what
    # a dead earlier session over this checkout left running is killed first.
    if _leaks.become_subreaper():
        config.stash[_WATCHING] = True
        if _xdist_worker(config) and _leaks.SESSION_ENV in os.environ:
            # A pytest-xdist worker: the controller already killed what dead sessions left and
            # owns the session. Its marker, inherited here, names a `pytest` command line (a
            # worker's is `python -c ...` unless setproctitle renames it), so a later session
            # (or a restarted worker) over this checkout sees a worker's processes as live.
            return
        rootdir = str(config.rootpath)
        _LEFT.extend(
            f"(a dead earlier session) {line}" for line in _leaks.reap_dead_sessions(rootdir)
        )
        os.environ[_leaks.SESSION_ENV] = _leaks.session_marker(rootdir)


def _xdist_worker(config: pytest.Config) -> str | None:
    """The pytest-xdist worker id (``gw0``...) of this process; None in a serial session."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    return None if workerinput is None else str(workerinput["workerid"])


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    try:
        return (yield)
    finally:
        if item.config.stash.get(_WATCHING, False):
            item.stash[_BASELINE] = _leaks.children()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Fail a test that leaves a datum's user code running (and kill it)."""
    result = yield
    baseline = item.stash.get(_BASELINE, None)
    if baseline is None:
        return result
    user_code = _leaks.settle(baseline)
    _LEFT.extend(f"{item.nodeid}: {line}" for line in user_code)
    if user_code:
        pytest.fail(
            "the test left user code running (killed now): " + "; ".join(user_code),
            pytrace=False,
        )
    return result


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Every fixture is torn down: kill and list whatever the session left running.

    Last, so that under pytest-xdist the controller sweeps only once its workers are shut down
    (they are its children too): what it finds is what a crashed worker left. A worker has no
    terminal summary: it hands its lines to the controller, which prints them.
    """
    config = session.config
    if config.stash.get(_WATCHING, False):
        _LEFT.extend(f"(at the session's end) {line}" for line in _leaks.sweep())
    worker = _xdist_worker(config)
    if worker is not None:
        config.workeroutput[_WORKER_LEFT] = [f"[{worker}] {line}" for line in _LEFT]  # type: ignore[attr-defined]


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """pytest-xdist controller: a worker finished; take the leftovers it reported."""
    _LEFT.extend(getattr(node, "workeroutput", {}).get(_WORKER_LEFT, []))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if _LEFT:
        terminalreporter.section("processes left behind by tests (killed)")
        for line in _LEFT:
            terminalreporter.write_line(line)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that uses the S3 server ``s3``, so ``-m "not s3"`` deselects them.

    Under pytest-xdist (``make unit``: ``--dist loadfile --no-loadscope-reorder``, files handed
    out in this order) the files with a ``slow`` test go first, in their own order, so that the
    longest files (the Airflow stacks) do not start last while the other worker is idle. Every
    worker sorts the same collection the same way; a serial session keeps the file order.
    """
    for item in items:
        if "s3_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.s3)
    if _xdist_worker(config) is not None:
        slow = {item.path for item in items if item.get_closest_marker("slow")}
        items.sort(key=lambda item: item.path not in slow)


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An empty ``AIRFLOW_HOME`` for this session, set before Airflow is first imported.

    The environment is restored at the end of the session. Subprocesses that run the ``airflow``
    CLI inherit it. Tests that use Airflow in-process must not import it before requesting this.
    """
    home = tmp_path_factory.mktemp("airflow_home")
    (home / "dags").mkdir()
    env = {
        **_AIRFLOW_ENV,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield home


@pytest.fixture(scope="session")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1 for the whole session; yields its endpoint URL."""
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] is not installed (pip install 'moto[server]')"
    )
    pytest.importorskip("s3fs", reason="s3fs is not installed (pip install s3fs)")
    with pytest.MonkeyPatch.context() as mp:
        for name, value in _AWS_ENV.items():
            mp.setenv(name, value)
        for name in _AWS_UNSET:
            mp.delenv(name, raising=False)
        port = free_port()
        server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            server.stop()


@pytest.fixture
def s3_storage_options(s3_server: str) -> dict[str, Any]:
    """s3fs options that reach the moto server (the shape ``DatumStoreHook`` produces)."""
    return {
        "key": "testing",
        "secret": "testing",
        "endpoint_url": s3_server,
        "client_kwargs": {"region_name": "us-east-1"},
        # Every test gets its own filesystem object and listing cache.
        "skip_instance_cache": True,
    }


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A new, empty bucket on the moto server."""
    import boto3

    name = f"test-{uuid.uuid4().hex[:16]}"
    client = boto3.client(
        "s3",
        endpoint_url=s3_server,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    # No LocationConstraint: us-east-1 rejects one (which is also why s3fs.mkdir(bucket) fails
    # when client_kwargs carries region_name="us-east-1").
    client.create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_store_url(s3_bucket: str, s3_storage_options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """``("s3://<fresh bucket>/store", storage_options)`` for ``Store.open``."""
    return f"s3://{s3_bucket}/store", dict(s3_storage_options)


@pytest.fixture(scope="session")
def airflow_db(airflow_home: Path) -> Path:
    """A fresh SQLite metadata DB in the session's Airflow home (for ``dag.test()``)."""
    from airflow.utils import db

    db.resetdb()
    return airflow_home


def serialize_dag(dag: Any) -> None:
    """Write a DAG built in a test to the metadata DB, as the DAG processor would.

    ``dag.test()`` refuses a DAG that is not serialized.
    """
    import os

    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=os.devnull)
    bag.bag_dag(dag)
    sync_bag_to_db(bag, "dags-folder", None)
