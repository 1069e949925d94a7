"""`pulumi up` of the lab stack, then the cluster read back through the API: what the program promised is there.

Given the local cluster shaped like the lab's, when the lab stack is deployed by the real CLI, provider and
Helm, then the namespaces, the node, the Helm release and the ClusterPolicy the chart made, the sharing
ConfigMap, quotas, limit ranges, RBAC and monitoring objects are as the config says; the API server's own
admission enforces Pod Security and the GPU quota; and a second preview has nothing to do.
"""
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from components.gpu_nodes import FIELD_MANAGER
from tests.real.harness import MPS_4_CONFIG_MAP, helm_release, restore, tear_down
from tools.stacks import Stack
from tools.engine import Engine
from tools.kube import Kube, KubeError

@pytest.fixture(scope="module")
def deployed(engine: Engine, kube: Kube, baseline: dict,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(engine, tmp_path_factory.mktemp("lab-up") / "project", "lab-up")
    stack.init()
    result = stack.up()
    assert result.returncode == 0, result.output
    yield stack
    tear_down(stack)
    restore(kube, baseline)


def managers(obj: dict[str, Any]) -> dict[str, dict]:
    return {entry["manager"]: entry.get("fieldsV1", {}) for entry in obj["metadata"].get("managedFields", [])}


# --- what the program declared ------------------------------------------------------------------------------

def test_namespaces_carry_the_pod_security_labels_of_their_role(deployed: Stack, kube: Kube) -> None:
    expected = {"gpu-operator": "privileged", "ai-ml": "restricted", "sdr": "restricted"}
    for name, level in expected.items():
        labels = kube.get("v1", "Namespace", name)["metadata"]["labels"]
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == level, (name, mode)
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34", (name, mode)


def test_the_gpu_node_has_our_label_and_taint_owned_by_our_field_manager(deployed: Stack, kube: Kube) -> None:
    node = kube.get("v1", "Node", "proj-k8sw04")
    assert node["metadata"]["labels"]["gpu"] == "true"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in node["spec"]["taints"]
    owned = managers(node)[FIELD_MANAGER]
    assert "f:gpu" in owned["f:metadata"]["f:labels"]
    assert "f:taints" in owned["f:spec"]


def test_the_helm_release_is_deployed_from_the_pinned_chart_with_our_values(deployed: Stack, kube: Kube) -> None:
    release = helm_release(kube)
    assert release["labels"]["status"] == "deployed"
    record = release["record"]
    assert record["chart"]["metadata"]["version"] == "v26.7.0"
    assert record["config"]["driver"]["version"] == "580.173.02"


def test_the_cluster_policy_the_chart_made_has_the_pin_the_rke2_socket_and_the_sharing_config(
        deployed: Stack, kube: Kube) -> None:
    policy = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
    spec = policy["spec"]
    assert spec["driver"]["enabled"] is True and spec["driver"]["version"] == "580.173.02"
    assert {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"} in spec["toolkit"]["env"]
    assert spec["devicePlugin"]["config"] == {"name": MPS_4_CONFIG_MAP, "default": "mps-4"}
    upgrade = spec["driver"]["upgradePolicy"]
    assert (upgrade["maxParallelUpgrades"], upgrade["maxUnavailable"]) == (1, 1)


def test_the_sharing_config_map_holds_the_mps_profile(deployed: Stack, kube: Kube) -> None:
    config_map = kube.get("v1", "ConfigMap", MPS_4_CONFIG_MAP, "gpu-operator")
    profile = config_map["data"]["mps-4"]
    assert "mps:" in profile and "replicas: 4" in profile and "nvidia.com/gpu" in profile


@pytest.mark.parametrize("namespace,gpu,cpu,memory,pods", [("ai-ml", "2", "8", "32Gi", "20"),
                                                          ("sdr", "2", "4", "16Gi", "10")])
def test_each_tenant_has_its_quota_and_container_defaults(deployed: Stack, kube: Kube, namespace: str, gpu: str,
                                                          cpu: str, memory: str, pods: str) -> None:
    quota = kube.get("v1", "ResourceQuota", "tenant-quota", namespace)
    assert quota["spec"]["hard"] == {"requests.nvidia.com/gpu": gpu, "requests.cpu": cpu,
                                     "requests.memory": memory, "pods": pods}
    inference = kube.get("v1", "ResourceQuota", "priority-gpu-inference-high", namespace)
    assert inference["spec"]["hard"] == {"requests.nvidia.com/gpu": "1"}
    limits = kube.get("v1", "LimitRange", "container-defaults", namespace)["spec"]["limits"][0]
    assert limits["type"] == "Container" and set(limits["defaultRequest"]) == {"cpu", "memory"}


def test_the_alert_rules_and_the_dashboard_are_in_the_monitoring_namespace(deployed: Stack, kube: Kube) -> None:
    rules = kube.list("monitoring.coreos.com/v1", "PrometheusRule", "monitoring")
    assert len(rules) == 1 and rules[0]["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    alerts = {rule["alert"] for group in rules[0]["spec"]["groups"] for rule in group["rules"] if "alert" in rule}
    assert {"GpuUtilizationHigh", "GpuTemperatureHigh"} <= alerts, alerts
    dashboards = kube.list("v1", "ConfigMap", "monitoring", selector="grafana_dashboard=1")
    assert len(dashboards) == 1


# --- RBAC from the responsibility matrix, asked of the authorizer itself -------------------------------------

DS, INFRA, OPS, SEC = "lab:data-science", "lab:infrastructure", "lab:operations", "lab:security"
# (group, verb, resource, api group, namespace or None for cluster-wide, allowed), from docs/tenancy.md.
MATRIX = [
    (DS, "create", "pods", "", "ai-ml", True), (DS, "create", "deployments", "apps", "sdr", True),
    (DS, "delete", "secrets", "", "ai-ml", True), (DS, "update", "deployments/scale", "apps", "ai-ml", True),
    (DS, "get", "pods/log", "", "ai-ml", True), (DS, "list", "resourcequotas", "", "ai-ml", True),
    (DS, "create", "pods/exec", "", "ai-ml", False), (DS, "update", "resourcequotas", "", "ai-ml", False),
    (DS, "create", "roles", "rbac.authorization.k8s.io", "ai-ml", False),
    (DS, "create", "daemonsets", "apps", "ai-ml", False), (DS, "get", "pods", "", "gpu-operator", False),
    (DS, "list", "nodes", "", None, False), (DS, "create", "pods", "", "default", False),
    (INFRA, "delete", "daemonsets", "apps", "gpu-operator", True),
    (INFRA, "create", "pods/exec", "", "gpu-operator", True), (INFRA, "get", "pods", "", "ai-ml", True),
    (INFRA, "create", "pods", "", "ai-ml", False), (INFRA, "list", "nodes", "", None, True),
    (INFRA, "get", "clusterpolicies", "nvidia.com", None, True),
    (INFRA, "update", "clusterpolicies", "nvidia.com", None, False),
    (OPS, "get", "pods", "", "gpu-operator", True), (OPS, "delete", "pods", "", "gpu-operator", False),
    (OPS, "list", "resourcequotas", "", "sdr", True), (OPS, "get", "secrets", "", "ai-ml", False),
    (OPS, "list", "nodes", "", None, True), (OPS, "list", "priorityclasses", "scheduling.k8s.io", None, True),
    (SEC, "get", "roles", "rbac.authorization.k8s.io", "ai-ml", True),
    (SEC, "list", "clusterrolebindings", "rbac.authorization.k8s.io", None, True),
    (SEC, "list", "serviceaccounts", "", "sdr", True), (SEC, "get", "namespaces", "", None, True),
    (SEC, "get", "secrets", "", "ai-ml", False),
    (SEC, "create", "rolebindings", "rbac.authorization.k8s.io", "ai-ml", False),
    ("lab:visitors", "get", "pods", "", "ai-ml", False),
]


def test_rbac_allows_exactly_what_the_responsibility_matrix_says(deployed: Stack, kube: Kube) -> None:
    wrong = []
    for group, verb, resource, api_group, namespace, allowed in MATRIX:
        name, _, sub = resource.partition("/")
        got = kube.access_review(f"someone-in-{group}", [group, "system:authenticated"], verb, name, group=api_group,
                                 namespace=namespace, subresource=sub or None)
        if got != allowed:
            wrong.append((group, verb, resource, namespace, f"allowed={got}, matrix says {allowed}"))
    assert not wrong, wrong


# --- admission, enforced by the API server -------------------------------------------------------------------

def pod(namespace: str, *, privileged: bool = False, gpus: int = 0) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "image": "nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04"}
    if privileged:
        container["securityContext"] = {"privileged": True}
    else:
        container["securityContext"] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                        "runAsNonRoot": True, "runAsUser": 1000,
                                        "seccompProfile": {"type": "RuntimeDefault"}}
    if gpus:
        container["resources"] = {"requests": {"nvidia.com/gpu": str(gpus)}, "limits": {"nvidia.com/gpu": str(gpus)}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": "admission-", "namespace": namespace},
            "spec": {"containers": [container], "priorityClassName": "gpu-batch-preemptible",
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}


def test_pod_security_rejects_a_privileged_pod_in_a_tenant_namespace(deployed: Stack, kube: Kube) -> None:
    with pytest.raises(KubeError) as rejected:
        kube.create(pod("ai-ml", privileged=True), dry_run=True)
    assert rejected.value.code == 403
    assert 'violates PodSecurity "restricted:v1.34"' in rejected.value.message
    assert kube.create(pod("ai-ml", gpus=1), dry_run=True)["metadata"]["namespace"] == "ai-ml"


def test_the_gpu_quota_rejects_a_pod_that_asks_for_more_gpus_than_the_team_has(deployed: Stack, kube: Kube) -> None:
    with pytest.raises(KubeError) as rejected:
        kube.create(pod("sdr", gpus=3), dry_run=True)
    assert rejected.value.code == 403
    assert "exceeded quota: tenant-quota" in rejected.value.message
    assert "requests.nvidia.com/gpu=3" in rejected.value.message


def test_the_operator_namespace_admits_a_privileged_pod(deployed: Stack, kube: Kube) -> None:
    privileged = pod("gpu-operator", privileged=True)
    del privileged["spec"]["priorityClassName"]
    created = kube.create(privileged, dry_run=True)
    assert created["spec"]["containers"][0]["securityContext"]["privileged"] is True


# --- the next runs ---------------------------------------------------------------------------------------------

def test_a_second_preview_has_nothing_to_do(deployed: Stack) -> None:
    result = deployed.preview("--expect-no-changes")
    assert result.returncode == 0, result.output
    assert "to create" not in result.stdout and "to update" not in result.stdout
