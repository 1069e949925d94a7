"""pod-security-standards: every pod-bearing resource meets the Pod Security Standards of its namespace.

Restricted by default (which includes baseline), baseline where the config says so, and nothing for
namespaces exempted with a reason. An exempted workload is reported as not applicable (with the reason)
and, visibly in the preview, by the advisory companion policy ``pod-security-exemptions``.

When the namespace is unknown during preview, the pod is checked at the strictest level the config
uses: if it passes, any namespace would pass it; if not, the namespace decides, and the policy says so.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from pulumi_policy import PolicyConfigSchema, Severity

from . import pss
from .access import UNKNOWN, get, is_mapping, keys, show
from .config import ConfigReader
from .guard import resource_policy
from .outcome import NeedsKnownValues, Outcome, not_applicable
from .pods import pod_spec
from .resource import ResourceView, violation

NAME = "pod-security-standards"

DEFAULT_EXEMPTIONS: Mapping[str, str] = MappingProxyType({
    "gpu-operator": "the GPU Operator's operands (driver, toolkit, device plugin, DCGM, validators) run "
                    "privileged with host namespaces and hostPath by design; the namespace is labelled "
                    "pod-security.kubernetes.io/enforce=privileged",
    "kube-system": "cluster system components (RKE2's own exemption from its restricted PSA default)",
})


@dataclass(frozen=True)
class PodSecurityConfig:
    """Which level applies where."""

    default_level: str = pss.RESTRICTED
    namespace_levels: Mapping[str, str] = field(default_factory=dict)
    exemptions: Mapping[str, str] = field(default_factory=lambda: DEFAULT_EXEMPTIONS)  # namespace -> reason

    def level_for(self, namespace: str) -> str:
        return self.namespace_levels.get(namespace, self.default_level)

    @property
    def strictest(self) -> str:
        levels = {self.default_level, *self.namespace_levels.values()}
        return pss.RESTRICTED if pss.RESTRICTED in levels else pss.BASELINE


def parse_config(reader: ConfigReader) -> PodSecurityConfig:
    default_level = reader.choice("defaultLevel", pss.RESTRICTED, pss.LEVELS)
    levels: dict[str, str] = {}
    raw_levels = reader.value("namespaceLevels")
    if raw_levels is not None and not is_mapping(raw_levels):
        reader.error("namespaceLevels", f"is {show(raw_levels)}",
                     'give an object that maps a namespace to "restricted" or "baseline"')
    for namespace in keys(raw_levels):
        level = get(raw_levels, namespace)
        if level not in pss.LEVELS:
            reader.error(f"namespaceLevels.{namespace}", f"is {show(level)}",
                         'use "restricted" or "baseline" (exempt a namespace under "exemptions", with a reason)')
        else:
            levels[namespace] = level
    records = reader.records("exemptions", {"namespace": True, "reason": True})
    exemptions = dict(DEFAULT_EXEMPTIONS) if records is None else {}
    for record in records or ():
        namespace = record["namespace"]
        if namespace in exemptions:
            reader.error("exemptions", f'lists namespace "{namespace}" twice', "keep one entry per namespace")
        exemptions[namespace] = record["reason"]
    for namespace in sorted(set(levels) & set(exemptions)):
        reader.error(f"namespaceLevels.{namespace}", "is set for an exempted namespace",
                     "either exempt the namespace or give it a level, not both")
    return PodSecurityConfig(default_level, MappingProxyType(levels), MappingProxyType(exemptions))


def _namespace_path(view: ResourceView) -> str:
    declared = get(get(view.props, "metadata"), "namespace")
    return "metadata.namespace" if declared is UNKNOWN else "the provider's namespace"


def evaluate(view: ResourceView, config: PodSecurityConfig) -> Outcome:
    token = view.token
    if token is None or not token.is_workload:
        return not_applicable("applies only to pod-bearing kinds")
    subject = view.display()
    namespace = view.namespace()
    if isinstance(namespace, str) and namespace in config.exemptions:
        reason = config.exemptions[namespace]
        return Outcome(
            subject=subject,
            not_applicable=f'namespace "{namespace}" is exempt: {reason}',
            note=(f'{subject} is exempt from the Pod Security Standards: namespace "{namespace}" is exempted '
                  f"in the policy config. Reason: {reason}."),
        )
    unknowns: list[str] = []
    pod = pod_spec(view, unknowns)
    level = config.strictest if namespace is UNKNOWN else config.level_for(namespace)
    findings = pss.check(pod, level, unknowns) if pod is not None else []
    outcome = Outcome(subject=subject)
    if namespace is UNKNOWN:
        if findings or unknowns:
            outcome.unknowns = [_namespace_path(view), *unknowns]
        return outcome
    for f in findings:
        outcome.add(violation(subject, f.subject, f.path, f.problem, f.fix, f.tag))
    outcome.unknowns = unknowns
    return outcome


CONFIG_SCHEMA = PolicyConfigSchema(properties={
    "defaultLevel": {
        "type": "string", "enum": list(pss.LEVELS), "default": pss.RESTRICTED,
        "description": "The Pod Security Standards level for namespaces not listed elsewhere.",
    },
    "namespaceLevels": {
        "type": "object", "additionalProperties": {"type": "string", "enum": list(pss.LEVELS)},
        "description": "Per-namespace level: namespace -> restricted | baseline.",
    },
    "exemptions": {
        "type": "array",
        "description": "Namespaces this policy does not check, each with the reason (shown in the output). "
                       "Replaces the default list (gpu-operator, kube-system).",
        "items": {
            "type": "object", "required": ["namespace", "reason"], "additionalProperties": False,
            "properties": {"namespace": {"type": "string", "minLength": 1},
                           "reason": {"type": "string", "minLength": 1}},
        },
    },
})

POLICY = resource_policy(
    name=NAME,
    description=(f"Pod-bearing resources meet the Pod Security Standards ({pss.VERSION}): restricted unless "
                 "the config sets baseline for the namespace or exempts it with a reason."),
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=CONFIG_SCHEMA,
    severity=Severity.HIGH,
    remediation=("Change the field each message names as its fix says: set allowPrivilegeEscalation: false "
                 "and capabilities.drop: [\"ALL\"] on every container, runAsNonRoot: true and "
                 "seccompProfile.type: RuntimeDefault on the pod, and drop host namespaces, hostPath, "
                 "hostPort and privileged. A workload that truly needs privileges belongs in a namespace that "
                 "is exempted in the policy config with a reason (and labelled for PSA accordingly)."),
)

__all__ = ["POLICY", "NAME", "evaluate", "parse_config", "PodSecurityConfig", "NeedsKnownValues"]
