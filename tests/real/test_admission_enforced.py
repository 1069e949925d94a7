"""The admission plane on the real API server: `pulumi up` installs the policies, which then judge every client.

Given the lab stack deployed by the real CLI, provider and Helm, when kubectl-style requests reach the API
server, then each ValidatingAdmissionPolicy refuses what its rule forbids and admits the operator's own
objects; and one corpus, judged by the pack over the analyzer protocol and by the API server as dry-run
creates, gets the same verdict per rule except the documented plane differences (docs/admission.md).
"""
from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.admission import PLANE_DIFFERENCES, RULES
from tests.real.agreement import (
    OPERATOR, OTHER, PACK_RULES, TENANT, Case, api_verdict, compare, manifest, namespace, pack_cases, pack_verdict,
    pss_cases, quota, gpu_workload, restricted_spec,
)
from tests.real.harness import restore, tear_down, wait_for
from tools.analyzer import open_pack
from tools.engine import Engine
from tools.kube import Kube, KubeError
from tools.stacks import Stack

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "admission.md"


@pytest.fixture(scope="module")
def deployed(engine: Engine, kube: Kube, baseline: dict,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(engine, tmp_path_factory.mktemp("admission") / "project", "admission")
    stack.init()
    try:
        result = stack.up()
        assert result.returncode == 0, result.output
        # A restricted namespace that is not a tenant's (created while the policies hold: it complies).
        kube.create(namespace(OTHER, "restricted"))
        yield stack
    finally:
        kube.delete("v1", "Namespace", OTHER)
        tear_down(stack)
        restore(kube, baseline)


def refused(kube: Kube, obj: dict[str, Any]) -> str:
    with pytest.raises(KubeError) as error:
        kube.create(obj, dry_run=True)
    assert error.value.code == 403, error.value
    return error.value.message


def policy_of(message: str) -> str:
    match = re.search(r"ValidatingAdmissionPolicy '([^']+)'", message)
    assert match, message
    return match.group(1)


# --- installed by pulumi up -----------------------------------------------------------------------------------

def test_pulumi_up_installs_one_enforcing_policy_and_binding_per_rule(deployed: Stack, kube: Kube) -> None:
    for rule in RULES:
        policy = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicy", rule.name)
        binding = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding", rule.name)
        assert binding["spec"] == {"policyName": rule.name, "validationActions": ["Deny"]}, rule.name
        assert policy["spec"]["failurePolicy"] == "Fail"


# --- each rule denies what it should --------------------------------------------------------------------------

def test_kubectl_edit_of_the_driver_is_refused_unless_allowed_and_other_edits_pass(deployed: Stack,
                                                                                  kube: Kube) -> None:
    policy = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
    assert policy["spec"]["driver"]["version"] == "580.173.02"  # Helm's write of the pin was admitted
    path = kube.path("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
    dry = {"dryRun": "All"}
    with pytest.raises(KubeError) as error:
        kube.request("PATCH", path, {"spec": {"driver": {"version": "610.57.04"}}}, params=dry,
                     content_type="application/merge-patch+json")
    assert error.value.code == 403 and policy_of(error.value.message) == "gpu-platform-driver-pinned"
    assert "610.57.04 is not allowed (allowed: 580.173.02, 595.91.07)" in error.value.message
    moved = kube.request("PATCH", path, {"spec": {"driver": {"version": "595.91.07"}}}, params=dry,
                         content_type="application/merge-patch+json")
    assert moved["spec"]["driver"]["version"] == "595.91.07"
    # Not a move of the driver: the operator's and Helm's other writes to the object pass.
    labelled = kube.request("PATCH", path, {"metadata": {"labels": {"example.com/touched": "yes"}}}, params=dry,
                            content_type="application/merge-patch+json")
    assert labelled["metadata"]["labels"]["example.com/touched"] == "yes"


def test_a_namespace_without_the_restricted_label_is_refused_and_existing_ones_keep_working(deployed: Stack,
                                                                                           kube: Kube) -> None:
    message = refused(kube, namespace("notebooks", None))
    assert policy_of(message) == "gpu-platform-namespace-pod-security"
    assert "label pod-security.kubernetes.io/enforce is missing; allowed: restricted" in message
    assert policy_of(refused(kube, namespace("notebooks", "baseline"))) == "gpu-platform-namespace-pod-security"
    assert kube.create(namespace("notebooks", "restricted"), dry_run=True)["metadata"]["name"] == "notebooks"
    # `default` existed before the policy, without the label: an update that leaves the label alone passes,
    # one that lowers it to privileged does not.
    path = kube.path("v1", "Namespace", "default")
    touched = kube.request("PATCH", path, {"metadata": {"labels": {"example.com/touched": "yes"}}},
                           params={"dryRun": "All"}, content_type="application/merge-patch+json")
    assert touched["metadata"]["labels"]["example.com/touched"] == "yes"
    with pytest.raises(KubeError) as error:
        kube.request("PATCH", path, {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "privileged"}}},
                     params={"dryRun": "All"}, content_type="application/merge-patch+json")
    assert error.value.code == 403


def test_an_unpinned_image_is_refused_in_a_tenant_namespace(deployed: Stack, kube: Kube) -> None:
    spec = restricted_spec()
    spec["containers"][0]["image"] = "nvcr.io/nvidia/pytorch:latest"
    message = refused(kube, manifest("Deployment", spec, TENANT, "notebook"))
    assert policy_of(message) == "gpu-platform-images-pinned"
    assert "Deployment ai-ml/notebook: image(s) not pinned: main=nvcr.io/nvidia/pytorch:latest" in message
    spec["containers"][0]["image"] = "nvcr.io/nvidia/pytorch:25.10-py3"
    assert kube.create(manifest("Deployment", spec, TENANT, "notebook"), dry_run=True)


def test_gpus_only_in_tenant_namespaces_with_a_quota_and_the_operator_namespace(deployed: Stack, kube: Kube) -> None:
    message = refused(kube, gpu_workload("Pod", OTHER, "stray"))
    assert policy_of(message) == "gpu-platform-gpu-placement"
    assert "which is not a tenant namespace. GPUs may be requested in: ai-ml, sdr, gpu-operator" in message
    assert kube.create(gpu_workload("Pod", TENANT, "trainer"), dry_run=True)
    assert kube.create(gpu_workload("Pod", OPERATOR, "validator"), dry_run=True)


def test_cluster_admin_for_people_is_refused_but_break_glass_and_robots_pass(deployed: Stack, kube: Kube) -> None:
    from tests.real.agreement import binding

    message = refused(kube, binding("ClusterRoleBinding", "lab-admins", "cluster-admin", "Group"))
    assert policy_of(message) == "gpu-platform-admin-bindings"
    assert "ClusterRoleBinding lab-admins binds ClusterRole cluster-admin to Group someone" in message
    assert kube.create(binding("ClusterRoleBinding", "ci-robot", "cluster-admin", "ServiceAccount"), dry_run=True)
    # The break-glass binding: Kubernetes' own, which the API server reconciles at start.
    path = kube.path("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "cluster-admin")
    kube.request("PATCH", path, {"metadata": {"labels": {"example.com/touched": "yes"}}}, params={"dryRun": "All"},
                 content_type="application/merge-patch+json")


# --- the operator's own objects are admitted --------------------------------------------------------------------

def test_the_operators_objects_are_admitted(deployed: Stack, kube: Kube) -> None:
    """The release's ClusterPolicy (Helm wrote it under the policies), the operator's Deployment, and an operand
    as the operator creates it: a privileged DaemonSet with host namespaces and hostPath, whose validator asks
    for a GPU, in the operator namespace."""
    assert kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")
    assert kube.get("apps/v1", "Deployment", "gpu-operator", OPERATOR)
    operand = {
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "nvidia-operator-validator", "namespace": OPERATOR},
        "spec": {"selector": {"matchLabels": {"app": "nvidia-operator-validator"}},
                 "template": {"metadata": {"labels": {"app": "nvidia-operator-validator"}},
                              "spec": {"hostPID": True,
                                       "containers": [{"name": "plugin-validation",
                                                       "image": "nvcr.io/nvidia/gpu-operator:v26.7.0",
                                                       "securityContext": {"privileged": True},
                                                       "resources": {"limits": {"nvidia.com/gpu": "1"}},
                                                       "volumeMounts": [{"name": "root", "mountPath": "/host"}]}],
                                       "volumes": [{"name": "root", "hostPath": {"path": "/"}}]}}}}
    assert kube.create(operand, dry_run=True)["metadata"]["name"] == "nvidia-operator-validator"


# --- agreement, measured ------------------------------------------------------------------------------------------

def figure(cases: list[Case], disagreements: list) -> str:
    documented = [d for d in disagreements if d.difference]
    return (f"{len(cases)} cases x {len(PACK_RULES)} rules = {len(cases) * len(PACK_RULES)} verdict pairs; "
            f"{len(disagreements)} disagreements, {len(documented)} documented plane differences, "
            f"{len(disagreements) - len(documented)} undocumented")


def test_the_pack_and_the_api_server_agree_on_one_corpus_except_documented_differences(
        deployed: Stack, kube: Kube, upstream: Path) -> None:
    lab_config = json.loads((ROOT / "policies" / "config" / "lab.json").read_text())
    live = kube.get("nvidia.com/v1", "ClusterPolicy", "cluster-policy")["spec"]
    cases = pack_cases(live) + pss_cases(upstream)
    lab_context = [quota(ns) for ns in ("ai-ml", "sdr")]  # the lab stack's GPU quotas, as the pack sees them
    with open_pack(ROOT / "policies", lab_config, dry_run=False) as client:
        disagreements = compare(cases, lambda case: pack_verdict(client, case, lab_context),
                                lambda case: api_verdict(kube, case))
    undocumented = [d for d in disagreements if d.difference is None]
    assert undocumented == [], undocumented
    # Every difference a case names shows up (else the case or the list is out of date).
    named = {(case.id, policy) for case in cases for policy in case.differences}
    shown = {(d.case, d.policy) for d in disagreements}
    assert named == shown, named ^ shown
    measured = figure(cases, disagreements)
    print(f"\nagreement: {measured}")
    assert measured in DOC.read_text(), f"docs/admission.md must state the measured figure: {measured}"
    assert {d.difference for d in disagreements} <= set(PLANE_DIFFERENCES)


# --- rolling a rule out: a dry run --------------------------------------------------------------------------------

def test_a_rule_in_dry_run_mode_admits_with_a_warning(deployed: Stack, kube: Kube) -> None:
    """Last in this module: it changes the stack. `pulumi up` moves the binding to [Warn, Audit]; the same
    Deployment the image rule refused above is admitted, and the client is told why it would not be."""
    deployed.set("admission.rules.imagesPinned.mode", "dryRun")
    result = deployed.up()
    assert result.returncode == 0, result.output
    binding = kube.get("admissionregistration.k8s.io/v1", "ValidatingAdmissionPolicyBinding",
                       "gpu-platform-images-pinned")
    assert binding["spec"]["validationActions"] == ["Warn", "Audit"]
    spec = restricted_spec()
    spec["containers"][0]["image"] = "nvcr.io/nvidia/pytorch:latest"

    def admitted() -> bool:  # the API server's policy cache follows the binding within a moment
        try:
            return bool(kube.create(manifest("Deployment", spec, TENANT, "notebook"), dry_run=True))
        except KubeError as error:
            assert policy_of(error.message) == "gpu-platform-images-pinned", error
            return False

    wait_for("the API server to apply the dry-run binding", admitted, timeout=30)
    assert any("gpu-platform-images-pinned" in w and "image(s) not pinned" in w for w in kube.warnings), kube.warnings
