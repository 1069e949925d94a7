"""A down GPU node: the lab's one GPU worker NotReady while an upgrade or an uninstall runs.

Given `proj-k8sw04` down (no kubelet heartbeat: the node controller marks it unreachable and taints it), when the
operator, and with it the chart's CRD-upgrade and clean-up hook Jobs, is pinned to `gpu=true` as the lab's notes
had it, then a chart upgrade and an uninstall wait for hook pods that cannot be scheduled until Helm's timeout.
With the placement the lab stack now has (no pin: the operator runs on a node that is not the GPU worker), both
go through while the GPU node is down.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.real.harness import helm_release, tear_down, wait_for
from tools.cluster import LocalCluster
from tools.kube import Kube
from tools.stacks import Stack, chart_archive

PINNED = {"gpu": "true"}


@pytest.fixture
def gpu_node_down(lab: Stack, kube: Kube, cluster: LocalCluster) -> Iterator[Callable[[], None]]:
    """A function that stops the GPU node's kubelet (its kwok) and waits until the node controller marks the node
    NotReady and unreachable. When the test ends the node comes back, the stack is destroyed, and what the
    runbook says to remove by hand after a down node goes: the GPU taint, which the node controller co-owns once
    it has written the taint list, and a failed hook's cluster-scoped RBAC."""
    def ready() -> bool:
        return kube.node_ready("proj-k8sw04")

    def unreachable() -> bool:
        taints = kube.get("v1", "Node", "proj-k8sw04")["spec"].get("taints", [])
        return any(t["key"] == "node.kubernetes.io/unreachable" for t in taints)

    down: list[bool] = []

    def take() -> None:
        cluster.node_down("proj-k8sw04")
        down.append(True)
        wait_for("the node controller to mark proj-k8sw04 unreachable", lambda: not ready() and unreachable(),
                 timeout=180)

    yield take
    if down:
        cluster.node_up("proj-k8sw04")
        wait_for("proj-k8sw04 Ready again", lambda: ready() and not unreachable(), timeout=180)
        tear_down(lab)
        taints = kube.get("v1", "Node", "proj-k8sw04")["spec"].get("taints", [])
        if any(t["key"] == "nvidia.com/gpu" for t in taints):
            cluster.kubectl("taint", "node", "proj-k8sw04", "nvidia.com/gpu-")
        for kind, name in HOOK_LEFTOVERS:
            if kube.exists("rbac.authorization.k8s.io/v1", kind, name):
                kube.delete("rbac.authorization.k8s.io/v1", kind, name)


# What the chart's CRD-upgrade hook leaves when it fails and the release is then uninstalled instead of retried
# (its delete policy removes them only on success or before the hook's next run).
HOOK_LEFTOVERS = (("ClusterRole", "gpu-operator-upgrade-crd-hook-role"),
                  ("ClusterRoleBinding", "gpu-operator-upgrade-crd-hook-binding"))


def start(lab: Stack, chart: str, selector: dict[str, str] | None) -> None:
    lab.set("gpuOperator.chart.version", chart).set("gpuOperator.chart.path", str(chart_archive(chart)))
    lab.set("gpuOperator.chart.timeoutSeconds", 60)
    lab.set("gpuOperator.operator.nodeSelector", selector or {})
    result = lab.up()
    assert result.returncode == 0, result.output


def driver_upgrade(lab: Stack) -> Stack:
    """The lab's next planned change: the driver 580.173.02 -> 595.91.07 on chart v26.7.0 (both allowed by the pack)."""
    return lab.set("gpuOperator.driver.version", "595.91.07")


def unsettled(kube: Kube) -> dict[str, Any]:
    """What Helm's wait can be waiting for in the operator namespace: workloads not fully rolled out, and objects
    whose deletion has not finished."""
    found: dict[str, Any] = {}
    for kind in ("DaemonSet", "Deployment"):
        for o in kube.list("apps/v1", kind, "gpu-operator"):
            status = o.get("status", {})
            if kind == "DaemonSet" and (status.get("updatedNumberScheduled") != status.get("desiredNumberScheduled")
                                        or status.get("numberUnavailable")):
                found[f"{kind}/{o['metadata']['name']}"] = {k: status.get(k) for k in (
                    "desiredNumberScheduled", "updatedNumberScheduled", "numberReady", "numberUnavailable")}
            if kind == "Deployment" and status.get("unavailableReplicas"):
                found[f"{kind}/{o['metadata']['name']}"] = status.get("unavailableReplicas")
    for o in kube.list("v1", "Pod", "gpu-operator"):
        if o["metadata"].get("deletionTimestamp") or o["status"].get("phase") == "Pending":
            found[f"Pod/{o['metadata']['name']}"] = (o["spec"].get("nodeName"), o["status"].get("phase"),
                                                     o["metadata"].get("deletionTimestamp"))
    return found


def test_pinned_to_the_gpu_node_a_driver_upgrade_waits_out_helms_timeout(
        lab: Stack, kube: Kube, gpu_node_down) -> None:
    start(lab, "v26.7.0", PINNED)
    assert "pins the operator, and with it the chart's CRD-upgrade and clean-up hook Jobs" in lab.preview().output
    gpu_node_down()
    stuck = driver_upgrade(lab).up()
    assert stuck.returncode != 0
    assert "pre-upgrade hooks failed" in stuck.output and "timed out waiting for the condition" in stuck.output
    [hook_pod] = kube.list("v1", "Pod", "gpu-operator", selector="job-name=gpu-operator-upgrade-crd")
    assert hook_pod["status"]["phase"] == "Pending"
    assert helm_release(kube)["labels"]["status"] == "failed"


def test_unpinned_a_driver_upgrade_goes_through_while_the_gpu_node_is_down(
        lab: Stack, kube: Kube, gpu_node_down) -> None:
    start(lab, "v26.7.0", None)
    operator = kube.list("v1", "Pod", "gpu-operator", selector="app=gpu-operator")
    assert [p["spec"]["nodeName"] for p in operator] == ["proj-k8sm01"]
    gpu_node_down()
    result = driver_upgrade(lab).up()
    assert result.returncode == 0, f"{unsettled(kube)}\n{result.output[-3000:]}"
    release = helm_release(kube)
    assert (release["labels"]["status"], release["record"]["config"]["driver"]["version"]) == ("deployed", "595.91.07")
    assert kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]["driver"]["version"] == "595.91.07"


def test_a_chart_upgrade_waits_for_the_daemonset_pod_on_the_down_node_whatever_the_placement(
        lab: Stack, kube: Kube, gpu_node_down) -> None:
    start(lab, "v26.3.3", None)
    gpu_node_down()
    lab.set("gpuOperator.chart.version", "v26.7.0").set("gpuOperator.chart.path", str(chart_archive("v26.7.0")))
    stuck = lab.up()
    assert stuck.returncode != 0
    assert "failed to become available within allocated timeout" in stuck.output, stuck.output[-3000:]
    left = unsettled(kube)
    assert "DaemonSet/gpu-operator-node-feature-discovery-worker" in left, left
