"""rbac-no-wildcards and rbac-no-admin-bindings: no wildcard grants in the stack's roles, and no binding of
cluster-admin (or a wildcard role of the stack) to users or groups outside the configured break-glass."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as U

from gpu_policies import rbac_bindings, rbac_wildcards

from policy_factories import URN_PREFIX, check, run, stack_args

RBAC = "kubernetes:rbac.authorization.k8s.io/v1:"
ROLE, CLUSTER_ROLE = RBAC + "Role", RBAC + "ClusterRole"
ROLE_BINDING, CLUSTER_ROLE_BINDING = RBAC + "RoleBinding", RBAC + "ClusterRoleBinding"
BINDING_FIX = ("Fix: bind a role limited to the verbs and resources needed, or list this binding under breakGlass "
               "with a reason in the policy config.")


def role(**rule: Any) -> dict[str, Any]:
    base = {"apiGroups": [""], "resources": ["pods", "pods/log"], "verbs": ["get", "list", "watch"]}
    base.update(rule)
    return {"metadata": {"name": "viewer", "namespace": "tenant-a"}, "rules": [base]}


def binding(role_kind: str, role_name: str, *subjects: tuple[str, str], name: str = "admins",
            namespace: str | None = None) -> dict[str, Any]:
    meta = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    return {"metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role_name},
            "subjects": [{"kind": k, "name": n, **({"namespace": "ops"} if k == "ServiceAccount" else
                                                      {"apiGroup": "rbac.authorization.k8s.io"})}
                         for k, n in subjects]}


# --- wildcards ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("type_", [ROLE, CLUSTER_ROLE, ROLE + "Patch", CLUSTER_ROLE + "Patch"])
def test_least_privilege_role_passes(type_: str) -> None:
    assert check(rbac_wildcards.POLICY, type_, role()).messages == []


@pytest.mark.parametrize("field, value, index, fix", [
    ("verbs", ["get", "*"], 1, "list the verbs the subject needs (get, list, watch, create, update, patch, delete)"),
    ("resources", ["*"], 0, "list the resources the subject needs by name"),
    ("resources", ["deployments/*", "*/scale"], 1, "list the resources the subject needs by name"),
    ("apiGroups", ["*"], 0, 'list the API groups the rule needs ("" is the core group)'),
])
def test_wildcards_fail_with_exact_message(field: str, value: list, index: int, fix: str) -> None:
    reported = check(rbac_wildcards.POLICY, ROLE, role(**{field: value}))
    assert reported.messages[-1] == (f'Role tenant-a/viewer: rules[0].{field}[{index}] is "{value[index]}", a '
                                     f"wildcard. Fix: {fix}.")


def test_exceptions_need_a_reason_and_are_not_applicable_with_it() -> None:
    config = {"exceptions": [{"kind": "Role", "namespace": "tenant-a", "name": "viewer", "reason": "vendor needs it"}]}
    reported = check(rbac_wildcards.POLICY, ROLE, role(verbs=["*"]), config=config)
    assert (reported.messages, reported.not_applicable) == (
        [], "Role tenant-a/viewer is an exception in the policy config: vendor needs it")
    bad = check(rbac_wildcards.POLICY, ROLE, role(), config={"exceptions": [{"kind": "Role", "name": "viewer"}]})
    assert bad.messages == [
        'the policy-pack config for rbac-no-wildcards is invalid: config key "exceptions[0].reason" is missing; add '
        "reason (a non-empty string). This run uses the policy's defaults instead; fix the config file passed with "
        "--policy-pack-config."]


def test_unknown_rules_are_reported() -> None:
    props = role()
    props["rules"][0]["verbs"] = U
    reported = check(rbac_wildcards.POLICY, ROLE, props, proxy=True)
    assert reported.unknown is not None and reported.unknown.startswith("Role tenant-a/viewer: rules[0].verbs is unknown")


# --- bindings -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("subject_kind", ["User", "Group"])
def test_cluster_admin_bound_to_people_fails(subject_kind: str) -> None:
    props = binding("ClusterRole", "cluster-admin", (subject_kind, "lab-admins"))
    reported = run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE_BINDING, "admins", props)]))
    assert reported.messages == [
        f'ClusterRoleBinding admins: subjects[0] binds {subject_kind} "lab-admins" to ClusterRole "cluster-admin", a '
        f"privileged role. {BINDING_FIX}"]
    assert reported.urns == [f"{URN_PREFIX}{CLUSTER_ROLE_BINDING}::admins"]


def test_role_binding_to_a_wildcard_role_of_the_stack_fails() -> None:
    wide = copy.deepcopy(role(verbs=["*"]))
    props = binding("Role", "viewer", ("User", "alice"), name="alice-view", namespace="tenant-a")
    resources = [(ROLE, "viewer", wide), (ROLE_BINDING, "alice-view", props)]
    assert run(rbac_bindings.POLICY, stack_args(resources)).messages == [
        'RoleBinding tenant-a/alice-view: subjects[0] binds User "alice" to Role "viewer", whose rules[0].verbs[0] is '
        f'"*". {BINDING_FIX}']
    other_namespace = binding("Role", "viewer", ("User", "alice"), name="alice-view", namespace="tenant-b")
    assert run(rbac_bindings.POLICY, stack_args([resources[0], (ROLE_BINDING, "b", other_namespace)])).messages == []


@pytest.mark.parametrize("props", [
    binding("ClusterRole", "cluster-admin", ("ServiceAccount", "ci")),
    binding("ClusterRole", "view", ("Group", "everyone")),
    binding("ClusterRole", "viewer", ("User", "alice")),
])
def test_service_accounts_and_narrow_roles_pass(props: dict) -> None:
    resources = [(CLUSTER_ROLE, "viewer", role()), (CLUSTER_ROLE_BINDING, "b", props)]
    assert run(rbac_bindings.POLICY, stack_args(resources)).messages == []


def test_subject_kinds_and_privileged_roles_are_configurable() -> None:
    props = binding("ClusterRole", "admin", ("ServiceAccount", "ci"), ("User", "bob"))
    config = {"privilegedRoles": ["cluster-admin", "admin"], "subjectKinds": ["ServiceAccount"]}
    reported = run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE_BINDING, "admins", props)], config))
    assert reported.messages == [
        f'ClusterRoleBinding admins: subjects[0] binds ServiceAccount "ci" to ClusterRole "admin", a privileged '
        f"role. {BINDING_FIX}"]


def test_break_glass_binding_passes_only_with_its_exact_name() -> None:
    props = binding("ClusterRole", "cluster-admin", ("Group", "oncall"), name="break-glass")
    config = {"breakGlass": [{"kind": "ClusterRoleBinding", "name": "break-glass", "reason": "incident access"}]}
    assert run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE_BINDING, "bg", props)], config)).messages == []
    renamed = binding("ClusterRole", "cluster-admin", ("Group", "oncall"), name="other")
    assert len(run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE_BINDING, "o", renamed)], config)).messages) == 1


@pytest.mark.parametrize("config, error", [
    ({"breakGlass": [{"kind": "ClusterRoleBinding", "name": "x"}]},
     'config key "breakGlass[0].reason" is missing; add reason (a non-empty string)'),
    ({"breakGlass": [{"kind": "RoleBinding", "name": "x", "reason": "r"}]},
     'config key "breakGlass[0].namespace" is missing; a RoleBinding entry names its namespace'),
    ({"subjectKinds": ["Robot"]}, 'config key "subjectKinds" contains "Robot"; use User, Group, ServiceAccount'),
    ({"privilegedRoles": "cluster-admin"}, 'config key "privilegedRoles" is "cluster-admin"; give a list of non-empty '
                                           "strings"),
])
def test_binding_config_errors(config: dict, error: str) -> None:
    from gpu_policies.config import reset_reported_config_errors

    reset_reported_config_errors()
    reported = run(rbac_bindings.POLICY, stack_args([], config))
    assert reported.messages == [f"the policy-pack config for rbac-no-admin-bindings is invalid: {error}. This run "
                                 "uses the policy's defaults instead; fix the config file passed with "
                                 "--policy-pack-config."]


def test_unknown_role_ref_is_reported_and_no_bindings_is_not_applicable() -> None:
    props = binding("ClusterRole", U, ("User", "alice"))
    reported = run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE_BINDING, "admins", props)]))
    assert reported.unknown is not None and "ClusterRoleBinding admins: roleRef is unknown" in reported.unknown
    empty = run(rbac_bindings.POLICY, stack_args([(CLUSTER_ROLE, "viewer", role())]))
    assert empty.not_applicable == "the stack declares no RoleBinding or ClusterRoleBinding"
