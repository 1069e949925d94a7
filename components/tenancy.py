"""GPU tenancy: team namespaces, quotas, limit ranges, priority classes and RBAC from the lab's responsibility matrix.

The lab shares one GPU node between teams. Contention is handled per namespace:

- a ResourceQuota bounds `requests.nvidia.com/gpu` (an extended resource takes only the `requests.` prefix),
  `requests.cpu`, `requests.memory` and `pods`; a LimitRange gives containers that ask for nothing default
  cpu/memory requests and limits, so they are admitted (a cpu/memory quota rejects pods without requests)
  and counted. There is no GPU default: it would hand every container of the namespace a GPU.
- PriorityClasses (never `globalDefault`) order GPU work. Which classes a namespace may use is enforced by
  one quota scoped to the classes it may not use (`scopeSelector` PriorityClass In [...], `pods: 0`): it
  needs no API-server flag (the admission-config route, `limitedResources`, does), and it also shuts out
  the built-in `system-node-critical`/`system-cluster-critical`, which any namespace may use since
  Kubernetes 1.17. An optional quota per allowed class bounds high-priority GPU use separately.
- RBAC maps the matrix's roles to identity-provider groups from the config (see docs/tenancy.md): the owning
  team's Role in its namespaces, an observer ClusterRole for operations and infrastructure, an RBAC-auditor
  ClusterRole for security, and in the operator namespace the built-in `admin` for infrastructure and
  `view` for operations and security. Every rule we write lists its verbs and resources; none uses `*`.

The operator namespace gets none of the quotas: its operands set no requests and would be rejected.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema, field_validator, model_validator

from .base import OWNED_ANNOTATIONS, ConfigModel, DnsLabel, K8sName, Path, reserved_namespace_problem
from .operator_namespace import pod_security_labels, standard_labels
from .sharing import GPU_RESOURCE, SharingConfig

SHARED_GPU_RESOURCE = f"{GPU_RESOURCE}.shared"  # what a sharing profile with renameByDefault advertises
# The matrix's platform roles; every other key of `groups` is a team that can own tenant namespaces.
PLATFORM_ROLES = ("infrastructure", "security", "operations")
# Built-in classes any namespace may use since Kubernetes 1.17 unless a quota stops it (kubernetes#76310).
SYSTEM_PRIORITY_CLASSES = ("system-cluster-critical", "system-node-critical")
MAX_USER_PRIORITY = 1_000_000_000  # higher values are reserved for the system classes
MAX_PRIORITY_CLASS_NAME = 253 - len("priority-")  # the per-class quota's name must stay a valid object name
MAX_COUNT = 1_000_000  # quota counts (GPUs, pods): far above any cluster, below what a typo would give
RBAC_GROUP = "rbac.authorization.k8s.io"
OWNER_LABEL = "gpu-platform/owner"

# --- Kubernetes quantities ---------------------------------------------------------------------------------------

_DECIMAL_SUFFIXES = {"": 0, "m": -3, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
# A Kubernetes quantity (k8s.io/apimachinery/pkg/api/resource): a number, then a binary or decimal SI suffix or a
# decimal exponent (1e3, 5E-1). The API accepts more digits than it keeps: cpu 1.2345 is rounded up to 1235m.
_QUANTITY_RE = re.compile(r"(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)"
                          r"(?P<suffix>[KMGTPE]i|[mkMGTPE]|[eE][+-]?\d{1,3})?")


def _number_as_text(value: Any) -> Any:
    # YAML reads `cpu: 8` (and the CLI's YAML `cpu: 1e3`) as a number; Kubernetes takes both, and the manifests get
    # the same string. A bool is not a number here (strict config), nor are inf or nan.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value == value and value not in (float("inf"), float("-inf")):
        return format(Decimal(repr(value)).normalize(), "f") if abs(value) < 1e15 else repr(value)
    return value


def quantity(value: str) -> Decimal:
    """A validated Kubernetes quantity as a number (`500m` -> 0.5, `1Gi` -> 1073741824, `1e3` -> 1000)."""
    match = _QUANTITY_RE.fullmatch(value)
    assert match, value
    suffix = match["suffix"] or ""
    if suffix in _BINARY_SUFFIXES:
        scale = Decimal(2) ** _BINARY_SUFFIXES[suffix]
    elif suffix in _DECIMAL_SUFFIXES:
        scale = Decimal(10) ** _DECIMAL_SUFFIXES[suffix]
    else:
        scale = Decimal(10) ** int(suffix[1:])
    number = Decimal(match["number"]) * scale
    return -number if match["sign"] == "-" else number


def parse_quantity(value: Any) -> Decimal | None:
    """`value` as a number when it is a Kubernetes quantity (as text, or as YAML's number), else None."""
    text = _number_as_text(value)
    if not isinstance(text, str) or not _QUANTITY_RE.fullmatch(text):
        return None
    return quantity(text)


def cpu_cores(value: str) -> Decimal:
    """A validated CPU quantity in cores (`500m` -> 0.5)."""
    return quantity(value)


def memory_bytes(value: str) -> Decimal:
    """A validated memory quantity in bytes (`1Gi` -> 1073741824)."""
    return quantity(value)


def _check_quantity(value: str, hint: str) -> str:
    if not _QUANTITY_RE.fullmatch(value):
        raise ValueError(hint)
    if quantity(value) < 0:
        raise ValueError("must not be negative")
    return value


def _check_cpu(value: str) -> str:
    return _check_quantity(value, "not a CPU quantity: write cores (2, 0.5, 1e3) or millicores (500m)")


def _check_memory(value: str) -> str:
    if re.fullmatch(r"\+?(\d+(\.\d*)?|\.\d+)m", value):
        raise ValueError("'m' is milli: thousandths of a byte; write Mi (mebibytes) or M (megabytes)")
    return _check_quantity(value, "not a memory quantity: write bytes with a suffix, e.g. 512Mi, 4Gi or 500M")


_QUANTITY_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^\+?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?\d{1,3})?$"},
                              {"type": "number", "minimum": 0}]}
CpuQuantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_cpu),
                        WithJsonSchema(_QUANTITY_SCHEMA)]
MemoryQuantity = Annotated[str, BeforeValidator(_number_as_text), AfterValidator(_check_memory),
                           WithJsonSchema(_QUANTITY_SCHEMA)]


def _check_count(value: int) -> int:
    if value < 0:
        raise ValueError("a quota must not be negative (0 allows none)")
    if value > MAX_COUNT:
        raise ValueError(f"at most {MAX_COUNT}: no cluster has more; a larger number is a typo")
    return value


Count = Annotated[int, Field(strict=True), AfterValidator(_check_count)]


def _check_group_key(key: str) -> str:
    if not re.fullmatch(r"[a-z][A-Za-z0-9]{0,62}", key):
        raise ValueError("a group key is a camelCase word such as dataScience")
    return key


def _check_group_name(name: str) -> str:
    if not name or name != name.strip():
        raise ValueError("a group name must be non-empty, without leading or trailing spaces")
    if name.startswith("system:"):
        raise ValueError("groups starting with 'system:' belong to Kubernetes itself (system:masters, "
                         "system:authenticated, ...); name your identity provider's group")
    return name


GroupKey = Annotated[str, AfterValidator(_check_group_key)]
GroupName = Annotated[str, AfterValidator(_check_group_name)]


# --- config ------------------------------------------------------------------------------------------------------

class PriorityClassConfig(ConfigModel):
    """A PriorityClass for GPU work (never the cluster's global default)."""

    name: K8sName = Field(max_length=MAX_PRIORITY_CLASS_NAME, description=(
        f"At most {MAX_PRIORITY_CLASS_NAME} characters: a tenant's per-class quota is named priority-<name>."))
    value: int = Field(strict=True, ge=-2_147_483_648, le=MAX_USER_PRIORITY, description=(
        "Higher is scheduled first and may preempt lower; pods without a class get 0. At most 1000000000."))
    preemption_policy: Literal["PreemptLowerPriority", "Never"] = Field(description=(
        "PreemptLowerPriority evicts lower-priority pods to make room; Never waits in the queue instead."))
    description: str = Field(min_length=1, description=(
        "What the class is for (shown by kubectl describe priorityclass)."))

    @field_validator("name")
    @classmethod
    def _not_system(cls, name: str) -> str:
        if name.startswith("system-"):
            raise ValueError("names starting with 'system-' are reserved for Kubernetes' own classes")
        return name


class TenantQuota(ConfigModel):
    """The namespace's ResourceQuota: sums over its non-terminated pods."""

    gpu: Count = Field(description=(
        "GPUs the namespace's pods may request in total (requests.nvidia.com/gpu); a shared replica counts one."))
    cpu: CpuQuantity = Field(description="Total cpu requests (requests.cpu), e.g. \"8\" or 7500m.")
    memory: MemoryQuantity = Field(description="Total memory requests (requests.memory), e.g. 32Gi.")
    pods: Count = Field(description="Pods that may exist at once (not terminated).")


_GPU_DEFAULT_HINT = (
    "no GPU defaults here: a LimitRange default for nvidia.com/gpu gives a GPU to every container that asks for "
    "none (sidecars and init containers too), so a single pod could use up quota.gpu, and an extended resource's "
    "request must equal its limit anyway. Pods ask for GPUs explicitly (resources.limits: {nvidia.com/gpu: 1}); "
    "quota.gpu bounds them")


class ContainerDefaults(ConfigModel):
    """The LimitRange defaults for containers that set no cpu/memory of their own (GPUs are always explicit)."""

    cpu_request: CpuQuantity = Field(description="Default cpu request (defaultRequest.cpu).")
    memory_request: MemoryQuantity = Field(description="Default memory request (defaultRequest.memory).")
    cpu_limit: CpuQuantity | None = Field(default=None, description=(
        "Default cpu limit (default.cpu); none leaves cpu unthrottled."))
    memory_limit: MemoryQuantity | None = Field(default=None, description="Default memory limit (default.memory).")

    @model_validator(mode="before")
    @classmethod
    def _no_gpu_default(cls, data: Any) -> Any:
        if isinstance(data, dict) and any("gpu" in str(key).lower() for key in data):
            raise ValueError(_GPU_DEFAULT_HINT)
        return data


class TenantConfig(ConfigModel):
    """One tenant namespace: its owning team, quota, container defaults and priority classes."""

    namespace: DnsLabel
    owner: GroupKey = Field(description=(
        "The team (a key of tenancy.groups, not a platform role) whose group gets the namespace's developer Role."))
    quota: TenantQuota
    defaults: ContainerDefaults
    allowed_priority_classes: list[K8sName] = Field(default=[], description=(
        "Classes of tenancy.priorityClasses its pods may use; the other declared and the system-* classes are "
        "refused."))
    priority_gpu_quota: dict[K8sName, Count] = Field(default={}, description=(
        "Per allowed class, GPUs that class may request in the namespace (a quota scoped to the class)."))
    allow_exec: bool = Field(default=False, description=(
        "Let the team exec into and attach to its pods (pods/exec, pods/attach)."))


class TenancyConfig(ConfigModel):
    """GPU tenancy: groups for the matrix's roles, priority classes and tenant namespaces."""

    groups: dict[GroupKey, GroupName] = Field(description=(
        "Matrix role or team -> identity-provider group; infrastructure, security, operations required."))
    priority_classes: list[PriorityClassConfig] = []
    tenants: list[TenantConfig] = []


def monitoring_namespace_problems(config: TenancyConfig | None, monitoring_namespace: str) -> list[tuple[Path, str]]:
    """Tenants placed in the monitoring namespace (paths relative to `tenancy`)."""
    return [(("tenants", index, "namespace"),
             f"{tenant.namespace!r} is the monitoring namespace (monitoring.namespace), where kube-prometheus-stack "
             "runs; a tenant's quota and restricted Pod Security would apply to it: give the tenant its own namespace")
            for index, tenant in enumerate(config.tenants if config else []) if tenant.namespace == monitoring_namespace]


def tenancy_problems(config: TenancyConfig | None, *, operator_namespace: str) -> list[tuple[Path, str]]:
    """Every cross-field problem of the tenancy section, with paths relative to `tenancy`.

    Takes the other sections' values it needs as arguments, so that this module does not import the stack
    config (which imports it)."""
    if config is None:
        return []
    problems: list[tuple[Path, str]] = []
    missing = [role for role in PLATFORM_ROLES if role not in config.groups]
    if missing:
        problems.append((("groups",), f"the responsibility matrix needs a group for {', '.join(missing)} "
                                      f"({', '.join(PLATFORM_ROLES)} are required; the other keys are teams)"))
    teams = sorted(key for key in config.groups if key not in PLATFORM_ROLES)
    declared: dict[str, int] = {}
    for index, priority_class in enumerate(config.priority_classes):
        first = declared.setdefault(priority_class.name, index)
        if first != index:
            problems.append((("priorityClasses", index, "name"),
                             f"priority class {priority_class.name!r} is already priorityClasses[{first}]"))
    known_classes = ", ".join(declared) or "none are declared"
    seen: dict[str, int] = {}
    for index, tenant in enumerate(config.tenants):
        path: Path = ("tenants", index)
        problems += [((*path, *sub), message) for sub, message in _tenant_problems(
            tenant, operator_namespace, seen.get(tenant.namespace), teams, declared, known_classes)]
        seen.setdefault(tenant.namespace, index)
    return problems


def _tenant_problems(tenant: TenantConfig, operator_namespace: str, clash: int | None, teams: list[str],
                     declared: dict[str, int], known_classes: str) -> Iterable[tuple[Path, str]]:
    if tenant.namespace == operator_namespace:
        yield ("namespace",), (f"{tenant.namespace!r} is the operator namespace (gpuOperator.namespace); its "
                               "privileged operands set no requests, so a tenant's restricted Pod Security and "
                               "cpu/memory quota would block them: give the tenant its own namespace")
    elif reserved_namespace_problem(tenant.namespace):
        yield ("namespace",), str(reserved_namespace_problem(tenant.namespace))
    if clash is not None:
        yield ("namespace",), f"namespace {tenant.namespace!r} is already tenants[{clash}].namespace"
    if tenant.owner in PLATFORM_ROLES:
        yield ("owner",), (f"{tenant.owner!r} is a platform role of the responsibility matrix, which gets its own "
                           "access; a tenant is owned by a team (the matrix's data-science column): "
                           f"{', '.join(teams) or 'add one to tenancy.groups'}")
    elif tenant.owner not in teams:
        yield ("owner",), (f"unknown group {tenant.owner!r}; teams in tenancy.groups: "
                           f"{', '.join(teams) or 'none (add one, e.g. dataScience: <identity-provider group>)'}")
    for index, name in enumerate(tenant.allowed_priority_classes):
        if name not in declared:
            yield ("allowedPriorityClasses", index), (f"priority class {name!r} is not declared in "
                                                      f"tenancy.priorityClasses ({known_classes})")
    for name, gpus in tenant.priority_gpu_quota.items():
        where: Path = ("priorityGpuQuota", name)
        if name not in declared:
            yield where, f"priority class {name!r} is not declared in tenancy.priorityClasses ({known_classes})"
        elif name not in tenant.allowed_priority_classes:
            yield where, (f"priority class {name!r} is not in this tenant's allowedPriorityClasses, so its pods "
                          "are refused here anyway; allow it or drop this quota")
        elif gpus > tenant.quota.gpu:
            yield where, (f"{gpus} GPUs for {name!r} is more than the namespace's quota.gpu ({tenant.quota.gpu}), "
                          "so it would bound nothing; lower it")
    defaults, quota = tenant.defaults, tenant.quota
    for resource, amount in (("cpu", cpu_cores), ("memory", memory_bytes)):
        request: str = getattr(defaults, f"{resource}_request")
        limit: str | None = getattr(defaults, f"{resource}_limit")
        field = f"{resource}Request"
        if limit is not None and amount(request) > amount(limit):
            yield ("defaults", field), (f"the default {resource} request {request} is more than the default limit "
                                        f"{limit}; the API server rejects such a LimitRange")
        total: str = getattr(quota, resource)
        if amount(request) > amount(total):
            yield ("defaults", field), (f"the default {resource} request {request} is more than the namespace's "
                                        f"quota.{resource} {total}, so every pod relying on it would be rejected")


def gpu_resources(sharing: SharingConfig | None) -> tuple[str, ...]:
    """The extended resources GPUs are advertised as: nvidia.com/gpu, and nvidia.com/gpu.shared when a sharing
    profile renames shared GPUs (the quota must bound the name pods actually request)."""
    renamed = sharing is not None and any(
        strategy is not None and strategy.rename_by_default
        for profile in sharing.profiles.values() for strategy in (profile.mps, profile.time_slicing))
    return (GPU_RESOURCE, SHARED_GPU_RESOURCE) if renamed else (GPU_RESOURCE,)


# --- RBAC rules --------------------------------------------------------------------------------------------------

READ = ["get", "list", "watch"]
WRITE = ["get", "list", "watch", "create", "update", "patch", "delete"]
Rule = tuple[list[str], list[str], list[str]]  # apiGroups, resources, verbs

# The owning team in its namespaces: workloads, jobs, services, config, PVCs, logs; its quota read-only.
TENANT_RULES: list[Rule] = [
    ([""], ["pods", "services", "configmaps", "secrets", "persistentvolumeclaims"], WRITE),
    ([""], ["pods/log"], ["get"]),
    ([""], ["events", "resourcequotas", "limitranges"], READ),
    (["apps"], ["deployments", "statefulsets"], WRITE),
    (["apps"], ["deployments/scale", "statefulsets/scale"], ["get", "update", "patch"]),
    (["apps"], ["replicasets"], READ),
    (["batch"], ["jobs", "cronjobs"], WRITE),
]
# Both verbs: up to Kubernetes 1.34 a websocket exec needs only `get`, so without exec neither is granted.
EXEC_RULE: Rule = ([""], ["pods/exec", "pods/attach"], ["get", "create"])
# Operations (accountable for performance monitoring) and infrastructure (responsible for it).
OBSERVER_RULES: list[Rule] = [
    ([""], ["nodes", "pods", "namespaces", "resourcequotas", "limitranges"], READ),
    (["nvidia.com"], ["clusterpolicies", "clusterpolicies/status", "nvidiadrivers", "nvidiadrivers/status"], READ),
    (["scheduling.k8s.io"], ["priorityclasses"], READ),
    (["metrics.k8s.io"], ["nodes", "pods"], ["get", "list"]),
]
# Security (responsible for compliance): who may do what, and the namespaces' Pod Security labels.
AUDITOR_RULES: list[Rule] = [
    ([RBAC_GROUP], ["roles", "rolebindings", "clusterroles", "clusterrolebindings"], READ),
    ([""], ["namespaces", "serviceaccounts"], READ),
]


def tenant_rules(allow_exec: bool) -> list[Rule]:
    return [*TENANT_RULES, EXEC_RULE] if allow_exec else list(TENANT_RULES)


def _policy_rules(rules: Sequence[Rule]) -> list[k8s.rbac.v1.PolicyRuleArgs]:
    return [k8s.rbac.v1.PolicyRuleArgs(api_groups=groups, resources=resources, verbs=verbs)
            for groups, resources, verbs in rules]


def _groups(names: Iterable[str]) -> list[k8s.rbac.v1.SubjectArgs]:
    return [k8s.rbac.v1.SubjectArgs(api_group=RBAC_GROUP, kind="Group", name=name) for name in names]


def _labels(component: str) -> dict[str, str]:
    return standard_labels("gpu-tenancy", component)


# --- components --------------------------------------------------------------------------------------------------

class TenantNamespace(pulumi.ComponentResource):
    """One tenant namespace: restricted Pod Security, quotas, container defaults, the team's Role and binding."""

    name: pulumi.Output[str]

    def __init__(self, name: str, tenant: TenantConfig, *, owner_group: str, kubernetes_version: str,
                 disallowed_priority_classes: Sequence[str], gpu_resources: Sequence[str] = (GPU_RESOURCE,),
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:tenancy:TenantNamespace", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Protected like the operator namespace: deleting it deletes the team's workloads and volumes.
        self.namespace = k8s.core.v1.Namespace(
            name,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=tenant.namespace,
                labels={**pod_security_labels("restricted", kubernetes_version),
                        **_labels("tenant-namespace"), OWNER_LABEL: tenant.owner},
                annotations=OWNED_ANNOTATIONS),
            opts=pulumi.ResourceOptions(parent=self, protect=True))
        self.name = self.namespace.metadata.name

        def metadata(object_name: str, component: str) -> k8s.meta.v1.ObjectMetaArgs:
            return k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=self.name, labels=_labels(component),
                                              annotations=OWNED_ANNOTATIONS)

        def gpu_hard(count: int) -> dict[str, str]:
            return {f"requests.{resource}": str(count) for resource in gpu_resources}

        quota = tenant.quota
        self.quota = k8s.core.v1.ResourceQuota(
            f"{name}-quota", metadata=metadata("tenant-quota", "quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={
                **gpu_hard(quota.gpu), "requests.cpu": quota.cpu, "requests.memory": quota.memory,
                "pods": str(quota.pods)}),
            opts=child)
        self.priority_quotas = [
            k8s.core.v1.ResourceQuota(
                f"{name}-quota-{class_name}", metadata=metadata(f"priority-{class_name}", "quota"),
                spec=k8s.core.v1.ResourceQuotaSpecArgs(hard=gpu_hard(gpus),
                                                       scope_selector=_priority_scope([class_name])),
                opts=child)
            for class_name, gpus in sorted(tenant.priority_gpu_quota.items())]
        # No pod of these classes may exist here: the way to refuse a class without API-server flags.
        self.priority_gate = k8s.core.v1.ResourceQuota(
            f"{name}-priority-gate", metadata=metadata("disallowed-priority-classes", "quota"),
            spec=k8s.core.v1.ResourceQuotaSpecArgs(hard={"pods": "0"},
                                                   scope_selector=_priority_scope(disallowed_priority_classes)),
            opts=child)
        defaults = tenant.defaults
        limits = {k: v for k, v in (("cpu", defaults.cpu_limit), ("memory", defaults.memory_limit)) if v is not None}
        self.limit_range = k8s.core.v1.LimitRange(
            f"{name}-defaults", metadata=metadata("container-defaults", "limit-range"),
            spec=k8s.core.v1.LimitRangeSpecArgs(limits=[k8s.core.v1.LimitRangeItemArgs(
                type="Container",
                default_request={"cpu": defaults.cpu_request, "memory": defaults.memory_request},
                default=limits or None)]),
            opts=child)
        self.role = k8s.rbac.v1.Role(
            f"{name}-developer", metadata=metadata("tenant-developer", "rbac"),
            rules=_policy_rules(tenant_rules(tenant.allow_exec)), opts=child)
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-developers", metadata=metadata("tenant-developer", "rbac"),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="Role", name=self.role.metadata.name),
            subjects=_groups([owner_group]), opts=child)
        self.register_outputs({"name": self.name})


def _priority_scope(class_names: Sequence[str]) -> k8s.core.v1.ScopeSelectorArgs:
    return k8s.core.v1.ScopeSelectorArgs(match_expressions=[k8s.core.v1.ScopedResourceSelectorRequirementArgs(
        scope_name="PriorityClass", operator="In", values=list(class_names))])


class Tenancy(pulumi.ComponentResource):
    """Priority classes, the platform roles' access (cluster-wide and in the operator namespace), and one
    TenantNamespace per tenant."""

    namespaces: pulumi.Output[list[str]]

    def __init__(self, name: str, config: TenancyConfig, *, kubernetes_version: str,
                 operator_namespace: pulumi.Input[str], gpu_resources: Sequence[str] = (GPU_RESOURCE,),
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("gpu-platform:tenancy:Tenancy", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        groups = config.groups
        self.priority_classes = [
            k8s.scheduling.v1.PriorityClass(
                f"{name}-{pc.name}", metadata=k8s.meta.v1.ObjectMetaArgs(name=pc.name, labels=_labels("priority"),
                                                                      annotations=OWNED_ANNOTATIONS),
                value=pc.value, global_default=False, preemption_policy=pc.preemption_policy,
                description=pc.description, opts=child)
            for pc in config.priority_classes]
        self.observer_role, self.observer_binding = self._cluster_role(
            f"{name}-observer", "gpu-platform-observer", OBSERVER_RULES,
            [groups["operations"], groups["infrastructure"]])
        self.auditor_role, self.auditor_binding = self._cluster_role(
            f"{name}-rbac-auditor", "gpu-platform-rbac-auditor", AUDITOR_RULES, [groups["security"]])
        # The built-in user-facing roles, bound in the operator namespace only.
        self.operator_admins = self._operator_binding(
            f"{name}-operator-admins", "gpu-platform-operator-admins", "admin", [groups["infrastructure"]],
            operator_namespace)
        self.operator_viewers = self._operator_binding(
            f"{name}-operator-viewers", "gpu-platform-operator-viewers", "view",
            [groups["operations"], groups["security"]], operator_namespace)
        declared = [pc.name for pc in config.priority_classes]
        self.tenants = {
            tenant.namespace: TenantNamespace(
                f"{name}-{tenant.namespace}", tenant, owner_group=groups[tenant.owner],
                kubernetes_version=kubernetes_version, gpu_resources=gpu_resources,
                disallowed_priority_classes=[*SYSTEM_PRIORITY_CLASSES,
                                             *(c for c in declared if c not in tenant.allowed_priority_classes)],
                opts=child)
            for tenant in config.tenants}
        self.namespaces = pulumi.Output.all(*(t.name for t in self.tenants.values())).apply(list)
        self.register_outputs({"namespaces": self.namespaces, "priorityClasses": declared})

    def _cluster_role(self, resource_name: str, object_name: str, rules: Sequence[Rule],
                      subjects: Sequence[str]) -> tuple[k8s.rbac.v1.ClusterRole, k8s.rbac.v1.ClusterRoleBinding]:
        child = pulumi.ResourceOptions(parent=self)
        role = k8s.rbac.v1.ClusterRole(
            resource_name, metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name, labels=_labels("rbac"),
                                                             annotations=OWNED_ANNOTATIONS),
            rules=_policy_rules(rules), opts=child)
        binding = k8s.rbac.v1.ClusterRoleBinding(
            f"{resource_name}s", metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name, labels=_labels("rbac"),
                                                             annotations=OWNED_ANNOTATIONS),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="ClusterRole", name=role.metadata.name),
            subjects=_groups(dict.fromkeys(subjects)), opts=child)
        return role, binding

    def _operator_binding(self, resource_name: str, object_name: str, cluster_role: str, subjects: Sequence[str],
                          namespace: pulumi.Input[str]) -> k8s.rbac.v1.RoleBinding:
        return k8s.rbac.v1.RoleBinding(
            resource_name,
            metadata=k8s.meta.v1.ObjectMetaArgs(name=object_name, namespace=namespace, labels=_labels("rbac"),
                                                annotations=OWNED_ANNOTATIONS),
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group=RBAC_GROUP, kind="ClusterRole", name=cluster_role),
            subjects=_groups(dict.fromkeys(subjects)), opts=pulumi.ResourceOptions(parent=self))
