"""What an offline plan found, and what a resource is called in its reports.

Shared by the plan (tools/plan.py) and its reports (tools/plan_report.py), so neither imports the other's
internals: the plan builds a `Plan`, the reports only read one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass
class SchemaResult:
    urn: str
    resource: str
    schema: str
    findings: list[str]


@dataclass
class Verdict:
    policy: str
    level: str
    severity: str
    urn: str
    resource: str
    message: str


@dataclass
class Plan:
    stack: str
    program_dir: Path
    stack_file: Path
    resources: list[Any]
    outputs: dict[str, Any]
    kubernetes_version: str
    pack: str = ""
    policy_config: str = ""
    policies: list[Any] = field(default_factory=list)
    schema_results: list[SchemaResult] = field(default_factory=list)
    schema_notes: list[str] = field(default_factory=list)
    verdicts: list[Verdict] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def mandatory(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.level == "mandatory"]

    @property
    def invalid(self) -> list[SchemaResult]:
        return [r for r in self.schema_results if r.findings]

    @property
    def exit_code(self) -> int:
        return 1 if self.mandatory or self.invalid else 0


# --- what a resource is called in reports ------------------------------------------------------------------

def is_manifest(resource: Any) -> bool:
    return resource.custom and resource.type.startswith("kubernetes:") and resource.type != HELM_RELEASE


def describe(resource: Any) -> str:
    inputs = resource.inputs
    if resource.type == HELM_RELEASE:
        return f"helm release {inputs.get('name') or resource.name} ({inputs.get('chart')} {inputs.get('version')})"
    if is_manifest(resource):
        metadata = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
        name = metadata.get("name") or resource.name
        namespace = metadata.get("namespace")
        return f"{inputs.get('kind', resource.type.rsplit(':', 1)[-1])} {namespace + '/' if namespace else ''}{name}"
    return f"{resource.type} {resource.name}"


def namespace_of(resource: Any) -> str:
    inputs = resource.inputs
    if resource.type == HELM_RELEASE:
        return str(inputs.get("namespace") or "default")
    metadata = inputs.get("metadata") if isinstance(inputs.get("metadata"), dict) else {}
    return str(metadata.get("namespace") or "(cluster)")
