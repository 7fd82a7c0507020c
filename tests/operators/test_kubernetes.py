"""DatumBatchingOperator: the pod it builds (dry run), and its whole execute path in dag.test().

No Kubernetes API server here: ``build_pod_request_obj(dry_run=True)`` shows the pod, and
``_pod_double.LocalPodManager`` (at the pod-manager seam) runs the pod's container command as a
local process, so create → await → xcom → cleanup run for real, with the real worker
entrypoint, the real batching protocol and a real store. A real-cluster test is at the end,
skipped unless ``KUBECONFIG`` points at one (kind).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

FILES = {f"/f{i:02d}": f"content {i}\n".encode() for i in range(15)}
DATUMCTL = str(Path(sys.executable).with_name("datumctl"))


def _loop(tmp_path: Path) -> list[str]:
    script = (
        f'echo "$$" >> "{tmp_path}/starts"\n'
        f'while "{DATUMCTL}" next datum; do\n'
        '  set -a; . "$PFS_ROOT/.env"; set +a\n'
        '  if [ "$(basename "$data")" = f13 ]; then echo "bad f13" >&2; exit 3; fi\n'
        '  cp "$data" "$PFS_ROOT/out/$(basename "$data")"\n'
        '  echo "$SECRET_TOKEN" > "$PFS_ROOT/out/$(basename "$data").token"\n'
        "done\n"
    )
    return ["sh", "-c", script]


def _world(tmp_path: Path, **extra: Any) -> tuple[str, list[dict[str, Any]]]:
    """A store with 15 files, a batching pipeline in sets of 5, and a planned job's set refs."""
    from airflow_datum_provider.core.engine import create_pipeline, plan_job, start_job
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store

    url = str(tmp_path / "store")
    store = Store.open(url)
    store.create_repo("data")
    with store.commit("data") as c:
        for path, data in FILES.items():
            c.put_bytes(path, data)
    spec: dict[str, Any] = {
        "pipeline": {"name": "pods"},
        "input": {"pfs": {"repo": "data", "glob": "/*"}},
        "transform": {
            "cmd": _loop(tmp_path),
            "datum_batching": True,
            "image": "registry.example/datums:1",
            "env": {"MODE": "batch"},
            "secrets": [
                {"name": "api", "key": "token", "env_var": "SECRET_TOKEN"},
                {"name": "certs", "mount_path": "/etc/certs"},
            ],
        },
        "datum_set_spec": {"number": 5},
        "datum_tries": 1,
        "resource_requests": {"cpu": 0.5, "memory": "256M"},
        "resource_limits": {"memory": "1G", "gpu": {"type": "nvidia.com/gpu", "number": 1}},
        "pod_patch": json.dumps(
            [{"op": "add", "path": "/nodeSelector", "value": {"pool": "datums"}}]
        ),
        "pod_spec": json.dumps({"priorityClassName": "batch"}),
    }
    spec.update(extra)
    create_pipeline(store, parse_spec(spec))
    job = start_job(store, "pods")
    plan = plan_job(store, job)
    return url, [ref.to_dict() for ref in plan.sets]


def _operator(url: str, ref: dict[str, Any], **kw: Any) -> Any:
    from kubernetes.client import models as k8s

    from airflow_datum_provider.operators.kubernetes import DatumBatchingOperator

    kw.setdefault(
        "store_volume",
        k8s.V1Volume(name="store", host_path=k8s.V1HostPathVolumeSource(path=url)),
    )
    return DatumBatchingOperator(
        task_id="process",
        pipeline="pods",
        store=url,
        datum_set=ref,
        namespace="datums",
        storage_options_secret="datum-store",
        **kw,
    )


def test_dry_run_pod_carries_the_spec(airflow_home: Path, tmp_path: Path) -> None:
    url, refs = _world(tmp_path)
    op = _operator(url, refs[1])
    pod = op.build_pod_request_obj(dry_run=True)
    base = next(c for c in pod.spec.containers if c.name == "base")
    assert base.image == "registry.example/datums:1"
    assert [*base.command, *base.args] == [
        "python", "-m", "airflow_datum_provider.worker", "run-set",
        "--store", url, "--pipeline", "pods", "--job", refs[1]["job"], "--set", "1",
        "--summary-file", "/airflow/xcom/return.json", "--scratch-root", "/pfs",
    ]  # fmt: skip
    env = {e.name: e for e in base.env}
    assert env["MODE"].value == "batch"
    token = env["SECRET_TOKEN"].value_from.secret_key_ref
    assert (token.name, token.key) == ("api", "token")
    store_secret = env["DATUM_STORAGE_OPTIONS"].value_from.secret_key_ref
    assert (store_secret.name, store_secret.key) == ("datum-store", "DATUM_STORAGE_OPTIONS")
    assert all(e.value is None for e in (env["SECRET_TOKEN"], env["DATUM_STORAGE_OPTIONS"]))
    mounts = {m.mount_path: m.name for m in base.volume_mounts}
    volumes = {v.name: v for v in pod.spec.volumes}
    assert volumes[mounts["/etc/certs"]].secret.secret_name == "certs"
    assert volumes[mounts["/pfs"]].empty_dir is not None
    assert volumes[mounts[url]].host_path.path == url
    assert "/airflow/xcom" in mounts  # the xcom sidecar's volume
    assert [c.name for c in pod.spec.containers] == ["base", "airflow-xcom-sidecar"]
    assert base.resources.requests == {"cpu": "0.5", "memory": "256M"}
    assert base.resources.limits == {"memory": "1G", "nvidia.com/gpu": "1"}
    labels = pod.metadata.labels
    assert labels["airflow-datum-provider/pipeline"] == "pods"
    assert labels["airflow-datum-provider/job"] == refs[1]["job"]
    assert labels["airflow-datum-provider/set"] == "1"
    assert pod.spec.node_selector == {"pool": "datums"}  # pod_patch
    assert pod.spec.priority_class_name == "batch"  # pod_spec
    assert op.datum_set_label == f"set 1 of job {refs[1]['job']}"


def test_store_a_pod_cannot_reach_is_refused(airflow_home: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.core.errors import PipelineError

    url, refs = _world(tmp_path)
    with pytest.raises(PipelineError, match="is a local folder a pod cannot reach"):
        _operator(url, refs[0], store_volume=None).build_pod_request_obj(dry_run=True)
    with pytest.raises(PipelineError, match="a memory:// store lives in one process"):
        _operator("memory://x", refs[0]).build_pod_request_obj(dry_run=True)


def test_a_pod_patch_that_does_not_apply_is_one_line(airflow_home: Path, tmp_path: Path) -> None:
    from airflow_datum_provider.core.errors import PipelineError

    bad = json.dumps([{"op": "replace", "path": "/nope/deeper", "value": 1}])
    url, refs = _world(tmp_path, pod_patch=bad)
    with pytest.raises(PipelineError, match="pod_patch of pipeline 'pods' does not apply"):
        _operator(url, refs[0]).build_pod_request_obj(dry_run=True)


# -- the whole execute path, in dag.test(), with the pod-manager double ---------------------

SECRETS = {
    "api": {"token": "s3cr3t-token"},
    "certs": {"ca.pem": "CERT"},
    "datum-store": {"DATUM_STORAGE_OPTIONS": "{}"},
}


def _local_operator_class(**config: Any) -> Any:
    from . import _pod_double

    _pod_double.CONFIG.clear()
    _pod_double.CONFIG.update(secrets=SECRETS, **config)
    return _pod_double.LocalDatumBatchingOperator


@pytest.fixture(scope="module")
def airflow_db(airflow_home: Path) -> Path:
    airflow = Path(sys.executable).with_name("airflow")
    done = subprocess.run(
        [str(airflow), "db", "migrate"], capture_output=True, text=True, timeout=600
    )
    if done.returncode != 0:
        pytest.fail(f"airflow db migrate failed: {done.stderr[-2000:]}")
    return airflow_home


def _dag_test(dag: Any) -> Any:
    """Serialize ``dag`` to the metadata DB (a DAG built in a test has no file), then test it."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.collection import update_dag_parsing_results_in_db
    from airflow.serialization.serialized_objects import LazyDeserializedDAG
    from airflow.utils.session import create_session

    with warnings.catch_warnings():
        # dag.test() runs the execution API through starlette's TestClient, which warns that
        # httpx2 is not installed; import it once here, quietly.
        warnings.simplefilter("ignore")
        import starlette.testclient  # noqa: F401

    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        update_dag_parsing_results_in_db(
            "dags-folder", None, [LazyDeserializedDAG.from_dag(dag)], {}, None, set(), session
        )
    return dag.test()


def _xcoms(dag_id: str, run_id: str) -> dict[int, Any]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = (
            session.query(XComModel)
            .filter(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
            .filter(XComModel.key == "return_value")
            .all()
        )
        return {
            row.map_index: json.loads(row.value) if isinstance(row.value, str) else row.value
            for row in rows
        }


def test_mapped_pods_run_each_set_in_dag_test(airflow_db: Path, tmp_path: Path) -> None:
    import pendulum
    from airflow.sdk import DAG
    from kubernetes.client import models as k8s

    from airflow_datum_provider.core.engine import finish_job
    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.store import Store

    url, refs = _world(tmp_path)
    operator = _local_operator_class(workdir=tmp_path / "pods")
    with DAG("datum_batching_pods", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        operator.partial(
            task_id="process",
            pipeline="pods",
            store=url,
            namespace="datums",
            storage_options_secret="datum-store",
            store_volume=k8s.V1Volume(name="store", host_path=k8s.V1HostPathVolumeSource(path=url)),
        ).expand(datum_set=refs)
    run = _dag_test(dag)
    assert run.state == "success"
    summaries = _xcoms(dag.dag_id, run.run_id)
    assert sorted(summaries) == [0, 1, 2]
    assert sum(s["success"] for s in summaries.values()) == 14
    failed = [s for s in summaries.values() if s["failed"]]
    assert len(failed) == 1  # the failed datum is reported, the task succeeded
    assert "s3cr3t" not in json.dumps(summaries)  # credentials never reach XCom
    # One user process per pod, and a fresh one after f13 failed (its set's f14 runs in it).
    assert len((tmp_path / "starts").read_text().splitlines()) == 4
    store = Store.open(url)
    records = JobRecords(store)
    job = records.job("pods", refs[0]["job"])
    results = [r for _, r in records.all_results(job)]
    assert len(results) == 15
    assert [r["reason"] for r in results if r["state"] == "failed"] == ["exit status 3"]
    assert finish_job(store, job).state == "failure"  # f13 failed: the job fails, nothing lands
    assert store.branch_head("pods", "master") is None


def test_a_killed_pod_fails_the_task_and_the_retry_resumes(
    airflow_db: Path, tmp_path: Path
) -> None:
    from datetime import timedelta

    import pendulum
    from airflow.sdk import DAG
    from kubernetes.client import models as k8s

    from airflow_datum_provider.core.jobs import JobRecords
    from airflow_datum_provider.core.store import Store

    ran = tmp_path / "ran"
    loop = [
        "sh",
        "-c",
        f'echo "$$" >> "{tmp_path}/starts"\n'
        f'while "{DATUMCTL}" next datum; do\n'
        '  set -a; . "$PFS_ROOT/.env"; set +a\n'
        f'  echo "$PACH_DATUM_ID" >> "{ran}"\n'
        '  cp "$data" "$PFS_ROOT/out/$(basename "$data")"\n'
        "done\n",
    ]
    url, refs = _world(tmp_path, transform={"cmd": loop, "datum_batching": True, "image": "i:1"})
    store = Store.open(url)
    records = JobRecords(store)
    job = records.job("pods", refs[0]["job"])
    fired: list[int] = []

    def oom_kill_once() -> bool:
        """The node kills the pod once two of its datums are checkpointed (OOMKilled)."""
        if fired or len(records.results(job, 0)) < 2:
            return False
        fired.append(len(records.results(job, 0)))
        return True

    operator = _local_operator_class(workdir=tmp_path / "pods", kill_when=oom_kill_once)
    with DAG(
        "datum_batching_evicted", schedule=None, start_date=pendulum.datetime(2026, 1, 1)
    ) as dag:
        operator(
            task_id="process",
            pipeline="pods",
            store=url,
            datum_set=refs[0],
            namespace="datums",
            store_volume=k8s.V1Volume(name="store", host_path=k8s.V1HostPathVolumeSource(path=url)),
            # A checkpoint part after every datum (the default batches 100 datums or 5 s), so
            # the kill comes once two datums are recorded.
            env_vars=[k8s.V1EnvVar(name="DATUM_CHECKPOINT_DATUMS", value="1")],
            retries=1,
            retry_delay=timedelta(seconds=0),
        )
    run = _dag_test(dag)
    assert fired, "the pod was never killed"
    assert run.state == "success"
    summary = _xcoms(dag.dag_id, run.run_id)[-1]
    assert (summary["success"], summary["failed"]) == (5, 0)
    assert len((tmp_path / "starts").read_text().splitlines()) == 2  # two pods, one process each
    runs = ran.read_text().splitlines()
    checkpointed = fired[0]
    # The retry resumed after the checkpoints: at most the datum in flight ran twice.
    assert 5 <= len(runs) <= 5 + 1
    assert len(set(runs)) == 5
    assert len(runs) - len(set(runs)) <= 1
    assert checkpointed >= 2


# -- a real cluster (kind): skipped here ------------------------------------------------------

_CLUSTER_ENV = ("KUBECONFIG", "DATUM_K8S_IMAGE", "DATUM_K8S_STORE", "DATUM_K8S_STORE_SECRET")


@pytest.mark.kubernetes
@pytest.mark.skipif(
    not all(os.environ.get(name) for name in _CLUSTER_ENV),
    reason="needs a real cluster: kind + KUBECONFIG, an image with this package "
    "(DATUM_K8S_IMAGE), a store both sides reach (DATUM_K8S_STORE) and its secret "
    "(DATUM_K8S_STORE_SECRET); see docs/deploy.md",
)
def test_real_cluster_runs_a_set_in_a_pod(airflow_db: Path, tmp_path: Path) -> None:
    import pendulum
    from airflow.sdk import DAG

    from airflow_datum_provider.core.engine import create_pipeline, plan_job, start_job
    from airflow_datum_provider.core.spec import parse_spec
    from airflow_datum_provider.core.store import Store
    from airflow_datum_provider.operators.kubernetes import DatumBatchingOperator

    url = os.environ["DATUM_K8S_STORE"]
    store = Store.open(
        url, storage_options=json.loads(os.environ.get("DATUM_STORAGE_OPTIONS", "{}"))
    )
    repo = f"kind{os.getpid()}"
    store.create_repo(repo)
    with store.commit(repo) as c:
        for path, data in FILES.items():
            c.put_bytes(path, data)
    loop = 'while datumctl next datum; do set -a; . "$PFS_ROOT/.env"; set +a; cp "$data" /pfs/out/; done'
    create_pipeline(
        store,
        parse_spec(
            {
                "pipeline": {"name": f"{repo}-pods"},
                "input": {"pfs": {"repo": repo, "glob": "/*"}},
                "transform": {
                    "cmd": ["sh", "-c", loop.replace("$data", f"${repo}")],
                    "datum_batching": True,
                    "image": os.environ["DATUM_K8S_IMAGE"],
                },
                "datum_set_spec": {"number": 15},
            }
        ),
    )
    plan = plan_job(store, start_job(store, f"{repo}-pods"))
    with DAG("datum_batching_kind", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
        DatumBatchingOperator(
            task_id="process",
            pipeline=f"{repo}-pods",
            store=url,
            datum_set=plan.sets[0].to_dict(),
            storage_options_secret=os.environ["DATUM_K8S_STORE_SECRET"],
            namespace=os.environ.get("DATUM_K8S_NAMESPACE", "default"),
            in_cluster=False,
        )
    run = _dag_test(dag)
    assert run.state == "success"
    assert _xcoms(dag.dag_id, run.run_id)[-1]["success"] == 15
