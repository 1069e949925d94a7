"""What the policies share: type tokens, safe property access, the pod-spec walker, messages and the
guard that turns every policy into a validator that cannot fail a preview.

Inputs arrive as the Pulumi engine marshals them: Kubernetes' camelCase names, numbers as floats,
secrets already unwrapped, and values unknown during preview either as the engine's sentinel strings
(in plain dicts, as the unit tests build them) or behind pulumi-policy's ``unknown_checking_proxy``,
which raises on access. ``get`` and ``seq`` read both shapes and turn an unknown into ``UNKNOWN``, so
a policy checks everything it can and names what it could not (``Outcome.unknowns``).
"""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Generic, TypeVar

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Severity,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)

# ---------------------------------------------------------------------------------------------------
# Type tokens
# ---------------------------------------------------------------------------------------------------
POD = "kubernetes:core/v1:Pod"
POD_TEMPLATE = "kubernetes:core/v1:PodTemplate"
REPLICATION_CONTROLLER = "kubernetes:core/v1:ReplicationController"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
REPLICA_SET = "kubernetes:apps/v1:ReplicaSet"
STATEFUL_SET = "kubernetes:apps/v1:StatefulSet"
DAEMON_SET = "kubernetes:apps/v1:DaemonSet"
JOB = "kubernetes:batch/v1:Job"
CRON_JOB = "kubernetes:batch/v1:CronJob"
WORKLOAD_TYPES = (POD, POD_TEMPLATE, REPLICATION_CONTROLLER, DEPLOYMENT, REPLICA_SET, STATEFUL_SET,
                  DAEMON_SET, JOB, CRON_JOB)

NAMESPACE = "kubernetes:core/v1:Namespace"
RESOURCE_QUOTA = "kubernetes:core/v1:ResourceQuota"
HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
HELM_CHART_V4 = "kubernetes:helm.sh/v4:Chart"
CLUSTER_POLICY = "kubernetes:nvidia.com/v1:ClusterPolicy"
NVIDIA_DRIVER = "kubernetes:nvidia.com/v1alpha1:NVIDIADriver"
ROLE = "kubernetes:rbac.authorization.k8s.io/v1:Role"
CLUSTER_ROLE = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole"
ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding"
CLUSTER_ROLE_BINDING = "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding"

# Where each pod-bearing kind keeps its pod template: (metadata keys, spec keys). PSA reads the same
# places (its PodSpecExtractor): the pod itself, or the template that the controller stamps pods from.
_TEMPLATE = (("spec", "template", "metadata"), ("spec", "template", "spec"))
POD_PATHS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "Pod": (("metadata",), ("spec",)),
    "PodTemplate": (("template", "metadata"), ("template", "spec")),
    "ReplicationController": _TEMPLATE,
    "Deployment": _TEMPLATE,
    "ReplicaSet": _TEMPLATE,
    "StatefulSet": _TEMPLATE,
    "DaemonSet": _TEMPLATE,
    "Job": _TEMPLATE,
    "CronJob": (("spec", "jobTemplate", "spec", "template", "metadata"),
                ("spec", "jobTemplate", "spec", "template", "spec")),
}
# API groups that have served each kind (old beta groups included: another team's stack may still
# declare them, and their pod specs are the same shape).
_WORKLOAD_GROUPS = {
    "Pod": {"core"}, "PodTemplate": {"core"}, "ReplicationController": {"core"},
    "Deployment": {"apps", "extensions"}, "ReplicaSet": {"apps", "extensions"},
    "StatefulSet": {"apps"}, "DaemonSet": {"apps", "extensions"},
    "Job": {"batch"}, "CronJob": {"batch"},
}
# Kinds without a namespace, so a message names them without one.
_CLUSTER_SCOPED = frozenset({
    "Namespace", "Node", "PersistentVolume", "ClusterRole", "ClusterRoleBinding", "PriorityClass",
    "StorageClass", "CustomResourceDefinition", "ClusterPolicy", "NVIDIADriver", "RuntimeClass",
    "ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "IngressClass",
})


@dataclass(frozen=True, slots=True)
class TypeToken:
    """A parsed Pulumi Kubernetes type token, e.g. ``kubernetes:apps/v1:DeploymentPatch``."""

    package: str
    group: str
    version: str
    kind: str        # the Kubernetes kind, without the Patch suffix
    class_name: str  # the Pulumi class: the kind, or the kind + "Patch"
    is_patch: bool

    @property
    def is_workload(self) -> bool:
        return self.package == "kubernetes" and self.group in _WORKLOAD_GROUPS.get(self.kind, ())


@lru_cache(maxsize=4096)
def _parse_token(token: str) -> TypeToken | None:
    parts = token.split(":")
    if len(parts) != 3:
        return None
    package, module, class_name = parts
    group, _, version = module.partition("/")
    is_patch = class_name.endswith("Patch") and len(class_name) > len("Patch")
    kind = class_name[: -len("Patch")] if is_patch else class_name
    return TypeToken(package, group, version, kind, class_name, is_patch)


def parse_token(token: object) -> TypeToken | None:
    """The token's parts, or None for anything that is not a ``package:module:Class`` string."""
    return _parse_token(token) if isinstance(token, str) else None


# ---------------------------------------------------------------------------------------------------
# Safe property access
# ---------------------------------------------------------------------------------------------------
class _Marker:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name

    def __bool__(self) -> bool:  # an unknown is never "set to true" by accident
        return False


UNKNOWN: Any = _Marker("UNKNOWN")
"""A value the engine does not know yet (preview): returned by ``get``/``seq`` instead of raising."""

UNKNOWN_SENTINELS = frozenset({
    UNKNOWN_STRING_VALUE, UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE, UNKNOWN_ARCHIVE_VALUE, UNKNOWN_OBJECT_VALUE,
})


def is_mapping(value: object) -> bool:
    return value.__class__ is dict or (isinstance(value, Mapping) and value is not UNKNOWN)


def get(obj: object, key: str) -> Any:
    """``obj[key]``: None when absent, null, or when ``obj`` is not a mapping; ``UNKNOWN`` when unknown."""
    if obj.__class__ is dict:
        value = obj.get(key)  # type: ignore[attr-defined]
    elif isinstance(obj, Mapping):
        try:
            value = obj.get(key)
        except UnknownValueError:
            return UNKNOWN
        except Exception:  # noqa: BLE001 - a foreign mapping that misbehaves reads as absent
            return None
    else:
        return None
    if value.__class__ is str and value in UNKNOWN_SENTINELS:
        return UNKNOWN
    return value


def get_in(obj: object, keys: Iterable[str]) -> Any:
    """Follow ``keys``; None as soon as a level is missing, ``UNKNOWN`` as soon as one is unknown."""
    for key in keys:
        if obj is None:
            return None
        if obj is UNKNOWN:
            return UNKNOWN
        obj = get(obj, key)
    return obj


def seq(value: object) -> Any:
    """The elements of a list (unknown elements as ``UNKNOWN``); ``UNKNOWN`` for an unknown list;
    an empty tuple for anything that is not a list (absent, null, wrong type)."""
    if value.__class__ is list:
        if any(e.__class__ is str and e in UNKNOWN_SENTINELS for e in value):  # type: ignore[attr-defined]
            return [UNKNOWN if (e.__class__ is str and e in UNKNOWN_SENTINELS) else e
                    for e in value]  # type: ignore[attr-defined]
        return value
    if value is UNKNOWN:
        return UNKNOWN
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes, bytearray)):
        out = []
        try:
            length = len(value)
        except Exception:  # noqa: BLE001
            return ()
        for i in range(length):
            try:
                element = value[i]
            except UnknownValueError:
                element = UNKNOWN
            except Exception:  # noqa: BLE001
                continue
            if element.__class__ is str and element in UNKNOWN_SENTINELS:
                element = UNKNOWN
            out.append(element)
        return out
    return ()


def keys(value: object) -> list[str]:
    """The string keys of a mapping (empty for anything else)."""
    if not is_mapping(value):
        return []
    try:
        return [k for k in value if isinstance(k, str)]  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001
        return []


def show(value: object) -> str:
    """A value as a message shows it: ``not set``, ``true``, ``"Unmasked"``, ``0``."""
    if value is None:
        return "not set"
    if value is UNKNOWN:
        return "unknown"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if is_mapping(value):
        return "an object"
    if isinstance(value, Sequence):
        return "a list"
    return f"a value of type {type(value).__name__}"


def key_path(path: str, key: str) -> str:
    """``path.key``, or ``path["key"]`` for keys that a dotted path would misread (``nvidia.com/gpu``)."""
    if key.replace("_", "").replace("-", "").isalnum():
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key)}]"


# ---------------------------------------------------------------------------------------------------
# The resource being checked, and how messages name it
# ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ResourceView:
    """One resource as a policy sees it, whichever of Analyze or AnalyzeStack delivered it."""

    type: str
    props: Any
    name: str = ""
    urn: str = ""
    provider_props: Any = None

    @classmethod
    def from_args(cls, args: Any) -> ResourceView:
        provider = getattr(args, "provider", None)
        return cls(
            type=getattr(args, "resource_type", ""),
            props=getattr(args, "props", None),
            name=getattr(args, "name", "") or "",
            urn=getattr(args, "urn", "") or "",
            provider_props=getattr(provider, "props", None) if provider is not None else None,
        )

    @property
    def token(self) -> TypeToken | None:
        return parse_token(self.type)

    def namespace(self) -> Any:
        """The namespace the object lands in: ``metadata.namespace`` (``namespace`` for a Helm
        release), else the provider's default namespace, else ``default``. ``UNKNOWN`` if unknown;
        None for cluster-scoped kinds."""
        token = self.token
        if token is not None and token.kind in _CLUSTER_SCOPED:
            return None
        if self.type in (HELM_RELEASE, HELM_CHART_V4):
            declared = get(self.props, "namespace")
        else:
            declared = get(get(self.props, "metadata"), "namespace")
        if declared is UNKNOWN:
            return UNKNOWN
        if isinstance(declared, str) and declared:
            return declared
        provider_ns = get(self.provider_props, "namespace")
        if provider_ns is UNKNOWN:
            return UNKNOWN
        if isinstance(provider_ns, str) and provider_ns:
            return provider_ns
        return "default"

    def object_name(self) -> str:
        if self.type in (HELM_RELEASE, HELM_CHART_V4):
            declared = get(self.props, "name")
        else:
            declared = get(get(self.props, "metadata"), "name")
        if isinstance(declared, str) and declared:
            return declared
        return self.name or "<unnamed>"

    def display(self) -> str:
        """``Deployment tenant-a/trainer``, ``ClusterRole ops``: what every message starts with."""
        token = self.token
        kind = token.class_name if token is not None else (self.type or "resource")
        namespace = self.namespace()
        name = self.object_name()
        if namespace is None:
            return f"{kind} {name}"
        if namespace is UNKNOWN:
            return f"{kind} <namespace unknown>/{name}"
        return f"{kind} {namespace}/{name}"


def violation(resource: str, subject: str | None, path: str, problem: str, fix: str, tag: str = "") -> str:
    """The one message shape: who, which field, what is wrong, what to change."""
    where = f"{resource}, {subject}" if subject else resource
    text = f"{where}: {path} {problem}. Fix: {fix}."
    return f"{text} [{tag}]" if tag else text


# ---------------------------------------------------------------------------------------------------
# The pod-spec walker (the only one: every policy that looks at pods goes through it)
# ---------------------------------------------------------------------------------------------------
CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")  # PSA's visiting order
_CONTAINER_WORD = {"containers": "container", "initContainers": "init container",
                   "ephemeralContainers": "ephemeral container"}


@dataclass(frozen=True, slots=True)
class ContainerRef:
    """One container of a pod spec, with the path that names it in messages."""

    list_name: str
    index: int
    name: str
    body: Any
    path: str

    def __str__(self) -> str:
        label = f'{_CONTAINER_WORD[self.list_name]} "{self.name}"' if self.name else _CONTAINER_WORD[self.list_name]
        return f"{label} ({self.list_name}[{self.index}])"


@dataclass(slots=True)
class PodSpecRef:
    """A pod spec found in a workload: the spec, its pod metadata and its containers, with paths."""

    spec: Any
    path: str
    metadata: Any
    metadata_path: str
    containers: list[ContainerRef] = field(default_factory=list)
    is_patch: bool = False


def pod_spec(view: ResourceView, unknowns: list[str]) -> PodSpecRef | None:
    """The pod spec of a pod-bearing resource (None if it is not one or has no spec). Unknown parts
    on the way are added to ``unknowns`` by path."""
    token = view.token
    if token is None or not token.is_workload:
        return None
    meta_keys, spec_keys = POD_PATHS[token.kind]
    spec: Any = view.props
    for depth, key in enumerate(spec_keys):
        spec = get(spec, key)
        if spec is UNKNOWN:
            unknowns.append(".".join(spec_keys[: depth + 1]))
            return None
        if spec is None:
            return None
    if not is_mapping(spec):
        return None
    metadata = get_in(view.props, meta_keys)
    spec_path = ".".join(spec_keys)
    ref = PodSpecRef(spec=spec, path=spec_path, metadata=metadata, metadata_path=".".join(meta_keys),
                     is_patch=token.is_patch)
    for list_name in CONTAINER_LISTS:
        items = seq(get(spec, list_name))
        list_path = f"{spec_path}.{list_name}"
        if items is UNKNOWN:
            unknowns.append(list_path)
            continue
        for index, body in enumerate(items):
            if body is UNKNOWN:
                unknowns.append(f"{list_path}[{index}]")
                continue
            if not is_mapping(body):
                continue
            name = get(body, "name")
            ref.containers.append(ContainerRef(list_name, index, name if isinstance(name, str) else "",
                                               body, f"{list_path}[{index}]"))
    return ref


# ---------------------------------------------------------------------------------------------------
# Outcomes, unknowns, notes between policies
# ---------------------------------------------------------------------------------------------------
@dataclass(slots=True)
class Outcome:
    """What an evaluation found: violations (message, urn for stack policies), values it needed but
    could not know, a not-applicable reason, and an optional note for a companion policy."""

    violations: list[tuple[str, str | None]] = field(default_factory=list)
    unknowns: list[str] = field(default_factory=list)
    not_applicable: str | None = None
    note: str | None = None
    subject: str = ""

    def add(self, message: str, urn: str | None = None) -> None:
        self.violations.append((message, urn))


def not_applicable(reason: str) -> Outcome:
    return Outcome(not_applicable=reason)


class NeedsKnownValues(UnknownValueError):
    """Raised once per resource (or stack) after all known violations are reported: pulumi-policy turns
    it into one advisory "can't run policy ... during preview" diagnostic that lists every path."""

    def __init__(self, subject: str, paths: Sequence[str]) -> None:
        super().__init__(UNKNOWN_STRING_VALUE, [])
        unique = list(dict.fromkeys(paths))
        shown = ", ".join(unique[:12]) + (f" and {len(unique) - 12} more" if len(unique) > 12 else "")
        verb = "is" if len(unique) == 1 else "are"
        self.paths = unique
        self.message = (f"{subject}: {shown} {verb} unknown until the update runs, and this policy needs "
                        f"{'it' if len(unique) == 1 else 'them'}; it checks again during `pulumi up`, "
                        f"when the values are known")


_NOTES = threading.local()


def publish_note(channel: str, urn: str, note: str) -> None:
    """Hand a note to a companion policy evaluating the same resource next in this same Analyze call
    (pulumi-policy runs a request's policies in order on one thread)."""
    setattr(_NOTES, channel, (urn, note))


def take_note(channel: str, urn: str) -> str | None:
    entry = getattr(_NOTES, channel, None)
    if entry is None:
        return None
    setattr(_NOTES, channel, None)
    return entry[1] if entry[0] == urn else None


# ---------------------------------------------------------------------------------------------------
# Config: parsed once per distinct config, errors reported once per run
# ---------------------------------------------------------------------------------------------------
C = TypeVar("C")


class ConfigError(Exception):
    """A policy-pack config value that the pack cannot use; the message names the key and the fix."""


NAMED_REASON_FIELDS = {"kind": True, "name": True, "namespace": False, "reason": True}


def named_reasons_schema(namespaced_kind: str, cluster_kind: str, description: str) -> dict[str, Any]:
    """The config schema of a list ``ConfigReader.named_reasons`` reads."""
    return {
        "type": "array", "description": description,
        "items": {
            "type": "object", "required": ["kind", "name", "reason"], "additionalProperties": False,
            "properties": {"kind": {"type": "string", "enum": [namespaced_kind, cluster_kind]},
                           "name": {"type": "string", "minLength": 1},
                           "namespace": {"type": "string", "minLength": 1},
                           "reason": {"type": "string", "minLength": 1}},
        },
    }


class ConfigReader:
    """Reads one policy's config object with messages that name the key, the bad value and the fix."""

    def __init__(self, policy: str, raw: Any) -> None:
        self.policy = policy
        self.raw = raw if is_mapping(raw) else {}
        self.errors: list[str] = []
        self.seen: set[str] = {"enforcementLevel"}

    def error(self, key: str, problem: str, fix: str) -> None:
        self.errors.append(f'config key "{key}" {problem}; {fix}')

    def value(self, key: str) -> Any:
        self.seen.add(key)
        return get(self.raw, key)

    def string_list(self, key: str, default: Sequence[str]) -> tuple[str, ...]:
        value = self.value(key)
        if value is None:
            return tuple(default)
        items = seq(value)
        if not isinstance(items, list) or any(not isinstance(i, str) or not i for i in items):
            self.error(key, f"is {show(value)}", "give a list of non-empty strings")
            return tuple(default)
        return tuple(items)

    def boolean(self, key: str, default: bool) -> bool:
        value = self.value(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.error(key, f"is {show(value)}", "give true or false")
            return default
        return value

    def choice(self, key: str, default: str, allowed: Sequence[str]) -> str:
        value = self.value(key)
        if value is None:
            return default
        if value not in allowed:
            self.error(key, f"is {show(value)}", f"use one of {', '.join(json.dumps(a) for a in allowed)}")
            return default
        return value

    def records(self, key: str, fields: Mapping[str, bool]) -> list[dict[str, str]] | None:
        """A list of objects with string fields (``fields``: name -> required). None when absent."""
        value = self.value(key)
        if value is None:
            return None
        items = seq(value)
        if not isinstance(items, list):
            self.error(key, f"is {show(value)}", "give a list of objects")
            return []
        out = []
        for index, item in enumerate(items):
            where = f"{key}[{index}]"
            if not is_mapping(item):
                self.error(where, f"is {show(item)}",
                           f"give an object with {', '.join(f for f in fields)}")
                continue
            record: dict[str, str] = {}
            ok = True
            for name, required in fields.items():
                v = get(item, name)
                if v is None:
                    if required:
                        self.error(f"{where}.{name}", "is missing", f"add {name} (a non-empty string)")
                        ok = False
                    continue
                if not isinstance(v, str) or not v.strip():
                    self.error(f"{where}.{name}", f"is {show(v)}", "give a non-empty string")
                    ok = False
                    continue
                record[name] = v
            for extra in keys(item):
                if extra not in fields:
                    self.error(f"{where}.{extra}", "is not a known field",
                               f"remove it (known fields: {', '.join(fields)})")
            if ok:
                out.append(record)
        return out

    def named_reasons(self, key: str, namespaced_kind: str, cluster_kind: str,
                      entry: str) -> dict[tuple[str, str, str], str]:
        """Objects named in the config with the reason each is allowed: ``{(kind, namespace, name): reason}``
        (namespace "" for the cluster-scoped kind, which the namespaced kind must name)."""
        named = {}
        for index, record in enumerate(self.records(key, NAMED_REASON_FIELDS) or ()):
            if record["kind"] not in (namespaced_kind, cluster_kind):
                self.error(f"{key}[{index}].kind", f'is "{record["kind"]}"',
                           f'use "{namespaced_kind}" or "{cluster_kind}"')
            elif record["kind"] == namespaced_kind and "namespace" not in record:
                self.error(f"{key}[{index}].namespace", "is missing",
                           f"a {namespaced_kind} {entry} names its namespace")
            else:
                named[(record["kind"], record.get("namespace", ""), record["name"])] = record["reason"]
        return named

    def finish(self) -> None:
        for extra in keys(self.raw):
            if extra not in self.seen:
                self.error(extra, "is not a setting of this policy", "remove it or fix its spelling")


class _ConfigCache(Generic[C]):
    """Parses a policy's config once per distinct config object. pulumi-policy hands every call a
    shallow copy of the same dict, so the values' identities make a cheap key; the entry keeps the
    values alive, so an identity cannot be reused while it is cached."""

    def __init__(self, parse: Callable[[ConfigReader], C], policy: str) -> None:
        self._parse = parse
        self._policy = policy
        self._entries: dict[tuple, tuple[C, tuple[str, ...], list]] = {}
        self._lock = threading.Lock()

    def load(self, raw: Any) -> tuple[C, tuple[str, ...]]:
        items = [(k, v) for k, v in raw.items()] if raw.__class__ is dict else None
        key = tuple((k, id(v)) for k, v in items) if items is not None else None
        if key is not None:
            hit = self._entries.get(key)
            if hit is not None:
                return hit[0], hit[1]
        reader = ConfigReader(self._policy, raw)
        config = self._parse(reader)
        reader.finish()
        errors = tuple(reader.errors)
        if errors:
            config = self._parse(ConfigReader(self._policy, {}))  # the defaults, never half a config
        if key is not None and items is not None:
            with self._lock:
                if len(self._entries) > 32:
                    self._entries.clear()
                self._entries[key] = (config, errors, [v for _, v in items])
        return config, errors


_REPORTED_CONFIG_ERRORS: set[tuple[str, tuple[str, ...]]] = set()
_REPORTED_LOCK = threading.Lock()


def _first_report(policy: str, errors: tuple[str, ...]) -> bool:
    with _REPORTED_LOCK:
        if (policy, errors) in _REPORTED_CONFIG_ERRORS:
            return False
        _REPORTED_CONFIG_ERRORS.add((policy, errors))
        return True


def reset_reported_config_errors() -> None:
    """Forget which config errors were reported (tests start each case from a fresh run)."""
    with _REPORTED_LOCK:
        _REPORTED_CONFIG_ERRORS.clear()


def config_error_message(policy: str, errors: Sequence[str]) -> str:
    return (f"the policy-pack config for {policy} is invalid: " + "; ".join(errors)
            + ". This run uses the policy's defaults instead; fix the config file passed with "
              "--policy-pack-config.")


# ---------------------------------------------------------------------------------------------------
# Building policies: the guard
# ---------------------------------------------------------------------------------------------------
def _describe_error(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001
        text = "<unprintable>"
    return f"{type(exc).__name__}: {text[:300]}" if text else type(exc).__name__


def internal_error_message(policy: str, subject: str, exc: BaseException) -> str:
    """Fail closed: the resource is reported, never silently passed, and the preview still completes."""
    return (f"{subject}: internal error in {policy} ({_describe_error(exc)}). The resource could not be "
            f"checked, so the policy fails closed. Report this message to the policy pack's maintainers; "
            f"to proceed meanwhile, set {policy}'s enforcementLevel to advisory in the policy-pack config.")


def _subject_of(args: Any) -> str:
    try:
        return ResourceView.from_args(args).display()
    except Exception:  # noqa: BLE001
        return str(getattr(args, "urn", "") or "the stack")


ResourceEvaluate = Callable[[ResourceView, Any], Outcome]
StackEvaluate = Callable[[list[ResourceView], Any], Outcome]


def resource_policy(*, name: str, description: str, evaluate: ResourceEvaluate,
                    parse_config: Callable[[ConfigReader], Any], config_schema: PolicyConfigSchema,
                    remediation: str, severity: Severity,
                    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> ResourceValidationPolicy:
    """A resource policy whose validator never raises anything but pulumi-policy's own signals."""
    cache: _ConfigCache[Any] = _ConfigCache(parse_config, name)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            config, errors = cache.load(args.get_config())
            if errors and _first_report(name, errors):
                report_violation(config_error_message(name, errors), None)
            outcome = evaluate(ResourceView.from_args(args), config)
        except Exception as exc:  # noqa: BLE001 - fail closed, see internal_error_message
            report_violation(internal_error_message(name, _subject_of(args), exc), None)
            return
        for message, _ in outcome.violations:
            report_violation(message, None)
        if outcome.note is not None:
            publish_note(name, args.urn, outcome.note)
        if outcome.unknowns:
            raise NeedsKnownValues(outcome.subject or _subject_of(args), outcome.unknowns)
        if outcome.not_applicable is not None and not outcome.violations:
            args.not_applicable(outcome.not_applicable)

    policy = ResourceValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=enforcement_level,
        config_schema=config_schema, severity=severity, remediation_steps=remediation)
    policy.evaluate = evaluate  # type: ignore[attr-defined]
    policy.load_config = cache.load  # type: ignore[attr-defined]
    return policy


def stack_policy(*, name: str, description: str, evaluate: StackEvaluate,
                 parse_config: Callable[[ConfigReader], Any], config_schema: PolicyConfigSchema,
                 remediation: str, severity: Severity,
                 enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY) -> StackValidationPolicy:
    """A stack policy with the same guard; violations carry the urn of the resource they are about."""
    cache: _ConfigCache[Any] = _ConfigCache(parse_config, name)

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            config, errors = cache.load(args.get_config())
            if errors and _first_report(name, errors):
                report_violation(config_error_message(name, errors), None)
            views = [ResourceView(type=getattr(r, "resource_type", ""), props=getattr(r, "props", None),
                                  name=getattr(r, "name", "") or "", urn=getattr(r, "urn", "") or "",
                                  provider_props=getattr(getattr(r, "provider", None), "props", None))
                     for r in args.resources]
            outcome = evaluate(views, config)
        except Exception as exc:  # noqa: BLE001 - fail closed
            report_violation(internal_error_message(name, "the stack", exc), None)
            return
        for message, urn in outcome.violations:
            report_violation(message, urn)
        if outcome.unknowns:
            raise NeedsKnownValues(outcome.subject or "the stack", outcome.unknowns)
        if outcome.not_applicable is not None and not outcome.violations:
            args.not_applicable(outcome.not_applicable)

    policy = StackValidationPolicy(
        name=name, description=description, validate=validate, enforcement_level=enforcement_level,
        config_schema=config_schema, severity=severity, remediation_steps=remediation)
    policy.evaluate = evaluate  # type: ignore[attr-defined]
    policy.load_config = cache.load  # type: ignore[attr-defined]
    return policy
