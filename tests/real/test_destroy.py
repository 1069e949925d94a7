"""`pulumi destroy` of the lab stack, as the README tells it.

Given the deployed lab stack, when someone runs `pulumi destroy`, then nothing is deleted while the platform is
protected; `--skip-preview` deletes only what is neither protected nor needed by it; after
`pulumi state unprotect --all` everything goes except the chart's CRDs, which Helm never deletes.
"""
from __future__ import annotations

import re

from tests.real.harness import helm_release
from tools.kube import Kube
from tools.stacks import Stack

PROTECTED = ("gpu-platform-namespace", "gpu-platform-operator", "gpu-platform-tenancy-ai-ml",
             "gpu-platform-tenancy-sdr")


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
