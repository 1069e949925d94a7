"""The stack config: one typed model tree, read once from `pulumi.Config`, validated before anything is declared.

Every key of the `gpu-platform` config namespace is a field of `StackConfig` (`gpu-platform:cluster`,
`gpu-platform:gpuOperator`, `gpu-platform:nodes`, ...). Validation runs in two steps, both before any
resource exists: the model (types, unknown keys, cross-field rules), then the chart values built from it
(keys the pinned chart release does not have). Every problem is reported at once, each with its key path,
the bad value and what is allowed, through `pulumi.RunError` (the CLI prints it without a traceback). A section
with a problem keeps only the rules that read it from running, and the message names those rules.

Types are strict (components/base.py says why), keys camelCase only. A value set with `--secret --path` is
never shown and stays secret in resource inputs (components/config_secrets.py).
"""
from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path as FilePath
from dataclasses import dataclass
from typing import Any

import pulumi
import yaml
from pydantic.alias_generators import to_camel
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, model_validator

from .admission_config import AdmissionConfig, admission_problems
from .base import ConfigModel, ConfigProblems, Path, ProblemList, format_path
from .chart_values import GpuOperatorValues
from .cluster import ClusterConfig
from .config_secrets import SecretValues, guessed_keys, secret_names, secret_values, secure_paths
from .driver import release_problems, undocumented_versions
from .gpu_nodes import GpuNodeConfig
from .gpu_operator import GpuOperatorConfig, build_chart_values, node_matches
from .gpus import PRODUCTS
from .monitoring import MonitoringConfig, monitoring_problems
from .runtime_presets import refused_env
from .tenancy import TenancyConfig, monitoring_namespace_problems, tenancy_problems

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
    def _cross_section_rules(self) -> "StackConfig":
        problems = ProblemList()
        for check in CROSS_SECTION_CHECKS:
            check.run(self, problems)
        problems.raise_if_any()
        return self


# --- rules between sections ---------------------------------------------------------------------------------------
# Each rule names the sections it reads. When a section is invalid, the rules that read only valid sections still
# run, and the others are named as not checked (compile_config), so one run reports every problem it can.

@dataclass(frozen=True)
class CrossSectionCheck:
    """One rule between sections; `sections`: the top-level keys it reads."""

    what: str
    sections: tuple[str, ...]
    run: Callable[[Any, ProblemList], None]


def _check_release_drivers(stack: Any, problems: ProblemList) -> None:
    op = stack.gpu_operator
    problems.extend(("gpuOperator", "driver"), release_problems(op.driver, op.chart.release))


def _check_tenancy(stack: Any, problems: ProblemList) -> None:
    problems.extend(("tenancy",), tenancy_problems(stack.tenancy, operator_namespace=stack.gpu_operator.namespace))


def _check_admission(stack: Any, problems: ProblemList) -> None:
    problems.extend(("admission",), admission_problems(stack))


def _check_tenants_against_monitoring(stack: Any, problems: ProblemList) -> None:
    if stack.monitoring is not None:
        problems.extend(("tenancy",), monitoring_namespace_problems(stack.tenancy, stack.monitoring.namespace))


def _check_monitoring(stack: Any, problems: ProblemList) -> None:
    if stack.monitoring is not None:
        problems.extend((), monitoring_problems(stack.monitoring, stack.cluster, stack.gpu_operator))


def _check_service_monitor(stack: Any, problems: ProblemList) -> None:
    release = stack.gpu_operator.chart.release
    monitor = stack.gpu_operator.dcgm_exporter.service_monitor
    if monitor.enabled and not stack.cluster.prometheus_operator_crds and release.service_monitor_needs_crds:
        problems.add(("gpuOperator", "dcgmExporter", "serviceMonitor", "enabled"),
                     f"with chart {release.version} a DCGM ServiceMonitor without the prometheus-operator CRDs "
                     "leaves the ClusterPolicy notReady; install the CRDs (e.g. kube-prometheus-stack) and set "
                     "cluster.prometheusOperatorCrds: true, or set serviceMonitor.enabled: false")


def _check_runtime(stack: Any, problems: ProblemList) -> None:
    release = stack.gpu_operator.chart.release
    if stack.cluster.nri_plugin:
        if not release.has_nri_plugin:
            problems.add(("cluster", "nriPlugin"), f"the NRI plugin (cdi.nriPluginEnabled) needs chart v26.3.0 or "
                                                   f"newer; {release.version} is pinned")
        if stack.cluster.container_runtime == "cri-o":
            problems.add(("cluster", "nriPlugin"), "the NRI plugin is a containerd feature; CRI-O is configured")
    for section in ("toolkit", "devicePlugin"):
        config = stack.gpu_operator.toolkit if section == "toolkit" else stack.gpu_operator.device_plugin
        for index, env in enumerate(config.extra_env):
            reason = refused_env(env.name, env.value)
            if reason:
                problems.add(("gpuOperator", section, "extraEnv", index), f"{env.name}={env.value}: {reason}")


def _check_nodes(stack: Any, problems: ProblemList) -> None:
    op = stack.gpu_operator
    release = op.chart.release
    sharing = op.device_plugin.sharing
    seen: set[str] = set()
    for index, node in enumerate(stack.nodes):
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


def _check_pools(stack: Any, problems: ProblemList) -> None:
    pools = stack.gpu_operator.driver.pools or []
    if stack.gpu_operator.driver.mode != "perPool":
        return
    for index, node in enumerate(stack.nodes):
        labels = node.scheduling_labels()
        # Pools are pairwise disjoint (DriverConfig), so a node matches at most one.
        if not any(all(labels.get(k) == v for k, v in p.node_selector.items()) for p in pools):
            problems.add(("nodes", index), f"node {node.name!r} is selected by no driver pool, so it would get "
                                           "no driver; add a pool whose nodeSelector matches its labels")


CROSS_SECTION_CHECKS: tuple[CrossSectionCheck, ...] = (
    CrossSectionCheck("the driver versions NVIDIA documents for the pinned chart release", ("gpuOperator",),
                      _check_release_drivers),
    CrossSectionCheck("the container-runtime settings against the chart release", ("cluster", "gpuOperator"),
                      _check_runtime),
    CrossSectionCheck("the nodes' sharing and MIG profiles", ("gpuOperator", "nodes"), _check_nodes),
    CrossSectionCheck("the nodes against the driver pools", ("gpuOperator", "nodes"), _check_pools),
    CrossSectionCheck("the tenants against the operator namespace", ("tenancy", "gpuOperator"), _check_tenancy),
    CrossSectionCheck("the admission policies against the cluster, the operator and the tenants",
                      ("admission", "cluster", "gpuOperator", "tenancy"), _check_admission),
    CrossSectionCheck("the tenants against the monitoring namespace", ("tenancy", "monitoring"),
                      _check_tenants_against_monitoring),
    CrossSectionCheck("monitoring against the cluster and the DCGM exporter", ("monitoring", "cluster", "gpuOperator"),
                      _check_monitoring),
    CrossSectionCheck("the DCGM ServiceMonitor against the prometheus-operator CRDs", ("cluster", "gpuOperator"),
                      _check_service_monitor),
)


# --- turning config into a validated plan, or one clear message -------------------------------------------------

class ConfigError(Exception):
    """Every problem of a stack config, formatted for a person, and the checks that could not run yet.

    `not_checked`: rules that read a part of the config that is invalid; they run once it is fixed, and the
    message names them so that a clean second run is not a surprise."""

    def __init__(self, problems: list[tuple[str, str]], not_checked: Sequence[str] = ()):
        self.problems = problems
        self.not_checked = list(not_checked)
        lines = [f"  - {path}: {message}" if path else f"  - {message}" for path, message in problems]
        count = f"{len(problems)} problem{'s' if len(problems) != 1 else ''}"
        text = f"invalid stack config ({count}); nothing was declared:\n" + "\n".join(lines)
        if self.not_checked:
            text += ("\nnot checked yet, because they read a part with a problem above (fix it and run again):\n" +
                     "\n".join(f"  - {item}" for item in self.not_checked))
        super().__init__(text)


@dataclass(frozen=True)
class CompiledConfig:
    """A validated stack config and everything derived from it, ready for the components.

    `warnings`: what is allowed but risky, said at every preview and up (`pulumi.log.warn`)."""

    stack: StackConfig
    values: GpuOperatorValues
    warnings: tuple[str, ...] = ()
    secrets: SecretValues = SecretValues()


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
    driver = stack.gpu_operator.driver
    if driver.allow_undocumented_version:
        for path, problem in undocumented_versions(driver, stack.gpu_operator.chart.release):
            warnings.append(f"{NAMESPACE}:gpuOperator.driver.{format_path(path)} is allowed by "
                            f"allowUndocumentedVersion, but: {problem}")
    return warnings


def compile_config(raw: dict[str, Any], *, secret_keys: Collection[str] = (), other_keys: Collection[str] = (),
                   secure: Mapping[str, Sequence[Path]] | None = None) -> CompiledConfig:
    """Validate the `gpu-platform:*` config (bare key -> parsed value) and build the chart values; pure.

    `secret_keys`: the keys Pulumi marks secret; `secure`: per key, the paths the stack file encrypts (see
    components/config_secrets.py). No message or warning shows a secret value."""
    sections = [key for key in secret_keys if key not in SECRET_KEYS and key in raw]
    secrets = secret_values(raw, sections, secure)
    try:
        compiled = _compile(raw, secret_keys=secret_keys, other_keys=other_keys, secrets=secrets,
                            hidden=frozenset(sections), guessed=guessed_keys(sections, secure))
    except ConfigError as error:
        # Key paths are never secret (a stack file encrypts values, not keys): only the messages are redacted.
        raise ConfigError([(path, secrets.redact(message)) for path, message in error.problems],
                          error.not_checked) from None
    return dataclasses.replace(compiled, warnings=tuple(secrets.redact(w) for w in compiled.warnings),
                               secrets=secrets)


def _compile(raw: dict[str, Any], *, secret_keys: Collection[str], other_keys: Collection[str],
             secrets: SecretValues, hidden: frozenset[str], guessed: Sequence[str]) -> CompiledConfig:
    """Validate the `gpu-platform:*` config (bare key -> parsed value) and build the chart values; pure.

    Every problem of every section is reported in one run: when a section is invalid, the other sections are
    still validated on their own and every rule that reads only valid sections still runs; the rules that could
    not run are named (ConfigError.not_checked). `other_keys`: the full keys of other config namespaces, to name
    one that is a misspelling of ours (`gpu-platfrom:cluster`), which would otherwise only be "missing"."""
    problems: list[tuple[str, str]] = _misspelt_namespace(other_keys)
    problems += [(_display_path(path), message) for path, message in secret_names(raw, secrets, guessed)]
    model_input = {key: value for key, value in raw.items() if key not in SECRET_KEYS}
    for key in SECRET_KEYS:
        if key in raw and key not in secret_keys:
            problems.append((f"{NAMESPACE}:{key}", "must be a secret: set it with "
                                                   f"`pulumi config set --secret {NAMESPACE}:{key} <value>`"))
    try:
        stack: Any = StackConfig.model_validate(model_input, by_name=False)
    except ValidationError as error:
        problems += _format_validation_error(error, hidden)
        not_checked = _skipped_model_rules(error)
        stack, invalid = _valid_sections(model_input)
        rules = ProblemList()
        if not problems_between_sections(error):  # else those rules ran, and their problems are listed
            for check in CROSS_SECTION_CHECKS:
                blocked = [key for key in check.sections if key in invalid]
                if blocked:
                    not_checked.append(f"{check.what} (reads {', '.join(NAMESPACE + ':' + k for k in blocked)})")
                else:
                    check.run(stack, rules)
            problems += [(_display_path(path), message) for path, message in rules.items]
        if problems_between_sections(error) or rules.items:
            not_checked.append(_CHART_VALUES_AFTER_RULES)
        else:
            problems += _release_problems(stack, raw, invalid, not_checked)[0]
        raise ConfigError(problems, not_checked) from None
    release_problems, values = _release_problems(stack, raw, set(), [])
    problems += release_problems
    if problems or values is None:
        raise ConfigError(problems)
    return CompiledConfig(stack=stack, values=values, warnings=tuple(config_warnings(stack)))


def _misspelt_namespace(other_keys: Collection[str]) -> list[tuple[str, str]]:
    problems = []
    for full_key in other_keys:
        namespace, _, key = full_key.partition(":")
        if namespace != NAMESPACE and difflib.SequenceMatcher(None, namespace, NAMESPACE).ratio() >= 0.8:
            problems.append((full_key, f"the namespace {namespace!r} is not this program's: did you mean "
                                       f"{NAMESPACE}:{key}? (Pulumi passes every namespace's keys, so a misspelt one "
                                       "is never read)"))
    return problems


_CHART_VALUES_AFTER_RULES = "the chart values against the pinned chart release (after the rules between sections pass)"


def problems_between_sections(error: ValidationError) -> bool:
    """Whether StackConfig's own rules (between sections) ran and failed: all sections were valid on their own."""
    return any(item["loc"] == () for item in error.errors())


def _release_problems(stack: Any, raw: dict[str, Any], invalid: set[str],
                      not_checked: list[str]) -> tuple[list[tuple[str, str]], GpuOperatorValues | None]:
    """What needs the operator, cluster and nodes sections: the registry password, the chart values' keys; and the
    chart values when they could be built."""
    problems: list[tuple[str, str]] = []
    blocked = [key for key in ("cluster", "gpuOperator", "nodes") if key in invalid]
    if blocked:
        not_checked.append("the chart values against the pinned chart release (reads "
                           f"{', '.join(NAMESPACE + ':' + k for k in blocked)})")
        return problems, None
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
    return problems, values


_SECTION_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _valid_sections(model_input: dict[str, Any]) -> tuple[types.SimpleNamespace, set[str]]:
    """Each top-level section validated on its own: the valid ones (by field name) and the invalid keys."""
    valid: dict[str, Any] = {}
    invalid: set[str] = set()
    for name, field in StackConfig.model_fields.items():
        key = field.alias or name
        if key not in model_input:
            if field.is_required():
                invalid.add(key)
            else:
                valid[name] = field.get_default(call_default_factory=True)
            continue
        adapter = _SECTION_ADAPTERS.setdefault(name, TypeAdapter(field.annotation))
        try:
            valid[name] = adapter.validate_python(model_input[key], by_name=False)
        except ValidationError:
            invalid.add(key)
    return types.SimpleNamespace(**valid), invalid


def _skipped_model_rules(error: ValidationError) -> list[str]:
    """The rules of models that did not run because a field inside them is invalid (pydantic runs a model's
    after-validators only on valid fields); StackConfig's own are the cross-section checks, named separately."""
    skipped: dict[str, None] = {}
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
        for length in range(1, len(loc)):
            model = _model_at(loc[:length])
            if model is None:
                continue
            for decorator in model.__pydantic_decorators__.model_validators.values():
                if decorator.info.mode == "after":
                    doc = (decorator.func.__doc__ or "its cross-field rules").strip().splitlines()[0].rstrip(".")
                    doc = doc[:1].lower() + doc[1:]
                    skipped[f"{_display_path(loc[:length])}: {doc}"] = None
    return list(skipped)


def _format_validation_error(error: ValidationError, hidden: Collection[str] = ()) -> list[tuple[str, str]]:
    """One (key path, message) per problem; the bad value is not shown under a secret key (`hidden`)."""
    out: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        loc = tuple(part for part in item["loc"] if not _is_union_tag(part))
        context_error = (item.get("ctx") or {}).get("error")
        if isinstance(context_error, ConfigProblems):
            for sub_path, message in context_error.problems:
                out.append((_display_path((*loc, *sub_path)), message))
            continue
        out.append((_display_path(loc), _explain(item, loc, show_value=not loc or loc[0] not in hidden)))
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


def _explain(item: dict[str, Any], loc: Path, *, show_value: bool = True) -> str:
    kind = item["type"]
    value = item.get("input")
    if kind == "extra_forbidden":
        return _unknown_key_message(loc, value)
    if kind == "missing":
        if len(loc) == 1:
            return (f"required key is missing: set {NAMESPACE}:{loc[0]} in Pulumi.<stack>.yaml (the stack file lists "
                    f"it under `config:` with the `{NAMESPACE}:` namespace)")
        return "required key is missing"
    message = str(item["msg"]).removeprefix("Value error, ")
    if kind in ("model_type", "model_attributes_type"):
        message = f"should be a mapping (key: value) with the keys {', '.join(_allowed_keys(loc))}"
    elif kind == "dict_type":
        message = "should be a mapping (key: value)"
    elif kind == "list_type":
        message = "should be a list (- item)"
    if kind == "string_type" and "env" in str(loc).lower():
        message += "; env values must be strings (quote them: \"true\"), the ClusterPolicy rejects anything else"
    elif kind == "string_type" and isinstance(value, bool):
        message += ("; true and false are booleans in YAML and in `pulumi config set --path`: quote it in the stack "
                    "file (\"true\") or add `--type string`")
    elif kind == "string_type" and isinstance(value, (int, float)):
        message += (f"; YAML read {value!r} as a number (a version such as 580.173.02 only survives as text, and "
                    "580.170 would become 580.17): quote it")
    elif kind == "int_type" and isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        message += ("; write the number without quotes (`pulumi config set --path` stores an integer as a number, "
                    "`--type string` makes it text)")
    elif kind == "float_type" and isinstance(value, str):
        message += ("; write the number without quotes (`pulumi config set --path` stores only integers as numbers: "
                    "add `--type float` for a decimal)")
    elif kind == "bool_type":
        message += ("; write true or false without quotes (`pulumi config set --path` stores those two as booleans; "
                    "yes, no, 1 and 0 are not booleans here)")
    shown = _show(value) if show_value else ""
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
    camel = to_camel(key)
    if len(loc) == 1:
        keys = [*allowed, *SECRET_KEYS]
        close = [camel] if camel != key and camel in keys else difflib.get_close_matches(key, keys, n=1)
        hint = f"did you mean {NAMESPACE}:{close[0]}? " if close else ""
        return f"unknown config key; {hint}this program reads {', '.join(f'{NAMESPACE}:{k}' for k in keys)}"
    message = "unknown key"
    if loc[0] == "gpuOperator" and "_" not in key:  # chart settings: the mistake Helm would swallow
        message += " (Helm would silently ignore it; this program does not)"
    if camel != key and camel in allowed:
        return f"{message}; keys are camelCase: write {camel!r}"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        message += f"; did you mean {close[0]!r}?"
    if allowed:
        message += f"{' Allowed' if close else '; allowed'} here: {', '.join(allowed)}"
    return message


def _allowed_keys(loc: Path) -> list[str]:
    """The keys the model accepts at `loc`."""
    model = _model_at(loc)
    return [f.alias or n for n, f in model.model_fields.items()] if model is not None else []


def _model_at(loc: Path) -> type[BaseModel] | None:
    """The model at `loc` (walking field annotations through lists, dicts and optionals), or None."""
    annotation: Any = StackConfig
    for part in loc:
        annotation = _unwrap(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
            field = next((f for n, f in annotation.model_fields.items() if (f.alias or n) == part), None)
            if field is None:
                return None
            annotation = field.annotation
        else:
            args = typing.get_args(annotation)
            annotation = args[-1] if args else None
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


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


def read_namespace() -> tuple[dict[str, Any], set[str], list[str]]:
    """All `gpu-platform:*` config entries (bare key -> value, objects parsed), which keys are secrets, and the
    full keys of the other namespaces."""
    from pulumi.runtime import config as runtime_config

    prefix = f"{NAMESPACE}:"
    entries = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    secret_names = set(runtime_config.get_config_secret_keys_env()) | set(runtime_config._SECRET_KEYS.get())
    raw: dict[str, Any] = {}
    others: list[str] = []
    for full_key, value in entries.items():
        if not full_key.startswith(prefix):
            others.append(full_key)
            continue
        raw[full_key[len(prefix):]] = parse_config_value(value)
    secrets = {key for key in raw if f"{prefix}{key}" in secret_names}
    return raw, secrets, sorted(others)


def parse_config_value(value: Any) -> Any:
    """A config value as the CLI passes it (objects as JSON text) turned into data; text that is not JSON stays."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (ValueError, RecursionError):  # not JSON, or nested past Python's limit: the model refuses the text
        return value


def _stack_file_secure_paths(keys: Collection[str]) -> dict[str, list[Path]] | None:
    """Per secret key, the paths the stack file encrypts; None when the stack file is not where the CLI keeps it."""
    try:
        document = yaml.safe_load(FilePath(f"Pulumi.{pulumi.get_stack()}.yaml").read_text())
        config = document["config"]
        return {key: list(secure_paths(config.get(f"{NAMESPACE}:{key}"))) for key in keys}
    except Exception:  # noqa: BLE001 - any unreadable stack file means: treat whole keys as secret
        return None


def load_stack_config() -> LoadedConfig:
    """The one place that reads `pulumi.Config`; raises `pulumi.RunError` listing every problem."""
    raw, secrets, others = read_namespace()
    try:
        compiled = compile_config(raw, secret_keys=secrets, other_keys=others,
                                  secure=_stack_file_secure_paths(secrets) if secrets else None)
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
