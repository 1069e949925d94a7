"""Type tokens: the Kubernetes kinds the policies read, and where each pod-bearing kind keeps its pod
template."""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

POD = "kubernetes:core/v1:Pod"
POD_TEMPLATE = "kubernetes:core/v1:PodTemplate"
REPLICATION_CONTROLLER = "kubernetes:core/v1:ReplicationController"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
REPLICA_SET = "kubernetes:apps/v1:ReplicaSet"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
WORKLOAD_TYPES = (POD, POD_TEMPLATE, REPLICATION_CONTROLLER, DEPLOYMENT, REPLICA_SET, STATEFUL_SET,
                  DAEMON_SET, JOB, CRON_JOB)

NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART_V4 = "kubernetes:helm.sh/v4:Chart"
CLUSTER_POLICY = "kubernetes:nvidia.com/v1:ClusterPolicy"
NVIDIA_DRIVER = "kubernetes:nvidia.com/v1alpha1:NVIDIADriver"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"

# Where each pod-bearing kind keeps its pod template: (metadata keys, spec keys). PSA reads the same
# places (its PodSpecExtractor): the pod itself, or the template that the controller stamps pods from.
_TEMPLATE = (("spec", "template", "metadata"), ("spec", "template", "spec"))
POD_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Pod": (("metadata",), ("spec",)),
    "PodTemplate": (("template", "metadata"), ("template", "spec")),
    "ReplicationController": _TEMPLATE,
    "Deployment": _TEMPLATE,
    "ReplicaSet": _TEMPLATE,
    "StatefulSet": _TEMPLATE,
    "DaemonSet": _TEMPLATE,
    "Job": _TEMPLATE,
    "CronJob": (("spec", "jobTemplate", "spec", "template", "metadata"),
                ("spec", "jobTemplate", "spec", "template", "spec")),
}
# API groups that have served each kind (old beta groups included: another team's stack may still
# declare them, and their pod specs are the same shape).
_WORKLOAD_GROUPS = {
    "Pod": {"core"}, "PodTemplate": {"core"}, "ReplicationController": {"core"},
    "Deployment": {"apps", "extensions"}, "ReplicaSet": {"apps", "extensions"},
    "StatefulSet": {"apps"}, "DaemonSet": {"apps", "extensions"},
    "Job": {"batch"}, "CronJob": {"batch"},
}
# Kinds without a namespace, so a message names them without one.
CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "CustomResourceDefinition", "ClusterPolicy", "NVIDIADriver", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "IngressClass",
})


@dataclass(frozen=True, slots=True)
class TypeToken:
    """A parsed Pulumi Kubernetes type token, e.g. ``kubernetes:apps/v1:DeploymentPatch``."""

    package: str
    group: str
    version: str
    kind: str        # the Kubernetes kind, without the Patch suffix
    class_name: str  # the Pulumi class: the kind, or the kind + "Patch"
    is_patch: bool

    @property
    def is_workload(self) -> bool:
        return self.package == "kubernetes" and self.group in _WORKLOAD_GROUPS.get(self.kind, ())


@lru_cache(maxsize=4096)
def _parse_token(token: str) -> TypeToken | None:
    parts = token.split(":")
    if len(parts) != 3:
        return None
    package, module, class_name = parts
    group, _, version = module.partition("/")
    is_patch = class_name.endswith("Patch") and len(class_name) > len("Patch")
    kind = class_name[: -len("Patch")] if is_patch else class_name
    return TypeToken(package, group, version, kind, class_name, is_patch)


def parse_token(token: object) -> TypeToken | None:
    """The token's parts, or None for anything that is not a ``package:module:Class`` string."""
    return _parse_token(token) if isinstance(token, str) else None
