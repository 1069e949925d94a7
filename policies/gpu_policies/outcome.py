"""What an evaluation found, the one "can't run during preview" signal, and notes between policies."""
from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError

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
