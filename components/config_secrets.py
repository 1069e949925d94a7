"""Config values that arrived as Pulumi secrets, kept secret wherever they end up.

`pulumi config set --secret --path gpu-platform:monitoring.runbookUrl <url>` encrypts one value inside an object.
The CLI decrypts it for the program and marks only the top-level key (`gpu-platform:monitoring`) as secret: the
program sees plain data and cannot tell which value inside was the secret. So the secret leaves are found here:

- precisely, from the stack file (`Pulumi.<stack>.yaml` in the project folder, where the CLI runs the program),
  where each encrypted value is a `{secure: ...}` object at its own path;
- when the stack file does not say (another config file, an ESC environment), every value of the secret key
  counts as secret (strings and numbers of 3 characters or more: shorter ones are no secret anyone can keep, and
  hiding every "1" would make the rest unreadable).

Then every resource input that contains one of those values (also inside a longer string, such as a PromQL
expression or the chart values) is passed as `pulumi.Output.secret` (a `transformations` entry on the platform
component, which its children inherit), stack outputs go through `keep_secret`, and config messages are redacted.
Values that become Pulumi resource names or read ids (node names, tenant namespaces, class and pool names) cannot be
secret: the engine never encrypts a URN, so the config refuses a secret there.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from .base import Path

REDACTED = "[secret]"
MIN_GUESSED_SECRET = 3


@dataclass(frozen=True)
class SecretValues:
    """The plaintext of every config value that is a secret (longest first, so a longer one is redacted whole)."""

    values: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.values)

    def redact(self, text: str) -> str:
        """`text` without any secret value, also as a message quotes it (repr or JSON escapes a newline)."""
        for value in self.values:
            for form in dict.fromkeys((value, repr(value)[1:-1], json.dumps(value)[1:-1])):
                text = text.replace(form, REDACTED)
        return text

    def contains(self, value: Any) -> bool:
        """Whether a resource input holds a secret value anywhere (Outputs keep their own secret flag)."""
        return bool(self.values) and any(secret in text for text in _texts(value) for secret in self.values)

    def keep_secret(self, value: Any) -> Any:
        """`value`, or `pulumi.Output.secret(value)` when it holds a secret value."""
        return pulumi.Output.secret(value) if self.contains(value) else value

    def transformation(self) -> pulumi.ResourceTransformation:
        """Marks each input property that holds a secret value as secret (for `ResourceOptions.transformations`)."""

        def transform(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
            if not args.props or not self.values:
                return None
            props = {key: self.keep_secret(value) for key, value in args.props.items()}
            return pulumi.ResourceTransformationResult(props, args.opts)

        return transform


def _texts(value: Any) -> Iterator[str]:
    """Every string and number inside plain data, Pulumi input classes included (not inside Outputs)."""
    from pulumi import _types

    if isinstance(value, str):
        yield value
    elif isinstance(value, bool) or value is None or isinstance(value, pulumi.Output):
        return
    elif isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _texts(key)
            yield from _texts(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _texts(item)
    elif _types.is_input_type(type(value)):
        yield from _texts(dict(vars(value)))


def _leaves(value: Any) -> Iterator[str]:
    """The values (never the keys: a stack file encrypts values, its keys stay plain) inside `value`."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (str, int, float)):
        yield str(value)
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _leaves(item)


def secure_paths(document_value: Any, path: Path = ()) -> Iterator[Path]:
    """The paths of `{secure: ...}` values inside one config key of a stack file."""
    if isinstance(document_value, Mapping):
        if set(document_value) == {"secure"}:
            yield path
            return
        for key, item in document_value.items():
            yield from secure_paths(item, (*path, str(key)))
    elif isinstance(document_value, list):
        for index, item in enumerate(document_value):
            yield from secure_paths(item, (*path, index))


def _at(value: Any, path: Path) -> Any:
    for part in path:
        try:
            value = value[part]
        except (KeyError, IndexError, TypeError):
            return None
    return value


def guessed_keys(secret_keys: Sequence[str], secure: Mapping[str, Sequence[Path]] | None) -> list[str]:
    """The secret keys whose secret values the stack file does not pinpoint."""
    return [key for key in secret_keys if not (secure or {}).get(key)]


def secret_values(raw: Mapping[str, Any], secret_keys: Sequence[str],
                  secure: Mapping[str, Sequence[Path]] | None = None) -> SecretValues:
    """The plaintext secrets of the secret keys of `raw` (bare key -> decrypted value).

    `secure`: per key, the paths the stack file encrypts (None when the stack file could not be read): those
    values are the secrets; a key without known paths counts as secret through and through."""
    found: set[str] = set()
    for key in secret_keys:
        if key not in raw:
            continue
        paths = (secure or {}).get(key)
        try:
            if paths:
                for path in paths:
                    found.update(text for text in _leaves(_at(raw[key], path)) if text)
            else:
                found.update(text for text in _leaves(raw[key]) if len(text) >= MIN_GUESSED_SECRET)
        except RecursionError:
            continue  # nested past any config's depth: refused as a whole, and its values are never shown
    return SecretValues(tuple(sorted(found, key=lambda text: (-len(text), text))))


# Values that become resource names (URNs) or the ids of resources read with `.get`: never encrypted by the engine.
NAMING_FIELDS: tuple[tuple[str, ...], ...] = (
    ("nodes", "*", "name"),
    ("tenancy", "tenants", "*", "namespace"),
    ("tenancy", "priorityClasses", "*", "name"),
    ("gpuOperator", "driver", "pools", "*", "name"),
    ("monitoring", "namespace"),
)


def secret_names(raw: Mapping[str, Any], secrets: SecretValues,
                 guessed: Sequence[str] = ()) -> list[tuple[Path, str]]:
    """(path, message) for every secret value that would become a resource name or a read id.

    `guessed`: the keys whose secret values could not be told apart (every value of them counts as secret)."""
    problems: list[tuple[Path, str]] = []
    if not secrets:
        return problems
    for pattern in NAMING_FIELDS:
        for path, value in _expand(raw, pattern):
            if isinstance(value, str) and value and any(secret in value for secret in secrets.values):
                message = ("is a secret, but it becomes part of a Pulumi resource name, which the engine never "
                           "encrypts: set it as plain config, and keep --secret for the value that is one")
                if path[0] in guessed:
                    message += (f" (the stack file does not show which value of {path[0]} was set with --secret, "
                                "so every value of it counts as one)")
                problems.append((path, message))
    return problems


def _expand(value: Any, pattern: tuple[str, ...], path: Path = ()) -> Iterator[tuple[Path, Any]]:
    if not pattern:
        yield path, value
        return
    head, *rest = pattern
    if head == "*":
        if isinstance(value, list):
            for index, item in enumerate(value):
                yield from _expand(item, tuple(rest), (*path, index))
    elif isinstance(value, Mapping) and head in value:
        yield from _expand(value[head], tuple(rest), (*path, head))
