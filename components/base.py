"""Shared pieces of the typed config: the frozen base model, problem reporting, Kubernetes name rules."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

Path = tuple[str | int, ...]
# No string of the config needs more: the longest are URLs and file paths (chart.path allows 4096 itself). A
# bound keeps one pasted blob from growing into every manifest that repeats it (a runbook URL is in every alert).
MAX_STRING = 2048


# Objects the program creates are its own. A field someone changed by hand (kubectl edit, patch, label
# --overwrite) then belongs to that field manager, and server-side apply refuses to take it back: every later
# preview fails with a field conflict. Forcing the apply makes `pulumi up --refresh` put the config back
# (docs/runbook.md, "Drift"). Never on the NodePatch: a node is shared with the kubelet, the node controller and
# people, and components/gpu_nodes.py merges with them instead.
OWNED_ANNOTATIONS = {"pulumi.com/patchForce": "true"}


class ConfigModel(BaseModel):
    """Base of every stack-config model: frozen, unknown keys rejected, camelCase in YAML, no type coercion.

    Strict, because a stack file holds exactly what YAML or `pulumi config set --path` typed: "true"/"false" and
    integers become booleans and numbers there, everything else a string. So "yes", 1 or "no" are not booleans
    and "900" is not a number here. Python code may build models by field name; the stack config is read by
    alias only (`compile_config` validates with by_name=False), so `mig_manager` is not `migManager`.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        validate_default=True,
        strict=True,
        str_max_length=MAX_STRING,
    )


class ConfigProblems(ValueError):
    """Several problems found by one cross-field rule, each with a key path relative to the model.

    Raised inside pydantic validators; pydantic keeps the exception object in the error context, so the
    loader can report every problem with its full key path instead of one joined string.
    """

    def __init__(self, problems: Sequence[tuple[Path, str]]):
        self.problems = list(problems)
        super().__init__("; ".join(f"{format_path(p)}: {m}" for p, m in self.problems))


class ProblemList:
    """Collects (path, message) pairs; raises them together, so a user sees every problem at once."""

    def __init__(self) -> None:
        self.items: list[tuple[Path, str]] = []

    def add(self, path: Path, message: str) -> None:
        self.items.append((path, message))

    def extend(self, prefix: Path, problems: Iterable[tuple[Path, str]]) -> None:
        for path, message in problems:
            self.items.append(((*prefix, *path), message))

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigProblems(self.items)


def format_path(path: Path) -> str:
    """``("nodes", 0, "labels")`` -> ``nodes[0].labels``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation). Always fullmatch: `$` in a Python regex also
# matches before a trailing newline, so "true\n" would pass as a label value.
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid Kubernetes name: lower-case letters, digits, '-' and '.', "
                         "starting and ending with a letter or digit, at most 253 characters")
    return value


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid DNS-1123 label: lower-case letters, digits and '-', "
                         "starting and ending with a letter or digit, at most 63 characters")
    return value


def check_label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in prefix:
        raise ValueError(f"label key {key!r} has more than one '/'")
    if prefix:
        try:
            check_dns_subdomain(prefix)
        except ValueError:
            raise ValueError(f"label key {key!r}: the prefix {prefix!r} must be a DNS subdomain "
                             "(for example example.com)") from None
    if not name or len(name) > 63 or not _QUALIFIED_NAME_RE.fullmatch(name):
        raise ValueError(f"label key {key!r}: the name part must be 1-63 characters of letters, digits, "
                         "'-', '_' or '.', starting and ending with a letter or digit")
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE_RE.fullmatch(value):
        raise ValueError(f"label value {value!r} must be at most 63 characters of letters, digits, '-', '_' "
                         "or '.', starting and ending with a letter or digit (or empty)")
    return value


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_label_key(key)
        check_label_value(value)
    return labels


def check_label_selector(selector: str) -> str:
    """A Kubernetes label selector string (`app=x,tier in (a,b),!canary`); empty selects everything."""
    depth, start, parts = 0, 0, []
    for index, char in enumerate(selector):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0 or depth > 1:
            raise ValueError(f"label selector {selector!r}: unbalanced parentheses")
        if char == "," and depth == 0:
            parts.append(selector[start:index])
            start = index + 1
    if depth:
        raise ValueError(f"label selector {selector!r}: unbalanced parentheses")
    parts.append(selector[start:])
    if selector.strip() == "":
        return selector
    for part in (p.strip() for p in parts):
        set_form = re.fullmatch(r"(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)", part)
        compare = re.fullmatch(r"(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>[^=!\s]*)", part)
        exists = re.fullmatch(r"!?\s*(?P<key>[^=!\s()]+)", part)
        try:
            if set_form:
                check_label_key(set_form["key"])
                values = [v.strip() for v in set_form["values"].split(",")]
                if not any(values):
                    raise ValueError(f"{set_form['op']} needs at least one value")
                for value in values:
                    check_label_value(value)
            elif compare:
                check_label_key(compare["key"])
                check_label_value(compare["value"])
            elif exists:
                check_label_key(exists["key"])
            else:
                raise ValueError("write key=value, key!=value, key in (a,b), key notin (a,b), key or !key")
        except ValueError as error:
            raise ValueError(f"label selector {selector!r}: {part!r}: {error}") from None
    return selector


# A container environment variable name that every supported Kubernetes release accepts (C identifier plus '-' and
# '.', not starting with a digit); the ClusterPolicy passes the name to the operand containers as it is.
_ENV_NAME_RE = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")


def check_env_name(name: str) -> str:
    if not _ENV_NAME_RE.fullmatch(name) or len(name) > 253:
        raise ValueError(f"{name!r} is not an environment variable name: letters, digits, '_', '-' and '.', not "
                         "starting with a digit")
    return name


# An image repository as the chart wants it (`nvcr.io/nvidia`, `registry.lab:5000/mirror/nvidia`): a registry
# host, optionally a port, then lower-case path components (OCI distribution spec); no scheme, no tag.
_REGISTRY_HOST = r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::\d{1,5})?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_IMAGE_REPOSITORY_RE = re.compile(rf"{_REGISTRY_HOST}(?:/{_PATH_COMPONENT})+")
_REGISTRY_RE = re.compile(_REGISTRY_HOST)


def check_image_repository(value: str) -> str:
    if not _IMAGE_REPOSITORY_RE.fullmatch(value) or len(value) > 255:
        raise ValueError(f"{value!r} is not an image repository: write registry/path without a scheme or tag, e.g. "
                         "nvcr.io/nvidia or registry.lab.example:5000/mirror/nvidia")
    return value


def check_registry(value: str) -> str:
    if not _REGISTRY_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a registry host: write host or host:port without a scheme, e.g. nvcr.io")
    return value


# Namespaces the cluster itself owns. kube-* is reserved for Kubernetes' own (kube-system, kube-public,
# kube-node-lease); `default` holds whatever nobody placed elsewhere.
RESERVED_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")


def reserved_namespace_problem(namespace: str) -> str | None:
    if namespace in RESERVED_NAMESPACES or namespace.startswith("kube-"):
        return (f"{namespace!r} belongs to Kubernetes itself (default, and kube-* such as kube-system), so it "
                "already exists with other tenants and policies; give this its own namespace")
    return None


K8sName = Annotated[str, AfterValidator(check_dns_subdomain)]
DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
Labels = Annotated[dict[str, str], AfterValidator(check_labels)]
LabelSelector = Annotated[str, AfterValidator(check_label_selector)]
EnvName = Annotated[str, AfterValidator(check_env_name)]
ImageRepository = Annotated[str, AfterValidator(check_image_repository)]
RegistryHost = Annotated[str, AfterValidator(check_registry)]


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the chart or the Kubernetes API spells it: aliases, no unset (None) fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
