"""What the real CLI, provider and chart do that the mock engine does not show, and what the program does about it.

Each test names the suspicion it settles (issue 11, "What the real tools do differently"); docs/real-tier.md
says which were real.
"""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.real.harness import stack_name, tear_down, wait_for
from tools.engine import ROOT
from tools.stacks import Stack, chart_archive
from tools.cluster import LocalCluster
from tools.engine import Engine
from tools.kube import Kube
from tools.upstream import upstream_dir

PROGRAMS = Path(__file__).parent / "programs"
RULE_CRD = "prometheusrules.monitoring.coreos.com"


def test_without_the_prometheus_rule_crd_the_preview_fails_naming_it_and_nothing_is_applied(
        lab: Stack, kube: Kube, cluster: LocalCluster) -> None:
    """Declared only, a PrometheusRule without its CRD previewed green and failed at `up` after a minute of retries,
    with the other 35 resources applied. The program now reads the CRD and the namespace, so the preview fails."""
    kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", RULE_CRD)
    try:
        result = lab.up()
        assert result.returncode != 0
        assert RULE_CRD in result.output
        assert not kube.exists("v1", "Namespace", "ai-ml")
        assert kube.list("v1", "Secret", "gpu-operator", selector="owner=helm") == []
    finally:
        cluster.kubectl("apply", "--server-side", "--field-manager=kube-prometheus-stack",
                        "-f", str(upstream_dir() / "prometheus-operator" / "monitoring.coreos.com_prometheusrules.yaml"))
        wait_for(f"{RULE_CRD} to be established again", lambda: kube.crd_established(RULE_CRD))


def test_an_existing_tenant_namespace_is_adopted_as_it_is_by_provider_4_25(lab: Stack, kube: Kube) -> None:
    """Suspected: AlreadyExists (provider >= 4.29 creates client-side). At the pinned 4.25 the create is a server-side
    apply, so an existing namespace is taken over silently: its own labels stay, ours are added, and from then on
    the stack owns (and protects) it."""
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ai-ml", "labels": {"team": "ml"}}},
                field_manager="kubectl-create")
    result = lab.up()
    assert result.returncode == 0, result.output
    namespace = kube.get("v1", "Namespace", "ai-ml")
    assert namespace["metadata"]["labels"]["team"] == "ml"
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    managers = {entry["manager"] for entry in namespace["metadata"]["managedFields"]}
    assert "kubectl-create" in managers and any(m.startswith("pulumi-kubernetes") for m in managers)
    exported = lab.pulumi("stack", "export")
    assert '"name": "ai-ml"' in exported.stdout


def workload(engine: Engine, tmp_path: Path, request: pytest.FixtureRequest) -> Stack:
    stack = Stack(engine, tmp_path / "workload", stack_name(request), program=PROGRAMS / "tenant_workload",
                     config={"tenant-workload:privileged": "false", "tenant-workload:namespace": "gpu-jobs"})
    stack.init()
    return stack


def test_a_stack_policy_stops_up_in_its_preview_but_judges_after_the_apply_with_skip_preview(
        engine: Engine, kube: Kube, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    """gpu-quota-required is a stack policy: the engine runs it on the preview's result, and in `up --skip-preview`
    only after the changes are applied. So the workload exists although the pack says no."""
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gpu-jobs"}})
    stack = workload(engine, tmp_path, request)
    try:
        stopped = stack.up(skip_preview=False)
        assert stopped.returncode != 0 and "gpu-quota-required" in stopped.output
        assert not kube.exists("apps/v1", "Deployment", "trainer", "gpu-jobs")
        applied = stack.up(skip_preview=True)
        assert applied.returncode != 0 and "gpu-quota-required" in applied.output
        assert kube.exists("apps/v1", "Deployment", "trainer", "gpu-jobs")
    finally:
        tear_down(stack)
        kube.delete("v1", "Namespace", "gpu-jobs")


def test_the_chart_turns_max_unavailable_zero_into_25_percent(toolchain_bin: Path) -> None:
    """Why the config refuses maxUnavailable: 0: the chart's template reads it through `| default "25%"`."""
    rendered = subprocess.run(
        [str(toolchain_bin / "helm"), "template", "gpu-operator", str(chart_archive("v26.7.0")),
         "--namespace", "gpu-operator", "--set", "driver.upgradePolicy.maxUnavailable=0"],
        capture_output=True, text=True, check=True).stdout
    [policy] = [doc for doc in yaml.safe_load_all(rendered) if doc and doc.get("kind") == "ClusterPolicy"]
    assert policy["spec"]["driver"]["upgradePolicy"]["maxUnavailable"] == "25%"


def test_the_pack_without_its_virtualenv_says_how_to_make_it(lab: Stack, tmp_path: Path) -> None:
    """The CLI never builds a pack's virtualenv before running it (pulumi-language-python runs
    <pack>/venv/bin/python as it finds it); the pack's entry point says what to run instead of failing obscurely."""
    pack = tmp_path / "pack"
    pack.mkdir()
    for entry in ("PulumiPolicy.yaml", "__main__.py", "gpu_policies", "analyzer"):
        target = pack / entry
        if (ROOT / "policies" / entry).is_dir():
            target.symlink_to(ROOT / "policies" / entry)
        else:
            shutil.copy(ROOT / "policies" / entry, target)
    result = lab.pulumi("preview", "--non-interactive", "--policy-pack", str(pack / "analyzer"))
    assert result.returncode != 0
    assert "the policy pack's virtualenv is missing: run `python3 dev.py setup`" in result.output
