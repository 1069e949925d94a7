"""gpu-quota-required (stack policy): every namespace in which a workload of the stack requests a GPU
has a ResourceQuota in the stack that bounds ``requests.nvidia.com/gpu``.

- A workload requests a GPU when a container or init container sets ``nvidia.com/gpu`` (or another
  name listed in ``gpuResources``) in ``resources.limits`` or ``resources.requests`` to anything but 0
  (for extended resources the limit is the request).
- Only ``requests.<name>`` counts: the API accepts no other quota key for an extended resource.
- Only an unscoped quota counts. A quota with ``spec.scopes`` or ``spec.scopeSelector`` (a priority
  class, BestEffort, Terminating, ...) bounds only the pods in its scope, and a GPU pod outside it would
  be unbounded; this policy cannot prove every GPU pod falls in the scope, so it does not rely on one.
- ``...Patch`` resources count on both sides: a patch that adds GPU limits requests GPUs, and a quota
  patch that sets the hard limit bounds them.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pulumi_policy import PolicyConfigSchema, Severity

from .access import UNKNOWN, get, key_path, keys, seq
from .config import ConfigReader
from .guard import stack_policy
from .outcome import Outcome
from .pods import pod_spec
from .resource import ResourceView, violation

NAME = "gpu-quota-required"


@dataclass(frozen=True)
class QuotaConfig:
    gpu_resources: tuple[str, ...] = ("nvidia.com/gpu",)


def parse_config(reader: ConfigReader) -> QuotaConfig:
    names = reader.string_list("gpuResources", ("nvidia.com/gpu",))
    for name in names:
        if "/" not in name or name.startswith("requests."):
            reader.error("gpuResources", f'contains "{name}"',
                         'list extended resource names as pods request them, e.g. "nvidia.com/gpu"')
    return QuotaConfig(tuple(names))


def _is_zero(quantity: object) -> bool:
    if isinstance(quantity, bool):
        return False
    if isinstance(quantity, (int, float)):
        return quantity == 0
    if isinstance(quantity, str):
        try:
            return float(quantity.strip()) == 0
        except ValueError:
            return False
    return False


@dataclass
class _Namespace:
    bounded: set[str] = field(default_factory=set)          # resource names with an unscoped quota
    scoped: dict[str, list[str]] = field(default_factory=dict)   # resource -> scoped quota names
    wrong_key: dict[str, list[str]] = field(default_factory=dict)  # resource -> quotas using another key


def _quotas(views: list[ResourceView], names: tuple[str, ...], unknowns: list[str]) -> tuple[dict[str, _Namespace], bool]:
    """Per namespace, which GPU resources the stack's quotas bound; and whether some quota's namespace
    or limits are unknown (then a missing bound cannot be proven yet)."""
    found: dict[str, _Namespace] = {}
    uncertain = False
    for view in views:
        token = view.token
        if token is None or token.kind != "ResourceQuota" or token.group != "core" or token.package != "kubernetes":
            continue
        namespace = view.namespace()
        spec = get(view.props, "spec")
        hard = get(spec, "hard")
        if namespace is UNKNOWN or spec is UNKNOWN or hard is UNKNOWN:
            uncertain = True
            unknowns.append(f"{view.display()}: " + ("metadata.namespace" if namespace is UNKNOWN else "spec.hard"))
            continue
        entry = found.setdefault(namespace, _Namespace())
        scopes, selector = seq(get(spec, "scopes")), get(spec, "scopeSelector")
        scoped = scopes is UNKNOWN or len(scopes) > 0 or selector is not None
        label = f'"{view.object_name()}"'
        for key in keys(hard):
            for name in names:
                if key == f"requests.{name}":
                    if scoped:
                        entry.scoped.setdefault(name, []).append(label)
                    else:
                        entry.bounded.add(name)
                elif key in (name, f"limits.{name}"):
                    entry.wrong_key.setdefault(name, []).append(f'{label} (key "{key}")')
    return found, uncertain


def evaluate(views: list[ResourceView], config: QuotaConfig) -> Outcome:
    outcome = Outcome(subject="the stack")
    unknowns = outcome.unknowns
    quota_unknowns: list[str] = []
    quotas, uncertain = _quotas(views, config.gpu_resources, quota_unknowns)
    gpu_workloads = 0
    for view in views:
        token = view.token
        if token is None or not token.is_workload:
            continue
        walk_unknowns: list[str] = []
        pod = pod_spec(view, walk_unknowns)
        # An unknown container list may hide a GPU request.
        unknowns.extend(f"{view.display()}: {p}" for p in walk_unknowns if "ontainers" in p)
        if pod is None:
            continue
        # (resource, container) -> the path of its first GPU request: limits, else requests. A dict, not a scan
        # of the list so far, so a workload with thousands of GPU containers costs linear time.
        requests: dict[tuple[str, str], str] = {}
        for container in pod.containers:
            if container.list_name == "ephemeralContainers":
                continue  # ephemeral containers cannot have resources
            resources = get(container.body, "resources")
            label = str(container)
            for section in ("limits", "requests"):
                values = get(resources, section)
                for name in config.gpu_resources:
                    quantity = get(values, name)
                    if quantity is None or _is_zero(quantity) or (name, label) in requests:
                        continue
                    requests[(name, label)] = key_path(f"{container.path}.resources.{section}", name)
        if not requests:
            continue
        gpu_workloads += 1
        namespace = view.namespace()
        subject = view.display()
        if namespace is UNKNOWN:
            unknowns.append(f"{subject}: metadata.namespace")
            continue
        entry = quotas.get(namespace, _Namespace())
        for (name, container), path in requests.items():
            if name in entry.bounded:
                continue
            if uncertain:
                unknowns.append(f"{subject}: whether namespace {namespace} has a quota on requests.{name}")
                continue
            hints = []
            if entry.scoped.get(name):
                hints.append(f"ResourceQuota {', '.join(entry.scoped[name])} bounds it only within "
                             f"its scopes")
            if entry.wrong_key.get(name):
                hints.append(f"ResourceQuota {', '.join(entry.wrong_key[name])} uses a key the API does not "
                             f"accept for extended resources")
            hint = f" ({'; '.join(hints)})" if hints else ""
            outcome.add(violation(
                subject, container, path,
                f"requests {name}, but namespace {namespace} has no unscoped ResourceQuota in this stack that "
                f"bounds requests.{name}{hint}",
                f'declare a kubernetes:core/v1:ResourceQuota in namespace {namespace} with '
                f'spec.hard["requests.{name}"] and no scopes'), view.urn or None)
    if gpu_workloads:
        unknowns.extend(quota_unknowns)  # quotas with unknown fields matter only when GPUs are requested
    elif not unknowns:
        outcome.not_applicable = f"no workload in this stack requests {', '.join(config.gpu_resources)}"
    return outcome


POLICY = stack_policy(
    name=NAME,
    description="Every namespace where a workload of the stack requests GPUs has a ResourceQuota in the stack "
                "that bounds requests.nvidia.com/gpu.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "gpuResources": {
            "type": "array", "items": {"type": "string", "minLength": 1}, "default": ["nvidia.com/gpu"],
            "description": "Extended resource names that count as GPUs (e.g. nvidia.com/gpu, or a renamed "
                           "shared resource such as nvidia.com/gpu.shared).",
        },
    }),
    severity=Severity.MEDIUM,
    remediation=("For each namespace named, declare a ResourceQuota in the same stack with "
                 'spec.hard: {"requests.nvidia.com/gpu": "<max GPUs>"} and no scopes or scopeSelector.'),
)
