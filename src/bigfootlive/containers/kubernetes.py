"""One Pod per event, created and deleted through the official async client
(`kubernetes_asyncio`); resource use from the metrics API (`metrics.k8s.io`).

Pods are built from a template (`K8S_POD_TEMPLATE`, default `deploy/k8s/event-pod.yaml`'s
built-in twin) with the event's labels, the launching manager in annotations, resource
requests/limits and a termination grace period for the worker's drain. `restartPolicy: Never`:
restarts are the manager's, with back-off, so they are counted and visible.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import uuid
from pathlib import Path
from typing import Any, cast

import structlog
import yaml
from kubernetes_asyncio import client, config, watch
from kubernetes_asyncio.client.rest import ApiException

from bigfootlive.config import Settings
from bigfootlive.containers.base import ContainerInfo, ContainerSpec, ContainerStats, RunState

log = structlog.get_logger(__name__)

COMPONENT = "event-container"
LABEL_EVENT = "bigfootlive.io/event-id"
LABEL_TENANT = "bigfootlive.io/tenant-id"
LABEL_CLUSTER = "bigfootlive.io/cluster"
ANNOTATION_OWNER = "bigfootlive.io/owner"
ANNOTATION_GENERATION = "bigfootlive.io/generation"

DEFAULT_TEMPLATE: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"labels": {"app.kubernetes.io/name": "bigfootlive"}},
    "spec": {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "containers": [
            {
                "name": "worker",
                "image": "bigfootlive:latest",
                "command": ["bigfootlive"],
                "envFrom": [
                    {"configMapRef": {"name": "bigfootlive-config"}},
                    {"secretRef": {"name": "bigfootlive-secrets"}},
                ],
            }
        ],
    },
}

PHASES = {
    "Pending": RunState.PENDING,
    "Running": RunState.RUNNING,
    "Succeeded": RunState.EXITED,
    "Failed": RunState.FAILED,
    "Unknown": RunState.PENDING,
}


def pod_name(event_id: uuid.UUID) -> str:
    return f"bfl-event-{event_id}"


def cluster_label(settings: Settings) -> str:
    return hashlib.sha256(settings.database_url.encode()).hexdigest()[:12]


def parse_cpu(quantity: str) -> float:
    """Cores from a Kubernetes CPU quantity ("250m", "12345678n", "1")."""
    units = {"n": 1e-9, "u": 1e-6, "m": 1e-3}
    if quantity and quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity)


def parse_memory(quantity: str) -> int:
    """Bytes from a Kubernetes memory quantity ("512Mi", "1G", "1048576")."""
    binary = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
    decimal = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for suffix, factor in binary.items():
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    if quantity and quantity[-1] in decimal:
        return int(float(quantity[:-1]) * decimal[quantity[-1]])
    return int(float(quantity))


def load_template(settings: Settings) -> dict[str, Any]:
    if settings.k8s_pod_template:
        loaded = yaml.safe_load(Path(settings.k8s_pod_template).read_text())
        if not isinstance(loaded, dict) or loaded.get("kind") != "Pod":
            raise ValueError(f"{settings.k8s_pod_template} is not a Pod manifest")
        return loaded
    return copy.deepcopy(DEFAULT_TEMPLATE)


def pod_manifest(
    settings: Settings, spec: ContainerSpec, template: dict[str, Any]
) -> dict[str, Any]:
    pod = copy.deepcopy(template)
    metadata = pod.setdefault("metadata", {})
    metadata["name"] = pod_name(spec.event_id)
    metadata["namespace"] = settings.k8s_namespace
    metadata.setdefault("labels", {}).update(
        {
            "app.kubernetes.io/name": "bigfootlive",
            "app.kubernetes.io/component": COMPONENT,
            "app.kubernetes.io/managed-by": "bigfootlive-container-manager",
            LABEL_EVENT: str(spec.event_id),
            LABEL_TENANT: str(spec.tenant_id),
            LABEL_CLUSTER: cluster_label(settings),
        }
    )
    metadata.setdefault("annotations", {}).update(
        {
            ANNOTATION_OWNER: spec.owner,
            ANNOTATION_GENERATION: spec.generation,
            "bigfootlive.io/launched-at": dt.datetime.now(dt.UTC).isoformat(),
        }
    )
    body = pod.setdefault("spec", {})
    body["restartPolicy"] = "Never"
    body["terminationGracePeriodSeconds"] = int(settings.container_stop_grace_seconds)
    container = body["containers"][0]
    container["image"] = settings.k8s_worker_image
    container["args"] = [
        "container", "run", "--event", str(spec.event_id), "--handle", spec.generation,
    ]  # fmt: skip
    cpu_millis = int(settings.container_cpu_limit * 1000)
    memory_mi = settings.container_memory_limit_mb
    container["resources"] = {
        "requests": {"cpu": f"{max(cpu_millis // 2, 10)}m", "memory": f"{memory_mi // 2}Mi"},
        "limits": {"cpu": f"{cpu_millis}m", "memory": f"{memory_mi}Mi"},
    }
    env = [e for e in container.get("env", []) if e.get("name") != "CONTAINER_RUNTIME"]
    # A worker never runs a manager of its own.
    env.append({"name": "CONTAINER_MANAGER_ENABLED", "value": "false"})
    container["env"] = env
    return pod


class KubernetesRuntime:
    name = "kubernetes"
    stats_from_runtime = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.namespace = settings.k8s_namespace
        self.template = load_template(settings)
        self._api: client.ApiClient | None = None
        self._lock = asyncio.Lock()

    async def api(self) -> client.ApiClient:
        async with self._lock:
            if self._api is None:
                if self.settings.k8s_api_url:
                    configuration = client.Configuration(host=self.settings.k8s_api_url)
                    self._api = client.ApiClient(configuration)
                else:
                    try:
                        config.load_incluster_config()  # type: ignore[no-untyped-call]
                    except config.ConfigException:
                        await config.load_kube_config()
                    self._api = client.ApiClient()
            return self._api

    async def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(await self.api())

    def manifest(self, spec: ContainerSpec) -> dict[str, Any]:
        return pod_manifest(self.settings, spec, self.template)

    async def launch(self, spec: ContainerSpec) -> ContainerInfo:
        core = await self.core()
        try:
            pod = await core.create_namespaced_pod(self.namespace, cast(Any, self.manifest(spec)))
        except ApiException as exc:
            if exc.status != 409:
                raise
            pod = await core.read_namespaced_pod(pod_name(spec.event_id), self.namespace)
            info = self._info(pod)
            if info.state in (RunState.EXITED, RunState.FAILED):
                # A finished Pod of an earlier launch holds the name: replace it.
                await self._delete(spec.event_id, 0)
                pod = await core.create_namespaced_pod(
                    self.namespace, cast(Any, self.manifest(spec))
                )
        return self._info(pod)

    async def _delete(self, event_id: uuid.UUID, grace_seconds: int) -> None:
        core = await self.core()
        try:
            await core.delete_namespaced_pod(
                pod_name(event_id), self.namespace, grace_period_seconds=grace_seconds
            )
        except ApiException as exc:
            if exc.status != 404:
                raise

    async def stop(self, event_id: uuid.UUID, *, grace_seconds: float) -> None:
        """Kubernetes sends SIGTERM, waits the grace period, then SIGKILL."""
        await self._delete(event_id, max(int(grace_seconds), 1))

    async def status(self, event_id: uuid.UUID) -> ContainerInfo | None:
        core = await self.core()
        try:
            pod = await core.read_namespaced_pod(pod_name(event_id), self.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self._info(pod)

    async def wait_running(self, event_id: uuid.UUID, *, within: float = 60.0) -> ContainerInfo:
        """Watch the Pod until it runs (or has already finished)."""
        core = await self.core()
        watcher = watch.Watch()
        try:
            async with asyncio.timeout(within):
                async for change in watcher.stream(
                    core.list_namespaced_pod,
                    self.namespace,
                    field_selector=f"metadata.name={pod_name(event_id)}",
                    timeout_seconds=int(within),
                ):
                    info = self._info(change["object"])
                    if info.state != RunState.PENDING:
                        return info
        finally:
            watcher.stop()
            await watcher.close()
        raise TimeoutError(f"pod {pod_name(event_id)} did not start")

    async def stats(self, event_id: uuid.UUID) -> ContainerStats | None:
        metrics = client.CustomObjectsApi(await self.api())
        try:
            found = await metrics.get_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", self.namespace, "pods", pod_name(event_id)
            )
        except ApiException:
            return None
        cpu = sum(parse_cpu(c["usage"]["cpu"]) for c in found.get("containers", []))
        memory = sum(parse_memory(c["usage"]["memory"]) for c in found.get("containers", []))
        return ContainerStats(cpu_percent=round(cpu * 100, 2), memory_bytes=memory)

    async def list(self) -> list[ContainerInfo]:
        core = await self.core()
        selector = (
            f"app.kubernetes.io/component={COMPONENT},"
            f"{LABEL_CLUSTER}={cluster_label(self.settings)}"
        )
        pods = await core.list_namespaced_pod(self.namespace, label_selector=selector)
        return [self._info(pod) for pod in pods.items]

    async def forget(self, event_id: uuid.UUID) -> None:
        """Delete the finished Pod (kept until now for its logs and exit code)."""
        info = await self.status(event_id)
        if info is not None and info.state in (RunState.EXITED, RunState.FAILED):
            await self._delete(event_id, 0)

    async def close(self) -> None:
        """Pods outlive the API process: the next leader finds them with `list`."""
        if self._api is not None:
            await self._api.close()
            self._api = None

    def _info(self, pod: Any) -> ContainerInfo:
        phase = (pod.status.phase if pod.status else None) or "Pending"
        exit_code = None
        statuses = (pod.status.container_statuses if pod.status else None) or []
        for status in statuses:
            terminated = status.state.terminated if status.state else None
            if terminated is not None:
                exit_code = terminated.exit_code
        labels = pod.metadata.labels or {}
        return ContainerInfo(
            event_id=uuid.UUID(labels[LABEL_EVENT]),
            handle=pod.metadata.name,
            state=PHASES.get(phase, RunState.PENDING),
            started_at=pod.status.start_time if pod.status else None,
            exit_code=exit_code,
        )
