"""The pack's guardrails enforced by the API server: ValidatingAdmissionPolicies (CEL) and their bindings.

The CrossGuard pack judges what goes through `pulumi preview`; researchers also use kubectl, Helm and
notebooks, and an operator can `kubectl edit clusterpolicy`. These policies hold the same rules for every
client, with no controller to run (ValidatingAdmissionPolicy is GA since Kubernetes 1.30).

Parameters are baked into the CEL expressions, not read from a ConfigMap through `paramKind`: the values
come from the stack config, so each change shows in `pulumi preview` as a change of the policy itself,
versioned with it, and there is no second object whose absence (`parameterNotFoundAction`) or concurrent
edit the policy would have to survive.

Rules (RULES; each maps to the pack policy it mirrors, PACK_ONLY lists the pack's policies that have no
admission twin, with the reason; docs/admission.md has the differences between the planes):
- driver-pinned: a ClusterPolicy's spec.driver.version (while the operator installs the driver) and an
  NVIDIADriver's spec.version must be an allowed version. An UPDATE that leaves the version as it was
  passes, so the operator's own writes to an object older than the policy are not refused; an upgrade
  moves the version only after the policy allows the new one (the Helm release depends on this policy).
- namespace-pod-security: a namespace, created or updated, carries pod-security.kubernetes.io/enforce at
  restricted, or at the level of its exemption. An UPDATE that does not change the label passes, so the
  namespaces that existed before the policy (default, kube-public, ...) keep working; their label can only
  be moved to a compliant level. The pods themselves are then judged by Pod Security admission.
- images-pinned: in the tenant namespaces, every container image has a tag other than latest, or a digest.
- gpu-placement: a pod or workload requesting a GPU resource runs only in a tenant namespace with a GPU
  quota, or in the operator namespace (its validator pods request a GPU).
- admin-bindings: no RoleBinding or ClusterRoleBinding binds a privileged ClusterRole to a User or Group.
Every rule lets exempted objects through by kind, namespace and name (a matchCondition), and is either
enforced (Deny) or in a dry run (Warn + Audit).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from .base import OWNED_ANNOTATIONS
from .admission_config import AT_LEAST, AdmissionParams, AdmissionRule

API_VERSION = "admissionregistration.k8s.io/v1"
PREFIX = "gpu-platform-"
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"

# Pod-bearing kinds, as the pack's pod-spec walker covers them (policies/gpu_policies/tokens.py POD_PATHS;
# tests/test_admission.py checks the two lists name the same kinds).
WORKLOAD_RULES = [
    {"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["pods", "podtemplates", "replicationcontrollers"]},
    {"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["deployments", "replicasets", "statefulsets", "daemonsets"]},
    {"apiGroups": ["batch"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
     "resources": ["jobs", "cronjobs"]},
]
POD_SPEC = ("object.kind == 'Pod' ? object.spec : (object.kind == 'PodTemplate' ? object.template.spec : "
            "(object.kind == 'CronJob' ? object.spec.jobTemplate.spec.template.spec : object.spec.template.spec))")
CONTAINERS = ("variables.podSpec.containers"
              " + (has(variables.podSpec.initContainers) ? variables.podSpec.initContainers : [])")
SUBJECT = ("object.kind + ' ' + (has(object.metadata.namespace) ? object.metadata.namespace + '/' : '') + "
           "(has(object.metadata.name) ? object.metadata.name : object.metadata.generateName + '*')")


@dataclass(frozen=True)
class Rule:
    """One admission rule: its config key, its policy's name and the pack policy it mirrors."""

    key: str             # the field of AdmissionRules (snake_case)
    name: str            # the ValidatingAdmissionPolicy's (and binding's) name
    pack_policy: str     # the CrossGuard policy that judges the same thing at preview
    summary: str


RULES = (
    Rule("driver_pinned", f"{PREFIX}driver-pinned", "gpu-operator-driver-pinned",
         "ClusterPolicy and NVIDIADriver carry an allowed driver version"),
    Rule("namespace_pod_security", f"{PREFIX}namespace-pod-security", "pod-security-standards",
         "every namespace is labelled for Pod Security enforce at restricted, or at its exemption's level"),
    Rule("images_pinned", f"{PREFIX}images-pinned", "container-images-pinned",
         "images in tenant namespaces are pinned by tag (not latest) or digest"),
    Rule("gpu_placement", f"{PREFIX}gpu-placement", "gpu-quota-required",
         "GPUs are requested only in tenant namespaces with a GPU quota, or the operator namespace"),
    Rule("admin_bindings", f"{PREFIX}admin-bindings", "rbac-no-admin-bindings",
         "no binding of a privileged ClusterRole to a User or Group, except break-glass bindings"),
)
# The pack's policies with no admission twin, and why (a test fails when a pack policy is in neither list).
PACK_ONLY = {
    "gpu-operator-driver-documented": (
        "advisory, and it needs the chart release next to the driver: a ClusterPolicy does not say which operator "
        "release reconciles it, so at admission there is nothing to compare the driver with"),
    "pod-security-exemptions": (
        "advisory companion of pod-security-standards that names the exemption applied; at admission the exemption "
        "is the namespace's own label, which the API server's Pod Security admission reads"),
    "rbac-no-wildcards": (
        "a role is not a grant: at admission the grant (the binding of a privileged role) is refused instead, and "
        "Kubernetes' own bootstrap and aggregated ClusterRoles (cluster-admin, admin, edit, system:*) carry "
        "wildcards that the API server reconciles at every start"),
}


def _cel(value: Any) -> str:
    """A Python list, string or dict of lists as a CEL literal (JSON's syntax is CEL's for these)."""
    return json.dumps(value)


def _driver_pinned(params: AdmissionParams) -> dict[str, Any]:
    allowed = list(params.allowed_driver_versions)
    spec_driver = "has(object.spec) && has(object.spec.driver)"
    return {
        "resourceRules": [{"apiGroups": ["nvidia.com"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["clusterpolicies", "nvidiadrivers"]}],
        "variables": [
            {"name": "isClusterPolicy", "expression": "object.kind == 'ClusterPolicy'"},
            # The operator installs no driver (host mode), or NVIDIADriver resources carry the versions.
            {"name": "driverOff", "expression": (
                f"variables.isClusterPolicy && {spec_driver} && "
                "((has(object.spec.driver.enabled) && object.spec.driver.enabled == false) || "
                "(has(object.spec.driver.useNvidiaDriverCRD) && object.spec.driver.useNvidiaDriverCRD == true))")},
            {"name": "version", "expression": (
                f"variables.isClusterPolicy ? ({spec_driver} && has(object.spec.driver.version) ? "
                "string(object.spec.driver.version) : '') : "
                "(has(object.spec) && has(object.spec.version) ? string(object.spec.version) : '')")},
            {"name": "unchanged", "expression": (
                "request.operation == 'UPDATE' && (variables.isClusterPolicy ? "
                "(has(oldObject.spec) && has(oldObject.spec.driver) && has(oldObject.spec.driver.version) && "
                "string(oldObject.spec.driver.version) == variables.version) : "
                "(has(oldObject.spec) && has(oldObject.spec.version) && "
                "string(oldObject.spec.version) == variables.version))")},
        ],
        "validations": [{
            "expression": f"variables.driverOff || variables.unchanged || variables.version in {_cel(allowed)}",
            "messageExpression": (
                f"{SUBJECT} + ': the driver version ' + (variables.version == '' ? 'is not set' : "
                f"variables.version + ' is not allowed') + ' (allowed: {', '.join(allowed) or 'none'}). Fix: pin an "
                "allowed version in the stack config (gpuOperator.driver), or allow this one first in "
                "admission.allowedDriverVersions and the pack config. [gpu-operator-driver-pinned]'"),
            "reason": "Forbidden"}],
    }


def _namespace_pod_security(params: AdmissionParams) -> dict[str, Any]:
    exempt = {ns: list(AT_LEAST[level]) for ns, level in params.pod_security_levels}
    label = f"'{PSA_ENFORCE}'"
    return {
        "resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                           "resources": ["namespaces"]}],
        "variables": [
            {"name": "level", "expression": (
                f"has(object.metadata.labels) && {label} in object.metadata.labels ? "
                f"object.metadata.labels[{label}] : ''")},
            {"name": "oldLevel", "expression": (
                f"request.operation == 'UPDATE' && has(oldObject.metadata.labels) && "
                f"{label} in oldObject.metadata.labels ? oldObject.metadata.labels[{label}] : ''")},
            {"name": "allowed", "expression": (
                f"object.metadata.name in {_cel(exempt)} ? {_cel(exempt)}[object.metadata.name] : ['restricted']")},
        ],
        "validations": [{
            "expression": ("variables.level in variables.allowed || "
                           "(request.operation == 'UPDATE' && variables.level == variables.oldLevel)"),
            "messageExpression": (
                f"'Namespace ' + object.metadata.name + ': label {PSA_ENFORCE} is ' + "
                "(variables.level == '' ? 'missing' : variables.level) + '; allowed: ' + "
                "variables.allowed.join(', ') + '. Fix: label it restricted, or exempt the namespace in "
                "admission.podSecurityExemptions with a reason. [pod-security-standards]'"),
            "reason": "Forbidden"}],
    }


_PINNED = ("has(c.image) && (c.image.contains('@') || "
           "(c.image.substring(c.image.lastIndexOf('/') + 1).contains(':') && "
           "c.image.substring(c.image.lastIndexOf(':') + 1).lowerAscii() != 'latest'))")


def _images_pinned(params: AdmissionParams) -> dict[str, Any]:
    return {
        "resourceRules": WORKLOAD_RULES,
        "matchConditions": [{"name": "tenant-namespace",
                             "expression": f"request.namespace in {_cel(list(params.tenant_namespaces))}"}],
        "variables": [
            {"name": "podSpec", "expression": POD_SPEC},
            {"name": "containers", "expression": (
                f"{CONTAINERS} + (has(variables.podSpec.ephemeralContainers) ? "
                "variables.podSpec.ephemeralContainers : [])")},
            {"name": "unpinned", "expression": f"variables.containers.filter(c, !({_PINNED}))"},
        ],
        "validations": [{
            "expression": "size(variables.unpinned) == 0",
            "messageExpression": (
                f"{SUBJECT} + ': image(s) not pinned: ' + "
                "variables.unpinned.map(c, c.name + '=' + (has(c.image) ? c.image : '')).join(', ') + "
                "'. Fix: use a tag other than latest (registry/app:1.2.3) or a digest (registry/app@sha256:...). "
                "[container-images-pinned]'"),
            "reason": "Forbidden"}],
    }


def _requests_gpu(section: str, resources: Sequence[str]) -> str:
    return (f"(has(c.resources.{section}) && c.resources.{section}.exists(k, k in {_cel(list(resources))} && "
            f"string(c.resources.{section}[k]) != '0'))")


def _gpu_placement(params: AdmissionParams) -> dict[str, Any]:
    allowed = [*params.gpu_quota_namespaces, params.operator_namespace]
    gpu = list(params.gpu_resources)
    return {
        "resourceRules": WORKLOAD_RULES,
        "variables": [
            {"name": "podSpec", "expression": POD_SPEC},
            {"name": "containers", "expression": CONTAINERS},
            {"name": "gpuContainers", "expression": (
                "variables.containers.filter(c, has(c.resources) && "
                f"({_requests_gpu('limits', gpu)} || {_requests_gpu('requests', gpu)}))")},
        ],
        "validations": [{
            "expression": f"size(variables.gpuContainers) == 0 || request.namespace in {_cel(allowed)}",
            "messageExpression": (
                f"{SUBJECT} + ': container(s) ' + variables.gpuContainers.map(c, c.name).join(', ') + "
                f"' request {'/'.join(gpu)} in namespace ' + request.namespace + ', which ' + "
                f"(request.namespace in {_cel(list(params.tenant_namespaces))} ? "
                "'has no GPU quota' : 'is not a tenant namespace') + '. GPUs may be requested in: "
                f"{', '.join(allowed)}. Fix: run GPU work in a tenant namespace with a GPU quota "
                "(tenancy.tenants[].quota.gpu). [gpu-quota-required]'"),
            "reason": "Forbidden"}],
    }


def _admin_bindings(params: AdmissionParams) -> dict[str, Any]:
    roles, kinds = list(params.privileged_roles), list(params.subject_kinds)
    return {
        "resourceRules": [{"apiGroups": ["rbac.authorization.k8s.io"], "apiVersions": ["v1"],
                           "operations": ["CREATE", "UPDATE"], "resources": ["rolebindings", "clusterrolebindings"]}],
        "variables": [
            {"name": "privileged", "expression": (
                f"object.roleRef.kind == 'ClusterRole' && object.roleRef.name in {_cel(roles)}")},
            {"name": "people", "expression": (
                f"has(object.subjects) ? object.subjects.filter(s, s.kind in {_cel(kinds)}) : []")},
        ],
        "validations": [{
            "expression": "!variables.privileged || size(variables.people) == 0",
            "messageExpression": (
                f"{SUBJECT} + ' binds ClusterRole ' + object.roleRef.name + ' to ' + "
                "variables.people.map(s, s.kind + ' ' + s.name).join(', ') + '. Fix: bind a role limited to the "
                "verbs and resources needed, or list this binding under admission.rules.adminBindings.exemptions "
                "(break-glass) with a reason. [rbac-no-admin-bindings]'"),
            "reason": "Forbidden"}],
    }


BUILDERS = {"driver_pinned": _driver_pinned, "namespace_pod_security": _namespace_pod_security,
            "images_pinned": _images_pinned, "gpu_placement": _gpu_placement, "admin_bindings": _admin_bindings}


def rule_config(params: AdmissionParams, rule: Rule) -> AdmissionRule:
    config: AdmissionRule = getattr(params.rules, rule.key)
    return config


def policy_spec(params: AdmissionParams, rule: Rule) -> dict[str, Any]:
    """The ValidatingAdmissionPolicy's spec for one rule (plain data: the component and the tests use it)."""
    built = BUILDERS[rule.key](params)
    conditions = list(built.get("matchConditions", []))
    exempt = sorted(e.key() for e in rule_config(params, rule).exemptions)
    if exempt:
        conditions.append({"name": "not-exempt", "expression": (
            "!((request.kind.kind + '/' + (has(request.namespace) ? request.namespace : '') + '/' + "
            f"(has(request.name) ? request.name : '')) in {_cel(exempt)})")})
    spec: dict[str, Any] = {
        "failurePolicy": "Fail",
        "matchConstraints": {"resourceRules": built["resourceRules"]},
        "variables": built["variables"],
        "validations": built["validations"],
    }
    if conditions:
        spec["matchConditions"] = conditions
    return spec


def binding_spec(params: AdmissionParams, rule: Rule) -> dict[str, Any]:
    return {"policyName": rule.name, "validationActions": rule_config(params, rule).validation_actions}


def manifests(params: AdmissionParams) -> list[dict[str, Any]]:
    """Every policy and binding as the API takes them, in the order they are applied (policy, then binding)."""
    out: list[dict[str, Any]] = []
    for rule in RULES:
        metadata = {"name": rule.name, "labels": LABELS, "annotations": OWNED_ANNOTATIONS}
        out.append({"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicy", "metadata": metadata,
                    "spec": policy_spec(params, rule)})
        out.append({"apiVersion": API_VERSION, "kind": "ValidatingAdmissionPolicyBinding", "metadata": metadata,
                    "spec": binding_spec(params, rule)})
    return out


LABELS = {"app.kubernetes.io/part-of": "gpu-platform", "app.kubernetes.io/component": "admission",
          "app.kubernetes.io/managed-by": "pulumi"}


class AdmissionPolicies(pulumi.ComponentResource):
    """One ValidatingAdmissionPolicy and one binding per rule, parameters baked in from the stack config.

    `driver_pin`: the driver rule's policy and binding; the Helm release waits for them, so a driver upgrade
    is allowed at admission before Helm writes the new version into the ClusterPolicy."""

    names: pulumi.Output[list[str]]

    def __init__(self, name: str, params: AdmissionParams, *, opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:admission:AdmissionPolicies", name, None, opts)
        self.policies: dict[str, k8s.admissionregistration.v1.ValidatingAdmissionPolicy] = {}
        self.bindings: dict[str, k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding] = {}
        for rule in RULES:
            child = rule.key.replace("_", "-")
            policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
                f"{name}-{child}",
                metadata={"name": rule.name, "labels": LABELS, "annotations": OWNED_ANNOTATIONS},
                spec=policy_spec(params, rule),
                opts=pulumi.ResourceOptions(parent=self))
            self.policies[rule.key] = policy
            self.bindings[rule.key] = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
                f"{name}-{child}",
                metadata={"name": rule.name, "labels": LABELS, "annotations": OWNED_ANNOTATIONS},
                spec=binding_spec(params, rule),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
        self.driver_pin: list[pulumi.Resource] = [self.policies["driver_pinned"], self.bindings["driver_pinned"]]
        self.names = pulumi.Output.all(*(p.metadata.name for p in self.policies.values()))
        self.register_outputs({"names": self.names})


# Where the two planes judge the same object differently on purpose. The agreement test (tests/real/
# test_admission_enforced.py) fails on any disagreement that is not one of these; docs/admission.md explains each.
PLANE_DIFFERENCES = {
    "pod-security-templates": (
        "pod-security-standards: the pack refuses a workload whose pod template breaks the namespace's level. The "
        "API server's Pod Security admission enforces on Pods only and merely warns for templates (Deployment, Job, "
        "...): the object is admitted, and each pod it stamps is refused when the controller creates it"),
    "namespace-label": (
        "pod-security-standards: the pack judges each workload at the level its config gives the namespace, "
        "whatever the Namespace's labels say, so it does not judge Namespace objects; at admission the "
        "pod-security.kubernetes.io/enforce label is what Pod Security enforces, so the label itself is required"),
    "images-outside-tenants": (
        "container-images-pinned: the pack judges images in every namespace of the stack; admission judges them "
        "in the tenant namespaces only (the operator's operands, kube-system and other teams' namespaces are "
        "governed by their owners)"),
    "gpu-operator-namespace": (
        "gpu-quota-required: the pack wants a GPU quota in the stack for every namespace that requests GPUs, the "
        "operator namespace included; admission lets the operator namespace request GPUs without one (its "
        "validator pods request a GPU, and the program puts no quota there: operands set no requests)"),
    "gpu-quota-source": (
        "gpu-quota-required: the pack counts a ResourceQuota declared in the same stack, in any namespace; "
        "admission allows GPUs in the tenant namespaces whose config has a GPU quota (it cannot read other "
        "objects), so a GPU workload in a non-tenant namespace with its own quota is refused there"),
    "unchanged-driver-on-update": (
        "gpu-operator-driver-pinned: an UPDATE that keeps the driver version passes at admission (the operator "
        "and Helm write to objects older than the policy); the pack judges the declared version every time"),
    "release-values": (
        "gpu-operator-driver-pinned: the pack also judges the Helm release's chart version and values; a "
        "Release is no API object, so admission judges the ClusterPolicy Helm writes from them"),
    "stack-wildcard-roles": (
        "rbac-no-admin-bindings: the pack also refuses binding a wildcard Role or ClusterRole declared in the "
        "same stack; admission refuses the configured privileged ClusterRoles by name only"),
}
