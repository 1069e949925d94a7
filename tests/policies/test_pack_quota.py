"""gpu-quota-required (stack): every namespace where a workload requests GPUs has an unscoped ResourceQuota in
the stack bounding requests.nvidia.com/gpu."""
from __future__ import annotations

from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as U

from gpu_policies import gpu_quota

from policy_factories import KINDS, URN_PREFIX, WORKLOAD_TOKENS, restricted_pod_spec, run, stack_args, workload

POLICY = gpu_quota.POLICY
QUOTA = "kubernetes:core/v1:ResourceQuota"
DEPLOYMENT = WORKLOAD_TOKENS["Deployment"]


def gpu_workload(kind: str = "Deployment", *, namespace: str | None = "tenant-a", section: str = "limits",
                 list_name: str = "containers", amount: Any = "1", name: str = "train") -> dict[str, Any]:
    spec = restricted_pod_spec()
    spec[list_name][0]["resources"] = {section: {"nvidia.com/gpu": amount, "cpu": "2"}}
    return workload(kind, spec, namespace=namespace, name=name)


def quota(namespace: Any = "tenant-a", hard: Any = None, name: str = "gpu", **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace},
            "spec": {"hard": hard if hard is not None else {"requests.nvidia.com/gpu": "2", "pods": "10"}, **spec}}


def missing(kind: str = "Deployment", container: str = 'container "main" (containers[0])',
            path: str = 'spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]', ns: str = "tenant-a",
            name: str = "train", hint: str = "") -> str:
    return (f"{kind} {ns}/{name}, {container}: {path} requests nvidia.com/gpu, but namespace {ns} has no unscoped "
            f"ResourceQuota in this stack that bounds requests.nvidia.com/gpu{hint}. Fix: declare a "
            f'kubernetes:core/v1:ResourceQuota in namespace {ns} with spec.hard["requests.nvidia.com/gpu"] and no '
            "scopes.")


@pytest.mark.parametrize("kind", KINDS)
def test_gpu_workload_of_every_kind_needs_a_quota_in_its_namespace(kind: str) -> None:
    reported = run(POLICY, stack_args([(WORKLOAD_TOKENS[kind], "train", gpu_workload(kind))]))
    assert len(reported.messages) == 1
    assert reported.messages[0].startswith(f"{kind} tenant-a/train, ")
    assert reported.urns == [f"{URN_PREFIX}{WORKLOAD_TOKENS[kind]}::train"]
    bounded = run(POLICY, stack_args([(WORKLOAD_TOKENS[kind], "train", gpu_workload(kind)), (QUOTA, "q", quota())]))
    assert bounded.messages == []


def test_exact_message_and_init_container_requests() -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload(section="requests", list_name="initContainers"))]))
    assert reported.messages == [missing(container='init container "init" (initContainers[0])',
                                         path='spec.template.spec.initContainers[0].resources.requests["nvidia.com/gpu"]')]


def test_quota_in_another_namespace_does_not_count() -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload()), (QUOTA, "q", quota("tenant-b"))]))
    assert reported.messages == [missing()]


@pytest.mark.parametrize("quota_spec, hint", [
    ({"scopes": ["BestEffort"]}, ' (ResourceQuota "gpu" bounds it only within its scopes)'),
    ({"scopeSelector": {"matchExpressions": [{"scopeName": "PriorityClass", "operator": "In", "values": ["gpu"]}]}},
     ' (ResourceQuota "gpu" bounds it only within its scopes)'),
])
def test_scoped_quota_does_not_count(quota_spec: dict, hint: str) -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload()), (QUOTA, "q", quota(**quota_spec))]))
    assert reported.messages == [missing(hint=hint)]


@pytest.mark.parametrize("proxy", [False, True])
def test_empty_scopes_is_unscoped_as_the_sdk_delivers_it(proxy: bool) -> None:
    resources = [(DEPLOYMENT, "train", gpu_workload()), (QUOTA, "q", quota(scopes=[], scopeSelector=None))]
    assert run(POLICY, stack_args(resources, proxy=proxy)).messages == []


@pytest.mark.parametrize("key", ["nvidia.com/gpu", "limits.nvidia.com/gpu"])
def test_quota_keys_the_api_refuses_are_named(key: str) -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload()), (QUOTA, "q", quota(hard={key: "2"}))]))
    assert reported.messages == [missing(hint=f' (ResourceQuota "gpu" (key "{key}") uses a key the API does not '
                                              "accept for extended resources)")]


@pytest.mark.parametrize("amount", ["0", 0, "0.0"])
def test_zero_gpus_is_no_request(amount: object) -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload(amount=amount))]))
    assert (reported.messages, reported.not_applicable) == ([], "no workload in this stack requests nvidia.com/gpu")


def test_quota_patch_and_workload_patch_count() -> None:
    resources = [(DEPLOYMENT + "Patch", "train", gpu_workload()), (QUOTA + "Patch", "q", quota())]
    assert run(POLICY, stack_args(resources)).messages == []
    assert len(run(POLICY, stack_args(resources[:1])).messages) == 1


def test_default_namespace_applies_to_both_sides() -> None:
    resources = [(DEPLOYMENT, "train", gpu_workload(namespace=None)), (QUOTA, "q", quota(namespace=None))]
    assert run(POLICY, stack_args(resources)).messages == []


def test_configured_resource_names() -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu.shared": "1"}}
    resources = [(DEPLOYMENT, "train", workload("Deployment", spec, name="train"))]
    config = {"gpuResources": ["nvidia.com/gpu", "nvidia.com/gpu.shared"]}
    reported = run(POLICY, stack_args(resources, config))
    assert reported.messages == [
        'Deployment tenant-a/train, container "main" (containers[0]): spec.template.spec.containers[0].resources.'
        'limits["nvidia.com/gpu.shared"] requests nvidia.com/gpu.shared, but namespace tenant-a has no unscoped '
        "ResourceQuota in this stack that bounds requests.nvidia.com/gpu.shared. Fix: declare a "
        'kubernetes:core/v1:ResourceQuota in namespace tenant-a with spec.hard["requests.nvidia.com/gpu.shared"] and '
        "no scopes."]
    bounded = quota(hard={"requests.nvidia.com/gpu.shared": "4"})
    assert run(POLICY, stack_args(resources + [(QUOTA, "q", bounded)], config)).messages == []


def test_unknown_namespaces_are_reported_once_not_passed() -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload(namespace=U)), (QUOTA, "q", quota())]))
    assert reported.messages == []
    assert reported.unknown == ("the stack: Deployment <namespace unknown>/train: metadata.namespace is unknown until "
                                "the update runs, and this policy needs it; it checks again during `pulumi up`, when "
                                "the values are known")
    unknown_quota = run(POLICY, stack_args([(DEPLOYMENT, "train", gpu_workload()), (QUOTA, "q", quota(namespace=U))]))
    assert unknown_quota.messages == [] and unknown_quota.unknown is not None
    assert "whether namespace tenant-a has a quota on requests.nvidia.com/gpu" in unknown_quota.unknown


def test_unknown_quota_without_gpu_workloads_is_irrelevant() -> None:
    reported = run(POLICY, stack_args([(DEPLOYMENT, "web", workload("Deployment")), (QUOTA, "q", quota(namespace=U))]))
    assert (reported.unknown, reported.not_applicable) == (None, "no workload in this stack requests nvidia.com/gpu")


def test_bad_config_is_reported_with_the_key() -> None:
    reported = run(POLICY, stack_args([], {"gpuResources": ["requests.nvidia.com/gpu"]}))
    assert reported.messages == [
        'the policy-pack config for gpu-quota-required is invalid: config key "gpuResources" contains '
        '"requests.nvidia.com/gpu"; list extended resource names as pods request them, e.g. "nvidia.com/gpu". This '
        "run uses the policy's defaults instead; fix the config file passed with --policy-pack-config."]
