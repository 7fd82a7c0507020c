"""A narrow test double at the pod-manager seam: the pod's container runs as a local process.

:class:`LocalPodManager` takes the pod that ``KubernetesPodOperator`` builds, maps every volume
mount to a local folder (``emptyDir`` → a fresh folder, ``hostPath`` → that path, a secret →
files of its keys), rewrites those paths in the base container's command, arguments and
environment, and runs the command as a subprocess with the pod's environment (secret
references resolved from ``secrets``). ``extract_xcom`` serves what the command wrote to
``/airflow/xcom/return.json``; the remote pod's status reports the container's exit code.
Nothing else of Kubernetes is imitated: the operator's own ``execute`` (create → await → xcom →
cleanup) runs unchanged.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from kubernetes.client import models as k8s

log = logging.getLogger(__name__)

EMPTY_XCOM = "__airflow_xcom_result_empty__"


class _Pod:
    def __init__(self, request: k8s.V1Pod, proc: subprocess.Popen[bytes], xcom: Path) -> None:
        self.request = request
        self.proc = proc
        self.xcom = xcom
        self.output = b""
        self.reason = ""
        self.deleted = False
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        self.output = self.proc.stdout.read()


class LocalPodManager:
    """Runs each created pod's base container locally (module docstring)."""

    def __init__(
        self,
        workdir: Path,
        *,
        secrets: dict[str, dict[str, str]] | None = None,
        kill_when: Callable[[], bool] | None = None,
        kill_reason: str = "OOMKilled",
    ) -> None:
        self.workdir = workdir
        self.secrets = secrets or {}
        self.kill_when = kill_when
        self.kill_reason = kill_reason
        self.pods: dict[str, _Pod] = {}
        self.created: list[k8s.V1Pod] = []

    # -- what the operator calls ----------------------------------------------------------

    def create_pod(self, pod: k8s.V1Pod) -> k8s.V1Pod:
        name = pod.metadata.name
        root = self.workdir / name
        root.mkdir(parents=True, exist_ok=True)
        volumes = {v.name: v for v in pod.spec.volumes or []}
        container = next(c for c in pod.spec.containers if c.name == "base")
        mapping: dict[str, str] = {}
        for mount in container.volume_mounts or []:
            mapping[mount.mount_path] = self._local(volumes[mount.name], root)
        xcom = Path(mapping.get("/airflow/xcom") or root / "xcom")
        if "/airflow/xcom" not in mapping:  # the sidecar's volume, not on the base container
            xcom.mkdir(parents=True, exist_ok=True)
            mapping["/airflow/xcom"] = str(xcom)
        argv = [
            self._rewrite(a, mapping) for a in [*(container.command or []), *(container.args or [])]
        ]
        if argv and argv[0] == "python":
            argv[0] = sys.executable  # the image's python: this environment's
        env = {
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
            "HOME": str(root),
            "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        }
        for var in container.env or []:
            if var.value_from is not None:
                ref = var.value_from.secret_key_ref
                env[var.name] = self.secrets[ref.name][ref.key]
            else:
                env[var.name] = self._rewrite(var.value or "", mapping)
        proc = subprocess.Popen(
            argv,
            env=env,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pods[name] = _Pod(pod, proc, xcom / "return.json")
        self.created.append(pod)
        return pod

    async def await_pod_start(self, pod: k8s.V1Pod, **_: Any) -> None:
        return None

    async def watch_pod_events(self, pod: k8s.V1Pod, *_: Any) -> None:
        return None

    def fetch_requested_container_logs(self, pod: k8s.V1Pod, **_: Any) -> list[Any]:
        state = self._wait(pod)
        for line in state.output.decode(errors="replace").splitlines():
            log.info("[pod %s] %s", pod.metadata.name, line)
        return []

    def await_container_completion(self, pod: k8s.V1Pod, **_: Any) -> None:
        self._wait(pod)

    def await_xcom_sidecar_container_start(self, pod: k8s.V1Pod, **_: Any) -> None:
        return None

    def extract_xcom(self, pod: k8s.V1Pod, **_: Any) -> str:
        path = self.pods[pod.metadata.name].xcom
        return path.read_text() if path.exists() else EMPTY_XCOM

    def await_pod_completion(self, pod: k8s.V1Pod, *_: Any, **__: Any) -> k8s.V1Pod:
        self._wait(pod)
        return self.read_pod(pod)

    def read_pod(self, pod: k8s.V1Pod) -> k8s.V1Pod:
        state = self.pods[pod.metadata.name]
        code = state.proc.poll()
        terminated = None
        phase = "Running"
        if code is not None:
            exit_code = 128 - code if code < 0 else code
            phase = "Succeeded" if exit_code == 0 else "Failed"
            terminated = k8s.V1ContainerStateTerminated(
                exit_code=exit_code,
                reason=state.reason or ("Completed" if exit_code == 0 else "Error"),
            )
        status = k8s.V1ContainerStatus(
            name="base",
            image=state.request.spec.containers[0].image,
            image_id="",
            ready=code is None,
            restart_count=0,
            state=k8s.V1ContainerState(terminated=terminated),
        )
        return k8s.V1Pod(
            metadata=state.request.metadata,
            spec=state.request.spec,
            status=k8s.V1PodStatus(phase=phase, container_statuses=[status]),
        )

    def delete_pod(self, pod: k8s.V1Pod) -> None:
        state = self.pods[pod.metadata.name]
        if state.proc.poll() is None:
            os.killpg(state.proc.pid, signal.SIGKILL)
        state.deleted = True

    def read_pod_events(self, pod: k8s.V1Pod) -> Any:
        return SimpleNamespace(items=[])

    # -- the client's few calls (find_pod, patch_already_checked) ---------------------------

    def client(self) -> Any:
        manager = self

        class _Client:
            def list_namespaced_pod(self, namespace: str, label_selector: str = "") -> Any:
                live = [
                    manager.read_pod(p) for n, p in _named(manager) if not manager.pods[n].deleted
                ]
                return SimpleNamespace(items=live)

            def patch_namespaced_pod(self, **_: Any) -> None:
                return None

        return _Client()

    # -- helpers --------------------------------------------------------------------------

    def _wait(self, pod: k8s.V1Pod) -> _Pod:
        state = self.pods[pod.metadata.name]
        deadline = time.monotonic() + 600
        while state.proc.poll() is None:
            if self.kill_when is not None and self.kill_when():
                state.reason = self.kill_reason
                os.killpg(state.proc.pid, signal.SIGKILL)
                state.proc.wait()
                break
            if time.monotonic() > deadline:
                os.killpg(state.proc.pid, signal.SIGKILL)
                raise TimeoutError(f"pod {pod.metadata.name} ran over 600 s")
            time.sleep(0.02)
        state.reader.join(timeout=30)
        return state

    def _local(self, volume: k8s.V1Volume, root: Path) -> str:
        if volume.host_path is not None:
            return str(volume.host_path.path)
        folder = root / "volumes" / volume.name
        folder.mkdir(parents=True, exist_ok=True)
        if volume.secret is not None:
            for key, value in self.secrets.get(volume.secret.secret_name, {}).items():
                (folder / key).write_text(value)
        return str(folder)

    @staticmethod
    def _rewrite(value: str, mapping: dict[str, str]) -> str:
        for mount in sorted(mapping, key=len, reverse=True):
            if value == mount or value.startswith(mount + "/"):
                return mapping[mount] + value[len(mount) :]
        return value


def _named(manager: LocalPodManager) -> list[tuple[str, k8s.V1Pod]]:
    return [(p.metadata.name, p) for p in manager.created]


# The operator under test with only its pod manager (and the client's two calls) local.
# Defined here, at module level, so the DAG's serialized form names an importable class;
# this module is imported only by tests that already set up Airflow.
from functools import cached_property  # noqa: E402

from airflow_datum_provider.operators.kubernetes import DatumBatchingOperator  # noqa: E402

CONFIG: dict[str, Any] = {}
"""``workdir``, ``secrets`` and ``kill_when`` for the doubles the operators below create."""


class LocalDatumBatchingOperator(DatumBatchingOperator):
    """``DatumBatchingOperator`` whose pods run as local processes (``LocalPodManager``)."""

    @cached_property
    def pod_manager(self) -> Any:
        # One "cluster" per test: a retry's operator sees the pods of the earlier try.
        manager = CONFIG.get("manager")
        if manager is None:
            manager = CONFIG["manager"] = LocalPodManager(
                CONFIG["workdir"], secrets=CONFIG.get("secrets"), kill_when=CONFIG.get("kill_when")
            )
        return manager

    @cached_property
    def client(self) -> Any:
        return self.pod_manager.client()

    @cached_property
    def hook(self) -> Any:
        from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook

        manager = self.pod_manager

        class _LocalHook(KubernetesHook):
            """The real hook (connection extras, sidecar image); no cluster behind it."""

            @property
            def is_in_cluster(self) -> bool:
                return False

            def get_pod(self, name: str, namespace: str) -> Any:
                from kubernetes.client.exceptions import ApiException

                state = manager.pods.get(name)
                if state is None or state.deleted:
                    raise ApiException(status=404, reason="Not Found")
                return manager.read_pod(state.request)

        return _LocalHook(
            conn_id=self.kubernetes_conn_id,
            in_cluster=self.in_cluster,
            config_file=self.config_file,
            cluster_context=self.cluster_context,
        )
