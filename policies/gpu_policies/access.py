"""Safe property access: read what the engine sent without ever raising.

Inputs arrive as the Pulumi engine marshals them: Kubernetes' camelCase names, numbers as floats,
secrets already unwrapped, and values unknown during preview either as the engine's sentinel strings
(in plain dicts, as the unit tests build them) or behind pulumi-policy's ``unknown_checking_proxy``,
which raises on access. ``get`` and ``seq`` read both shapes and turn an unknown into ``UNKNOWN``, so
a policy checks everything it can and names what it could not (``Outcome.unknowns``).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

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
