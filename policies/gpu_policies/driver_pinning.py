"""gpu-operator-driver-pinned: the GPU Operator chart and the NVIDIA driver it deploys are each pinned
to one exact version.

Checked: a ``helm.sh/v3:Release`` (or ``helm.sh/v4:Chart``) of the gpu-operator chart, a
``nvidia.com/v1:ClusterPolicy`` and every ``nvidia.com/v1alpha1:NVIDIADriver``.

- The chart version is one exact version (``v26.7.0``), not empty, not a range (Helm treats the field as
  a constraint and installs the newest match).
- While the driver is enabled (it is unless ``driver.enabled`` is the boolean false), its version is one
  exact bare version (``580.173.02``): not absent (then the chart's default, which moves with every chart
  release), not ``latest``, not OS-suffixed (the operator appends ``-<os>``), not a digest, and not a
  branch (``580``), which is only valid with ``usePrecompiled: true``, where the branch is required.
- With ``allowedDriverVersions`` in the config, the version must be one of them.

With ``driver.nvidiaDriverCRD.enabled`` and ``deployDefaultCR: false`` (or a ClusterPolicy with
``useNvidiaDriverCRD``) the drivers come from NVIDIADriver resources, which are checked on their own.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from pulumi_policy import PolicyConfigSchema, Severity

from .access import UNKNOWN, get, is_mapping, show
from .config import ConfigReader
from .guard import resource_policy
from .outcome import Outcome, not_applicable
from .resource import ResourceView, violation
from .tokens import CLUSTER_POLICY, HELM_CHART_V4, HELM_RELEASE, NVIDIA_DRIVER

NAME = "gpu-operator-driver-pinned"
CHART_NAME = "gpu-operator"
EXAMPLE_DRIVER = "580.173.02"
EXAMPLE_CHART = "v26.7.0"

EXACT_CHART = re.compile(r"^v?\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?\Z")
EXACT_DRIVER = re.compile(r"^\d+\.\d+(?:\.\d+)?\Z")
BRANCH = re.compile(r"^\d+\Z")
OS_SUFFIXED = re.compile(r"^(\d+\.\d+(?:\.\d+)?)-\S+\Z")


@dataclass(frozen=True)
class PinConfig:
    allowed_driver_versions: tuple[str, ...] | None = None


def parse_config(reader: ConfigReader) -> PinConfig:
    if reader.value("allowedDriverVersions") is None:
        return PinConfig()
    versions = reader.string_list("allowedDriverVersions", ())
    for version in versions:
        if not (EXACT_DRIVER.match(version) or BRANCH.match(version)):
            reader.error("allowedDriverVersions", f'contains "{version}"',
                         'list exact bare driver versions such as "580.173.02" (or a branch such as "580" '
                         "for usePrecompiled)")
    return PinConfig(allowed_driver_versions=versions)


# --- reading the resources --------------------------------------------------------------------------

@dataclass(frozen=True)
class DriverSetting:
    """The driver version one resource asks for, and where."""

    path: str                  # e.g. values.driver.version
    version: object            # as declared (None when absent)
    precompiled: bool
    absent_means: str          # what an absent version does, for the message


@dataclass(frozen=True)
class ReleaseInfo:
    """What a gpu-operator Helm release pins (any field may be UNKNOWN)."""

    chart_version: object
    chart_version_path: str
    driver: DriverSetting | None   # None when the driver is disabled or managed by NVIDIADriver CRs
    enabled_value: object          # values.driver.enabled as declared


def chart_reference(chart: str) -> tuple[str, str | None]:
    """(chart name, version embedded in a .tgz reference or None) from ``gpu-operator``,
    ``nvidia/gpu-operator``, ``oci://nvcr.io/nvidia/gpu-operator`` or ``.../gpu-operator-v26.7.0.tgz``."""
    last = chart.rstrip("/").rsplit("/", 1)[-1]
    if last.endswith(".tgz"):
        stem = last[: -len(".tgz")]
        match = re.match(r"^(.*?)-(v?\d+\.\d+\.\d+.*)$", stem)
        if match:
            return match.group(1), match.group(2)
        return stem, None
    return last, None


def inspect_release(view: ResourceView, unknowns: list[str]) -> ReleaseInfo | None:
    """The pins of a gpu-operator release; None if it is another chart (or the chart is unknown)."""
    props = view.props
    chart = get(props, "chart")
    if chart is UNKNOWN:
        unknowns.append("chart")
        return None
    if not isinstance(chart, str):
        return None
    name, embedded = chart_reference(chart)
    if name != CHART_NAME:
        return None
    chart_version = embedded if embedded is not None else get(props, "version")
    values = get(props, "values")
    version_path = "chart" if embedded else "version"
    if values is UNKNOWN:
        unknowns.append("values")
        return ReleaseInfo(chart_version, version_path, None, None)
    driver = get(values, "driver")
    if driver is UNKNOWN:
        unknowns.append("values.driver")
        return ReleaseInfo(chart_version, version_path, None, None)
    enabled = get(driver, "enabled")
    setting = None
    if enabled is UNKNOWN:
        unknowns.append("values.driver.enabled")
    elif enabled is not False:
        crd = get(driver, "nvidiaDriverCRD")
        crd_enabled, deploy_default = get(crd, "enabled"), get(crd, "deployDefaultCR")
        if crd_enabled is UNKNOWN or deploy_default is UNKNOWN:
            unknowns.append("values.driver.nvidiaDriverCRD")
        elif not (crd_enabled is True and deploy_default is False):
            precompiled = get(driver, "usePrecompiled")
            if precompiled is UNKNOWN:
                unknowns.append("values.driver.usePrecompiled")
            else:
                setting = DriverSetting("values.driver.version", get(driver, "version"), precompiled is True,
                                        "the driver follows the chart's default, which changes with every "
                                        "chart release")
    return ReleaseInfo(chart_version, version_path, setting, enabled)


def custom_resource_setting(view: ResourceView, unknowns: list[str]) -> DriverSetting | None:
    """The driver a ClusterPolicy or NVIDIADriver asks for; None when it deploys none."""
    spec = get(view.props, "spec")
    if spec is UNKNOWN:
        unknowns.append("spec")
        return None
    if view.type == CLUSTER_POLICY:
        driver = get(spec, "driver")
        if driver is UNKNOWN:
            unknowns.append("spec.driver")
            return None
        enabled, via_crd = get(driver, "enabled"), get(driver, "useNvidiaDriverCRD")
        if enabled is UNKNOWN or via_crd is UNKNOWN:
            unknowns.append("spec.driver.enabled" if enabled is UNKNOWN else "spec.driver.useNvidiaDriverCRD")
            return None
        if enabled is False or via_crd is True:
            return None
        precompiled = get(driver, "usePrecompiled")
        base, prefix = driver, "spec.driver"
    else:
        precompiled = get(spec, "usePrecompiled")
        base, prefix = spec, "spec"
    if precompiled is UNKNOWN:
        unknowns.append(f"{prefix}.usePrecompiled")
        return None
    return DriverSetting(f"{prefix}.version", get(base, "version"), precompiled is True,
                         "the driver version is not pinned")


def driver_problem(setting: DriverSetting, allowed: tuple[str, ...] | None) -> tuple[str, str] | None:
    """(problem, fix) for a driver version that is not one exact pin, or None when it is."""
    version = setting.version
    bare_fix = f'set it to one exact driver version, e.g. "{EXAMPLE_DRIVER}"'
    if version is None or version == "":
        return f"is not set, so {setting.absent_means}", bare_fix
    if not isinstance(version, str):
        return f"is {show(version)}, not a version string", bare_fix
    if version.strip().lower() == "latest":
        return f"is {show(version)}, which moves whenever NVIDIA publishes a driver", bare_fix
    if version.startswith("sha256:"):
        return (f"is a digest, which this policy cannot check against the allowed versions or NVIDIA's "
                f"component matrix", bare_fix)
    suffixed = OS_SUFFIXED.match(version)
    if suffixed:
        return (f"is {show(version)}, OS-suffixed; the operator appends -<os> itself",
                f'set it to the bare version "{suffixed.group(1)}"')
    if BRANCH.match(version):
        if not setting.precompiled:
            return (f"is {show(version)}, a driver branch, which is only valid with usePrecompiled: true",
                    f'set one exact version from the branch, e.g. "{EXAMPLE_DRIVER}"')
    elif EXACT_DRIVER.match(version):
        if setting.precompiled:
            branch = version.split(".", 1)[0]
            return (f"is {show(version)}, but with usePrecompiled: true the operator expects the driver branch",
                    f'set it to "{branch}"')
    else:
        return f"is {show(version)}, not one exact driver version", bare_fix
    if allowed is not None and version not in allowed:
        return (f"is {show(version)}, which is not in allowedDriverVersions ({', '.join(allowed) or 'empty'})",
                "use an allowed version, or add this one to allowedDriverVersions in the policy config "
                "after review")
    return None


def chart_problem(version: object) -> tuple[str, str] | None:
    fix = f'set it to one exact chart version, e.g. "{EXAMPLE_CHART}"'
    if version is None or version == "":
        return "is not set, so Helm installs whatever chart release is newest", fix
    if not isinstance(version, str):
        return f"is {show(version)}, not a version string", fix
    if not EXACT_CHART.match(version.strip()):
        return (f"is {show(version)}, a range or partial version that Helm resolves to the newest match at "
                f"install time", fix)
    return None


# --- the policy -------------------------------------------------------------------------------------

def evaluate(view: ResourceView, config: PinConfig) -> Outcome:
    unknowns: list[str] = []
    if view.type in (HELM_RELEASE, HELM_CHART_V4):
        info = inspect_release(view, unknowns)
        if info is None and not unknowns:
            return not_applicable("not the gpu-operator chart")
        outcome = Outcome(subject=view.display(), unknowns=unknowns)
        if info is None:
            return outcome
        if info.chart_version is UNKNOWN:
            unknowns.append(info.chart_version_path)
        else:
            problem = chart_problem(info.chart_version)
            if problem:
                outcome.add(violation(outcome.subject, None, info.chart_version_path, *problem))
        enabled = info.enabled_value
        if enabled is not None and enabled is not UNKNOWN and not isinstance(enabled, bool):
            outcome.add(violation(outcome.subject, None, "values.driver.enabled",
                                  f"is {show(enabled)}, not a boolean, so whether the chart deploys the driver "
                                  "depends on how each template reads it (the driver is checked as enabled)",
                                  "use the boolean false to disable the driver, or true"))
        setting = info.driver
    elif view.type in (CLUSTER_POLICY, NVIDIA_DRIVER):
        outcome = Outcome(subject=view.display(), unknowns=unknowns)
        setting = custom_resource_setting(view, unknowns)
    else:
        return not_applicable("applies to gpu-operator Helm releases, ClusterPolicy and NVIDIADriver")
    if setting is None:
        return outcome
    if setting.version is UNKNOWN:
        unknowns.append(setting.path)
        return outcome
    problem = driver_problem(setting, config.allowed_driver_versions)
    if problem:
        problem_text, fix = problem
        if view.type in (HELM_RELEASE, HELM_CHART_V4) and setting.version is None and _uses_value_files(view):
            problem_text += " (this policy cannot read valueYamlFiles; pin the version in values)"
        outcome.add(violation(outcome.subject, None, setting.path, problem_text, fix))
    return outcome


def _uses_value_files(view: ResourceView) -> bool:
    files = get(view.props, "valueYamlFiles")
    return files not in (None, UNKNOWN) and (is_mapping(files) or bool(files))


POLICY = resource_policy(
    name=NAME,
    description="The GPU Operator chart and the NVIDIA driver it deploys are each pinned to one exact version.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "allowedDriverVersions": {
            "type": "array", "items": {"type": "string", "pattern": r"^\d+(\.\d+(\.\d+)?)?$"},
            "description": "If set, the only driver versions (or, for usePrecompiled, branches) allowed. "
                           "Without it any exact version passes.",
        },
    }),
    severity=Severity.HIGH,
    remediation=(f'Pin the chart with version: "{EXAMPLE_CHART}" (no range) and the driver with '
                 f'values.driver.version: "{EXAMPLE_DRIVER}" (the bare version: no "-<os>" suffix, no '
                 f'"latest", no branch unless usePrecompiled: true, where the branch is required). '
                 "ClusterPolicy spec.driver.version and NVIDIADriver spec.version follow the same rule. "
                 "To run a pre-installed driver instead, set driver.enabled: false (a boolean)."),
)
