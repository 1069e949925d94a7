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


# Kubernetes name rules (k8s.io/apimachinery/pkg/util/validation).
_DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(rf"^{_DNS1123_LABEL}(\.{_DNS1123_LABEL})*$")
_DNS1123_LABEL_RE = re.compile(rf"^{_DNS1123_LABEL}$")
_QUALIFIED_NAME_RE = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def check_dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS1123_SUBDOMAIN_RE.match(value):
        raise ValueError(f"{value!r} is not a valid Kubernetes name: lower-case letters, digits, '-' and '.', "
                         "starting and ending with a letter or digit, at most 253 characters")
    return value


def check_dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS1123_LABEL_RE.match(value):
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
    if not name or len(name) > 63 or not _QUALIFIED_NAME_RE.match(name):
        raise ValueError(f"label key {key!r}: the name part must be 1-63 characters of letters, digits, "
                         "'-', '_' or '.', starting and ending with a letter or digit")
    return key


def check_label_value(value: str) -> str:
    if len(value) > 63 or not _LABEL_VALUE_RE.match(value):
        raise ValueError(f"label value {value!r} must be at most 63 characters of letters, digits, '-', '_' "
                         "or '.', starting and ending with a letter or digit (or empty)")
    return value


def check_labels(labels: dict[str, str]) -> dict[str, str]:
    for key, value in labels.items():
        check_label_key(key)
        check_label_value(value)
    return labels


K8sName = Annotated[str, AfterValidator(check_dns_subdomain)]
DnsLabel = Annotated[str, AfterValidator(check_dns_label)]
LabelKey = Annotated[str, AfterValidator(check_label_key)]
LabelValue = Annotated[str, AfterValidator(check_label_value)]
Labels = Annotated[dict[str, str], AfterValidator(check_labels)]


def dump(model: BaseModel) -> dict[str, Any]:
    """A model as the chart or the Kubernetes API spells it: aliases, no unset (None) fields."""
    return model.model_dump(by_alias=True, exclude_none=True, mode="json")
