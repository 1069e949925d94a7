"""pod-security-exemptions: an advisory note for every workload that pod-security-standards skipped
because its namespace is exempted, naming the namespace and the reason from the config.

A mandatory policy cannot emit an advisory line, and pulumi-policy's "not applicable" results are not
shown in the CLI's output, so the note comes from this companion. It reads the decision that
pod-security-standards made for the same resource in the same Analyze call (pulumi-policy runs one
request's policies in order on one thread), so the pack lists it right after pod-security-standards.
With pod-security-standards disabled there is nothing to note.
"""
from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyConfigSchema, Severity

from . import pod_security
from .config import ConfigReader
from .guard import resource_policy
from .outcome import Outcome, not_applicable, take_note
from .resource import ResourceView

NAME = "pod-security-exemptions"


def parse_config(reader: ConfigReader) -> None:
    """No settings: the exemptions and their reasons are pod-security-standards' config."""
    return None


def evaluate(view: ResourceView, _config: None) -> Outcome:
    note = take_note(pod_security.NAME, view.urn)
    if note is None:
        return not_applicable("pod-security-standards did not exempt this resource")
    outcome = Outcome(subject=view.display())
    outcome.add(note)
    return outcome


POLICY = resource_policy(
    name=NAME,
    description="Workloads that pod-security-standards does not check, because their namespace is exempted "
                "in its config, with the reason.",
    evaluate=evaluate,
    parse_config=parse_config,
    config_schema=PolicyConfigSchema(properties={}),
    severity=Severity.LOW,
    enforcement_level=EnforcementLevel.ADVISORY,
    remediation=("Nothing to change if the exemption is intended. Otherwise move the workload to a checked "
                 "namespace, or remove the namespace from pod-security-standards' exemptions."),
)
