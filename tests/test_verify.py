"""`dev.py verify`'s checks, without a cluster: a snapshot of a healthy lab cluster as the baseline, one change per
case, and the verdict and message each change must give. The same failures on a real API server:
tests/real/test_live_verify.py."""
from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tools import verify
from tools.findings import exit_code, load_stack, render_json, render_text
from tools.verify import DeclaredObject, Expectation, Live, differences, run_checks

ROOT = Path(__file__).resolve().parent.parent
NODE = "proj-k8sw04"


@pytest.fixture(scope="module")
def expect() -> Expectation:
    return Expectation(load_stack("lab"), verify.declared_manifests(ROOT, "lab"))


def healthy(expect: Expectation) -> Live:
    """The lab as it should look after `pulumi up` and the operator's rollout: what every case starts from."""
    stack = expect.stack
    sharing = stack.gpu_operator.device_plugin.sharing
    config_map = sharing.config_map_name()
    node = {
        "metadata": {"name": NODE, "labels": {
            "gpu": "true", "nvidia.com/gpu.present": "true", "nvidia.com/gpu.product": "NVIDIA-RTX-A4000-SHARED",
            "nvidia.com/gpu.count": "1", "nvidia.com/cuda.driver-version.full": "580.173.02",
            "nvidia.com/gpu.sharing-strategy": "mps", "nvidia.com/gpu.replicas": "4",
            "nvidia.com/gpu-driver-upgrade-state": "upgrade-done"}},
        "spec": {"taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]},
        "status": {"allocatable": {"cpu": "16", "nvidia.com/gpu": "4"},
                   "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady"}]},
    }
    declared = [DeclaredObject(m, {**copy.deepcopy(m), "status": {}, "metadata": {
        **copy.deepcopy(m["metadata"]), "uid": "x", "resourceVersion": "1"}}) for m in expect.declared]
    return Live(
        cluster_policies=[{"metadata": {"name": "cluster-policy"},
                           "spec": {"driver": {"version": "580.173.02"},
                                    "devicePlugin": {"config": {"name": config_map, "default": "mps-4"}}},
                           "status": {"state": "ready", "namespace": "gpu-operator"}}],
        nvidia_drivers=[],
        nodes={NODE: node},
        config_maps={config_map: {"metadata": {"name": config_map}, "data": sharing.config_data()}},
        services={"nvidia-dcgm-exporter": {"metadata": {"name": "nvidia-dcgm-exporter",
                                                        "labels": {"app": "nvidia-dcgm-exporter"}},
                                           "spec": {"ports": [{"name": "gpu-metrics", "port": 9400}]}}},
        endpoint_slices=[{"metadata": {"name": "nvidia-dcgm-exporter-abc", "labels": {
            "kubernetes.io/service-name": "nvidia-dcgm-exporter"}},
            "endpoints": [{"addresses": ["10.0.0.5"], "nodeName": NODE, "conditions": {"ready": True}}]}],
        service_monitors=[{"metadata": {"name": "nvidia-dcgm-exporter",
                                        "labels": {"app": "nvidia-dcgm-exporter", "release": "kube-prometheus-stack"}},
                           "spec": {"endpoints": [{"port": "gpu-metrics", "path": "/metrics"}],
                                    "namespaceSelector": {"matchNames": ["gpu-operator"]},
                                    "selector": {"matchLabels": {"app": "nvidia-dcgm-exporter"}}}}],
        declared=declared,
    )


def failed(findings: list) -> list:
    return [f for f in findings if f.verdict == "fail"]


def test_a_healthy_lab_passes_every_check(expect: Expectation) -> None:
    findings = run_checks(expect, healthy(expect))
    assert failed(findings) == [] and exit_code(findings) == 0
    checks = {f.check for f in findings}
    assert checks >= {"clusterpolicy", "node-ready", "node-config", "gfd-labels", "driver-version", "sharing",
                      "device-plugin-config", "dcgm-endpoints", "dcgm-servicemonitor", "pod-security", "quotas",
                      "rbac", "declared-objects", "admission-policies"}  # the lab stack declares them (issue 13)


def node(live: Live) -> dict[str, Any]:
    return live.nodes[NODE]


def labels(live: Live) -> dict[str, str]:
    return node(live)["metadata"]["labels"]


def not_ready(live: Live) -> None:
    node(live)["status"]["conditions"] = [{"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
                                          "message": "Kubelet stopped posting node status."}]
    node(live)["spec"]["taints"].append({"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"})


def not_rolled_out(live: Live) -> None:
    live.cluster_policies[0]["status"] = {"state": "notReady"}
    del labels(live)["nvidia.com/cuda.driver-version.full"]


def old_driver(live: Live) -> None:
    labels(live)["nvidia.com/cuda.driver-version.full"] = "580.126.20"
    labels(live)["nvidia.com/gpu-driver-upgrade-state"] = "pod-deletion-required"


def one_instead_of_four(live: Live) -> None:
    node(live)["status"]["allocatable"]["nvidia.com/gpu"] = "1"


def quota_changed(live: Live) -> None:
    quota = next(d for d in live.declared if d.manifest["kind"] == "ResourceQuota"
                 and d.manifest["metadata"]["name"] == "tenant-quota")
    quota.live["spec"]["hard"]["requests.nvidia.com/gpu"] = "4"


def psa_relaxed(live: Live) -> None:
    namespace = next(d for d in live.declared if d.manifest["kind"] == "Namespace"
                     and d.manifest["metadata"]["name"] == "ai-ml")
    namespace.live["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "privileged"


def binding_gone(live: Live) -> None:
    binding = next(d for d in live.declared if d.manifest["kind"] == "RoleBinding")
    live.declared[live.declared.index(binding)] = DeclaredObject(binding.manifest, None)


def config_map_deleted(live: Live) -> None:
    live.config_maps.clear()


def monitor_unlabelled(live: Live) -> None:
    del live.service_monitors[0]["metadata"]["labels"]["release"]


def no_endpoint(live: Live) -> None:
    live.endpoint_slices[0]["endpoints"][0]["conditions"]["ready"] = False


def release_not_updated(live: Live) -> None:
    live.cluster_policies[0]["spec"]["driver"]["version"] = "580.126.20"


def no_chart(live: Live) -> None:
    live.cluster_policies = None


CASES: list[tuple[str, Callable[[Live], None], str, str, str]] = [
    # (case, mutation, check, subject, text the finding's found or action must contain)
    ("a NotReady node", not_ready, "node-ready", f"node {NODE}", "NotReady (NodeStatusUnknown: Kubelet stopped"),
    ("the driver not yet rolled out", not_rolled_out, "driver-version", f"node {NODE}", "no driver version label"),
    ("the driver not yet rolled out", not_rolled_out, "clusterpolicy", "ClusterPolicy cluster-policy",
     "state notReady"),
    ("a node on the old driver", old_driver, "driver-version", f"node {NODE}",
     "driver 580.126.20 (driver upgrade state: pod-deletion-required)"),
    ("a device plugin advertising 1 instead of 4", one_instead_of_four, "sharing", f"node {NODE}",
     "allocatable nvidia.com/gpu: 1"),
    ("a missing GFD label", lambda live: labels(live).pop("nvidia.com/gpu.present"), "gfd-labels", f"node {NODE}",
     "nvidia.com/gpu.present missing"),
    ("a missing node label of the config", lambda live: labels(live).pop("gpu"), "node-config", f"node {NODE}",
     "label gpu missing"),
    ("another GPU than configured", lambda live: labels(live).update({"nvidia.com/gpu.product": "Tesla-T4"}),
     "gfd-labels", f"node {NODE}", "nvidia.com/gpu.product is 'Tesla-T4'"),
    ("a sharing label that disagrees", lambda live: labels(live).update({"nvidia.com/gpu.replicas": "2"}),
     "sharing", f"node {NODE}", "nvidia.com/gpu.replicas is '2' (want 4)"),
    ("the device-plugin ConfigMap deleted", config_map_deleted, "device-plugin-config",
     "ClusterPolicy cluster-policy", "does not exist"),
    ("a release older than the config", release_not_updated, "clusterpolicy", "ClusterPolicy cluster-policy",
     "spec.driver.version 580.126.20"),
    ("no chart on the cluster", no_chart, "clusterpolicy", "ClusterPolicy", "no clusterpolicies.nvidia.com CRD"),
    ("an exporter without a ready endpoint", no_endpoint, "dcgm-endpoints",
     f"Service gpu-operator/nvidia-dcgm-exporter on {NODE}", "DcgmExporterDown"),
    ("a ServiceMonitor Prometheus does not select", monitor_unlabelled, "dcgm-servicemonitor",
     "ServiceMonitor gpu-operator/nvidia-dcgm-exporter", "label release missing"),
    ("a quota changed by hand", quota_changed, "quotas", "",
     "spec.hard.requests.nvidia.com/gpu is '4', declared '2'"),
    ("Pod Security relaxed by hand", psa_relaxed, "pod-security", "",
     "Namespace ai-ml: metadata.labels.pod-security.kubernetes.io/enforce is 'privileged', declared 'restricted'"),
    ("a role binding deleted", binding_gone, "rbac", "", "is missing"),
]


@pytest.mark.parametrize("case, mutate, check, subject, text", CASES, ids=[f"{c[0]}: {c[2]}" for c in CASES])
def test_each_failure_gives_its_verdict_and_message(expect: Expectation, case: str, mutate: Callable[[Live], None],
                                                    check: str, subject: str, text: str) -> None:
    live = healthy(expect)
    mutate(live)
    findings = run_checks(expect, live)
    matching = [f for f in failed(findings) if f.check == check and (not subject or f.subject == subject)]
    assert matching, f"{case}: no failed {check} finding in {[(f.check, f.subject) for f in failed(findings)]}"
    [finding] = matching
    assert text in finding.found or text in finding.action, finding
    assert finding.expected and finding.action, "a failure says what was expected and what to do"
    assert exit_code(findings) == 1


def test_a_node_not_ready_fails_only_its_readiness(expect: Expectation) -> None:
    """The labels of a NotReady node are last known and still right; only its readiness is the finding."""
    live = healthy(expect)
    not_ready(live)
    assert [(f.check, f.subject) for f in failed(run_checks(expect, live))] == [("node-ready", f"node {NODE}")]


def test_the_old_driver_says_what_the_pin_is_and_where_it_comes_from(expect: Expectation) -> None:
    live = healthy(expect)
    old_driver(live)
    [finding] = [f for f in run_checks(expect, live) if f.check == "driver-version"]
    assert finding.expected == "nvidia.com/cuda.driver-version.full=580.173.02 (gpuOperator.driver.version)"
    assert "the upgrade controller has not reached it or is stuck at pod-deletion-required" in finding.action


def test_host_mode_expects_the_recorded_host_driver(expect: Expectation) -> None:
    from tests.factories import lab_with
    from components.stack_config import compile_config
    from tools.findings import LoadedStack

    raw = lab_with(**{"gpuOperator.driver": {"mode": "host", "hostVersion": "525.85.05"}})
    host = Expectation(LoadedStack("lab", ROOT / "Pulumi.lab.yaml", raw, compile_config(raw)), expect.declared)
    live = healthy(host)
    [finding] = [f for f in run_checks(host, live) if f.check == "driver-version"]
    assert finding.verdict == "fail"
    assert finding.expected == "nvidia.com/cuda.driver-version.full=525.85.05 (gpuOperator.driver.hostVersion)"
    assert "the host runs 580.173.02" in finding.action
    labels(live)["nvidia.com/cuda.driver-version.full"] = "525.85.05"
    assert [f.verdict for f in run_checks(host, live) if f.check == "driver-version"] == ["pass"]


def test_an_nvidiadriver_that_is_not_ready_fails(expect: Expectation) -> None:
    live = healthy(expect)
    live.nvidia_drivers = [{"metadata": {"name": "other"}, "spec": {"version": "580.173.02"},
                            "status": {"state": "notReady"}}]
    [finding] = [f for f in run_checks(expect, live) if f.check == "nvidiadriver"]
    assert (finding.verdict, finding.found) == ("fail", "state notReady")


def test_admission_policies_are_checked_once_the_program_declares_them(expect: Expectation) -> None:
    """The two-planes issue's policies: a declared ValidatingAdmissionPolicy and its binding get their own check."""
    policy = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
              "metadata": {"name": "gpu-tenant-rules"}, "spec": {"failurePolicy": "Fail"}}
    binding = {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
               "metadata": {"name": "gpu-tenant-rules"}, "spec": {"policyName": "gpu-tenant-rules",
                                                                  "validationActions": ["Deny"]}}
    live = healthy(expect)
    live.declared += [DeclaredObject(policy, copy.deepcopy(policy)), DeclaredObject(binding, None)]
    [finding] = [f for f in run_checks(expect, live) if f.check == "admission-policies"]
    assert finding.verdict == "fail"
    assert finding.found == "ValidatingAdmissionPolicyBinding gpu-tenant-rules is missing"


@pytest.mark.parametrize("declared, found, expected", [
    ({"hard": {"requests.cpu": "0.5"}}, {"hard": {"requests.cpu": "500m"}}, []),
    ({"hard": {"requests.memory": "1Gi"}}, {"hard": {"requests.memory": "1024Mi"}}, []),
    # the config's full quantity grammar (exponents), as the API normalises it
    ({"hard": {"requests.cpu": "1e3"}}, {"hard": {"requests.cpu": "1k"}}, []),
    ({"hard": {"requests.cpu": "2"}}, {"hard": {"requests.cpu": "4"}}, ["hard.requests.cpu is '4', declared '2'"]),
    ({"a": 1}, {"a": 1, "b": 2}, []),
    ({"a": [1, 2]}, {"a": [1]}, ["a is [1], declared [1, 2]"]),
    ({"a": {"b": "x"}}, {}, ["a is missing, declared {'b': 'x'}"]),
    ({"enabled": True}, {"enabled": "true"}, ["enabled is 'true', declared True"]),
    ({"globalDefault": False, "x": ""}, {}, []),  # the API leaves zero values out (omitempty)
    ({"globalDefault": True}, {}, ["globalDefault is missing, declared True"]),
])
def test_drift_ignores_what_the_api_adds_and_normalises(declared: Any, found: Any, expected: list[str]) -> None:
    assert differences(declared, found) == expected


def test_reports_for_people_and_for_automation(expect: Expectation) -> None:
    live = healthy(expect)
    one_instead_of_four(live)
    findings = run_checks(expect, live)
    text = render_text("verify: stack lab", findings)
    assert "FAIL  sharing                node proj-k8sw04" in text
    assert "      expected: allocatable nvidia.com/gpu: 4 = 1 GPU(s) x 4 (mps profile 'mps-4')" in text
    assert "      do:       the device plugin serves another config" in text
    document = json.loads(render_json({"command": "verify"}, findings))
    assert document["exitCode"] == 1 and document["summary"]["fail"] == 1
    assert {"check", "subject", "verdict", "expected", "found", "action"} <= set(document["findings"][0])


def test_an_unreachable_cluster_is_one_line_and_exit_code_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "gone",
        "clusters": [{"name": "gone", "cluster": {"server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "me", "user": {"token": "not-a-real-token"}}],
        "contexts": [{"name": "gone", "context": {"cluster": "gone", "user": "me"}}]}))
    assert verify.main(["--kubeconfig", str(kubeconfig)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("verify: cannot use the cluster: https://127.0.0.1:1:") and err.count("\n") == 1
    assert "not-a-real-token" not in err


def test_a_context_that_is_not_in_the_kubeconfig_is_a_usage_error(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(json.dumps({"apiVersion": "v1", "kind": "Config", "clusters": [], "users": [],
                                      "contexts": []}))
    assert verify.main(["--kubeconfig", str(kubeconfig), "--context", "lab"]) == 2
    assert "context 'lab' (or its cluster) is not in" in capsys.readouterr().err


def test_an_unknown_stack_is_a_usage_error(capsys: pytest.CaptureFixture) -> None:
    assert verify.main(["--stack", "nope"]) == 2
    assert capsys.readouterr().err.startswith("verify: no stack file Pulumi.nope.yaml")


def test_a_kubeconfig_that_does_not_exist_is_named(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert verify.main(["--kubeconfig", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err == f"verify: --kubeconfig {tmp_path / 'nope'}: no such file\n"


def per_pool(expect: Expectation) -> Expectation:
    """The lab with its driver managed per pool: one NVIDIADriver `a4000` selecting the A4000 node."""
    from components.stack_config import compile_config
    from tests.factories import lab_raw
    from tools.findings import LoadedStack

    raw = lab_raw()
    policy = raw["gpuOperator"]["driver"]["upgradePolicy"]
    raw["gpuOperator"]["driver"] = {"mode": "perPool", "upgradePolicy": policy, "pools": [
        {"name": "a4000", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000"}, "version": "595.91.07"}]}
    return Expectation(LoadedStack("lab", ROOT / "Pulumi.lab.yaml", raw, compile_config(raw)), expect.declared)


def test_per_pool_each_pool_needs_its_nvidiadriver_at_its_version(expect: Expectation) -> None:
    pools = per_pool(expect)
    live = healthy(pools)
    live.nvidia_drivers = []
    findings = run_checks(pools, live)
    [missing] = [f for f in findings if f.check == "nvidiadriver"]
    assert (missing.verdict, missing.subject, missing.found) == ("fail", "NVIDIADriver a4000", "missing")
    live.nvidia_drivers = [{"metadata": {"name": "a4000"}, "spec": {"version": "595.91.07"},
                            "status": {"state": "ready"}}]
    labels(live)["nvidia.com/cuda.driver-version.full"] = "595.91.07"
    findings = run_checks(pools, live)
    assert [f.verdict for f in findings if f.check in ("nvidiadriver", "driver-version")] == ["pass", "pass"]
    [driver] = [f for f in findings if f.check == "driver-version"]
    assert driver.expected == ("nvidia.com/cuda.driver-version.full=595.91.07 "
                               "(gpuOperator.driver.pools[0].version)")


def test_sharing_labels_not_written_yet_point_at_gfd_not_at_the_device_plugin(expect: Expectation) -> None:
    live = healthy(expect)
    del labels(live)["nvidia.com/gpu.sharing-strategy"], labels(live)["nvidia.com/gpu.replicas"]
    [finding] = [f for f in run_checks(expect, live) if f.check == "sharing"]
    assert finding.verdict == "fail"
    assert finding.action.startswith("GFD has not written its sharing labels on the node yet")


def test_a_stack_never_deployed_says_so_once_per_group(expect: Expectation) -> None:
    live = healthy(expect)
    live.declared = [DeclaredObject(d.manifest, None) for d in live.declared]
    [rbac] = [f for f in run_checks(expect, live) if f.check == "rbac"]
    assert rbac.found.startswith("none of them exists (ClusterRole gpu-platform-observer")
    assert rbac.action.startswith("`pulumi up` has not run for this stack on this cluster")
