"""Merging the GPU nodes' labels and taints with what other field managers own (components/gpu_nodes.py)."""
from __future__ import annotations

from typing import Any

from components.gpu_nodes import GpuNodeConfig, node_conflicts

GPU_TAINT = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
CORDON = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule", "timeAdded": "2026-11-29T22:00:00Z"}
DEDICATED = {"key": "dedicated", "value": "sdr", "effect": "NoSchedule"}


def config(**changes: Any) -> GpuNodeConfig:
    return GpuNodeConfig.model_validate({"name": "proj-k8sw04", "gpu": "NVIDIA-RTX-A4000", "labels": {"gpu": "true"},
                                         **changes})


def live(labels: dict[str, str] | None = None, taints: list[dict] | None = None,
         owners: dict[str, dict] | None = None) -> dict[str, Any]:
    """A node as the SDK reads it: managed fields per manager."""
    return {"metadata": {"labels": labels or {}, "managed_fields": [
                {"manager": manager, "fields_v1": fields} for manager, fields in (owners or {}).items()]},
            "spec": {"taints": taints or []}}


TAINTS_OWNED = {"f:spec": {"f:taints": {}}}


def test_a_node_nobody_else_touched_gets_our_taints_written():
    assert node_conflicts(config(), live()) == (True, [])


def test_our_own_list_is_written_even_when_it_changes():
    assert node_conflicts(config(), live(taints=[DEDICATED], owners={"gpu-platform": TAINTS_OWNED})) == (True, [])


def test_a_cordon_after_our_taint_is_left_alone_and_merged():
    state = live(taints=[GPU_TAINT, CORDON], owners={"kube-controller-manager": TAINTS_OWNED})
    assert node_conflicts(config(), state) == (False, [])


def test_the_same_list_owned_by_the_node_controller_after_a_cordon_is_shared_again():
    state = live(taints=[GPU_TAINT], owners={"kube-controller-manager": TAINTS_OWNED})
    assert node_conflicts(config(), state) == (True, [])


def test_a_hand_made_taint_beside_ours_is_merged():
    state = live(taints=[GPU_TAINT, DEDICATED], owners={"kubectl-taint": TAINTS_OWNED})
    assert node_conflicts(config(), state) == (False, [])


def test_our_taint_missing_from_a_list_someone_else_owns_stops_with_the_fix():
    state = live(taints=[DEDICATED], owners={"kubectl-taint": TAINTS_OWNED})
    write, [problem] = node_conflicts(config(), state)
    assert write is True
    assert problem == (
        "taint nvidia.com/gpu=present:NoSchedule must be added, but the node's taint list belongs to kubectl-taint "
        "(their taints: dedicated=sdr:NoSchedule). Kubernetes keeps a node's taints as one list, so adding ours "
        "conflicts with them. Fix: remove theirs (`kubectl taint node proj-k8sw04 <key>-`) and let the config add "
        "ours, or list theirs in nodes[].taints too and set nodes[].forceConflicts: true, which makes the whole "
        "list the program's with their taints kept")


def test_our_taint_missing_while_the_node_is_cordoned_says_to_wait():
    state = live(taints=[CORDON], owners={"kube-controller-manager": TAINTS_OWNED})
    _, [problem] = node_conflicts(config(), state)
    assert "the node controller owns the node's taint list now (node.kubernetes.io/unschedulable" in problem
    assert problem.endswith("Fix: wait until the node is schedulable and Ready again (`kubectl get node "
                            "proj-k8sw04`), then run pulumi up again")


def test_a_label_someone_else_set_to_another_value_stops_with_the_fix():
    state = live(labels={"gpu": "false"}, owners={"kubectl-label": {"f:metadata": {"f:labels": {"f:gpu": {}}}}})
    assert node_conflicts(config(), state) == (True, [
        "label gpu='false' belongs to kubectl-label, and the config wants 'true'. Fix: agree on one value (set it in "
        "nodes[].labels, or `kubectl label node proj-k8sw04 gpu-` to drop theirs), or set "
        "nodes[].forceConflicts: true to take it over"])


def test_a_label_someone_else_set_to_our_value_is_shared():
    state = live(labels={"gpu": "true"}, owners={"kubectl-label": {"f:metadata": {"f:labels": {"f:gpu": {}}}}})
    assert node_conflicts(config(), state) == (True, [])


def test_a_conflict_message_never_shows_a_label_value_set_as_a_secret():
    from components.config_secrets import secret_values
    from components.gpu_nodes import conflict_message

    node = config(labels={"rack": "zq8xp3-secret-rack"})
    state = live(labels={"rack": "r1"}, owners={"kubectl-label": {"f:metadata": {"f:labels": {"f:rack": {}}}}})
    _, found = node_conflicts(node, state)
    assert found and "zq8xp3-secret-rack" in found[0]  # the problem names both values...
    secrets = secret_values({"nodes": [{"labels": {"rack": "zq8xp3-secret-rack"}}]}, ["nodes"],
                            {"nodes": [(0, "labels", "rack")]})
    message = conflict_message(node, found, secrets.redact)
    assert "zq8xp3-secret-rack" not in message and "[secret]" in message  # ...the error the user sees does not
