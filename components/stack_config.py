"""The stack config: one typed model tree, read once from `pulumi.Config`, validated before anything is declared.

Every key of the `gpu-platform` config namespace is a field of `StackConfig` (`gpu-platform:cluster`,
`gpu-platform:gpuOperator`, `gpu-platform:nodes`, ...). Validation runs in two steps, both before any
resource exists: the model (types, unknown keys, cross-field rules), then the chart values built from it
(keys the pinned chart release does not have). Every problem is reported at once, each with its key path,
the bad value and what is allowed, through `pulumi.RunError` (the CLI prints it without a traceback).
"""
from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import pulumi
from pydantic import BaseModel, Field, ValidationError, model_validator

from .admission_config import AdmissionConfig, admission_problems
from .base import ConfigModel, ConfigProblems, Path, ProblemList, format_path
from .chart_values import GpuOperatorValues
from .cluster import ClusterConfig
from .driver import release_problems
from .gpu_nodes import GpuNodeConfig
from .gpu_operator import GpuOperatorConfig, build_chart_values, node_matches
from .gpus import PRODUCTS
from .monitoring import MonitoringConfig, monitoring_problems
from .runtime_presets import refused_env
from .tenancy import TenancyConfig, tenancy_problems

NAMESPACE = "gpu-platform"
# Keys that must arrive as Pulumi secrets (`pulumi config set --secret`) and never enter the model.
SECRET_KEYS = ("registryPassword",)


class StackConfig(ConfigModel):
    """The whole stack config (the `gpu-platform:*` keys of Pulumi.<stack>.yaml)."""

    cluster: ClusterConfig
    gpu_operator: GpuOperatorConfig
    nodes: list[GpuNodeConfig] = Field(default=[], description="The GPU worker nodes.")
    tenancy: TenancyConfig | None = Field(default=None, description=(
        "Team namespaces, quotas, priority classes and RBAC (components/tenancy.py); none: no tenancy objects."))
    monitoring: MonitoringConfig | None = Field(default=None, description=(
        "GPU alert rules and the Grafana dashboard (components/monitoring.py); none: no monitoring objects."))
    admission: AdmissionConfig | None = Field(default=None, description=(
        "The pack's guardrails enforced by the API server as ValidatingAdmissionPolicies "
        "(components/admission.py); none: no admission policies."))

    @model_validator(mode="after")
    def _cross_field_rules(self) -> "StackConfig":
        problems = ProblemList()
        op = self.gpu_operator
        release = op.chart.release
        problems.extend(("gpuOperator", "driver"), release_problems(op.driver, release))
        self._check_runtime(problems)
        self._check_nodes(problems)
        self._check_pools(problems)
        problems.extend(("tenancy",), tenancy_problems(self))
        problems.extend(("admission",), admission_problems(self))
        if self.monitoring is not None:
            problems.extend((), monitoring_problems(self.monitoring, self.cluster, op))
        monitor = op.dcgm_exporter.service_monitor
        if monitor.enabled and not self.cluster.prometheus_operator_crds and release.service_monitor_needs_crds:
            problems.add(("gpuOperator", "dcgmExporter", "serviceMonitor", "enabled"),
                         f"with chart {release.version} a DCGM ServiceMonitor without the prometheus-operator CRDs "
                         "leaves the ClusterPolicy notReady; install the CRDs (e.g. kube-prometheus-stack) and set "
                         "cluster.prometheusOperatorCrds: true, or set serviceMonitor.enabled: false")
        problems.raise_if_any()
        return self

    def _check_runtime(self, problems: ProblemList) -> None:
        release = self.gpu_operator.chart.release
        if self.cluster.nri_plugin:
            if not release.has_nri_plugin:
                problems.add(("cluster", "nriPlugin"), f"the NRI plugin (cdi.nriPluginEnabled) needs chart v26.3.0 or "
                                                       f"newer; {release.version} is pinned")
            if self.cluster.container_runtime == "cri-o":
                problems.add(("cluster", "nriPlugin"), "the NRI plugin is a containerd feature; CRI-O is configured")
        for section in ("toolkit", "devicePlugin"):
            config = self.gpu_operator.toolkit if section == "toolkit" else self.gpu_operator.device_plugin
            for index, env in enumerate(config.extra_env):
                reason = refused_env(env.name, env.value)
                if reason:
                    problems.add(("gpuOperator", section, "extraEnv", index), f"{env.name}={env.value}: {reason}")

    def _check_nodes(self, problems: ProblemList) -> None:
        op = self.gpu_operator
        release = op.chart.release
        sharing = op.device_plugin.sharing
        seen: set[str] = set()
        for index, node in enumerate(self.nodes):
            path: Path = ("nodes", index)
            if node.name in seen:
                problems.add((*path, "name"), f"node {node.name!r} is listed twice")
            seen.add(node.name)
            product = PRODUCTS[node.gpu]
            if node.mig_config is not None:
                if not product.mig:
                    problems.add((*path, "migConfig"), f"{node.gpu} has no MIG (MIG is on A100/A30, Hopper and "
                                                       "Blackwell data-center GPUs); remove migConfig")
                elif not op.mig_manager.enabled:
                    problems.add((*path, "migConfig"), "a MIG profile needs the MIG manager: set "
                                                       "gpuOperator.migManager.enabled: true")
            if node.sharing is not None and (sharing is None or node.sharing not in sharing.profiles):
                known = ", ".join(sorted(sharing.profiles)) if sharing else "none are configured"
                problems.add((*path, "sharing"), f"{node.sharing!r} is not a sharing profile "
                                                 f"(gpuOperator.devicePlugin.sharing.profiles: {known})")
                continue
            if sharing is None:
                continue
            profile_name = node.sharing or sharing.default
            profile = sharing.profiles[profile_name]
            if profile.mps is None:
                continue
            where = (*path, "sharing") if node.sharing else ("gpuOperator", "devicePlugin", "sharing", "default")
            if not release.supports_mps:
                problems.add(where, f"MPS sharing needs chart v24.3.0 or newer; {release.version} is pinned")
            if node.mig_config is not None and product.mig:
                problems.add(where, f"node {node.name!r} gets MPS profile {profile_name!r} and a MIG profile; MPS "
                                    "cannot be used with MIG: give it a time-slicing or whole-GPU profile")
            if profile.mps.replicas > product.max_mps_clients:
                problems.add(where, f"MPS profile {profile_name!r} asks for {profile.mps.replicas} clients; "
                                    f"{node.gpu} (compute capability {'.'.join(map(str, product.compute_capability))}) "
                                    f"allows at most {product.max_mps_clients}")

    def _check_pools(self, problems: ProblemList) -> None:
        pools = self.gpu_operator.driver.pools or []
        if self.gpu_operator.driver.mode != "perPool":
            return
        for index, node in enumerate(self.nodes):
            labels = node.scheduling_labels()
            # Pools are pairwise disjoint (DriverConfig), so a node matches at most one.
            if not any(all(labels.get(k) == v for k, v in p.node_selector.items()) for p in pools):
                problems.add(("nodes", index), f"node {node.name!r} is selected by no driver pool, so it would get "
                                               "no driver; add a pool whose nodeSelector matches its labels")


# --- turning config into a validated plan, or one clear message -------------------------------------------------

class ConfigError(Exception):
    """Every problem of a stack config, formatted for a person."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  - {path}: {message}" if path else f"  - {message}" for path, message in problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        super().__init__(f"invalid stack config ({count}); nothing was declared:\n" + "\n".join(lines))


@dataclass(frozen=True)
class CompiledConfig:
    """A validated stack config and everything derived from it, ready for the components.

    `warnings`: what is allowed but risky, said at every preview and up (`pulumi.log.warn`)."""

    stack: StackConfig
    values: GpuOperatorValues
    warnings: tuple[str, ...] = ()


def config_warnings(stack: StackConfig) -> list[str]:
    """Settings that are valid but that a lab should know the cost of."""
    warnings: list[str] = []
    selector = stack.gpu_operator.operator.node_selector
    gpu_nodes = [node.name for node in stack.nodes if node_matches(selector, node)] if selector else []
    if gpu_nodes:
        warnings.append(
            f"{NAMESPACE}:gpuOperator.operator.nodeSelector pins the operator, and with it the chart's CRD-upgrade "
            f"and clean-up hook Jobs, to the GPU node(s) {', '.join(gpu_nodes)}. While they are down, or cordoned "
            "(each driver upgrade cordons them), a Helm upgrade or uninstall waits for those Jobs until "
            "chart.timeoutSeconds and fails (docs/runbook.md, \"A down GPU node\"). Without the pin the operator "
            "runs on a node that is not a tainted GPU worker.")
    return warnings


def compile_config(raw: dict[str, Any], *, secret_keys: Collection[str] = ()) -> CompiledConfig:
    """Validate the `gpu-platform:*` config (bare key -> parsed value) and build the chart values; pure."""
    problems: list[tuple[str, str]] = []
    model_input = {key: value for key, value in raw.items() if key not in SECRET_KEYS}
    for key in SECRET_KEYS:
        if key in raw and key not in secret_keys:
            problems.append((f"{NAMESPACE}:{key}", "must be a secret: set it with "
                                                   f"`pulumi config set --secret {NAMESPACE}:{key} <value>`"))
    try:
        stack = StackConfig.model_validate(model_input)
    except ValidationError as error:
        problems += _format_validation_error(error)
        raise ConfigError(problems) from None
    registry = stack.gpu_operator.registry
    if registry is not None and "registryPassword" not in raw:
        problems.append((f"{NAMESPACE}:registryPassword", "gpuOperator.registry is set, so the registry password is "
                                                          f"required: `pulumi config set --secret {NAMESPACE}:"
                                                          "registryPassword <token>`"))
    values = build_chart_values(stack.gpu_operator, stack.cluster, stack.nodes)
    release = stack.gpu_operator.chart.release
    for path, since in values.unavailable_in(release):
        problems.append((f"{NAMESPACE}:gpuOperator (chart value {'.'.join(path)})",
                         f"chart {release.version} has no {'.'.join(path)} (it arrived in {since}); pin {since} or "
                         "newer, or turn off the setting that needs it"))
    if problems:
        raise ConfigError(problems)
    return CompiledConfig(stack=stack, values=values, warnings=tuple(config_warnings(stack)))


def _format_validation_error(error: ValidationError) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
        context_error = (item.get("ctx") or {}).get("error")
        if isinstance(context_error, ConfigProblems):
            for sub_path, message in context_error.problems:
                out.append((_display_path((*loc, *sub_path)), message))
            continue
        out.append((_display_path(loc), _explain(item, loc)))
    return out


def _is_union_tag(part: Any) -> bool:
    # pydantic names union members in error locations (e.g. "int", "str", "function-after[...]").
    return isinstance(part, str) and (part in {"int", "str", "bool", "float"} or "[" in part)


def _display_path(loc: Path) -> str:
    if not loc:
        return f"{NAMESPACE}:*"
    head, *rest = loc
    return f"{NAMESPACE}:{head}" + (("." if rest and not isinstance(rest[0], int) else "") + format_path(tuple(rest))
                                    if rest else "")


def _explain(item: dict[str, Any], loc: Path) -> str:
    kind = item["type"]
    value = item.get("input")
    if kind == "extra_forbidden":
        return _unknown_key_message(loc, value)
    if kind == "missing":
        return "required key is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind == "string_type" and "env" in str(loc).lower():
        message += "; env values must be strings (quote them: \"true\"), the ClusterPolicy rejects anything else"
    shown = _show(value)
    return f"{message} (got {shown})" if shown else message


def _show(value: Any) -> str:
    if isinstance(value, (str, int, float, bool)) or value is None:
        text = json.dumps(value)
        return text if len(text) <= 80 else text[:77] + "..."
    return ""


# Mistakes the lab's design notes made, and where the setting really lives.
_MPS_HINT = ("there is no `mps` key in any gpu-operator chart release (Helm would silently ignore `mps.enabled`); "
             "MPS is a device-plugin sharing profile: gpu-platform:gpuOperator.devicePlugin.sharing.profiles.<name>.mps"
             ".replicas, picked by `default` or by nodes[].sharing")
_MIG_ENABLED_HINT = ("the chart has no `mig.enabled`: the MIG manager is switched by gpuOperator.migManager.enabled "
                     "(chart key migManager.enabled); `mig` only takes `strategy`")


def _unknown_key_message(loc: Path, value: Any) -> str:
    key = str(loc[-1])
    if key == "mps" and "profiles" not in loc:
        return _MPS_HINT
    if loc[-2:] == ("mig", "enabled"):
        return _MIG_ENABLED_HINT
    allowed = _allowed_keys(loc[:-1])
    if len(loc) == 1:
        keys = ", ".join(f"{NAMESPACE}:{k}" for k in [*allowed, *SECRET_KEYS])
        return f"unknown config key; this program reads {keys}"
    message = "unknown key"
    if loc[0] == "gpuOperator":  # chart settings: the mistake Helm would swallow
        message += " (Helm would silently ignore it; this program does not)"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    if allowed:
        message += f"{' Allowed' if close else '; allowed'} here: {', '.join(allowed)}"
    return message


def _allowed_keys(loc: Path) -> list[str]:
    """The keys the model accepts at `loc` (walking field annotations through lists, dicts and optionals)."""
    annotation: Any = StackConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            field = next((f for n, f in annotation.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return []
            annotation = field.annotation
        else:
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or n for n, f in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


# --- reading pulumi.Config ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class LoadedConfig:
    compiled: CompiledConfig
    registry_password: pulumi.Output[str] | None


def read_namespace() -> tuple[dict[str, Any], set[str]]:
    """All `gpu-platform:*` config entries (bare key -> value, objects parsed) and which keys are secrets."""
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    entries = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_names = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    raw: dict[str, Any] = {}
    for full_key, value in entries.items():
        if not full_key.startswith(prefix):
            continue
        raw[full_key[len(prefix):]] = _parse(value)
    secrets = {key for key in raw if f"{prefix}{key}" in secret_names}
    return raw, secrets


def _parse(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def load_stack_config() -> LoadedConfig:
    """The one place that reads `pulumi.Config`; raises `pulumi.RunError` listing every problem."""
    raw, secrets = read_namespace()
    try:
        compiled = compile_config(raw, secret_keys=secrets)
    except ConfigError as error:
        raise pulumi.RunError(str(error)) from None
    for warning in compiled.warnings:
        pulumi.log.warn(warning)
    password = (pulumi.Config(NAMESPACE).require_secret("registryPassword")
                if compiled.stack.gpu_operator.registry is not None else None)
    return LoadedConfig(compiled=compiled, registry_password=password)


def stack_file_schema() -> dict[str, Any]:
    """JSON Schema for Pulumi.<stack>.yaml: the `gpu-platform:*` keys typed, other namespaces free."""
    model_schema = StackConfig.model_json_schema(by_alias=True)
    definitions = model_schema.pop("$defs", {})
    properties = {f"{NAMESPACE}:{key}": value for key, value in model_schema["properties"].items()}
    secure = {"type": "object", "properties": {"secure": {"type": "string"}}, "required": ["secure"],
              "additionalProperties": False}
    for key in SECRET_KEYS:
        properties[f"{NAMESPACE}:{key}"] = {**secure, "description": "A Pulumi secret (pulumi config set --secret)."}
    known = "|".join(list(model_schema["properties"]) + list(SECRET_KEYS))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Pulumi stack file of the gpu-platform project",
        "description": "Generated from components/stack_config.py by `python -m tools.gen_schema`; do not edit.",
        "type": "object",
        "properties": {
            "config": {
                "type": "object",
                "properties": properties,
                "required": [f"{NAMESPACE}:{key}" for key in model_schema.get("required", [])],
                "patternProperties": {f"^{NAMESPACE}:(?!({known})$)": False},
            },
        },
        "$defs": definitions,
    }
