"""The offline plan end to end, run as a reviewer runs it: `python -m tools.plan` in its own process.

Each run starts the real policy pack (policies/__main__.py, as the CLI does) and the real program under
the mock engine; exit codes and reports are what CI and code scanning see.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml

from tests.factories import ROOT, lab_raw, mutate

UNSAFE = ROOT / "tests" / "fixtures" / "unsafe-program"


def plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.plan", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def lab_text() -> subprocess.CompletedProcess[str]:
    return plan("--stack", "lab")


@pytest.fixture(scope="module")
def lab_json() -> dict:
    result = plan("--stack", "lab", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def unsafe_json() -> tuple[int, dict]:
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "json")
    return result.returncode, json.loads(result.stdout)


def test_the_lab_plan_passes_with_zero_mandatory_violations(lab_text):
    assert lab_text.returncode == 0, lab_text.stdout + lab_text.stderr
    out = lab_text.stdout
    assert "Policies: pack gpu-platform-guardrails" in out and ": 0 mandatory," in out
    assert out.rstrip().endswith("Result: PASS (exit 0)")


def test_the_lab_summary_shows_the_release_settings(lab_text):
    out = lab_text.stdout
    assert "  chart    gpu-operator v26.7.0 from https://helm.ngc.nvidia.com/nvidia" in out
    assert "  driver   580.173.02, operator-managed" in out
    assert "  upgrade  1 node(s) at a time, GPU pods deleted (timeout 300s), drain off" in out
    assert "  sharing  default mps-4; mps-4=MPS x4 (ConfigMap device-plugin-config-" in out
    assert "  toolkit  CONTAINERD_SOCKET=/run/k3s/containerd/containerd.sock" in out


def test_the_lab_plan_lists_every_resource_by_type_and_namespace(lab_json, lab_text):
    custom = [r for r in lab_json["resources"] if r["custom"]]
    assert f"Resources: {len(custom)} (" in lab_text.stdout
    kinds = {r["type"] for r in custom}
    assert {"kubernetes:core/v1:Namespace", "kubernetes:core/v1:NodePatch", "kubernetes:helm.sh/v3:Release"} <= kinds
    assert "  gpu-operator\n" in lab_text.stdout and "    Node proj-k8sw04\n" in lab_text.stdout
    assert lab_json["violations"] == [] and lab_json["exitCode"] == 0
    assert all(s["findings"] == [] for s in lab_json["schemas"])
    assert len(lab_json["schemas"]) == len([r for r in custom if r["type"] != "kubernetes:helm.sh/v3:Release"])


def test_an_unsafe_program_exits_1_and_names_both_problems(unsafe_json):
    code, report = unsafe_json
    assert code == 1
    mandatory = [v for v in report["violations"] if v["level"] == "mandatory"]
    privileged = [v for v in mandatory if v["policy"] == "pod-security-standards" and "privileged" in v["message"]]
    unpinned = [v for v in mandatory if v["policy"] == "gpu-operator-driver-pinned"]
    assert privileged and privileged[0]["resource"] == "Deployment ml/trainer"
    assert "spec.template.spec.containers[0].securityContext.privileged" in privileged[0]["message"]
    assert unpinned and unpinned[0]["resource"] == "helm release gpu-operator (gpu-operator v26.7.0)"
    assert "values.driver.version" in unpinned[0]["message"]


def test_the_unsafe_text_report_names_both(tmp_path):
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--out", str(tmp_path / "manifests"))
    assert result.returncode == 1
    assert "[mandatory] pod-security-standards" in result.stdout
    assert "[mandatory] gpu-operator-driver-pinned" in result.stdout
    assert result.stdout.rstrip().endswith("Result: FAIL (exit 1)")
    files = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert files == ["deployment-ml-trainer.yaml", "helm-release-gpu-operator-gpu-operator-v26.7.0.yaml"]
    deployment = yaml.safe_load((tmp_path / "manifests" / "deployment-ml-trainer.yaml").read_text())
    assert deployment["kind"] == "Deployment" and deployment["metadata"]["name"] == "trainer"


def broken_program(tmp_path: Path, raw: dict) -> Path:
    program = tmp_path / "program"
    program.mkdir()
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(ROOT / name, program / name)
    (program / "components").symlink_to(ROOT / "components", target_is_directory=True)
    config = {f"gpu-platform:{key}": value for key, value in raw.items()}
    (program / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": config}))
    return program


def test_a_broken_stack_config_exits_2_with_the_config_message(tmp_path):
    program = broken_program(tmp_path, mutate(lab_raw(), "gpuOperator.driver.version", "525.85.05"))
    result = plan("--stack", "broken", "--program-dir", str(program), "--no-policies")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("plan: invalid stack config (1 problem); nothing was declared:\n"
                                    "  - gpu-platform:gpuOperator.driver.version: NVIDIA documents these drivers")
    assert "Traceback" not in result.stderr


def test_a_missing_stack_file_and_a_bad_policy_config_exit_2(tmp_path):
    result = plan("--stack", "nosuchstack", "--no-policies")
    assert (result.returncode, result.stderr) == (2, "plan: no stack file Pulumi.nosuchstack.yaml in "
                                                     f"{ROOT}\n")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"gpu-operator-driver-pinned": {"allowedDriverVersions": "580.173.02"}}))
    result = plan("--stack", "lab", "--policy-pack-config", str(bad))
    assert result.returncode == 2
    assert "plan: policy pack configuration is invalid:" in result.stderr
    assert "gpu-operator-driver-pinned: allowedDriverVersions: '580.173.02' is not of type 'array'" in result.stderr


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(sarif_schema):
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "sarif")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    jsonschema.Draft4Validator(sarif_schema).validate(document)
    results = document["runs"][0]["results"]
    rules = {r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]}
    assert {"pod-security-standards", "gpu-operator-driver-pinned", "kubernetes-schema"} <= rules
    assert {r["ruleId"] for r in results if r["level"] == "error"} >= {"pod-security-standards",
                                                                        "gpu-operator-driver-pinned"}


def test_junit_output_parses_and_fails_the_right_cases():
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "junit")
    suites = ElementTree.fromstring(result.stdout)
    failed = {(suite.get("name"), case.get("name")) for suite in suites for case in suite
              if case.find("failure") is not None}
    assert ("pod-security-standards", "Deployment ml/trainer") in failed
    assert ("gpu-operator-driver-pinned", "helm release gpu-operator (gpu-operator v26.7.0)") in failed
    assert all(int(s.get("tests")) == len(s.findall("testcase")) for s in suites)
