"""GPU sharing: typed device-plugin configs (time-slicing or MPS) and their rendering for the chart.

The device plugin reads one ConfigMap in the operator namespace whose keys are named configs, each a YAML
string; the ClusterPolicy names it (`devicePlugin.config.name`) and picks the key for every node
(`devicePlugin.config.default`); the node label `nvidia.com/device-plugin.config=<key>` overrides it per node.
The operator does not watch that ConfigMap (NVIDIA/gpu-operator#1144), so its name is derived from its content:
a change renames it, the ClusterPolicy changes, and the operator rolls the device plugin without a restart.

The program creates that ConfigMap itself (GpuOperator), not the chart (`devicePlugin.config.create`): on the
real tier a Helm upgrade that changed sharing and then failed left the ClusterPolicy naming a ConfigMap that
no longer existed, because Helm's upgrade deletes the old ConfigMap and `cleanupOnFail` the new one. As a
Pulumi resource, a renamed ConfigMap is created before the release moves to it and the old one is deleted only
after the release update has succeeded.
"""
from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

import yaml
from pydantic import AfterValidator, Field, model_validator

from .base import ConfigModel, ConfigProblems, check_label_value

GPU_RESOURCE = "nvidia.com/gpu"
NODE_CONFIG_LABEL = "nvidia.com/device-plugin.config"
MPS_MAX_REPLICAS = 48  # per GPU, compute capability >= 7.5 (16 before); see components/gpus.py


def _check_profile_name(name: str) -> str:
    if not name:
        raise ValueError("a sharing profile name must not be empty")
    check_label_value(name)  # it becomes the value of the node label nvidia.com/device-plugin.config
    return name


ProfileName = Annotated[str, AfterValidator(_check_profile_name)]


class TimeSlicing(ConfigModel):
    """Time-slicing: the GPU is advertised `replicas` times; clients interleave with no memory isolation."""

    replicas: int = Field(ge=2, le=64, description=(
        "How many `nvidia.com/gpu` each physical GPU is advertised as (2-64)."))
    rename_by_default: bool = Field(default=False, description=(
        "Advertise the shared GPU as `nvidia.com/gpu.shared` instead of `nvidia.com/gpu`."))
    fail_requests_greater_than_one: bool = Field(default=True, description=(
        "Reject pods that request more than one shared GPU (they would not get more compute)."))


class Mps(ConfigModel):
    """MPS: the GPU is split between up to `replicas` clients by the MPS control daemon (chart >= v24.3.0).

    Experimental in the operator; not with MIG; requests for more than one GPU are rejected.
    """

    replicas: int = Field(ge=2, le=MPS_MAX_REPLICAS, description=(
        "How many clients share each GPU (2-48 from compute capability 7.5, 2-16 before)."))
    rename_by_default: bool = Field(default=False, description=(
        "Advertise the shared GPU as `nvidia.com/gpu.shared` instead of `nvidia.com/gpu`."))


class SharingProfile(ConfigModel):
    """One named device-plugin config: time-slicing, MPS, or (neither) whole GPUs."""

    time_slicing: TimeSlicing | None = None
    mps: Mps | None = None

    @model_validator(mode="after")
    def _one_strategy(self) -> "SharingProfile":
        """One sharing strategy per profile (time-slicing or MPS)."""
        if self.time_slicing is not None and self.mps is not None:
            raise ConfigProblems([((), "time-slicing and MPS are mutually exclusive on a node; "
                                       "give this profile either `timeSlicing` or `mps`, not both")])
        return self

    @property
    def strategy(self) -> str:
        return "mps" if self.mps else "time-slicing" if self.time_slicing else "none"

    @property
    def replicas(self) -> int:
        chosen = self.mps or self.time_slicing
        return chosen.replicas if chosen else 1

    def render(self) -> str:
        """The device plugin's own config file for this profile (a YAML string, as the chart wants)."""
        doc: dict[str, Any] = {"version": "v1"}
        resources = [{"name": GPU_RESOURCE, "replicas": self.replicas}]
        if self.mps is not None:
            doc["sharing"] = {"mps": {"renameByDefault": self.mps.rename_by_default, "resources": resources}}
        elif self.time_slicing is not None:
            ts = self.time_slicing
            doc["sharing"] = {"timeSlicing": {
                "renameByDefault": ts.rename_by_default,
                "failRequestsGreaterThanOne": ts.fail_requests_greater_than_one,
                "resources": resources,
            }}
        return yaml.safe_dump(doc, sort_keys=False)


class SharingConfig(ConfigModel):
    """Device-plugin sharing for the cluster: named profiles and the one every node gets by default."""

    default: ProfileName = Field(description=(
        "The profile for nodes that do not name one (`devicePlugin.config.default`)."))
    profiles: dict[ProfileName, SharingProfile] = Field(min_length=1, description=(
        "Named profiles; a node picks one with `nodes[].sharing` (node label nvidia.com/device-plugin.config)."))

    @model_validator(mode="after")
    def _default_exists(self) -> "SharingConfig":
        """The default profile is one of the profiles."""
        if self.default not in self.profiles:
            raise ConfigProblems([(("default",), f"{self.default!r} is not one of the profiles "
                                                 f"({', '.join(sorted(self.profiles))})")])
        return self

    def config_data(self) -> dict[str, str]:
        return {name: profile.render() for name, profile in sorted(self.profiles.items())}

    def config_map_name(self) -> str:
        """Content-derived, so that any change reaches the device plugin (the operator does not watch the data)."""
        payload = json.dumps({"default": self.default, "data": self.config_data()}, sort_keys=True)
        return f"device-plugin-config-{hashlib.sha256(payload.encode()).hexdigest()[:10]}"

    def chart_values(self) -> dict[str, Any]:
        """`devicePlugin.config` for the chart: the ConfigMap to name (created by the program, not the chart)."""
        return {"create": False, "name": self.config_map_name(), "default": self.default}
