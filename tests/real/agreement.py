"""One corpus, two planes: the pack (over the analyzer protocol) and the API server (server-side dry-run create).

The corpus is data built from what the pack's own tests use: the compliant baselines of
tests/policies/policy_factories.py (`workload`, `restricted_container`), each changed in one place as the pack's
tests change them, the ClusterPolicy Helm wrote from the lab's release, and the Pod Security Standards' own
conformance pods (../shared/upstream, restricted at v1.34). Each case is judged by both planes; the verdict per
rule (the five pack policies with an admission twin, components/admission.py RULES) must agree, unless the
case names the documented plane difference (PLANE_DIFFERENCES) that makes it differ.
"""
from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from components.admission import PLANE_DIFFERENCES, RULES
from tests.policies.policy_factories import restricted_container, restricted_pod_spec, workload
from tools.analyzer import AnalyzerClient, Resource
from tools.kube import Kube, KubeError

TENANT, OTHER, OPERATOR = "ai-ml", "research", "gpu-operator"  # OTHER: a restricted namespace, not a tenant
PACK_RULES = tuple(rule.pack_policy for rule in RULES)
API_VERSIONS = {"Pod": "v1", "PodTemplate": "v1", "ReplicationController": "v1", "Deployment": "apps/v1",
                "ReplicaSet": "apps/v1", "StatefulSet": "apps/v1", "DaemonSet": "apps/v1", "Job": "batch/v1",
                "CronJob": "batch/v1"}
PSS_FIXTURES = "pod-security-admission/restricted-v1.34"


@dataclass(frozen=True)
class Case:
    """One object, where it goes, what else the pack's stack holds, and the plane differences it shows."""

    id: str
    obj: dict[str, Any]
    context: tuple[dict[str, Any], ...] = ()
    differences: dict[str, str] = field(default_factory=dict)  # pack policy -> PLANE_DIFFERENCES key


def type_token(obj: dict[str, Any]) -> str:
    group, _, version = obj["apiVersion"].rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{obj['kind']}"


# --- the corpus -------------------------------------------------------------------------------------------------

def restricted_spec(**changes: Any) -> dict[str, Any]:
    """The pack's restricted baseline, less the ephemeral container the API refuses on create."""
    spec = restricted_pod_spec()
    del spec["ephemeralContainers"]
    spec.update(changes)
    return spec


def manifest(kind: str, spec: dict[str, Any], namespace: str, name: str) -> dict[str, Any]:
    """The pack's `workload` props made a complete API object (selector, restart policy, schedule)."""
    obj = {"apiVersion": API_VERSIONS[kind], "kind": kind, **workload(kind, spec, namespace=namespace, name=name)}
    labels = {"app": name}
    if kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet"):
        obj["spec"]["selector"] = {"matchLabels": labels}
    if kind == "Job":
        obj["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    if kind == "CronJob":
        obj["spec"]["schedule"] = "0 * * * *"
        obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["restartPolicy"] = "Never"
    if kind == "PodTemplate":
        obj["template"]["metadata"] = {"labels": labels}
    return obj


def with_gpu(spec: dict[str, Any], amount: str = "1") -> dict[str, Any]:
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": amount}}
    return spec


def gpu_workload(kind: str, ns: str, name: str, amount: str = "1") -> dict[str, Any]:
    return manifest(kind, with_gpu(restricted_spec(), amount), ns, name)


def privileged(spec: dict[str, Any]) -> dict[str, Any]:
    # The API refuses privileged together with allowPrivilegeEscalation: false, so the baseline's goes.
    spec["containers"][0]["securityContext"] = {"privileged": True}
    return spec


def quota(namespace: str, gpus: str = "2") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "tenant-quota", "namespace": namespace},
            "spec": {"hard": {"requests.nvidia.com/gpu": gpus}}}


def namespace(name: str, level: str | None) -> dict[str, Any]:
    labels = {"pod-security.kubernetes.io/enforce": level} if level else {}
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def binding(kind: str, name: str, role: str, subject_kind: str, ns: str | None = None) -> dict[str, Any]:
    subject = ({"kind": "ServiceAccount", "name": "runner", "namespace": TENANT} if subject_kind == "ServiceAccount"
               else {"kind": subject_kind, "name": "someone", "apiGroup": "rbac.authorization.k8s.io"})
    meta = {"name": name, **({"namespace": ns} if ns else {})}
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [subject]}


def cluster_policy(spec: dict[str, Any], name: str, **driver: Any) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    spec["driver"].update(driver)
    return {"apiVersion": "nvidia.com/v1", "kind": "ClusterPolicy", "metadata": {"name": name}, "spec": spec}


def nvidia_driver(name: str, version: str) -> dict[str, Any]:
    return {"apiVersion": "nvidia.com/v1alpha1", "kind": "NVIDIADriver", "metadata": {"name": name},
            "spec": {"default": False, "driverType": "gpu", "image": "driver", "repository": "nvcr.io/nvidia",
                     "version": version, "nodeSelector": {"agreement": name}}}


def pack_cases(live_cluster_policy_spec: dict[str, Any]) -> list[Case]:
    """The pack's own cases as objects: a compliant baseline per kind, then one change per case."""
    cases = [Case(f"baseline-{kind}", manifest(kind, restricted_spec(), TENANT, f"base-{kind.lower()}"))
             for kind in API_VERSIONS]
    for kind in ("Pod", "Deployment", "CronJob"):
        spec = restricted_spec(containers=[restricted_container(image="registry.example/app:latest")])
        cases.append(Case(f"image-latest-{kind}", manifest(kind, spec, TENANT, f"latest-{kind.lower()}")))
    for label, image in (("untagged", "registry.example:5000/app"), ("LATEST", "registry.example/app:LATEST"),
                         ("digest", "registry.example/app@sha256:" + "0123456789abcdef" * 4),
                         ("tag-and-digest", "registry.example/app:1.2@sha256:" + "0123456789abcdef" * 4)):
        spec = restricted_spec(containers=[restricted_container(image=image)])
        cases.append(Case(f"image-{label}-Pod", manifest("Pod", spec, TENANT, f"image-{label.lower()}")))
    init = restricted_spec(initContainers=[restricted_container("init", image="busybox")])
    cases.append(Case("image-untagged-init-Job", manifest("Job", init, TENANT, "init-untagged")))
    latest_elsewhere = restricted_spec(containers=[restricted_container(image="registry.example/app:latest")])
    cases.append(Case("image-latest-outside-tenants", manifest("Pod", latest_elsewhere, OTHER, "latest-other"),
                      differences={"container-images-pinned": "images-outside-tenants"}))

    cases += [
        Case("gpu-in-tenant-with-quota-Pod", gpu_workload("Pod", TENANT, "gpu-tenant")),
        Case("gpu-in-tenant-with-quota-Deployment", gpu_workload("Deployment", TENANT, "gpu-tenant")),
        Case("gpu-zero-outside-tenants", gpu_workload("Pod", OTHER, "gpu-zero", "0")),
        Case("gpu-outside-tenants-Pod", gpu_workload("Pod", OTHER, "gpu-other")),
        Case("gpu-outside-tenants-CronJob", gpu_workload("CronJob", OTHER, "gpu-other")),
        Case("gpu-outside-tenants-with-own-quota", gpu_workload("Pod", OTHER, "gpu-own-quota"),
             context=(quota(OTHER),), differences={"gpu-quota-required": "gpu-quota-source"}),
        Case("gpu-in-operator-namespace", gpu_workload("Pod", OPERATOR, "gpu-validator"),
             differences={"gpu-quota-required": "gpu-operator-namespace"}),
        Case("privileged-Pod-in-tenant", manifest("Pod", privileged(restricted_spec()), TENANT, "privileged")),
        Case("privileged-Deployment-in-tenant",
             manifest("Deployment", privileged(restricted_spec()), TENANT, "privileged"),
             differences={"pod-security-standards": "pod-security-templates"}),
        Case("privileged-Pod-in-operator-namespace",
             manifest("Pod", privileged(restricted_spec()), OPERATOR, "operand")),
        Case("namespace-restricted", namespace("agreement-restricted", "restricted")),
        Case("namespace-unlabelled", namespace("agreement-unlabelled", None),
             differences={"pod-security-standards": "namespace-label"}),
        Case("namespace-privileged-not-exempt", namespace("agreement-privileged", "privileged"),
             differences={"pod-security-standards": "namespace-label"}),
        Case("namespace-operator-privileged", namespace(OPERATOR, "privileged")),
        Case("cluster-admin-to-User", binding("ClusterRoleBinding", "agreement-admins", "cluster-admin", "User")),
        Case("cluster-admin-to-Group", binding("ClusterRoleBinding", "agreement-admins", "cluster-admin", "Group")),
        Case("cluster-admin-to-ServiceAccount",
             binding("ClusterRoleBinding", "agreement-robot", "cluster-admin", "ServiceAccount")),
        Case("cluster-admin-break-glass", binding("ClusterRoleBinding", "cluster-admin", "cluster-admin", "Group")),
        Case("cluster-admin-RoleBinding-to-Group",
             binding("RoleBinding", "agreement-admins", "cluster-admin", "Group", TENANT)),
        Case("edit-RoleBinding-to-Group", binding("RoleBinding", "agreement-editors", "edit", "Group", TENANT)),
        Case("cluster-policy-pinned", cluster_policy(live_cluster_policy_spec, "agreement-pinned")),
        Case("cluster-policy-next-allowed", cluster_policy(live_cluster_policy_spec, "agreement-next",
                                                           version="595.91.07")),
        Case("cluster-policy-not-allowed", cluster_policy(live_cluster_policy_spec, "agreement-other",
                                                          version="610.57.04")),
        Case("cluster-policy-latest", cluster_policy(live_cluster_policy_spec, "agreement-latest", version="latest")),
        Case("cluster-policy-host-driver", cluster_policy(live_cluster_policy_spec, "agreement-host", enabled=False)),
        Case("nvidia-driver-allowed", nvidia_driver("agreement-allowed", "595.91.07")),
        Case("nvidia-driver-not-allowed", nvidia_driver("agreement-other", "535.309.01")),
    ]
    return cases


def pss_cases(upstream: Path) -> list[Case]:
    """Upstream's restricted conformance pods in a tenant namespace, images tagged (upstream leaves them
    untagged: that is the image rule's business, and here each pod is about one Pod Security control)."""
    cases = []
    for verdict in ("fail", "pass"):
        for path in sorted((upstream / PSS_FIXTURES / verdict).glob("*.yaml")):
            pod = yaml.safe_load(path.read_text())
            pod["metadata"]["namespace"] = TENANT
            pod["metadata"]["name"] = pod["metadata"]["name"].replace("_", "-")  # upstream's names are not DNS names
            for list_name in ("containers", "initContainers"):
                for container in pod["spec"].get(list_name, []):
                    if not re.search(r"[:@]", container["image"].rsplit("/", 1)[-1]):
                        container["image"] += ":3.10"
            cases.append(Case(f"pss-{verdict}-{path.stem}", pod))
    return cases


# --- the two verdicts -------------------------------------------------------------------------------------------

def pack_verdict(client: AnalyzerClient, case: Case, lab_context: Iterable[dict[str, Any]]) -> set[str]:
    """The mirrored pack policies with a mandatory violation for the case's object (Analyze, then AnalyzeStack
    with what the lab stack declares around it: the tenants' GPU quotas)."""
    obj = case.obj
    name = obj["metadata"]["name"]
    resource = client.analyze(type_token(obj), name, obj)
    stack = [Resource(type_token(obj), name, obj)] + [
        Resource(type_token(o), f"{o['metadata'].get('namespace', '')}-{o['metadata']['name']}", o)
        for o in (*lab_context, *case.context)]
    whole = client.analyze_stack(stack)
    return {d.policy_name for d in (*resource.mandatory, *whole.mandatory) if d.policy_name in PACK_RULES}


_VAP = re.compile(r"ValidatingAdmissionPolicy '([^']+)'")


def api_verdict(kube: Kube, case: Case) -> set[str]:
    """The mirrored pack policy whose admission twin (or Pod Security admission) refused a dry-run create.

    The API server stops at the first validating admission plugin that refuses, so at most one rule shows; the
    corpus changes one thing per case. AlreadyExists (the break-glass binding that Kubernetes itself created)
    comes after admission, so it counts as admitted. Anything else is not a verdict and fails the test."""
    try:
        kube.create(case.obj, dry_run=True)
        return set()
    except KubeError as error:
        if error.code == 409 and error.reason == "AlreadyExists":
            return set()
        if error.code == 403 and "violates PodSecurity" in error.message:
            return {"pod-security-standards"}
        match = _VAP.search(error.message)
        if error.code == 403 and match:
            return {rule.pack_policy for rule in RULES if rule.name == match.group(1)}
        raise AssertionError(f"{case.id}: the API server answered {error}, which is no admission verdict") from None


@dataclass(frozen=True)
class Disagreement:
    case: str
    policy: str
    pack: bool
    api: bool
    difference: str | None  # the documented plane difference the case names, if any


def compare(cases: list[Case], pack: Callable[[Case], set[str]], api: Callable[[Case], set[str]]) -> list[Disagreement]:
    out = []
    for case in cases:
        assert set(case.differences.values()) <= set(PLANE_DIFFERENCES), case.id
        by_pack, by_api = pack(case), api(case)
        for policy in PACK_RULES:
            if (policy in by_pack) != (policy in by_api):
                out.append(Disagreement(case.id, policy, policy in by_pack, policy in by_api,
                                        case.differences.get(policy)))
    return out
