"""The lab stack after its first `pulumi up`: one config change, and `pulumi destroy` as the README tells it.

Given the deployed lab stack, when the sharing profile changes, then only the Helm release is updated and the
ClusterPolicy moves to the new device-plugin ConfigMap. When someone runs `pulumi destroy`, then nothing is
deleted while the platform is protected; `--skip-preview` deletes only what is not protected; after
`pulumi state unprotect --all` everything goes except the chart's CRDs, which Helm never deletes.
"""
from __future__ import annotations

import json
import re

from components.sharing import SharingConfig
from tests.real.harness import MPS_4_CONFIG_MAP, helm_release
from tools.stacks import Stack
from tools.kube import Kube

TIME_SLICING = {"default": "ts-4", "profiles": {"ts-4": {"timeSlicing": {"replicas": 4}}}}
TS_4_CONFIG_MAP = SharingConfig.model_validate(TIME_SLICING).config_map_name()
PROTECTED = ("gpu-platform-namespace", "gpu-platform-operator", "gpu-platform-tenancy-ai-ml",
             "gpu-platform-tenancy-sdr")


def test_a_sharing_change_updates_only_the_release_and_moves_the_cluster_policy(lab: Stack, kube: Kube) -> None:
    assert lab.up().returncode == 0
    lab.set("gpuOperator.devicePlugin.sharing", TIME_SLICING)
    preview = lab.preview("--json")
    assert preview.returncode == 0, preview.output
    changed = {step["urn"].rsplit("::", 1)[1]: step["op"] for step in json.loads(preview.stdout)["steps"]
               if step["op"] not in ("same", "read")}
    assert changed == {"gpu-platform-operator": "update"}
    result = lab.up()
    assert result.returncode == 0, result.output
    config = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]["devicePlugin"]["config"]
    assert config == {"name": TS_4_CONFIG_MAP, "default": "ts-4"}
    assert "timeSlicing" in kube.get("v1", "ConfigMap", TS_4_CONFIG_MAP, "gpu-operator")["data"]["ts-4"]
    assert kube.find("v1", "ConfigMap", MPS_4_CONFIG_MAP, "gpu-operator") is None
    assert helm_release(kube)["labels"]["version"] == "2"


def test_destroy_deletes_nothing_while_the_platform_is_protected_and_everything_but_crds_after(
        lab: Stack, kube: Kube) -> None:
    assert lab.up().returncode == 0

    refused = lab.destroy()
    assert refused.returncode != 0
    named = set(re.findall(r'::([\w-]+)" cannot be deleted\s+because it is protected', refused.output))
    assert "gpu-platform-operator" in named and named <= set(PROTECTED), named
    assert helm_release(kube)["labels"]["status"] == "deployed"
    assert kube.exists("v1", "ResourceQuota", "tenant-quota", "ai-ml")
    assert kube.get("v1", "Node", "proj-k8sw04")["metadata"]["labels"].get("gpu") == "true"

    # Without the preview the engine deletes what is neither protected nor needed by something protected
    # (the release depends on the node patch), and stops at the rest.
    partial = lab.destroy("--skip-preview")
    assert partial.returncode != 0
    assert helm_release(kube)["labels"]["status"] == "deployed"
    for namespace in ("gpu-operator", "ai-ml", "sdr"):
        assert kube.exists("v1", "Namespace", namespace)
    assert kube.get("v1", "Node", "proj-k8sw04")["metadata"]["labels"].get("gpu") == "true"
    assert not kube.exists("v1", "ResourceQuota", "tenant-quota", "ai-ml")
    assert kube.list("monitoring.coreos.com/v1", "PrometheusRule", "monitoring") == []

    unprotect = lab.pulumi("state", "unprotect", "--all", "--yes")
    assert unprotect.returncode == 0, unprotect.output
    assert lab.destroy().returncode == 0
    assert kube.list("v1", "Secret", "gpu-operator", selector="owner=helm") == []
    for namespace in ("gpu-operator", "ai-ml", "sdr"):
        assert not kube.exists("v1", "Namespace", namespace)
    assert kube.list("nvidia.com/v1", "ClusterPolicy") == []
    assert kube.crd_established("clusterpolicies.nvidia.com")  # Helm keeps the chart's CRDs
