"""``DatumBatchingOperator``: one Kubernetes pod per datum set, its user code batched.

Map it over the sets of a planned job, like the local process operator::

    DatumBatchingOperator.partial(
        task_id="process", pipeline="edges", store="s3://bucket/datums",
        storage_options_secret="datum-store",
    ).expand(datum_set=create_datums.output)

The pod's container runs the worker entrypoint
(``python -m airflow_datum_provider.worker run-set --store URL --pipeline P --job J --set N``)
with ``/pfs`` as its scratch root; the worker runs the pipeline's ``cmd`` (with
``transform.datum_batching: true``, once for the whole set), checkpoints each datum's result
and outputs in the store, and writes the set's summary to ``/airflow/xcom/return.json``, which
becomes the task's return value (``do_xcom_push``).

From the pipeline spec (the version the job runs): ``transform.image`` (else ``image=``),
``transform.env``, ``transform.secrets`` (Kubernetes secret env vars and volumes),
``resource_requests`` / ``resource_limits`` (``cpu``, ``memory``, ``disk`` as
``ephemeral-storage``, ``gpu`` as ``{type: number}``), ``pod_spec`` (JSON merged into the pod's
``spec``) and ``pod_patch`` (an RFC 6902 JSON patch applied to the pod's ``spec`` after that),
as Pachyderm does. Labels name the pipeline, the job and the set.

The store must be reachable from the pod: a ``memory://`` store is refused, and a local folder
only with ``store_volume=`` (a ``V1Volume`` holding it, mounted at the same path). Credentials
come from a Kubernetes secret (``storage_options_secret``, key ``DATUM_STORAGE_OPTIONS``: the
fsspec options as JSON), referenced from the pod, never in XCom, labels, annotations or logs.

Failure modes: a failed datum is the set's result (the task succeeds and its summary names the
datum, as the local operator); a pod that dies (evicted, OOM-killed, node lost) fails the task,
and Airflow's retry starts a fresh pod that resumes after the datums already checkpointed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import jsonpatch
from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator
from kubernetes.client import ApiClient
from kubernetes.client import models as k8s

from airflow_datum_provider.core.errors import PipelineError

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["PFS_VOLUME", "STORAGE_OPTIONS_KEY", "XCOM_RETURN", "DatumBatchingOperator"]

PFS_VOLUME = "datum-pfs"
STORAGE_OPTIONS_KEY = "DATUM_STORAGE_OPTIONS"
XCOM_RETURN = "/airflow/xcom/return.json"
_LABEL_PREFIX = "airflow-datum-provider"


def _set_ref(datum_set: Any) -> dict[str, Any]:
    """The mapped argument as a set ref dict (a ``SetRef``, its dict, or JSON text)."""
    if hasattr(datum_set, "to_dict"):
        datum_set = datum_set.to_dict()
    if isinstance(datum_set, str):
        datum_set = json.loads(datum_set)
    if not isinstance(datum_set, Mapping) or not {"pipeline", "job", "set"} <= set(datum_set):
        raise PipelineError(
            f"datum_set: expected a set ref {{pipeline, job, set, ...}}, got {datum_set!r:.200}"
        )
    return dict(datum_set)


def _is_remote(url: str) -> bool:
    scheme = url.partition("://")[0] if "://" in url else ""
    return scheme not in ("", "file", "local", "memory")


def _local_path(url: str) -> str:
    for prefix in ("file://", "local://"):
        if url.startswith(prefix):
            return url[len(prefix) :]
    return url


def _resources(raw: str | None) -> dict[str, Any] | None:
    """Pachyderm's resource object (JSON text) as Kubernetes quantities."""
    if not raw:
        return None
    spec = json.loads(raw)
    out: dict[str, Any] = {}
    if spec.get("cpu") not in (None, 0, ""):
        out["cpu"] = str(spec["cpu"])
    if spec.get("memory"):
        out["memory"] = str(spec["memory"])
    if spec.get("disk"):
        out["ephemeral-storage"] = str(spec["disk"])
    gpu = spec.get("gpu")
    if isinstance(gpu, Mapping) and gpu.get("type") and gpu.get("number"):
        out[str(gpu["type"])] = str(gpu["number"])
    return out or None


def _merge(base: Any, extra: Any) -> Any:
    """``extra`` merged into ``base`` (dicts recursively; lists of named items by name)."""
    if isinstance(base, dict) and isinstance(extra, Mapping):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    if isinstance(base, list) and isinstance(extra, list):
        named = all(isinstance(x, Mapping) and "name" in x for x in [*base, *extra])
        if not named:
            return extra
        out = list(base)
        index = {item["name"]: i for i, item in enumerate(out)}
        for item in extra:
            if item["name"] in index:
                out[index[item["name"]]] = _merge(out[index[item["name"]]], item)
            else:
                out.append(item)
        return out
    return extra


class DatumBatchingOperator(KubernetesPodOperator):
    """Run one datum set in its own pod (module docstring); returns the set's summary."""

    template_fields: Sequence[str] = (*KubernetesPodOperator.template_fields, "datum_set", "store")

    def __init__(
        self,
        *,
        pipeline: str,
        store: str,
        datum_set: Any = None,
        storage_options_secret: str | None = None,
        store_volume: k8s.V1Volume | None = None,
        worker_command: Sequence[str] = ("python", "-m", "airflow_datum_provider.worker"),
        map_index_template: str | None = "{{ task.datum_set_label }}",
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("do_xcom_push", True)
        kwargs.setdefault("name", f"datum-{pipeline}")
        kwargs.setdefault("get_logs", True)
        super().__init__(map_index_template=map_index_template, **kwargs)
        self.pipeline = pipeline
        self.store = store
        self.datum_set = datum_set
        self.storage_options_secret = storage_options_secret
        self.store_volume = store_volume
        self.worker_command = tuple(worker_command)
        # What the caller gave; every build starts from these (a retry builds again).
        self._given_env = list(self.env_vars or [])
        self._given_volumes = list(self.volumes or [])
        self._given_mounts = list(self.volume_mounts or [])
        self._given_labels = dict(self.labels or {})
        self._given_image = self.image

    @property
    def datum_set_label(self) -> str:
        """``set N of job J`` for the task's map index (``map_index_template``)."""
        try:
            ref = _set_ref(self.datum_set)
        except (PipelineError, ValueError):
            return ""
        return f"set {ref['set']} of job {ref['job']}"

    # -- building the pod -----------------------------------------------------------------

    def _check_store(self) -> None:
        if self.store.startswith("memory://"):
            raise PipelineError(
                f"store {self.store!r}: a memory:// store lives in one process; a pod cannot "
                "reach it (use an object store URL)"
            )
        if not _is_remote(self.store) and self.store_volume is None:
            raise PipelineError(
                f"store {self.store!r} is a local folder a pod cannot reach; use an object "
                "store URL (s3://...) or give store_volume= (a volume holding that folder)"
            )

    def _spec(self, ref: Mapping[str, Any]) -> Any:
        from airflow_datum_provider.core.jobs import JobRecords
        from airflow_datum_provider.core.store import Store

        store = Store.open(self.store)
        records = JobRecords(store)
        job = records.job(str(ref["pipeline"]), str(ref["job"]))
        return records.job_pipeline(job).spec

    def _prepare(self, ref: Mapping[str, Any]) -> Any:
        """Set the pod fields of the base operator from the pipeline spec and the set."""
        self._check_store()
        spec = self._spec(ref)
        transform = spec.transform
        image = transform.image or self._given_image
        if not image:
            raise PipelineError(
                f"pipeline {spec.name!r}: transform.image is empty; set it or give image=",
                pipeline=spec.name,
            )
        self.image = image
        self.cmds = list(self.worker_command)
        self.arguments = [
            "run-set",
            "--store",
            self.store,
            "--pipeline",
            str(ref["pipeline"]),
            "--job",
            str(ref["job"]),
            "--set",
            str(int(ref["set"])),
            "--summary-file",
            XCOM_RETURN,
            "--scratch-root",
            "/pfs",
        ]
        env = [k8s.V1EnvVar(name=k, value=v) for k, v in transform.env]
        volumes = [k8s.V1Volume(name=PFS_VOLUME, empty_dir=k8s.V1EmptyDirVolumeSource())]
        mounts = [k8s.V1VolumeMount(name=PFS_VOLUME, mount_path="/pfs")]
        for i, secret in enumerate(transform.secrets):
            if secret.env_var:
                env.append(
                    k8s.V1EnvVar(
                        name=secret.env_var,
                        value_from=k8s.V1EnvVarSource(
                            secret_key_ref=k8s.V1SecretKeySelector(name=secret.name, key=secret.key)
                        ),
                    )
                )
            if secret.mount_path:
                name = f"datum-secret-{i}"
                volumes.append(
                    k8s.V1Volume(
                        name=name, secret=k8s.V1SecretVolumeSource(secret_name=secret.name)
                    )
                )
                mounts.append(
                    k8s.V1VolumeMount(name=name, mount_path=secret.mount_path, read_only=True)
                )
        if self.storage_options_secret:
            env.append(
                k8s.V1EnvVar(
                    name=STORAGE_OPTIONS_KEY,
                    value_from=k8s.V1EnvVarSource(
                        secret_key_ref=k8s.V1SecretKeySelector(
                            name=self.storage_options_secret, key=STORAGE_OPTIONS_KEY
                        )
                    ),
                )
            )
        if self.store_volume is not None:
            volumes.append(self.store_volume)
            mounts.append(
                k8s.V1VolumeMount(name=self.store_volume.name, mount_path=_local_path(self.store))
            )
        self.env_vars = [*env, *self._given_env]
        self.volumes = [*volumes, *self._given_volumes]
        self.volume_mounts = [*mounts, *self._given_mounts]
        requests = _resources(spec.resource_requests)
        limits = _resources(spec.resource_limits)
        if requests or limits:
            self.container_resources = k8s.V1ResourceRequirements(requests=requests, limits=limits)
        self.labels = {
            **self._given_labels,
            f"{_LABEL_PREFIX}/pipeline": str(ref["pipeline"]),
            f"{_LABEL_PREFIX}/job": str(ref["job"]),
            f"{_LABEL_PREFIX}/set": str(int(ref["set"])),
        }
        return spec

    def build_pod_request_obj(
        self, context: Context | None = None, *, dry_run: bool = False
    ) -> k8s.V1Pod:
        """The pod for this set: the base operator's, then ``pod_spec`` and ``pod_patch``."""
        ref = _set_ref(self.datum_set)
        spec = self._prepare(ref)
        pod = super().build_pod_request_obj(context, dry_run=dry_run)
        if not spec.pod_spec and not spec.pod_patch:
            return pod
        api = ApiClient()
        raw = api.sanitize_for_serialization(pod)
        body = raw.get("spec", {})
        if spec.pod_spec:
            body = _merge(body, json.loads(spec.pod_spec))
        if spec.pod_patch:
            try:
                body = jsonpatch.apply_patch(body, json.loads(spec.pod_patch))
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                raise PipelineError(
                    f"pod_patch of pipeline {spec.name!r} does not apply: {exc}",
                    pipeline=spec.name,
                ) from None
        raw["spec"] = body
        patched: k8s.V1Pod = PodGenerator.deserialize_model_dict(raw)
        return patched

    def execute(self, context: Context) -> Any:
        """Run the set's pod; return its summary (the failed datums are in it, not raised)."""
        self.log.info("datum %s: one pod for the whole set", self.datum_set_label)
        return super().execute(context)
