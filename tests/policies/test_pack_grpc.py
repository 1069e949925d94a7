"""The pack as shipped: policies/__main__.py started the way the Pulumi CLI starts a Python pack (its own
venv, ``python -u -m pulumi.policy <engine> .`` in the pack directory), driven over the analyzer gRPC
protocol (Handshake, ConfigureStack, GetAnalyzerInfo, Configure, Analyze, AnalyzeStack) with lab.json."""
from __future__ import annotations

import re
from typing import Any

import pytest

from tools.analyzer import (
    UNKNOWN, AnalyzerClient, ConfigInvalid, PackProcess, Provider, Resource, Secret, make_urn, reconcile_config,
)

from policy_factories import PACK_DIR, gpu_release, restricted_pod_spec, workload

EXPECTED_POLICIES = [
    # name, type, enforcement level, severity
    ("gpu-operator-driver-pinned", "resource", "mandatory", "high"),
    ("gpu-operator-driver-documented", "resource", "advisory", "medium"),
    ("pod-security-standards", "resource", "mandatory", "high"),
    ("pod-security-exemptions", "resource", "advisory", "low"),
    ("container-images-pinned", "resource", "mandatory", "medium"),
    ("gpu-quota-required", "stack", "mandatory", "medium"),
    ("rbac-no-wildcards", "resource", "mandatory", "high"),
    ("rbac-no-admin-bindings", "stack", "mandatory", "critical"),
]
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
RELEASE = "kubernetes:helm.sh/v3:Release"


def test_pack_starts_exactly_as_the_cli_starts_a_python_pack() -> None:
    process = PackProcess(PACK_DIR, project="gpu-platform", stack="lab")
    assert process.command == [str(PACK_DIR / "venv" / "bin" / "python"), "-u", "-m", "pulumi.policy",
                               process.engine_address, "."]
    env = process.environment()
    assert {k: env[k] for k in ("PULUMI_PROJECT", "PULUMI_STACK", "PULUMI_DRY_RUN", "PULUMI_CONFIG",
                                "PULUMI_ORGANIZATION")} == {
        "PULUMI_PROJECT": "gpu-platform", "PULUMI_STACK": "lab", "PULUMI_DRY_RUN": "true", "PULUMI_CONFIG": "{}",
        "PULUMI_ORGANIZATION": "organization"}
    with process:
        assert process.running() and process.port
        client = AnalyzerClient(process.address)
        try:
            assert client.handshake() is False  # the Python SDK leaves Handshake unimplemented; the CLI accepts it
            assert client.get_analyzer_info().name == "gpu-platform-guardrails"
        finally:
            client.close()
    assert process.stop() == 0 and not process.running()


def test_analyzer_info_describes_every_policy(pack: AnalyzerClient) -> None:
    info = pack.get_analyzer_info()
    assert (info.name, info.supports_config) == ("gpu-platform-guardrails", True)
    assert [(p.name, p.policy_type, p.enforcement_level, p.severity) for p in info.policies] == EXPECTED_POLICIES
    for policy in info.policies:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name)
        assert policy.description and policy.remediation_steps


def test_config_schemas_name_the_settings_each_policy_reads(pack: AnalyzerClient) -> None:
    schemas = {p.name: sorted(p.config_schema) for p in pack.get_analyzer_info().policies}
    assert schemas == {
        "gpu-operator-driver-pinned": ["allowedDriverVersions"],
        "gpu-operator-driver-documented": ["additionalDocumented"],
        "pod-security-standards": ["defaultLevel", "exemptions", "namespaceLevels"],
        "pod-security-exemptions": [],
        "container-images-pinned": ["requireDigest"],
        "gpu-quota-required": ["gpuResources"],
        "rbac-no-wildcards": ["exceptions"],
        "rbac-no-admin-bindings": ["breakGlass", "privilegedRoles", "subjectKinds"],
    }


def test_lab_config_covers_every_policy_and_passes_the_clis_schema_check(pack: AnalyzerClient, lab_config: dict) -> None:
    info = pack.get_analyzer_info()
    assert sorted(lab_config) == sorted(p.name for p in info.policies)
    reconciled = reconcile_config(info, lab_config)
    assert reconciled["pod-security-standards"][0] == "mandatory"
    assert reconciled["gpu-operator-driver-pinned"][1] == {"allowedDriverVersions": ["580.173.02", "595.91.07"]}


def test_cli_schema_check_names_the_bad_key(pack: AnalyzerClient) -> None:
    with pytest.raises(ConfigInvalid) as raised:
        reconcile_config(pack.get_analyzer_info(), {"pod-security-standards": {"defaultLevel": "strict"}})
    assert raised.value.errors == [
        "pod-security-standards: defaultLevel: 'strict' is not one of ['baseline', 'restricted']"]


def test_compliant_tenant_workload_has_no_diagnostics(pack: AnalyzerClient) -> None:
    result = pack.analyze(DEPLOYMENT, "web", workload("Deployment", name="web"))
    assert result.diagnostics == ()
    assert {n.policy_name for n in result.not_applicable} == {
        "gpu-operator-driver-pinned", "gpu-operator-driver-documented", "pod-security-exemptions", "rbac-no-wildcards"}


def test_violations_arrive_mandatory_with_exact_messages(pack: AnalyzerClient) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["securityContext"]["privileged"] = True
    spec["containers"][0]["image"] = "busybox"
    result = pack.analyze(DEPLOYMENT, "debug", workload("Deployment", spec, name="debug"))
    assert [(d.policy_name, d.enforcement_level, d.severity) for d in result.diagnostics] == [
        ("pod-security-standards", "mandatory", "high"), ("container-images-pinned", "mandatory", "medium")]
    assert result.details() == [
        'Deployment tenant-a/debug, container "main" (containers[0]): spec.template.spec.containers[0].securityContext.'
        "privileged is true. Fix: remove it or set it to false. [PSS baseline: privileged]",
        'Deployment tenant-a/debug, container "main" (containers[0]): spec.template.spec.containers[0].image is '
        '"busybox", which has no tag and so means busybox:latest. Fix: pin a version tag or a digest, e.g. '
        '"busybox:<version>" or "busybox@sha256:<digest>".']
    assert result.diagnostics[0].message.startswith(result.diagnostics[0].description + "\n")


def test_exempt_operator_namespace_is_reported_as_an_advisory_note(pack: AnalyzerClient, lab_config: dict) -> None:
    spec = restricted_pod_spec()
    spec["hostPID"] = True
    result = pack.analyze("kubernetes:apps/v1:DaemonSet", "probe",
                          workload("DaemonSet", spec, namespace="gpu-operator", name="probe"))
    reason = lab_config["pod-security-standards"]["exemptions"][0]["reason"]
    assert [(d.policy_name, d.enforcement_level) for d in result.diagnostics] == [("pod-security-exemptions", "advisory")]
    assert result.details() == [f'DaemonSet gpu-operator/probe is exempt from the Pod Security Standards: namespace '
                                f'"gpu-operator" is exempted in the policy config. Reason: {reason}.']
    assert result.reasons("pod-security-standards") == [f'namespace "gpu-operator" is exempt: {reason}']


def test_release_pins_are_judged_against_the_lab_allow_list_and_the_matrix(pack: AnalyzerClient) -> None:
    assert pack.analyze(RELEASE, "gpu-operator", gpu_release()).diagnostics == ()
    result = pack.analyze(RELEASE, "gpu-operator", gpu_release(version="525.85.05"))
    assert [(d.policy_name, d.enforcement_level) for d in result.diagnostics] == [
        ("gpu-operator-driver-pinned", "mandatory"), ("gpu-operator-driver-documented", "advisory")]


def test_unknown_values_become_one_advisory_per_policy(pack: AnalyzerClient) -> None:
    result = pack.analyze(RELEASE, "gpu-operator", gpu_release(version=UNKNOWN))
    assert [(d.policy_name, d.enforcement_level) for d in result.diagnostics] == [
        ("gpu-operator-driver-pinned", "advisory"), ("gpu-operator-driver-documented", "advisory")]
    assert result.diagnostics[0].message == (
        "can't run policy 'gpu-operator-driver-pinned' from policy pack 'gpu-platform-guardrails@v0.0.1' during "
        "preview: Release gpu-operator/gpu-operator: values.driver.version is unknown until the update runs, and "
        "this policy needs it; it checks again during `pulumi up`, when the values are known")


def test_secrets_are_judged_by_their_value(pack: AnalyzerClient) -> None:
    result = pack.analyze(RELEASE, "gpu-operator", gpu_release(version=Secret("latest")))
    assert [d.policy_name for d in result.mandatory] == ["gpu-operator-driver-pinned"]
    assert 'values.driver.version is "latest"' in result.mandatory[0].detail


def test_provider_namespace_reaches_the_policies(pack: AnalyzerClient) -> None:
    spec = restricted_pod_spec()
    spec["hostNetwork"] = True
    props = workload("Deployment", spec, namespace=None, name="agent")
    exempt = pack.analyze(DEPLOYMENT, "agent", props, provider=Provider(props={"namespace": "kube-system"}))
    assert [d.policy_name for d in exempt.diagnostics] == ["pod-security-exemptions"]
    checked = pack.analyze(DEPLOYMENT, "agent", props)
    assert checked.details("pod-security-standards")[0].startswith("Deployment default/agent: ")


@pytest.mark.parametrize("props", [
    {}, {"metadata": 5}, {"spec": "x"}, {"spec": {"template": {"spec": {"containers": "all"}}}},
    {"spec": {"template": {"spec": {"containers": [None, 3, [], {"securityContext": "x"}]}}}},
    {"values": {"driver": []}, "chart": 7}, {"rules": {"verbs": "*"}}, {"metadata": {"namespace": UNKNOWN}, "spec": UNKNOWN},
])
@pytest.mark.parametrize("type_", [DEPLOYMENT, "kubernetes:batch/v1:CronJobPatch", RELEASE,
                                   "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole", "kubernetes:core/v1:Namespace"])
def test_odd_input_never_fails_the_rpc(pack: AnalyzerClient, type_: str, props: dict) -> None:
    result = pack.analyze(type_, "odd", props)
    assert not any("internal error" in d.message for d in result.diagnostics)


def _gpu_stack(with_quota: bool) -> list[Resource]:
    spec = restricted_pod_spec()
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    resources = [
        Resource("kubernetes:core/v1:Namespace", "tenant-a", {"metadata": {"name": "tenant-a", "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}}),
        Resource(DEPLOYMENT, "train", workload("Deployment", spec, name="train")),
        Resource(RELEASE, "gpu-operator", gpu_release()),
    ]
    if with_quota:
        resources.append(Resource("kubernetes:core/v1:ResourceQuota", "gpu-quota", {
            "metadata": {"name": "gpu", "namespace": "tenant-a"}, "spec": {"hard": {"requests.nvidia.com/gpu": "1"}}}))
    return resources


def test_analyze_stack_reports_a_missing_gpu_quota_against_the_workload(pack: AnalyzerClient) -> None:
    result = pack.analyze_stack(_gpu_stack(with_quota=False))
    assert [(d.policy_name, d.enforcement_level, d.urn) for d in result.diagnostics] == [
        ("gpu-quota-required", "mandatory", make_urn(DEPLOYMENT, "train"))]
    assert pack.analyze_stack(_gpu_stack(with_quota=True)).diagnostics == ()


def test_analyze_stack_reports_cluster_admin_for_people(pack: AnalyzerClient) -> None:
    binding = Resource("kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding", "admins", {
        "metadata": {"name": "admins"}, "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"kind": "Group", "name": "lab-admins"}]})
    result = pack.analyze_stack([binding])
    assert [(d.policy_name, d.severity, d.urn) for d in result.diagnostics] == [
        ("rbac-no-admin-bindings", "critical", make_urn(binding.type, "admins"))]


def test_lab_shaped_stack_has_no_mandatory_violation(pack: AnalyzerClient) -> None:
    """What the program declares for the lab: the operator namespace (PSA privileged), the node patch, the
    release pinned to chart v26.7.0 and driver 580.173.02."""
    resources = [
        Resource("kubernetes:core/v1:Namespace", "gpu-operator", {"metadata": {"name": "gpu-operator", "labels": {
            "pod-security.kubernetes.io/enforce": "privileged"}}}),
        Resource("kubernetes:core/v1:NodePatch", "gpu-node", {"metadata": {"name": "gpu-node", "labels": {
            "nvidia.com/gpu.deploy.driver": "true"}}}),
        Resource(RELEASE, "gpu-operator", gpu_release()),
    ]
    for resource in resources:
        assert pack.analyze(resource.type, resource.name, resource.props).mandatory == ()
    assert pack.analyze_stack(resources).diagnostics == ()


def _reconfigure(pack: AnalyzerClient, config: dict[str, Any], validate: bool = True) -> None:
    pack.configure(config, validate=validate)


def test_enforcement_levels_come_from_the_config(pack: AnalyzerClient, lab_config: dict) -> None:
    props = workload("Deployment", {"containers": [{"name": "c", "image": "x:latest"}]}, name="lax")
    try:
        _reconfigure(pack, {**lab_config, "pod-security-standards": {**lab_config["pod-security-standards"],
                                                                      "enforcementLevel": "advisory"}})
        levels = {d.policy_name: d.enforcement_level for d in pack.analyze(DEPLOYMENT, "lax", props).diagnostics}
        assert levels == {"pod-security-standards": "advisory", "container-images-pinned": "mandatory"}
        _reconfigure(pack, {"all": "disabled"})
        assert pack.analyze(DEPLOYMENT, "lax", props).diagnostics == ()
    finally:
        _reconfigure(pack, lab_config)


def test_a_config_the_cli_let_through_is_explained_not_a_traceback(pack: AnalyzerClient, lab_config: dict) -> None:
    """The SDK does not validate Configure; a bad value that reached the pack gives one clear message."""
    try:
        _reconfigure(pack, {"container-images-pinned": {"requireDigest": "yes", "requireDigests": True}}, validate=False)
        first = pack.analyze(DEPLOYMENT, "a", workload("Deployment", name="a"))
        second = pack.analyze(DEPLOYMENT, "b", workload("Deployment", name="b"))
        assert first.details() == [
            'the policy-pack config for container-images-pinned is invalid: config key "requireDigest" is "yes"; give '
            'true or false; config key "requireDigests" is not a setting of this policy; remove it or fix its '
            "spelling. This run uses the policy's defaults instead; fix the config file passed with "
            "--policy-pack-config."]
        assert second.diagnostics == ()
    finally:
        _reconfigure(pack, lab_config)
