"""Conflicts on the GPU node: other field managers own a taint or a label the program also sets.

Given the node `proj-k8sw04`, when a person taints or labels it with kubectl, or the node controller taints it
while it is cordoned, then `pulumi up` merges where nothing of theirs has to change, and otherwise stops before
anything is applied with a message that names the owner and the fix. It never takes their fields silently.
"""
from __future__ import annotations

from typing import Any

from tests.real.harness import wait_for
from tools.cluster import LocalCluster
from tools.kube import Kube
from tools.stacks import Stack

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
DEDICATED = {"key": "dedicated", "value": "sdr", "effect": "NoSchedule"}


def taints(kube: Kube) -> list[dict[str, Any]]:
    return [{k: v for k, v in t.items() if k != "timeAdded"}
            for t in kube.get("v1", "Node", "proj-k8sw04")["spec"].get("taints", [])]


def test_a_hand_made_taint_stops_the_first_up_with_the_fix_and_the_fix_keeps_it(
        lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    cluster.kubectl("taint", "node", "proj-k8sw04", "dedicated=sdr:NoSchedule")
    try:
        stopped = lab.up()
        assert stopped.returncode != 0
        diagnostics = stopped.output.split("Diagnostics:", 1)[1]
        assert "node 'proj-k8sw04' (gpu-platform:nodes): another field manager owns what the config would change; " \
               "nothing was applied" in diagnostics
        assert "belongs to kubectl-taint (their taints: dedicated=sdr:NoSchedule)" in diagnostics
        assert diagnostics.count("belongs to kubectl-taint") == 1, diagnostics  # said once, as the host says it
        assert "Traceback" not in stopped.output and "an unhandled error occurred" not in stopped.output
        assert not kube.exists("v1", "Namespace", "ai-ml") and taints(kube) == [DEDICATED]
        # One fix the message gives: list theirs too and take the list over on purpose.
        lab.set("nodes[0].taints", [GPU_TAINT, DEDICATED]).set("nodes[0].forceConflicts", True)
        merged = lab.up()
        assert merged.returncode == 0, merged.output
        assert taints(kube) == [GPU_TAINT, DEDICATED]
    finally:
        if not lab.deployed or DEDICATED in taints(kube) and len(taints(kube)) == 1:
            cluster.kubectl("taint", "node", "proj-k8sw04", "dedicated-", check=False)


def test_a_cordon_during_a_driver_upgrade_is_merged_and_kept(lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    assert lab.up().returncode == 0
    cluster.kubectl("cordon", "proj-k8sw04")  # what the upgrade controller does to the node
    try:
        wait_for("the node controller's unschedulable taint",
                 lambda: any(t["key"] == "node.kubernetes.io/unschedulable" for t in taints(kube)))
        lab.set("nodes[0].labels", {"gpu": "true", "lab.example/rack": "r2"})
        result = lab.up()
        assert result.returncode == 0, result.output
        node = kube.get("v1", "Node", "proj-k8sw04")
        assert node["metadata"]["labels"]["lab.example/rack"] == "r2"
        assert node["spec"]["unschedulable"] is True
        assert {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"} in taints(kube)
        assert GPU_TAINT in taints(kube)
    finally:
        cluster.kubectl("uncordon", "proj-k8sw04")
    wait_for("the cordon to end", lambda: taints(kube) == [GPU_TAINT])
    # The list is ours alone again in content: the next up shares it with the node controller.
    assert lab.up().returncode == 0
    assert lab.preview("--expect-no-changes").returncode == 0
    # Shared, it outlives the program: destroying the stack leaves the taint the node controller co-owns.
    lab.pulumi("state", "unprotect", "--all", "--yes")
    assert lab.destroy().returncode == 0
    assert taints(kube) == [GPU_TAINT]
    cluster.kubectl("taint", "node", "proj-k8sw04", "nvidia.com/gpu-")


def test_a_label_someone_else_changed_stops_with_the_fix(lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    assert lab.up().returncode == 0
    cluster.kubectl("label", "node", "proj-k8sw04", "gpu=false", "--overwrite")
    lab.set("nodes[0].labels", {"gpu": "true", "lab.example/rack": "r2"})
    stopped = lab.up()
    assert stopped.returncode != 0
    assert "label gpu='false' belongs to kubectl-label, and the config wants 'true'" in stopped.output
    assert kube.get("v1", "Node", "proj-k8sw04")["metadata"]["labels"]["gpu"] == "false"
    assert "lab.example/rack" not in kube.get("v1", "Node", "proj-k8sw04")["metadata"]["labels"]
    cluster.kubectl("label", "node", "proj-k8sw04", "gpu-")  # the owner drops it; the program sets it again
    assert lab.up().returncode == 0
    assert kube.get("v1", "Node", "proj-k8sw04")["metadata"]["labels"]["gpu"] == "true"
