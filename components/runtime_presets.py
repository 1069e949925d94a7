"""Container-runtime presets: the toolkit and device-plugin settings each distribution needs.

RKE2 and K3s run their own containerd with its socket at /run/k3s/containerd/containerd.sock. With chart
v25.10+ (CDI, containerd 2.0, RKE2 >= v1.31.6) the toolkit needs only CONTAINERD_SOCKET (RKE2 docs); from
v26.3 the NRI plugin (`cdi.nriPluginEnabled`, containerd 2.1, experimental) can replace it. Plain containerd
and CRI-O need nothing: the toolkit finds their default sockets (and the device plugin no longer needs
DEVICE_LIST_STRATEGY=volume-mounts, as v25.3.x did). The old CONTAINERD_CONFIG=...config.toml.tmpl
recipe breaks RKE2 after a reboot (NVIDIA/gpu-operator#992) and is refused.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .chart_values import EnvVar

ContainerRuntime = Literal["rke2", "k3s", "containerd", "cri-o"]

K3S_CONTAINERD_SOCKET = "/run/k3s/containerd/containerd.sock"
# Environment variables a preset owns; setting them by hand would fight the preset.
PRESET_OWNED_ENV = frozenset({"CONTAINERD_SOCKET", "CONTAINERD_CONFIG", "RUNTIME_CONFIG", "CONTAINERD_RUNTIME_CLASS",
                              "DEVICE_LIST_STRATEGY"})


@dataclass(frozen=True)
class RuntimeSettings:
    toolkit_env: tuple[EnvVar, ...] = ()
    nri_plugin: bool = False


def runtime_settings(runtime: ContainerRuntime, *, nri_plugin: bool) -> RuntimeSettings:
    """The settings for `runtime` on the supported releases (all v25.10+; v25.3.x needed three toolkit env
    entries, RKE2 docs).

    Whether the pinned release has the NRI plugin is checked by the config model before this runs.
    """
    if nri_plugin:
        return RuntimeSettings(nri_plugin=True)
    if runtime in ("rke2", "k3s"):
        return RuntimeSettings(toolkit_env=(EnvVar(name="CONTAINERD_SOCKET", value=K3S_CONTAINERD_SOCKET),))
    return RuntimeSettings()


def refused_env(name: str, value: str) -> str | None:
    """Why a hand-written toolkit/device-plugin env entry is refused, or None when it is fine."""
    if name == "CONTAINERD_CONFIG" and value.endswith("config.toml.tmpl"):
        return ("the CONTAINERD_CONFIG=.../config.toml.tmpl recipe breaks RKE2 after a reboot "
                "(NVIDIA/gpu-operator#992) and was removed from NVIDIA's docs; with chart v25.10+ RKE2 needs only "
                "CONTAINERD_SOCKET, which `cluster.containerRuntime: rke2` sets: remove this entry")
    if name in PRESET_OWNED_ENV:
        return (f"{name} is set by the container-runtime preset (`cluster.containerRuntime`); remove this entry "
                "and choose the preset that matches the cluster (rke2, k3s, containerd or cri-o)")
    return None
