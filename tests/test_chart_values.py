"""The typed chart values against the real chart: every path we emit exists in each supported release.

The chart has no values schema and Helm ignores unknown keys, so this is the check that our model speaks
the chart's language: each emitted path must be in the release's values.yaml or among the `.Values` paths
its templates read (upstream data, see tests/conftest.py).
"""
from __future__ import annotations

import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.chart_values import ChartValues, GpuOperatorValues, Since
from components.releases import chart_version_key, supported_releases
from components.stack_config import _unwrap
from tests.factories import compiled, lab_raw, lab_with, mutate

UPSTREAM_TAGS = ["v25.10.1", "v26.3.3", "v26.7.0"]


def upstream_paths(upstream: Path, tag: str) -> set[str]:
    """Every key path of values.yaml (each prefix too) and every path the templates read."""
    values = yaml.safe_load((upstream / "gpu-operator" / tag / "values.yaml").read_text())
    paths: set[str] = set()

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                paths.add(path)
                walk(child, path)

    walk(values, "")
    for line in (upstream / "gpu-operator" / tag / "template-value-paths.txt").read_text().split():
        parts = line.split(".")
        paths.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return paths


def model_leaves(model: type[ChartValues], prefix: tuple[str, ...] = ()) -> dict[str, Since | None]:
    """Every leaf path the values model can emit, with its Since marker."""
    leaves: dict[str, Since | None] = {}
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        annotation = _unwrap(field.annotation)
        if isinstance(annotation, type) and issubclass(annotation, ChartValues):
            leaves.update(model_leaves(annotation, path))
        else:
            leaves[".".join(path)] = next((m for m in field.metadata if isinstance(m, Since)), None)
    return leaves


def documented_driver(tag: str) -> str:
    release = supported_releases()[tag]
    return next(d.version for d in release.drivers if d.recommended)


def maximal_configs(tag: str) -> list[tuple[dict[str, Any], tuple[str, ...]]]:
    """Configs that together make the program set every key it can set, for chart `tag`."""
    nri = chart_version_key(tag) >= (26, 3, 0)
    base = lab_with(**{
        "gpuOperator.chart.version": tag,
        "gpuOperator.driver.version": documented_driver(tag),
        "gpuOperator.driver.kernelModuleType": "open",
        "gpuOperator.driver.repository": "registry.lab.example/nvidia",
        "gpuOperator.registry": {"server": "nvcr.io"},
        "registryPassword": "placeholder",
        "gpuOperator.toolkit.extraEnv": [{"name": "NVIDIA_RUNTIME_SET_AS_DEFAULT", "value": "false"}],
        "gpuOperator.devicePlugin.extraEnv": [{"name": "PASS_DEVICE_SPECS", "value": "true"}],
        "gpuOperator.operator.tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu",
                                              "effect": "NoSchedule"}],
        "gpuOperator.operator.nodeSelector": {"gpu": "true"},
        "gpuOperator.mig": {"strategy": "mixed"},
        "gpuOperator.migManager.enabled": True,
        "gpuOperator.devicePlugin.sharing.profiles.ts-8": {"timeSlicing": {"replicas": 8}},
        "cluster.nriPlugin": nri,
        "nodes[0].taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
    })
    precompiled = lab_with(**{"gpuOperator.chart.version": tag, "gpuOperator.driver.version": "580",
                              "gpuOperator.driver.usePrecompiled": True})
    per_pool = mutate(lab_with(**{"gpuOperator.chart.version": tag}), "gpuOperator.driver", {
        "mode": "perPool", "upgradePolicy": lab_raw()["gpuOperator"]["driver"]["upgradePolicy"],
        "pools": [{"name": "a4000", "nodeSelector": {"gpu": "true"}, "version": documented_driver(tag)}]})
    return [(base, ("registryPassword",)), (precompiled, ()), (per_pool, ())]


def emitted(tag: str) -> list[GpuOperatorValues]:
    return [compiled(raw, secret_keys).values for raw, secret_keys in maximal_configs(tag)]


@pytest.mark.parametrize("tag", UPSTREAM_TAGS)
def test_every_emitted_path_exists_in_the_chart(upstream, tag):
    known = upstream_paths(upstream, tag)
    for values in emitted(tag):
        missing = [".".join(path) for path, _, _ in values.set_leaves() if ".".join(path) not in known]
        assert missing == [], f"chart {tag} has no {missing}"


@pytest.mark.parametrize("tag", UPSTREAM_TAGS)
def test_the_maximal_configs_exercise_every_key_the_model_has(tag):
    release = supported_releases()[tag]
    expected = {path for path, since in model_leaves(GpuOperatorValues).items()
                if since is None or release.at_least(since.version)}
    seen = {".".join(path) for values in emitted(tag) for path, _, _ in values.set_leaves()}
    assert expected - seen == set()


def test_since_markers_match_the_chart(upstream):
    for path, since in model_leaves(GpuOperatorValues).items():
        if since is None:
            continue
        for tag in UPSTREAM_TAGS:
            present = path in upstream_paths(upstream, tag)
            assert present == supported_releases()[tag].at_least(since.version), (path, tag)


def test_a_key_the_pinned_release_lacks_is_rejected():
    from tests.factories import problems

    raw = lab_with(**{"gpuOperator.chart.version": "v25.10.1", "gpuOperator.driver.version": "580.178.04",
                      "cluster.nriPlugin": True})
    assert ("gpu-platform:cluster.nriPlugin", "the NRI plugin (cdi.nriPluginEnabled) needs chart v26.3.0 or newer; "
                                              "v25.10.1 is pinned") in problems(raw)
    # the values-level check catches the key even where no config rule names it
    values = compiled(lab_with(**{"cluster.nriPlugin": True})).values
    assert values.unavailable_in(supported_releases()["v25.10.1"]) == [(("cdi", "nriPluginEnabled"), "v26.3.0")]


@pytest.mark.parametrize("tag", UPSTREAM_TAGS)
def test_env_values_are_strings(tag):
    for values in emitted(tag):
        dumped = values.to_helm_values()
        for section in dumped.values():
            for entry in (section.get("env") or []) if isinstance(section, dict) else []:
                assert isinstance(entry["value"], str), entry


def test_the_lab_values_are_exactly_what_the_lab_needs():
    values = compiled().values.to_helm_values()
    sharing = values["devicePlugin"]["config"]
    assert values["driver"]["version"] == "580.173.02"
    assert values["driver"]["upgradePolicy"]["maxParallelUpgrades"] == 1
    assert values["toolkit"]["env"] == [{"name": "CONTAINERD_SOCKET", "value": "/run/k3s/containerd/containerd.sock"}]
    # the program creates the ConfigMap (components/sharing.py); the chart only names it
    assert sharing == {"create": False, "name": "device-plugin-config-68fddfc9e6", "default": "mps-4"}
    assert values["migManager"] == {"enabled": False}
    assert values["gfd"] == {"enabled": True}
    assert values["dcgmExporter"]["serviceMonitor"]["additionalLabels"] == {"release": "kube-prometheus-stack"}
    # the operator is not pinned to the GPU worker (Pulumi.lab.yaml says why): the chart's placement and tolerations
    assert "nodeSelector" not in values["operator"] and "tolerations" not in values["operator"]
    assert "daemonsets" not in values  # the default taint key is tolerated by every operand already


def test_a_custom_taint_key_is_tolerated_by_operands_and_nfd():
    values = compiled(lab_with(**{"nodes[0].taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}],
                                  "gpuOperator.operator.nodeSelector": {"gpu": "true"}}))
    dumped = values.values.to_helm_values()
    dedicated = {"key": "dedicated", "operator": "Exists", "effect": "NoSchedule"}
    assert dedicated in dumped["daemonsets"]["tolerations"]
    assert dedicated in dumped["node-feature-discovery"]["worker"]["tolerations"]
    assert dedicated in dumped["operator"]["tolerations"]


def test_a_sharing_change_renames_the_device_plugin_config():
    before = compiled().values.to_helm_values()["devicePlugin"]["config"]["name"]
    after = compiled(lab_with(**{"gpuOperator.devicePlugin.sharing.profiles.mps-4.mps.replicas": 6}))
    renamed = after.values.to_helm_values()["devicePlugin"]["config"]["name"]
    assert before.startswith("device-plugin-config-") and renamed.startswith("device-plugin-config-")
    assert before != renamed
    assert compiled().values.to_helm_values()["devicePlugin"]["config"]["name"] == before  # deterministic


def test_every_model_is_closed_to_unknown_keys():
    def models(model: type[ChartValues]) -> list[type[ChartValues]]:
        found = [model]
        for field in model.model_fields.values():
            annotation = _unwrap(field.annotation)
            for candidate in (annotation, *typing.get_args(annotation)):
                if isinstance(candidate, type) and issubclass(candidate, ChartValues):
                    found += models(candidate)
        return found

    assert all(m.model_config.get("extra") == "forbid" and m.model_config.get("frozen") for m in models(GpuOperatorValues))
