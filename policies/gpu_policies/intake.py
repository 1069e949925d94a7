"""The request screen: input that pulumi-policy cannot read becomes a finding, never a failed RPC.

pulumi-policy 1.21 converts each request's properties with protobuf's ``json_format.MessageToDict`` before any
policy runs, once per policy. Two kinds of input make that conversion raise, and the exception fails the whole
Analyze or AnalyzeStack call (the CLI then reports the analyzer as broken and the preview stops):

- a number JSON cannot hold: NaN, Infinity or -Infinity (``ValueError: Fail to serialize NaN ...``);
- properties nested deeper than its recursive conversion can follow (about 200 levels under Python's default
  recursion limit: ``RecursionError``).

``install()`` (called by ``__main__.py`` before ``PolicyPack``) puts a subclass of the SDK's servicer in its
place. It hands every request to the SDK unchanged; only when the SDK's conversion raises does it screen a copy
of the request (``screen_struct``: one iterative walk, no recursion) and run the policies on that: each
non-finite number becomes the string the JSON world spells it with (``"NaN"``, ``"Infinity"``), so a policy
that reads it fails closed on a value of the wrong type; each object or list below ``MAX_DEPTH`` levels becomes
null (no policy reads deeper than about a dozen levels). What was screened is reported once per resource, by
the first policy that reaches a verdict on it (``claim``), at that policy's level. Readable requests pay nothing.

``install()`` also raises the cyclic garbage collector's thresholds (``GC_THRESHOLDS``). The SDK's conversion
allocates a dict or list per value of the request, once per policy, and with Python's defaults (700, 10, 10)
the collector's full passes over those objects took up to half of a large request's time (an AnalyzeStack of
400 workloads; bench/pack_scale.py ``--compare-gc``, docs/benchmarks.md). The conversion's objects are freed by reference counting, not by the
collector, so the higher thresholds cost no memory that matters.
"""
from __future__ import annotations

import contextvars
import gc
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.protobuf import struct_pb2

from .access import key_path
from .resource import violation

MAX_DEPTH = 64
"""Levels of objects and lists kept in a screened request (the deepest path a policy reads has about 12)."""

GC_THRESHOLDS = (50_000, 20, 20)
"""The collector's thresholds in the pack process (as tools/mockrun.py uses for the program under the plan)."""

MAX_REPORTED = 5
"""Findings listed per resource; the rest are counted."""

_PATH_SHOWN = 40


@dataclass(frozen=True, slots=True)
class Screened:
    """One value of a request that the SDK could not read: where, and what it was (``NaN``, ``Infinity``,
    ``-Infinity``, or ``too deep``)."""

    path: str
    problem: str

    def message(self, subject: str, where: str = "") -> str:
        path = f"{where}{self.path}"
        if self.problem == "too deep":
            shown = path if len(path) <= _PATH_SHOWN else f"{path[:_PATH_SHOWN].rstrip('.')}… (level {MAX_DEPTH})"
            return violation(subject, None, shown,
                             f"nests objects or lists more than {MAX_DEPTH} levels deep (the pack read what lies "
                             f"below as not set)", "flatten it; no Kubernetes object nests this deep")
        return violation(subject, None, path,
                         f"is {self.problem}, a number that JSON and the Kubernetes API cannot hold (the pack read "
                         f'it as the string "{self.problem}")', "set a finite number")


def _spell(number: float) -> str:
    return "NaN" if math.isnan(number) else ("Infinity" if number > 0 else "-Infinity")


def screen_struct(struct: struct_pb2.Struct, max_depth: int = MAX_DEPTH) -> list[Screened]:
    """Make ``struct`` readable in place and list what was changed. Iterative, so no depth can exhaust the
    stack; each value is visited once."""
    findings: list[Screened] = []
    pending: list[tuple[Any, str, int]] = [(struct, "", 1)]  # (Struct or ListValue, its path, its level)
    while pending:
        container, path, level = pending.pop()
        if isinstance(container, struct_pb2.Struct):
            children = [(key_path(path, key), value) for key, value in container.fields.items()]
        else:
            children = [(f"{path}[{i}]", value) for i, value in enumerate(container.values)]
        for child_path, value in children:
            kind = value.WhichOneof("kind")
            if kind == "number_value":
                if not math.isfinite(value.number_value):
                    spelled = _spell(value.number_value)
                    value.string_value = spelled
                    findings.append(Screened(child_path, spelled))
            elif kind == "struct_value" or kind == "list_value":
                if level >= max_depth:
                    value.null_value = struct_pb2.NULL_VALUE
                    findings.append(Screened(child_path, "too deep"))
                else:
                    pending.append((getattr(value, kind), child_path, level + 1))
    return findings


@dataclass
class _Screen:
    """What was screened in the request being served, by urn, and which resources were reported already."""

    findings: dict[str, list[tuple[str, Screened]]]  # urn -> [(prefix for the path, finding)]
    reported: set[str]


_CURRENT: contextvars.ContextVar[_Screen | None] = contextvars.ContextVar("gpu_policies_screen", default=None)


@contextmanager
def _serving(findings: dict[str, list[tuple[str, Screened]]]) -> Iterator[None]:
    token = _CURRENT.set(_Screen(findings, set()))
    try:
        yield
    finally:
        _CURRENT.reset(token)


def claim(urn: str, subject: str) -> list[str]:
    """The messages about what was screened in resource ``urn``, the first time a policy asks in this request
    (the SDK runs one request's policies in order on one thread); afterwards, and for readable input, none."""
    screen = _CURRENT.get()
    if screen is None or urn in screen.reported or urn not in screen.findings:
        return []
    screen.reported.add(urn)
    found = screen.findings[urn]
    messages = [finding.message(subject, where) for where, finding in found[:MAX_REPORTED]]
    if len(found) > MAX_REPORTED:
        messages.append(f"{subject}: {len(found) - MAX_REPORTED} more values could not be read as sent (numbers "
                        f"JSON cannot hold, or nesting past {MAX_DEPTH} levels). Fix: correct them as above.")
    return messages


def screened_urns() -> list[str]:
    screen = _CURRENT.get()
    return list(screen.findings) if screen is not None else []


def _screen_resource(entry: Any) -> list[tuple[str, Screened]]:
    """Screen one request or stack entry (its properties and its provider's) in place."""
    found = [("", f) for f in screen_struct(entry.properties)]
    if entry.HasField("provider"):
        found += [("the provider's ", f) for f in screen_struct(entry.provider.properties)]
    return found


def _make_servicer(base: type) -> type:
    class ScreeningServicer(base):  # type: ignore[misc, valid-type]
        """The SDK's servicer, with a second chance for requests its conversion cannot read."""

        def Analyze(self, request: Any, context: Any) -> Any:  # noqa: N802 - the gRPC method name
            try:
                return super().Analyze(request, context)
            except (ValueError, RecursionError):
                screened = type(request)()
                screened.CopyFrom(request)
                found = _screen_resource(screened)
                if not found:
                    raise
                with _serving({request.urn: found}):
                    return super().Analyze(screened, context)

        def AnalyzeStack(self, request: Any, context: Any) -> Any:  # noqa: N802
            try:
                return super().AnalyzeStack(request, context)
            except (ValueError, RecursionError):
                screened = type(request)()
                screened.CopyFrom(request)
                findings = {}
                for entry in screened.resources:
                    found = _screen_resource(entry)
                    if found:
                        findings[entry.urn] = found
                if not findings:
                    raise
                with _serving(findings):
                    return super().AnalyzeStack(screened, context)

    return ScreeningServicer


def install() -> None:
    """Set the collector's thresholds and serve the pack through the screening servicer. The SDK builds its servicer inside ``PolicyPack(...)``
    from the module-level class ``pulumi_policy.policy._PolicyAnalyzerServicer``, so that name is replaced;
    requirements.txt pins the SDK, and a version without that class stops the pack at start with this message."""
    from pulumi_policy import policy as sdk

    base = getattr(sdk, "_PolicyAnalyzerServicer", None)
    if not isinstance(base, type):
        raise RuntimeError("pulumi_policy.policy._PolicyAnalyzerServicer is missing: this pulumi-policy is not "
                           "the version requirements.txt pins (1.21.0); reinstall policies/venv")
    gc.set_threshold(*GC_THRESHOLDS)
    if getattr(base, "_gpu_policies_screening", False):
        return
    servicer = _make_servicer(base)
    servicer._gpu_policies_screening = True  # type: ignore[attr-defined]
    sdk._PolicyAnalyzerServicer = servicer  # type: ignore[attr-defined]
