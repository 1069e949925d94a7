"""Factories for policy tests: validation args built directly (as pulumi-policy's own tests do), a runner
that collects what a validator reports, and compliant baselines that each test changes in one place."""
from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pulumi_policy import (
    PolicyCustomTimeouts, PolicyProviderResource, PolicyResource, PolicyResourceOptions, ResourceValidationArgs,
    StackValidationArgs,
)
from pulumi_policy.policy import _NotApplicableError
from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

from gpu_policies.config import reset_reported_config_errors
from gpu_policies.tokens import POD_PATHS

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policies"
LAB_CONFIG = PACK_DIR / "config" / "lab.json"

# kind -> Pulumi type token, for every pod-bearing kind the issue names
WORKLOAD_TOKENS = {
    "Pod": "kubernetes:core/v1:Pod",
    "PodTemplate": "kubernetes:core/v1:PodTemplate",
    "ReplicationController": "kubernetes:core/v1:ReplicationController",
    "Deployment": "kubernetes:apps/v1:Deployment",
    "ReplicaSet": "kubernetes:apps/v1:ReplicaSet",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet",
    "DaemonSet": "kubernetes:apps/v1:DaemonSet",
    "Job": "kubernetes:batch/v1:Job",
    "CronJob": "kubernetes:batch/v1:CronJob",
}
KINDS = list(WORKLOAD_TOKENS)
CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
URN_PREFIX = "urn:pulumi:lab::gpu-platform::"


def spec_path(kind: str) -> str:
    """Where a kind keeps its pod spec, as messages name it (spec, template.spec, spec.template.spec, ...)."""
    return ".".join(POD_PATHS[kind][1])


def options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)


def resource_args(type_: str, props: Any, *, name: str = "res", config: dict | None = None,
                  provider_props: dict | None = None, proxy: bool = False) -> ResourceValidationArgs:
    provider = (PolicyProviderResource("pulumi:providers:kubernetes", provider_props, "urn:provider", "k8s")
                if provider_props is not None else None)
    if proxy:
        props = unknown_checking_proxy(props)
    return ResourceValidationArgs(type_, props, f"{URN_PREFIX}{type_}::{name}", name, options(), provider, config)


def stack_args(resources: list[tuple[str, str, Any]], config: dict | None = None, *,
               proxy: bool = False) -> StackValidationArgs:
    """Stack args; ``proxy`` wraps each resource's props as pulumi-policy does for AnalyzeStack."""
    return StackValidationArgs([
        PolicyResource(type_, unknown_checking_proxy(props) if proxy else props, f"{URN_PREFIX}{type_}::{name}",
                       name, options(), None, None, [], {})
        for type_, name, props in resources], config)


@dataclass
class Reported:
    """What one validator call produced."""

    messages: list[str] = field(default_factory=list)
    urns: list[str | None] = field(default_factory=list)
    not_applicable: str | None = None
    unknown: str | None = None


def run(policy: Any, args: Any) -> Reported:
    """Call a policy's validator the way the SDK does and collect messages, not-applicable and unknowns."""
    reported = Reported()

    def report(message: str, urn: str | None = None) -> None:
        reported.messages.append(message)
        reported.urns.append(urn)

    try:
        policy.validate(args, report)
    except _NotApplicableError as exc:
        reported.not_applicable = exc.reason
    except UnknownValueError as exc:
        reported.unknown = exc.message
    return reported


def check(policy: Any, type_: str, props: Any, **kwargs: Any) -> Reported:
    reset_reported_config_errors()
    return run(policy, resource_args(type_, props, **kwargs))


# --- compliant baselines ------------------------------------------------------------------------------

def restricted_container(name: str = "main", image: str = "registry.example/app:1.2.3") -> dict[str, Any]:
    return {
        "name": name,
        "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }


def restricted_pod_spec() -> dict[str, Any]:
    """A pod spec that meets the restricted profile, with one container in each list."""
    return {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [restricted_container("main")],
        "initContainers": [restricted_container("init")],
        "ephemeralContainers": [restricted_container("debug")],
    }


def workload(kind: str, pod_spec: dict[str, Any] | None = None, *, namespace: str | None = "tenant-a",
             name: str = "app", pod_annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """Props of a pod-bearing resource of ``kind`` whose pod spec is ``pod_spec``."""
    meta_keys, spec_keys = POD_PATHS[kind]
    props: dict[str, Any] = {"metadata": {"name": name}}
    if namespace is not None:
        props["metadata"]["namespace"] = namespace
    spec = copy.deepcopy(pod_spec if pod_spec is not None else restricted_pod_spec())
    _put(props, spec_keys, spec)
    if kind != "Pod":
        _put(props, meta_keys, {"labels": {"app": name}})
    if pod_annotations:
        target = props
        for key in meta_keys:
            target = target.setdefault(key, {})
        target["annotations"] = dict(pod_annotations)
    return props


def _put(root: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    for key in keys[:-1]:
        root = root.setdefault(key, {})
    root[keys[-1]] = value


def set_path(obj: Any, path: str, value: Any) -> Any:
    """Set ``a.b[0].c`` in nested dicts/lists (creating dicts on the way); returns ``obj``."""
    parts = _split(path)
    target = obj
    for part, following in zip(parts, parts[1:]):
        if isinstance(part, int):
            target = target[part]
        else:
            target = target.setdefault(part, [] if isinstance(following, int) else {})
    last = parts[-1]
    if isinstance(last, int):
        target[last] = value
    else:
        target[last] = value
    return obj


def delete_path(obj: Any, path: str) -> Any:
    parts = _split(path)
    target = obj
    for part in parts[:-1]:
        target = target[part]
    del target[parts[-1]]
    return obj


def _split(path: str) -> list[str | int]:
    parts: list[str | int] = []
    for piece in path.split("."):
        while "[" in piece:
            head, _, rest = piece.partition("[")
            if head:
                parts.append(head)
            index, _, piece = rest.partition("]")
            parts.append(int(index))
        if piece:
            parts.append(piece)
    return parts


def gpu_release(**driver: Any) -> dict[str, Any]:
    """The gpu-operator release as the program declares it (chart v26.7.0, driver 580.173.02)."""
    values_driver = {"enabled": True, "version": "580.173.02", "upgradePolicy": {"autoUpgrade": True}}
    values_driver.update(driver)
    return {
        "chart": "gpu-operator",
        "version": "v26.7.0",
        "repositoryOpts": {"repo": "https://helm.ngc.nvidia.com/nvidia"},
        "namespace": "gpu-operator",
        "name": "gpu-operator",
        "values": {"driver": values_driver, "devicePlugin": {"enabled": True}},
    }
