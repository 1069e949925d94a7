"""rbac-no-wildcards: the Roles and ClusterRoles the stack declares grant nothing by wildcard: no ``*`` in
a rule's verbs, resources or apiGroups (``*/scale`` counts too).

A role that must be broad is listed under ``exceptions`` with a reason; the policy then reports it as
not applicable with that reason. ClusterRoles that aggregate others (``aggregationRule``) get their rules
from the cluster, which this pack cannot see.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pulumi_policy import PolicyConfigSchema, Severity

from .config import ConfigReader, named_reasons_schema
from .guard import resource_policy
from .outcome import Outcome, not_applicable
from .resource import ResourceView, violation
from .rbac import role_kind, wildcards

NAME = "rbac-no-wildcards"

_FIXES = {
    "verbs": "list the verbs the subject needs (get, list, watch, create, update, patch, delete)",
    "resources": "list the resources the subject needs by name",
    "apiGroups": 'list the API groups the rule needs ("" is the core group)',
}


@dataclass(frozen=True)
class WildcardConfig:
    exceptions: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (kind, ns, name) -> reason


def parse_config(reader: ConfigReader) -> WildcardConfig:
    return WildcardConfig(reader.named_reasons("exceptions", "Role", "ClusterRole", "exception"))


def evaluate(view: ResourceView, config: WildcardConfig) -> Outcome:
    kind = role_kind(view)
    if kind is None:
        return not_applicable("applies only to Roles and ClusterRoles")
    subject = view.display()
    namespace = view.namespace()
    key = (kind, namespace if isinstance(namespace, str) else "", view.object_name())
    if key in config.exceptions:
        return not_applicable(f"{subject} is an exception in the policy config: {config.exceptions[key]}")
    outcome = Outcome(subject=subject)
    for w in wildcards(view.props, outcome.unknowns):
        outcome.add(violation(subject, None, w.path, f'is "{w.value}", a wildcard', _FIXES[w.field]))
    return outcome


POLICY = resource_policy(
    name=NAME,
    description="Roles and ClusterRoles grant nothing by wildcard: no * in verbs, resources or apiGroups.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "exceptions": named_reasons_schema("Role", "ClusterRole",
                                           "Roles allowed to use wildcards, each with the reason."),
    }),
    severity=Severity.HIGH,
    remediation=("Replace each * with the exact verbs, resources and API groups the role's users need. "
                 "A deliberately broad role goes under this policy's exceptions, with a reason."),
)
