"""Adoption: the lab's hand-made install brought under the program, by the steps docs/runbook.md gives.

Given a cluster as the lab's is today (the chart installed with `helm install --generate-name` and the lab's old
values, the GPU node labelled with `kubectl label`, namespaces ai-ml and sdr made by hand, a GPU workload
running), when an operator follows the runbook's "Adopting an operator installed by hand", then there is one
operator, one ClusterPolicy, every object of the old release belongs to the adopted one, and the workload's
pod is the same pod, still running.
"""
from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.real.harness import helm_release, wait_for
from tools.cluster import LocalCluster
from tools.kube import Kube
from tools.stacks import Stack, chart_archive

# What the lab installed by hand, from its design notes: the seed's driver on the host (no image exists for
# the operator to install), the config.toml.tmpl recipe, and an `mps` key the chart has never had.
OLD_VALUES = {
    "driver": {"enabled": False},
    "operator": {"nodeSelector": {"gpu": "true"}},
    "toolkit": {"env": [
        {"name": "CONTAINERD_CONFIG", "value": "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl"},
        {"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"},
        {"name": "CONTAINERD_RUNTIME_CLASS", "value": "nvidia"},
        {"name": "CONTAINERD_SET_AS_DEFAULT", "value": "true"}]},
    "mps": {"enabled": True},
}
HAND_CHART = "v25.10.1"


def helm(bin_dir: Path, cluster: LocalCluster, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(bin_dir / "helm"), f"--kubeconfig={cluster.kubeconfig}", *args],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def gpu_workload() -> dict[str, Any]:
    container = {"name": "sdr", "image": "nvcr.io/nvidia/cuda:12.9.1-base-ubuntu24.04",
                 "resources": {"limits": {"nvidia.com/gpu": "1"}},
                 "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                     "runAsNonRoot": True, "runAsUser": 1000,
                                     "seccompProfile": {"type": "RuntimeDefault"}}}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "demodulator", "namespace": "sdr"},
            "spec": {"selector": {"matchLabels": {"app": "demodulator"}},
                     "template": {"metadata": {"labels": {"app": "demodulator"}},
                                  "spec": {"containers": [container]}}}}


@pytest.fixture
def hand_made(lab: Stack, cluster: LocalCluster, kube: Kube, toolchain_bin: Path, tmp_path: Path) -> Iterator[str]:
    """The lab's cluster today; yields the generated release name.

    Removes everything made by hand, adopted or not, before the `lab` stack is destroyed (which then finds
    those objects gone) and the cluster compared with its baseline."""
    try:
        for namespace in ("ai-ml", "sdr", "gpu-operator"):
            cluster.kubectl("create", "namespace", namespace)
        # RKE2's CIS profile enforces `restricted` on a namespace without labels: the operator pod would be refused.
        cluster.kubectl("label", "namespace", "gpu-operator", "pod-security.kubernetes.io/enforce=privileged")
        cluster.kubectl("label", "node", "proj-k8sw04", "gpu=true")
        values = tmp_path / "old-values.yaml"
        values.write_text(yaml.safe_dump(OLD_VALUES))
        helm(toolchain_bin, cluster, "install", "--generate-name", "-n", "gpu-operator", "--create-namespace",
             str(chart_archive(HAND_CHART)), "-f", str(values), "--wait", "--timeout", "120s")
        [release] = [r["name"] for r in yaml.safe_load(helm(toolchain_bin, cluster, "list", "-n", "gpu-operator",
                                                            "-o", "yaml").stdout)]
        kube.create(gpu_workload())
        wait_for("the GPU workload to run", lambda: any(
            p["status"].get("phase") == "Running" for p in kube.list("v1", "Pod", "sdr", selector="app=demodulator")))
        yield release
    finally:
        kube.delete("apps/v1", "Deployment", "demodulator", "sdr")
        for secret in kube.list("v1", "Secret", "gpu-operator", selector="owner=helm"):
            subprocess.run([str(toolchain_bin / "helm"), f"--kubeconfig={cluster.kubeconfig}", "uninstall", "-n",
                            "gpu-operator", secret["metadata"]["labels"]["name"], "--wait"], capture_output=True)
        for namespace in ("ai-ml", "sdr", "gpu-operator"):
            kube.delete("v1", "Namespace", namespace)
        cluster.kubectl("label", "node", "proj-k8sw04", "gpu-", check=False)


def adopting(lab: Stack, release: str) -> Stack:
    """The runbook's config for adoption: the lab's, with the release's name and what it runs today."""
    return (lab.set("gpuOperator.releaseName", release)
            .set("gpuOperator.chart.version", HAND_CHART).set("gpuOperator.chart.path", str(chart_archive(HAND_CHART)))
            .set("gpuOperator.driver", {"mode": "host", "hostVersion": "525.85.05"}))


def workload_pod(kube: Kube) -> tuple[str, str]:
    [pod] = kube.list("v1", "Pod", "sdr", selector="app=demodulator")
    return pod["metadata"]["uid"], pod["status"]["phase"]


def test_the_runbooks_adoption_keeps_one_operator_every_object_and_the_running_workload(
        lab: Stack, hand_made: str, kube: Kube, cluster: LocalCluster) -> None:
    release = hand_made
    before_pod = workload_pod(kube)
    before = objects_of(kube, release)
    adopting(lab, release)

    # Runbook step 3: keep Helm's record, then delete it (Helm forgets the release; no object is touched).
    backup = cluster.kubectl("get", "secret", "-n", "gpu-operator", "-l", f"owner=helm,name={release}", "-o", "yaml")
    assert "sh.helm.release.v1" in backup.stdout
    cluster.kubectl("delete", "secret", "-n", "gpu-operator", "-l", f"owner=helm,name={release}")
    # Runbook step 4: preview, then up.
    preview = lab.preview()
    assert preview.returncode == 0, preview.output
    result = lab.up()
    assert result.returncode == 0, result.output

    assert operators(kube) == [("gpu-operator", "gpu-operator", HAND_CHART)]
    assert [p["metadata"]["name"] for p in kube.list("nvidia.com/v1", "ClusterPolicy")] == ["cluster-policy"]
    adopted = helm_release(kube, name=release)
    assert (adopted["labels"]["status"], adopted["labels"]["version"]) == ("deployed", "1")
    after = objects_of(kube, release)
    assert before <= after, before - after  # nothing of the old release is orphaned or gone
    policy = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]
    assert policy["driver"]["enabled"] is False
    assert workload_pod(kube) == before_pod
    # Runbook step 5: Helm adopted the objects by patching them, which leaves fields only the old values set;
    # one upgrade with forceUpdate replaces them with what the chart renders now.
    assert [e["name"] for e in policy["toolkit"]["env"]][0] == "CONTAINERD_CONFIG"
    assert lab.set("gpuOperator.chart.forceUpdate", True).up().returncode == 0
    assert lab.set("gpuOperator.chart.forceUpdate", False).up().returncode == 0
    policy = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]
    assert [e["name"] for e in policy["toolkit"]["env"]] == ["CONTAINERD_SOCKET"]  # the tmpl recipe is gone
    assert workload_pod(kube) == before_pod
    node = kube.get("v1", "Node", "proj-k8sw04")
    managers = {m["manager"] for m in node["metadata"]["managedFields"] if "f:gpu" in str(m.get("fieldsV1"))}
    assert {"kubectl-label", "gpu-platform"} <= managers
    assert lab.preview("--expect-no-changes").returncode == 0


def test_without_the_runbook_the_default_config_installs_no_second_operator(
        lab: Stack, hand_made: str, kube: Kube) -> None:
    """The lab config as it is (release name gpu-operator) against the hand-made install: Helm refuses to take
    objects another release owns, the update fails, and there is still one operator."""
    result = lab.up()
    assert result.returncode != 0
    assert "invalid ownership metadata" in result.output and hand_made in result.output
    assert operators(kube) == [("gpu-operator", "gpu-operator", HAND_CHART)]
    assert len(kube.list("nvidia.com/v1", "ClusterPolicy")) == 1


def operators(kube: Kube) -> list[tuple[str, str, str]]:
    """(namespace, name, image tag) of every Deployment in the cluster that runs the GPU Operator's image."""
    found = []
    for deployment in kube.list("apps/v1", "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if "/gpu-operator:" in container["image"]:
                found.append((deployment["metadata"]["namespace"], deployment["metadata"]["name"],
                              container["image"].rsplit(":", 1)[1]))
    return found


def objects_of(kube: Kube, release: str) -> set[tuple[str, str]]:
    """(kind, name) of the objects Helm's annotations say belong to `release`."""
    kinds = [("apps/v1", "Deployment"), ("apps/v1", "DaemonSet"), ("v1", "ServiceAccount"), ("v1", "ConfigMap"),
             ("v1", "Service"), ("rbac.authorization.k8s.io/v1", "Role"),
             ("rbac.authorization.k8s.io/v1", "RoleBinding"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
             ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("nvidia.com/v1", "ClusterPolicy"),
             ("nfd.k8s-sigs.io/v1alpha1", "NodeFeatureRule")]
    found = set()
    for version, kind in kinds:
        namespace = "gpu-operator" if kind not in ("ClusterRole", "ClusterRoleBinding", "ClusterPolicy") else None
        for obj in kube.list(version, kind, namespace):
            if (obj["metadata"].get("annotations") or {}).get("meta.helm.sh/release-name") == release:
                found.add((kind, obj["metadata"]["name"]))
    return found
