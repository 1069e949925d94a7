"""The real __main__.py with the lab's stack file under the mock engine: inventory, schemas, bad config."""
from __future__ import annotations

import gc
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from tests.factories import ROOT, lab_raw, mutate, stack_file
from tools.k8s_schema import CrdSchemas, upstream_crd_files, validate
from tools.mockrun import PROGRAM_GC_THRESHOLD, ProgramRun, read_stack_file, run_program

KUBERNETES_VERSION = "1.34"


@pytest.fixture(scope="module")
def lab() -> ProgramRun:
    return run_program(ROOT, read_stack_file(ROOT, "lab"))


OPERATOR_COMPONENTS = {"gpu-platform:nodes:GpuNodes", "gpu-platform:operator:OperatorNamespace",
                       "gpu-platform:operator:GpuOperator", "gpu-platform:driver:DriverPools"}


def children_of(run: ProgramRun, component_types: set[str]) -> list[tuple[str, str]]:
    parents = {r.urn for r in run.resources if r.type in component_types}
    return sorted((r.type, r.name) for r in run.resources if r.custom and r.parent in parents)


def test_the_lab_declares_exactly_the_namespace_the_node_patch_the_sharing_config_and_the_release(lab):
    assert children_of(lab, OPERATOR_COMPONENTS) == [
        ("kubernetes:core/v1:ConfigMap", "gpu-platform-operator-sharing"),
        ("kubernetes:core/v1:Namespace", "gpu-platform-namespace"),
        ("kubernetes:core/v1:NodePatch", "gpu-platform-nodes-proj-k8sw04"),
        ("kubernetes:helm.sh/v3:Release", "gpu-platform-operator"),
    ]
    components = {r.type for r in lab.resources if not r.custom}
    assert components >= {"gpu-platform:index:GpuPlatform", "gpu-platform:nodes:GpuNodes",
                          "gpu-platform:operator:GpuOperator", "gpu-platform:operator:OperatorNamespace"}
    assert "gpu-platform:driver:DriverPools" not in components  # one driver for all nodes in the lab


def test_the_lab_release_pins_chart_driver_and_mps_sharing(lab):
    [release] = [r.inputs for r in lab.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    values = release["values"]
    assert release["version"] == "v26.7.0"
    assert values["driver"]["version"] == "580.173.02"
    config = values["devicePlugin"]["config"]
    assert config["default"] == "mps-4" and config["create"] is False
    [sharing] = [r.inputs for r in lab.resources if r.type == "kubernetes:core/v1:ConfigMap"
                 and r.inputs["metadata"]["name"] == config["name"]]
    assert "replicas: 4" in sharing["data"]["mps-4"] and "mps:" in sharing["data"]["mps-4"]
    assert lab.outputs["chartVersion"] == "v26.7.0"
    assert lab.outputs["sharing"] == {"default": "mps-4", "configMap": config["name"]}
    assert lab.outputs["gpuNodes"] == ["proj-k8sw04"]


def test_the_lab_node_gets_gpu_true_and_the_gpu_taint(lab):
    [patch] = [r.inputs for r in lab.resources if r.type == "kubernetes:core/v1:NodePatch"]
    assert patch["metadata"]["name"] == "proj-k8sw04"
    assert patch["metadata"]["labels"] == {"gpu": "true"}
    assert patch["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]


def manifests(run: ProgramRun) -> list[dict[str, Any]]:
    return [r.inputs for r in run.resources
            if r.custom and r.type.startswith("kubernetes:") and r.type != "kubernetes:helm.sh/v3:Release"]


def test_every_lab_manifest_validates_against_the_cluster_schema(lab, upstream):
    crds = CrdSchemas(upstream_crd_files(upstream, "v26.7.0"))
    found = {(m["kind"], m["metadata"].get("name")): validate(m, kubernetes_version=KUBERNETES_VERSION, crds=crds)
             for m in manifests(lab)}
    assert ("Namespace", "gpu-operator") in found and ("Node", "proj-k8sw04") in found
    assert {key: findings for key, findings in found.items() if findings} == {}


@pytest.mark.parametrize("tag", ["v25.10.1", "v26.3.3", "v26.7.0"])
def test_per_pool_nvidiadrivers_validate_against_the_crd_of_their_release(upstream, tag):
    raw = mutate(mutate(lab_raw(), "gpuOperator.chart.version", tag), "gpuOperator.driver", {
        "mode": "perPool", "upgradePolicy": lab_raw()["gpuOperator"]["driver"]["upgradePolicy"],
        "pools": [{"name": "a4000", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000"},
                   "version": "580.173.02" if tag != "v25.10.1" else "580.178.04"}]})
    run = run_program(ROOT, stack_file(raw))
    crds = CrdSchemas(upstream_crd_files(upstream, tag))
    [driver] = [m for m in manifests(run) if m["kind"] == "NVIDIADriver"]
    assert validate(driver, kubernetes_version=KUBERNETES_VERSION, crds=crds) == []
    [release] = [r for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    [cr] = [r for r in run.resources if r.type == "kubernetes:nvidia.com/v1alpha1:NVIDIADriver"]
    assert release.urn in cr.dependencies  # the CRD comes with the chart


def test_the_crd_check_rejects_an_unknown_spec_field(upstream):
    crds = CrdSchemas(upstream_crd_files(upstream, "v26.7.0"))
    bad = {"apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver", "metadata": {"name": "x"},
           "spec": {"driverType": "gpu", "image": "driver", "default": False, "verison": "580.173.02"}}
    [finding] = validate(bad, kubernetes_version=KUBERNETES_VERSION, crds=crds)
    assert finding.path == "spec" and "'verison' was unexpected" in finding.message


def test_a_broken_config_stops_the_program_before_anything_is_declared():
    raw = mutate(mutate(lab_raw(), "gpuOperator.driver.version", "525.85.05"), "mps", {"enabled": True})
    with pytest.raises(pulumi.RunError) as caught:
        run_program(ROOT, stack_file(raw))
    message = str(caught.value)
    # both: the unknown top-level key does not hide the driver rule, which reads only gpuOperator
    assert message.startswith("invalid stack config (2 problems); nothing was declared:\n  - gpu-platform:mps: ")
    assert "\n  - gpu-platform:gpuOperator.driver.version: NVIDIA documents these drivers" in message


def test_nothing_is_registered_when_the_config_is_invalid(recorders):
    with pytest.raises(pulumi.RunError):
        run_program(ROOT, stack_file(mutate(lab_raw(), "gpuOperator.driver.version", "latest")))
    # the mock engine saw no resource of ours (the implicit Stack is left out by the recorder)
    assert [r.resources for r in recorders] == [[]]


def test_the_program_runs_with_the_plans_gc_thresholds_and_the_callers_come_back():
    seen: list[tuple[int, ...]] = []
    before = gc.get_threshold()
    run_program(ROOT, read_stack_file(ROOT, "lab"), on_register=lambda _: seen.append(gc.get_threshold()))
    assert seen and set(seen) == {PROGRAM_GC_THRESHOLD}
    assert gc.get_threshold() == before != PROGRAM_GC_THRESHOLD


def test_a_secret_registry_password_reaches_the_cluster_only_as_a_secret():
    raw = mutate(lab_raw(), "gpuOperator.registry", {"server": "nvcr.io"})
    raw["registryPassword"] = "token-from-ngc"
    run = run_program(ROOT, stack_file(raw, secret_keys=("registryPassword",)))
    [secret] = [r for r in run.resources if r.type == "kubernetes:core/v1:Secret"]
    assert "token-from-ngc" not in json.dumps(secret.inputs.get("metadata"))
    string_data = json.dumps(secret.inputs["stringData"])
    assert "4dabf18193072939515e22adb298388d" in string_data  # marked secret end to end


def test_the_stack_file_reader_turns_structured_config_into_json():
    stack = read_stack_file(ROOT, "lab")
    assert json.loads(stack.config["gpu-platform:gpuOperator"])["chart"]["version"] == "v26.7.0"
    assert stack.secret_keys == []
    assert Path(ROOT / "Pulumi.lab.yaml").exists()


def test_every_object_the_program_owns_forces_its_apply_and_the_node_patch_never_does(lab):
    """A kubectl edit of a quota or a role makes its field another manager's; without the force, server-side apply
    refuses it back and every later preview fails with a field conflict (tests/real/test_drift.py). A node is
    shared, so its patch merges instead (components/gpu_nodes.py)."""
    owned = [r for r in lab.resources if r.custom and r.type.startswith("kubernetes:")
             and r.type not in ("kubernetes:core/v1:NodePatch", "kubernetes:helm.sh/v3:Release")]
    assert len(owned) > 20
    unforced = [r.name for r in owned if (r.inputs.get("metadata") or {}).get("annotations", {}).get(
        "pulumi.com/patchForce") != "true"]
    assert unforced == []
    [node_patch] = [r for r in lab.resources if r.type == "kubernetes:core/v1:NodePatch"]
    assert "pulumi.com/patchForce" not in (node_patch.inputs["metadata"].get("annotations") or {})
