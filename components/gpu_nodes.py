"""GPU nodes: labels and taints applied with server-side apply, so that only our fields are managed.

Each node gets a `NodePatch` with the field manager `gpu-platform`. Labels are a map, so our apply owns
only our keys, and removing a node from the config removes only those keys. `spec.taints` is an atomic
list in the Kubernetes API: whoever writes it writes the whole list.

Other managers write to nodes too: a person's `kubectl label` or `kubectl taint`, and the node controller,
which adds `node.kubernetes.io/unschedulable` while the driver upgrade cordons the node and
`node.kubernetes.io/unreachable` while the node is down. An apply of a different value for a field another
manager owns fails with a conflict, and a forced one takes their field over (for the taint list: removes their
taints). So the component reads each node first, at preview, and merges where it can:

- the node already carries every taint of the config and more, and another manager owns the list: the patch
  leaves the list alone (nothing to add; their taints stay theirs, including a cordon); once the list is just
  ours again (the cordon is over), the apply shares it with them;
- a label of the config already has its value: applied as usual, the key becomes co-owned;
- otherwise, where another manager owns what we would change, the program stops before anything is applied
  with a message naming the node, the field, the owner and the fix. `forceConflicts: true` takes the fields
  over on purpose.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from .base import ConfigModel, ConfigProblems, K8sName, LabelKey, Labels, LabelValue
from .base import Path as KeyPath
from .gpus import PRODUCTS
from .sharing import NODE_CONFIG_LABEL, ProfileName

FIELD_MANAGER = "gpu-platform"
GPU_TAINT_KEY = "nvidia.com/gpu"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
EXPECTED_HOST_DRIVER_ANNOTATION = "gpu-platform/expected-host-driver-version"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Label prefixes that other controllers own (GFD/operator, NFD); typed fields set the few we may set.
MANAGED_LABEL_PREFIXES = ("nvidia.com/", "feature.node.kubernetes.io/")
# The kubernetes.io and k8s.io label domains belong to Kubernetes: the kubelet sets and resets its own
# (kubernetes.io/hostname, /os, /arch, topology.kubernetes.io/*, node.kubernetes.io/instance-type, kubelet.kubernetes.io/*,
# node.kubernetes.io/*), and the NodeRestriction admission plugin reserves the domain. An administrator may set only
# node-role.kubernetes.io/* (roles, which kubelets may not set on themselves) and node-restriction.kubernetes.io/*.
# The node controller's taints: a cordon, and a node that is not ready or unreachable.
CONTROLLER_TAINT_PREFIX = "node.kubernetes.io/"
ADMIN_KUBERNETES_LABEL_PREFIXES = ("node-role.kubernetes.io/", "node-restriction.kubernetes.io/")


def kubernetes_owned_label(key: str) -> bool:
    domain = key.rpartition("/")[0]
    if not domain or key.startswith(ADMIN_KUBERNETES_LABEL_PREFIXES):
        return False
    return any(domain == d or domain.endswith(f".{d}") for d in ("kubernetes.io", "k8s.io"))


class Taint(ConfigModel):
    key: LabelKey
    value: LabelValue = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


DEFAULT_GPU_TAINT = Taint(key=GPU_TAINT_KEY, value="present", effect="NoSchedule")


class GpuNodeConfig(ConfigModel):
    """A GPU worker node and what we set on it."""

    name: K8sName = Field(description="The Kubernetes node name.")
    gpu: str = Field(description="The GPU product as GFD labels it (nvidia.com/gpu.product), e.g. NVIDIA-RTX-A4000.")
    gpu_count: int = Field(default=1, ge=1, le=16, description=(
        "GPUs in the node (the monitoring alerts when fewer are seen)."))
    labels: Labels = Field(default={}, description=(
        "Extra node labels (not under nvidia.com/ or feature.node.kubernetes.io/, which controllers own)."))
    taints: list[Taint] = Field(default=[DEFAULT_GPU_TAINT], description=(
        "Every taint the node should carry (an atomic list: see the module docstring)."))
    sharing: ProfileName | None = Field(default=None, description=(
        "A sharing profile for this node instead of the default (node label nvidia.com/device-plugin.config)."))
    mig_config: LabelValue | None = Field(default=None, description=(
        "A MIG profile (node label nvidia.com/mig.config), only on MIG-capable GPUs with the MIG manager on."))
    force_conflicts: bool = Field(default=False, description=(
        "Take over labels or taints that another field manager owns (server-side apply force)."))

    @field_validator("gpu")
    @classmethod
    def _known_product(cls, value: str) -> str:
        if value not in PRODUCTS:
            raise ValueError(f"unknown GPU product {value!r}; known: {', '.join(sorted(PRODUCTS))} "
                             "(add it to components/gpus.py with its compute capability and MIG support)")
        return value

    @field_validator("labels")
    @classmethod
    def _not_managed(cls, labels: dict[str, str]) -> dict[str, str]:
        for key in labels:
            if key.startswith(MANAGED_LABEL_PREFIXES):
                raise ValueError(f"label {key!r} is owned by the GPU operator or NFD; use the typed fields "
                                 "`sharing` (nvidia.com/device-plugin.config) or `migConfig` (nvidia.com/mig.config)")
            if kubernetes_owned_label(key):
                raise ValueError(f"label {key!r} is in a domain Kubernetes owns (kubernetes.io, k8s.io): the kubelet "
                                 "sets and resets its own there; of that domain only node-role.kubernetes.io/* and "
                                 "node-restriction.kubernetes.io/* are an administrator's. Use your own prefix "
                                 "(lab.example/...) or none")
        return labels

    @field_validator("taints")
    @classmethod
    def _valid_taints(cls, taints: list[Taint]) -> list[Taint]:
        problems: list[tuple[KeyPath, str]] = []
        seen: dict[tuple[str, str], int] = {}
        for index, taint in enumerate(taints):
            if taint.key.startswith(CONTROLLER_TAINT_PREFIX):
                problems.append(((index, "key"), f"{taint.key} is the node controller's taint (a cordon, or a node "
                                                 "that is not ready); it comes and goes with the node's state"))
            first = seen.setdefault((taint.key, taint.effect), index)
            if first != index:
                problems.append(((index,), f"taint {taint.key}:{taint.effect} is already taints[{first}]; the API "
                                           "server refuses two taints with the same key and effect"))
        if problems:
            raise ConfigProblems(problems)
        return taints

    def node_labels(self) -> dict[str, str]:
        labels = dict(self.labels)
        if self.sharing is not None:
            labels[NODE_CONFIG_LABEL] = self.sharing
        if self.mig_config is not None:
            labels[MIG_CONFIG_LABEL] = self.mig_config
        return labels

    def scheduling_labels(self) -> dict[str, str]:
        """Labels a selector can match on this node: ours plus the product label GFD will publish."""
        return {**self.node_labels(), GPU_PRODUCT_LABEL: self.gpu}




def taint_dicts(taints: list[Taint]) -> list[dict[str, str]]:
    return [{"key": t.key, **({"value": t.value} if t.value else {}), "effect": t.effect} for t in taints]


def _owners(live: dict[str, Any], path: tuple[str, ...]) -> list[str]:
    """The managers (other than ours) whose managedFields hold `path`, e.g. ("f:spec", "f:taints")."""
    owners = []
    for entry in (live.get("metadata") or {}).get("managed_fields") or (live.get("metadata") or {}).get(
            "managedFields") or []:
        fields = entry.get("fields_v1") or entry.get("fieldsV1") or {}
        for part in path:
            fields = fields.get(part) if isinstance(fields, dict) else None
        if fields is not None and entry.get("manager") != FIELD_MANAGER:
            owners.append(str(entry.get("manager")))
    return owners


def node_conflicts(node: GpuNodeConfig, live: dict[str, Any]) -> tuple[bool, list[str]]:
    """Whether our patch should write the taint list, and every conflict with another manager (with its fix).

    `live` is the node as the API returns it (snake_case or camelCase keys: the SDK gives the former)."""
    problems: list[str] = []
    live_labels = (live.get("metadata") or {}).get("labels") or {}
    for key, value in node.node_labels().items():
        if key in live_labels and live_labels[key] != value:
            owners = _owners(live, ("f:metadata", "f:labels", f"f:{key}"))
            if owners:
                problems.append(
                    f"label {key}={live_labels[key]!r} belongs to {', '.join(owners)}, and the config wants "
                    f"{value!r}. Fix: agree on one value (set it in nodes[].labels, or `kubectl label node "
                    f"{node.name} {key}-` to drop theirs), or set nodes[].forceConflicts: true to take it over")
    wanted = taint_dicts(node.taints)
    live_taints = [{k: v for k, v in t.items() if k in ("key", "value", "effect") and v}
                   for t in (live.get("spec") or {}).get("taints") or []]
    owners = _owners(live, ("f:spec", "f:taints"))
    if not owners or sorted(map(str, live_taints)) == sorted(map(str, wanted)):
        return True, problems  # ours alone, or the same list: the apply shares it without a conflict
    if all(taint in live_taints for taint in wanted):
        return False, problems  # merged: every taint of ours is there; the list stays theirs
    missing = ", ".join(f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in wanted if t not in live_taints)
    foreign = [t for t in live_taints if t not in wanted] or live_taints
    if any(t["key"].startswith(CONTROLLER_TAINT_PREFIX) for t in foreign):
        shown = ", ".join(t["key"] for t in foreign if t["key"].startswith(CONTROLLER_TAINT_PREFIX))
        problems.append(
            f"taint {missing} must be added, but the node controller owns the node's taint list now ({shown}: "
            "the node is cordoned, for example by the driver upgrade, or not ready). Kubernetes keeps a node's "
            "taints as one list, so adding ours would conflict, and forcing it would drop the controller's taint. "
            f"Fix: wait until the node is schedulable and Ready again (`kubectl get node {node.name}`), then run "
            "pulumi up again")
    else:
        shown = ", ".join(f"{t['key']}={t.get('value', '')}:{t['effect']}" for t in foreign) or "none"
        problems.append(
            f"taint {missing} must be added, but the node's taint list belongs to {', '.join(owners)} (their "
            f"taints: {shown}). Kubernetes keeps a node's taints as one list, so adding ours conflicts with them. "
            f"Fix: remove theirs (`kubectl taint node {node.name} <key>-`) and let the config add ours, or list "
            "theirs in nodes[].taints too and set nodes[].forceConflicts: true, which makes the whole list the "
            "program's with their taints kept")
    return True, problems


def conflict_message(node: GpuNodeConfig, problems: list[str], redact: Callable[[str], str] = str) -> str:
    """The error that stops the program on conflicts; a label value set as a secret is never in it."""
    return redact(f"node {node.name!r} (gpu-platform:nodes): another field manager owns what the config would "
                  "change; nothing was applied:\n" + "\n".join(f"  - {p}" for p in problems))


class GpuNodes(pulumi.ComponentResource):
    """Labels and taints on the GPU worker nodes (one server-side-apply NodePatch per node, merged with what
    other managers own; see the module docstring)."""

    def __init__(self, name: str, nodes: list[GpuNodeConfig], *, expected_host_driver: str | None = None,
                 redact: Callable[[str], str] = str, opts: pulumi.ResourceOptions | None = None):
        """`redact`: removes config secrets from the conflict message (CompiledConfig.secrets.redact)."""
        super().__init__("gpu-platform:nodes:GpuNodes", name, None, opts)
        self._redact = redact
        # Read, never managed: a node that does not exist fails the preview with its name.
        self.live = [k8s.core.v1.Node.get(f"{name}-{node.name}-live", node.name, opts=pulumi.ResourceOptions(
            parent=self)) for node in nodes]
        self.patches = [self._patch(name, node, live, expected_host_driver) for node, live in zip(nodes, self.live)]
        self.register_outputs({"nodes": [node.name for node in nodes]})

    def _patch(self, name: str, node: GpuNodeConfig, live: k8s.core.v1.Node,
               expected_host_driver: str | None) -> k8s.core.v1.NodePatch:
        annotations = {"pulumi.com/patchFieldManager": FIELD_MANAGER}
        if node.force_conflicts:
            annotations["pulumi.com/patchForce"] = "true"
        if expected_host_driver is not None:
            annotations[EXPECTED_HOST_DRIVER_ANNOTATION] = expected_host_driver

        def taints(state: list[Any]) -> list[dict[str, str]] | None:
            metadata, spec = state
            write, problems = node_conflicts(node, {"metadata": metadata or {}, "spec": spec or {}})
            if problems and not node.force_conflicts:
                raise pulumi.RunError(conflict_message(node, problems, self._redact))
            return taint_dicts(node.taints) if write or node.force_conflicts else None

        return k8s.core.v1.NodePatch(
            f"{name}-{node.name}",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=node.name, labels=node.node_labels(),
                                                     annotations=annotations),
            spec=k8s.core.v1.NodeSpecPatchArgs(
                taints=pulumi.Output.all(live.metadata, live.spec).apply(taints)),
            opts=pulumi.ResourceOptions(parent=self),
        )
