"""The real tier's stacks: a project folder linking a program, a stack of it in the engine's backend, its config.

Helpers for tests/real (fixtures live in conftest.py)."""
from __future__ import annotations

import base64
import gzip
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from components.sharing import SharingConfig
from tools.stacks import Stack

MPS_4_CONFIG_MAP = SharingConfig.model_validate(
    {"default": "mps-4", "profiles": {"mps-4": {"mps": {"replicas": 4}}}}).config_map_name()


def stack_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")


def tear_down(stack: Stack) -> None:
    """Destroy what the stack deployed (unprotecting first: this is the test's own stack) and remove it."""
    if stack.deployed:
        stack.engine.run("state", "unprotect", "--all", "--yes", "--stack", stack.name)
        # A test may have removed objects by hand (the adoption tests uninstall what they installed); the
        # provider's delete of a Helm release that is gone fails, so the state is refreshed first.
        stack.pulumi("refresh", "--yes", "--non-interactive", "--skip-preview")
        destroyed = stack.destroy()
        assert destroyed.returncode == 0, f"clean-up failed: {destroyed.output}"
    stack.engine.run("stack", "rm", "--yes", "--force", stack.name)




def helm_release(kube, name: str = "gpu-operator", namespace: str = "gpu-operator") -> dict[str, Any]:
    """The newest Helm release record (Helm stores each revision as a Secret, gzipped JSON in base64)."""
    secrets = kube.list("v1", "Secret", namespace, selector=f"owner=helm,name={name}")
    assert secrets, f"no Helm release secret for {name} in {namespace}"
    newest = max(secrets, key=lambda s: int(s["metadata"]["labels"]["version"]))
    record = json.loads(gzip.decompress(base64.b64decode(base64.b64decode(newest["data"]["release"]))))
    return {"labels": newest["metadata"]["labels"], "record": record}


def wait_for(what: str, check: Callable[[], bool], timeout: float = 60) -> None:
    """Poll `check` until it holds; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out after {timeout:.0f} s waiting for {what}"
        time.sleep(0.25)


# --- an operator rollout that cannot finish ------------------------------------------------------------------

def _filler_pod(cpu: str, node: str) -> dict[str, Any]:
    """A pod that takes the GPU node's spare CPU, so that a new operator pod cannot be scheduled there. The
    operator runs at system-node-critical, so the filler does too (else the scheduler preempts it)."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cpu-filler", "namespace": "kube-system"},
            "spec": {"nodeName": node, "priorityClassName": "system-node-critical",
                     "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
                     "securityContext": {"runAsNonRoot": True, "runAsUser": 1000,
                                         "seccompProfile": {"type": "RuntimeDefault"}},
                     "containers": [{"name": "filler", "image": "registry.k8s.io/pause:3.10",
                                     "resources": {"requests": {"cpu": cpu}},
                                     "securityContext": {"allowPrivilegeEscalation": False,
                                                         "capabilities": {"drop": ["ALL"]}}}]}}


@contextmanager
def operator_cannot_roll(kube) -> Iterator[None]:
    """While inside, a new operator pod cannot be scheduled (the spare CPU of the only node it may run on is
    taken), so a Helm upgrade that changes the operator's pod template waits for it until its timeout. Hook Jobs,
    which request no CPU, still run."""
    [operator] = kube.list("v1", "Pod", "gpu-operator", selector="app=gpu-operator")
    name = operator["spec"]["nodeName"]
    node = kube.get("v1", "Node", name)
    used = sum(_millicores(c.get("resources", {}).get("requests", {}).get("cpu", "0"))
               for p in kube.list("v1", "Pod") if p["spec"].get("nodeName") == name
               for c in p["spec"]["containers"])
    spare = _millicores(node["status"]["allocatable"]["cpu"]) - used
    kube.create(_filler_pod(f"{spare - 50}m", name))
    try:
        yield
    finally:
        kube.delete("v1", "Pod", "cpu-filler", "kube-system")
        wait_for("the CPU filler pod to go", lambda: not kube.exists("v1", "Pod", "cpu-filler", "kube-system"))


# A change of the operator's pod template (its tolerations), harmless otherwise: what the tests roll.
EXTRA_TOLERATION = [{"key": "example.com/maintenance", "operator": "Exists", "effect": "NoSchedule"}]


def _millicores(quantity: str) -> int:
    return int(quantity[:-1]) if quantity.endswith("m") else int(float(quantity) * 1000)


# --- a known cluster state -------------------------------------------------------------------------------------

CLUSTER_KINDS = (("v1", "Namespace"), ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
                 ("rbac.authorization.k8s.io/v1", "ClusterRole"),
                 ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"), ("scheduling.k8s.io/v1", "PriorityClass"))
# Helm installs a chart's crds/ folder and never deletes it (helm.sh docs, "Method 1: Let Helm Do It For You").
CHART_CRD_GROUPS = ("nvidia.com", "resource.nvidia.com", "nfd.k8s-sigs.io")


def snapshot(kube) -> dict[str, Any]:
    """Names of the cluster-scoped objects a stack could leave behind, and the GPU node's labels and taints."""
    state: dict[str, Any] = {kind: sorted(o["metadata"]["name"] for o in kube.list(version, kind))
                             for version, kind in CLUSTER_KINDS}
    node = kube.get("v1", "Node", "proj-k8sw04")
    # Taints under node.kubernetes.io/ are the node lifecycle controller's view of the node's health.
    taints = [t for t in node["spec"].get("taints", []) if not t["key"].startswith("node.kubernetes.io/")]
    state["node"] = {"labels": node["metadata"].get("labels", {}), "taints": taints}
    return state


def restore(kube, baseline: dict[str, Any], *, timeout: float = 180) -> None:
    """Remove the chart CRDs Helm keeps after an uninstall; then the cluster must be back to `baseline`.

    A CRD's deletion waits for its custom resources to go, and the API server's cleanup of them can back off, so
    the deletion is asked again until the CRD is gone."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(kube)
        if now == baseline:
            return
        for name in now["CustomResourceDefinition"]:
            if name not in baseline["CustomResourceDefinition"] and name.split(".", 1)[1] in CHART_CRD_GROUPS:
                kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        if time.monotonic() > deadline:
            left = {key: {"now": now[key], "at the start": baseline[key]} for key in now if now[key] != baseline[key]}
            for name in set(now["CustomResourceDefinition"]) - set(baseline["CustomResourceDefinition"]):
                crd = kube.find("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) or {}
                left[name] = {"conditions": (crd.get("status") or {}).get("conditions"),
                              "deletionTimestamp": crd.get("metadata", {}).get("deletionTimestamp")}
            raise AssertionError(f"the test left the cluster changed after {timeout:.0f} s: {left}")
        time.sleep(1)
