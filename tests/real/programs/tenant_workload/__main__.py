"""A researcher's GPU workload in a tenant namespace, for the real tier's policy tests.

Config `tenant-workload:privileged` (default true): a privileged container, which the pack's Pod Security
policy stops at preview. With false the Deployment is restricted-compliant and pinned, and only the stack
policy gpu-quota-required objects, because this stack declares no GPU quota for the namespace.
"""
import pulumi
import pulumi_kubernetes as k8s

config = pulumi.Config()
privileged = config.get_bool("privileged")
namespace = config.get("namespace") or "ai-ml"
security = ({"privileged": True} if privileged is not False else
            {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True,
             "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}})

k8s.apps.v1.Deployment(
    "trainer",
    metadata={"name": "trainer", "namespace": namespace},
    spec={
        "selector": {"matchLabels": {"app": "trainer"}},
        "template": {
            "metadata": {"labels": {"app": "trainer"}},
            "spec": {"containers": [{
                "name": "trainer",
                "image": "nvcr.io/nvidia/pytorch:25.10-py3",
                "securityContext": security,
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }]},
        },
    },
)
