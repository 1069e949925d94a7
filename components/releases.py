"""The gpu-operator chart releases this program supports, and what differs between them.

Data (documented drivers, end-of-life driver branches) lives in components/data/*.tsv with its sources;
behaviour that changed between releases is written here as version predicates, each with its reason.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"

CHART_NAME = "gpu-operator"
CHART_REPOSITORY = "https://helm.ngc.nvidia.com/nvidia"

CHART_VERSION_RE = re.compile(r"^v(\d+)\.(\d+)\.(\d+)$")
# A data-center driver version as the chart wants it: bare (the operator appends -<os> itself, #690).
DRIVER_VERSION_RE = re.compile(r"^(\d{3})\.(\d{1,3})(\.(\d{1,3}))?$")

# NVIDIA's lifecycle (docs, Aug 2026): 26.6.x/26.7 supported, 26.3.x deprecated, 25.10.x out of support.
LIFECYCLE = {(25, 10): "out of NVIDIA support", (26, 3): "deprecated by NVIDIA", (26, 7): "supported"}


def chart_version_key(version: str) -> tuple[int, int, int]:
    match = CHART_VERSION_RE.fullmatch(version)
    if not match:
        raise ValueError(f"{version!r} is not a chart version of the form v<major>.<minor>.<patch>")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def _rows(name: str) -> list[list[str]]:
    lines = (DATA / name).read_text().splitlines()
    body = [line for line in lines if line and not line.startswith("#")]
    return [line.split("\t") for line in body[1:]]  # body[0] is the header


@dataclass(frozen=True)
class DocumentedDriver:
    version: str
    default: bool
    recommended: bool


@dataclass(frozen=True)
class ChartRelease:
    """One supported chart release and the facts the program needs about it."""

    version: str
    drivers: tuple[DocumentedDriver, ...]

    @property
    def key(self) -> tuple[int, int, int]:
        return chart_version_key(self.version)

    @property
    def lifecycle(self) -> str:
        return LIFECYCLE.get(self.key[:2], "unknown")

    @property
    def default_driver(self) -> str:
        return next(d.version for d in self.drivers if d.default)

    @property
    def documented_driver_versions(self) -> tuple[str, ...]:
        return tuple(d.version for d in self.drivers)

    def at_least(self, version: str) -> bool:
        return self.key >= chart_version_key(version)

    # --- behaviour that differs between releases -------------------------------------------------
    @property
    def has_nri_plugin(self) -> bool:
        """`cdi.nriPluginEnabled` exists from v26.3.0 (containerd 2.1, experimental)."""
        return self.at_least("v26.3.0")

    @property
    def supports_mps(self) -> bool:
        """MPS sharing in the device plugin arrived with chart v24.3.0."""
        return self.at_least("v24.3.0")

    @property
    def nvidiadriver_has_default_field(self) -> bool:
        """The NVIDIADriver CRD gained a required `spec.default` in v26.7.0."""
        return self.at_least("v26.7.0")

    @property
    def service_monitor_needs_crds(self) -> bool:
        """Up to v26.3.3 a DCGM ServiceMonitor without the prometheus-operator CRDs leaves ClusterPolicy notReady."""
        return not self.at_least("v26.7.0")

    @property
    def service_monitor_default(self) -> bool:
        """v26.7.0 enables the DCGM exporter's ServiceMonitor by default; earlier releases do not."""
        return self.at_least("v26.7.0")


@cache
def supported_releases() -> dict[str, ChartRelease]:
    by_chart: dict[str, list[DocumentedDriver]] = {}
    for chart, driver, flags in (row + [""] * (3 - len(row)) for row in _rows("drivers.tsv")):
        by_chart.setdefault(chart, []).append(DocumentedDriver(driver, "D" in flags, "R" in flags))
    releases = {chart: ChartRelease(chart, tuple(drivers)) for chart, drivers in by_chart.items()}
    return dict(sorted(releases.items(), key=lambda item: item[1].key))


@dataclass(frozen=True)
class EndOfLifeBranch:
    branch: str
    last_build: str
    container_builds: tuple[str, ...]


@cache
def end_of_life_branches() -> dict[str, EndOfLifeBranch]:
    return {branch: EndOfLifeBranch(branch, last, tuple(builds.split()))
            for branch, last, builds in _rows("driver-branches.tsv")}


def driver_branch(version: str) -> str:
    return version.split(".", 1)[0]


# Which platform rows of NVIDIA's support tables apply to a cluster, by its container-runtime preset.
SUPPORT_PLATFORMS = {"rke2": "rke2", "k3s": "k3s", "containerd": "kubernetes", "cri-o": "kubernetes"}


@cache
def kubernetes_support() -> dict[tuple[str, str], tuple[str, ...]]:
    """(chart release, platform) -> the Kubernetes minor releases NVIDIA validated (data/kubernetes-support.tsv)."""
    return {(chart, platform): tuple(versions.split())
            for chart, platform, versions, _commit in _rows("kubernetes-support.tsv")}
