"""Reports of an offline plan: readable text, JSON, SARIF 2.1.0 (GitHub code scanning) and JUnit XML."""
from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import yaml

from tools.mockrun import SECRET_PLACEHOLDER, UNKNOWN, is_secret
from tools.plan_locations import declared_at, relative
from tools.plan_model import HELM_RELEASE, Failure, Location, Plan, Problem, describe, is_manifest, namespace_of

EXEMPTION_POLICY = "pod-security-exemptions"
SCHEMA_RULE = "kubernetes-schema"
PLAN_ERROR_RULE = "plan-error"
INFORMATION_URI = "https://github.com/gpu-platform/gpu-platform"


def render(plan: Plan, format: str) -> str:
    return {"text": text, "json": as_json, "sarif": sarif, "junit": junit}[format](plan)


def render_failure(failure: Failure, format: str) -> str:
    """A plan that could not run, in a machine-readable format: each config or program problem at its line."""
    return {"json": failure_json, "sarif": failure_sarif, "junit": failure_junit}[format](failure)


def _where(location: Location | None, repository: Path | None) -> dict[str, Any] | None:
    if location is None:
        return None
    where: dict[str, Any] = {"file": relative(location.file, repository) if repository else location.file.as_posix(),
                             "line": location.line}
    if location.key:
        where["key"] = location.key
    return where


def redacted(value: Any) -> Any:
    """Inputs for people and files: secrets as a placeholder, unknowns named."""
    if is_secret(value):
        return SECRET_PLACEHOLDER
    if value == UNKNOWN:
        return "(unknown until apply)"
    if isinstance(value, dict):
        return {k: redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


# --- text ----------------------------------------------------------------------------------------------------

def text(plan: Plan) -> str:
    lines: list[str] = []
    add = lines.append
    custom = [r for r in plan.resources if r.custom]
    add(f"Offline plan of stack '{plan.stack}' ({_rel(plan.stack_file)}): Pulumi mock engine, no cluster contacted")
    if plan.interpreter:
        add(f"Program run with {plan.interpreter}")
    add("")
    add(f"Resources: {len(custom)} ({len(plan.resources) - len(custom)} components)")
    for type_token, count in sorted(Counter(r.type for r in custom).items()):
        add(f"  {count:4}  {type_token}")
    add("")
    add("By namespace:")
    by_namespace: dict[str, list[str]] = defaultdict(list)
    for resource in custom:
        by_namespace[namespace_of(resource)].append(describe(resource))
    for namespace in sorted(by_namespace):
        add(f"  {namespace}")
        for entry in sorted(by_namespace[namespace]):
            add(f"    {entry}")
    for release in (r for r in custom if r.type == HELM_RELEASE and r.inputs.get("chart") == "gpu-operator"):
        add("")
        lines.extend(release_summary(release, plan))
    add("")
    checked = len(plan.schema_results)
    add(f"Schemas: {checked - len(plan.invalid)} of {checked} manifests valid "
        f"(Kubernetes {plan.kubernetes_version} OpenAPI; custom resources against their CRDs)")
    for result in plan.invalid:
        where = _where(result.declared_at, plan.repository)
        at = f" at {where['file']}:{where['line']}" if where else ""
        add(f"  INVALID {result.resource} ({result.schema}){at}")
        for finding in result.findings:
            add(f"    {finding}")
    for note in plan.schema_notes:
        add(f"  note: {note}")
    for unchecked in plan.unchecked:
        add(f"  INCOMPLETE {unchecked.resource}: not checked, {unchecked.reason}")
    add("")
    if plan.pack:
        verdicts = [v for v in plan.verdicts if v.policy != EXEMPTION_POLICY]
        add(f"Policies: pack {plan.pack}, {len(plan.policies)} policies"
            + (f", config {plan.policy_config}" if plan.policy_config else ", no config file")
            + f": {len(plan.mandatory)} mandatory, {len(verdicts) - len(plan.mandatory)} advisory")
        by_policy: dict[str, list[Any]] = defaultdict(list)
        for verdict in verdicts:
            by_policy[verdict.policy].append(verdict)
        order = sorted(by_policy, key=lambda p: (by_policy[p][0].level != "mandatory", p))
        for policy in order:
            add(f"  [{by_policy[policy][0].level}] {policy}")
            for verdict in by_policy[policy]:
                at = ", ".join(f"{w['file']}:{w['line']}" for w in
                               (_where(where, plan.repository) for where in verdict.locations()) if w)
                add(f"    {verdict.resource}" + (f" ({at})" if at else ""))
                for line in verdict.message.splitlines():
                    add(f"      {line}")
        exemptions = [v for v in plan.verdicts if v.policy == EXEMPTION_POLICY]
        add("")
        add(f"Exemptions used: {len(exemptions)}")
        for verdict in exemptions:
            add(f"  {verdict.summary()}")
    else:
        add("Policies: not run (--no-policies)")
    add("")
    result = {0: "PASS", 1: "FAIL", 2: "INCOMPLETE"}[plan.exit_code]
    add(f"Result: {result} (exit {plan.exit_code})")
    return "\n".join(lines) + "\n"


def release_summary(release: Any, plan: Plan) -> list[str]:
    inputs = release.inputs
    values = inputs.get("values") if isinstance(inputs.get("values"), dict) else {}
    lines = [f"GPU operator release {inputs.get('name')} in namespace {inputs.get('namespace')}:",
             f"  chart    {inputs.get('chart')} {inputs.get('version')} from "
             f"{(inputs.get('repositoryOpts') or {}).get('repo', '(no repository)')}"]
    driver = values.get("driver") or {}
    if driver.get("enabled") is False:
        lines.append("  driver   pre-installed on the hosts (driver.enabled: false)")
    elif (driver.get("nvidiaDriverCRD") or {}).get("enabled"):
        pools = [r.inputs for r in plan.resources if r.type.endswith(":NVIDIADriver")]
        described = ", ".join(f"{p['metadata']['name']}={p['spec'].get('version')} on {p['spec'].get('nodeSelector')}"
                              for p in pools)
        lines.append(f"  driver   per pool (NVIDIADriver): {described or 'no pools'}")
    else:
        lines.append(f"  driver   {driver.get('version', 'chart default (unpinned!)')}, operator-managed")
    policy = driver.get("upgradePolicy") or {}
    if policy:
        drain = policy.get("drain") or {}
        deletion = policy.get("gpuPodDeletion") or {}
        lines.append(f"  upgrade  {policy.get('maxParallelUpgrades')} node(s) at a time, GPU pods deleted "
                     f"(timeout {deletion.get('timeoutSeconds')}s), drain {'on' if drain.get('enable') else 'off'}")
    config = (values.get("devicePlugin") or {}).get("config") or {}
    # The program creates the ConfigMap the chart names (components/sharing.py).
    data = next((r.inputs.get("data") or {} for r in plan.resources if r.type == "kubernetes:core/v1:ConfigMap"
                 and (r.inputs.get("metadata") or {}).get("name") == config.get("name")), {})
    if config.get("name") and data:
        profiles = []
        for name, document in sorted(data.items()):
            profiles.append(f"{name}={_sharing(document)}")
        lines.append(f"  sharing  default {config.get('default')}; {', '.join(profiles)} (ConfigMap {config.get('name')})")
    else:
        lines.append("  sharing  none (whole GPUs)")
    env = (values.get("toolkit") or {}).get("env") or []
    if env:
        lines.append("  toolkit  " + ", ".join(f"{e.get('name')}={e.get('value')}" for e in env))
    monitor = (values.get("dcgmExporter") or {}).get("serviceMonitor") or {}
    if monitor:
        lines.append(f"  metrics  DCGM exporter ServiceMonitor {'on' if monitor.get('enabled') else 'off'}"
                     + (f", labels {monitor.get('additionalLabels')}" if monitor.get("additionalLabels") else ""))
    return lines


def _sharing(document: str) -> str:
    try:
        sharing = (yaml.safe_load(document) or {}).get("sharing") or {}
    except yaml.YAMLError:
        return "unreadable"
    for strategy in ("mps", "timeSlicing"):
        if strategy in sharing:
            replicas = [r.get("replicas") for r in sharing[strategy].get("resources", [])]
            return f"{'MPS' if strategy == 'mps' else 'time-slicing'} x{replicas[0] if replicas else '?'}"
    return "whole GPU"


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return path.name


# --- json ----------------------------------------------------------------------------------------------------

def as_json(plan: Plan) -> str:
    document = {
        "stack": plan.stack,
        "exitCode": plan.exit_code,
        "kubernetesVersion": plan.kubernetes_version,
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom,
                       "protect": r.protect, "dependencies": r.dependencies, "inputs": redacted(r.inputs),
                       "declaredAt": _where(declared_at(r.frames, plan.program_dir), plan.repository)}
                      for r in plan.resources],
        "outputs": redacted(plan.outputs),
        "schemas": [{"urn": s.urn, "resource": s.resource, "schema": s.schema, "findings": s.findings,
                     "declaredAt": _where(s.declared_at, plan.repository)}
                    for s in plan.schema_results],
        "schemaNotes": plan.schema_notes,
        "unchecked": [{"urn": u.urn, "resource": u.resource, "reason": u.reason,
                       "declaredAt": _where(u.declared_at, plan.repository)} for u in plan.unchecked],
        "policyPack": plan.pack,
        "policyConfig": plan.policy_config,
        "violations": [_verdict(v, plan) for v in plan.verdicts if v.policy != EXEMPTION_POLICY],
        "exemptions": [_verdict(v, plan) for v in plan.verdicts if v.policy == EXEMPTION_POLICY],
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _verdict(verdict: Any, plan: Plan) -> dict[str, Any]:
    return {"policy": verdict.policy, "level": verdict.level, "severity": verdict.severity, "urn": verdict.urn,
            "resource": verdict.resource, "message": verdict.message,
            "declaredAt": _where(verdict.declared_at, plan.repository),
            "configKey": _where(verdict.config_key, plan.repository)}


def failure_json(failure: Failure) -> str:
    document = {"stack": failure.stack, "exitCode": 2, "error": failure.message,
                "problems": [{"message": p.message, "location": _where(p.where, failure.repository)}
                             for p in failure.problems]}
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


# --- sarif ---------------------------------------------------------------------------------------------------

SARIF_LEVELS = {"mandatory": "error", "advisory": "warning", "disabled": "none", "remediate": "error"}


def sarif(plan: Plan) -> str:
    rules = [{
        "id": policy.name,
        "name": _pascal(policy.name),
        "shortDescription": {"text": policy.description.split(". ")[0][:1000] or policy.name},
        "fullDescription": {"text": policy.description or policy.name},
        "help": {"text": policy.remediation_steps or policy.description or policy.name},
        "defaultConfiguration": {"level": SARIF_LEVELS.get(policy.enforcement_level, "warning")},
        "properties": {"severity": policy.severity, "policyType": policy.policy_type},
    } for policy in plan.policies]
    rules.append({
        "id": SCHEMA_RULE, "name": "KubernetesSchema",
        "shortDescription": {"text": "Manifest is valid for the cluster's Kubernetes OpenAPI schema or its CRD"},
        "fullDescription": {"text": "Each manifest is checked against the strict OpenAPI schema of the cluster's "
                                    "Kubernetes release; custom resources against their CRD's openAPIV3Schema."},
        "help": {"text": "Fix the field named in the message; unknown fields are rejected, as kubectl "
                         "--validate=strict would."},
        "defaultConfiguration": {"level": "error"},
    })
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    fallback = Location(plan.stack_file, 1)
    results = []
    for verdict in plan.verdicts:
        result: dict[str, Any] = {
            "ruleId": verdict.policy,
            "level": SARIF_LEVELS.get(verdict.level, "warning"),
            "message": {"text": verdict.summary()},
            "locations": [_sarif_location(where, plan.repository, verdict.urn or f"stack {plan.stack}")
                          for where in verdict.locations() or [fallback]],
        }
        if verdict.policy in index:
            result["ruleIndex"] = index[verdict.policy]
        results.append(result)
    for schema_result in plan.invalid:
        for finding in schema_result.findings:
            results.append({
                "ruleId": SCHEMA_RULE, "ruleIndex": index[SCHEMA_RULE], "level": "error",
                "message": {"text": f"{schema_result.resource} ({schema_result.schema}): {finding}"},
                "locations": [_sarif_location(schema_result.declared_at or fallback, plan.repository,
                                              schema_result.urn)],
            })
    for unchecked in plan.unchecked:  # shown, so that an incomplete plan does not read as a clean one
        results.append({
            "ruleId": SCHEMA_RULE, "ruleIndex": index[SCHEMA_RULE], "level": "warning",
            "message": {"text": f"{unchecked.resource}: not checked, {unchecked.reason}"},
            "locations": [_sarif_location(unchecked.declared_at or fallback, plan.repository, unchecked.urn)],
        })
    return _sarif_document(plan.stack, rules, results)


def _sarif_location(where: Location, repository: Path | None, resource: str = "") -> dict[str, Any]:
    location: dict[str, Any] = {"physicalLocation": {
        "artifactLocation": {"uri": relative(where.file, repository) if repository else where.file.as_posix()},
        "region": {"startLine": where.line}}}
    logical = [{"fullyQualifiedName": resource, "kind": "resource"}] if resource else []
    if where.key:
        logical.append({"fullyQualifiedName": where.key, "kind": "member"})
    if logical:
        location["logicalLocations"] = logical
    return location


def _sarif_document(stack: str, rules: list[dict[str, Any]], results: list[dict[str, Any]]) -> str:
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "gpu-platform-plan", "informationUri": INFORMATION_URI,
                                "semanticVersion": "0.1.0", "rules": rules}},
            "automationDetails": {"id": f"gpu-platform-plan/{stack}/"},
            "results": results,
        }],
    }
    return json.dumps(document, indent=2) + "\n"


def failure_sarif(failure: Failure) -> str:
    """The config or program errors as results, each at its stack-file key (or program) line."""
    rules = [{
        "id": PLAN_ERROR_RULE, "name": "PlanError",
        "shortDescription": {"text": "The stack config, the program and the policy-pack config are valid"},
        "fullDescription": {"text": "The program validates the whole stack config before it declares anything; "
                                    "a problem here means nothing was planned or checked."},
        "help": {"text": "Fix the key named in the message (the message says what is allowed)."},
        "defaultConfiguration": {"level": "error"},
    }]
    problems = failure.problems or [Problem(failure.message, Location(failure.stack_file, 1))]
    results = [{"ruleId": PLAN_ERROR_RULE, "ruleIndex": 0, "level": "error", "message": {"text": problem.message},
                "locations": [_sarif_location(problem.where, failure.repository)]} for problem in problems]
    return _sarif_document(failure.stack, rules, results)


def failure_junit(failure: Failure) -> str:
    suites = ElementTree.Element("testsuites", name=f"gpu-platform plan {failure.stack}")
    suite = ElementTree.SubElement(suites, "testsuite", name=PLAN_ERROR_RULE)
    problems = failure.problems or [Problem(failure.message, Location(failure.stack_file, 1))]
    for problem in problems:
        where = _where(problem.where, failure.repository) or {}
        case = ElementTree.SubElement(suite, "testcase", classname=PLAN_ERROR_RULE,
                                      name=where.get("key") or f"{where.get('file')}:{where.get('line')}",
                                      file=str(where.get("file")), line=str(where.get("line")))
        element = ElementTree.SubElement(case, "failure", message=problem.message.splitlines()[0], type="config")
        element.text = f"{where.get('file')}:{where.get('line')}: {problem.message}"
    suite.set("tests", str(len(problems)))
    suite.set("failures", str(len(problems)))
    suite.set("errors", "0")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


# --- junit ---------------------------------------------------------------------------------------------------

def junit(plan: Plan) -> str:
    suites = ElementTree.Element("testsuites", name=f"gpu-platform plan {plan.stack}")
    # file and line attributes (as pytest and most CI readers of JUnit use them): where each resource was declared
    places: dict[str, dict[str, str]] = {}
    for resource in plan.resources:
        where = _where(declared_at(resource.frames, plan.program_dir), plan.repository)
        places[resource.urn] = {"file": where["file"], "line": str(where["line"])} if where else {}
    schema_suite = ElementTree.SubElement(suites, "testsuite", name="kubernetes-schema")
    for result in plan.schema_results:
        case = ElementTree.SubElement(schema_suite, "testcase", classname="kubernetes-schema", name=result.resource,
                                      **places.get(result.urn, {}))
        if result.findings:
            failure = ElementTree.SubElement(case, "failure", message=f"invalid against {result.schema}",
                                             type="schema")
            failure.text = "\n".join(result.findings)
    custom = [r for r in plan.resources if r.custom]
    verdicts_by = defaultdict(list)
    for verdict in plan.verdicts:
        verdicts_by[(verdict.policy, verdict.urn)].append(verdict)
    for policy in plan.policies:
        suite = ElementTree.SubElement(suites, "testsuite", name=policy.name)
        subjects = ([(r.urn, describe(r)) for r in custom] if policy.policy_type == "resource"
                    else [("", f"stack {plan.stack}")])
        for urn, label in subjects:
            case = ElementTree.SubElement(suite, "testcase", classname=policy.name, name=label,
                                          **places.get(urn, {}))
            found = verdicts_by.get((policy.name, urn), [])
            if policy.policy_type == "stack":
                found = [v for (p, _), vs in verdicts_by.items() if p == policy.name for v in vs]
            for verdict in found:
                tag = "failure" if verdict.level == "mandatory" else "system-out"
                element = ElementTree.SubElement(case, tag, **({"message": verdict.message.splitlines()[0],
                                                                "type": verdict.level} if tag == "failure" else {}))
                element.text = verdict.summary()
    for suite in suites:
        cases = suite.findall("testcase")
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(sum(1 for c in cases if c.find("failure") is not None)))
        suite.set("errors", "0")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(suites, encoding="unicode") + "\n"


# --- manifests -------------------------------------------------------------------------------------------------

def write_manifests(plan: Plan, directory: Path) -> int:
    """One YAML file per resource, named after it (Helm releases as their release settings and values)."""
    directory.mkdir(parents=True, exist_ok=True)
    used: set[str] = set()
    for resource in (r for r in plan.resources if r.custom):
        if is_manifest(resource):
            document = redacted(resource.inputs)
        else:
            document = {"type": resource.type, "name": resource.name, "inputs": redacted(resource.inputs)}
        slug = re.sub(r"[^A-Za-z0-9.]+", "-", describe(resource)).strip("-").lower()
        name, suffix = slug, 2
        while name in used:
            name, suffix = f"{slug}-{suffix}", suffix + 1
        used.add(name)
        (directory / f"{name}.yaml").write_text(f"# {resource.urn}\n" + yaml.safe_dump(document, sort_keys=False))
    return len(used)
