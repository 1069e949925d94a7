"""The pack's own work grows linearly with the size of what it judges: the containers of one workload and the
resources of a stack. Counted in function calls (a measure of work that does not depend on the machine's speed
or load), never timed; bench/pack_scale.py prints the times, the SDK's share included."""
from __future__ import annotations

import copy
import sys
from collections.abc import Callable
from typing import Any

import pytest

from gpu_policies import gpu_quota, pinned_images, pod_security, rbac_bindings
from gpu_policies.resource import ResourceView

from policy_factories import restricted_container, restricted_pod_spec, workload

DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def count_calls(action: Callable[[], Any]) -> int:
    """Python and C function calls made while ``action`` runs: a measure of work that does not depend on the
    machine's speed or load."""
    calls = 0

    def profile(frame: Any, event: str, arg: Any) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    sys.setprofile(profile)
    try:
        action()
    finally:
        sys.setprofile(None)
    return calls


def gpu_workload(containers: int, name: str = "big", namespace: str = "tenant-a") -> dict[str, Any]:
    spec = restricted_pod_spec()
    spec["containers"] = [dict(restricted_container(f"c{i}"), image="busybox", ports=[{"containerPort": 80}],
                               resources={"limits": {"nvidia.com/gpu": "1"}, "requests": {"nvidia.com/gpu": "1"}})
                          for i in range(containers)]
    return workload("Deployment", spec, name=name, namespace=namespace)


@pytest.mark.parametrize("policy", [pod_security.POLICY, pinned_images.POLICY, gpu_quota.POLICY, rbac_bindings.POLICY],
                         ids=lambda p: p.name)
def test_a_policy_s_work_grows_linearly_with_the_containers_of_a_workload(policy: Any) -> None:
    config, _ = policy.load_config({})
    is_stack = policy in (gpu_quota.POLICY, rbac_bindings.POLICY)

    def work(containers: int) -> int:
        view = ResourceView(DEPLOYMENT, gpu_workload(containers), name="big", urn="urn:big")
        return count_calls(lambda: policy.evaluate([view] if is_stack else view, config))

    small, large = work(200), work(400)
    assert large <= 2.2 * small, f"{policy.name}: {small} calls for 200 containers, {large} for 400"


@pytest.mark.parametrize("policy", [gpu_quota.POLICY, rbac_bindings.POLICY], ids=lambda p: p.name)
def test_a_stack_policy_s_work_grows_linearly_with_the_stack(policy: Any) -> None:
    config, _ = policy.load_config({})

    def stack(workloads: int) -> list[ResourceView]:
        views = []
        for i in range(workloads):
            views.append(ResourceView(DEPLOYMENT, gpu_workload(3, f"w{i}", f"ns{i % 50}"), name=f"w{i}", urn=f"urn:w{i}"))
            views.append(ResourceView("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding", copy.deepcopy({
                "metadata": {"name": f"b{i}", "namespace": f"ns{i % 50}"},
                "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                "subjects": [{"kind": "User", "name": f"u{i}"}]}), name=f"b{i}", urn=f"urn:b{i}"))
        return views

    small, large = (count_calls(lambda v=stack(n): policy.evaluate(v, config)) for n in (200, 400))
    assert large <= 2.2 * small, f"{policy.name}: {small} calls for 200 workloads, {large} for 400"
