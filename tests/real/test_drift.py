"""Drift: someone edits what the program declared, with kubectl, between two runs.

Given the lab stack deployed, when a person edits a tenant's quota, then `pulumi preview --refresh` shows the
change and `pulumi up --refresh` puts the config back. When a person edits the ClusterPolicy, which is the Helm
release's object and not a Pulumi resource, then a refresh does not see it (it reads Helm's record of the
release, not the objects), and one upgrade with `chart.forceUpdate` puts the chart's object back.
"""
from __future__ import annotations

import json
import subprocess
import sys

from tests.real.harness import helm_release
from tools.cluster import LocalCluster
from tools.findings import ROOT
from tools.kube import Kube
from tools.stacks import Stack


def gpu_quota(kube: Kube) -> str:
    return kube.get("v1", "ResourceQuota", "tenant-quota", "ai-ml")["spec"]["hard"]["requests.nvidia.com/gpu"]


def test_an_edited_quota_is_shown_by_a_refreshing_preview_and_restored_by_up_refresh(
        lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    assert lab.up().returncode == 0
    cluster.kubectl("patch", "resourcequota", "tenant-quota", "-n", "ai-ml", "--type", "merge",
                    "-p", '{"spec":{"hard":{"requests.nvidia.com/gpu":"4"}}}')
    assert gpu_quota(kube) == "4"
    plain = lab.preview("--expect-no-changes")
    assert plain.returncode == 0  # without a refresh the engine compares with its own state: no drift seen
    refreshed = lab.preview("--refresh", "--diff")
    assert refreshed.returncode == 0, refreshed.output[-4000:]
    assert "gpu-platform-tenancy-ai-ml-quota" in refreshed.output and '"4" => "2"' in refreshed.output
    restored = lab.up("--refresh")
    assert restored.returncode == 0, restored.output
    assert gpu_quota(kube) == "2"
    assert lab.preview("--refresh", "--expect-no-changes").returncode == 0


def test_an_edited_cluster_policy_is_invisible_to_refresh_seen_by_verify_and_restored_by_a_forced_upgrade(
        lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    assert lab.up().returncode == 0
    # The driver itself is held at admission now (docs/admission.md): kubectl cannot move it.
    refused = cluster.kubectl("patch", "clusterpolicy", "cluster-policy", "--type", "merge",
                              "-p", '{"spec":{"driver":{"version":"570.195.03"}}}', check=False)
    assert refused.returncode != 0 and "gpu-platform-driver-pinned" in refused.stderr, refused.stderr
    # Any other field still moves: the device plugin pointed at a ConfigMap of someone's own.
    cluster.kubectl("patch", "clusterpolicy", "cluster-policy", "--type", "merge",
                    "-p", '{"spec":{"devicePlugin":{"config":{"name":"hand-edited"}}}}')
    refreshed = lab.preview("--refresh", "--expect-no-changes")
    assert refreshed.returncode == 0, refreshed.output  # Helm's record still names ours: nothing to see
    # What does see it: `dev.py verify` compares the live ClusterPolicy with the stack config.
    checked = subprocess.run([sys.executable, "-m", "tools.verify", "--kubeconfig", str(cluster.kubeconfig), "--json"],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert checked.returncode == 1, checked.stderr
    [drifted] = [f for f in json.loads(checked.stdout)["findings"]
                 if f["check"] == "device-plugin-config" and f["verdict"] == "fail"]
    assert drifted["found"].startswith("names hand-edited"), drifted
    assert "forceUpdate" in drifted["action"], drifted
    sharing_config = helm_release(kube)["record"]["config"]["devicePlugin"]["config"]["name"]
    assert lab.set("gpuOperator.chart.forceUpdate", True).up().returncode == 0
    policy = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
    assert policy["spec"]["devicePlugin"]["config"]["name"] == sharing_config != "hand-edited"
    assert lab.set("gpuOperator.chart.forceUpdate", False).up().returncode == 0
    assert helm_release(kube)["labels"]["status"] == "deployed"
