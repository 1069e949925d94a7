"""Check manifests the way the API server would: Kubernetes' OpenAPI schemas and custom resources' CRD schemas.

Built-in kinds are checked against the strict JSON schemas that `kubernetes-validate` ships for each
Kubernetes minor release (unknown fields rejected, as `kubectl apply --validate=strict`). Custom resources
are checked against the `openAPIV3Schema` of their CRD, read from the upstream data folder (never committed),
with unknown fields rejected where the CRD does not preserve them (the API server would silently prune them).
Validators are built once per schema and cached: checking a few thousand manifests stays cheap.
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml



def _schema_root() -> Path:
    import kubernetes_validate

    return Path(kubernetes_validate.__file__).resolve().parent / "kubernetes-json-schema"


class SchemaNotFound(Exception):
    """No schema for this apiVersion/kind (neither built in nor from a known CRD)."""


@dataclass(frozen=True)
class Finding:
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


@cache
def _schema_dir(kubernetes_version: str) -> Path:
    root = _schema_root()
    wanted = tuple(int(p) for p in kubernetes_version.split(".")[:2])
    available = sorted(
        (tuple(int(p) for p in m.group(1).split(".")[:2]), d)
        for d in root.iterdir() if (m := re.match(r"^v(\d+\.\d+)\.\d+-local-strict$", d.name)))
    candidates = [d for version, d in available if version <= wanted]
    if not candidates:
        raise SchemaNotFound(f"no Kubernetes schemas for {kubernetes_version} in kubernetes-validate")
    return candidates[-1]


@cache
def _registry(kubernetes_version: str) -> referencing.Registry:
    definitions = json.loads((_schema_dir(kubernetes_version) / "_definitions.json").read_text())
    resource = referencing.Resource.from_contents(definitions)
    return referencing.Registry().with_resource("https://kubernetes.io/api/_definitions.json", resource)


@cache
def _builtin_validator(kubernetes_version: str, api_version: str, kind: str) -> jsonschema.protocols.Validator:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _schema_dir(kubernetes_version) / f"{kind.lower()}-{group_version}.json"
    if not path.exists():
        raise SchemaNotFound(f"Kubernetes {kubernetes_version} has no built-in kind {api_version}/{kind}")
    schema = json.loads(path.read_text())
    schema.setdefault("$id", f"https://kubernetes.io/api/{path.name}")
    return jsonschema.Draft202012Validator(schema, registry=_registry(kubernetes_version))


def _strict(schema: Any) -> Any:
    """Reject unknown fields wherever a CRD lists its properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: _strict(v) for k, v in schema.items()}
        if ("properties" in out and "additionalProperties" not in out
                and not out.get("x-kubernetes-preserve-unknown-fields")):
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [_strict(v) for v in schema]
    return schema


_CRD_HEAD = re.compile(r"^  group: (?P<group>\S+)$.*?^    kind: (?P<kind>\w+)$", re.M | re.S)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: CRDs are large


class CrdSchemas:
    """Validators for custom resources, from CRD files; a file is parsed only when its kind is checked."""

    def __init__(self, crd_files: Iterable[Path]):
        self._files: dict[tuple[str, str], Path] = {}  # (group, kind) -> file, from each file's head
        self._unindexed: list[Path] = []
        for path in crd_files:
            match = _CRD_HEAD.search(path.read_text()[:4096])
            if match:
                self._files[(match["group"], match["kind"])] = path
            else:
                self._unindexed.append(path)
        self._schemas: dict[tuple[str, str], dict[str, Any]] = {}
        self._validators: dict[tuple[str, str], jsonschema.protocols.Validator] = {}
        self._parsed: set[Path] = set()

    def _load(self, path: Path) -> None:
        if path in self._parsed:
            return
        self._parsed.add(path)
        for crd in yaml.load_all(path.read_text(), Loader=_YAML_LOADER):
            if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
                continue
            spec = crd["spec"]
            for version in spec["versions"]:
                key = (f"{spec['group']}/{version['name']}", spec["names"]["kind"])
                # metadata stays `type: object` (the API server checks it, not the CRD)
                self._schemas[key] = _strict(version["schema"]["openAPIV3Schema"])

    def knows(self, api_version: str, kind: str) -> bool:
        group = api_version.split("/")[0]
        path = self._files.get((group, kind))
        for candidate in ([path] if path else []) + self._unindexed:
            self._load(candidate)
        return (api_version, kind) in self._schemas

    def validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator:
        key = (api_version, kind)
        if key not in self._validators:
            if not self.knows(api_version, kind):
                raise SchemaNotFound(f"no CRD schema for {api_version}/{kind}")
            self._validators[key] = jsonschema.Draft7Validator(self._schemas[key])
        return self._validators[key]


def upstream_crd_files(upstream: Path, chart_version: str) -> list[Path]:
    """The gpu-operator CRDs of `chart_version` (or the newest upstream tag of the same minor) and the
    prometheus-operator CRDs."""
    operator_dir = upstream / "gpu-operator"
    tags = sorted((d.name for d in operator_dir.iterdir() if (d / "crds").is_dir()),
                  key=lambda t: tuple(int(p) for p in t.lstrip("v").split(".")))
    minor = ".".join(chart_version.split(".")[:2])
    same = [t for t in tags if t == chart_version] or [t for t in tags if t.startswith(minor + ".")]
    files = sorted((operator_dir / same[-1] / "crds").glob("*.yaml")) if same else []
    return files + sorted((upstream / "prometheus-operator").glob("*.yaml"))


def validate(manifest: dict[str, Any], *, kubernetes_version: str, crds: CrdSchemas | None = None) -> list[Finding]:
    """Every schema violation of `manifest` (empty when valid); raises SchemaNotFound for unknown kinds."""
    api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [Finding("", "apiVersion and kind are required")]
    if crds is not None and crds.knows(api_version, kind):
        validator = crds.validator(api_version, kind)
    else:
        validator = _builtin_validator(kubernetes_version, api_version, kind)
    findings = []
    for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.absolute_path))):
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
        findings.append(Finding(path, error.message))
    return findings
