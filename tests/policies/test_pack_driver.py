"""gpu-operator-driver-pinned and gpu-operator-driver-documented: the chart and the driver each pinned to one
exact version (Release values, ClusterPolicy, NVIDIADriver), and the pair one that NVIDIA documents."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE as U

from gpu_policies import driver_documented, driver_pinning

from policy_factories import check, gpu_release

PINNED = driver_pinning.POLICY
DOCUMENTED = driver_documented.POLICY
RELEASE = "kubernetes:helm.sh/v3:Release"
CHART_V4 = "kubernetes:helm.sh/v4:Chart"
NVIDIA_DRIVER = "kubernetes:nvidia.com/v1alpha1:NVIDIADriver"
CLUSTER_POLICY = "kubernetes:nvidia.com/v1:ClusterPolicy"
WHO = "Release gpu-operator/gpu-operator"
BARE_FIX = 'Fix: set it to one exact driver version, e.g. "580.173.02".'


def release(**driver: Any) -> dict[str, Any]:
    props = gpu_release()
    for key, value in driver.items():
        if value is None:
            props["values"]["driver"].pop(key, None)
        else:
            props["values"]["driver"][key] = value
    return props


@pytest.mark.parametrize("type_", [RELEASE, CHART_V4])
def test_the_lab_release_passes_both(type_: str) -> None:
    for policy in (PINNED, DOCUMENTED):
        reported = check(policy, type_, gpu_release())
        assert (reported.messages, reported.unknown) == ([], None)


@pytest.mark.parametrize("driver, message", [
    ({"version": None}, "values.driver.version is not set, so the driver follows the chart's default, which "
                        f"changes with every chart release. {BARE_FIX}"),
    ({"version": ""}, "values.driver.version is not set, so the driver follows the chart's default, which "
                      f"changes with every chart release. {BARE_FIX}"),
    ({"version": "latest"}, f'values.driver.version is "latest", which moves whenever NVIDIA publishes a driver. '
                            f"{BARE_FIX}"),
    ({"version": "580"}, 'values.driver.version is "580", a driver branch, which is only valid with usePrecompiled: '
                         'true. Fix: set one exact version from the branch, e.g. "580.173.02".'),
    ({"version": "580.173.02-ubuntu22.04"}, 'values.driver.version is "580.173.02-ubuntu22.04", OS-suffixed; the '
                                            'operator appends -<os> itself. Fix: set it to the bare version '
                                            '"580.173.02".'),
    ({"version": "sha256:" + "a" * 64}, "values.driver.version is a digest, which this policy cannot check against "
                                        f"the allowed versions or NVIDIA's component matrix. {BARE_FIX}"),
    ({"version": "v580.173.02"}, f'values.driver.version is "v580.173.02", not one exact driver version. {BARE_FIX}'),
    ({"version": ">=580"}, f'values.driver.version is ">=580", not one exact driver version. {BARE_FIX}'),
    # `$` matches before a trailing newline; a pin with one is not one exact version.
    ({"version": "580.173.02\n"}, f"values.driver.version is \"580.173.02\\n\", not one exact driver version. "
                                   f"{BARE_FIX}"),
    ({"version": 580.17}, f"values.driver.version is 580.17, not a version string. {BARE_FIX}"),
    ({"version": "580.173.02", "usePrecompiled": True},
     'values.driver.version is "580.173.02", but with usePrecompiled: true the operator expects the driver branch. '
     'Fix: set it to "580".'),
])
def test_driver_version_must_be_one_exact_bare_version(driver: dict, message: str) -> None:
    assert check(PINNED, RELEASE, release(**driver)).messages == [f"{WHO}: {message}"]


@pytest.mark.parametrize("driver", [
    {"version": "580.173.02"}, {"version": "396.37"}, {"version": "580", "usePrecompiled": True},
    {"enabled": False, "version": None}, {"enabled": False, "version": "latest"},
    {"nvidiaDriverCRD": {"enabled": True, "deployDefaultCR": False}, "version": None},
])
def test_exact_pins_and_disabled_or_crd_managed_drivers_pass(driver: dict) -> None:
    assert check(PINNED, RELEASE, release(**driver)).messages == []


def test_default_cr_still_takes_the_version_from_values() -> None:
    props = release(version=None, nvidiaDriverCRD={"enabled": True})
    assert check(PINNED, RELEASE, props).messages[0].startswith(f"{WHO}: values.driver.version is not set")


def test_string_false_does_not_disable_the_driver() -> None:
    assert check(PINNED, RELEASE, release(enabled="false", version=None)).messages == [
        f'{WHO}: values.driver.enabled is "false", not a boolean, so whether the chart deploys the driver depends '
        "on how each template reads it (the driver is checked as enabled). Fix: use the boolean false to disable "
        "the driver, or true.",
        f"{WHO}: values.driver.version is not set, so the driver follows the chart's default, which changes with "
        f"every chart release. {BARE_FIX}"]


def test_values_absent_means_the_chart_default_driver() -> None:
    props = gpu_release()
    del props["values"]
    assert check(PINNED, RELEASE, props).messages == [
        f"{WHO}: values.driver.version is not set, so the driver follows the chart's default, which changes with "
        f"every chart release. {BARE_FIX}"]


def test_value_files_are_named_when_the_pin_is_missing() -> None:
    props = release(version=None)
    props["valueYamlFiles"] = [{"4dabf18193072939515e22adb298388d": "c44067f5952c0a294b673a41bacd8c17",
                                "path": "values.yaml"}]
    message = check(PINNED, RELEASE, props).messages[0]
    assert message.endswith("(this policy cannot read valueYamlFiles; pin the version in values). " + BARE_FIX)


@pytest.mark.parametrize("version, problem", [
    (None, "version is not set, so Helm installs whatever chart release is newest"),
    ("", "version is not set, so Helm installs whatever chart release is newest"),
    ("~26.7", 'version is "~26.7", a range or partial version that Helm resolves to the newest match at install time'),
    ("26.7", 'version is "26.7", a range or partial version that Helm resolves to the newest match at install time'),
    (">=26.3.0 <27", 'version is ">=26.3.0 <27", a range or partial version that Helm resolves to the newest match '
                     "at install time"),
    ("*", 'version is "*", a range or partial version that Helm resolves to the newest match at install time'),
])
def test_chart_version_must_be_exact(version: str | None, problem: str) -> None:
    props = gpu_release()
    if version is None:
        del props["version"]
    else:
        props["version"] = version
    assert check(PINNED, RELEASE, props).messages == [
        f'{WHO}: {problem}. Fix: set it to one exact chart version, e.g. "v26.7.0".']


@pytest.mark.parametrize("chart, version", [
    ("gpu-operator", "26.7.0"), ("nvidia/gpu-operator", "v26.7.0"), ("oci://nvcr.io/nvidia/gpu-operator", "v26.7.0"),
    ("https://helm.ngc.nvidia.com/nvidia/charts/gpu-operator-v26.7.0.tgz", None),
])
def test_chart_references_and_exact_versions_pass(chart: str, version: str | None) -> None:
    props = gpu_release()
    props["chart"] = chart
    if version is None:
        del props["version"]
    else:
        props["version"] = version
    assert check(PINNED, RELEASE, props).messages == []
    assert check(DOCUMENTED, RELEASE, props).messages == []


def test_other_charts_and_types_are_not_applicable() -> None:
    props = gpu_release()
    props["chart"] = "ingress-nginx"
    props["values"]["driver"]["version"] = "latest"
    assert check(PINNED, RELEASE, props).not_applicable == "not the gpu-operator chart"
    assert check(PINNED, "kubernetes:core/v1:ConfigMap", {"data": {}}).not_applicable


def test_allow_list() -> None:
    config = {"allowedDriverVersions": ["580.173.02", "595.91.07"]}
    assert check(PINNED, RELEASE, release(version="595.91.07"), config=config).messages == []
    assert check(PINNED, RELEASE, release(version="525.85.05"), config=config).messages == [
        f'{WHO}: values.driver.version is "525.85.05", which is not in allowedDriverVersions (580.173.02, '
        "595.91.07). Fix: use an allowed version, or add this one to allowedDriverVersions in the policy config "
        "after review."]


def test_allow_list_entries_must_be_versions() -> None:
    reported = check(PINNED, RELEASE, gpu_release(), config={"allowedDriverVersions": ["latest"]})
    assert reported.messages == [
        "the policy-pack config for gpu-operator-driver-pinned is invalid: config key \"allowedDriverVersions\" "
        'contains "latest"; list exact bare driver versions such as "580.173.02" (or a branch such as "580" for '
        "usePrecompiled). This run uses the policy's defaults instead; fix the config file passed with "
        "--policy-pack-config."]


@pytest.mark.parametrize("type_, props, message", [
    (NVIDIA_DRIVER, {"metadata": {"name": "a4000"}, "spec": {"driverType": "gpu", "image": "driver",
                                                              "version": "latest"}},
     f'NVIDIADriver a4000: spec.version is "latest", which moves whenever NVIDIA publishes a driver. {BARE_FIX}'),
    (NVIDIA_DRIVER, {"metadata": {"name": "a4000"}, "spec": {"driverType": "gpu", "image": "driver"}},
     f"NVIDIADriver a4000: spec.version is not set, so the driver version is not pinned. {BARE_FIX}"),
    (NVIDIA_DRIVER, {"metadata": {"name": "pre"}, "spec": {"usePrecompiled": True, "version": "580.173.02"}},
     'NVIDIADriver pre: spec.version is "580.173.02", but with usePrecompiled: true the operator expects the driver '
     'branch. Fix: set it to "580".'),
    (CLUSTER_POLICY, {"metadata": {"name": "cluster-policy"}, "spec": {"driver": {"enabled": True}}},
     f"ClusterPolicy cluster-policy: spec.driver.version is not set, so the driver version is not pinned. {BARE_FIX}"),
    (CLUSTER_POLICY, {"metadata": {"name": "cluster-policy"}, "spec": {"driver": {"version": "580.173.02-rhel9"}}},
     'ClusterPolicy cluster-policy: spec.driver.version is "580.173.02-rhel9", OS-suffixed; the operator appends '
     '-<os> itself. Fix: set it to the bare version "580.173.02".'),
])
def test_custom_resources_follow_the_same_rule(type_: str, props: dict, message: str) -> None:
    assert check(PINNED, type_, props).messages == [message]


@pytest.mark.parametrize("type_, props", [
    (NVIDIA_DRIVER, {"spec": {"version": "580.173.02"}}),
    (NVIDIA_DRIVER, {"spec": {"version": "580", "usePrecompiled": True}}),
    (CLUSTER_POLICY, {"spec": {"driver": {"enabled": False}}}),
    (CLUSTER_POLICY, {"spec": {"driver": {"useNvidiaDriverCRD": True}}}),
])
def test_custom_resources_that_pin_or_deploy_no_driver_pass(type_: str, props: dict) -> None:
    assert check(PINNED, type_, props).messages == []


def test_unknown_driver_version_is_reported_once_for_each_policy() -> None:
    props = release(version=U)
    for policy in (PINNED, DOCUMENTED):
        for proxy in (False, True):
            reported = check(policy, RELEASE, copy.deepcopy(props), proxy=proxy)
            assert reported.messages == []
            assert reported.unknown == (f"{WHO}: values.driver.version is unknown until the update runs, and this "
                                        "policy needs it; it checks again during `pulumi up`, when the values are "
                                        "known")


def test_unknown_chart_version_is_reported_with_the_known_driver_problem() -> None:
    props = release(version="latest")
    props["version"] = U
    reported = check(PINNED, RELEASE, props, proxy=True)
    assert reported.messages == [f'{WHO}: values.driver.version is "latest", which moves whenever NVIDIA publishes '
                                 f"a driver. {BARE_FIX}"]
    assert reported.unknown is not None and reported.unknown.startswith(f"{WHO}: version is unknown")


# --- documented pairs -------------------------------------------------------------------------------------

@pytest.mark.parametrize("chart, driver, precompiled, documented", [
    ("v26.7.0", "580.173.02", False, True),
    ("v26.7.0", "595.91.07", False, True),
    ("v26.7.0", "525.85.05", False, False),
    ("v26.7.0", "580.126.20", False, False),
    ("v26.3.3", "580.126.20", False, True),
    ("v25.10.1", "580.173.02", False, False),
    ("v25.10.1", "580.178.04", False, True),
    ("v26.7.0", "610", True, True),
    ("v26.7.0", "550", True, False),
])
def test_documented_pairs_follow_the_component_matrix(chart: str, driver: str, precompiled: bool,
                                                      documented: bool) -> None:
    props = release(version=driver, usePrecompiled=precompiled)
    props["version"] = chart
    assert (check(DOCUMENTED, RELEASE, props).messages == []) is documented


def test_undocumented_message_lists_what_is_documented() -> None:
    assert check(DOCUMENTED, RELEASE, release(version="525.85.05")).messages == [
        f'{WHO}: values.driver.version is "525.85.05", which NVIDIA does not document for chart v26.7.0 (documented: '
        "610.57.04, 595.91.07 (default, recommended), 580.173.02, 535.309.01). Fix: pin a documented driver, or "
        "pre-install the driver on the hosts and set values.driver.enabled: false."]


def test_release_outside_the_table_says_it_cannot_check_and_config_can_vouch() -> None:
    props = gpu_release()
    props["version"] = "v26.8.0"
    assert check(DOCUMENTED, RELEASE, props).messages == [
        f'{WHO}: version is "v26.8.0", which the pack\'s component matrix does not cover (24.9.0 to 26.7.0), so '
        "driver 580.173.02 cannot be checked. Fix: check NVIDIA's component matrix for this release and add the "
        "pair under additionalDocumented in this policy's config (or update the pack's driver_matrix)."]
    config = {"additionalDocumented": {"26.8.0": ["580.173.02"]}}
    assert check(DOCUMENTED, RELEASE, props, config=config).messages == []


def test_documented_policy_leaves_invalid_pins_to_the_mandatory_one() -> None:
    for driver in ({"version": "latest"}, {"version": None}, {"version": "580.173.02", "usePrecompiled": True}):
        reported = check(DOCUMENTED, RELEASE, release(**driver))
        assert (reported.messages, reported.not_applicable) == (
            [], "chart or driver version is not exact (gpu-operator-driver-pinned reports it)")
    assert check(DOCUMENTED, NVIDIA_DRIVER, {"spec": {"version": "1.2.3"}}).not_applicable


def test_documented_policy_is_advisory_and_pinning_is_mandatory() -> None:
    assert (DOCUMENTED.enforcement_level.value, PINNED.enforcement_level.value) == ("advisory", "mandatory")
