"""The stack config model: the lab config is valid, and every rule rejects its mistake with a clear message."""
from __future__ import annotations

import json

import pytest

from components.stack_config import ConfigError, compile_config
from tests.factories import DELETE, compiled, lab_raw, lab_with, mutate, problems

DOCS_V26_7 = "535.309.01, 580.173.02, 595.91.07 (default, recommended), 610.57.04"


def test_lab_config_is_valid_and_pins_chart_and_driver():
    stack = compiled().stack
    assert stack.gpu_operator.chart.version == "v26.7.0"
    assert stack.gpu_operator.driver.mode == "operator"
    assert stack.gpu_operator.driver.version == "580.173.02"
    assert [n.name for n in stack.nodes] == ["proj-k8sw04"]


def test_models_are_frozen():
    stack = compiled().stack
    with pytest.raises(Exception, match="frozen"):
        stack.cluster.kubernetes_version = "1.35"  # type: ignore[misc]


def test_the_design_notes_driver_is_rejected_with_the_reason_and_both_routes():
    [(path, message)] = problems(lab_with(**{"gpuOperator.driver.version": "525.85.05"}))
    assert path == "gpu-platform:gpuOperator.driver.version"
    assert message == (
        f"NVIDIA documents these drivers for chart v26.7.0: {DOCS_V26_7}; 525.85.05 is not one of them. "
        "525.85.05 is not a data-center driver build: NVIDIA's driver-container CI built branch R525 only as "
        "525.60.13, 525.85.12, 525.105.17, 525.125.06, 525.147.05, so no image nvcr.io/nvidia/driver:525.85.05-<os> "
        "exists, and R525 is end of life (last built 2024-02-21). Two routes work: (1) pin a driver documented for "
        "v26.7.0 (gpuOperator.driver.version: 595.91.07, for example); (2) install 525.85.05 on the hosts yourself "
        "and set driver.mode: host with driver.hostVersion: \"525.85.05\" (the operator then labels the node "
        "nvidia.com/gpu.deploy.driver=pre-installed).")


def test_route_two_host_installed_525_is_accepted_and_disables_the_operator_driver():
    raw = lab_with(**{"gpuOperator.driver": {"mode": "host", "hostVersion": "525.85.05"}})
    config = compiled(raw)
    assert config.values.to_helm_values()["driver"] == {"enabled": False}


@pytest.mark.parametrize(("version", "message"), [
    ("latest", "'latest' is not a pin; write one exact version such as 580.173.02"),
    ("580.173.02-ubuntu22.04", "write the bare version '580.173.02': the operator appends -<os> itself "
                               "(NVIDIA/gpu-operator#690)"),
    ("580", "'580' is a branch; a branch is only valid with usePrecompiled: true. Write one exact version"),
    (">=580.0.0", "'>=580.0.0' is not one exact driver version of the form 580.173.02"),
    ("580.173", "'580.173' is not one exact driver version of the form 580.173.02"),
    ("", "a driver version is required; without one the chart's default applies, and it moves with every chart "
         "release"),
])
def test_unpinned_driver_versions_are_rejected(version, message):
    assert problems(lab_with(**{"gpuOperator.driver.version": version})) == [
        ("gpu-platform:gpuOperator.driver.version", message)]


def test_absent_driver_version_is_rejected():
    assert problems(lab_with(**{"gpuOperator.driver.version": DELETE})) == [(
        "gpu-platform:gpuOperator.driver.version",
        "a driver version is required; without one the chart's default applies, and it moves with every chart release")]


def test_a_branch_is_accepted_with_precompiled_drivers():
    values = compiled(lab_with(**{"gpuOperator.driver.version": "580",
                                  "gpuOperator.driver.usePrecompiled": True})).values.to_helm_values()
    assert values["driver"]["version"] == "580"
    assert values["driver"]["usePrecompiled"] is True


def test_a_driver_documented_for_another_release_only_is_rejected():
    # The docs list 580.178.04 for chart v25.10.1, not the lab's 580.173.02.
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart.version": "v25.10.1"}))
    assert path == "gpu-platform:gpuOperator.driver.version"
    assert message.startswith("NVIDIA documents these drivers for chart v25.10.1: ")
    assert "580.178.04 (recommended)" in message and message.count("580.173.02") == 3


def test_an_undocumented_driver_can_be_allowed_on_purpose():
    raw = lab_with(**{"gpuOperator.chart.version": "v25.10.1", "gpuOperator.driver.allowUndocumentedVersion": True,
                      "cluster.prometheusOperatorCrds": True})
    assert compiled(raw).values.to_helm_values()["driver"]["version"] == "580.173.02"


@pytest.mark.parametrize(("version", "message"), [
    ("26.7.0", "'26.7.0' is not a supported chart release (the chart is published with a 'v' prefix); supported: "
               "v25.10.0, v25.10.1, v26.3.0, v26.3.1, v26.3.2, v26.3.3, v26.7.0 (got \"26.7.0\")"),
    ("^v26.7.0", "'^v26.7.0' is not a supported chart release (a range is not a pin; write one exact release); "
                 "supported: v25.10.0, v25.10.1, v26.3.0, v26.3.1, v26.3.2, v26.3.3, v26.7.0 (got \"^v26.7.0\")"),
    ("v24.9.2", "'v24.9.2' is not a supported chart release; supported: v25.10.0, v25.10.1, v26.3.0, v26.3.1, "
                "v26.3.2, v26.3.3, v26.7.0 (got \"v24.9.2\")"),
])
def test_unpinned_or_unsupported_chart_versions_are_rejected(version, message):
    assert problems(lab_with(**{"gpuOperator.chart.version": version})) == [
        ("gpu-platform:gpuOperator.chart.version", message)]


MPS_HINT = ("there is no `mps` key in any gpu-operator chart release (Helm would silently ignore `mps.enabled`); "
            "MPS is a device-plugin sharing profile: gpu-platform:gpuOperator.devicePlugin.sharing.profiles.<name>.mps"
            ".replicas, picked by `default` or by nodes[].sharing")


@pytest.mark.parametrize("path", ["mps", "gpuOperator.mps", "gpuOperator.devicePlugin.mps"])
def test_a_top_level_mps_key_points_to_the_sharing_profiles(path):
    assert problems(mutate(lab_raw(), path, {"enabled": True})) == [(f"gpu-platform:{path}", MPS_HINT)]


def test_mig_enabled_points_to_the_mig_manager():
    found = problems(lab_with(**{"gpuOperator.mig": {"strategy": "single", "enabled": False}}))
    assert found == [("gpu-platform:gpuOperator.mig.enabled",
                      "the chart has no `mig.enabled`: the MIG manager is switched by gpuOperator.migManager.enabled "
                      "(chart key migManager.enabled); `mig` only takes `strategy`")]


def test_a_misspelt_key_is_named_with_a_suggestion_and_the_allowed_keys():
    found = problems(lab_with(**{"gpuOperator.driver.verison": "580.173.02"}))
    assert found == [("gpu-platform:gpuOperator.driver.verison",
                      "unknown key (Helm would silently ignore it; this program does not); did you mean 'version'? "
                      "Allowed here: mode, version, hostVersion, pools, usePrecompiled, kernelModuleType, repository, "
                      "allowUndocumentedVersion, upgradePolicy")]


def test_an_unknown_top_level_key_lists_the_keys_the_program_reads():
    assert problems(mutate(lab_raw(), "storage", {})) == [
        ("gpu-platform:storage", "unknown config key; this program reads gpu-platform:cluster, "
                                    "gpu-platform:gpuOperator, gpu-platform:nodes, gpu-platform:tenancy, "
                                    "gpu-platform:monitoring, gpu-platform:admission, gpu-platform:registryPassword")]


def test_the_config_toml_tmpl_recipe_is_refused_with_the_reason():
    env = [{"name": "CONTAINERD_CONFIG", "value": "/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl"}]
    assert problems(lab_with(**{"gpuOperator.toolkit": {"extraEnv": env}})) == [(
        "gpu-platform:gpuOperator.toolkit.extraEnv[0]",
        "CONTAINERD_CONFIG=/var/lib/rancher/rke2/agent/etc/containerd/config.toml.tmpl: the "
        "CONTAINERD_CONFIG=.../config.toml.tmpl recipe breaks RKE2 after a reboot (NVIDIA/gpu-operator#992) and was "
        "removed from NVIDIA's docs; with chart v25.10+ RKE2 needs only CONTAINERD_SOCKET, which "
        "`cluster.containerRuntime: rke2` sets: remove this entry")]


def test_a_preset_owned_env_entry_is_refused():
    env = [{"name": "CONTAINERD_SOCKET", "value": "/run/containerd/containerd.sock"}]
    [(path, message)] = problems(lab_with(**{"gpuOperator.toolkit": {"extraEnv": env}}))
    assert path == "gpu-platform:gpuOperator.toolkit.extraEnv[0]"
    assert "CONTAINERD_SOCKET is set by the container-runtime preset (`cluster.containerRuntime`)" in message


def test_env_values_must_be_strings():
    env = [{"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": True}]
    assert problems(lab_with(**{"gpuOperator.devicePlugin.extraEnv": env})) == [(
        "gpu-platform:gpuOperator.devicePlugin.extraEnv[0].value",
        "Input should be a valid string; env values must be strings (quote them: \"true\"), the ClusterPolicy "
        "rejects anything else (got true)")]


@pytest.mark.parametrize(("path", "value", "where", "message"), [
    ("nodes[0].name", "Proj_K8sw04", "nodes[0].name",
     "'Proj_K8sw04' is not a valid Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending "
     "with a letter or digit, at most 253 characters (got \"Proj_K8sw04\")"),
    ("nodes[0].labels", {"gpu": "yes please"}, "nodes[0].labels",
     "label value 'yes please' must be at most 63 characters of letters, digits, '-', '_' or '.', starting and "
     "ending with a letter or digit (or empty)"),
    ("nodes[0].labels", {"-gpu": "true"}, "nodes[0].labels",
     "label key '-gpu': the name part must be 1-63 characters of letters, digits, '-', '_' or '.', starting and "
     "ending with a letter or digit"),
    ("nodes[0].labels", {"nvidia.com/gpu.present": "true"}, "nodes[0].labels",
     "label 'nvidia.com/gpu.present' is owned by the GPU operator or NFD; use the typed fields `sharing` "
     "(nvidia.com/device-plugin.config) or `migConfig` (nvidia.com/mig.config)"),
    ("nodes[0].taints", [{"key": "nvidia.com/gpu", "effect": "NoRun"}], "nodes[0].taints[0].effect",
     "Input should be 'NoSchedule', 'PreferNoSchedule' or 'NoExecute' (got \"NoRun\")"),
    ("nodes[0].gpu", "RTX-4000", "nodes[0].gpu",
     "unknown GPU product 'RTX-4000'; known: "),
])
def test_node_names_labels_and_taints_are_validated(path, value, where, message):
    [(found_path, found_message)] = problems(mutate(lab_raw(), path, value))
    assert found_path == f"gpu-platform:{where}"
    assert found_message.startswith(message) if message.endswith("known: ") else found_message == message


def test_every_problem_is_reported_at_once():
    raw = lab_with(**{"gpuOperator.driver.version": "latest", "nodes[0].name": "Bad", "mps": {"enabled": True}})
    paths = [path for path, _ in problems(raw)]
    assert paths == ["gpu-platform:gpuOperator.driver.version", "gpu-platform:nodes[0].name", "gpu-platform:mps"]
    # cross-section rules also report together: an undocumented driver and the NRI plugin on v25.10.1
    raw = lab_with(**{"cluster.nriPlugin": True, "gpuOperator.chart.version": "v25.10.1"})
    assert [path for path, _ in problems(raw)] == ["gpu-platform:gpuOperator.driver.version",
                                                   "gpu-platform:cluster.nriPlugin"]


def test_the_error_message_names_the_count_and_says_nothing_was_declared():
    with pytest.raises(ConfigError) as caught:
        compile_config(lab_with(**{"tenancy.tenants[0].owner": "dataSci"}))
    assert str(caught.value) == (
        "invalid stack config (1 problem); nothing was declared:\n"
        "  - gpu-platform:tenancy.tenants[0].owner: unknown group 'dataSci'; teams in tenancy.groups: dataScience\n"
        "not checked yet, because they read a part with a problem above (fix it and run again):\n"
        "  - the chart values against the pinned chart release (after the rules between sections pass)")


def test_a_problem_in_one_section_does_not_hide_the_rules_of_the_others():
    # A typo in monitoring used to stop every rule between sections, so the undocumented driver showed only after
    # the typo was fixed.
    raw = lab_with(**{"monitoring.runbookUrll": "https://x.example/runbook.md",
                      "gpuOperator.driver.version": "525.85.05", "tenancy.tenants[0].owner": "dataSci"})
    with pytest.raises(ConfigError) as caught:
        compile_config(raw)
    assert [path for path, _ in caught.value.problems] == [
        "gpu-platform:monitoring.runbookUrll", "gpu-platform:gpuOperator.driver.version",
        "gpu-platform:tenancy.tenants[0].owner"]
    # what could not run is said, with the section it waits for
    assert caught.value.not_checked == [
        "the tenants against the monitoring namespace (reads gpu-platform:monitoring)",
        "monitoring against the cluster and the DCGM exporter (reads gpu-platform:monitoring)",
        "the chart values against the pinned chart release (after the rules between sections pass)"]
    assert str(caught.value).endswith(
        "not checked yet, because they read a part with a problem above (fix it and run again):\n"
        "  - the tenants against the monitoring namespace (reads gpu-platform:monitoring)\n"
        "  - monitoring against the cluster and the DCGM exporter (reads gpu-platform:monitoring)\n"
        "  - the chart values against the pinned chart release (after the rules between sections pass)")


def test_the_rules_skipped_inside_an_invalid_section_are_named():
    with pytest.raises(ConfigError) as caught:
        compile_config(lab_with(**{"gpuOperator.devicePlugin.sharing.profiles.mps-4.mps.replicas": "4"}))
    assert caught.value.not_checked[:2] == [
        "gpu-platform:gpuOperator.devicePlugin.sharing: the default profile is one of the profiles",
        "gpu-platform:gpuOperator.devicePlugin.sharing.profiles.mps-4: one sharing strategy per profile (time-slicing "
        "or MPS)"]
    assert "the chart values against the pinned chart release (reads gpu-platform:gpuOperator)" in \
        caught.value.not_checked


def test_a_bad_upgrade_policy_number_does_not_hide_a_bad_driver_version():
    raw = lab_with(**{"gpuOperator.driver.upgradePolicy.maxUnavailable": 0, "gpuOperator.driver.version": "latest"})
    assert [path for path, _ in problems(raw)] == ["gpu-platform:gpuOperator.driver.upgradePolicy.maxUnavailable",
                                                   "gpu-platform:gpuOperator.driver.version"]
    # a rule that reads the invalid field is left out rather than guessed (no "upgradePolicy is required")
    raw = lab_with(**{"gpuOperator.driver.upgradePolicy.drain": DELETE, "gpuOperator.driver.hostVersion": "580.173.02"})
    assert [path for path, _ in problems(raw)] == ["gpu-platform:gpuOperator.driver.upgradePolicy.drain",
                                                   "gpu-platform:gpuOperator.driver.hostVersion"]


# --- sharing ------------------------------------------------------------------------------------------------------

SHARING = "gpuOperator.devicePlugin.sharing"


def test_mps_replicas_are_bounded():
    assert problems(lab_with(**{f"{SHARING}.profiles.mps-4.mps.replicas": 49})) == [
        ("gpu-platform:gpuOperator.devicePlugin.sharing.profiles.mps-4.mps.replicas",
         "Input should be less than or equal to 48 (got 49)")]
    assert problems(lab_with(**{f"{SHARING}.profiles.mps-4.mps.replicas": 1})) == [
        ("gpu-platform:gpuOperator.devicePlugin.sharing.profiles.mps-4.mps.replicas",
         "Input should be greater than or equal to 2 (got 1)")]


def test_mps_on_an_older_gpu_is_bounded_by_its_compute_capability():
    raw = lab_with(**{"nodes[0].gpu": "Tesla-V100-PCIE-32GB", f"{SHARING}.profiles.mps-4.mps.replicas": 20})
    assert problems(raw) == [("gpu-platform:gpuOperator.devicePlugin.sharing.default",
                              "MPS profile 'mps-4' asks for 20 clients; Tesla-V100-PCIE-32GB (compute capability 7.0) "
                              "allows at most 16")]


def test_time_slicing_and_mps_are_exclusive_in_one_profile():
    raw = lab_with(**{f"{SHARING}.profiles.mps-4.timeSlicing": {"replicas": 4}})
    assert problems(raw) == [("gpu-platform:gpuOperator.devicePlugin.sharing.profiles.mps-4",
                              "time-slicing and MPS are mutually exclusive on a node; give this profile either "
                              "`timeSlicing` or `mps`, not both")]


def test_the_default_profile_must_exist():
    assert problems(lab_with(**{f"{SHARING}.default": "ts-8"})) == [
        ("gpu-platform:gpuOperator.devicePlugin.sharing.default", "'ts-8' is not one of the profiles (mps-4)")]


def test_a_node_profile_must_exist():
    assert problems(lab_with(**{"nodes[0].sharing": "ts-8"})) == [
        ("gpu-platform:nodes[0].sharing", "'ts-8' is not a sharing profile "
                                          "(gpuOperator.devicePlugin.sharing.profiles: mps-4)")]


def test_mps_is_never_combined_with_mig():
    raw = lab_with(**{"nodes[0].gpu": "NVIDIA-A100-SXM4-80GB", "nodes[0].migConfig": "all-1g.10gb",
                      "gpuOperator.migManager.enabled": True})
    assert problems(raw) == [("gpu-platform:gpuOperator.devicePlugin.sharing.default",
                              "node 'proj-k8sw04' gets MPS profile 'mps-4' and a MIG profile; MPS cannot be used with "
                              "MIG: give it a time-slicing or whole-GPU profile")]


def test_mig_profiles_need_a_mig_gpu_and_the_mig_manager():
    assert problems(lab_with(**{"nodes[0].migConfig": "all-1g.5gb"})) == [
        ("gpu-platform:nodes[0].migConfig", "NVIDIA-RTX-A4000 has no MIG (MIG is on A100/A30, Hopper and Blackwell "
                                            "data-center GPUs); remove migConfig")]
    raw = lab_with(**{"nodes[0].gpu": "NVIDIA-A30", "nodes[0].migConfig": "all-1g.6gb", "nodes[0].sharing": "none",
                      f"{SHARING}.profiles.none": {}})
    assert problems(raw) == [("gpu-platform:nodes[0].migConfig",
                              "a MIG profile needs the MIG manager: set gpuOperator.migManager.enabled: true")]


# --- driver modes -------------------------------------------------------------------------------------------------

POOL_A4000 = {"name": "a4000", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000"}, "version": "580.173.02"}


def per_pool(*pools: dict) -> dict:
    raw = lab_raw()
    driver = raw["gpuOperator"]["driver"]
    raw["gpuOperator"]["driver"] = {"mode": "perPool", "pools": list(pools), "upgradePolicy": driver["upgradePolicy"]}
    return raw


def test_per_pool_drivers_are_accepted_and_move_driver_management_to_the_crd():
    values = compiled(per_pool(POOL_A4000)).values.to_helm_values()["driver"]
    assert values["enabled"] is True
    assert values["nvidiaDriverCRD"] == {"enabled": True, "deployDefaultCR": False}
    assert "version" not in values


def test_overlapping_pool_selectors_are_rejected():
    other = {"name": "lab-gpus", "nodeSelector": {"gpu": "true"}, "version": "595.91.07"}
    assert problems(per_pool(POOL_A4000, other)) == [(
        "gpu-platform:gpuOperator.driver.pools[1].nodeSelector",
        "can select the same nodes as pool 'a4000' ({'nvidia.com/gpu.product': 'NVIDIA-RTX-A4000'}); two "
        "NVIDIADrivers on one node fight over it. Make the selectors require different values for a common "
        "label key")]


def test_pools_that_differ_on_a_common_key_are_accepted():
    gpu = {"name": "lab-tier", "nodeSelector": {"gpu": "true", "tier": "lab"}, "version": "595.91.07"}
    a4000 = {**POOL_A4000, "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000", "tier": "prod"}}
    raw = mutate(per_pool(gpu, a4000), "nodes[0].labels", {"gpu": "true", "tier": "lab"})
    assert [p.name for p in compiled(raw).stack.gpu_operator.driver.pools] == ["lab-tier", "a4000"]


def test_a_node_without_a_pool_is_rejected_in_per_pool_mode():
    pool = {**POOL_A4000, "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-L4"}}
    assert problems(per_pool(pool)) == [("gpu-platform:nodes[0]", "node 'proj-k8sw04' is selected by no driver pool, "
                                                                   "so it would get no driver; add a pool whose "
                                                                   "nodeSelector matches its labels")]


def test_pool_versions_are_checked_like_the_single_driver():
    found = problems(per_pool({**POOL_A4000, "version": "525.85.05"}))
    assert [path for path, _ in found] == ["gpu-platform:gpuOperator.driver.pools[0].version"]
    assert "(gpuOperator.driver.pools[0].version: 595.91.07, for example)" in found[0][1]


def test_the_upgrade_policy_is_required_and_mode_fields_do_not_mix():
    raw = lab_with(**{"gpuOperator.driver.upgradePolicy": DELETE, "gpuOperator.driver.hostVersion": "580.173.02"})
    assert problems(raw) == [
        ("gpu-platform:gpuOperator.driver.hostVersion", "not used with driver.mode: operator; remove it"),
        ("gpu-platform:gpuOperator.driver.upgradePolicy",
         "required: a driver change cordons nodes and removes GPU pods, so say how (maxParallelUpgrades, "
         "gpuPodDeletion.timeoutSeconds, drain.enable)")]


# --- runtime, monitoring dependency, registry ---------------------------------------------------------------------

def test_the_nri_plugin_needs_chart_26_3():
    raw = lab_with(**{"cluster.nriPlugin": True, "gpuOperator.chart.version": "v25.10.1",
                      "gpuOperator.driver.version": "580.178.04"})
    assert problems(raw) == [("gpu-platform:cluster.nriPlugin",
                              "the NRI plugin (cdi.nriPluginEnabled) needs chart v26.3.0 or newer; v25.10.1 is pinned")]


def test_a_service_monitor_without_prometheus_operator_crds_is_refused_up_to_26_3_3():
    # without gpu-platform:monitoring, whose rules need the CRDs on any release (tests/test_monitoring.py)
    raw = lab_with(**{"gpuOperator.chart.version": "v26.3.3", "cluster.prometheusOperatorCrds": False,
                      "monitoring": DELETE})
    assert problems(raw) == [(
        "gpu-platform:gpuOperator.dcgmExporter.serviceMonitor.enabled",
        "with chart v26.3.3 a DCGM ServiceMonitor without the prometheus-operator CRDs leaves the ClusterPolicy "
        "notReady; install the CRDs (e.g. kube-prometheus-stack) and set cluster.prometheusOperatorCrds: true, or "
        "set serviceMonitor.enabled: false")]
    # v26.7.0 handles missing CRDs itself
    assert compiled(lab_with(**{"cluster.prometheusOperatorCrds": False, "monitoring": DELETE}))


def test_registry_credentials_must_be_a_secret():
    raw = lab_with(**{"gpuOperator.registry": {"server": "nvcr.io"}, "registryPassword": "plain-text"})
    assert problems(raw) == [("gpu-platform:registryPassword", "must be a secret: set it with `pulumi config set "
                                                               "--secret gpu-platform:registryPassword <value>`")]
    assert problems(lab_with(**{"gpuOperator.registry": {"server": "nvcr.io"}})) == [(
        "gpu-platform:registryPassword", "gpuOperator.registry is set, so the registry password is required: "
                                         "`pulumi config set --secret gpu-platform:registryPassword <token>`")]
    raw = lab_with(**{"gpuOperator.registry": {"server": "nvcr.io"}, "registryPassword": "s3cret"})
    values = compiled(raw, secret_keys=("registryPassword",)).values.to_helm_values()
    assert values["driver"]["imagePullSecrets"] == ["gpu-operator-registry"]


CHART = "gpu-platform:gpuOperator.chart.path"


def test_a_chart_archive_on_disk_is_accepted_when_it_is_the_pinned_release(upstream):
    archive = upstream / "gpu-operator" / "v26.3.3" / "chart" / "gpu-operator-v26.3.3.tgz"
    chart = compiled(lab_with(**{"gpuOperator.chart": {"version": "v26.3.3", "path": str(archive)}})).stack
    assert chart.gpu_operator.chart.path == str(archive)


def test_a_chart_archive_of_another_release_is_refused_with_what_it_holds(upstream):
    archive = upstream / "gpu-operator" / "v26.3.3" / "chart" / "gpu-operator-v26.3.3.tgz"
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart": {"version": "v26.7.0", "path": str(archive)}}))
    assert path == CHART
    assert message == (f"{str(archive)!r} holds gpu-operator v26.3.3, but chart.version is v26.7.0: point `path` "
                       "at that release's archive, or change `version` to match it")


def test_a_missing_chart_path_says_where_it_looked(tmp_path):
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart": {"version": "v26.7.0",
                                                                   "path": str(tmp_path / "nope.tgz")}}))
    assert path == CHART and message.startswith(f"no chart at {str(tmp_path / 'nope.tgz')!r}")


def test_a_file_that_is_not_a_chart_archive_is_refused(tmp_path):
    bogus = tmp_path / "gpu-operator-v26.7.0.tgz"
    bogus.write_text("not a tarball")
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart": {"version": "v26.7.0", "path": str(bogus)}}))
    assert path == CHART and "is not a chart archive" in message


def test_a_chart_folder_of_another_chart_is_refused(tmp_path):
    (tmp_path / "Chart.yaml").write_text("name: network-operator\nversion: v26.7.0\n")
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart": {"version": "v26.7.0", "path": str(tmp_path)}}))
    assert path == CHART and message == f"{str(tmp_path)!r} holds the chart 'network-operator', not gpu-operator"


def test_path_and_repository_together_are_refused(upstream):
    archive = upstream / "gpu-operator" / "v26.7.0" / "chart" / "gpu-operator-v26.7.0.tgz"
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart": {
        "version": "v26.7.0", "path": str(archive), "repository": "https://helm.ngc.nvidia.com/nvidia"}}))
    assert (path, message) == (CHART, "give the chart's `path` or its `repository`, not both")


@pytest.mark.parametrize("url", ["", "helm.ngc.nvidia.com/nvidia", "ftp://mirror/nvidia", "https://"])
def test_a_chart_repository_must_be_a_helm_or_oci_url(url):
    [(path, message)] = problems(lab_with(**{"gpuOperator.chart.repository": url}))
    assert path == "gpu-platform:gpuOperator.chart.repository"
    assert "is not a chart repository URL" in message


UNAVAILABLE = "gpu-platform:gpuOperator.driver.upgradePolicy.maxUnavailable"


@pytest.mark.parametrize("value,message", [
    (0, '0 is not passed on: the chart writes `maxUnavailable | default "25%"`, so 0 becomes 25% of the GPU nodes; '
        "one node at a time is maxUnavailable: 1 with maxParallelUpgrades: 1 (got 0)"),
    ("0%", 'give a percentage from "1%" to "100%" (or a number of nodes); "0%" would let no node be upgraded, so a '
           'driver change would never roll out (got "0%")'),
    ("150%", 'give a percentage from "1%" to "100%" (or a number of nodes); "0%" would let no node be upgraded, so a '
             'driver change would never roll out (got "150%")'),
    (-1, "a number of nodes cannot be negative; give 1 or more (got -1)"),
    (True, 'give a number of nodes (1, 2, ...) or a percentage ("25%") (got true)'),
])
def test_max_unavailable_must_let_some_node_upgrade(value, message):
    assert problems(lab_with(**{"gpuOperator.driver.upgradePolicy.maxUnavailable": value})) == [(UNAVAILABLE, message)]


@pytest.mark.parametrize("value", [1, 3, "25%", "100%"])
def test_max_unavailable_accepts_counts_and_percentages(value):
    stack = compiled(lab_with(**{"gpuOperator.driver.upgradePolicy.maxUnavailable": value})).stack
    assert stack.gpu_operator.driver.upgrade_policy.max_unavailable == value


def test_an_operator_pinned_to_the_gpu_nodes_is_warned_about_with_the_reason():
    config = compiled(lab_with(**{"gpuOperator.operator.nodeSelector": {"gpu": "true"}}))
    [warning] = config.warnings
    assert warning.startswith("gpu-platform:gpuOperator.operator.nodeSelector pins the operator, and with it the "
                              "chart's CRD-upgrade and clean-up hook Jobs, to the GPU node(s) proj-k8sw04.")
    assert compiled().warnings == ()


# --- strict types: exactly what YAML and `pulumi config set --path` produce -----------------------------------------

BOOL_HINT = ("Input should be a valid boolean; write true or false without quotes (`pulumi config set --path` stores "
             "those two as booleans; yes, no, 1 and 0 are not booleans here)")


@pytest.mark.parametrize(("value", "shown"), [("yes", '"yes"'), ("no", '"no"'), (1, "1"), (0, "0"), ("true", '"true"')])
def test_only_true_and_false_are_booleans(value, shown):
    assert problems(lab_with(**{"gpuOperator.gfd.enabled": value})) == [
        ("gpu-platform:gpuOperator.gfd.enabled", f"{BOOL_HINT} (got {shown})")]


def test_a_quoted_integer_is_not_a_number():
    assert problems(lab_with(**{"gpuOperator.chart.timeoutSeconds": "900"})) == [(
        "gpu-platform:gpuOperator.chart.timeoutSeconds",
        "Input should be a valid integer; write the number without quotes (`pulumi config set --path` stores an "
        "integer as a number, `--type string` makes it text) (got \"900\")")]
    assert problems(lab_with(**{"gpuOperator.driver.upgradePolicy.maxParallelUpgrades": 1.0}))


def test_a_decimal_stored_as_text_by_config_set_is_refused_with_the_flag_that_types_it():
    [(path, message)] = problems(lab_with(**{"monitoring.alerts.gpuMemory.threshold": "95.5"}))
    assert path == "gpu-platform:monitoring.alerts.gpuMemory.threshold"
    assert "add `--type float` for a decimal" in message
    # what `--type float` or YAML gives is accepted, and an integer is a number too
    assert compiled(lab_with(**{"monitoring.alerts.gpuMemory.threshold": 95.5}))
    assert compiled(lab_with(**{"monitoring.alerts.gpuMemory.threshold": 95}))


@pytest.mark.parametrize(("path", "camel"), [("gpuOperator.mig_manager", "migManager"),
                                             ("cluster.kubernetes_version", "kubernetesVersion"),
                                             ("gpuOperator.driver.upgradePolicy.max_unavailable", "maxUnavailable")])
def test_snake_case_spellings_of_keys_are_refused_with_the_camel_case_key(path, camel):
    found = problems(mutate(lab_raw(), path, 1))
    assert (f"gpu-platform:{path}", f"unknown key; keys are camelCase: write {camel!r}") in found


def test_a_yaml_number_where_a_version_belongs_says_to_quote_it():
    assert problems(lab_with(**{"gpuOperator.driver.version": 580.173})) == [(
        "gpu-platform:gpuOperator.driver.version",
        "Input should be a valid string; YAML read 580.173 as a number (a version such as 580.173.02 only survives as "
        "text, and 580.170 would become 580.17): quote it (got 580.173)")]


@pytest.mark.parametrize("cpu", ["1e3", "1.2345", "0.5", "500m", "+2", ".5", 1000, 1.5, "1E3"])
def test_every_kubernetes_cpu_quantity_is_accepted(cpu):
    assert compiled(lab_with(**{"tenancy.tenants[0].quota.cpu": cpu}))


@pytest.mark.parametrize("memory", ["1e9", "32Gi", "34359738368", "32G", "3.5Gi", "1E10"])
def test_every_kubernetes_memory_quantity_is_accepted(memory):
    assert compiled(lab_with(**{"tenancy.tenants[0].quota.memory": memory}))


@pytest.mark.parametrize("cpu", ["8 cores", "1e", "1.2.3", "inf", "nan", "8\n", "", "-1"])
def test_what_is_not_a_cpu_quantity_is_refused(cpu):
    [(path, _)] = problems(lab_with(**{"tenancy.tenants[0].quota.cpu": cpu}))
    assert path == "gpu-platform:tenancy.tenants[0].quota.cpu"


@pytest.mark.parametrize(("duration", "seconds"), [("1h30m", 5400), ("90s", 90), ("1d", 86400), ("2m", 120)])
def test_compound_prometheus_durations_are_accepted(duration, seconds):
    from components.monitoring import seconds as to_seconds

    assert compiled(lab_with(**{"monitoring.alerts.gpuUtilization.for": duration}))
    assert to_seconds(duration) == seconds


@pytest.mark.parametrize("duration", ["0s", "1m1h", "5ms", "10m\n", "", "1.5h"])
def test_durations_prometheus_would_refuse_are_refused(duration):
    [(path, _)] = problems(lab_with(**{"monitoring.alerts.gpuUtilization.for": duration}))
    assert path == "gpu-platform:monitoring.alerts.gpuUtilization.for"


@pytest.mark.parametrize("interval", ["15s", "1m30s", "500ms"])
def test_scrape_intervals_take_the_prometheus_operator_grammar(interval):
    assert compiled(lab_with(**{"gpuOperator.dcgmExporter.serviceMonitor.interval": interval}))


@pytest.mark.parametrize("interval", ["0s", "15s\n", "15 s", ""])
def test_scrape_intervals_that_would_never_scrape_are_refused(interval):
    [(path, _)] = problems(lab_with(**{"gpuOperator.dcgmExporter.serviceMonitor.interval": interval}))
    assert path == "gpu-platform:gpuOperator.dcgmExporter.serviceMonitor.interval"


# --- messages -------------------------------------------------------------------------------------------------------

def test_a_misspelt_top_level_key_gets_did_you_mean():
    raw = lab_raw()
    raw["gpuOprator"] = raw.pop("gpuOperator")
    found = dict(problems(raw))
    assert found["gpu-platform:gpuOprator"].startswith("unknown config key; did you mean gpu-platform:gpuOperator? ")
    assert found["gpu-platform:gpuOperator"].startswith("required key is missing: set gpu-platform:gpuOperator in ")


def test_a_misspelt_namespace_is_named_as_such():
    raw = lab_raw()
    raw.pop("cluster")
    found = problems(raw, other_keys=("gpu-platfrom:cluster", "kubernetes:context"))
    assert found[0] == ("gpu-platfrom:cluster", "the namespace 'gpu-platfrom' is not this program's: did you mean "
                                                "gpu-platform:cluster? (Pulumi passes every namespace's keys, so a "
                                                "misspelt one is never read)")
    assert [path for path, _ in found] == ["gpu-platfrom:cluster", "gpu-platform:cluster"]


# --- bad values the fuzzer found, by kind: each refused with its key path -------------------------------------------

TOLERATION = "gpuOperator.operator.tolerations"
BAD_VALUES = [
    # upgrade-policy numbers
    ("gpuOperator.driver.upgradePolicy.maxUnavailable", 10**9, "gpuOperator.driver.upgradePolicy.maxUnavailable"),
    ("gpuOperator.driver.upgradePolicy.maxUnavailable", "25", "gpuOperator.driver.upgradePolicy.maxUnavailable"),
    ("gpuOperator.driver.upgradePolicy.maxUnavailable", "25%\n", "gpuOperator.driver.upgradePolicy.maxUnavailable"),
    ("gpuOperator.driver.upgradePolicy.maxParallelUpgrades", 10**12,
     "gpuOperator.driver.upgradePolicy.maxParallelUpgrades"),
    ("gpuOperator.driver.upgradePolicy.maxParallelUpgrades", True,
     "gpuOperator.driver.upgradePolicy.maxParallelUpgrades"),
    ("gpuOperator.driver.upgradePolicy.gpuPodDeletion.timeoutSeconds", 10**10,
     "gpuOperator.driver.upgradePolicy.gpuPodDeletion.timeoutSeconds"),
    ("gpuOperator.driver.upgradePolicy.drain.timeoutSeconds", -1, "gpuOperator.driver.upgradePolicy.drain.timeoutSeconds"),
    # names past Kubernetes' or Helm's limits, directly or derived
    ("gpuOperator.releaseName", "g" * 54, "gpuOperator.releaseName"),
    ("tenancy.priorityClasses[0].name", "p" * 245, "tenancy.priorityClasses[0].name"),
    ("gpuOperator.namespace", "n" * 64, "gpuOperator.namespace"),
    # namespaces that exist already or belong to someone else
    ("gpuOperator.namespace", "kube-system", "gpuOperator.namespace"),
    ("gpuOperator.namespace", "default", "gpuOperator.namespace"),
    ("gpuOperator.namespace", "kube-flannel", "gpuOperator.namespace"),
    ("gpuOperator.namespace", "monitoring", "monitoring.namespace"),
    ("tenancy.tenants[0].namespace", "monitoring", "tenancy.tenants[0].namespace"),
    ("tenancy.tenants[0].namespace", "default", "tenancy.tenants[0].namespace"),
    # a kubernetesVersion that makes an invalid Pod Security label
    ("cluster.kubernetesVersion", "1.05", "cluster.kubernetesVersion"),
    ("cluster.kubernetesVersion", "1.34\n", "cluster.kubernetesVersion"),
    ("cluster.kubernetesVersion", 1.34, "cluster.kubernetesVersion"),
    # driver combinations the pack refuses, and trailing newlines
    ("gpuOperator.driver.usePrecompiled", True, "gpuOperator.driver.version"),
    ("gpuOperator.driver.version", "580.173.02\n", "gpuOperator.driver.version"),
    ("nodes[0].labels", {"gpu": "true\n"}, "nodes[0].labels"),
    ("nodes[0].name", "proj-k8sw04\n", "nodes[0].name"),
    # selectors, tolerations, env names, taints, kubelet-owned labels
    ("gpuOperator.driver.upgradePolicy.drain.podSelector", "app in (a", "gpuOperator.driver.upgradePolicy.drain.podSelector"),
    ("gpuOperator.driver.upgradePolicy.drain.podSelector", "app==x y", "gpuOperator.driver.upgradePolicy.drain.podSelector"),
    ("gpuOperator.driver.upgradePolicy.waitForCompletion.podSelector", "-bad=1",
     "gpuOperator.driver.upgradePolicy.waitForCompletion.podSelector"),
    (TOLERATION, [{"key": "bad key", "operator": "Exists"}], f"{TOLERATION}[0]"),
    (TOLERATION, [{"operator": "Equal", "value": "x"}], f"{TOLERATION}[0]"),
    (TOLERATION, [{"key": "gpu", "operator": "Exists", "value": "x"}], f"{TOLERATION}[0]"),
    ("gpuOperator.toolkit.extraEnv", [{"name": "1BAD", "value": "x"}], "gpuOperator.toolkit.extraEnv[0].name"),
    ("gpuOperator.devicePlugin.extraEnv", [{"name": "A B", "value": "x"}], "gpuOperator.devicePlugin.extraEnv[0].name"),
    ("gpuOperator.devicePlugin.extraEnv", [{"name": "A", "value": "1"}, {"name": "A", "value": "2"}],
     "gpuOperator.devicePlugin.extraEnv[1].name"),
    ("nodes[0].taints", [{"key": "nvidia.com/gpu", "value": "a", "effect": "NoSchedule"},
                         {"key": "nvidia.com/gpu", "value": "b", "effect": "NoSchedule"}], "nodes[0].taints[1]"),
    ("nodes[0].taints", [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}],
     "nodes[0].taints[0].key"),
    ("nodes[0].labels", {"kubernetes.io/hostname": "x"}, "nodes[0].labels"),
    ("nodes[0].labels", {"node.kubernetes.io/instance-type": "x"}, "nodes[0].labels"),
    ("nodes[0].labels", {"kubelet.kubernetes.io/x": "y"}, "nodes[0].labels"),
    ("nodes[0].labels", {"topology.kubernetes.io/zone": "a"}, "nodes[0].labels"),
    # repositories that are empty or not URLs, and unbounded strings
    ("gpuOperator.driver.repository", "", "gpuOperator.driver.repository"),
    ("gpuOperator.driver.repository", "https://nvcr.io/nvidia", "gpuOperator.driver.repository"),
    ("gpuOperator.registry", {"server": "https://nvcr.io"}, "gpuOperator.registry.server"),
    ("monitoring.runbookUrl", "https://x.example/" + "r" * 2**20, "monitoring.runbookUrl"),
    ("monitoring.runbookUrl", "https://x.example/runbook.md\n", "monitoring.runbookUrl"),
    ("tenancy.priorityClasses[0].description", "d" * 5000, "tenancy.priorityClasses[0].description"),
    ("tenancy.groups.dataScience", "g" * 5000, "tenancy.groups.dataScience"),
    ("tenancy.tenants[0].quota.pods", 10**15, "tenancy.tenants[0].quota.pods"),
]


@pytest.mark.parametrize(("path", "value", "where"), BAD_VALUES, ids=[f"{p}={str(v)[:20]!r}" for p, v, _ in BAD_VALUES])
def test_every_kind_of_bad_value_is_refused_with_its_key_path(path, value, where):
    found = problems(lab_with(**{path: value}), secret_keys=("registryPassword",))
    assert f"gpu-platform:{where}" in [found_path for found_path, _ in found], found


GOOD_VALUES = [
    ("gpuOperator.releaseName", "g" * 53),
    ("nodes[0].labels", {"gpu": "true", "node-role.kubernetes.io/gpu": "", "lab.example/rack": "r1"}),
    ("gpuOperator.driver.upgradePolicy.drain.podSelector", "app in (a, b),tier!=web,!canary,team=ml"),
    (TOLERATION, [{"operator": "Exists"}, {"key": "gpu", "operator": "Equal", "value": "x", "effect": "NoSchedule"}]),
    ("gpuOperator.devicePlugin.extraEnv", [{"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": "all"}]),
    ("gpuOperator.driver.repository", "registry.lab.example:5000/mirror/nvidia"),
    ("cluster.kubernetesVersion", "1.35"),
]


@pytest.mark.parametrize(("path", "value"), GOOD_VALUES, ids=[p for p, _ in GOOD_VALUES])
def test_the_valid_forms_next_to_them_are_accepted(path, value):
    assert compiled(lab_with(**{path: value}))


def test_a_precompiled_driver_takes_its_branch_as_the_pack_does():
    assert problems(lab_with(**{"gpuOperator.driver.usePrecompiled": True})) == [(
        "gpu-platform:gpuOperator.driver.version",
        "with usePrecompiled: true the operator installs a precompiled driver by branch: write '580', not "
        "'580.173.02'")]


def test_allow_undocumented_version_warns_at_every_run(monkeypatch):
    import pulumi

    from tests.factories import ROOT, stack_file
    from tools.mockrun import run_program

    said: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, *args, **kwargs: said.append(message))
    raw = lab_with(**{"gpuOperator.driver.version": "580.126.20", "gpuOperator.driver.allowUndocumentedVersion": True})
    run_program(ROOT, stack_file(raw))
    [warning] = [m for m in said if "allowUndocumentedVersion" in m]
    assert warning.startswith("gpu-platform:gpuOperator.driver.version is allowed by allowUndocumentedVersion, but: "
                              "NVIDIA documents these drivers for chart v26.7.0: ")
    assert "580.126.20 is not one of them" in warning


def test_the_program_names_a_misspelt_namespace_from_the_clis_config():
    import pulumi

    from tests.factories import ROOT, stack_file
    from tools.mockrun import run_program

    raw = lab_raw()
    cluster = raw.pop("cluster")
    stack = stack_file(raw)
    stack.config["gpu-platfrom:cluster"] = json.dumps(cluster)
    with pytest.raises(pulumi.RunError) as caught:
        run_program(ROOT, stack)
    assert "\n  - gpu-platfrom:cluster: the namespace 'gpu-platfrom' is not this program's: did you mean " \
           "gpu-platform:cluster?" in str(caught.value)


@pytest.mark.parametrize(("changes", "expected"), [
    ({"cluster": "rke2"}, ("gpu-platform:cluster", "should be a mapping (key: value) with the keys kubernetesVersion, "
                                                   "containerRuntime, nriPlugin, prometheusOperatorCrds (got \"rke2\")")),
    ({"nodes[0].labels": ["gpu"]}, ("gpu-platform:nodes[0].labels", "should be a mapping (key: value)")),
    ({"tenancy.tenants": {}}, ("gpu-platform:tenancy.tenants", "should be a list (- item)")),
])
def test_a_wrong_shape_says_which_shape_in_yaml_terms(changes, expected):
    assert expected in problems(lab_with(**changes))


def test_a_boolean_where_text_belongs_says_how_to_make_it_text():
    # `pulumi config set --path 'gpu-platform:nodes[0].labels.gpu' true` stores a boolean
    assert problems(lab_with(**{"nodes[0].labels": {"gpu": True}})) == [(
        "gpu-platform:nodes[0].labels.gpu",
        "Input should be a valid string; true and false are booleans in YAML and in `pulumi config set --path`: quote "
        "it in the stack file (\"true\") or add `--type string` (got true)")]
