"""What an offline plan found, and what a resource is called in its reports.

Shared by the plan (tools/plan.py) and its reports (tools/plan_report.py), so neither imports the other's
internals: the plan builds a `Plan`, the reports only read one.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


@dataclass(frozen=True)
class Location:
    """A line in a file of the program's repository (absolute here; reports make it relative)."""

    file: Path
    line: int
    key: str = ""  # the config key path, when the line is a stack-file key


@dataclass
class SchemaResult:
    urn: str
    resource: str
    schema: str
    findings: list[str]
    declared_at: Location | None = None


@dataclass
class Unchecked:
    """A manifest whose schema check could not run: the data it needs (its CRD) is missing."""

    urn: str
    resource: str
    reason: str  # what is missing, where it was looked for, and the fix
    declared_at: Location | None = None


@dataclass
class Verdict:
    policy: str
    level: str
    severity: str
    urn: str
    resource: str
    message: str
    declared_at: Location | None = None  # the program line that declared the resource
    config_key: Location | None = None  # the stack-file key its judged value came from, where knowable

    def summary(self) -> str:
        """One line naming the resource once: the pack's messages already start with "Kind ns/name"."""
        return self.message if self.message.startswith(self.resource) else f"{self.resource}: {self.message}"

    def locations(self) -> list[Location]:
        """Where a reviewer should see it: the config key first (what a change to the stack edits), then the
        program line."""
        return [where for where in (self.config_key, self.declared_at) if where is not None]


@dataclass
class Problem:
    """One config or program error, and where it is: a config key's line in the stack file, or a program line."""

    message: str
    where: Location


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
    interpreter: str = ""  # which Python ran the program (its own virtualenv, as the CLI would, or this one)
    repository: Path | None = None  # the checkout that holds the program: report paths are relative to it
    # Manifests that could not be checked because the data to check them is missing (the CRDs of the
    # upstream data folder): the plan is incomplete, never a pass.
    unchecked: list[Unchecked] = field(default_factory=list)

    @property
    def mandatory(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.level == "mandatory"]

    @property
    def invalid(self) -> list[SchemaResult]:
        return [r for r in self.schema_results if r.findings]

    @property
    def exit_code(self) -> int:
        """0 clean; 1 a mandatory violation or an invalid manifest; 2 incomplete (a manifest left unchecked)."""
        if self.mandatory or self.invalid:
            return 1
        return 2 if self.unchecked else 0


@dataclass
class Failure:
    """A plan that could not run (a config or program error), for the machine-readable reports."""

    stack: str
    message: str
    stack_file: Path
    repository: Path
    problems: list[Problem]


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
