"""The NVIDIA driver: three ways to manage it, the upgrade policy, and per-pool NVIDIADriver resources.

- `operator`: the operator installs one pinned driver on every GPU node (`driver.version`).
- `host`: the driver is pre-installed on the hosts (`driver.enabled: false`); the expected version is
  recorded on the nodes so it can be verified against what GFD reports.
- `perPool`: `driver.nvidiaDriverCRD.enabled`, one NVIDIADriver per node pool, each with its own version.
"""
from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import (
    Field,
    ModelWrapValidatorHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from .base import ConfigModel, ConfigProblems, ImageRepository, K8sName, Labels, LabelSelector, Path, format_path
from .releases import DRIVER_VERSION_RE, ChartRelease, driver_branch, end_of_life_branches

DriverMode = Literal["operator", "host", "perPool"]
DEFAULT_DRIVER_REPOSITORY = "nvcr.io/nvidia"
MAX_NODES = 5000  # the largest cluster Kubernetes supports; a larger count is a typo
MAX_TIMEOUT_SECONDS = 7 * 86400  # a week; 0 is "forever" where the operator allows it


class WaitForCompletion(ConfigModel):
    """Wait for matching pods (jobs) to finish before a node's driver is replaced."""

    timeout_seconds: int = Field(default=0, ge=0, le=MAX_TIMEOUT_SECONDS, description="0 waits forever.")
    pod_selector: LabelSelector = Field(default="", description=(
        "A label selector (app=training) for the pods to wait for; empty: none."))


class GpuPodDeletion(ConfigModel):
    """How GPU pods are removed from a node before its driver is replaced."""

    timeout_seconds: int = Field(ge=0, le=MAX_TIMEOUT_SECONDS, description=(
        "How long the operator waits for GPU pods to go (0 waits forever)."))
    force: bool = Field(default=False, description="Also delete GPU pods that no controller owns.")
    delete_empty_dir: bool = Field(default=False, description=(
        "Also delete GPU pods that use emptyDir volumes (their data is lost)."))


class Drain(ConfigModel):
    """Whether to drain the whole node (`kubectl drain`) when deleting GPU pods is not enough."""

    enable: bool
    force: bool = False
    pod_selector: LabelSelector = Field(default="", description="A label selector for the pods to drain; empty: all.")
    timeout_seconds: int = Field(default=300, ge=0, le=MAX_TIMEOUT_SECONDS)
    delete_empty_dir: bool = False


class UpgradePolicy(ConfigModel):
    """How a driver change rolls over the nodes: each node is cordoned, GPU pods go, the driver reloads."""

    auto_upgrade: bool = Field(default=True, description=(
        "Let the operator's upgrade controller roll driver changes node by node."))
    max_parallel_upgrades: int = Field(ge=0, le=MAX_NODES, description=(
        "Nodes upgraded at once; 1 = one node at a time, 0 = all at once."))
    max_unavailable: int | str = Field(default=1, description=(
        "Nodes with a driver that may be unavailable at once: a number from 1, or a percentage from \"1%\" to "
        "\"100%\". Not 0: the chart turns 0 into 25% (`| default \"25%\"`), and \"0%\" lets no node upgrade."))
    wait_for_completion: WaitForCompletion = WaitForCompletion()
    gpu_pod_deletion: GpuPodDeletion
    drain: Drain

    @field_validator("max_unavailable", mode="before")
    @classmethod
    def _some_node_may_upgrade(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise ValueError('give a number of nodes (1, 2, ...) or a percentage ("25%")')
        if value == 0:
            raise ValueError('0 is not passed on: the chart writes `maxUnavailable | default "25%"`, so 0 becomes '
                             "25% of the GPU nodes; one node at a time is maxUnavailable: 1 with "
                             "maxParallelUpgrades: 1")
        if isinstance(value, int) and value < 0:
            raise ValueError("a number of nodes cannot be negative; give 1 or more")
        if isinstance(value, int) and value > MAX_NODES:
            raise ValueError(f"more nodes than a Kubernetes cluster supports ({MAX_NODES}); give a number of nodes "
                             'or a percentage ("100%" is every node)')
        if isinstance(value, str):
            match = re.fullmatch(r"(\d{1,3})%", value)
            if not match or not 1 <= int(match.group(1)) <= 100:
                raise ValueError('give a percentage from "1%" to "100%" (or a number of nodes); "0%" would let no '
                                 "node be upgraded, so a driver change would never roll out")
        return value

    def chart_values(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True, mode="json")


class DriverPool(ConfigModel):
    """One node pool with its own driver (an NVIDIADriver resource)."""

    name: K8sName
    node_selector: Labels = Field(min_length=1, description=(
        "Labels that pick the pool's nodes; pools must not be able to select the same node."))
    version: str
    use_precompiled: bool = False


class DriverConfig(ConfigModel):
    """The driver: who installs it, which version, and how changes roll out."""

    mode: DriverMode = Field(description=(
        "operator: one pinned driver; host: pre-installed on the hosts; perPool: one NVIDIADriver per pool."))
    version: str | None = Field(default=None, description=(
        "mode operator: one exact, bare version documented for the pinned chart release (e.g. 580.173.02)."))
    host_version: str | None = Field(default=None, description=(
        "mode host: the version installed on the hosts, recorded on the nodes for verification."))
    pools: list[DriverPool] | None = Field(default=None, description="mode perPool: the pools and their drivers.")
    use_precompiled: bool = Field(default=False, description=(
        "Precompiled driver packages (then `version` is a branch such as \"580\")."))
    kernel_module_type: Literal["auto", "open", "proprietary"] | None = None
    repository: ImageRepository | None = Field(default=None, description=(
        "A mirror of nvcr.io/nvidia that holds the driver images (registry/path, no scheme)."))
    allow_undocumented_version: bool = Field(default=False, description=(
        "Accept a version NVIDIA does not document for the pinned chart release (a warning instead of an error)."))
    upgrade_policy: UpgradePolicy | None = Field(default=None, description=(
        "Required in modes operator and perPool: every driver change disrupts GPU workloads."))

    @model_validator(mode="wrap")
    @classmethod
    def _rules(cls, data: Any, handler: ModelWrapValidatorHandler["DriverConfig"]) -> "DriverConfig":
        """The mode's required and unused fields, the version's form and the pools' overlap.

        Also when another field of the driver is invalid (a bad upgradePolicy number must not hide a bad version):
        then the rules run on the fields that are valid, and both kinds of problem are reported together."""
        try:
            driver = handler(data)
        except ValidationError as error:
            problems = _rules_of_valid_fields(cls, data, error)
            if not problems:
                raise
            raise ValidationError.from_exception_data(cls.__name__, [
                *(_again(item) for item in error.errors()),
                {"type": "value_error", "loc": (), "input": data, "ctx": {"error": ConfigProblems(problems)}},
            ]) from None
        problems = driver_rules(driver)
        if problems:
            raise ConfigProblems(problems)
        return driver


def _again(item: Any) -> Any:
    """A pydantic error of `error.errors()` as the line error it was raised as."""
    detail = {"type": item["type"], "loc": item["loc"], "input": item["input"]}
    if item.get("ctx"):
        detail["ctx"] = item["ctx"]
    return detail


def _rules_of_valid_fields(cls: type["DriverConfig"], data: Any, error: ValidationError) -> list[tuple[Path, str]]:
    """driver_rules on the fields that validated, leaving out what reads an invalid field."""
    if not isinstance(data, dict):
        return []
    invalid = {item["loc"][0] for item in error.errors() if item["loc"]}
    fields: dict[str, Any] = {}
    for name, field in cls.model_fields.items():
        key = field.alias or name
        if key in invalid or key not in data:
            continue
        try:
            fields[name] = TypeAdapter(field.annotation).validate_python(data[key], strict=True)
        except ValidationError:
            invalid.add(key)
    if "mode" not in fields:
        return []  # every rule depends on the mode
    partial = cls.model_construct(**fields)
    return [(path, message) for path, message in driver_rules(partial) if path[0] not in invalid]


def version_form_problem(version: str | None, *, use_precompiled: bool) -> str | None:
    """Why `version` is not one exact bare driver version, or None."""
    if version is None or version == "":
        return ("a driver version is required; without one the chart's default applies, and it moves with every "
                "chart release")
    if version.lower() == "latest":
        return "'latest' is not a pin; write one exact version such as 580.173.02"
    if "-" in version and DRIVER_VERSION_RE.fullmatch(version.split("-", 1)[0]):
        return (f"write the bare version {version.split('-', 1)[0]!r}: the operator appends -<os> itself "
                "(NVIDIA/gpu-operator#690)")
    if version.isdigit():
        if use_precompiled:
            return None
        return f"{version!r} is a branch; a branch is only valid with usePrecompiled: true. Write one exact version"
    match = DRIVER_VERSION_RE.fullmatch(version)
    if not match or match.group(3) is None:
        return f"{version!r} is not one exact driver version of the form 580.173.02"
    if use_precompiled:
        # The pack's gpu-operator-driver-pinned refuses this too: precompiled packages are named by branch.
        return (f"with usePrecompiled: true the operator installs a precompiled driver by branch: write "
                f"{match.group(1)!r}, not {version!r}")
    return None


def documented_problem(version: str, release: ChartRelease, version_key: str) -> str | None:
    """Why `version` cannot be installed by the operator with `release`, with the routes that work; or None."""
    if version in release.documented_driver_versions:
        return None
    listing = ", ".join(
        d.version + (" (default, recommended)" if d.default and d.recommended else " (default)" if d.default
                     else " (recommended)" if d.recommended else "")
        for d in release.drivers)
    message = f"NVIDIA documents these drivers for chart {release.version}: {listing}; {version} is not one of them."
    eol = end_of_life_branches().get(driver_branch(version))
    if eol is not None:
        builds = ", ".join(eol.container_builds)
        if version not in eol.container_builds:
            message += (f" {version} is not a data-center driver build: NVIDIA's driver-container CI built branch "
                        f"R{eol.branch} only as {builds}, so no image nvcr.io/nvidia/driver:{version}-<os> exists")
        else:
            message += f" Branch R{eol.branch} is no longer built"
        message += f", and R{eol.branch} is end of life (last built {eol.last_build})."
    example = next((d.version for d in release.drivers if d.recommended), release.default_driver)
    message += (f" Two routes work: (1) pin a driver documented for {release.version} ({version_key}: {example}, "
                f"for example); (2) install {version} on the hosts yourself and set driver.mode: host with "
                f"driver.hostVersion: \"{version}\" (the operator then labels the node "
                "nvidia.com/gpu.deploy.driver=pre-installed).")
    return message


def driver_rules(driver: "DriverConfig") -> list[tuple[Path, str]]:
    """The rules that need only the driver section (run even when other sections are invalid)."""
    problems: list[tuple[Path, str]] = []
    unused = {"operator": ("host_version", "pools"), "host": ("version", "pools", "upgrade_policy"),
              "perPool": ("version", "host_version")}[driver.mode]
    for attr in unused:
        if getattr(driver, attr) is not None:
            alias = DriverConfig.model_fields[attr].alias or attr
            problems.append(((alias,), f"not used with driver.mode: {driver.mode}; remove it"))
    if driver.mode != "host" and driver.upgrade_policy is None:
        problems.append((("upgradePolicy",), "required: a driver change cordons nodes and removes GPU pods, so say how "
                                             "(maxParallelUpgrades, gpuPodDeletion.timeoutSeconds, drain.enable)"))
    if driver.mode == "operator":
        form = version_form_problem(driver.version, use_precompiled=driver.use_precompiled)
        if form:
            problems.append((("version",), form))
    elif driver.mode == "host":
        form = version_form_problem(driver.host_version, use_precompiled=False)
        if form:
            problems.append((("hostVersion",), form))
    else:
        if not driver.pools:
            problems.append((("pools",), "driver.mode: perPool needs at least one pool"))
        for index, pool in enumerate(driver.pools or []):
            form = version_form_problem(pool.version, use_precompiled=pool.use_precompiled)
            if form:
                problems.append((("pools", index, "version"), form))
        problems += _overlapping_pools(driver.pools or [])
    return problems


def release_problems(driver: "DriverConfig", release: ChartRelease) -> list[tuple[Path, str]]:
    """Versions the operator cannot install with the pinned chart release (paths relative to `driver`); none when
    allowUndocumentedVersion is set (then they are warnings: undocumented_versions)."""
    return [] if driver.allow_undocumented_version else undocumented_versions(driver, release)


def undocumented_versions(driver: "DriverConfig", release: ChartRelease) -> list[tuple[Path, str]]:
    """Every pinned version NVIDIA does not document for `release`, with why and the routes that work."""
    pinned: list[tuple[Path, str, bool]] = []
    if driver.mode == "operator" and driver.version:
        pinned.append((("version",), driver.version, driver.use_precompiled))
    if driver.mode == "perPool":
        pinned += [(("pools", i, "version"), p.version, p.use_precompiled) for i, p in enumerate(driver.pools or [])]
    problems: list[tuple[Path, str]] = []
    for path, version, precompiled in pinned:
        if precompiled or version_form_problem(version, use_precompiled=precompiled):
            continue  # a branch, or already reported by driver_rules
        documented = documented_problem(version, release, format_path(("gpuOperator", "driver", *path)))
        if documented:
            problems.append((path, documented))
    return problems


def selectors_disjoint(a: dict[str, str], b: dict[str, str]) -> bool:
    """Equality selectors can never match the same node only if they require different values for one key."""
    return any(key in b and b[key] != value for key, value in a.items())


def _overlapping_pools(pools: list[DriverPool]) -> list[tuple[Path, str]]:
    problems: list[tuple[Path, str]] = []
    names = [pool.name for pool in pools]
    for index, pool in enumerate(pools):
        if names.index(pool.name) != index:
            problems.append((("pools", index, "name"), f"pool name {pool.name!r} is used twice"))
        for other_index in range(index):
            other = pools[other_index]
            if not selectors_disjoint(pool.node_selector, other.node_selector):
                problems.append((("pools", index, "nodeSelector"),
                                 f"can select the same nodes as pool {other.name!r} ({other.node_selector}); "
                                 "two NVIDIADrivers on one node fight over it. Make the selectors require "
                                 "different values for a common label key"))
    return problems


class DriverPools(pulumi.ComponentResource):
    """One NVIDIADriver per pool (driver.mode: perPool); the chart's CRDs must exist first."""

    def __init__(self, name: str, pools: list[DriverPool], *, release: ChartRelease, repository: str | None,
                 image_pull_secrets: list[str] | None, after: Sequence[pulumi.Resource] = (),
                 opts: pulumi.ResourceOptions | None = None):
        """`after`: the release that installs the NVIDIADriver CRD."""
        super().__init__("gpu-platform:driver:DriverPools", name, None, opts)
        self.drivers = [
            k8s.apiextensions.CustomResource(
                f"{name}-{pool.name}",
                api_version="nvidia.com/v1alpha1",
                kind="NVIDIADriver",
                metadata={"name": pool.name},
                spec=nvidia_driver_spec(pool, release, repository, image_pull_secrets),
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(after)),
            )
            for pool in pools
        ]
        self.register_outputs({"drivers": [d.metadata["name"] for d in self.drivers]})


def nvidia_driver_spec(pool: DriverPool, release: ChartRelease, repository: str | None,
                       image_pull_secrets: list[str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "driverType": "gpu",
        "repository": repository or DEFAULT_DRIVER_REPOSITORY,
        "image": "driver",
        "version": pool.version,
        "usePrecompiled": pool.use_precompiled,
        "nodeSelector": dict(pool.node_selector),
    }
    if release.nvidiadriver_has_default_field:
        spec["default"] = False  # required from v26.7.0; a pool is never the fallback driver
    if image_pull_secrets:
        spec["imagePullSecrets"] = list(image_pull_secrets)
    return spec
