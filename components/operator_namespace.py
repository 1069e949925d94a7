"""The operator's namespace, labelled for Pod Security Admission `privileged`.

The operands (driver, toolkit, device plugin, DCGM, validators) run privileged with host namespaces and
hostPath; RKE2's CIS profile enforces `restricted` everywhere else, so this one namespace says `privileged`
for enforce, audit and warn, with the policy version pinned to the cluster's minor release (a new
Kubernetes release cannot change what the labels mean without a reviewed change here).
"""
from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from .base import OWNED_ANNOTATIONS

PSA_PREFIX = "pod-security.kubernetes.io"


def pod_security_labels(level: str, kubernetes_version: str) -> dict[str, str]:
    """enforce/audit/warn at `level`, each pinned to `v<major.minor>`."""
    labels: dict[str, str] = {}
    for mode in ("enforce", "audit", "warn"):
        labels[f"{PSA_PREFIX}/{mode}"] = level
        labels[f"{PSA_PREFIX}/{mode}-version"] = f"v{kubernetes_version}"
    return labels


def standard_labels(name: str, component: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "gpu-platform",
        "app.kubernetes.io/managed-by": "pulumi",
    }


class OperatorNamespace(pulumi.ComponentResource):
    """The gpu-operator namespace (protected: deleting it would remove the whole GPU stack)."""

    name: pulumi.Output[str]

    def __init__(self, name: str, namespace: str, *, kubernetes_version: str,
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:operator:OperatorNamespace", name, None, opts)
        self.namespace = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=namespace,
                labels={**pod_security_labels("privileged", kubernetes_version),
                        **standard_labels("gpu-operator", "operator")},
                annotations=OWNED_ANNOTATIONS,
            ),
            opts=pulumi.ResourceOptions(parent=self, protect=True),
        )
        self.name = self.namespace.metadata.name
        self.register_outputs({"name": self.name})
