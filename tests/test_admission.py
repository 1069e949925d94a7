"""The admission plane (components/admission.py): its config, its consistency with the pack, and the component.

Fast: no cluster. tests/real/test_admission_enforced.py has the API server enforce these policies and measures their
agreement with the pack.
"""
from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from typing import Any

import pulumi
import pytest

from components.admission import PACK_ONLY, RULES, AdmissionPolicies, manifests, policy_spec
from components.admission_config import AdmissionRules, admission_params, pack_parameters
from components.platform import GpuPlatform
from tests.factories import DELETE, ROOT, compiled, lab_with, problems
from tools.k8s_schema import validate
from tools.mockrun import Recorder

VAP = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicy"
BINDING = "kubernetes:admissionregistration.k8s.io/v1:ValidatingAdmissionPolicyBinding"


def pack_policy_names() -> set[str]:
    """Every policy the pack declares, read from its modules (never from policies/__main__.py)."""
    sys.path.insert(0, str(ROOT / "policies"))
    try:
        import gpu_policies

        modules = [importlib.import_module(f"gpu_policies.{m.name}")
                   for m in pkgutil.iter_modules(gpu_policies.__path__)]
    finally:
        sys.path.remove(str(ROOT / "policies"))
    return {m.POLICY.name for m in modules if hasattr(m, "POLICY")}


def test_the_workload_rules_match_every_pod_bearing_kind_the_pack_walks():
    """Both planes judge the same pod-bearing kinds: a kind added to the pack's walker and not to admission (or
    the reverse) would be guarded on one plane only."""
    from components.admission import WORKLOAD_RULES

    sys.path.insert(0, str(ROOT / "policies"))
    try:
        from gpu_policies.tokens import POD_PATHS
    finally:
        sys.path.remove(str(ROOT / "policies"))
    admitted = sorted(resource for rule in WORKLOAD_RULES for resource in rule["resources"])
    assert admitted == sorted(kind.lower() + "s" for kind in POD_PATHS)


def lab_params():
    return admission_params(compiled().stack)


# --- one rule set, two planes: consistent by construction ---------------------------------------------------

def test_every_pack_policy_has_an_admission_twin_or_a_reason_why_not() -> None:
    twins = {rule.pack_policy for rule in RULES}
    assert not twins & set(PACK_ONLY), "a policy is both mirrored and listed as pack-only"
    assert twins | set(PACK_ONLY) == pack_policy_names()
    assert all(len(reason) > 40 for reason in PACK_ONLY.values())


def test_every_rule_has_a_config_entry_and_every_config_entry_a_rule() -> None:
    assert [rule.key for rule in RULES] == list(AdmissionRules.model_fields)
    assert len({rule.name for rule in RULES}) == len(RULES)


def test_every_denial_names_the_pack_policy_it_mirrors() -> None:
    params = lab_params()
    for rule in RULES:
        [validation] = policy_spec(params, rule)["validations"]
        assert validation["messageExpression"].endswith(f"[{rule.pack_policy}]'"), rule.name


def test_the_pack_config_carries_the_values_the_stack_config_gives_the_admission_policies() -> None:
    """policies/config/lab.json and Pulumi.lab.yaml's admission section: one set of values for both planes."""
    lab_json = json.loads((ROOT / "policies" / "config" / "lab.json").read_text())
    for policy, settings in pack_parameters(lab_params()).items():
        for key, value in settings.items():
            assert lab_json[policy][key] == value, f"lab.json {policy}.{key} != the stack config's {value!r}"


# --- config ---------------------------------------------------------------------------------------------------

def test_the_lab_config_derives_the_parameters_from_the_whole_stack_config() -> None:
    params = lab_params()
    assert params.allowed_driver_versions == ("580.173.02", "595.91.07")
    assert params.operator_namespace == "gpu-operator"
    assert params.tenant_namespaces == ("ai-ml", "sdr") == params.gpu_quota_namespaces
    assert params.gpu_resources == ("nvidia.com/gpu",)
    assert dict(params.pod_security_levels) == {"gpu-operator": "privileged", "kube-system": "privileged"}


def test_without_a_list_only_the_pinned_driver_is_allowed_and_a_tenant_without_gpu_quota_gets_none() -> None:
    stack = compiled(lab_with(**{"admission.allowedDriverVersions": DELETE, "tenancy.tenants[1].quota.gpu": 0,
                                 "tenancy.tenants[1].priorityGpuQuota": {}})).stack
    params = admission_params(stack)
    assert params.allowed_driver_versions == ("580.173.02",)
    assert params.gpu_quota_namespaces == ("ai-ml",) and params.tenant_namespaces == ("ai-ml", "sdr")


def test_a_new_pin_is_allowed_with_the_listed_versions() -> None:
    """The policy follows the pin; the release waits for the policy (test_the_release_waits_...)."""
    stack = compiled(lab_with(**{"gpuOperator.driver.version": "610.57.04"})).stack
    assert admission_params(stack).allowed_driver_versions == ("580.173.02", "595.91.07", "610.57.04")
    host = compiled(lab_with(**{"gpuOperator.driver": {"mode": "host", "hostVersion": "525.85.05"},
                                "admission.allowedDriverVersions": DELETE})).stack
    assert admission_params(host).allowed_driver_versions == ()


def test_the_operator_namespace_is_privileged_also_when_not_listed() -> None:
    stack = compiled(lab_with(**{"admission.podSecurityExemptions": []})).stack
    assert dict(admission_params(stack).pod_security_levels) == {"gpu-operator": "privileged"}


def test_renamed_shared_gpus_are_guarded_too() -> None:
    stack = compiled(lab_with(**{"gpuOperator.devicePlugin.sharing.profiles.mps-4.mps.renameByDefault": True})).stack
    assert admission_params(stack).gpu_resources == ("nvidia.com/gpu", "nvidia.com/gpu.shared")


@pytest.mark.parametrize("changes, key, fragment", [
    ({"cluster.kubernetesVersion": "1.29"}, "gpu-platform:admission.enabled",
     "ValidatingAdmissionPolicy is GA (admissionregistration.k8s.io/v1) from Kubernetes 1.30; "
     "cluster.kubernetesVersion is 1.29. Set admission.enabled: false"),
    ({"admission.podSecurityExemptions[0].level": "baseline"}, "gpu-platform:admission.podSecurityExemptions[0].level",
     "the operator namespace 'gpu-operator' is labelled privileged"),
    ({"admission.podSecurityExemptions[1].namespace": "sdr"},
     "gpu-platform:admission.podSecurityExemptions[1].namespace", "'sdr' is a tenant namespace"),
    ({"admission.rules.adminBindings.exemptions[0].reason": ""},
     "gpu-platform:admission.rules.adminBindings.exemptions[0].reason", "at least 1 character"),
    ({"admission.rules.imagesPinned.mode": "warn"}, "gpu-platform:admission.rules.imagesPinned.mode", "'enforce'"),
    ({"admission.allowedDriverVersions": ["580.173.02", "latest"]}, "gpu-platform:admission",
     "'latest' is not a bare driver version"),
])
def test_bad_admission_config_is_refused_naming_the_key(changes: dict, key: str, fragment: str) -> None:
    found = problems(lab_with(**changes))
    assert any(path == key and fragment in message for path, message in found), found


def test_an_older_cluster_can_turn_admission_off() -> None:
    stack = compiled(lab_with(**{"cluster.kubernetesVersion": "1.29", "admission.enabled": False})).stack
    assert stack.admission is not None and not stack.admission.enabled


def test_dry_run_mode_warns_and_audits_instead_of_denying() -> None:
    stack = compiled(lab_with(**{"admission.rules.imagesPinned.mode": "dryRun"})).stack
    bindings = {m["metadata"]["name"]: m["spec"] for m in manifests(admission_params(stack))
                if m["kind"] == "ValidatingAdmissionPolicyBinding"}
    assert bindings["gpu-platform-images-pinned"]["validationActions"] == ["Warn", "Audit"]
    assert bindings["gpu-platform-driver-pinned"]["validationActions"] == ["Deny"]


def test_exemptions_are_a_match_condition_by_kind_namespace_and_name() -> None:
    stack = compiled(lab_with(**{"admission.rules.imagesPinned.exemptions": [
        {"kind": "Deployment", "namespace": "ai-ml", "name": "legacy",
         "reason": "vendor image, digest pending"}]})).stack
    params = admission_params(stack)
    spec = policy_spec(params, next(r for r in RULES if r.key == "images_pinned"))
    conditions = {c["name"]: c["expression"] for c in spec["matchConditions"]}
    assert conditions["tenant-namespace"] == 'request.namespace in ["ai-ml", "sdr"]'
    assert '["Deployment/ai-ml/legacy"]' in conditions["not-exempt"]


def test_the_manifests_are_valid_kubernetes_objects() -> None:
    for manifest in manifests(lab_params()):
        assert validate(manifest, kubernetes_version="1.34") == [], manifest["metadata"]["name"]


# --- the component --------------------------------------------------------------------------------------------

@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    return recorder


@pulumi.runtime.test
def test_one_policy_and_one_binding_per_rule_children_of_the_component(recorder):
    params = lab_params()
    component = AdmissionPolicies("admission", params)

    def check(args: list[Any]) -> None:
        urn, names = args
        [parent] = recorder.by_type("gpu-platform:admission:AdmissionPolicies")
        policies, bindings = recorder.by_type(VAP), recorder.by_type(BINDING)
        assert names == [rule.name for rule in RULES], urn
        by_name = {p.inputs["metadata"]["name"]: p for p in policies}
        assert sorted(by_name) == sorted(names)
        assert sorted(b.inputs["spec"]["policyName"] for b in bindings) == sorted(names)
        assert all(r.parent == parent.urn for r in [*policies, *bindings])
        for binding in bindings:  # a binding of a policy not there yet would match nothing
            assert by_name[binding.inputs["spec"]["policyName"]].urn in binding.dependencies
        driver = by_name["gpu-platform-driver-pinned"].inputs["spec"]
        assert '["580.173.02", "595.91.07"]' in driver["validations"][0]["expression"]

    bindings = [b.urn for b in component.bindings.values()]
    return pulumi.Output.all(component.urn, component.names, *bindings).apply(lambda args: check(args[:2]))


@pulumi.runtime.test
def test_the_release_waits_for_the_driver_pin_at_admission(recorder):
    """A driver upgrade: the policy allows the new version before Helm writes it into the ClusterPolicy."""
    platform = GpuPlatform("gpu-platform", compiled())

    def check(urn: str) -> None:
        [release] = recorder.by_type("kubernetes:helm.sh/v3:Release")
        pin = [r for r in recorder.by_type(VAP) + recorder.by_type(BINDING)
               if r.inputs["metadata"]["name"] == "gpu-platform-driver-pinned"]
        assert len(pin) == 2 and all(r.urn in release.dependencies for r in pin), urn

    return platform.operator.release.urn.apply(check)


@pulumi.runtime.test
def test_admission_off_declares_no_policy(recorder):
    platform = GpuPlatform("gpu-platform", compiled(lab_with(**{"admission.enabled": False})))

    def check(urn: str) -> None:
        assert recorder.by_type(VAP) == [] and recorder.by_type(BINDING) == [], urn

    return platform.operator.release.urn.apply(check)
