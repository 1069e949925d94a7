"""GPU platform: the NVIDIA GPU Operator on a self-hosted cluster, declared from one typed stack config."""
import pulumi

from components.platform import GpuPlatform
from components.stack_config import load_stack_config

# Validates the whole config and builds the chart values first: a bad config raises pulumi.RunError
# listing every problem, before any resource is declared.
config = load_stack_config()
stack = config.compiled.stack
platform = GpuPlatform("gpu-platform", config.compiled, registry_password=config.registry_password)

driver = stack.gpu_operator.driver
sharing = stack.gpu_operator.device_plugin.sharing
keep_secret = config.compiled.secrets.keep_secret  # a config value set with --secret stays secret here too
pulumi.export("operatorNamespace", platform.namespace)
pulumi.export("chartVersion", keep_secret(stack.gpu_operator.chart.version))
pulumi.export("driver", keep_secret({"mode": driver.mode, "version": driver.version, "hostVersion": driver.host_version,
                                     "pools": {p.name: p.version for p in driver.pools or []}}))
pulumi.export("sharing", keep_secret({"default": sharing.default, "configMap": sharing.config_map_name()}
                                     if sharing else None))
pulumi.export("gpuNodes", [node.name for node in stack.nodes])
pulumi.export("releaseStatus", platform.operator.release_status)
