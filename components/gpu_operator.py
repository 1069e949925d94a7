"""The gpu-operator Helm release: its typed config, the chart values built from it, and the component.

One `helm.v3.Release` (not `helm.v4.Chart`): the chart upgrades its CRDs in a pre-upgrade hook, which
Release runs and Chart skips (pulumi-kubernetes#3284), and stale CRDs silently drop new ClusterPolicy fields.
"""
from __future__ import annotations

import base64
import json
import re
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import pulumi
import pulumi_kubernetes as k8s
import yaml
from pydantic import Field, field_validator, model_validator

from .base import (
    OWNED_ANNOTATIONS,
    ConfigModel,
    ConfigProblems,
    DnsLabel,
    K8sName,
    Labels,
    Path as KeyPath,
    RegistryHost,
    check_env_name,
    check_label_key,
    check_label_value,
    reserved_namespace_problem,
)
from .chart_values import (
    CdiValues,
    DaemonsetsValues,
    DcgmExporterValues,
    DevicePluginConfigValues,
    DevicePluginValues,
    DriverValues,
    EnvVar,
    GfdValues,
    GpuOperatorValues,
    MigManagerValues,
    MigValues,
    NfdWorkerValues,
    NodeFeatureDiscoveryValues,
    NvidiaDriverCrdValues,
    OperatorValues,
    ServiceMonitorValues,
    ToolkitValues,
    Toleration,
    UpgradePolicyValues,
    ValidatorValues,
)
from .cluster import ClusterConfig
from .driver import DriverConfig
from .gpu_nodes import GPU_TAINT_KEY, GpuNodeConfig
from .releases import CHART_NAME, CHART_REPOSITORY, ChartRelease, supported_releases
from .runtime_presets import runtime_settings
from .sharing import SharingConfig

# The chart's own default operator toleration; a list in values replaces the default, so we keep it.
CONTROL_PLANE_TOLERATION = Toleration(key="node-role.kubernetes.io/control-plane", operator="Equal", value="",
                                      effect="NoSchedule")
# prometheus-operator's Duration (monitoring.coreos.com CRDs), without its "0".
SCRAPE_INTERVAL_PATTERN = r"^(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?$"
# Helm refuses longer release names (its objects append suffixes to it within Kubernetes' 63-character names).
HELM_RELEASE_NAME_MAX = 53
GPU_TOLERATION = Toleration(key=GPU_TAINT_KEY, operator="Exists", effect="NoSchedule")


class ChartConfig(ConfigModel):
    """Which chart release to install, from where, and how long Helm may take.

    From NVIDIA's Helm repository by default; `repository` names a mirror (an HTTP(S) Helm repository or an
    `oci://` registry), `path` a chart archive or folder on disk: the way an air-gapped cluster installs it.
    """

    version: str = Field(description="One exact, v-prefixed chart release, e.g. v26.7.0.")
    repository: str | None = Field(default=None, max_length=2048, description=(
        f"A Helm repository URL (https://..., default {CHART_REPOSITORY}) or an OCI registry path "
        "(oci://registry.example/nvidia) that serves the gpu-operator chart. Not with `path`."))
    path: str | None = Field(default=None, max_length=4096, description=(
        "A local gpu-operator chart: a packaged archive (gpu-operator-v26.7.0.tgz) or an unpacked chart "
        "folder, relative to the project folder or absolute. Its Chart.yaml must name gpu-operator at "
        "`version`. Not with `repository`."))
    timeout_seconds: int = Field(default=900, ge=60, le=3600, description=(
        "Helm's wait for the release's own objects (the operator Deployment, CRD hook jobs); not the driver "
        "rollout."))
    force_update: bool = Field(default=False, description=(
        "Helm's --force on the next upgrade: every object is replaced by what the chart renders now, not patched. "
        "For one `pulumi up` after adopting a hand-made install (docs/runbook.md), whose objects keep fields "
        "that a patch never removes; then set it back to false."))

    @field_validator("version")
    @classmethod
    def _supported(cls, version: str) -> str:
        releases = supported_releases()
        if version not in releases:
            hint = (" (the chart is published with a 'v' prefix)" if f"v{version}" in releases else
                    " (a range is not a pin; write one exact release)" if any(c in version for c in "^~*<>= x")
                    else "")
            raise ValueError(f"{version!r} is not a supported chart release{hint}; supported: "
                             f"{', '.join(releases)}")
        return version

    @field_validator("repository")
    @classmethod
    def _repository_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        parsed = urlparse(url)
        if parsed.scheme not in ("https", "http", "oci") or not parsed.netloc:
            raise ValueError(f"{url!r} is not a chart repository URL: give https://host/path (a Helm repository) "
                             "or oci://registry/path (an OCI registry)")
        return url.rstrip("/")

    @model_validator(mode="after")
    def _one_source(self) -> "ChartConfig":
        """One chart source (path or repository), and an archive on disk that is the pinned release."""
        if self.path is not None and self.repository is not None:
            raise ConfigProblems([(("path",), "give the chart's `path` or its `repository`, not both")])
        if self.path is not None:
            problem = chart_archive_problem(Path(self.path), self.version)
            if problem:
                raise ConfigProblems([(("path",), problem)])
        return self

    @property
    def release(self) -> ChartRelease:
        return supported_releases()[self.version]

    def release_source(self) -> dict[str, Any]:
        """`chart` (and `repository_opts`) for helm.v3.Release: the local path, the OCI reference or the repo."""
        if self.path is not None:
            return {"chart": self.path}
        repository = self.repository or CHART_REPOSITORY
        if repository.startswith("oci://"):
            return {"chart": f"{repository}/{CHART_NAME}"}
        return {"chart": CHART_NAME, "repository_opts": k8s.helm.v3.RepositoryOptsArgs(repo=repository)}


def chart_archive_problem(path: Path, version: str) -> str | None:
    """Why the chart at `path` is not gpu-operator `version` (None when it is): read from its Chart.yaml."""
    where = path if path.is_absolute() else Path.cwd() / path
    if where.is_dir():
        chart_yaml = where / "Chart.yaml"
        text = chart_yaml.read_text() if chart_yaml.is_file() else None
    elif where.is_file():
        try:
            with tarfile.open(where) as archive:
                member = next((m for m in archive.getmembers()
                               if m.name.count("/") == 1 and m.name.endswith("/Chart.yaml")), None)
                handle = archive.extractfile(member) if member else None
                text = handle.read().decode() if handle else None
        except (tarfile.TarError, OSError) as error:
            return f"{str(path)!r} is not a chart archive ({error}); give a .tgz made by `helm package` or a folder"
    else:
        return (f"no chart at {str(path)!r} (looked in {where}); a relative path is read from the project folder, "
                "where Pulumi.yaml is")
    if text is None:
        return f"{str(path)!r} has no Chart.yaml at its top; give the gpu-operator chart archive or its folder"
    meta = yaml.safe_load(text) or {}
    if meta.get("name") != CHART_NAME:
        return f"{str(path)!r} holds the chart {meta.get('name')!r}, not {CHART_NAME}"
    found = str(meta.get("version", ""))
    if found.lstrip("v") != version.lstrip("v"):
        return (f"{str(path)!r} holds {CHART_NAME} {found or '(no version)'}, but chart.version is {version}: "
                "point `path` at that release's archive, or change `version` to match it")
    return None


def toleration_problems(tolerations: list[Toleration]) -> list[tuple[KeyPath, str]]:
    """What the API server would refuse in a toleration (core/v1 validation), per index."""
    problems: list[tuple[KeyPath, str]] = []
    for index, toleration in enumerate(tolerations):
        try:
            if toleration.key:
                check_label_key(toleration.key)
            elif toleration.operator != "Exists":
                raise ValueError("a toleration without a key tolerates every taint and needs operator: Exists")
            if toleration.operator == "Exists" and toleration.value:
                raise ValueError("operator: Exists matches any value; remove `value` (or use operator: Equal)")
            if toleration.value:
                check_label_value(toleration.value)
        except ValueError as error:
            problems.append(((index,), str(error)))
    return problems


def env_problems(env: list[EnvVar]) -> list[tuple[KeyPath, str]]:
    """Invalid or repeated environment variable names, per index (a repeated name: the last one wins silently)."""
    problems: list[tuple[KeyPath, str]] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(env):
        try:
            check_env_name(entry.name)
        except ValueError as error:
            problems.append(((index, "name"), str(error)))
        first = seen.setdefault(entry.name, index)
        if first != index:
            problems.append(((index, "name"), f"{entry.name} is already set by entry [{first}]; set it once"))
    return problems


class OperatorPlacement(ConfigModel):
    """Where the operator's own Deployment runs."""

    node_selector: Labels = Field(default={}, description=(
        "Extra node labels the operator pod requires (merged with the chart's kubernetes.io/os: linux)."))
    tolerations: list[Toleration] = Field(default=[], description=(
        "Extra tolerations; the taints of configured nodes its selector lands on are tolerated automatically."))

    @field_validator("tolerations")
    @classmethod
    def _valid_tolerations(cls, tolerations: list[Toleration]) -> list[Toleration]:
        problems = toleration_problems(tolerations)
        if problems:
            raise ConfigProblems(problems)
        return tolerations


class ToolkitConfig(ConfigModel):
    extra_env: list[EnvVar] = Field(default=[], description=(
        "Extra container-toolkit environment (values are strings); the runtime preset sets the socket."))

    @field_validator("extra_env")
    @classmethod
    def _valid_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        problems = env_problems(env)
        if problems:
            raise ConfigProblems(problems)
        return env


class DevicePluginConfig(ConfigModel):
    sharing: SharingConfig | None = Field(default=None, description=(
        "Time-slicing or MPS profiles (devicePlugin.config); none = whole GPUs."))
    extra_env: list[EnvVar] = []

    @field_validator("extra_env")
    @classmethod
    def _valid_env(cls, env: list[EnvVar]) -> list[EnvVar]:
        problems = env_problems(env)
        if problems:
            raise ConfigProblems(problems)
        return env


class ServiceMonitorConfig(ConfigModel):
    """The DCGM exporter's ServiceMonitor, which the operator creates (needs the prometheus-operator CRDs)."""

    enabled: bool
    interval: str = Field(default="15s", pattern=SCRAPE_INTERVAL_PATTERN, description=(
        "How often Prometheus scrapes the exporter: a prometheus-operator duration such as 15s, 1m or 1m30s."))

    @field_validator("interval")
    @classmethod
    def _some_interval(cls, value: str) -> str:
        if not value or not re.fullmatch(SCRAPE_INTERVAL_PATTERN, value) or not any(c in "123456789" for c in value):
            raise ValueError(f"{value!r} is not a scrape interval: whole numbers with y, w, d, h, m, s or ms, largest "
                             "unit first and above zero, such as 15s, 1m or 1m30s")
        return value
    honor_labels: bool = False
    additional_labels: Labels = Field(default={}, description=(
        "Labels your Prometheus selects ServiceMonitors by, e.g. release: kube-prometheus-stack."))


class DcgmExporterConfig(ConfigModel):
    enabled: bool = True
    service_monitor: ServiceMonitorConfig


class Switch(ConfigModel):
    enabled: bool


class MigConfig(ConfigModel):
    strategy: Literal["single", "mixed"] = Field(description=(
        "How MIG devices are advertised (single: nvidia.com/gpu; mixed: nvidia.com/mig-<profile>)."))


class RegistryConfig(ConfigModel):
    """Pull credentials for the NVIDIA images; the password is the secret config key `registryPassword`."""

    server: RegistryHost = "nvcr.io"
    username: str = Field(default="$oauthtoken", min_length=1)
    secret_name: K8sName = "gpu-operator-registry"


class GpuOperatorConfig(ConfigModel):
    """The GPU Operator and its operands, in the chart's own terms where they map one to one."""

    namespace: DnsLabel = Field(default="gpu-operator", description=(
        "The operator's namespace, created and labelled privileged by this program: not one that exists already."))
    release_name: DnsLabel = Field(default="gpu-operator", max_length=HELM_RELEASE_NAME_MAX, description=(
        f"The Helm release name (Helm allows at most {HELM_RELEASE_NAME_MAX} characters)."))

    @field_validator("namespace")
    @classmethod
    def _own_namespace(cls, namespace: str) -> str:
        problem = reserved_namespace_problem(namespace)
        if problem:
            raise ValueError(problem)
        return namespace
    chart: ChartConfig
    driver: DriverConfig
    operator: OperatorPlacement = OperatorPlacement()
    toolkit: ToolkitConfig = ToolkitConfig()
    device_plugin: DevicePluginConfig = DevicePluginConfig()
    dcgm_exporter: DcgmExporterConfig
    gfd: Switch = Switch(enabled=True)
    mig_manager: Switch = Field(default=Switch(enabled=False), description=(
        "The MIG manager (chart key migManager.enabled); it only lands on MIG-capable nodes."))
    mig: MigConfig | None = None
    registry: RegistryConfig | None = None


def node_matches(selector: dict[str, str], node: GpuNodeConfig) -> bool:
    labels = node.scheduling_labels()
    return all(labels.get(key) == value for key, value in selector.items())


def _operator_tolerations(op: GpuOperatorConfig, nodes: list[GpuNodeConfig]) -> list[Toleration] | None:
    """The chart default plus the taints of the configured nodes the operator's selector can land on.

    Without them an operator pinned to tainted GPU nodes would never schedule.
    """
    selector = op.operator.node_selector
    automatic: list[Toleration] = []
    if selector:
        for node in nodes:
            if not node_matches(selector, node):
                continue
            for taint in node.taints:
                if taint.effect == "PreferNoSchedule":
                    continue
                toleration = Toleration(key=taint.key, operator="Exists", effect=taint.effect)
                if toleration not in automatic and toleration not in op.operator.tolerations:
                    automatic.append(toleration)
    if not automatic and not op.operator.tolerations:
        return None
    return [CONTROL_PLANE_TOLERATION, *op.operator.tolerations, *automatic]


def _operand_tolerations(nodes: list[GpuNodeConfig]) -> list[Toleration] | None:
    """Operands tolerate nvidia.com/gpu:NoSchedule by default; other taint keys must be added (lists replace)."""
    extra: list[Toleration] = []
    for node in nodes:
        for taint in node.taints:
            toleration = Toleration(key=taint.key, operator="Exists", effect=taint.effect)
            if toleration != GPU_TOLERATION and taint.effect != "PreferNoSchedule" and toleration not in extra:
                extra.append(toleration)
    return [GPU_TOLERATION, *extra] if extra else None


def build_chart_values(op: GpuOperatorConfig, cluster: ClusterConfig, nodes: list[GpuNodeConfig]) -> GpuOperatorValues:
    """The release's values for a validated stack config (pure: no resources, no Pulumi calls)."""
    secrets = [op.registry.secret_name] if op.registry else None
    runtime = runtime_settings(cluster.container_runtime, nri_plugin=cluster.nri_plugin)
    operand_tolerations = _operand_tolerations(nodes)
    driver = op.driver
    upgrade_policy = (UpgradePolicyValues.model_validate(driver.upgrade_policy.chart_values())
                      if driver.upgrade_policy else None)
    if driver.mode == "host":
        driver_values = DriverValues(enabled=False)
    else:
        driver_values = DriverValues(
            enabled=True,
            version=driver.version if driver.mode == "operator" else None,
            use_precompiled=driver.use_precompiled or None,
            kernel_module_type=driver.kernel_module_type,
            repository=driver.repository,
            image_pull_secrets=secrets,
            nvidia_driver_crd=(NvidiaDriverCrdValues(enabled=True, deploy_default_cr=False)
                               if driver.mode == "perPool" else None),
            upgrade_policy=upgrade_policy,
        )
    sharing = op.device_plugin.sharing
    monitor = op.dcgm_exporter.service_monitor
    return GpuOperatorValues(
        operator=OperatorValues(
            node_selector=dict(op.operator.node_selector) or None,
            tolerations=_operator_tolerations(op, nodes),
            image_pull_secrets=secrets,
            upgrade_crd=True,  # the pre-upgrade hook keeps the CRDs in step with the chart
        ),
        validator=ValidatorValues(image_pull_secrets=secrets) if secrets else None,
        driver=driver_values,
        toolkit=ToolkitValues(enabled=True, env=[*runtime.toolkit_env, *op.toolkit.extra_env] or None,
                              image_pull_secrets=secrets),
        device_plugin=DevicePluginValues(
            enabled=True,
            env=list(op.device_plugin.extra_env) or None,
            config=DevicePluginConfigValues(**sharing.chart_values()) if sharing else None,
            image_pull_secrets=secrets,
        ),
        dcgm_exporter=DcgmExporterValues(
            enabled=op.dcgm_exporter.enabled,
            service_monitor=ServiceMonitorValues(
                enabled=monitor.enabled, interval=monitor.interval, honor_labels=monitor.honor_labels,
                additional_labels=dict(monitor.additional_labels) or None),
            image_pull_secrets=secrets,
        ),
        gfd=GfdValues(enabled=op.gfd.enabled, image_pull_secrets=secrets),
        mig_manager=MigManagerValues(enabled=op.mig_manager.enabled, image_pull_secrets=secrets),
        mig=MigValues(strategy=op.mig.strategy) if op.mig else None,
        cdi=CdiValues(enabled=True, nri_plugin_enabled=True if runtime.nri_plugin else None),
        daemonsets=DaemonsetsValues(tolerations=operand_tolerations) if operand_tolerations else None,
        node_feature_discovery=(NodeFeatureDiscoveryValues(worker=NfdWorkerValues(
            tolerations=[CONTROL_PLANE_TOLERATION, *operand_tolerations])) if operand_tolerations else None),
    )


def docker_config_json(server: str, username: str, password: str) -> str:
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {server: {"username": username, "password": password, "auth": auth}}})


class GpuOperator(pulumi.ComponentResource):
    """The gpu-operator Helm release (and its registry pull secret when credentials are configured)."""

    release_status: pulumi.Output[str]

    def __init__(self, name: str, config: GpuOperatorConfig, values: GpuOperatorValues, *,
                 namespace: pulumi.Input[str], registry_password: pulumi.Output[str] | None = None,
                 after: Sequence[pulumi.Resource] = (), opts: pulumi.ResourceOptions | None = None):
        """`after`: resources the release must wait for (a component's depends_on does not reach its children)."""
        super().__init__("gpu-platform:operator:GpuOperator", name, None, opts)
        depends_on: list[pulumi.Resource] = list(after)
        self.sharing_config: k8s.core.v1.ConfigMap | None = None
        sharing = config.device_plugin.sharing
        if sharing is not None:
            # Named after its content: a change is a replacement, created before the release moves to it and
            # deleted only after the release update succeeded (components/sharing.py says why not the chart).
            self.sharing_config = k8s.core.v1.ConfigMap(
                f"{name}-sharing",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=sharing.config_map_name(), namespace=namespace,
                    labels={"app.kubernetes.io/name": "gpu-operator", "app.kubernetes.io/component": "device-plugin",
                            "app.kubernetes.io/part-of": "gpu-platform", "app.kubernetes.io/managed-by": "pulumi"},
                    # If a release once rendered this ConfigMap (an adopted install, a chart that created it),
                    # Helm's next upgrade would delete it as no longer rendered; Helm skips objects that say keep.
                    annotations={"helm.sh/resource-policy": "keep", **OWNED_ANNOTATIONS}),
                data=sharing.config_data(),
                opts=pulumi.ResourceOptions(parent=self),
            )
            depends_on.append(self.sharing_config)
        if config.registry is not None and registry_password is not None:
            registry = config.registry
            self.pull_secret = k8s.core.v1.Secret(
                f"{name}-registry",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=registry.secret_name, namespace=namespace,
                                             annotations=OWNED_ANNOTATIONS),
                type="kubernetes.io/dockerconfigjson",
                string_data={".dockerconfigjson": pulumi.Output.secret(registry_password).apply(
                    lambda password: docker_config_json(registry.server, registry.username, password))},
                opts=pulumi.ResourceOptions(parent=self),
            )
            depends_on.append(self.pull_secret)
        self.release = k8s.helm.v3.Release(
            name,
            k8s.helm.v3.ReleaseArgs(
                name=config.release_name,
                version=config.chart.version,
                **config.chart.release_source(),
                namespace=namespace,
                create_namespace=False,  # the namespace is ours: PSA labels, protect
                values=values.to_helm_values(),
                # No automatic rollback: rolling back a failed upgrade would revert the driver version and
                # start a second node-by-node driver rollout; a failed release stays for a person to judge.
                atomic=False,
                # A failed upgrade removes the objects it created, so a retry starts clean.
                cleanup_on_fail=True,
                skip_crds=False,
                # NVIDIA's upgrade procedure: the CRD hook updates schemas the old ones would reject.
                disable_openapi_validation=True,
                timeout=config.chart.timeout_seconds,
                max_history=10,
                force_update=config.chart.force_update,
            ),
            # Protected like the namespaces: uninstalling the release removes the operator, its ClusterPolicy
            # and every operand, so a GPU node loses its driver. `pulumi destroy` stops at its preview; a
            # rename, which would be an uninstall and a new install, needs `pulumi state unprotect` first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on, protect=True),
        )
        self.release_status = self.release.status.apply(lambda status: status.status if status else "unknown")
        self.register_outputs({"release": self.release.name, "status": self.release_status})
