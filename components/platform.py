"""The whole GPU platform: one component that wires the others from a validated config."""
from __future__ import annotations

import pulumi

from .admission import AdmissionPolicies
from .admission_config import admission_params
from .driver import DriverPools
from .gpu_nodes import GpuNodes
from .gpu_operator import GpuOperator
from .monitoring import Monitoring
from .operator_namespace import OperatorNamespace
from .stack_config import CompiledConfig
from .tenancy import Tenancy, gpu_resources


class GpuPlatform(pulumi.ComponentResource):
    """Operator namespace, GPU node labels and taints, the admission policies, the gpu-operator release and
    per-pool drivers."""

    namespace: pulumi.Output[str]

    def __init__(self, name: str, config: CompiledConfig, *, registry_password: pulumi.Output[str] | None = None,
                 opts: pulumi.ResourceOptions | None = None):
        if config.secrets:
            # Config values set with --secret stay secret in every input that holds them (children inherit this).
            opts = pulumi.ResourceOptions.merge(
                opts, pulumi.ResourceOptions(transformations=[config.secrets.transformation()]))
        super().__init__("gpu-platform:index:GpuPlatform", name, None, opts)
        stack, values = config.stack, config.values
        op = stack.gpu_operator
        child = pulumi.ResourceOptions(parent=self)
        self.operator_namespace = OperatorNamespace(
            f"{name}-namespace", op.namespace, kubernetes_version=stack.cluster.kubernetes_version, opts=child)
        self.nodes = GpuNodes(
            f"{name}-nodes", stack.nodes,
            expected_host_driver=op.driver.host_version if op.driver.mode == "host" else None,
            redact=config.secrets.redact, opts=child)
        # The driver pin at admission first: the release (and so Helm's write of the ClusterPolicy) waits for
        # the policy that allows its driver version (docs/admission.md, "A driver upgrade").
        admission_first: list[pulumi.Resource] = []
        if stack.admission is not None and stack.admission.enabled:
            self.admission = AdmissionPolicies(f"{name}-admission", admission_params(stack), opts=child)
            admission_first = self.admission.driver_pin
        self.operator = GpuOperator(
            f"{name}-operator", op, values, namespace=self.operator_namespace.name,
            registry_password=registry_password,
            # Node labels first: the operator's selector and the sharing labels must be there when it starts.
            after=[*self.nodes.patches, *admission_first], opts=child)
        if op.driver.mode == "perPool":
            self.driver_pools = DriverPools(
                f"{name}-drivers", op.driver.pools or [], release=op.chart.release, repository=op.driver.repository,
                image_pull_secrets=[op.registry.secret_name] if op.registry else None,
                after=[self.operator.release], opts=child)
        if stack.tenancy is not None:
            self.tenancy = Tenancy(
                f"{name}-tenancy", stack.tenancy, kubernetes_version=stack.cluster.kubernetes_version,
                operator_namespace=self.operator_namespace.name,  # an Output: bindings wait for the namespace
                gpu_resources=gpu_resources(op.device_plugin.sharing), opts=child)
        if stack.monitoring is not None:
            self.monitoring = Monitoring(f"{name}-monitoring", stack.monitoring, nodes=stack.nodes, opts=child)
        self.namespace = self.operator_namespace.name
        self.register_outputs({"namespace": self.namespace, "releaseStatus": self.operator.release_status})
