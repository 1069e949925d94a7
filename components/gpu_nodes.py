"""GPU nodes: labels and taints applied with server-side apply, so that only our fields are managed.

Each node gets a `NodePatch` with the field manager `gpu-platform`. Labels are a map, so our apply owns
only our keys, and removing a node from the config removes only those keys. `spec.taints` is an atomic
list in the Kubernetes API: our apply owns the whole list, so a node's `taints` in the config must name
every taint the node should carry; a taint another manager set makes the apply fail with a conflict
(`forceConflicts: true` takes the list over on purpose).
"""
from __future__ import annotations

from typing import Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import Field, field_validator

from .base import ConfigModel, K8sName, LabelKey, Labels, LabelValue
from .gpus import PRODUCTS
from .sharing import NODE_CONFIG_LABEL, ProfileName

FIELD_MANAGER = "gpu-platform"
GPU_TAINT_KEY = "nvidia.com/gpu"
MIG_CONFIG_LABEL = "nvidia.com/mig.config"
EXPECTED_HOST_DRIVER_ANNOTATION = "gpu-platform/expected-host-driver-version"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"
# Label prefixes that other controllers own (GFD/operator, NFD); typed fields set the few we may set.
MANAGED_LABEL_PREFIXES = ("nvidia.com/", "feature.node.kubernetes.io/")


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
        return labels

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


class GpuNodes(pulumi.ComponentResource):
    """Labels and taints on the GPU worker nodes (one server-side-apply NodePatch per node)."""

    def __init__(self, name: str, nodes: list[GpuNodeConfig], *, expected_host_driver: str | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:nodes:GpuNodes", name, None, opts)
        self.patches = [self._patch(name, node, expected_host_driver) for node in nodes]
        self.register_outputs({"nodes": [node.name for node in nodes]})

    def _patch(self, name: str, node: GpuNodeConfig, expected_host_driver: str | None) -> k8s.core.v1.NodePatch:
        annotations = {"pulumi.com/patchFieldManager": FIELD_MANAGER}
        if node.force_conflicts:
            annotations["pulumi.com/patchForce"] = "true"
        if expected_host_driver is not None:
            annotations[EXPECTED_HOST_DRIVER_ANNOTATION] = expected_host_driver
        return k8s.core.v1.NodePatch(
            f"{name}-{node.name}",
            metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=node.name, labels=node.node_labels(),
                                                     annotations=annotations),
            spec=k8s.core.v1.NodeSpecPatchArgs(
                taints=[k8s.core.v1.TaintPatchArgs(key=t.key, value=t.value or None, effect=t.effect)
                        for t in node.taints]),
            opts=pulumi.ResourceOptions(parent=self),
        )
