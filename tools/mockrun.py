"""Run a Pulumi program under the Pulumi SDK's mock engine and record every resource it declares.

This is the official unit-test path of the Python SDK (`pulumi.runtime.set_mocks`): the program's real
`__main__.py` runs with a stack's config; instead of a deployment engine, a mock monitor records each
registration (type, name, parent, inputs, options). Secure config values become placeholders.
"""
from __future__ import annotations

import gc
import json
import os
import runpy
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

SECRET_PLACEHOLDER = "[secret]"
# How the engine marks a secret value on the wire; kept when inputs are recorded (see is_secret()).
SECRET_SIG = "4dabf18193072939515e22adb298388d"
# How the engine marks a value that is unknown during preview.
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


class StackFileError(Exception):
    """A stack file that cannot be read (not YAML, no `config` mapping)."""


@dataclass(frozen=True)
class StackFile:
    project: str
    stack: str
    config: dict[str, str]
    secret_keys: list[str]
    path: Path | None = None


@dataclass(frozen=True)
class Project:
    """What Pulumi.yaml tells the CLI about running a Python program."""

    name: str
    folder: Path  # the project folder (Pulumi.yaml's)
    main: Path  # `main:`: the program's folder (its __main__.py runs) or a .py file; default the project folder
    stack_config_dir: Path  # `stackConfigDir:`: where Pulumi.<stack>.yaml files are
    config: dict[str, Any]  # the project-level `config:` block (defaults and declarations)
    virtualenv: Path | None  # runtime.options.virtualenv (or uv's default .venv), as the CLI would use it


# The fields of a declared project-level config key (`key: {type: string, default: x}`), as the CLI reads them.
CONFIG_DECLARATION = {"type", "description", "default", "value", "secret", "items"}


def read_project(program_dir: Path) -> Project:
    """Pulumi.yaml: the project's name, where its program and stack files are, its config defaults, its venv."""
    project_file = program_dir / "Pulumi.yaml"
    try:
        document = yaml.safe_load(project_file.read_text())
        name = document["name"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as error:
        raise StackFileError(f"{project_file}: not a Pulumi project file ({error})") from None
    runtime = document.get("runtime")
    options = (runtime.get("options") or {}) if isinstance(runtime, dict) else {}
    virtualenv = options.get("virtualenv") or (".venv" if options.get("toolchain") == "uv" else None)
    main = program_dir / str(document.get("main") or ".")
    if not main.exists():
        raise StackFileError(f"{project_file}: main: {document.get('main')} does not exist in {program_dir}")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{project_file}: `config` must be a mapping of keys to values or declarations")
    return Project(name=str(name), folder=program_dir, main=main.resolve(),
                   stack_config_dir=program_dir / str(document.get("stackConfigDir") or "."),
                   config=config, virtualenv=program_dir / str(virtualenv) if virtualenv else None)


def _config_text(value: Any) -> str:
    """A config value as the CLI hands it to a program: every value a string, objects and lists as JSON."""
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def read_stack_file(program_dir: Path, stack: str) -> StackFile:
    """Pulumi.<stack>.yaml as the CLI hands it to a program, over the project-level defaults of Pulumi.yaml."""
    project = read_project(program_dir)
    stack_path = project.stack_config_dir / f"Pulumi.{stack}.yaml"
    try:
        # libyaml when PyYAML has it: a stack file of a large fleet is thousands of lines
        document = yaml.load(stack_path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    except OSError:
        raise StackFileError(f"no stack file {stack_path.name} in {stack_path.parent}") from None
    except yaml.YAMLError as error:
        raise StackFileError(f"{stack_path.name} is not valid YAML: {error}") from None
    except RecursionError:
        raise StackFileError(f"{stack_path.name} is nested deeper than any stack config needs") from None
    entries = document.get("config") or {} if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        raise StackFileError(f"{stack_path.name}: `config` must be a mapping of keys to values")
    config: dict[str, str] = {}
    secret_keys: list[str] = []
    try:
        for key, value in entries.items():
            key = str(key)  # YAML may read a key as a number
            full_key = key if ":" in key else f"{project.name}:{key}"
            if isinstance(value, dict) and set(value) == {"secure"}:
                config[full_key] = SECRET_PLACEHOLDER
                secret_keys.append(full_key)
            elif isinstance(value, (dict, list)):
                # `pulumi config set --secret --path` encrypts one value inside an object; the CLI then passes the
                # object decrypted and marks the whole key secret. Without the stack's key, a placeholder stands in.
                plain, nested_secret = _placeholders(value)
                config[full_key] = json.dumps(plain)
                if nested_secret:
                    secret_keys.append(full_key)
            else:
                config[full_key] = _config_text(value)
    except RecursionError:
        raise StackFileError(f"{stack_path.name} is nested deeper than any stack config needs") from None
    for key, declared in project.config.items():
        full_key = key if ":" in key else f"{project.name}:{key}"
        declaration = isinstance(declared, dict) and bool(declared) and set(declared) <= CONFIG_DECLARATION
        if declaration and declared.get("secret") and full_key in config and full_key not in secret_keys:
            raise StackFileError(f"{stack_path.name}: {full_key} must be a secret (Pulumi.yaml declares it "
                                 "`secret: true`); set it with `pulumi config set --secret`")
        if full_key in config:
            continue  # the stack's value wins over the project's default
        if not declaration:
            config[full_key] = _config_text(declared)  # the short form: the value is the default
        elif "value" in declared or "default" in declared:
            config[full_key] = _config_text(declared.get("value", declared.get("default")))
        else:
            raise StackFileError(f"{stack_path.name}: Stack '{stack}' is missing configuration value '{full_key}' "
                                 "(Pulumi.yaml declares it without a default)")
    return StackFile(project.name, stack, config, secret_keys, stack_path)


def _placeholders(value: Any) -> tuple[Any, bool]:
    """`value` with each nested `{secure: ...}` replaced by the placeholder, and whether there was one."""
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            return SECRET_PLACEHOLDER, True
        items = {key: _placeholders(item) for key, item in value.items()}
        return {key: item for key, (item, _) in items.items()}, any(found for _, found in items.values())
    if isinstance(value, list):
        items_list = [_placeholders(item) for item in value]
        return [item for item, _ in items_list], any(found for _, found in items_list)
    return value, False


@dataclass
class Registration:
    """One resource as the engine would receive it."""

    urn: str
    type: str
    name: str
    custom: bool
    parent: str
    inputs: dict[str, Any]
    protect: bool = False
    dependencies: list[str] = field(default_factory=list)
    provider: str = ""
    # Where the program declared it, as the SDK reports it to the engine (RegisterResourceRequest's
    # stackTrace, innermost first): (absolute file, line) pairs, SDK-internal frames without a file left out.
    frames: tuple[tuple[str, int], ...] = ()


@dataclass
class ProgramRun:
    resources: list[Registration]
    outputs: dict[str, Any]


class Recorder:
    """Installs the mock engine and records what a program registers (resources and stack outputs)."""

    def __init__(self, project: str, stack: str, *, preview: bool = True,
                 on_register: Callable[[Registration], None] | None = None):
        import pulumi
        from pulumi.runtime import mocks, rpc, settings

        self.project, self.stack = project, stack
        self.resources: list[Registration] = []
        self.outputs: dict[str, Any] = {}
        recorder = self

        class Mocks(pulumi.runtime.Mocks):
            def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
                if args.resource_id:  # a read (`.get`): the object as a cluster nobody else touched has it
                    return args.resource_id, {"metadata": {"name": args.resource_id}, "spec": {}, **args.inputs}
                return f"{args.name}-id", dict(args.inputs)

            def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[Any] | None]:
                return {}, None

        class Monitor(mocks.MockMonitor):
            def make_urn(self, parent: str, type_: str, name: str) -> str:
                # The engine's rule (pulumi/pulumi resource/urn.go): a child's type is its parent's whole
                # qualified type chain, `$`-joined, except that the root Stack is never part of it. The SDK's
                # mock keeps only the parent's last type and prefixes the Stack's; the real tier caught it.
                if parent and "::pulumi:pulumi:Stack::" not in parent:
                    type_ = f"{parent.split('::')[2]}${type_}"
                return f"urn:pulumi:{stack}::{project}::{type_}::{name}"

            def RegisterResource(self, request: Any) -> Any:
                response = super().RegisterResource(request)
                if request.type != "pulumi:pulumi:Stack":
                    registration = Registration(
                        urn=response.urn, type=request.type, name=request.name, custom=request.custom,
                        parent=request.parent, inputs=_plain(rpc.deserialize_properties(request.object, True)),
                        protect=request.protect, dependencies=list(request.dependencies),
                        provider=request.provider, frames=_frames(request))
                    recorder.resources.append(registration)
                    if on_register is not None:
                        on_register(registration)
                return response

            def RegisterResourceOutputs(self, request: Any) -> Any:
                if request.urn.endswith(f"::pulumi:pulumi:Stack::{project}-{stack}"):
                    recorder.outputs.update(_plain(rpc.deserialize_properties(request.outputs, True)))
                return super().RegisterResourceOutputs(request)

        settings.ROOT.set(None)
        monitor = Monitor(Mocks())
        mock_settings = mocks.MockSettings(
            monitor=monitor, engine=mocks.MockEngine(None), project=project, stack=stack, dry_run=preview,
            organization="organization", callbacks=None)
        mock_settings.monitor_features = set(monitor.GetDeploymentInfo(None).supportedFeatures)
        settings.configure(mock_settings)

    def start_stack(self) -> None:
        """Register a root Stack, as set_mocks does, for tests that declare components directly."""
        from pulumi.runtime.stack import Stack

        Stack()._finish()

    def by_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.resources if r.type == type_token]


# Cyclic-GC thresholds while the program runs. The program declares every resource before the SDK's event loop
# drains, so each resource's tasks, futures and Outputs stay alive together (about 650,000 tracked objects at
# 1,000 GPU nodes); with Python's defaults (700, 10, 10) the full collections that walk them all grew faster
# than the stack and cost about 40% of a 1,000-node plan. Fewer, later collections keep the plan linear; peak
# memory does not change (docs/benchmarks.md, "Fleet scale"). None keeps the interpreter's thresholds; the
# defaults come back after the run (kept for the whole plan, the schema checks' garbage raised its peak).
PROGRAM_GC_THRESHOLD: tuple[int, int, int] | None = (50_000, 20, 20)


def run_program(program_dir: Path, stack_file: StackFile, *, preview: bool = True,
                on_register: Callable[[Registration], None] | None = None) -> ProgramRun:
    """Run `program_dir/__main__.py` under mocks; raise whatever the program raises (e.g. pulumi.RunError).

    `on_register` sees each resource as it is registered (the plan streams them to the policy pack)."""
    from pulumi.runtime import config as runtime_config
    from pulumi.runtime import stack
    from pulumi.runtime.sync_await import _sync_await

    runtime_config.set_all_config(stack_file.config, stack_file.secret_keys)
    recorder = Recorder(stack_file.project, stack_file.stack, preview=preview, on_register=on_register)
    # As the language host runs it: Pulumi.yaml's `main:` (a folder's __main__.py, or a .py file), from its
    # folder, that folder first on sys.path.
    try:
        entry = read_project(program_dir).main
    except StackFileError:
        entry = program_dir
    folder = entry if entry.is_dir() else entry.parent
    main = folder / "__main__.py" if entry.is_dir() else entry
    added_path = str(folder) not in sys.path
    if added_path:
        sys.path.insert(0, str(folder))
    cwd = os.getcwd()
    os.chdir(folder)
    thresholds = gc.get_threshold()
    if PROGRAM_GC_THRESHOLD:
        gc.set_threshold(*PROGRAM_GC_THRESHOLD)
    try:
        _sync_await(stack.run_in_stack(lambda: runpy.run_path(str(main), run_name="__main__")))
    finally:
        gc.set_threshold(*thresholds)
        os.chdir(cwd)
        if added_path:
            sys.path.remove(str(folder))
    return ProgramRun(recorder.resources, recorder.outputs)


def _plain(value: Any) -> Any:
    """Plain JSON-like data: secrets in the engine's envelope, unknowns as the engine's sentinel, and
    integral numbers as ints (the wire carries every number as a double; Kubernetes schemas want integers)."""
    from pulumi.output import Unknown
    from pulumi.runtime import rpc

    if rpc.is_rpc_secret(value):
        return {SECRET_SIG: "1b47061264138c4ac30d75fd1eb44270", "value": _plain(rpc.unwrap_rpc_secret(value))}
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# file URI -> path, shared by every registration (a fleet's thousands of resources come from a few files).
_FRAME_FILES: dict[str, str] = {}
# Frames kept per resource: the innermost few outside installed packages hold the program's declaring line.
KEPT_FRAMES = 4


def _frames(request: Any) -> tuple[tuple[str, int], ...]:
    """Where the program declared a resource: the call stack the SDK sends with it (innermost first; its first
    frame is the request's sourcePosition), frames of installed packages and without a file left out."""
    from urllib.parse import unquote

    frames = []
    for frame in request.stackTrace.frames:
        uri = frame.pc.uri
        if not uri.startswith("file://") or "/site-packages/" in uri:
            continue
        path = _FRAME_FILES.get(uri)
        if path is None:
            path = _FRAME_FILES[uri] = unquote(uri[len("file://"):])
        frames.append((path, frame.pc.line))
        if len(frames) == KEPT_FRAMES:
            break
    return tuple(frames)


def config_problems_of(error: BaseException) -> list[tuple[str, str]] | None:
    """The (key path, message) pairs behind a program's pulumi.RunError, when it has them: this project's
    ConfigError (components/stack_config.py) is the context of the RunError it raises."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(getattr(cause, "problems", None), list):
        cause = cause.__context__
    if cause is None:
        return None
    try:
        return [(str(path), str(message)) for path, message in cause.problems]  # type: ignore[attr-defined]
    except (TypeError, ValueError):  # problems of another shape: the message alone still says it all
        return None


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and SECRET_SIG in value
