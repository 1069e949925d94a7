"""A down GPU node: the lab's one GPU worker NotReady while an upgrade or an uninstall runs.

Given `proj-k8sw04` down (no kubelet heartbeat: the node controller marks it unreachable and taints it), when the
operator, and with it the chart's CRD-upgrade and clean-up hook Jobs, is pinned to `gpu=true` as the lab's notes
had it, then a chart upgrade and an uninstall wait for hook pods that cannot be scheduled until Helm's timeout.
With the placement the lab stack now has (no pin: the operator runs on a node that is not the GPU worker), both
go through while the GPU node is down.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.real.harness import helm_release, wait_for
from tools.cluster import LocalCluster
from tools.kube import Kube
from tools.stacks import Stack, chart_archive

PINNED = {"gpu": "true"}


@pytest.fixture
def gpu_node_down(kube: Kube, cluster: LocalCluster) -> Iterator[Callable[[], None]]:
    """A function that stops the GPU node's kubelet (its kwok) and waits until the node controller marks the node
    NotReady and unreachable; the node comes back when the test ends."""
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


def upgrade(lab: Stack) -> None:
    lab.set("gpuOperator.chart.version", "v26.7.0").set("gpuOperator.chart.path", str(chart_archive("v26.7.0")))


def start_on_v26_3_3(lab: Stack, selector: dict[str, str] | None) -> None:
    lab.set("gpuOperator.chart.version", "v26.3.3").set("gpuOperator.chart.path", str(chart_archive("v26.3.3")))
    lab.set("gpuOperator.chart.timeoutSeconds", 60)
    lab.set("gpuOperator.operator.nodeSelector", selector or {})
    result = lab.up()
    assert result.returncode == 0, result.output


def test_pinned_to_the_gpu_node_an_upgrade_and_an_uninstall_wait_out_helms_timeout(
        lab: Stack, kube: Kube, gpu_node_down) -> None:
    start_on_v26_3_3(lab, PINNED)
    assert "pins the operator, and with it the chart's CRD-upgrade and clean-up hook Jobs" in lab.preview().output
    gpu_node_down()
    upgrade(lab)
    stuck = lab.up()
    assert stuck.returncode != 0
    assert "pre-upgrade hooks failed" in stuck.output and "timed out waiting for the condition" in stuck.output
    [hook_pod] = kube.list("v1", "Pod", "gpu-operator", selector="job-name=gpu-operator-upgrade-crd")
    assert hook_pod["status"]["phase"] == "Pending"
    assert helm_release(kube)["labels"]["status"] == "failed"
    lab.pulumi("state", "unprotect", "--all", "--yes")
    gone = lab.destroy()
    assert gone.returncode != 0 and "pre-delete hooks failed" in gone.output
    assert helm_release(kube)["labels"]["status"] in ("failed", "uninstalling")


def test_unpinned_an_upgrade_goes_through_while_the_gpu_node_is_down(lab: Stack, kube: Kube, gpu_node_down) -> None:
    start_on_v26_3_3(lab, None)
    operator = kube.list("v1", "Pod", "gpu-operator", selector="app=gpu-operator")
    assert [p["spec"]["nodeName"] for p in operator] == ["proj-k8sm01"]
    gpu_node_down()
    upgrade(lab)
    result = lab.up()
    assert result.returncode == 0, result.output
    release = helm_release(kube)
    assert (release["labels"]["status"], release["record"]["chart"]["metadata"]["version"]) == ("deployed", "v26.7.0")
