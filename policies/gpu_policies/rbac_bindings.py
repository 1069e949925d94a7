"""rbac-no-admin-bindings (stack policy): no RoleBinding or ClusterRoleBinding in the stack grants
cluster-admin (or another role named in ``privilegedRoles``), or a Role/ClusterRole of the stack that uses
wildcards, to a User or Group, unless the binding is listed as break-glass with a reason.

A stack policy because a binding's risk depends on the role it references, which is another resource.
ServiceAccount subjects are not in the default ``subjectKinds`` (the issue's rule is about people);
add "ServiceAccount" there to hold workloads to the same rule.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from pulumi_policy import PolicyConfigSchema, Severity

from .access import UNKNOWN, get, seq, show
from .config import ConfigReader, named_reasons_schema
from .guard import stack_policy
from .outcome import Outcome
from .resource import ResourceView, violation
from .rbac import binding_kind, role_kind, wildcards

NAME = "rbac-no-admin-bindings"
SUBJECT_KINDS = ("User", "Group", "ServiceAccount")


@dataclass(frozen=True)
class BindingConfig:
    privileged_roles: tuple[str, ...] = ("cluster-admin",)
    subject_kinds: tuple[str, ...] = ("User", "Group")
    break_glass: dict[tuple[str, str, str], str] = field(default_factory=dict)  # (kind, ns, name) -> reason


def parse_config(reader: ConfigReader) -> BindingConfig:
    roles = reader.string_list("privilegedRoles", ("cluster-admin",))
    kinds = reader.string_list("subjectKinds", ("User", "Group"))
    for kind in kinds:
        if kind not in SUBJECT_KINDS:
            reader.error("subjectKinds", f'contains "{kind}"', f"use {', '.join(SUBJECT_KINDS)}")
    break_glass = reader.named_reasons("breakGlass", "RoleBinding", "ClusterRoleBinding", "entry")
    return BindingConfig(roles, kinds, break_glass)


def evaluate(views: list[ResourceView], config: BindingConfig) -> Outcome:
    outcome = Outcome(subject="the stack")
    unknowns = outcome.unknowns
    broad: dict[tuple[str, str, str], str] = {}  # (kind, namespace, name) -> first wildcard, for roles
    for view in views:
        kind = role_kind(view)
        if kind is None:
            continue
        found = wildcards(view.props, [])
        if found:
            namespace = view.namespace() if kind == "Role" else ""
            if isinstance(namespace, str):
                broad[(kind, namespace, view.object_name())] = f'{found[0].path} is "{found[0].value}"'
    bindings = 0
    for view in views:
        kind = binding_kind(view)
        if kind is None:
            continue
        bindings += 1
        subject = view.display()
        namespace = view.namespace() if kind == "RoleBinding" else ""
        if namespace is UNKNOWN:
            unknowns.append(f"{subject}: metadata.namespace")
            continue
        ref = get(view.props, "roleRef")
        ref_kind, ref_name = get(ref, "kind"), get(ref, "name")
        if any(v is UNKNOWN for v in (ref, ref_kind, ref_name)):
            unknowns.append(f"{subject}: roleRef")
            continue
        if ref_kind == "ClusterRole" and ref_name in config.privileged_roles:
            why = f'ClusterRole "{ref_name}", a privileged role'
        else:
            role_key = (ref_kind, namespace if ref_kind == "Role" else "", ref_name)
            if not isinstance(ref_kind, str) or not isinstance(ref_name, str) or role_key not in broad:
                continue
            why = f'{ref_kind} "{ref_name}", whose {broad[role_key]}'
        if (kind, namespace, view.object_name()) in config.break_glass:
            continue
        subjects = seq(get(view.props, "subjects"))
        if subjects is UNKNOWN:
            unknowns.append(f"{subject}: subjects")
            continue
        for i, entry in enumerate(subjects):
            s_kind, s_name = get(entry, "kind"), get(entry, "name")
            if entry is UNKNOWN or s_kind is UNKNOWN:
                unknowns.append(f"{subject}: subjects[{i}]")
                continue
            if s_kind not in config.subject_kinds:
                continue
            outcome.add(violation(
                subject, None, f"subjects[{i}]",
                f"binds {s_kind} {show(s_name)} to {why}",
                "bind a role limited to the verbs and resources needed, or list this binding under breakGlass "
                "with a reason in the policy config"), view.urn or None)
    if not bindings:
        outcome.not_applicable = "the stack declares no RoleBinding or ClusterRoleBinding"
    return outcome


POLICY = stack_policy(
    name=NAME,
    description="No binding grants cluster-admin, or a role of the stack with wildcards, to a user or group "
                "unless it is a break-glass binding named in the config with a reason.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={
        "privilegedRoles": {"type": "array", "items": {"type": "string", "minLength": 1},
                            "default": ["cluster-admin"],
                            "description": "ClusterRoles that must not be bound to the subjects below."},
        "subjectKinds": {"type": "array", "items": {"type": "string", "enum": list(SUBJECT_KINDS)},
                         "default": ["User", "Group"], "description": "Subject kinds the rule protects."},
        "breakGlass": named_reasons_schema("RoleBinding", "ClusterRoleBinding",
                                           "Bindings allowed anyway, each with the reason."),
    }),
    severity=Severity.CRITICAL,
    remediation=("Bind users and groups to roles that list exact verbs and resources. A deliberate "
                 "emergency-access binding goes under breakGlass in this policy's config, with a reason."),
)
