"""A privileged GPU workload in the `ai-ml` tenant namespace: the policy pack must stop it at preview."""
import pulumi_kubernetes as k8s

k8s.apps.v1.Deployment(
    "trainer",
    metadata={"name": "trainer", "namespace": "ai-ml"},
    spec={
        "selector": {"matchLabels": {"app": "trainer"}},
        "template": {
            "metadata": {"labels": {"app": "trainer"}},
            "spec": {"containers": [{
                "name": "trainer",
                "image": "nvcr.io/nvidia/pytorch:25.10-py3",
                "securityContext": {"privileged": True},
                "resources": {"limits": {"nvidia.com/gpu": "1"}},
            }]},
        },
    },
)
