"""deploy/k8s: every object validates against the Kubernetes 1.37 schema (kubernetes-validate,
strict: no unknown fields), and the objects fit together: autoscalers and disruption budgets
point at Deployments that exist, network policies and Services select pods that exist, every
long-running container asks for resources and has probes where it serves HTTP."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy" / "k8s"
VERSION = "1.37.0"


@pytest.fixture(scope="module")
def objects() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return found


def of_kind(objects: dict[str, dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for key, o in objects.items() if key.startswith(kind + "/")]


def pod_labels(objects: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(objects, "Deployment")]
    return labels + [p["metadata"]["labels"] for p in of_kind(objects, "Pod")]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def test_every_object_is_valid_for_kubernetes(objects):
    for key, doc in objects.items():
        assert kubernetes_validate.validate(doc, VERSION, strict=True), key


def test_an_invalid_object_is_refused():
    broken = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "x"},
        "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "x"}, "maxReplicas": "ten"},
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSION, strict=True)


def test_the_deployment_has_its_autoscalers_budgets_policies_and_media_server(objects):
    for wanted in (
        "Deployment/bigfootlive-api",
        "Deployment/bigfootlive-worker",
        "Deployment/bigfootlive-media-server",
        "Service/bigfootlive-rtmp",
        "Service/bigfootlive-media",
        "HorizontalPodAutoscaler/bigfootlive-api",
        "HorizontalPodAutoscaler/bigfootlive-worker",
        "HorizontalPodAutoscaler/bigfootlive-media-server",
        "PodDisruptionBudget/bigfootlive-api",
        "PodDisruptionBudget/bigfootlive-worker",
        "PodDisruptionBudget/bigfootlive-media-server",
        "NetworkPolicy/default-deny-ingress",
        "NetworkPolicy/bigfootlive-api",
        "NetworkPolicy/bigfootlive-media-server",
    ):
        assert wanted in objects, wanted


def test_autoscalers_target_deployments_and_keep_two_replicas(objects):
    for hpa in of_kind(objects, "HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        deployment = objects.get(f"{target['kind']}/{target['name']}")
        assert deployment is not None, target
        assert hpa["spec"]["minReplicas"] >= 2  # a PodDisruptionBudget can then keep one
        assert hpa["spec"]["maxReplicas"] >= hpa["spec"]["minReplicas"]
        containers = deployment["spec"]["template"]["spec"]["containers"]
        for metric in hpa["spec"]["metrics"]:
            resource = metric["resource"]["name"]  # utilisation needs a request to divide by
            assert all(resource in c["resources"]["requests"] for c in containers), target


def test_disruption_budgets_and_services_select_existing_pods(objects):
    labels = pod_labels(objects)
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        selector = pdb["spec"]["selector"]["matchLabels"]
        assert any(selects(selector, pod) for pod in labels), pdb["metadata"]["name"]
    for service in of_kind(objects, "Service"):
        assert any(selects(service["spec"]["selector"], pod) for pod in labels)


def test_network_policies_select_pods_and_deny_the_rest(objects):
    labels = pod_labels(objects)
    policies = of_kind(objects, "NetworkPolicy")
    default = objects["NetworkPolicy/default-deny-ingress"]
    assert default["spec"]["podSelector"] == {}
    assert default["spec"]["policyTypes"] == ["Ingress"]
    assert "ingress" not in default["spec"]
    for policy in policies:
        selector = policy["spec"]["podSelector"].get("matchLabels", {})
        assert any(selects(selector, pod) for pod in labels), policy["metadata"]["name"]
        for rule in policy["spec"].get("ingress", []):
            for peer in rule.get("from", []):
                if "podSelector" in peer:
                    wanted = peer["podSelector"]["matchLabels"]
                    assert any(selects(wanted, pod) for pod in labels), wanted
    # RTMP is open to encoders; the API only to the ingress, monitoring and our own pods
    api = objects["NetworkPolicy/bigfootlive-api"]
    assert not any("ipBlock" in peer for rule in api["spec"]["ingress"] for peer in rule["from"])


def test_containers_request_resources_and_http_servers_have_probes(objects):
    for deployment in of_kind(objects, "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            name = f"{deployment['metadata']['name']}/{container['name']}"
            requests = container["resources"]["requests"]
            assert {"cpu", "memory"} <= set(requests), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name
            if container.get("ports"):
                assert "readinessProbe" in container, name
                assert "livenessProbe" in container, name
    api = objects["Deployment/bigfootlive-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health"
    media = objects["Deployment/bigfootlive-media-server"]["spec"]["template"]["spec"]
    server = media["containers"][0]
    assert server["command"] == ["bigfootlive", "media-server", "run"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/_bfl/health"
    ports = {p["name"]: p["containerPort"] for p in server["ports"]}
    assert ports == {"rtmp": 1935, "http": 8080}
    env = {e["name"]: e.get("value") for e in server["env"]}
    assert env["MEDIA_SERVER_MODE"] == "external"
    assert env["MEDIA_API_URL"].startswith("http://bigfootlive-api")
    assert media["securityContext"]["runAsNonRoot"] is True
