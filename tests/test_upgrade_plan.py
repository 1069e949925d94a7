"""`dev.py upgrade-plan` without a cluster: the exact config line, NVIDIA's verdict on the pair, the rollout the
upgrade policy gives, and what happens to each kind of pod; the live listing runs on the real tier
(tests/real/test_live_verify.py)."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.factories import ROOT
from tools import upgrade_plan
from tools.findings import load_stack
from tools.upgrade_plan import make_plan, nodes_at_once, pod_impact


@pytest.fixture(scope="module")
def lab():
    return load_stack("lab")


def stack_dir(tmp_path: Path, changes: dict) -> Path:
    """A program folder whose Pulumi.test.yaml is the lab's with `changes` (dotted paths in gpu-platform:*; None
    deletes)."""
    document = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())
    for path, value in changes.items():
        head, *rest = path.split(".")
        target = document["config"][f"gpu-platform:{head}"]
        for part in rest[:-1]:
            target = target[part]
        if value is None:
            del target[rest[-1]]
        else:
            target[rest[-1]] = value
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.test.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return tmp_path


def checks(plan) -> dict:
    return {f.check: f for f in plan.findings}


def test_a_driver_upgrade_names_the_line_and_the_rollout(lab) -> None:
    plan = make_plan(lab, driver="595.91.07")
    [change] = plan.changes
    lines = (ROOT / "Pulumi.lab.yaml").read_text().splitlines()
    assert (change.file, change.key) == ("Pulumi.lab.yaml", "gpu-platform:gpuOperator.driver.version")
    assert lines[change.line - 1] == change.old == "      version: 580.173.02"
    assert change.new == "      version: 595.91.07"
    assert {f.check: f.verdict for f in plan.findings} == {"driver": "pass", "pack-allowlist": "pass",
                                                           "stack-config": "pass"}
    assert checks(plan)["driver"].found == "documented (default recommended)"
    assert plan.rollout[0].startswith("1 GPU node(s) (proj-k8sw04), 1 at a time (maxParallelUpgrades 1, "
                                      "maxUnavailable 1): 1 round(s)")
    assert any(step.startswith("3. delete the pods that use a GPU, waiting up to 300 s (5 min)") for step in plan.rollout)
    assert "4. no drain (drain.enable is false): pods that do not use a GPU keep running" in plan.rollout
    assert plan.rollout[-1].startswith("The policy's waits add up to at most 300 s (5 min) per node")
    assert plan.commands[2] == ("pulumi preview --stack lab --policy-pack policies "
                                "--policy-pack-config policies/config/lab.json")
    assert plan.rollback[0] == "revert the change (gpu-platform:gpuOperator.driver.version: 580.173.02), e.g. " \
                               "`git revert` of its commit"


def test_a_documented_driver_the_pack_does_not_allow_yet_says_to_add_it_in_the_same_change(lab) -> None:
    """The pack's gpu-operator-driver-pinned refuses a preview whose driver is not in policies/config/lab.json."""
    plan = make_plan(lab, driver="610.57.04")
    assert checks(plan)["driver"].verdict == "pass"
    allowlist = checks(plan)["pack-allowlist"]
    assert (allowlist.verdict, allowlist.subject) == ("fail", "policies/config/lab.json")
    assert allowlist.found == "allowedDriverVersions is ['580.173.02', '595.91.07']"
    assert allowlist.action.startswith("add 610.57.04 to gpu-operator-driver-pinned.allowedDriverVersions in the "
                                       "same pull request")
    assert "drop 580.173.02 in a later one, after the rollout" in allowlist.action


def test_an_undocumented_driver_fails_with_the_routes_that_work(lab, capsys, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert upgrade_plan.main(["--driver", "525.85.05"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  driver                 driver 525.85.05 with chart v26.7.0" in out
    assert "525.85.05 is not a data-center driver build" in " ".join(out.split())


def test_a_chart_downgrade_warns_and_before_26_7_rolls_like_a_driver_upgrade(lab) -> None:
    plan = make_plan(lab, chart="v26.3.3")
    assert (checks(plan)["upgrade-path"].verdict, checks(plan)["upgrade-path"].found) == ("warn", "a downgrade")
    assert checks(plan)["lifecycle"].found == "deprecated by NVIDIA"
    assert any("before v26.7.0 even a chart-only upgrade can restart the driver" in s for s in plan.rollout)
    assert any(s.startswith("1 GPU node(s) (proj-k8sw04), 1 at a time") for s in plan.rollout)


def test_a_chart_upgrade_to_26_7_keeps_the_driver_and_moves_the_archive_path(tmp_path, upstream) -> None:
    old = upstream / "gpu-operator" / "v26.3.3" / "chart" / "gpu-operator-v26.3.3.tgz"
    folder = stack_dir(tmp_path, {"gpuOperator.chart.version": "v26.3.3", "gpuOperator.chart.path": str(old),
                                  "gpuOperator.chart.repository": None})
    plan = make_plan(load_stack("test", folder), chart="v26.7.0")
    assert [c.key for c in plan.changes] == ["gpu-platform:gpuOperator.chart.version",
                                             "gpu-platform:gpuOperator.chart.path"]
    assert plan.changes[1].new.strip() == f"path: {str(old).replace('v26.3.3', 'v26.7.0')}"
    assert {f.check: f.verdict for f in plan.findings} == {
        "upgrade-path": "pass", "kubernetes": "pass", "lifecycle": "pass", "driver": "pass", "stack-config": "pass"}
    assert any("from v26.7.0 a chart-only upgrade does not restart the driver" in s for s in plan.rollout)
    assert not any(s.startswith("1. cordon") for s in plan.rollout)


def test_host_mode_plans_the_install_on_the_hosts(tmp_path) -> None:
    folder = stack_dir(tmp_path, {"gpuOperator.driver": {"mode": "host", "hostVersion": "525.85.05"}})
    plan = make_plan(load_stack("test", folder), driver="535.309.01")
    assert plan.changes[0].key == "gpu-platform:gpuOperator.driver.hostVersion"
    assert plan.rollout[0].startswith("driver.mode is host: the operator does not install drivers. Install "
                                      "535.309.01 on each GPU host yourself (proj-k8sw04)")
    assert "driver" not in checks(plan)  # NVIDIA's matrix lists what the operator installs


@pytest.mark.parametrize("parallel, unavailable, nodes, expected", [
    (1, 1, 4, 1), (0, 2, 4, 2), (0, "50%", 4, 2), (3, "100%", 4, 3), (0, "10%", 4, 1)])
def test_nodes_at_once_follow_both_limits(parallel, unavailable, nodes, expected) -> None:
    policy = SimpleNamespace(max_parallel_upgrades=parallel, max_unavailable=unavailable)
    assert nodes_at_once(policy, nodes) == expected


def policy(*, force=False, empty_dir=False, drain=False, wait=""):
    return SimpleNamespace(gpu_pod_deletion=SimpleNamespace(force=force, delete_empty_dir=empty_dir, timeout_seconds=300),
                           drain=SimpleNamespace(enable=drain, pod_selector="", timeout_seconds=300),
                           wait_for_completion=SimpleNamespace(pod_selector=wait, timeout_seconds=0))


def pod(name, *, gpu=True, owner="ReplicaSet", empty_dir=False, namespace="ai-ml", labels=None):
    resources = {"limits": {"nvidia.com/gpu": "1"}} if gpu else {"requests": {"cpu": "1"}}
    return {"metadata": {"name": name, "namespace": namespace, "labels": labels or {},
                         "ownerReferences": [{"kind": owner, "controller": True}] if owner else []},
            "spec": {"containers": [{"name": "c", "resources": resources}],
                     "volumes": [{"name": "scratch", "emptyDir": {}}] if empty_dir else []},
            "status": {"phase": "Running"}}


@pytest.mark.parametrize("the_pod, the_policy, fate", [
    (pod("trainer"), policy(), "deleted; its ReplicaSet recreates it"),
    (pod("notebook", owner=""), policy(), "NOT deleted: it has no controller and gpuPodDeletion.force is false"),
    (pod("notebook", owner=""), policy(force=True), "deleted for good (no controller recreates it)"),
    (pod("cache", empty_dir=True), policy(), "NOT deleted: it uses emptyDir and gpuPodDeletion.deleteEmptyDir is false"),
    (pod("job", labels={"kind": "batch"}), policy(wait="kind=batch"), "waited for (waitForCompletion, no limit"),
    (pod("web", gpu=False), policy(drain=True), "evicted by the drain (deleted; its ReplicaSet recreates it)"),
])
def test_what_the_upgrade_does_with_each_pod(the_pod, the_policy, fate) -> None:
    impact = pod_impact(the_pod, the_policy, "gpu-operator")
    assert impact is not None and impact.fate.startswith(fate), impact


@pytest.mark.parametrize("the_pod, the_policy", [
    (pod("web", gpu=False), policy()),                                  # no drain: only GPU pods go
    (pod("exporter", gpu=False, owner="DaemonSet"), policy(drain=True)),  # a drain leaves DaemonSet pods
    (pod("device-plugin", namespace="gpu-operator"), policy()),         # the operator handles its operands
])
def test_pods_the_upgrade_leaves_alone(the_pod, the_policy) -> None:
    assert pod_impact(the_pod, the_policy, "gpu-operator") is None


@pytest.mark.parametrize("argv, message", [
    (["--driver", "580.173.02"], "upgrade-plan: gpuOperator.driver.version is already 580.173.02\n"),
    (["--chart", "v24.9.2"], "upgrade-plan: --chart 'v24.9.2' is not a chart release this program supports"),
])
def test_usage_errors_exit_2(argv, message, capsys, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert upgrade_plan.main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_json_for_automation(capsys, monkeypatch) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    assert upgrade_plan.main(["--driver", "595.91.07", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["changes"][0]["new"] == "      version: 595.91.07"
    assert document["current"] == "580.173.02" and document["target"] == "595.91.07"
    assert document["nodes"] == [{"name": "proj-k8sw04", "driver_now": None, "ready": None, "pods": []}]
    assert document["exitCode"] == 0 and document["commands"] and document["rollback"]


def test_per_pool_changes_the_pools_line_and_rolls_only_its_nodes(tmp_path) -> None:
    lab = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())["config"]["gpu-platform:gpuOperator"]["driver"]
    folder = stack_dir(tmp_path, {"gpuOperator.driver": {
        "mode": "perPool", "upgradePolicy": lab["upgradePolicy"],
        "pools": [{"name": "a4000", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000"},
                   "version": "580.173.02"},
                  {"name": "other", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}, "version": "580.173.02"}]}})
    stack = load_stack("test", folder)
    with pytest.raises(upgrade_plan.UsageError, match=r"name the pool with --pool \(a4000, other\)"):
        make_plan(stack, driver="595.91.07")
    plan = make_plan(stack, driver="595.91.07", pool="a4000")
    assert plan.changes[0].key == "gpu-platform:gpuOperator.driver.pools[0].version"
    assert plan.changes[0].new.strip().endswith("version: 595.91.07")
    assert [n.name for n in plan.nodes] == ["proj-k8sw04"]
    assert make_plan(stack, driver="595.91.07", pool="other").nodes == []
