"""What the program needs to know about the cluster it targets."""
from __future__ import annotations

from pydantic import Field

from .base import ConfigModel
from .runtime_presets import ContainerRuntime


class ClusterConfig(ConfigModel):
    """The target cluster: its Kubernetes minor release, container runtime and what is installed on it."""

    # Two digits without a leading zero: the value becomes the Pod Security label `v1.NN`, which the API server
    # parses as v1.(0|[1-9][0-9]*), so "1.05" would be an invalid label.
    kubernetes_version: str = Field(pattern=r"^1\.[1-9][0-9]$", description=(
        "Kubernetes minor release, e.g. \"1.34\": pins the Pod Security labels and picks the schemas manifests are "
        "checked against."))
    container_runtime: ContainerRuntime = Field(description=(
        "rke2, k3s, containerd or cri-o: picks the toolkit settings (see components/runtime_presets.py)."))
    nri_plugin: bool = Field(default=False, description=(
        "Use the containerd NRI plugin instead of the socket preset (chart v26.3+, containerd 2.1, experimental)."))
    prometheus_operator_crds: bool = Field(default=False, description=(
        "The prometheus-operator CRDs (ServiceMonitor, PrometheusRule) are installed, e.g. by "
        "kube-prometheus-stack."))
