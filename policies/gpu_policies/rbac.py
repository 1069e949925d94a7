"""Shared reading of RBAC objects for the two RBAC policies."""
from __future__ import annotations

from dataclasses import dataclass

from .access import UNKNOWN, get, seq
from .resource import ResourceView

RBAC_GROUP = "rbac.authorization.k8s.io"
RULE_FIELDS = ("apiGroups", "resources", "verbs")


@dataclass(frozen=True)
class Wildcard:
    path: str
    value: str
    field: str


def role_kind(view: ResourceView) -> str | None:
    """"Role" or "ClusterRole" (patches included), else None."""
    token = view.token
    if token is None or token.package != "kubernetes" or token.group != RBAC_GROUP:
        return None
    return token.kind if token.kind in ("Role", "ClusterRole") else None


def binding_kind(view: ResourceView) -> str | None:
    token = view.token
    if token is None or token.package != "kubernetes" or token.group != RBAC_GROUP:
        return None
    return token.kind if token.kind in ("RoleBinding", "ClusterRoleBinding") else None


def wildcards(props: object, unknowns: list[str]) -> list[Wildcard]:
    """Every ``*`` (alone or inside, like ``*/scale``) in a role's rules' apiGroups, resources and verbs."""
    found: list[Wildcard] = []
    rules = seq(get(props, "rules"))
    if rules is UNKNOWN:
        unknowns.append("rules")
        return found
    for i, rule in enumerate(rules):
        if rule is UNKNOWN:
            unknowns.append(f"rules[{i}]")
            continue
        for field in RULE_FIELDS:
            items = seq(get(rule, field))
            if items is UNKNOWN:
                unknowns.append(f"rules[{i}].{field}")
                continue
            for j, item in enumerate(items):
                if item is UNKNOWN:
                    unknowns.append(f"rules[{i}].{field}[{j}]")
                elif isinstance(item, str) and "*" in item:
                    found.append(Wildcard(f"rules[{i}].{field}[{j}]", item, field))
    return found
