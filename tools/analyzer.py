"""Run a CrossGuard policy pack the way the Pulumi CLI does, and talk to it over the analyzer gRPC protocol.

The CLI starts a Python pack (pulumi/pulumi ``analyzer_plugin.go`` and the ``pulumi-analyzer-policy-python``
shim) with the pack directory as working directory::

    <pack>/venv/bin/python -u -m pulumi.policy <engineAddress> .

with ``PULUMI_CONFIG``, ``PULUMI_PROJECT``, ``PULUMI_STACK``, ``PULUMI_DRY_RUN`` and
``PULUMI_ORGANIZATION`` in the environment. ``pulumi.policy`` runs the pack's ``__main__.py``; its
``PolicyPack(...)`` serves gRPC on 127.0.0.1 and prints the port on stdout. The CLI then calls
Handshake (the Python SDK leaves it unimplemented), ConfigureStack, GetAnalyzerInfo, Configure (every
policy's enforcement level and properties, defaults from the config schemas filled in and the result
validated against them), Analyze for each resource and AnalyzeStack once. ``PackProcess`` (in
``tools.pack_process``, standard library only) and ``AnalyzerClient`` do the same; ``open_pack`` does all of
it in one ``with``.

Property values are marshalled as the engine does for analyzers: a value unknown during preview is the
string sentinel ``UNKNOWN_SENTINEL`` (pass ``UNKNOWN``), a secret is the signature envelope (wrap it in
``Secret``). Results come back as plain data: ``Diagnostic``, ``NotApplicable``, ``AnalyzeResult``.

Nothing here fakes the engine: no engine runs, so the engine address passed to the pack is one that
nothing listens on, as the pack never dials it.
"""
from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tools.pack_process import DEFAULT_PACK_DIR, PackError, PackProcess  # noqa: F401 - re-exported

UNKNOWN_SENTINEL = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_MAX_MESSAGE = 400 * 1024 * 1024  # the SDK's own server limit
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", _MAX_MESSAGE),
                    ("grpc.max_send_message_length", _MAX_MESSAGE)]

LEVEL_NAMES = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
               analyzer_pb2.DISABLED: "disabled", analyzer_pb2.REMEDIATE: "remediate"}
LEVEL_VALUES = {name: value for value, name in LEVEL_NAMES.items()}
SEVERITY_NAMES = {analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED: "", analyzer_pb2.POLICY_SEVERITY_LOW: "low",
                  analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium", analyzer_pb2.POLICY_SEVERITY_HIGH: "high",
                  analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical"}
POLICY_TYPES = {analyzer_pb2.POLICY_TYPE_UNKNOWN: "", analyzer_pb2.POLICY_TYPE_RESOURCE: "resource",
                analyzer_pb2.POLICY_TYPE_STACK: "stack"}


class ConfigInvalid(ValueError):
    """A policy-pack config that the CLI would refuse; ``errors`` lists each problem."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("policy pack configuration is invalid:\n  " + "\n  ".join(errors))
        self.errors = list(errors)


# --- property marshalling -----------------------------------------------------------------------------

class _Unknown:
    __slots__ = ()

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""A property value unknown during preview (marshalled as the engine's unknown sentinel)."""


@dataclass(frozen=True)
class Secret:
    """A secret property value (marshalled in the engine's secret envelope)."""

    value: Any


def marshal(value: Any) -> Any:
    """A property value as the engine sends it to analyzers (JSON-like, sentinels and envelopes)."""
    if value is UNKNOWN:
        return UNKNOWN_SENTINEL
    if isinstance(value, Secret):
        return {SECRET_SIG_KEY: SECRET_SIG, "value": marshal(value.value)}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        return float(value)  # protobuf Struct numbers are doubles, as the engine's are
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"property keys must be strings, got {key!r}")
            out[key] = marshal(item)
        return out
    if isinstance(value, (list, tuple)):
        return [marshal(item) for item in value]
    raise TypeError(f"cannot marshal a {type(value).__name__} as a Pulumi property value")


def to_struct(props: Mapping[str, Any] | None) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    if props:
        struct.update(marshal(props))
    return struct


# --- results -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Diagnostic:
    """One policy violation (or advisory note, or "can't run during preview" message)."""

    policy_name: str
    message: str            # as the SDK sends it: the policy's description, a newline, the violation
    urn: str
    enforcement_level: str  # advisory | mandatory | disabled | remediate
    severity: str           # low | medium | high | critical | "" (unspecified)
    description: str = ""
    policy_pack_name: str = ""
    policy_pack_version: str = ""

    @property
    def detail(self) -> str:
        """The violation message itself, without the description line the SDK puts first."""
        if self.description and self.message.startswith(self.description + "\n"):
            return self.message[len(self.description) + 1:]
        return self.message

    @property
    def mandatory(self) -> bool:
        return self.enforcement_level == "mandatory"


@dataclass(frozen=True)
class NotApplicable:
    policy_name: str
    reason: str


@dataclass(frozen=True)
class AnalyzeResult:
    """The answer to one Analyze or AnalyzeStack call."""

    diagnostics: tuple[Diagnostic, ...] = ()
    not_applicable: tuple[NotApplicable, ...] = ()

    @property
    def mandatory(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.enforcement_level == "mandatory")

    @property
    def advisory(self) -> tuple[Diagnostic, ...]:
        return tuple(d for d in self.diagnostics if d.enforcement_level == "advisory")

    def details(self, policy_name: str | None = None) -> list[str]:
        """The violation messages (without the description line), optionally of one policy."""
        return [d.detail for d in self.diagnostics if policy_name is None or d.policy_name == policy_name]

    def reasons(self, policy_name: str) -> list[str]:
        return [n.reason for n in self.not_applicable if n.policy_name == policy_name]


@dataclass(frozen=True)
class PolicyInfo:
    name: str
    description: str
    enforcement_level: str
    severity: str
    policy_type: str        # resource | stack
    config_schema: dict[str, Any]
    required: tuple[str, ...]
    remediation_steps: str
    display_name: str = ""


@dataclass(frozen=True)
class AnalyzerInfo:
    name: str
    version: str
    description: str
    supports_config: bool
    policies: tuple[PolicyInfo, ...]

    def policy(self, name: str) -> PolicyInfo:
        for policy in self.policies:
            if policy.name == name:
                return policy
        raise KeyError(name)


@dataclass(frozen=True)
class Provider:
    """The provider resource the engine sends along with a custom resource."""

    type: str = "pulumi:providers:kubernetes"
    name: str = "default"
    props: Mapping[str, Any] = field(default_factory=dict)
    urn: str = ""


@dataclass(frozen=True)
class Resource:
    """A resource as AnalyzeStack receives it (``props`` are its outputs, or inputs in preview)."""

    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    urn: str = ""
    provider: Provider | None = None
    parent: str = ""
    dependencies: tuple[str, ...] = ()


def make_urn(type_: str, name: str, stack: str = "lab", project: str = "gpu-platform") -> str:
    return f"urn:pulumi:{stack}::{project}::{type_}::{name}"


def _diagnostics(response: analyzer_pb2.AnalyzeResponse) -> AnalyzeResult:
    return AnalyzeResult(
        diagnostics=tuple(Diagnostic(
            policy_name=d.policyName, message=d.message, urn=d.urn,
            enforcement_level=LEVEL_NAMES.get(d.enforcementLevel, str(d.enforcementLevel)),
            severity=SEVERITY_NAMES.get(d.severity, str(d.severity)), description=d.description,
            policy_pack_name=d.policyPackName, policy_pack_version=d.policyPackVersion,
        ) for d in response.diagnostics),
        not_applicable=tuple(NotApplicable(n.policy_name, n.reason) for n in response.not_applicable),
    )


# --- config, as the CLI reconciles it --------------------------------------------------------------------

def reconcile_config(info: AnalyzerInfo, config: Mapping[str, Any] | None,
                     validate: bool = True) -> dict[str, tuple[str, dict[str, Any]]]:
    """policy name -> (enforcement level, properties), as the CLI computes them from a
    ``--policy-pack-config`` document: schema defaults, then "all", then each policy's entry; then each
    policy's properties validated against its schema (with jsonschema, when it is installed)."""
    result = {}
    for policy in info.policies:
        defaults = {k: v["default"] for k, v in policy.config_schema.items()
                    if isinstance(v, Mapping) and "default" in v}
        result[policy.name] = (policy.enforcement_level, defaults)
    errors: list[str] = []
    given: dict[str, tuple[str | None, dict[str, Any]]] = {}
    for name, value in (config or {}).items():
        if isinstance(value, str):
            if value not in LEVEL_VALUES:
                errors.append(f'parsing enforcement level for "{name}": "{value}" is not a valid enforcement level')
                continue
            given[name] = (value, {})
        elif isinstance(value, Mapping):
            props = dict(value)
            level = props.pop("enforcementLevel", None)
            if level is not None and level not in LEVEL_VALUES:
                errors.append(f'parsing enforcement level for "{name}": {level!r} is not a valid enforcement level')
                continue
            given[name] = (level, props)
        else:
            errors.append(f'parsing "{name}": {value!r} is not a valid value; must be a string or object')
    all_level = given.get("all", (None, {}))[0]
    if all_level:
        result = {name: (all_level, props) for name, (_, props) in result.items()}
    for name, (level, props) in given.items():
        if name == "all":
            continue
        base_level, base_props = result.get(name, ("advisory", {}))
        result[name] = (level or base_level, {**base_props, **props})
    if validate:
        errors.extend(_validate(info, result))
    if errors:
        raise ConfigInvalid(errors)
    return result


def _validate(info: AnalyzerInfo, config: Mapping[str, tuple[str, dict[str, Any]]]) -> list[str]:
    try:
        import jsonschema
    except ImportError:  # the CLI validates; without jsonschema this client leaves it to the pack
        return []
    errors = []
    for policy in info.policies:
        schema: dict[str, Any] = {"type": "object"}
        if policy.config_schema:
            schema["properties"] = policy.config_schema
        if policy.required:
            schema["required"] = list(policy.required)
        props = config.get(policy.name, ("", {}))[1]
        for error in jsonschema.Draft7Validator(schema).iter_errors(props):
            where = ".".join(str(p) for p in error.absolute_path)
            errors.append(f"{policy.name}: {where + ': ' if where else ''}{error.message}")
    return errors


# --- the pack process ----------------------------------------------------------------------------------------

# --- the client ----------------------------------------------------------------------------------------------

class PendingAnalysis:
    """An Analyze call in flight; ``result()`` waits for it."""

    def __init__(self, future: Any) -> None:
        self._future = future

    def result(self) -> AnalyzeResult:
        return _diagnostics(self._future.result())


class AnalyzerClient:
    """The engine's side of the analyzer protocol, returning plain data."""

    def __init__(self, address: str, *, timeout: float = 120.0, stack: str = "lab",
                 project: str = "gpu-platform") -> None:
        self.timeout = timeout
        self.stack, self.project = stack, project
        self._channel = grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
        grpc.channel_ready_future(self._channel).result(timeout=timeout)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)
        self._info: AnalyzerInfo | None = None

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> AnalyzerClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def handshake(self, root_directory: str = "", program_directory: str = "") -> bool:
        """True if the pack implements Handshake (the Python SDK does not; the CLI accepts that)."""
        try:
            self._stub.Handshake(analyzer_pb2.AnalyzerHandshakeRequest(
                engine_address="", root_directory=root_directory, program_directory=program_directory),
                timeout=self.timeout)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED:
                return False
            raise
        return True

    def configure_stack(self, *, organization: str = "organization", dry_run: bool = True,
                        tags: Mapping[str, str] | None = None, config: Mapping[str, str] | None = None) -> None:
        self._stub.ConfigureStack(analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization=organization, dry_run=dry_run,
            tags=dict(tags or {}), config=dict(config or {})), timeout=self.timeout)

    def get_analyzer_info(self) -> AnalyzerInfo:
        reply = self._stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=self.timeout)
        policies = tuple(PolicyInfo(
            name=p.name, description=p.description,
            enforcement_level=LEVEL_NAMES.get(p.enforcementLevel, str(p.enforcementLevel)),
            severity=SEVERITY_NAMES.get(p.severity, str(p.severity)),
            policy_type=POLICY_TYPES.get(p.policy_type, str(p.policy_type)),
            config_schema=json_format.MessageToDict(p.configSchema.properties),
            required=tuple(p.configSchema.required), remediation_steps=p.remediation_steps,
            display_name=p.displayName,
        ) for p in reply.policies)
        self._info = AnalyzerInfo(name=reply.name, version=reply.version, description=reply.description,
                                  supports_config=reply.supportsConfig, policies=policies)
        return self._info

    def configure(self, policy_config: Mapping[str, Any] | None = None, *, validate: bool = True) -> dict:
        """Send a ``--policy-pack-config`` document (policy -> level string or object with optional
        ``enforcementLevel`` and properties), reconciled as the CLI does: every policy gets its level
        and its properties with schema defaults. Returns what was sent."""
        info = self._info or self.get_analyzer_info()
        reconciled = reconcile_config(info, policy_config, validate=validate)
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for name, (level, props) in reconciled.items():
            entry = request.policyConfig[name]
            entry.enforcementLevel = LEVEL_VALUES[level]
            if props:
                entry.properties.update(props)
        self._stub.Configure(request, timeout=self.timeout)
        return reconciled

    def analyze(self, type_: str, name: str, props: Mapping[str, Any] | None = None, *, urn: str | None = None,
                provider: Provider | None = None, parent: str = "", protect: bool = False) -> AnalyzeResult:
        request = analyzer_pb2.AnalyzeRequest(
            type=type_, name=name, urn=urn or make_urn(type_, name, self.stack, self.project),
            properties=to_struct(props), options=analyzer_pb2.AnalyzerResourceOptions(protect=protect, parent=parent))
        if provider is not None:
            request.provider.CopyFrom(self._provider(provider))
        return _diagnostics(self._stub.Analyze(request, timeout=self.timeout))

    def analyze_async(self, request: analyzer_pb2.AnalyzeRequest) -> PendingAnalysis:
        """Send a prebuilt request without waiting (the pack works while the caller goes on)."""
        return PendingAnalysis(self._stub.Analyze.future(request, timeout=self.timeout))

    def analyze_raw(self, request: analyzer_pb2.AnalyzeRequest) -> analyzer_pb2.AnalyzeResponse:
        """Send a prebuilt request and return the protobuf reply (benchmarks time only the protocol)."""
        return self._stub.Analyze(request, timeout=self.timeout)

    def analyze_stack_raw(self, request: analyzer_pb2.AnalyzeStackRequest) -> analyzer_pb2.AnalyzeResponse:
        return self._stub.AnalyzeStack(request, timeout=self.timeout)

    def build_request(self, type_: str, name: str, props: Mapping[str, Any] | None = None, *,
                      urn: str | None = None, provider: Provider | None = None,
                      parent: str = "", protect: bool = False) -> analyzer_pb2.AnalyzeRequest:
        request = analyzer_pb2.AnalyzeRequest(type=type_, name=name,
                                              urn=urn or make_urn(type_, name, self.stack, self.project),
                                              properties=to_struct(props),
                                              options=analyzer_pb2.AnalyzerResourceOptions(protect=protect,
                                                                                           parent=parent))
        if provider is not None:
            request.provider.CopyFrom(self._provider(provider))
        return request

    def analyze_stack(self, resources: Sequence[Resource]) -> AnalyzeResult:
        return _diagnostics(self._stub.AnalyzeStack(self.build_stack_request(resources), timeout=self.timeout))

    def build_stack_request(self, resources: Sequence[Resource]) -> analyzer_pb2.AnalyzeStackRequest:
        request = analyzer_pb2.AnalyzeStackRequest()
        for resource in resources:
            entry = request.resources.add()
            entry.type, entry.name = resource.type, resource.name
            entry.urn = resource.urn or make_urn(resource.type, resource.name, self.stack, self.project)
            entry.properties.CopyFrom(to_struct(resource.props))
            entry.parent = resource.parent
            entry.dependencies.extend(resource.dependencies)
            if resource.provider is not None:
                entry.provider.CopyFrom(self._provider(resource.provider))
        return request

    def _provider(self, provider: Provider) -> analyzer_pb2.AnalyzerProviderResource:
        return analyzer_pb2.AnalyzerProviderResource(
            type=provider.type, name=provider.name, properties=to_struct(provider.props),
            urn=provider.urn or make_urn(provider.type, provider.name, self.stack, self.project))


@contextmanager
def open_pack(pack_dir: Path | str = DEFAULT_PACK_DIR, policy_config: Mapping[str, Any] | None = None, *,
              python: Path | str | None = None, stack: str = "lab", project: str = "gpu-platform",
              dry_run: bool = True, validate_config: bool = True) -> Iterator[AnalyzerClient]:
    """Start the pack and run the CLI's opening calls (Handshake, ConfigureStack, GetAnalyzerInfo,
    Configure); yields the client ready for ``analyze``/``analyze_stack``; stops the pack after."""
    with PackProcess(pack_dir, python=python, stack=stack, project=project, dry_run=dry_run) as process:
        try:
            client = AnalyzerClient(process.address, stack=stack, project=project)
        except grpc.FutureTimeoutError:
            raise PackError(f"the pack did not accept connections.\n{process.stderr_tail()}") from None
        try:
            client.handshake(str(Path(pack_dir).resolve()), str(Path(pack_dir).resolve()))
            client.configure_stack(dry_run=dry_run)
            client.get_analyzer_info()
            client.configure(policy_config, validate=validate_config)
            yield client
        finally:
            client.close()


def load_policy_config(path: Path | str) -> dict[str, Any]:
    """A ``--policy-pack-config`` file (JSON), as the CLI reads it."""
    text = Path(path).read_text()
    return json.loads(text) if text.strip() else {}


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m tools.analyzer [--config FILE]``: start the pack and print its policies."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", default=str(DEFAULT_PACK_DIR))
    parser.add_argument("--config", help="a --policy-pack-config JSON file")
    args = parser.parse_args(argv)
    config = load_policy_config(args.config) if args.config else None
    started = time.perf_counter()
    with open_pack(args.pack, config) as client:
        info = client.get_analyzer_info()
        print(f"{info.name} (started in {time.perf_counter() - started:.1f}s)")
        for policy in info.policies:
            print(f"  {policy.name:34} {policy.policy_type:8} {policy.enforcement_level:9} {policy.severity}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
