"""gpu-operator-driver-documented (advisory): the pinned driver is one NVIDIA documents for the pinned
chart release, per NVIDIA's GPU Operator component matrix (``driver_matrix``).

Advisory because an undocumented pair can be a deliberate, tested choice; the note makes it a reviewed
one. Only gpu-operator releases carry both versions: a ClusterPolicy or NVIDIADriver does not say which
operator release reconciles it, so it is not applicable here. When a version is absent or not exact,
gpu-operator-driver-pinned reports it and this policy has nothing to compare.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity

from . import driver_matrix
from .access import UNKNOWN, get, is_mapping, keys, seq, show
from .config import ConfigReader
from .guard import resource_policy
from .outcome import Outcome, not_applicable
from .resource import ResourceView, violation
from .tokens import HELM_CHART_V4, HELM_RELEASE
from .driver_pinning import BRANCH, EXACT_CHART, EXACT_DRIVER, inspect_release

NAME = "gpu-operator-driver-documented"


@dataclass(frozen=True)
class DocumentedConfig:
    additional: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # chart version (no v) -> drivers


def parse_config(reader: ConfigReader) -> DocumentedConfig:
    raw = reader.value("additionalDocumented")
    if raw is None:
        return DocumentedConfig()
    if not is_mapping(raw):
        reader.error("additionalDocumented", f"is {show(raw)}",
                     'give an object that maps a chart version to a list of driver versions, e.g. '
                     '{"26.7.0": ["580.173.02"]}')
        return DocumentedConfig()
    extra: dict[str, tuple[str, ...]] = {}
    for chart in keys(raw):
        drivers = seq(get(raw, chart))
        key = f"additionalDocumented.{chart}"
        if not EXACT_CHART.match(chart):
            reader.error(key, "is not an exact chart version", 'use a version such as "26.7.0"')
        elif not isinstance(drivers, list) or not all(isinstance(d, str) and EXACT_DRIVER.match(d) for d in drivers):
            reader.error(key, f"is {show(get(raw, chart))}", 'give a list of exact driver versions such as "580.173.02"')
        else:
            extra[chart.lstrip("v")] = tuple(drivers)
    return DocumentedConfig(MappingProxyType(extra))


def evaluate(view: ResourceView, config: DocumentedConfig) -> Outcome:
    if view.type not in (HELM_RELEASE, HELM_CHART_V4):
        return not_applicable("only a gpu-operator Helm release names both the chart and the driver version")
    unknowns: list[str] = []
    info = inspect_release(view, unknowns)
    outcome = Outcome(subject=view.display(), unknowns=unknowns)
    if info is None:
        if not unknowns:
            outcome.not_applicable = "not the gpu-operator chart"
        return outcome
    chart, setting = info.chart_version, info.driver
    if chart is UNKNOWN:
        unknowns.append(info.chart_version_path)
    if setting is not None and setting.version is UNKNOWN:
        unknowns.append(setting.path)
    if unknowns:
        return outcome
    if setting is None:
        outcome.not_applicable = "the release deploys no driver of its own"
        return outcome
    version = setting.version
    exact = BRANCH if setting.precompiled else EXACT_DRIVER
    if not (isinstance(chart, str) and EXACT_CHART.match(chart.strip()) and isinstance(version, str)
            and exact.match(version)):
        outcome.not_applicable = "chart or driver version is not exact (gpu-operator-driver-pinned reports it)"
        return outcome
    release = chart.strip().lstrip("v").split("+", 1)[0]
    listed = driver_matrix.documented_drivers(release)
    extra = config.additional.get(release, ())
    if listed is None and not extra:
        known = list(driver_matrix.MATRIX)
        outcome.add(violation(
            outcome.subject, None, info.chart_version_path,
            f"is {show(chart)}, which the pack's component matrix does not cover ({known[0]} to {known[-1]}), "
            f"so driver {version} cannot be checked",
            "check NVIDIA's component matrix for this release and add the pair under additionalDocumented "
            "in this policy's config (or update the pack's driver_matrix)"))
        return outcome
    documented = [d for d, _ in (listed or ())] + list(extra)
    if setting.precompiled:
        ok = any(d.split(".", 1)[0] == version for d in documented)
    else:
        ok = version in documented
    if not ok:
        shown = driver_matrix.describe(listed) if listed else ""
        if extra:
            shown = ", ".join(filter(None, [shown, "config: " + ", ".join(extra)]))
        outcome.add(violation(
            outcome.subject, None, setting.path,
            f"is {show(version)}, which NVIDIA does not document for chart {chart} (documented: {shown})",
            "pin a documented driver, or pre-install the driver on the hosts and set values.driver.enabled: false"))
    return outcome


POLICY = resource_policy(
    name=NAME,
    description="The pinned driver is one NVIDIA documents for the pinned GPU Operator release.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "additionalDocumented": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Extra (chart version -> driver versions) pairs to treat as documented, e.g. for a "
                           "release newer than the pack's table.",
        },
    }),
    severity=Severity.MEDIUM,
    enforcement_level=EnforcementLevel.ADVISORY,
    remediation=("Pick a driver from NVIDIA's component matrix for the pinned chart release (for chart v26.7.0: "
                 "610.57.04, 595.91.07, 580.173.02 or 535.309.01), or pre-install the driver and set "
                 "driver.enabled: false."),
)
