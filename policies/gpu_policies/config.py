"""Policy config: parsed once per distinct config, with messages that name the key and the fix; errors
reported once per run."""
from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from .access import get, is_mapping, keys, seq, show

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


class ConfigCache(Generic[C]):
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


def first_report(policy: str, errors: tuple[str, ...]) -> bool:
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
