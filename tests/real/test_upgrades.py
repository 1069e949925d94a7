"""Day-2 upgrades, each one `pulumi up` after one config change, checked on the cluster afterwards.

Given the lab stack deployed, when the driver, the chart or the sharing profile changes, then Helm records one
new deployed revision, the ClusterPolicy carries the change, and the device plugin's ConfigMap the ClusterPolicy
names exists at every moment, also when the upgrade fails half way.
"""
from __future__ import annotations

import json
from typing import Any

from components.sharing import SharingConfig
from tests.real.harness import EXTRA_TOLERATION, MPS_4_CONFIG_MAP, helm_release, operator_cannot_roll
from tools.kube import Kube
from tools.stacks import Stack, chart_archive

TIME_SLICING = {"default": "ts-4", "profiles": {"ts-4": {"timeSlicing": {"replicas": 4}}}}
TS_4_CONFIG_MAP = SharingConfig.model_validate(TIME_SLICING).config_map_name()


def cluster_policy(kube: Kube) -> dict[str, Any]:
    return kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]


def config_map_names(kube: Kube) -> set[str]:
    return {c["metadata"]["name"] for c in kube.list("v1", "ConfigMap", "gpu-operator")
            if c["metadata"]["name"].startswith("device-plugin-config-")}


def test_driver_580_to_595_on_chart_v26_7_0(lab: Stack, kube: Kube) -> None:
    assert lab.up().returncode == 0
    lab.set("gpuOperator.driver.version", "595.91.07")
    result = lab.up()
    assert result.returncode == 0, result.output
    release = helm_release(kube)
    assert (release["labels"]["status"], release["labels"]["version"]) == ("deployed", "2")
    assert release["record"]["config"]["driver"]["version"] == "595.91.07"
    assert release["record"]["chart"]["metadata"]["version"] == "v26.7.0"
    assert cluster_policy(kube)["driver"]["version"] == "595.91.07"


def test_chart_v26_3_3_to_v26_7_0_with_the_driver_unchanged(lab: Stack, kube: Kube) -> None:
    lab.set("gpuOperator.chart.version", "v26.3.3").set("gpuOperator.chart.path", str(chart_archive("v26.3.3")))
    assert lab.up().returncode == 0
    assert helm_release(kube)["record"]["chart"]["metadata"]["version"] == "v26.3.3"
    lab.set("gpuOperator.chart.version", "v26.7.0").set("gpuOperator.chart.path", str(chart_archive("v26.7.0")))
    result = lab.up()
    assert result.returncode == 0, result.output
    release = helm_release(kube)
    assert (release["labels"]["status"], release["labels"]["version"]) == ("deployed", "2")
    assert release["record"]["chart"]["metadata"]["version"] == "v26.7.0"
    ran = {hook["name"] for hook in release["record"]["hooks"] if hook["kind"] == "Job" and hook["last_run"]["phase"]}
    assert ran == {"gpu-operator-upgrade-crd"}, ran
    assert cluster_policy(kube)["driver"]["version"] == "580.173.02"
    operator = kube.get("apps/v1", "Deployment", "gpu-operator", "gpu-operator")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":v26.7.0")


def test_mps_to_time_slicing_moves_the_cluster_policy_and_drops_the_old_config_map_last(lab: Stack,
                                                                                         kube: Kube) -> None:
    assert lab.up().returncode == 0
    assert config_map_names(kube) == {MPS_4_CONFIG_MAP}
    lab.set("gpuOperator.devicePlugin.sharing", TIME_SLICING)
    preview = lab.preview("--json")
    assert preview.returncode == 0, preview.output
    changed = {step["urn"].rsplit("::", 1)[1]: step["op"] for step in json.loads(preview.stdout)["steps"]
               if step["op"] not in ("same", "read")}
    # The renamed ConfigMap is replaced (created first, the old one deleted after the release moved to it).
    assert changed == {"gpu-platform-operator-sharing": "replace", "gpu-platform-operator": "update"}
    result = lab.up()
    assert result.returncode == 0, result.output
    assert cluster_policy(kube)["devicePlugin"]["config"] == {"name": TS_4_CONFIG_MAP, "default": "ts-4"}
    assert config_map_names(kube) == {TS_4_CONFIG_MAP}


def test_a_failed_sharing_upgrade_leaves_the_cluster_policy_naming_a_config_map_that_exists(lab: Stack,
                                                                                           kube: Kube) -> None:
    """The upgrade changes sharing and the operator's pod template; the new operator pod cannot be scheduled, so
    Helm's wait fails after the ClusterPolicy was updated. cleanupOnFail then deletes what the upgrade created."""
    lab.set("gpuOperator.chart.timeoutSeconds", 60)
    assert lab.up().returncode == 0
    with operator_cannot_roll(kube):
        lab.set("gpuOperator.devicePlugin.sharing", TIME_SLICING)
        lab.set("gpuOperator.operator.tolerations", EXTRA_TOLERATION)
        failed = lab.up()
        assert failed.returncode != 0
        assert helm_release(kube)["labels"]["status"] == "failed"
        named = cluster_policy(kube)["devicePlugin"]["config"]["name"]
        assert named in config_map_names(kube), (named, config_map_names(kube))
    # With the cause gone, a plain up retries the upgrade (docs/runbook.md: no refresh before it).
    recovered = lab.up()
    assert recovered.returncode == 0, recovered.output
    assert helm_release(kube)["labels"]["status"] == "deployed"
    assert cluster_policy(kube)["devicePlugin"]["config"]["name"] == TS_4_CONFIG_MAP
    assert config_map_names(kube) == {TS_4_CONFIG_MAP}
