"""Offline plan and policy check of a stack: every resource and every policy verdict, without a cluster.

    python -m tools.plan --stack lab [--program-dir DIR] [--format text|json|sarif|junit] [--output FILE]
                         [--out DIR]

1. starts the policy pack exactly as the Pulumi CLI does (its own process, its own venv), in the background;
2. runs the program (Pulumi.yaml's `main:`, with its own virtualenv when that is not this one) under the
   Pulumi SDK's mock engine with the stack's config file over the project's config defaults (secure values
   as placeholders), and records every resource (type, name, parent, inputs, the line that declared it);
3. checks every Kubernetes manifest against the OpenAPI schema of the cluster's Kubernetes release and
   custom resources against their CRDs;
4. sends every resource to the pack over the analyzer gRPC protocol (Configure with the stack's
   policy-pack config, Analyze each resource, AnalyzeStack once) and reports, each finding at the program
   line that declared its resource and, when its value came from config, the stack file's key.

Exit codes: 0 clean; 1 a mandatory violation or an invalid manifest; 2 a config or program error, a report
that cannot be written, or an incomplete plan (a custom resource left unchecked: its CRD is missing from the
upstream data folder). With --format json|sarif|junit a config or program error is reported in that format
too, each problem at its key's line in the stack file.
"""
from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tools.plan_model import (HELM_RELEASE, Failure, Location, Plan, Problem, SchemaResult, Unchecked, Verdict,
                              describe, is_manifest)

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_KUBERNETES_VERSION = "1.34"


class PlanError(Exception):
    """A config or program error: reported with its message (no traceback), exit code 2.

    `problems` are its parts with where each is (a config key's line in the stack file, a program line), for
    the machine-readable reports; empty when there is nothing more precise than the message."""

    def __init__(self, message: str, problems: list[Problem] | None = None):
        super().__init__(message)
        self.problems = problems or []


# What the plan imports beyond the program's own requirements.txt (module -> the pip name, pinned in
# requirements-dev.txt). Checked before anything else, so a venv without them gets one line, not a traceback.
PLAN_NEEDS = {"yaml": "PyYAML", "pulumi": "pulumi", "grpc": "grpcio", "jsonschema": "jsonschema",
              "referencing": "referencing", "kubernetes_validate": "kubernetes-validate"}


def missing_modules() -> list[str]:
    import importlib.util

    return [package for module, package in PLAN_NEEDS.items() if importlib.util.find_spec(module) is None]


# --- the steps --------------------------------------------------------------------------------------------

class PolicyStream:
    """The policy pack, started as the CLI starts it, with resources streamed to it as the program registers them.

    A background thread starts the pack and runs the CLI's opening calls (Handshake, ConfigureStack,
    GetAnalyzerInfo, Configure) while the program is still being imported and run; then each registered
    resource goes out as an asynchronous Analyze call, so the pack judges it while the program goes on.
    `finish()` collects the verdicts and sends AnalyzeStack with every resource.
    """

    _DONE = object()
    # The thread that sends the requests needs the GIL for a moment per request while the program holds it;
    # with Python's 5 ms switch interval it waited so long that a 1,000-node plan had sent a tenth of its
    # requests when the program ended, and the pack did most of its work after. At 1 ms they go out as the
    # program runs (the 1,000-node plan about 1 s faster, docs/benchmarks.md "Fleet scale").
    SWITCH_INTERVAL = 0.001

    def __init__(self, pack_dir: Path, stack: str, project: str, config: dict[str, Any] | None):
        from tools.pack_process import PackError, PackProcess

        self.process = PackProcess(pack_dir, stack=stack, project=project)
        self.stack, self.project, self.config = stack, project, config
        self.client: Any = None
        self.info: Any = None
        self.error: Exception | None = None
        self.pending: list[tuple[str, Any]] = []
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(self._switch_interval, self.SWITCH_INTERVAL))
        try:
            self.process.launch()  # first: the pack's start-up overlaps everything that follows
        except PackError as error:
            self.error = error
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def submit(self, registration: Any) -> None:
        if registration.custom:
            self._queue.put(registration)

    def _run(self) -> None:
        from tools.analyzer import AnalyzerClient, Provider

        try:
            if self.error is None:
                self.process.wait_for_port()
                self.client = AnalyzerClient(self.process.address, stack=self.stack, project=self.project)
                self.client.handshake(str(self.process.pack_dir), str(self.process.pack_dir))
                self.client.configure_stack(dry_run=True)
                self.info = self.client.get_analyzer_info()
                self.client.configure(self.config)
        except Exception as error:  # noqa: BLE001 - reported by finish()
            self.error = error
        while (registration := self._queue.get()) is not self._DONE:
            if self.error is not None:
                continue
            request = self.client.build_request(
                registration.type, registration.name, registration.inputs, urn=registration.urn,
                provider=Provider() if registration.type.startswith("kubernetes:") else None,
                parent=registration.parent, protect=registration.protect)
            self.pending.append((registration.urn, self.client.analyze_async(request)))

    def finish(self, resources: list[Any]) -> tuple[Any, list[tuple[Any, str]]]:
        """(analyzer info, [(diagnostic, urn)]) once every Analyze is answered and AnalyzeStack has run."""
        from tools.analyzer import ConfigInvalid, Provider, Resource

        self._queue.put(self._DONE)
        self._thread.join()
        if isinstance(self.error, ConfigInvalid):
            raise PlanError(str(self.error))
        if self.error is not None:
            raise PlanError(f"the policy pack could not be started: {self.error}")
        diagnostics = [(d, urn) for urn, pending in self.pending for d in pending.result().diagnostics]
        stack = self.client.analyze_stack([
            Resource(type=r.type, name=r.name, props=r.inputs, urn=r.urn, parent=r.parent,
                     dependencies=tuple(r.dependencies),
                     provider=Provider() if r.type.startswith("kubernetes:") else None)
            for r in resources if r.custom])
        return self.info, diagnostics + [(d, d.urn) for d in stack.diagnostics]

    def stop(self) -> None:
        self._queue.put(self._DONE)
        self._thread.join()
        sys.setswitchinterval(self._switch_interval)
        if self.client is not None:
            self.client.close()
        self.process.kill()


def run_program(program_dir: Path, stack: str, on_register: Any = None) -> tuple[Any, Any, str]:
    """(stack file, the program's run, which Python ran it): in-process, or in the program's own virtualenv."""
    import pulumi

    from tools.mockrun import StackFileError, config_problems_of, read_project, read_stack_file
    from tools.mockrun import run_program as run
    from tools.program_venv import ChildError, interpreter, run_in

    stack_path = stack_file_path(program_dir, stack)
    try:
        stack_file = read_stack_file(program_dir, stack)
        python, how = interpreter(read_project(program_dir))
    except StackFileError as error:
        raise PlanError(str(error), [Problem(str(error), Location(stack_path, 1))]) from None
    try:
        if python is not None:
            return stack_file, run_in(python, program_dir, stack_file, on_register=on_register), how
        return stack_file, run(program_dir, stack_file, on_register=on_register), how
    except ChildError as error:
        if error.kind == "run":
            raise PlanError(str(error), config_problems(error.problems, str(error), stack_path,
                                                        stack_file.project)) from None
        frame = Location(Path(error.frame[0]), error.frame[1]) if error.frame else None
        raise _program_failure(str(error), frame, program_dir, stack_path) from None
    except pulumi.RunError as error:
        raise PlanError(str(error), config_problems(config_problems_of(error), str(error), stack_path,
                                                    stack_file.project)) from None
    except Exception as error:  # noqa: BLE001 - a program bug: say what and where, not a traceback
        raise _program_failure(f"{type(error).__name__}: {error}", _program_frame(error, program_dir),
                               program_dir, stack_path) from None


def _program_failure(error: str, frame: Location | None, program_dir: Path, stack_path: Path) -> PlanError:
    from tools.plan_locations import relative

    where = f" (at {relative(frame.file, program_dir)}:{frame.line})" if frame else ""
    message = f"the program failed: {error}{where}"
    return PlanError(message, [Problem(message, frame or Location(stack_path, 1))])


def stack_file_path(program_dir: Path, stack: str) -> Path:
    """Pulumi.<stack>.yaml in the project's stackConfigDir (the project folder by default)."""
    from tools.mockrun import StackFileError, read_project

    try:
        return read_project(program_dir).stack_config_dir / f"Pulumi.{stack}.yaml"
    except StackFileError:
        return program_dir / f"Pulumi.{stack}.yaml"


def config_problems(problems: list[tuple[str, str]] | None, message: str, stack_path: Path,
                    project: str) -> list[Problem]:
    """Each problem of a config error at its key's line in the stack file; without (key, message) pairs, the
    whole message at the stack file's `config:` line."""
    from tools.plan_locations import StackFileLines

    lines = StackFileLines(stack_path, project)
    if problems is None:
        return [Problem(message, lines.location(""))]
    return [Problem(f"{key}: {text}" if key else text, lines.location(key)) for key, text in problems]


def _program_frame(error: BaseException, program_dir: Path) -> Location | None:
    import traceback

    frames = [f for f in traceback.extract_tb(error.__traceback__) if str(program_dir) in f.filename
              and "site-packages" not in f.filename]
    if not frames:
        return None
    return Location(Path(frames[-1].filename), frames[-1].lineno or 1)


def kubernetes_version_of(stack_file: Any, override: str | None) -> str:
    if override:
        return override
    cluster = stack_file.config.get(f"{stack_file.project}:cluster")
    try:
        return str(json.loads(cluster)["kubernetesVersion"]) if cluster else DEFAULT_KUBERNETES_VERSION
    except (ValueError, KeyError, TypeError):
        return DEFAULT_KUBERNETES_VERSION


def check_schemas(plan: Plan) -> None:
    from tools.k8s_schema import CrdSchemas, SchemaNotFound, upstream_crd_files, validate
    from tools.plan_locations import declared_at

    charts = [r.inputs.get("version") for r in plan.resources
              if r.type == HELM_RELEASE and r.inputs.get("chart") == "gpu-operator"]
    chart = str(charts[0]) if charts else "v26.7.0"
    crd_files, missing = crd_source(chart)
    crds = CrdSchemas(crd_files) if crd_files else None
    manifests = [r for r in plan.resources if is_manifest(r)]
    for resource in manifests:
        manifest = _unwrap_secrets(resource.inputs)
        api_version, kind = str(manifest.get("apiVersion")), str(manifest.get("kind"))
        group = api_version.split("/")[0] if "/" in api_version else ""
        custom_group = "." in group and not group.endswith(".k8s.io")
        try:
            findings = validate(manifest, kubernetes_version=plan.kubernetes_version, crds=crds)
        except SchemaNotFound as error:
            if not custom_group:
                findings = [str(error)]
            elif missing and group in UPSTREAM_CRD_GROUPS:
                # The upstream data should have had its CRD: the check did not run, so the plan is incomplete.
                plan.unchecked.append(Unchecked(resource.urn, describe(resource), missing,
                                                declared_at(resource.frames, plan.program_dir)))
                continue
            else:
                plan.schema_notes.append(f"{describe(resource)}: not checked, {error} "
                                         f"(the upstream data folder has CRDs of {', '.join(UPSTREAM_CRD_GROUPS)})")
                continue
        schema = (f"CRD {api_version}/{kind}" if crds is not None and crds.knows(api_version, kind)
                  else f"Kubernetes {plan.kubernetes_version} OpenAPI")
        plan.schema_results.append(SchemaResult(resource.urn, describe(resource), schema,
                                                [str(f) for f in findings],
                                                declared_at(resource.frames, plan.program_dir)))


# The custom resource groups whose CRDs the upstream data folder holds (tools/k8s_schema.upstream_crd_files).
UPSTREAM_CRD_GROUPS = ("nvidia.com", "monitoring.coreos.com")


def crd_source(chart: str) -> tuple[list[Path], str]:
    """The CRD files for `chart`, and what is missing (empty when nothing is): which setting was used, where
    it looked, and the fix."""
    from tools.k8s_schema import upstream_crd_files
    from tools.upstream import ENV_VAR, upstream_dir

    upstream = upstream_dir()
    source = (f"{ENV_VAR}={os.environ[ENV_VAR]}" if os.environ.get(ENV_VAR)
              else f"the default ../shared/upstream beside the project ({ENV_VAR} is not set)")
    fix = f"set {ENV_VAR} to the folder that holds gpu-operator/<tag>/crds/ and prometheus-operator/"
    if not (upstream / "gpu-operator").is_dir():
        return [], f"no CRD schemas: {upstream} has no gpu-operator/ folder (from {source}); {fix}"
    files = upstream_crd_files(upstream, chart)
    if not any(f.parent.name == "crds" for f in files):
        return files, (f"no CRD schemas of gpu-operator {chart} (or its minor release) in {upstream / 'gpu-operator'} "
                       f"(from {source}); {fix}")
    if not any(f.parent.name == "prometheus-operator" for f in files):
        return files, f"no prometheus-operator CRDs in {upstream} (from {source}); {fix}"
    return files, ""


def _unwrap_secrets(value: Any) -> Any:
    from tools.mockrun import SECRET_PLACEHOLDER, is_secret

    if is_secret(value):
        return _unwrap_secrets(value["value"]) if not isinstance(value["value"], str) else SECRET_PLACEHOLDER
    if isinstance(value, dict):
        return {k: _unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unwrap_secrets(v) for v in value]
    return value


def record_verdicts(plan: Plan, stream: PolicyStream, project: str) -> None:
    from tools.plan_locations import StackFileLines, config_source, declared_at

    info, diagnostics = stream.finish(plan.resources)
    plan.pack = info.name
    plan.policies = list(info.policies)
    by_urn = {r.urn: r for r in plan.resources}
    leaves = StackFileLines(plan.stack_file, project).leaves() if diagnostics else []
    for diagnostic, urn in diagnostics:
        resource = by_urn.get(urn)
        plan.verdicts.append(Verdict(
            policy=diagnostic.policy_name, level=diagnostic.enforcement_level, severity=diagnostic.severity,
            urn=urn, resource=describe(resource) if resource else (urn or "the stack"), message=diagnostic.detail,
            declared_at=declared_at(resource.frames, plan.program_dir) if resource else None,
            config_key=config_source(diagnostic.detail, resource.inputs, leaves) if resource else None))


def make_plan(program_dir: Path, stack: str, *, pack_dir: Path | None, policy_config: Path | None,
              kubernetes_version: str | None = None) -> Plan:
    from tools.plan_locations import repository_root

    started = time.perf_counter()
    config = None
    config_path = policy_config or (ROOT / "policies" / "config" / f"{stack}.json")
    if pack_dir is not None and config_path.exists():
        from tools.analyzer import load_policy_config

        try:
            config = load_policy_config(config_path)
        except (OSError, ValueError) as error:
            message = f"policy-pack config {config_path}: {error}"
            raise PlanError(message, [Problem(message, Location(config_path.resolve(), 1))]) from None
    elif policy_config is not None:
        raise PlanError(f"policy-pack config {policy_config} does not exist")  # nothing to point at
    stream = PolicyStream(pack_dir, stack, _project_name(program_dir), config) if pack_dir is not None else None
    try:
        stack_file, run, interpreter = run_program(program_dir, stack, on_register=stream.submit if stream else None)
        plan = Plan(stack=stack, program_dir=program_dir,
                    stack_file=stack_file.path or stack_file_path(program_dir, stack),
                    resources=run.resources, outputs=run.outputs,
                    kubernetes_version=kubernetes_version_of(stack_file, kubernetes_version),
                    policy_config=_relative(config_path) if config is not None else "",
                    repository=repository_root(program_dir), interpreter=interpreter)
        plan.timings["program"] = time.perf_counter() - started
        check_schemas(plan)
        plan.timings["schemas"] = time.perf_counter() - started
        if stream is not None:
            try:
                record_verdicts(plan, stream, stack_file.project)
            except PlanError as error:
                if plan.policy_config:
                    message = f"{error} ({plan.policy_config})"
                    raise PlanError(message, [Problem(message, Location(config_path.resolve(), 1))]) from None
                raise
            plan.timings["policies"] = time.perf_counter() - started
        return plan
    finally:
        if stream is not None:
            stream.stop()


def _project_name(program_dir: Path) -> str:
    import yaml

    try:
        return str(yaml.safe_load((program_dir / "Pulumi.yaml").read_text())["name"])
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        raise PlanError(f"{program_dir} has no readable Pulumi.yaml (is it a Pulumi program directory?)") from None


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml is used")
    parser.add_argument("--program-dir", type=Path, default=ROOT, help="a Pulumi program directory (default: this one)")
    parser.add_argument("--policy-pack", type=Path, default=ROOT / "policies", help="the policy pack directory")
    parser.add_argument("--policy-pack-config", type=Path, help="default: policies/config/<stack>.json if present")
    parser.add_argument("--no-policies", action="store_true", help="skip the policy pack")
    parser.add_argument("--kubernetes-version", help="default: the stack's cluster.kubernetesVersion, else 1.34")
    parser.add_argument("--format", choices=["text", "json", "sarif", "junit"], default="text")
    parser.add_argument("--output", type=Path, help="write the report to this file instead of stdout")
    parser.add_argument("--out", type=Path, help="write one manifest per resource into this directory")
    args = parser.parse_args(argv)

    missing = missing_modules()
    if missing:
        print(f"plan: this Python ({sys.executable}) lacks {', '.join(missing)}, which the offline plan needs "
              "beside the program's requirements.txt; run `python3 dev.py setup` (it builds ./venv from "
              "requirements-dev.txt) and use venv/bin/python, or `pip install -r requirements-dev.txt`",
              file=sys.stderr)
        return 2
    problem = output_problem(args.output, args.out)
    if problem:
        print(f"plan: {problem}", file=sys.stderr)
        return 2
    from tools import plan_report

    program_dir = args.program_dir.resolve()
    try:
        plan = make_plan(program_dir, args.stack, pack_dir=None if args.no_policies else args.policy_pack.resolve(),
                         policy_config=args.policy_pack_config, kubernetes_version=args.kubernetes_version)
    except PlanError as error:
        print(f"plan: {error}", file=sys.stderr)
        if args.format != "text":  # CI reads these: they report the failure too (a SARIF upload finds it)
            from tools.plan_locations import repository_root

            failure = Failure(stack=args.stack, message=str(error), stack_file=stack_file_path(program_dir, args.stack),
                              repository=repository_root(program_dir), problems=error.problems)
            if not emit(plan_report.render_failure(failure, args.format), args.output):
                return 2
        return 2
    if not emit(plan_report.render(plan, args.format), args.output):
        return 2
    if args.out:
        try:
            written = plan_report.write_manifests(plan, args.out)
        except OSError as error:
            print(f"plan: cannot write the manifests into {args.out}: {error.strerror or error}", file=sys.stderr)
            return 2
        print(f"plan: wrote {written} manifests to {args.out}", file=sys.stderr)
    for reason in dict.fromkeys(u.reason for u in plan.unchecked):
        names = [u.resource for u in plan.unchecked if u.reason == reason]
        print(f"plan: INCOMPLETE, {len(names)} custom resource(s) not checked ({', '.join(names[:3])}"
              f"{', ...' if len(names) > 3 else ''}): {reason}", file=sys.stderr)
    return plan.exit_code


def output_problem(output: Path | None, out: Path | None) -> str:
    """Why the report or the manifests could not be written where asked (checked before the plan runs)."""
    if output is not None:
        if output.is_dir():
            return f"--output {output} is a folder; --output takes the report's file name"
        if not output.parent.is_dir():
            return f"--output {output}: the folder {output.parent} does not exist; create it first"
    if out is not None:
        if out.exists() and not out.is_dir():
            return f"--out {out} is a file; --out takes a folder to write one manifest per resource into"
        existing = next((p for p in out.parents if p.exists()), None)
        if existing is not None and not existing.is_dir():
            return f"--out {out}: {existing} is a file, not a folder"
    return ""


def emit(report: str, output: Path | None) -> bool:
    """Write the report to `output` (or stdout); False, with a one-line message, when that fails."""
    if output is None:
        sys.stdout.write(report)
        return True
    try:
        output.write_text(report)
    except OSError as error:
        print(f"plan: cannot write the report to {output}: {error.strerror or error}", file=sys.stderr)
        return False
    return True


if __name__ == "__main__":
    exit_code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Nothing is left to finalize (reports are written and flushed, the pack is ended), and tearing down
    # the interpreter with the SDK's gRPC and asyncio threads costs about a quarter of a second.
    os._exit(exit_code)
