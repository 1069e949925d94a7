"""pod-security-standards and its advisory companion pod-security-exemptions, through their validators:
exact messages, per-namespace levels, exemptions with reasons, unknown values, patches and config errors."""
from __future__ import annotations

import pytest
from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as U

from gpu_policies import pod_security, pod_security_exemptions
from gpu_policies.guard import resource_policy

from policy_factories import (
    KINDS, WORKLOAD_TOKENS, check, resource_args, restricted_pod_spec, run, spec_path, workload,
)

POLICY = pod_security.POLICY
DEPLOYMENT = WORKLOAD_TOKENS["Deployment"]
GPU_OPERATOR_REASON = pod_security.DEFAULT_EXEMPTIONS["gpu-operator"]


def spec_with(**changes: object) -> dict:
    spec = restricted_pod_spec()
    spec.update(changes)
    return spec


@pytest.mark.parametrize("kind", KINDS)
def test_compliant_workload_of_every_kind_passes(kind: str) -> None:
    reported = check(POLICY, WORKLOAD_TOKENS[kind], workload(kind))
    assert (reported.messages, reported.unknown, reported.not_applicable) == ([], None, None)


def test_messages_name_resource_container_path_fix_and_control() -> None:
    spec = spec_with(hostNetwork=True)
    del spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"]
    reported = check(POLICY, WORKLOAD_TOKENS["CronJob"], workload("CronJob", spec, name="nightly"))
    assert reported.messages == [
        "CronJob tenant-a/nightly: spec.jobTemplate.spec.template.spec.hostNetwork is true. Fix: remove it or "
        "set it to false; sharing the node's namespaces needs the privileged level. [PSS baseline: hostNamespaces]",
        'CronJob tenant-a/nightly, container "main" (containers[0]): spec.jobTemplate.spec.template.spec.'
        "containers[0].securityContext.allowPrivilegeEscalation is not set. Fix: set it to false. "
        "[PSS restricted: allowPrivilegeEscalation]",
    ]


def test_run_as_non_root_message_points_at_the_pod_level_fix() -> None:
    spec = restricted_pod_spec()
    del spec["securityContext"]["runAsNonRoot"]
    spec["initContainers"][0]["securityContext"]["runAsNonRoot"] = True
    spec["ephemeralContainers"][0]["securityContext"]["runAsNonRoot"] = True
    reported = check(POLICY, DEPLOYMENT, workload("Deployment", spec, name="trainer"))
    assert reported.messages == [
        'Deployment tenant-a/trainer, container "main" (containers[0]): spec.template.spec.containers[0].'
        "securityContext.runAsNonRoot is not set and spec.template.spec.securityContext.runAsNonRoot is not set. "
        "Fix: set spec.template.spec.securityContext.runAsNonRoot to true (or runAsNonRoot: true on every "
        "container). [PSS restricted: runAsNonRoot]",
    ]


def test_volume_message_names_the_volume_and_the_allowed_types() -> None:
    spec = spec_with(volumes=[{"name": "scratch", "emptyDir": {}}, {"name": "models", "hostPath": {"path": "/srv"}}])
    reported = check(POLICY, WORKLOAD_TOKENS["Job"], workload("Job", spec, name="fetch"))
    assert reported.messages == [
        'Job tenant-a/fetch, volume "models" (volumes[1]): spec.template.spec.volumes[1].hostPath is set, and '
        "hostPath is not a volume type that restricted allows. Fix: use one of configMap, csi, downwardAPI, "
        "emptyDir, ephemeral, persistentVolumeClaim, projected, secret. [PSS restricted: restrictedVolumes]",
    ]


def test_exempt_namespace_is_not_applicable_with_its_reason_and_noted_by_the_companion() -> None:
    spec = spec_with(hostPID=True)
    args = resource_args(WORKLOAD_TOKENS["DaemonSet"], workload("DaemonSet", spec, namespace="gpu-operator",
                                                                name="probe"))
    decided = run(POLICY, args)
    noted = run(pod_security_exemptions.POLICY, args)
    assert decided.messages == []
    assert decided.not_applicable == f'namespace "gpu-operator" is exempt: {GPU_OPERATOR_REASON}'
    assert noted.messages == [
        'DaemonSet gpu-operator/probe is exempt from the Pod Security Standards: namespace "gpu-operator" is '
        f"exempted in the policy config. Reason: {GPU_OPERATOR_REASON}."]


def test_companion_is_silent_for_checked_workloads_and_notes_only_the_same_resource() -> None:
    exempt = resource_args(DEPLOYMENT, workload("Deployment", namespace="kube-system"), name="one")
    other = resource_args(DEPLOYMENT, workload("Deployment"), name="two")
    run(POLICY, exempt)
    assert run(pod_security_exemptions.POLICY, other).not_applicable == \
        "pod-security-standards did not exempt this resource"
    run(POLICY, exempt)
    run(POLICY, other)
    assert run(pod_security_exemptions.POLICY, other).messages == []


def test_namespace_from_the_provider_then_default() -> None:
    spec = spec_with(hostIPC=True)
    from_provider = check(POLICY, DEPLOYMENT, workload("Deployment", spec, namespace=None),
                          provider_props={"namespace": "kube-system"})
    assert from_provider.not_applicable is not None and from_provider.not_applicable.startswith(
        'namespace "kube-system" is exempt')
    defaulted = check(POLICY, DEPLOYMENT, workload("Deployment", spec, namespace=None))
    assert defaulted.messages[0].startswith("Deployment default/app: spec.template.spec.hostIPC is true.")


@pytest.mark.parametrize("config, namespace, failing", [
    ({"namespaceLevels": {"legacy": "baseline"}}, "legacy", ["hostNamespaces"]),
    ({"namespaceLevels": {"legacy": "baseline"}}, "tenant-a", ["allowPrivilegeEscalation", "hostNamespaces"]),
    ({"defaultLevel": "baseline"}, "tenant-a", ["hostNamespaces"]),
    ({"defaultLevel": "baseline", "namespaceLevels": {"strict": "restricted"}}, "strict",
     ["allowPrivilegeEscalation", "hostNamespaces"]),
    ({"exemptions": [{"namespace": "ml-infra", "reason": "vendor agent"}]}, "gpu-operator",
     ["allowPrivilegeEscalation", "hostNamespaces"]),
    ({"exemptions": [{"namespace": "ml-infra", "reason": "vendor agent"}]}, "ml-infra", []),
])
def test_level_per_namespace_and_exemptions_from_config(config: dict, namespace: str, failing: list[str]) -> None:
    spec = spec_with(hostNetwork=True)
    spec["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    reported = check(POLICY, DEPLOYMENT, workload("Deployment", spec, namespace=namespace), config=config)
    controls = sorted(m.rsplit(": ", 1)[-1].rstrip("]") for m in reported.messages)
    assert controls == failing


def test_unknown_value_is_reported_once_after_the_known_violations() -> None:
    spec = spec_with(hostPID=True)
    spec["containers"][0]["securityContext"]["privileged"] = U
    spec["initContainers"][0]["securityContext"]["procMount"] = U
    for proxy in (False, True):
        reported = check(POLICY, DEPLOYMENT, workload("Deployment", spec), proxy=proxy)
        assert reported.messages == [
            "Deployment tenant-a/app: spec.template.spec.hostPID is true. Fix: remove it or set it to false; "
            "sharing the node's namespaces needs the privileged level. [PSS baseline: hostNamespaces]"]
        assert reported.unknown == (
            "Deployment tenant-a/app: spec.template.spec.containers[0].securityContext.privileged, "
            "spec.template.spec.initContainers[0].securityContext.procMount are unknown until the update runs, and "
            "this policy needs them; it checks again during `pulumi up`, when the values are known")


def test_unknown_namespace_matters_only_when_the_pod_fails_the_strictest_level() -> None:
    compliant = workload("Deployment")
    compliant["metadata"]["namespace"] = U
    assert check(POLICY, DEPLOYMENT, compliant).unknown is None
    failing = workload("Deployment", spec_with(hostNetwork=True))
    failing["metadata"]["namespace"] = U
    reported = check(POLICY, DEPLOYMENT, failing, proxy=True)
    assert reported.messages == []
    assert reported.unknown == ("Deployment <namespace unknown>/app: metadata.namespace is unknown until the "
                                "update runs, and this policy needs it; it checks again during `pulumi up`, "
                                "when the values are known")


def test_unknown_container_list_is_named() -> None:
    spec = restricted_pod_spec()
    spec["initContainers"] = U
    reported = check(POLICY, WORKLOAD_TOKENS["StatefulSet"], workload("StatefulSet", spec), proxy=True)
    assert reported.unknown is not None and "spec.template.spec.initContainers is unknown" in reported.unknown


@pytest.mark.parametrize("kind", KINDS)
def test_patch_judges_only_the_fields_it_sets(kind: str) -> None:
    token = WORKLOAD_TOKENS[kind] + "Patch"
    partial = {"containers": [{"name": "main", "image": "registry.example/app:2"}]}
    assert check(POLICY, token, workload(kind, partial)).messages == []
    partial["containers"][0]["securityContext"] = {"privileged": True, "allowPrivilegeEscalation": True}
    reported = check(POLICY, token, workload(kind, partial))
    prefix = f"{spec_path(kind)}.containers[0].securityContext"
    assert [m.split(": ", 1)[1].split(" ", 1)[0] for m in reported.messages] == [
        f"{prefix}.privileged", f"{prefix}.allowPrivilegeEscalation"]


@pytest.mark.parametrize("type_", ["kubernetes:core/v1:Namespace", "kubernetes:helm.sh/v3:Release",
                                   "kubernetes:apps/v1:ControllerRevision", "random:index:Thing", ""])
def test_other_types_are_not_applicable(type_: str) -> None:
    assert check(POLICY, type_, {"spec": {"containers": [{"securityContext": {"privileged": True}}]}}).not_applicable


def test_config_errors_name_the_key_and_fix_once_and_the_defaults_apply() -> None:
    config = {"defaultLevel": "strict", "exemptions": [{"namespace": "x"}], "bogus": 1,
              "namespaceLevels": {"a": "privileged"}}
    first = check(POLICY, DEPLOYMENT, workload("Deployment", spec_with(hostPID=True)), config=config)
    assert first.messages[0] == (
        'the policy-pack config for pod-security-standards is invalid: config key "defaultLevel" is "strict"; '
        'use one of "baseline", "restricted"; config key "namespaceLevels.a" is "privileged"; use "restricted" or '
        '"baseline" (exempt a namespace under "exemptions", with a reason); config key "exemptions[0].reason" is '
        'missing; add reason (a non-empty string); config key "bogus" is not a setting of this policy; remove it '
        "or fix its spelling. This run uses the policy's defaults instead; fix the config file passed with "
        "--policy-pack-config.")
    assert first.messages[1].endswith("[PSS baseline: hostNamespaces]")
    again = run(POLICY, resource_args(DEPLOYMENT, workload("Deployment"), config=config))
    assert again.messages == []
    exempt = run(POLICY, resource_args(DEPLOYMENT, workload("Deployment", namespace="gpu-operator"), config=config))
    assert exempt.not_applicable is not None  # the default exemptions hold while the config is broken


def test_namespace_cannot_be_both_exempt_and_levelled() -> None:
    config = {"namespaceLevels": {"gpu-operator": "baseline"}}
    reported = check(POLICY, DEPLOYMENT, workload("Deployment"), config=config)
    assert reported.messages == [
        'the policy-pack config for pod-security-standards is invalid: config key "namespaceLevels.gpu-operator" '
        "is set for an exempted namespace; either exempt the namespace or give it a level, not both. This run uses "
        "the policy's defaults instead; fix the config file passed with --policy-pack-config."]


def test_a_bug_in_a_policy_fails_closed_with_a_message_not_a_traceback() -> None:
    def broken(view: object, config: object) -> None:
        raise KeyError("boom")

    policy = resource_policy(name="broken-policy", description="d", evaluate=broken,  # type: ignore[arg-type]
                             parse_config=lambda reader: None, config_schema=PolicyConfigSchema({}),
                             remediation="r", severity=Severity.LOW, enforcement_level=EnforcementLevel.MANDATORY)
    reported = check(policy, DEPLOYMENT, workload("Deployment", name="trainer"))
    assert reported.messages == [
        "Deployment tenant-a/trainer: internal error in broken-policy (KeyError: 'boom'). The resource could not "
        "be checked, so the policy fails closed. Report this message to the policy pack's maintainers; to proceed "
        "meanwhile, set broken-policy's enforcementLevel to advisory in the policy-pack config."]
