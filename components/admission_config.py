"""The config of the admission-time guardrails (components/admission.py): `gpu-platform:admission`.

The pack judges what goes through `pulumi preview`; the API server judges every client (kubectl, Helm,
notebooks). Both planes take their parameters from the same stack config: the pinned drivers, the tenant
namespaces and their GPU quotas, the operator namespace, and the exemptions written here with a reason.
`admission_params` derives everything the policies need, once, before any resource is declared;
`pack_parameters` says what policies/config/<stack>.json must say for the pack to judge by the same values
(a test holds lab.json to it).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from .base import RESERVED_NAMESPACES, ConfigModel, DnsLabel, K8sName, Path
from .tenancy import gpu_resources

# The functions below take the whole StackConfig (components/stack_config.py), typed Any here: that module
# imports this one, and a type-only import back would be the cycle tests/test_imports.py forbids.

# ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from this minor release on.
MIN_KUBERNETES = (1, 30)
OPERATOR_REASON = ("GPU Operator operands (driver, toolkit, device plugin, DCGM exporter, validators) run privileged "
                   "with host namespaces and hostPath by design; the namespace carries "
                   "pod-security.kubernetes.io/enforce=privileged")
RuleMode = Literal["enforce", "dryRun"]
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
# Levels at least as strict as each level: an exempted namespace may still be labelled stricter.
AT_LEAST = {"restricted": ("restricted",), "baseline": ("restricted", "baseline"),
            "privileged": ("restricted", "baseline", "privileged")}


class Exemption(ConfigModel):
    """One object a rule lets through, by kind, namespace and name, with the reason a reviewer reads."""

    kind: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="The object's kind, e.g. ClusterRoleBinding.")
    namespace: DnsLabel | None = Field(default=None, description="Its namespace; none for cluster-scoped kinds.")
    name: K8sName
    reason: str = Field(min_length=1, description="Why this object may break the rule.")

    def key(self) -> str:
        """How the policies name an object: `Kind/namespace/name` (namespace empty when cluster-scoped)."""
        return f"{self.kind}/{self.namespace or ''}/{self.name}"


class AdmissionRule(ConfigModel):
    """One rule: enforced (Deny) or rolled out as a dry run (Warn + Audit), and the objects it lets through."""

    mode: RuleMode = Field(default="enforce", description=(
        "enforce: the API server denies (validationActions [Deny]); dryRun: it admits with a warning to the client "
        "and an audit annotation (validationActions [Warn, Audit]), for rolling a rule out."))
    exemptions: list[Exemption] = Field(default=[], description=(
        "Objects the rule lets through (kind, namespace, name, reason). For adminBindings these are the "
        "break-glass bindings."))

    @property
    def validation_actions(self) -> list[str]:
        return ["Deny"] if self.mode == "enforce" else ["Warn", "Audit"]


class AdmissionRules(ConfigModel):
    """Every rule the admission plane enforces (components/admission.py RULES)."""

    driver_pinned: AdmissionRule = AdmissionRule()
    namespace_pod_security: AdmissionRule = AdmissionRule()
    images_pinned: AdmissionRule = AdmissionRule()
    gpu_placement: AdmissionRule = AdmissionRule()
    admin_bindings: AdmissionRule = AdmissionRule()


class PodSecurityExemption(ConfigModel):
    """A namespace that may run below `restricted`, with the reason."""

    namespace: DnsLabel
    level: Literal["baseline", "privileged"]
    reason: str = Field(min_length=1)


class AdmissionConfig(ConfigModel):
    """ValidatingAdmissionPolicies and their bindings: the pack's guardrails, enforced by the API server."""

    enabled: bool = Field(default=True, description=(
        "Install the policies (needs Kubernetes 1.30+: ValidatingAdmissionPolicy is GA there)."))
    allowed_driver_versions: list[str] | None = Field(default=None, description=(
        "Driver versions a ClusterPolicy or NVIDIADriver may carry besides the pinned ones (always allowed). The "
        "policy is updated before the Helm release, so a new pin is allowed before Helm writes it; list a version "
        "here to keep it allowed across upgrades (e.g. the previous one while rolling back is possible)."))
    pod_security_exemptions: list[PodSecurityExemption] = Field(default=[], description=(
        "Namespaces whose pod-security.kubernetes.io/enforce label may be below restricted, with the reason. The "
        "operator namespace is privileged whether listed or not (listed, it must say privileged)."))
    privileged_roles: list[K8sName] = Field(default=["cluster-admin"], min_length=1, description=(
        "ClusterRoles that no User or Group may be bound to, except the adminBindings exemptions."))
    subject_kinds: list[Literal["User", "Group", "ServiceAccount"]] = Field(default=["User", "Group"], min_length=1)
    rules: AdmissionRules = AdmissionRules()

    @field_validator("pod_security_exemptions")
    @classmethod
    def _one_entry_per_namespace(cls, value: list[PodSecurityExemption]) -> list[PodSecurityExemption]:
        names = [entry.namespace for entry in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"namespace(s) {', '.join(twice)} listed more than once")
        return value

    @model_validator(mode="after")
    def _versions_bare(self) -> "AdmissionConfig":
        for version in self.allowed_driver_versions or []:
            if not version or version.lower() == "latest" or "-" in version or "@" in version:
                raise ValueError(f"allowedDriverVersions: {version!r} is not a bare driver version (e.g. 580.173.02)")
        return self


def pinned_driver_versions(stack: Any) -> tuple[str, ...]:
    """The driver versions the config deploys (none in host mode: the operator installs no driver)."""
    driver = stack.gpu_operator.driver
    if driver.mode == "operator" and driver.version:
        return (driver.version,)
    if driver.mode == "perPool":
        return tuple(dict.fromkeys(pool.version for pool in driver.pools or []))
    return ()


def _version_tuple(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def admission_problems(stack: Any) -> Iterable[tuple[Path, str]]:
    """Cross-field rules of `admission` (run by StackConfig's validator, so a bad config declares nothing)."""
    config = stack.admission
    if config is None or not config.enabled:
        return
    version = stack.cluster.kubernetes_version
    if _version_tuple(version) < MIN_KUBERNETES:
        yield ("enabled",), (f"ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from Kubernetes "
                             f"1.30; cluster.kubernetesVersion is {version}. Set admission.enabled: false (the pack "
                             "still judges every preview) or upgrade the cluster first")
    operator_ns = stack.gpu_operator.namespace
    for index, entry in enumerate(config.pod_security_exemptions):
        if entry.namespace == operator_ns and entry.level != "privileged":
            yield ("podSecurityExemptions", index, "level"), (
                f"the operator namespace {operator_ns!r} is labelled privileged (its operands run privileged by "
                "design); set level: privileged")
    # Tenancy reports a tenant that takes the operator's or a reserved namespace; only the rest is ours.
    tenants = {t.namespace for t in stack.tenancy.tenants} if stack.tenancy else set()
    tenants -= {operator_ns, *RESERVED_NAMESPACES}
    for index, entry in enumerate(config.pod_security_exemptions):
        if entry.namespace in tenants:
            yield ("podSecurityExemptions", index, "namespace"), (
                f"{entry.namespace!r} is a tenant namespace, which the program labels restricted; remove the exemption")


@dataclass(frozen=True)
class AdmissionParams:
    """Everything the policies are built from, derived once from the stack config (plain data, hashable)."""

    allowed_driver_versions: tuple[str, ...]
    operator_namespace: str
    tenant_namespaces: tuple[str, ...]
    gpu_quota_namespaces: tuple[str, ...]
    gpu_resources: tuple[str, ...]
    pod_security_levels: tuple[tuple[str, str], ...]  # (namespace, lowest allowed level) for the exemptions
    pod_security_reasons: tuple[tuple[str, str], ...]  # (namespace, reason)
    privileged_roles: tuple[str, ...]
    subject_kinds: tuple[str, ...]
    rules: AdmissionRules


def admission_params(stack: Any) -> AdmissionParams:
    """The policies' parameters from a validated stack config (which has `admission` set)."""
    config = stack.admission
    assert config is not None
    tenants = stack.tenancy.tenants if stack.tenancy else []
    exemptions = [(e.namespace, e.level, e.reason) for e in config.pod_security_exemptions]
    if stack.gpu_operator.namespace not in [namespace for namespace, _, _ in exemptions]:
        exemptions.insert(0, (stack.gpu_operator.namespace, "privileged", OPERATOR_REASON))
    # The pinned versions are always allowed: the policy moves with the pin, before the release does.
    allowed = list(dict.fromkeys([*(config.allowed_driver_versions or []), *pinned_driver_versions(stack)]))
    return AdmissionParams(
        allowed_driver_versions=tuple(allowed),
        operator_namespace=stack.gpu_operator.namespace,
        tenant_namespaces=tuple(t.namespace for t in tenants),
        gpu_quota_namespaces=tuple(t.namespace for t in tenants if t.quota.gpu > 0),
        gpu_resources=gpu_resources(stack.gpu_operator.device_plugin.sharing),
        pod_security_levels=tuple((namespace, level) for namespace, level, _ in exemptions),
        pod_security_reasons=tuple((namespace, reason) for namespace, _, reason in exemptions),
        privileged_roles=tuple(config.privileged_roles),
        subject_kinds=tuple(config.subject_kinds),
        rules=config.rules,
    )


def pack_parameters(params: AdmissionParams) -> dict[str, dict]:
    """The settings of policies/config/<stack>.json that carry the same values, as the pack spells them."""
    def named(exemption: Exemption) -> dict[str, str]:
        entry = {"kind": exemption.kind, "name": exemption.name, "reason": exemption.reason}
        return {**entry, "namespace": exemption.namespace} if exemption.namespace else entry

    levels = dict(params.pod_security_levels)
    return {
        "gpu-operator-driver-pinned": {"allowedDriverVersions": list(params.allowed_driver_versions)},
        "pod-security-standards": {
            "defaultLevel": "restricted",
            "namespaceLevels": {ns: level for ns, level in levels.items() if level == "baseline"},
            "exemptions": [{"namespace": ns, "reason": reason} for ns, reason in params.pod_security_reasons
                           if levels[ns] == "privileged"],
        },
        "gpu-quota-required": {"gpuResources": list(params.gpu_resources)},
        "rbac-no-admin-bindings": {
            "privilegedRoles": list(params.privileged_roles),
            "subjectKinds": list(params.subject_kinds),
            "breakGlass": [named(e) for e in params.rules.admin_bindings.exemptions],
        },
    }
