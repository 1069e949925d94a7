"""`dev.py compat`: whether the pinned chart and driver support a target, from the shipped data, with no cluster.
One case per verdict, each from the lab's stack with one target changed."""
from __future__ import annotations

import json

import pytest

from tools import compat
from tools.findings import load_stack


@pytest.fixture(scope="module")
def lab():
    return load_stack("lab")


def by_check(findings: list) -> dict[str, object]:
    return {f.check: f for f in findings}


def test_the_lab_as_pinned_is_supported(lab) -> None:
    findings, notes = compat.compat(lab)
    assert [(f.check, f.verdict) for f in findings] == [
        ("kubernetes", "pass"), ("lifecycle", "pass"), ("driver", "pass"), ("stack-config", "pass")]
    assert by_check(findings)["kubernetes"].found == "chart v26.7.0 lists RKE2 1.33-1.36"
    assert notes == []


def test_kubernetes_1_36_on_the_pinned_chart_is_supported_and_says_what_to_change_after(lab) -> None:
    findings, notes = compat.compat(lab, kubernetes="1.36")
    assert {f.verdict for f in findings} == {"pass"}
    assert notes == ['to reach the targets, change in Pulumi.lab.yaml: gpu-platform:cluster.kubernetesVersion: "1.36" '
                     "once the cluster runs it (it pins the Pod Security label versions and the schemas `dev.py "
                     "plan` checks against)"]


def test_kubernetes_1_36_on_an_older_chart_names_the_chart_releases_that_list_it(lab) -> None:
    findings, _ = compat.compat(lab, kubernetes="1.36", chart="v26.3.1")
    finding = by_check(findings)["kubernetes"]
    assert (finding.verdict, finding.found) == ("fail", "chart v26.3.1 lists RKE2 1.32-1.35")
    assert finding.action.startswith("upgrade the chart first: chart releases listing RKE2 1.36: v26.3.2, v26.3.3, "
                                     "v26.7.0. Set gpu-platform:gpuOperator.chart.version: v26.7.0")


def test_a_kubernetes_no_release_lists_says_so(lab) -> None:
    finding = by_check(compat.compat(lab, kubernetes="1.37")[0])["kubernetes"]
    assert finding.verdict == "fail"
    assert "no chart release this program supports is validated on RKE2 1.37; the newest, v26.7.0, lists up to " \
           "1.36" in finding.action


def test_an_older_kubernetes_is_not_answered_with_a_chart_downgrade(lab) -> None:
    finding = by_check(compat.compat(lab, kubernetes="1.31")[0])["kubernetes"]
    assert finding.verdict == "fail"
    assert finding.action.startswith("only older chart releases list RKE2 1.31 (v25.10.0, v25.10.1)")


def test_the_platform_follows_the_runtime_and_k3s_is_not_listed_before_26_3(lab) -> None:
    finding = by_check(compat.compat(lab, chart="v25.10.1", platform="k3s")[0])["kubernetes"]
    assert (finding.verdict, finding.found) == ("fail", "NVIDIA lists no K3s for chart v25.10.1")


def test_a_driver_the_chart_does_not_document_fails_with_the_routes_that_work(lab) -> None:
    findings, _ = compat.compat(lab, driver="525.85.05")
    driver = by_check(findings)["driver"]
    assert (driver.verdict, driver.found) == ("fail", "not documented for v26.7.0")
    assert "525.85.05 is not a data-center driver build" in driver.action
    assert "pin a driver documented for v26.7.0 (gpuOperator.driver.version: 595.91.07" in driver.action
    config = by_check(findings)["stack-config"]
    assert (config.verdict, config.found) == ("fail", "refused, as the driver finding above says")


def test_the_lab_pin_with_chart_25_10_fails_the_driver_and_warns_the_lifecycle(lab) -> None:
    findings, _ = compat.compat(lab, chart="v25.10.1")
    assert by_check(findings)["driver"].verdict == "fail"
    lifecycle = by_check(findings)["lifecycle"]
    assert (lifecycle.verdict, lifecycle.found) == ("warn", "out of NVIDIA support")


@pytest.mark.parametrize("argv, message", [
    (["--kubernetes", "1.3x"], "compat: --kubernetes '1.3x': give a Kubernetes minor release such as 1.36\n"),
    (["--chart", "26.7.0"], "compat: --chart '26.7.0' is not a chart release this program supports"),
    (["--stack", "nope"], "compat: no stack file Pulumi.nope.yaml"),
])
def test_usage_errors_are_one_line_and_exit_code_2(argv, message, capsys) -> None:
    assert compat.main(argv) == 2
    assert capsys.readouterr().err.startswith(message)


def test_exit_codes_and_json(capsys) -> None:
    assert compat.main(["--kubernetes", "1.36", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["targets"] == {"kubernetes": "1.36", "chart": "v26.7.0", "driver": "580.173.02"}
    assert document["exitCode"] == 0 and document["summary"] == {"pass": 4, "warn": 0, "fail": 0}
    assert compat.main(["--kubernetes", "1.37"]) == 1
    assert "FAIL  kubernetes             Kubernetes 1.37 on RKE2" in capsys.readouterr().out
