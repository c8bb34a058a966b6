"""The kubernetes runtime through the official async client, against a local API server that
speaks the Kubernetes wire protocol; Pod manifests validated against the Kubernetes schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from bigfootlive.containers.base import ContainerSpec
from bigfootlive.containers.kubernetes import KubernetesRuntime, parse_cpu, parse_memory, pod_name
from bigfootlive.containers.manager import ContainerManager
from tests.containers.fake_kubernetes import FakeKubernetes
from tests.containers.helpers import FAST, armed_event, streamer

NS = "events"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


@pytest.fixture
def kube() -> Iterator[FakeKubernetes]:
    server = FakeKubernetes()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings_overrides(kube: FakeKubernetes) -> dict[str, Any]:
    return {
        **FAST,
        "container_manager_enabled": False,
        "container_runtime": "kubernetes",
        "k8s_api_url": kube.url,
        "k8s_namespace": NS,
        "k8s_pod_template": str(DEPLOY / "event-pod.yaml"),
        "k8s_worker_image": "registry.example.com/bigfootlive:1.2.3",
        "container_cpu_limit": 0.5,
        "container_memory_limit_mb": 768,
        "container_stop_grace_seconds": 45,
    }


def _spec() -> ContainerSpec:
    return ContainerSpec(
        event_id=uuid.uuid4(), tenant_id=uuid.uuid4(), owner="api-1", generation="kubernetes:g1"
    )


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_pod_manifest_is_a_valid_kubernetes_pod(settings, kube):
    runtime = KubernetesRuntime(settings)
    spec = _spec()
    try:
        await runtime.launch(spec)
    finally:
        await runtime.close()
    (sent,) = kube.created
    assert kubernetes_validate.validate(sent, "1.37.0", strict=True)
    meta, pod = sent["metadata"], sent["spec"]
    assert meta["name"] == pod_name(spec.event_id)
    assert meta["namespace"] == NS
    assert meta["labels"]["bigfootlive.io/event-id"] == str(spec.event_id)
    assert meta["labels"]["bigfootlive.io/tenant-id"] == str(spec.tenant_id)
    assert meta["labels"]["app.kubernetes.io/component"] == "event-container"
    assert meta["annotations"]["bigfootlive.io/owner"] == "api-1"
    assert meta["annotations"]["bigfootlive.io/generation"] == "kubernetes:g1"
    assert pod["terminationGracePeriodSeconds"] == 45
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/bigfootlive:1.2.3"
    assert container["args"] == [
        "container", "run", "--event", str(spec.event_id), "--handle", "kubernetes:g1",
    ]  # fmt: skip
    assert container["resources"] == {
        "requests": {"cpu": "250m", "memory": "384Mi"},
        "limits": {"cpu": "500m", "memory": "768Mi"},
    }


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_runtime_creates_watches_lists_measures_and_deletes_pods(settings, kube):
    runtime = KubernetesRuntime(settings)
    spec = _spec()
    try:
        launched = await runtime.launch(spec)
        assert launched.state == "pending"
        assert launched.handle == pod_name(spec.event_id)
        running = await runtime.wait_running(spec.event_id, within=10)
        assert running.state == "running"
        assert running.started_at is not None
        assert [i.event_id for i in await runtime.list()] == [spec.event_id]
        stats = await runtime.stats(spec.event_id)
        assert stats is not None
        assert stats.cpu_percent == 25.0
        assert stats.memory_bytes == 128 * 1024 * 1024
        again = await runtime.launch(spec)  # idempotent: the existing Pod
        assert again.state == "running"
        assert len(kube.pods) == 1
        await runtime.stop(spec.event_id, grace_seconds=45)
        assert kube.deletes[-1]["grace_period_seconds"] in ("45", 45)
        assert await runtime.status(spec.event_id) is None
        assert await runtime.list() == []
    finally:
        await runtime.close()


async def test_manager_creates_a_pod_per_armed_event_and_replaces_a_failed_one(
    factory, client, state, kube
):
    manager = ContainerManager(state, KubernetesRuntime(state.settings), holder="api-1")
    event = await armed_event(client, await streamer(factory))
    name = pod_name(uuid.UUID(event["id"]))
    try:
        report = await manager.tick()
        assert report is not None
        assert report.launched == [uuid.UUID(event["id"])]
        await manager.runtime.wait_running(uuid.UUID(event["id"]), within=10)
        await manager.tick()  # records the Pod's resource use from the metrics API
        kube.fail(NS, name)
        await manager.runtime.wait_running(uuid.UUID(event["id"]), within=10)  # sees Failed
        restarted = None
        for _ in range(50):
            report = await manager.tick()
            if report is not None and report.restarted:
                restarted = report
                break
            import asyncio

            await asyncio.sleep(0.1)
        assert restarted is not None
        assert restarted.restarted == [uuid.UUID(event["id"])]
        assert len(kube.created) == 2
        assert kube.pods[(NS, name)]["status"]["phase"] in (
            "Pending",
            "Running",
        )
        assert (
            kube.created[1]["metadata"]["annotations"]["bigfootlive.io/generation"]
            != (kube.created[0]["metadata"]["annotations"]["bigfootlive.io/generation"])
        )
    finally:
        await manager.shutdown()


def test_quantities_are_parsed():
    assert parse_cpu("250m") == 0.25
    assert parse_cpu("2") == 2.0
    assert parse_cpu("500000000n") == pytest.approx(0.5)
    assert parse_memory("512Mi") == 512 * 2**20
    assert parse_memory("1G") == 10**9
    assert parse_memory("131072Ki") == 128 * 2**20


def test_deploy_manifests_are_valid_kubernetes_objects():
    kinds: dict[str, dict[str, Any]] = {}
    for path in sorted(DEPLOY.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            assert kubernetes_validate.validate(doc, "1.37.0", strict=True), path
            kinds[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    for wanted in (
        "ServiceAccount/bigfootlive-manager",
        "Role/bigfootlive-manager",
        "RoleBinding/bigfootlive-manager",
        "Deployment/bigfootlive-api",
        "Deployment/bigfootlive-worker",
        "Pod/bfl-event-template",
    ):
        assert wanted in kinds, sorted(kinds)
    role = kinds["Role/bigfootlive-manager"]
    pod_rules = [r for r in role["rules"] if "pods" in r["resources"]]
    assert {"create", "get", "list", "watch", "delete"} <= set(pod_rules[0]["verbs"])
    assert any("metrics.k8s.io" in r["apiGroups"] for r in role["rules"])
    assert role["apiVersion"] == "rbac.authorization.k8s.io/v1"
    binding = kinds["RoleBinding/bigfootlive-manager"]
    assert binding["roleRef"]["name"] == "bigfootlive-manager"
    assert binding["subjects"][0]["name"] == "bigfootlive-manager"
    api = kinds["Deployment/bigfootlive-api"]["spec"]["template"]["spec"]
    assert api["serviceAccountName"] == "bigfootlive-manager"
