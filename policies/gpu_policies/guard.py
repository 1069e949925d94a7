"""Building policies: the guard that turns every evaluation into a validator that cannot fail a preview."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

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

from .config import ConfigCache, ConfigReader, config_error_message, first_report
from .intake import claim, screened_urns
from .outcome import NeedsKnownValues, Outcome, publish_note
from .resource import ResourceView


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
    cache: ConfigCache[Any] = ConfigCache(parse_config, name)

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        try:
            config, errors = cache.load(args.get_config())
            if errors and first_report(name, errors):
                report_violation(config_error_message(name, errors), None)
            outcome = evaluate(ResourceView.from_args(args), config)
        except Exception as exc:  # noqa: BLE001 - fail closed, see internal_error_message
            report_violation(internal_error_message(name, _subject_of(args), exc), None)
            return
        if outcome.violations or outcome.not_applicable is None:  # it judged the resource: say what was screened
            for message in claim(args.urn, outcome.subject or _subject_of(args)):
                report_violation(message, None)
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
    cache: ConfigCache[Any] = ConfigCache(parse_config, name)

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        try:
            config, errors = cache.load(args.get_config())
            if errors and first_report(name, errors):
                report_violation(config_error_message(name, errors), None)
            views = [ResourceView(type=getattr(r, "resource_type", ""), props=getattr(r, "props", None),
                                  name=getattr(r, "name", "") or "", urn=getattr(r, "urn", "") or "",
                                  provider_props=getattr(getattr(r, "provider", None), "props", None))
                     for r in args.resources]
            outcome = evaluate(views, config)
        except Exception as exc:  # noqa: BLE001 - fail closed
            report_violation(internal_error_message(name, "the stack", exc), None)
            return
        if outcome.violations or outcome.not_applicable is None:
            by_urn = {view.urn: view for view in views}
            for urn in screened_urns():
                subject = by_urn[urn].display() if urn in by_urn else urn
                for message in claim(urn, subject):
                    report_violation(message, urn)
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
