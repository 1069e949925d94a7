"""Typed values for the gpu-operator chart: a pydantic tree that mirrors the chart's own keys.

Only what this program sets is modelled. Every model forbids unknown keys (the chart has no values schema
and Helm silently ignores a misspelt key; we do not). Field names are the chart's camelCase names through
aliases. A key that only some supported releases have carries `Since(...)`; `unavailable_in(release)`
lists the set keys the pinned release does not have. tests/test_chart_values.py checks every emitted
path against the upstream chart of each supported release.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr
from pydantic.alias_generators import to_camel

from .base import MAX_STRING
from .releases import ChartRelease, chart_version_key


@dataclass(frozen=True)
class Since:
    """The first chart release that reads this key."""

    version: str


class ChartValues(BaseModel):
    """Base of the values tree: frozen, unknown keys rejected, the chart's camelCase names."""

    # Bounded like the stack config's strings (components/base.py): env entries and tolerations come from there.
    model_config = ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True,
                              str_max_length=MAX_STRING)

    def set_leaves(self, prefix: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any, Since | None]]:
        """Every set (non-None) leaf as (chart path, value, Since marker); nested models are walked into."""
        for name, field in type(self).model_fields.items():
            value = getattr(self, name)
            if value is None:
                continue
            path = (*prefix, field.alias or name)
            if isinstance(value, ChartValues):
                yield from value.set_leaves(path)
            else:
                since = next((m for m in field.metadata if isinstance(m, Since)), None)
                yield path, value, since

    def unavailable_in(self, release: ChartRelease) -> list[tuple[tuple[str, ...], str]]:
        """The set keys that `release` does not read, each with the release that introduced it."""
        return [(path, since.version) for path, _, since in self.set_leaves()
                if since is not None and release.key < chart_version_key(since.version)]

    def to_helm_values(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


class EnvVar(ChartValues):
    name: StrictStr
    value: StrictStr  # ClusterPolicy rejects non-string env values (NVIDIA/gpu-operator#297)


class Toleration(ChartValues):
    key: StrictStr | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: StrictStr | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class OperatorValues(ChartValues):
    node_selector: dict[str, str] | None = None
    tolerations: list[Toleration] | None = None
    image_pull_secrets: list[str] | None = None
    upgrade_crd: bool | None = Field(default=None, alias="upgradeCRD")


class ValidatorValues(ChartValues):
    image_pull_secrets: list[str] | None = None


class NvidiaDriverCrdValues(ChartValues):
    enabled: bool
    deploy_default_cr: bool | None = Field(default=None, alias="deployDefaultCR")


class WaitForCompletionValues(ChartValues):
    timeout_seconds: int
    pod_selector: str


class GpuPodDeletionValues(ChartValues):
    force: bool
    timeout_seconds: int
    delete_empty_dir: bool


class DrainValues(ChartValues):
    enable: bool
    force: bool
    pod_selector: str
    timeout_seconds: int
    delete_empty_dir: bool


class UpgradePolicyValues(ChartValues):
    auto_upgrade: bool
    max_parallel_upgrades: int
    max_unavailable: int | str
    wait_for_completion: WaitForCompletionValues
    gpu_pod_deletion: GpuPodDeletionValues
    drain: DrainValues


class DriverValues(ChartValues):
    enabled: bool
    version: StrictStr | None = None
    use_precompiled: bool | None = None
    kernel_module_type: Literal["auto", "open", "proprietary"] | None = None
    repository: str | None = None
    image_pull_secrets: list[str] | None = None
    nvidia_driver_crd: NvidiaDriverCrdValues | None = Field(default=None, alias="nvidiaDriverCRD")
    upgrade_policy: UpgradePolicyValues | None = None


class ToolkitValues(ChartValues):
    enabled: bool = True
    env: list[EnvVar] | None = None
    image_pull_secrets: list[str] | None = None


class DevicePluginConfigValues(ChartValues):
    """The ConfigMap the device plugin reads; the program creates it (components/sharing.py), so no `data`."""

    create: bool
    name: str
    default: str


class DevicePluginValues(ChartValues):
    enabled: bool = True
    env: list[EnvVar] | None = None
    config: DevicePluginConfigValues | None = None
    image_pull_secrets: list[str] | None = None


class ServiceMonitorValues(ChartValues):
    enabled: bool
    interval: str | None = None
    honor_labels: bool | None = None
    additional_labels: dict[str, str] | None = None


class DcgmExporterValues(ChartValues):
    enabled: bool
    service_monitor: ServiceMonitorValues | None = None
    image_pull_secrets: list[str] | None = None


class GfdValues(ChartValues):
    enabled: bool
    image_pull_secrets: list[str] | None = None


class MigManagerValues(ChartValues):
    enabled: bool
    image_pull_secrets: list[str] | None = None


class MigValues(ChartValues):
    strategy: Literal["single", "mixed"]


class CdiValues(ChartValues):
    enabled: bool = True
    nri_plugin_enabled: Annotated[bool | None, Since("v26.3.0")] = None


class DaemonsetsValues(ChartValues):
    tolerations: list[Toleration] | None = None


class NfdWorkerValues(ChartValues):
    tolerations: list[Toleration] | None = None


class NodeFeatureDiscoveryValues(ChartValues):
    worker: NfdWorkerValues | None = None


class GpuOperatorValues(ChartValues):
    """The release's `values`: only the keys this program sets; everything else stays the chart's default."""

    operator: OperatorValues | None = None
    validator: ValidatorValues | None = None
    driver: DriverValues
    toolkit: ToolkitValues | None = None
    device_plugin: DevicePluginValues | None = None
    dcgm_exporter: DcgmExporterValues | None = None
    gfd: GfdValues | None = None
    mig_manager: MigManagerValues | None = None
    mig: MigValues | None = None
    cdi: CdiValues | None = None
    daemonsets: DaemonsetsValues | None = None
    node_feature_discovery: NodeFeatureDiscoveryValues | None = Field(default=None, alias="node-feature-discovery")
