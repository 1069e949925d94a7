"""The real tier's stacks: a project folder linking a program, a stack of it in the engine's backend, its config.

Helpers for tests/real (fixtures live in conftest.py)."""
from __future__ import annotations

import base64
import copy
import gzip
import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.sharing import SharingConfig
from tools.engine import PACK, PACK_CONFIG, Engine, Result
from tools.kube import KubeError
from tools.upstream import upstream_dir

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "gpu-platform"
MPS_4_CONFIG_MAP = SharingConfig.model_validate(
    {"default": "mps-4", "profiles": {"mps-4": {"mps": {"replicas": 4}}}}).config_map_name()


def chart_archive(version: str) -> Path:
    path = upstream_dir() / "gpu-operator" / version / "chart" / f"gpu-operator-{version}.tgz"
    if not path.exists():
        pytest.fail(f"the published chart {version} is not at {path}; set GPU_PLATFORM_UPSTREAM to the shared "
                    "upstream data folder")
    return path


def lab_config() -> dict[str, Any]:
    """Pulumi.lab.yaml's config, with the chart taken from the published archive (the air-gapped route)."""
    config = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())["config"]
    chart = config[f"{NAMESPACE}:gpuOperator"]["chart"]
    chart.pop("repository", None)
    chart["path"] = str(chart_archive(chart["version"]))
    return config


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """`gpuOperator.driver.version` inside `gpu-platform:gpuOperator`; `[n]` indexes lists."""
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    target: Any = config
    head = f"{NAMESPACE}:{parts[0]}" if ":" not in str(parts[0]) else parts[0]
    parts = [head, *parts[1:]]
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


class LabStack:
    """A project folder linking a program's files (this project's by default) and one stack of it."""

    def __init__(self, engine: Engine, folder: Path, name: str, *, program: Path = ROOT,
                 config: dict[str, Any] | None = None):
        self.engine = Engine(engine.bin_dir, engine.workspace, folder, engine.kubeconfig, engine.python)
        self.engine.home, self.engine.state = engine.home, engine.state
        self.folder = folder
        self.name = name
        self.config = lab_config() if config is None else config
        self.deployed = False
        folder.mkdir(parents=True)
        (folder / "Pulumi.yaml").write_text((program / "Pulumi.yaml").read_text())
        for entry in ("__main__.py", "components"):
            if (program / entry).exists():
                (folder / entry).symlink_to(program / entry)

    def set(self, path: str, value: Any) -> "LabStack":
        set_path(self.config, path, value)
        return self

    def write(self) -> None:
        stack_file = self.folder / f"Pulumi.{self.name}.yaml"
        existing = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
        document = {key: value for key, value in (existing or {}).items() if key != "config"}
        document["config"] = copy.deepcopy(self.config)
        stack_file.write_text(yaml.safe_dump(document, sort_keys=False))

    def init(self) -> None:
        result = self.engine.run("stack", "init", self.name)
        assert result.returncode == 0, result.output
        self.write()

    def pulumi(self, *args: str, **kwargs: Any) -> Result:
        self.write()
        return self.engine.run(*args, "--stack", self.name, **kwargs)

    def preview(self, *extra: str, policy: bool = True) -> Result:
        return self.pulumi("preview", "--non-interactive", *self.policy_args(policy), *extra)

    def up(self, *extra: str, policy: bool = True, skip_preview: bool = False, **kwargs: Any) -> Result:
        """`pulumi up --yes`: a preview (where the pack's stack policies can still stop it), then the update."""
        self.deployed = True
        skip = ["--skip-preview"] if skip_preview else []
        return self.pulumi("up", "--yes", "--non-interactive", *skip, *self.policy_args(policy), *extra, **kwargs)

    def destroy(self, *extra: str) -> Result:
        result = self.pulumi("destroy", "--yes", "--non-interactive", *extra)
        if result.returncode == 0:
            self.deployed = False
        return result

    @staticmethod
    def policy_args(policy: bool) -> list[str]:
        return ["--policy-pack", str(PACK), "--policy-pack-config", str(PACK_CONFIG / "lab.json")] if policy else []


def stack_name(request: pytest.FixtureRequest) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower())[:40].strip("-")


def tear_down(stack: LabStack) -> None:
    """Destroy what the stack deployed (unprotecting first: this is the test's own stack) and remove it."""
    if stack.deployed:
        stack.engine.run("state", "unprotect", "--all", "--yes", "--stack", stack.name)
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

    A CRD's deletion waits for its custom resources to go; the API server's cleanup of them backs off while the
    CRD's storage re-initialises, so the deletion is asked again until the CRD is gone."""
    deadline = time.monotonic() + timeout
    while True:
        now = snapshot(kube)
        if now == baseline:
            return
        for name in now["CustomResourceDefinition"]:
            if name not in baseline["CustomResourceDefinition"] and name.split(".", 1)[1] in CHART_CRD_GROUPS:
                try:
                    kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
                except KubeError as error:
                    if error.code != 429:  # "storage is (re)initializing": ask again on the next round
                        raise
        if time.monotonic() > deadline:
            left = {key: {"now": now[key], "at the start": baseline[key]} for key in now if now[key] != baseline[key]}
            for name in set(now["CustomResourceDefinition"]) - set(baseline["CustomResourceDefinition"]):
                crd = kube.find("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) or {}
                left[name] = {"conditions": (crd.get("status") or {}).get("conditions"),
                              "deletionTimestamp": crd.get("metadata", {}).get("deletionTimestamp")}
            raise AssertionError(f"the test left the cluster changed after {timeout:.0f} s: {left}")
        time.sleep(1)
