"""Each component under the Pulumi mock engine: what it registers, with which inputs and options.

Every test returns its Output, so a failing assertion inside `apply` fails the test.
"""
from __future__ import annotations

import json
from typing import Any

import pulumi
import pytest
import yaml

from components.driver import DriverPools
from components.gpu_nodes import GpuNodes
from components.gpu_operator import GpuOperator
from components.operator_namespace import OperatorNamespace
from components.platform import GpuPlatform
from tests.factories import DELETE, compiled, lab_raw, lab_with, mutate
from tools.mockrun import Recorder, is_secret


@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    return recorder


def only(recorder: Recorder, type_token: str) -> Any:
    [registration] = recorder.by_type(type_token)
    return registration


@pulumi.runtime.test
def test_operator_namespace_is_privileged_pinned_labelled_and_protected(recorder):
    ns = OperatorNamespace("ns", "gpu-operator", kubernetes_version="1.34")

    def check(args: list[Any]) -> None:
        urn, name = args
        registration = only(recorder, "kubernetes:core/v1:Namespace")
        labels = registration.inputs["metadata"]["labels"]
        assert name == "gpu-operator", urn
        for mode in ("enforce", "audit", "warn"):
            assert labels[f"pod-security.kubernetes.io/{mode}"] == "privileged", urn
            assert labels[f"pod-security.kubernetes.io/{mode}-version"] == "v1.34", urn
        assert labels["app.kubernetes.io/name"] == "gpu-operator"
        assert labels["app.kubernetes.io/part-of"] == "gpu-platform"
        assert labels["app.kubernetes.io/managed-by"] == "pulumi"
        assert registration.protect is True, urn
        assert registration.parent == recorder.by_type("gpu-platform:operator:OperatorNamespace")[0].urn

    return pulumi.Output.all(ns.urn, ns.name).apply(check)


@pulumi.runtime.test
def test_node_patch_adds_our_labels_and_taints_with_our_field_manager(recorder):
    stack = compiled(lab_with(**{"nodes[0].sharing": "mps-4"})).stack
    nodes = GpuNodes("nodes", stack.nodes)

    def check(urn: str) -> None:
        patch = only(recorder, "kubernetes:core/v1:NodePatch")
        metadata = patch.inputs["metadata"]
        assert metadata["name"] == "proj-k8sw04", urn
        assert metadata["labels"] == {"gpu": "true", "nvidia.com/device-plugin.config": "mps-4"}
        assert metadata["annotations"] == {"pulumi.com/patchFieldManager": "gpu-platform"}
        assert patch.inputs["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "present",
                                                   "effect": "NoSchedule"}]
        assert patch.name == "nodes-proj-k8sw04"

    return nodes.patches[0].urn.apply(check)


@pulumi.runtime.test
def test_node_patch_records_the_expected_host_driver_and_can_force(recorder):
    stack = compiled(lab_with(**{"nodes[0].forceConflicts": True})).stack
    nodes = GpuNodes("nodes", stack.nodes, expected_host_driver="525.85.05")

    def check(urn: str) -> None:
        annotations = only(recorder, "kubernetes:core/v1:NodePatch").inputs["metadata"]["annotations"]
        assert annotations["gpu-platform/expected-host-driver-version"] == "525.85.05", urn
        assert annotations["pulumi.com/patchForce"] == "true", urn

    return nodes.patches[0].urn.apply(check)


@pulumi.runtime.test
def test_release_installs_the_pinned_chart_with_hooks_and_the_typed_values(recorder):
    config = compiled()
    operator = GpuOperator("gpu-operator", config.stack.gpu_operator, config.values, namespace="gpu-operator")

    def check(urn: str) -> None:
        release = only(recorder, "kubernetes:helm.sh/v3:Release").inputs
        assert release["chart"] == "gpu-operator", urn
        assert release["version"] == "v26.7.0"
        assert release["repositoryOpts"] == {"repo": "https://helm.ngc.nvidia.com/nvidia"}
        assert release["name"] == "gpu-operator" and release["namespace"] == "gpu-operator"
        assert release["createNamespace"] is False
        assert release["skipCrds"] is False and "disableCrdHooks" not in release and "disableHooks" not in release
        assert release["atomic"] is False and release["cleanupOnFail"] is True
        assert release["timeout"] == 900 and release["forceUpdate"] is False
        assert release["values"] == config.values.to_helm_values()
        assert recorder.by_type("kubernetes:core/v1:Secret") == []
        assert only(recorder, "kubernetes:helm.sh/v3:Release").protect is True

    return operator.release.urn.apply(check)


def chart_config(**chart: object) -> dict:
    return lab_with(**{"gpuOperator.chart": {"version": "v26.7.0", **chart}})


@pytest.mark.parametrize("chart,expected", [
    ({"repository": "https://mirror.lab.example/nvidia/"},
     {"chart": "gpu-operator", "repositoryOpts": {"repo": "https://mirror.lab.example/nvidia"}}),
    ({"repository": "oci://registry.lab.example/nvidia"}, {"chart": "oci://registry.lab.example/nvidia/gpu-operator"}),
])
@pulumi.runtime.test
def test_the_chart_comes_from_a_mirror_repository_or_registry(recorder, chart, expected):
    config = compiled(chart_config(**chart))
    operator = GpuOperator("gpu-operator", config.stack.gpu_operator, config.values, namespace="gpu-operator")

    def check(urn: str) -> None:
        release = only(recorder, "kubernetes:helm.sh/v3:Release").inputs
        assert {key: release.get(key) for key in expected} == expected, urn
        assert release["version"] == "v26.7.0"
        if "repositoryOpts" not in expected:
            assert "repositoryOpts" not in release

    return operator.release.urn.apply(check)


@pulumi.runtime.test
def test_the_chart_comes_from_the_published_archive_on_disk(recorder, upstream):
    archive = upstream / "gpu-operator" / "v26.7.0" / "chart" / "gpu-operator-v26.7.0.tgz"
    config = compiled(chart_config(path=str(archive)))
    operator = GpuOperator("gpu-operator", config.stack.gpu_operator, config.values, namespace="gpu-operator")

    def check(urn: str) -> None:
        release = only(recorder, "kubernetes:helm.sh/v3:Release").inputs
        assert release["chart"] == str(archive), urn
        assert "repositoryOpts" not in release

    return operator.release.urn.apply(check)


@pulumi.runtime.test
def test_registry_credentials_become_a_secret_pull_secret(recorder):
    raw = lab_with(**{"gpuOperator.registry": {"server": "nvcr.io"}, "registryPassword": "x"})
    config = compiled(raw, secret_keys=("registryPassword",))
    operator = GpuOperator("gpu-operator", config.stack.gpu_operator, config.values, namespace="gpu-operator",
                           registry_password=pulumi.Output.secret("token-123"))

    def check(urn: str) -> None:
        secret = only(recorder, "kubernetes:core/v1:Secret")
        assert secret.inputs["type"] == "kubernetes.io/dockerconfigjson", urn
        assert secret.inputs["metadata"] == {"name": "gpu-operator-registry", "namespace": "gpu-operator",
                                             "annotations": {"pulumi.com/patchForce": "true"}}
        payload = secret.inputs["stringData"]
        assert is_secret(payload) or is_secret(payload[".dockerconfigjson"])
        inner = payload["value"] if is_secret(payload) else payload[".dockerconfigjson"]["value"]
        config_json = json.loads(inner[".dockerconfigjson"] if isinstance(inner, dict) else inner)
        assert config_json["auths"]["nvcr.io"]["username"] == "$oauthtoken"
        assert config_json["auths"]["nvcr.io"]["password"] == "token-123"
        release = only(recorder, "kubernetes:helm.sh/v3:Release")
        assert secret.urn in release.dependencies
        values = release.inputs["values"]
        for section in ("operator", "validator", "driver", "toolkit", "devicePlugin", "dcgmExporter", "gfd",
                        "migManager"):
            assert values[section]["imagePullSecrets"] == ["gpu-operator-registry"], section

    return operator.release.urn.apply(check)


@pytest.mark.parametrize(("tag", "has_default"), [("v26.7.0", True), ("v26.3.3", False)])
def test_driver_pools_declare_one_nvidiadriver_per_pool(tag, has_default):
    @pulumi.runtime.test
    def run(recorder: Recorder):
        raw = mutate(lab_with(**{"gpuOperator.chart.version": tag}), "gpuOperator.driver", {
            "mode": "perPool", "upgradePolicy": lab_raw()["gpuOperator"]["driver"]["upgradePolicy"],
            "pools": [{"name": "a4000", "nodeSelector": {"gpu": "true"}, "version": "580.173.02"}]})
        op = compiled(raw).stack.gpu_operator
        pools = DriverPools("drivers", op.driver.pools, release=op.chart.release, repository=None,
                            image_pull_secrets=None)

        def check(urn: str) -> None:
            driver = only(recorder, "kubernetes:nvidia.com/v1alpha1:NVIDIADriver").inputs
            assert driver["apiVersion"] == "nvidia.com/v1alpha1" and driver["kind"] == "NVIDIADriver", urn
            assert driver["metadata"] == {"name": "a4000"}
            spec = driver["spec"]
            assert spec["version"] == "580.173.02" and spec["nodeSelector"] == {"gpu": "true"}
            assert spec["image"] == "driver" and spec["repository"] == "nvcr.io/nvidia" and spec["driverType"] == "gpu"
            assert ("default" in spec) is has_default and spec.get("default", False) is False

        return pools.drivers[0].urn.apply(check)

    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    run(recorder)


@pulumi.runtime.test
def test_the_platform_wires_namespace_nodes_and_release_in_order(recorder):
    # The operator's wiring only; tenancy's place in the platform is tested in tests/test_tenancy.py.
    platform = GpuPlatform("gpu-platform", compiled(lab_with(tenancy=DELETE)))

    def check(urn: str) -> None:
        release = only(recorder, "kubernetes:helm.sh/v3:Release")
        namespace = only(recorder, "kubernetes:core/v1:Namespace")
        patch = only(recorder, "kubernetes:core/v1:NodePatch")
        assert namespace.urn in release.dependencies, urn  # the namespace exists before the release
        assert patch.urn in release.dependencies  # node labels before the operator looks for them
        components = [r for r in recorder.resources if not r.custom]
        assert {r.parent for r in components if r.type != "gpu-platform:index:GpuPlatform"} == {platform_urn(recorder)}
        assert recorder.by_type("kubernetes:nvidia.com/v1alpha1:NVIDIADriver") == []

    return platform.operator.release.urn.apply(check)


@pulumi.runtime.test
def test_the_sharing_config_map_is_the_programs_and_the_release_waits_for_it(recorder):
    config = compiled()
    operator = GpuOperator("gpu-operator", config.stack.gpu_operator, config.values, namespace="gpu-operator")

    def check(urn: str) -> None:
        config_map = only(recorder, "kubernetes:core/v1:ConfigMap")
        assert config_map.inputs["metadata"]["name"] == "device-plugin-config-68fddfc9e6", urn
        assert config_map.inputs["metadata"]["namespace"] == "gpu-operator"
        assert config_map.inputs["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep",
                                                                "pulumi.com/patchForce": "true"}
        assert yaml.safe_load(config_map.inputs["data"]["mps-4"]) == {
            "version": "v1", "sharing": {"mps": {"renameByDefault": False,
                                                 "resources": [{"name": "nvidia.com/gpu", "replicas": 4}]}}}
        release = only(recorder, "kubernetes:helm.sh/v3:Release")
        assert config_map.urn in release.dependencies
        assert release.inputs["values"]["devicePlugin"]["config"] == {
            "create": False, "name": "device-plugin-config-68fddfc9e6", "default": "mps-4"}

    return operator.release.urn.apply(check)


def platform_urn(recorder: Recorder) -> str:
    return only(recorder, "gpu-platform:index:GpuPlatform").urn


def test_device_plugin_profiles_render_as_the_plugins_own_config():
    raw = lab_with(**{"gpuOperator.devicePlugin.sharing.profiles.ts-8": {"timeSlicing": {"replicas": 8}}})
    data = compiled(raw).stack.gpu_operator.device_plugin.sharing.config_data()
    assert yaml.safe_load(data["ts-8"]) == {"version": "v1", "sharing": {"timeSlicing": {
        "renameByDefault": False, "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 8}]}}}
    assert all(isinstance(v, str) for v in data.values())
    unchanged = mutate(lab_raw(), "nodes", lab_raw()["nodes"])
    assert compiled(unchanged).values == compiled().values

