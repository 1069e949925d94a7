"""`pulumi preview` of the lab stack with the policy pack, by the real CLI and provider, against the local cluster.

Given the lab's stack config (the chart from its published archive, as an air-gapped lab installs it), when a
reviewer runs the preview with the pack, then every resource is planned with no mandatory violation; a bad
driver pin stops the program with the config's own message; a privileged tenant workload is stopped by the pack.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.real.harness import stack_name, tear_down
from tools.engine import ROOT
from tools.stacks import Stack

PROGRAMS = Path(__file__).parent / "programs"


def planned(result_stdout: str) -> dict[str, str]:
    """urn -> op of a `pulumi preview --json`."""
    return {step["urn"]: step["op"] for step in json.loads(result_stdout)["steps"]}


def offline_plan(tmp_path: Path, stack: Stack) -> dict:
    """The offline plan (mock engine + pack) of the same stack file, as JSON."""
    import subprocess
    import sys

    stack.write()
    stack_file = stack.folder / f"Pulumi.{stack.name}.yaml"
    document = yaml.safe_load(stack_file.read_text())
    (tmp_path / "offline").mkdir()
    (tmp_path / "offline" / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "offline" / f"Pulumi.{stack.name}.yaml").write_text(yaml.safe_dump({"config": document["config"]}))
    for entry in ("__main__.py", "components"):
        (tmp_path / "offline" / entry).symlink_to(ROOT / entry)
    out = tmp_path / "plan.json"
    result = subprocess.run([sys.executable, "-m", "tools.plan", "--program-dir", str(tmp_path / "offline"),
                             "--stack", stack.name, "--policy-pack-config", "policies/config/lab.json",
                             "--format", "json", "--output", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_the_lab_preview_plans_every_resource_the_offline_plan_does_with_no_mandatory_violation(
        lab: Stack, tmp_path: Path) -> None:
    result = lab.preview("--json")
    assert result.returncode == 0, result.output
    steps = planned(result.stdout)
    reads = {urn.rsplit("::", 1)[1] for urn, op in steps.items() if op == "read"}
    assert reads == {"gpu-platform-monitoring-prometheusrules-crd", "gpu-platform-monitoring-namespace",
                     "gpu-platform-nodes-proj-k8sw04-live"}
    creates = {urn for urn, op in steps.items() if op == "create"}
    assert len(creates) + len(reads) == len(steps), steps
    offline = offline_plan(tmp_path, lab)
    expected = {resource["urn"] for resource in offline["resources"]}
    stack_urn = f"urn:pulumi:{lab.name}::gpu-platform::pulumi:pulumi:Stack::gpu-platform-{lab.name}"
    assert creates - {stack_urn} == expected
    assert offline["violations"] == [] or all(v["enforcement"] != "mandatory" for v in offline["violations"])


def test_the_lab_preview_reports_the_pack_by_name_and_passes(lab: Stack) -> None:
    result = lab.preview()
    assert result.returncode == 0, result.output
    assert "gpu-platform-guardrails@v0.1.0" in result.stdout
    assert "mandatory" not in result.output


def test_the_seed_driver_stops_the_preview_with_the_config_message_and_no_traceback(lab: Stack) -> None:
    lab.set("gpuOperator.driver.version", "525.85.05")
    result = lab.preview()
    assert result.returncode != 0
    assert "invalid stack config" in result.output
    assert "gpu-platform:gpuOperator.driver.version" in result.output
    assert "525.85.05" in result.output and "driver.mode: host" in result.output
    assert "Traceback" not in result.output
    assert "+ 1 to create" not in result.output or "kubernetes:" not in result.output


def test_a_privileged_tenant_workload_is_a_mandatory_violation_and_the_cli_fails(
        engine, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    stack = Stack(engine, tmp_path / "workload", stack_name(request), program=PROGRAMS / "tenant_workload",
                     config={})
    stack.init()
    try:
        result = stack.preview()
        assert result.returncode != 0, result.output
        assert "pod-security-standards" in result.output
        assert "mandatory" in result.output
        assert 'container "trainer"' in result.output and "privileged" in result.output
    finally:
        tear_down(stack)
