"""How the pack's time grows with the size of what it judges, and whose time it is.

Two shapes that generated requests found slow: one workload with many containers (one Analyze, and one
AnalyzeStack of it alone), and a stack of many workloads (one AnalyzeStack). Each container is pack_overhead's realistic one (security context, port,
probe, env, resources, volume mount), requesting a GPU; the stack's workloads have ``--stack-containers`` each,
in 20 namespaces, with no GPU quota, so gpu-quota-required reports every GPU container.

For each size, over the analyzer protocol (both packs started as the Pulumi CLI starts them, with lab.json; the
request built before the clock starts; runs alternating, medians):

- **pack**: policies/ as shipped;
- **no-op twin**: pack_overhead's generated pack with the same policies, validators doing nothing. Its time is
  pulumi-policy's own work per request (for every resource policy, Analyze converts the request's Struct with
  ``json_format.MessageToDict``, deserializes it and wraps it in its unknown-checking proxy; AnalyzeStack does
  that for every resource once per stack policy) plus gRPC. pack - twin is ours.

Then in-process (this process's heap frozen, the pack's collector thresholds), on the same requests, one run
each: the SDK's conversion alone, done as often as the SDK does
it (``MessageToDict`` + ``deserialize_properties`` + ``unknown_checking_proxy``), and our validators alone
(called directly on the proxied props, as the SDK calls them). "growth" is the pack's time over the previous
size's, and the ratio of the sizes (2.00/2x is linear).

    venv/bin/python -m bench.pack_scale [--containers 250,500,1000,2000] [--workloads 100,200,400]
                                        [--stack-containers 10] [--runs 3] [--compare-gc] [--profile]

``--compare-gc`` also serves each request in-process with Python's default collector thresholds and with the
pack's (gpu_policies/intake.py), alternating. ``--profile`` prints cProfile's top functions for the largest
Analyze and AnalyzeStack, served in-process by the SDK's own servicer, which is how the split was found.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import pstats
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.pack_overhead import PACK_DIR, _container, write_noop_pack

ROOT = Path(__file__).resolve().parent.parent
DEPLOYMENT = "kubernetes:apps/v1:Deployment"


def big_workload(containers: int, name: str = "big", namespace: str = "tenant-a") -> dict[str, Any]:
    spec = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container(f"c{i}", f"registry.example/app-{i % 7}:1.4.2", gpu=True)
                           for i in range(containers)],
            "volumes": [{"name": "cache", "emptyDir": {}}]}
    return {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def stack_of(workloads: int, containers: int) -> list[tuple[str, str, dict[str, Any]]]:
    return [(DEPLOYMENT, f"w{i}", big_workload(containers, f"w{i}", f"tenant-{i % 20}")) for i in range(workloads)]


def _median_time(action: Callable[[], Any], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def over_protocol(pack_dirs: dict[str, Path], cases: list[tuple[str, int, Any]], config: dict[str, Any],
                  runs: int) -> dict[tuple[str, str, int], float]:
    """(pack, shape, size) -> median seconds of one Analyze ("analyze") or AnalyzeStack ("stack")."""
    from contextlib import ExitStack

    from tools.analyzer import AnalyzerClient, PackProcess, Resource

    with ExitStack() as stack:
        # Both packs start before any gRPC channel opens here: a fork while this process's gRPC threads run
        # once crashed the second pack at start.
        processes = {label: stack.enter_context(PackProcess(path, python=PACK_DIR / "venv" / "bin" / "python"))
                     for label, path in pack_dirs.items()}
        clients = {}
        for label, process in processes.items():
            client = stack.enter_context(AnalyzerClient(process.address))
            client.handshake()  # the CLI's opening calls, as open_pack makes them
            client.configure_stack()
            client.get_analyzer_info()
            client.configure(config)
            clients[label] = client
        requests = {}
        for label, client in clients.items():
            for shape, size, payload in cases:
                if shape == "analyze":
                    requests[(label, shape, size)] = client.build_request(DEPLOYMENT, "big", payload)
                else:
                    requests[(label, shape, size)] = client.build_stack_request(
                        [Resource(t, n, p) for t, n, p in payload])
        for label, client in clients.items():  # warm up: imports, caches, the channel
            client.analyze_raw(requests[(label, "analyze", cases[0][1])])
        samples: dict[tuple[str, str, int], list[float]] = {key: [] for key in requests}
        for _ in range(runs):
            for shape, size, _payload in cases:
                for label, client in clients.items():  # alternate the packs within each size
                    send = client.analyze_raw if shape == "analyze" else client.analyze_stack_raw
                    request = requests[(label, shape, size)]
                    samples[(label, shape, size)].append(_median_time(lambda: send(request), 1))
        return {key: statistics.median(values) for key, values in samples.items()}


def _policies() -> tuple[list[Any], list[Any]]:
    if str(PACK_DIR) not in sys.path:
        sys.path.insert(0, str(PACK_DIR))
    from pulumi_policy import StackValidationPolicy

    from gpu_policies import (driver_documented, driver_pinning, gpu_quota, pinned_images, pod_security,
                              pod_security_exemptions, rbac_bindings, rbac_wildcards)

    policies = [driver_pinning.POLICY, driver_documented.POLICY, pod_security.POLICY, pod_security_exemptions.POLICY,
                pinned_images.POLICY, gpu_quota.POLICY, rbac_wildcards.POLICY, rbac_bindings.POLICY]
    return ([p for p in policies if not isinstance(p, StackValidationPolicy)],
            [p for p in policies if isinstance(p, StackValidationPolicy)])


def sdk_conversion(structs: list[Any], times: int) -> float:
    """Seconds for pulumi-policy's conversion of ``structs``, ``times`` each, as its servicer does it."""
    from google.protobuf import json_format
    from pulumi_policy.deserialize import deserialize_properties
    from pulumi_policy.proxy import unknown_checking_proxy

    started = time.perf_counter()
    for _ in range(times):
        for struct in structs:
            unknown_checking_proxy(deserialize_properties(json_format.MessageToDict(struct)))
    return time.perf_counter() - started


def our_validators(resources: list[tuple[str, str, dict[str, Any]]], config: dict[str, Any], stack: bool) -> float:
    """Seconds for our validators alone on ``resources`` behind the SDK's proxy: every resource policy on each
    (Analyze), or every stack policy once over all of them (AnalyzeStack)."""
    from pulumi_policy import (PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, ResourceValidationArgs,
                               StackValidationArgs)
    from pulumi_policy.policy import _NotApplicableError
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    resource_policies, stack_policies = _policies()
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    proxied = [(t, n, unknown_checking_proxy(p)) for t, n, p in resources]

    def ignore(message: str, urn: str | None = None) -> None:
        return None

    started = time.perf_counter()
    if stack:
        views = [PolicyResource(t, p, f"urn:{n}", n, opts, None, None, [], {}) for t, n, p in proxied]
        for policy in stack_policies:
            try:
                policy.validate(StackValidationArgs(views, dict(config.get(policy.name) or {})), ignore)
            except (_NotApplicableError, UnknownValueError):
                pass
    else:
        for type_, name, props in proxied:
            for policy in resource_policies:
                args = ResourceValidationArgs(type_, props, f"urn:{name}", name, opts, None,
                                              dict(config.get(policy.name) or {}))
                try:
                    policy.validate(args, ignore)
                except (_NotApplicableError, UnknownValueError):
                    pass
    return time.perf_counter() - started


def in_process_calls(cases: list[tuple[str, int, Any]], config: dict[str, Any]) -> list[tuple[str, int, Callable]]:
    """(shape, size, call) serving each case in-process with pulumi-policy's own servicer (not the screening
    subclass, which adds nothing to readable requests), configured with lab.json."""
    from pulumi.runtime.proto import analyzer_pb2
    from pulumi_policy import EnforcementLevel
    from pulumi_policy.policy import _PolicyAnalyzerServicer

    from tools.analyzer import LEVEL_VALUES, make_urn, to_struct

    resource_policies, stack_policies = _policies()
    servicer = _PolicyAnalyzerServicer("gpu-platform-guardrails", "0.0.1", resource_policies + stack_policies,
                                       EnforcementLevel.MANDATORY)
    configure = analyzer_pb2.ConfigureAnalyzerRequest()
    for policy in resource_policies + stack_policies:
        entry = configure.policyConfig[policy.name]
        entry.enforcementLevel = LEVEL_VALUES[policy.enforcement_level.value]
        if config.get(policy.name):
            entry.properties.update({k: v for k, v in config[policy.name].items() if k != "enforcementLevel"})
    servicer.Configure(configure, None)
    calls = []
    for shape, size, payload in cases:
        if shape == "analyze":
            request = analyzer_pb2.AnalyzeRequest(type=DEPLOYMENT, name="big", urn=make_urn(DEPLOYMENT, "big"),
                                                  properties=to_struct(payload))
            calls.append((shape, size, lambda r=request: servicer.Analyze(r, None)))
        else:
            stack_request = analyzer_pb2.AnalyzeStackRequest()
            for type_, name, props in payload:
                entry = stack_request.resources.add()
                entry.type, entry.name, entry.urn = type_, name, make_urn(type_, name)
                entry.properties.CopyFrom(to_struct(props))
            calls.append((shape, size, lambda r=stack_request: servicer.AnalyzeStack(r, None)))
    return calls


def compare_gc(cases: list[tuple[str, int, Any]], config: dict[str, Any], runs: int) -> None:
    """Each request served in-process with Python's default collector thresholds and with the pack's
    (gpu_policies/intake.py), alternating; medians."""
    from gpu_policies.intake import GC_THRESHOLDS

    calls = in_process_calls(cases, config)
    settings = {"default (700, 10, 10)": (700, 10, 10), f"pack's {GC_THRESHOLDS}": GC_THRESHOLDS}
    samples: dict[tuple[str, str, int], list[float]] = {}
    saved = gc.get_threshold()
    try:
        for _ in range(runs):
            for label, thresholds in settings.items():
                gc.set_threshold(*thresholds)
                for shape, size, call in calls:
                    gc.collect()
                    samples.setdefault((label, shape, size), []).append(_median_time(call, 1))
    finally:
        gc.set_threshold(*saved)
    print(f"\ncollector thresholds, in-process (pulumi-policy's servicer), median of {runs} runs, alternating:")
    for shape, size, _ in calls:
        default, raised = (statistics.median(samples[(label, shape, size)]) for label in settings)
        print(f"  {shape:12} {size:5}  default {default:7.3f} s   pack's {raised:7.3f} s   ratio {raised / default:.2f}")


def profile_sdk_servicer(cases: list[tuple[str, int, Any]], config: dict[str, Any]) -> None:
    """cProfile of the largest Analyze and AnalyzeStack served in-process by pulumi-policy's own servicer."""
    calls = in_process_calls(cases, config)
    for shape in ("analyze", "stack-of-one", "stack"):
        size, call = max(((s, c) for k, s, c in calls if k == shape), key=lambda c: c[0])
        profiler = cProfile.Profile()
        profiler.enable()
        call()
        profiler.disable()
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(14)
        print(f"\n--- cProfile: {shape} of size {size}, served by pulumi-policy's servicer in-process")
        print("\n".join(line for line in out.getvalue().splitlines()[6:] if line.strip()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="How the pack's time grows with workload and stack size.")
    parser.add_argument("--containers", default="250,500,1000,2000", help="containers of one workload (Analyze)")
    parser.add_argument("--workloads", default="100,200,400", help="workloads of one stack (AnalyzeStack)")
    parser.add_argument("--stack-containers", type=int, default=10, help="containers of each stack workload")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="also print cProfile of the largest of each")
    parser.add_argument("--compare-gc", action="store_true",
                        help="also time each request in-process with Python's default collector thresholds and "
                             "with the pack's")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.analyzer import PackError, load_policy_config, open_pack, to_struct

    config = load_policy_config(PACK_DIR / "config" / "lab.json")
    container_sizes = [int(n) for n in args.containers.split(",")]
    workload_sizes = [int(n) for n in args.workloads.split(",")]
    cases: list[tuple[str, int, Any]] = [("analyze", n, big_workload(n)) for n in container_sizes]
    cases += [("stack-of-one", n, [(DEPLOYMENT, "big", big_workload(n))]) for n in container_sizes]
    cases += [("stack", n, stack_of(n, args.stack_containers)) for n in workload_sizes]
    try:
        with open_pack(PACK_DIR, config) as client:
            info = client.get_analyzer_info()
    except PackError as error:
        print(f"pack_scale: {error}", file=sys.stderr)
        return 2
    timed = over_protocol({"pack": PACK_DIR, "twin": write_noop_pack(info)}, cases, config, args.runs)
    resource_policies, stack_policies = _policies()
    # In-process, the collector must not walk this process's own heap (every case's props): freeze it, and use
    # the pack's thresholds, so the figures are the pack process's.
    from gpu_policies.intake import GC_THRESHOLDS

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)

    print(f"pack_scale: one request each, over the analyzer protocol, median of {args.runs} runs; in-process once")
    header = (f"  {'request':40} {'pack s':>8} {'twin s':>8} {'ours s':>8} {'growth':>9} | "
              f"{'SDK conv s':>10} {'validators s':>12} {'ours %':>7}")
    print(header)
    previous: dict[str, tuple[float, int]] = {}
    for shape, size, payload in cases:
        pack_s, twin_s = timed[("pack", shape, size)], timed[("twin", shape, size)]
        if shape == "analyze":
            label = f"Analyze, 1 workload x {size} containers"
            conversion = sdk_conversion([to_struct(payload)], len(resource_policies))
            ours = our_validators([(DEPLOYMENT, "big", payload)], config, stack=False)
        else:
            label = (f"AnalyzeStack, 1 workload x {size} containers" if shape == "stack-of-one"
                     else f"AnalyzeStack, {size} workloads x {args.stack_containers} c.")
            conversion = sdk_conversion([to_struct(p) for _, _, p in payload], len(stack_policies))
            ours = our_validators(payload, config, stack=True)
        growth = ""
        if shape in previous:
            before_s, before_size = previous[shape]
            growth = f"{pack_s / before_s:.2f}/{size / before_size:g}x"
        previous[shape] = (pack_s, size)
        share = 100 * ours / (ours + conversion)
        print(f"  {label:40} {pack_s:8.3f} {twin_s:8.3f} {pack_s - twin_s:8.3f} {growth:>9} | "
              f"{conversion:10.3f} {ours:12.3f} {share:6.1f}%")
    print("  (twin: the same policies doing nothing = pulumi-policy's per-request work and gRPC; "
          "SDK conv: MessageToDict + deserialize + proxy, once per policy as the SDK does it)")
    if args.compare_gc:
        compare_gc(cases, config, args.runs)
    if args.profile:
        profile_sdk_servicer(cases, config)
    return 0


if __name__ == "__main__":
    sys.exit(main())
