"""The policy pack: assembles the policies. Each lives in gpu_policies/<module>.py; see README.md."""
from pulumi_policy import EnforcementLevel, PolicyPack

from gpu_policies import (
    driver_documented,
    driver_pinning,
    gpu_quota,
    intake,
    pinned_images,
    pod_security,
    pod_security_exemptions,
    rbac_bindings,
    rbac_wildcards,
)

intake.install()  # input the SDK cannot read becomes a finding, not a failed RPC (gpu_policies/intake.py)

PolicyPack(
    name="gpu-platform-guardrails",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        driver_pinning.POLICY,
        driver_documented.POLICY,
        pod_security.POLICY,
        pod_security_exemptions.POLICY,  # reads pod_security's decision for the same resource: keep it next
        pinned_images.POLICY,
        gpu_quota.POLICY,
        rbac_wildcards.POLICY,
        rbac_bindings.POLICY,
    ],
)
