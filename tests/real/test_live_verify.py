"""`dev.py verify` and `dev.py upgrade-plan` against a real API server, run as a person runs them.

Given the local cluster made to look like the lab after `pulumi up` and the operator's rollout (the ClusterPolicy
CRD, the object the chart renders from the lab's values with state ready, every object the program declares,
GFD's labels on proj-k8sw04, the DCGM exporter's Service, a Ready exporter pod and the operator's ServiceMonitor),
verify passes every check; then each failure a lab meets is made with the API (status patches, label edits, a
stopped kubelet) and verify must give its verdict and message. Nothing runs `pulumi up`: what is checked is
verify's reading of the API, and the objects are those the program and the chart produce. Everything made here is
removed at the end and the cluster must be back to its baseline.
"""
from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.real.harness import restore, wait_for
from tools import verify
from tools.cluster import LocalCluster
from tools.findings import ROOT, load_stack
from tools.kube import Kube
from tools.stacks import chart_archive
from tools.upstream import upstream_dir

NODE = "proj-k8sw04"
NS = "gpu-operator"
MANAGER = "test-verify"
GFD_LABELS = {"nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-RTX-A4000-SHARED",
              "nvidia.com/gpu.count": "1", "nvidia.com/cuda.driver-version.full": "580.173.02",
              "nvidia.com/gpu.sharing-strategy": "mps", "nvidia.com/gpu.replicas": "4"}


def run(command: str, cluster: LocalCluster, *args: str) -> tuple[int, dict[str, Any], str]:
    """`python -m tools.<command> --kubeconfig ... --json` as a separate process: (exit code, document, stderr)."""
    result = subprocess.run([sys.executable, "-m", f"tools.{command}", "--kubeconfig", str(cluster.kubeconfig),
                             "--json", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)
    document = json.loads(result.stdout) if result.stdout.strip() else {}
    return result.returncode, document, result.stderr


def failures(document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["check"], f["subject"]) for f in document["findings"] if f["verdict"] == "fail"]


def finding(document: dict[str, Any], check: str) -> dict[str, Any]:
    [found] = [f for f in document["findings"] if f["check"] == check and f["verdict"] == "fail"]
    return found


def rendered_cluster_policy(toolchain_bin: Path) -> dict[str, Any]:
    """The ClusterPolicy the pinned chart renders from the lab's values (what `pulumi up` installs)."""
    values = load_stack("lab").compiled.values.to_helm_values()
    rendered = subprocess.run(
        [str(toolchain_bin / "helm"), "template", "gpu-operator", str(chart_archive("v26.7.0")), "--namespace", NS,
         "--values", "-"], input=json.dumps(values), capture_output=True, text=True, check=True).stdout
    [policy] = [doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") == "ClusterPolicy"]
    return policy


def _order(manifest: dict[str, Any]) -> int:
    return 0 if manifest["kind"] == "Namespace" else 1 if "namespace" not in manifest["metadata"] else 2


def test_verify_against_a_cluster_without_the_chart_says_so(cluster: LocalCluster, kube: Kube) -> None:
    """Before any install (no ClusterPolicy CRD): a failed check naming the fix, not an error. (First in this
    module: the lab objects of the module's fixture do not exist yet.)"""
    code, document, _ = run("verify", cluster)
    assert code == 1
    assert finding(document, "clusterpolicy")["found"] == ("no clusterpolicies.nvidia.com CRD: the chart is not "
                                                          "installed on this cluster")


EXPORTER_POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {
    "name": "nvidia-dcgm-exporter-lab", "namespace": NS, "labels": {"app": "nvidia-dcgm-exporter"}},
    "spec": {"nodeName": NODE, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
             "containers": [{"name": "exporter", "image": "registry.k8s.io/pause:3.10",
                             "ports": [{"containerPort": 9400, "name": "gpu-metrics"}]}]}}


def exporter_ready(kube: Kube) -> bool:
    return any(e.get("nodeName") == NODE and (e.get("conditions") or {}).get("ready")
               for s in kube.list("discovery.k8s.io/v1", "EndpointSlice", NS,
                                  selector="kubernetes.io/service-name=nvidia-dcgm-exporter")
               for e in s.get("endpoints") or [])


def start_exporter(kube: Kube) -> None:
    """The exporter pod on the GPU node (its DaemonSet's pod), replaced if it is there, until its endpoint is ready."""
    if kube.exists("v1", "Pod", EXPORTER_POD["metadata"]["name"], NS):
        kube.delete("v1", "Pod", EXPORTER_POD["metadata"]["name"], NS)
        wait_for("the old exporter pod to go", lambda: not kube.exists("v1", "Pod", EXPORTER_POD["metadata"]["name"],
                                                                       NS), timeout=60)
    kube.apply(EXPORTER_POD, field_manager=MANAGER)
    wait_for("a ready DCGM exporter endpoint on the GPU node", lambda: exporter_ready(kube), timeout=90)


@pytest.fixture(scope="module")
def lab_cluster(cluster: LocalCluster, kube: Kube, baseline: dict, toolchain_bin: Path) -> Iterator[LocalCluster]:
    """The cluster as the lab looks when everything went right; removed again at the end."""
    declared = sorted(verify.declared_manifests(ROOT, "lab"), key=_order)
    crd = upstream_dir() / "gpu-operator" / "v26.7.0" / "crds" / "nvidia.com_clusterpolicies.yaml"
    node_before = kube.get("v1", "Node", NODE)
    try:
        cluster.kubectl("apply", "--server-side", f"--field-manager={MANAGER}", "-f", str(crd))
        wait_for("the ClusterPolicy CRD", lambda: kube.crd_established("clusterpolicies.nvidia.com"))
        for manifest in declared:
            kube.apply(manifest, field_manager=MANAGER)
        policy = rendered_cluster_policy(toolchain_bin)
        kube.apply(policy, field_manager=MANAGER)
        kube.patch("nvidia.com/v1", "ClusterPolicy", policy["metadata"]["name"],
                   {"status": {"state": "ready", "namespace": NS}}, subresource="status")
        # what the operator creates at runtime (NVIDIA/gpu-operator assets/state-dcgm-exporter)
        kube.apply({"apiVersion": "v1", "kind": "Service", "metadata": {
            "name": "nvidia-dcgm-exporter", "namespace": NS, "labels": {"app": "nvidia-dcgm-exporter"}},
            "spec": {"selector": {"app": "nvidia-dcgm-exporter"},
                     "ports": [{"name": "gpu-metrics", "port": 9400, "targetPort": 9400}]}}, field_manager=MANAGER)
        kube.apply({"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor", "metadata": {
            "name": "nvidia-dcgm-exporter", "namespace": NS,
            "labels": {"app": "nvidia-dcgm-exporter", "release": "kube-prometheus-stack"}},
            "spec": {"endpoints": [{"port": "gpu-metrics", "path": "/metrics"}], "jobLabel": "app",
                     "namespaceSelector": {"matchNames": [NS]},
                     "selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}}}}, field_manager=MANAGER)
        kube.patch("v1", "Node", NODE, {"metadata": {"labels": {"gpu": "true", **GFD_LABELS}},
                                        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present",
                                                             "effect": "NoSchedule"}]}})
        start_exporter(kube)
        yield cluster
    finally:
        labels = node_before["metadata"].get("labels", {})
        kube.patch("v1", "Node", NODE, {"metadata": {"labels": {
            k: None for k in {"gpu", "nvidia.com/gpu-driver-upgrade-state", *GFD_LABELS} if k not in labels}},
            "spec": {"taints": node_before["spec"].get("taints")}})
        kube.patch("v1", "Node", NODE, {"status": {"allocatable": node_before["status"]["allocatable"]}},
                   subresource="status")
        kube.delete("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
        for manifest in reversed(declared):
            kube.delete(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"],
                        manifest["metadata"].get("namespace"))
        restore(kube, baseline)


@pytest.fixture
def healthy(lab_cluster: LocalCluster, kube: Kube) -> Iterator[LocalCluster]:
    """Each case starts from the healthy lab and leaves it healthy: the node, the ClusterPolicy and the quotas
    are put back after the case's change."""
    yield lab_cluster
    kube.patch("v1", "Node", NODE, {"metadata": {"labels": {**GFD_LABELS, "nvidia.com/gpu-driver-upgrade-state": None}}})
    kube.patch("v1", "Node", NODE, {"status": {"allocatable": {"nvidia.com/gpu": "4"}}}, subresource="status")
    kube.patch("nvidia.com/v1", "ClusterPolicy", "cluster-policy", {"status": {"state": "ready"}},
               subresource="status")
    kube.patch("v1", "ResourceQuota", "tenant-quota", {"spec": {"hard": {"requests.nvidia.com/gpu": "2"}}},
               namespace="ai-ml")


def test_the_healthy_lab_passes_every_check(healthy: LocalCluster) -> None:
    code, document, stderr = run("verify", healthy)
    assert (code, failures(document)) == (0, []), [f["found"] for f in document["findings"] if f["verdict"] != "pass"]
    checks = {f["check"] for f in document["findings"]}
    assert checks >= {"clusterpolicy", "node-ready", "node-config", "gfd-labels", "driver-version", "sharing",
                      "device-plugin-config", "dcgm-endpoints", "dcgm-servicemonitor", "pod-security", "quotas",
                      "rbac", "declared-objects"}


def not_rolled_out(kube: Kube) -> None:
    kube.patch("nvidia.com/v1", "ClusterPolicy", "cluster-policy", {"status": {"state": "notReady"}},
               subresource="status")
    kube.patch("v1", "Node", NODE, {"metadata": {"labels": {"nvidia.com/cuda.driver-version.full": None}}})


def old_driver(kube: Kube) -> None:
    kube.patch("v1", "Node", NODE, {"metadata": {"labels": {"nvidia.com/cuda.driver-version.full": "580.126.20",
                                                            "nvidia.com/gpu-driver-upgrade-state": "upgrade-failed"}}})


def one_instead_of_four(kube: Kube) -> None:
    kube.patch("v1", "Node", NODE, {"status": {"allocatable": {"nvidia.com/gpu": "1"}}}, subresource="status")


def missing_label(kube: Kube) -> None:
    kube.patch("v1", "Node", NODE, {"metadata": {"labels": {"nvidia.com/gpu.present": None}}})


def quota_edited(kube: Kube) -> None:
    kube.patch("v1", "ResourceQuota", "tenant-quota", {"spec": {"hard": {"requests.nvidia.com/gpu": "4"}}},
               namespace="ai-ml")


CASES: list[tuple[str, Callable[[Kube], None], list[tuple[str, str]], str, str]] = [
    # (case, change, every failed (check, subject), the check to read, text its found or action holds)
    ("the driver not yet rolled out", not_rolled_out,
     [("clusterpolicy", "ClusterPolicy cluster-policy"), ("driver-version", f"node {NODE}")],
     "driver-version", "the driver is not rolled out on this node yet"),
    ("a node on the old driver", old_driver, [("driver-version", f"node {NODE}")],
     "driver-version", "driver 580.126.20 (driver upgrade state: upgrade-failed)"),
    ("a device plugin advertising 1 instead of 4", one_instead_of_four, [("sharing", f"node {NODE}")],
     "sharing", "allocatable nvidia.com/gpu: 1"),
    ("a missing label", missing_label, [("gfd-labels", f"node {NODE}")],
     "gfd-labels", "nvidia.com/gpu.present missing"),
    ("a quota edited by hand", quota_edited, [("quotas", "LimitRange, ResourceQuota (8 declared)")],
     "quotas", "ResourceQuota ai-ml/tenant-quota: spec.hard.requests.nvidia.com/gpu is '4', declared '2'"),
]


@pytest.mark.parametrize("case, change, failed, check, text", CASES, ids=[c[0] for c in CASES])
def test_each_failure_gives_its_verdict_and_message(healthy: LocalCluster, kube: Kube, case: str,
                                                    change: Callable[[Kube], None], failed: list[tuple[str, str]],
                                                    check: str, text: str) -> None:
    change(kube)
    code, document, stderr = run("verify", healthy)
    assert code == 1, stderr
    assert failures(document) == failed
    found = finding(document, check)
    assert text in found["found"] or text in found["action"], found


def test_a_not_ready_node(healthy: LocalCluster, kube: Kube) -> None:
    """The GPU node's kubelet stops (its kwok): the node controller marks it NotReady, its pods not ready."""
    healthy.node_down(NODE)
    try:
        wait_for(f"{NODE} NotReady", lambda: not kube.node_ready(NODE), timeout=180)
        code, document, _ = run("verify", healthy)
        assert code == 1
        found = finding(document, "node-ready")
        assert found["found"].startswith("NotReady (NodeStatusUnknown: Kubelet stopped posting node status.)")
        assert "the kubelet on proj-k8sw04 stopped reporting" in found["action"]
        # the node's labels are its last known ones and still right; its exporter endpoint may go with it
        assert set(failures(document)) - {("dcgm-endpoints", f"Service {NS}/nvidia-dcgm-exporter on {NODE}")} == {
            ("node-ready", f"node {NODE}")}
    finally:
        healthy.node_up(NODE)
        wait_for(f"{NODE} Ready again", lambda: kube.node_ready(NODE), timeout=180)
        start_exporter(kube)  # the node controller marked it not ready; its DaemonSet would replace it
    assert run("verify", healthy)[0] == 0


def test_upgrade_plan_lists_the_gpu_pods_the_driver_upgrade_touches(healthy: LocalCluster, kube: Kube) -> None:
    """A bare GPU pod (no controller) on the node: the upgrade may not delete it, and the plan says so."""
    kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "notebook", "namespace": "ai-ml"},
                 "spec": {"nodeName": NODE, "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
                          "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                              "seccompProfile": {"type": "RuntimeDefault"}},
                          "containers": [{"name": "cuda", "image": "registry.k8s.io/pause:3.10",
                                          "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                          "securityContext": {"allowPrivilegeEscalation": False,
                                                              "capabilities": {"drop": ["ALL"]}}}]}})
    try:
        code, document, stderr = run("upgrade_plan", healthy, "--driver", "595.91.07")
        assert code == 0, stderr
        [node] = document["nodes"]
        assert (node["name"], node["driver_now"], node["ready"]) == (NODE, "580.173.02", True)
        [notebook] = [p for p in node["pods"] if p["name"] == "notebook"]
        assert notebook["gpu"] and notebook["fate"].startswith("NOT deleted: it has no controller")
        assert "the stack has one GPU node: GPU pods deleted by the upgrade stay Pending until it is uncordoned" \
            in document["notes"]
    finally:
        kube.delete("v1", "Pod", "notebook", "ai-ml")
        wait_for("the notebook pod to go", lambda: not kube.exists("v1", "Pod", "notebook", "ai-ml"))
