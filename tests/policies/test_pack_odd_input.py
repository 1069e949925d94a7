"""Odd input that generated analyzer requests found: it must end in a clear finding or a bound, never in an
exception that fails the RPC (and with it the user's whole preview).

- Numbers that JSON cannot hold (NaN, Infinity) in a resource's properties: pulumi-policy's conversion of the
  request refuses them before any policy runs.
- Properties nested deeper than the SDK's recursive conversion can follow (about 200 levels under Python's
  default recursion limit).

The requests are built and sent as the engine sends them, to the pack started as the CLI starts it."""
from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpu_policies.intake import MAX_DEPTH, screen_struct
from tools.analyzer import AnalyzerClient, Provider, Resource, make_urn

from policy_factories import restricted_pod_spec, workload
from test_pack_robustness import TYPES, json_values, shaped_resource

DEPLOYMENT = "kubernetes:apps/v1:Deployment"
QUOTA = "kubernetes:core/v1:ResourceQuota"
NON_FINITE = [(float("nan"), "NaN"), (float("inf"), "Infinity"), (float("-inf"), "-Infinity")]
RUN_AS_USER = "spec.template.spec.containers[0].securityContext.runAsUser"


def non_finite_message(subject: str, path: str, spelled: str) -> str:
    return (f"{subject}: {path} is {spelled}, a number that JSON and the Kubernetes API cannot hold (the pack read "
            f'it as the string "{spelled}"). Fix: set a finite number.')


def deep(levels: int, leaf: Any = "x") -> Any:
    """``{"a": {"a": ... leaf}}``, ``levels`` objects deep."""
    value = leaf
    for _ in range(levels):
        value = {"a": value}
    return value


def screen_findings(result: Any) -> list[tuple[str, str, str]]:
    """(policy, level, message) of every finding about input the pack had to screen."""
    return [(d.policy_name, d.enforcement_level, d.detail) for d in result.diagnostics
            if "cannot hold" in d.detail or "levels deep" in d.detail or "read as sent" in d.detail]


@pytest.mark.parametrize(("number", "spelled"), NON_FINITE, ids=[s for _, s in NON_FINITE])
def test_a_number_json_cannot_hold_is_a_finding_not_an_rpc_error(pack: AnalyzerClient, number: float,
                                                                 spelled: str) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["securityContext"]["runAsUser"] = number
    result = pack.analyze(DEPLOYMENT, "odd", workload("Deployment", spec, name="odd"))
    assert screen_findings(result) == [("pod-security-standards", "mandatory",
                                        non_finite_message("Deployment tenant-a/odd", RUN_AS_USER, spelled))]
    # The policies still judge the rest, and the screened value fails closed where a policy reads it.
    assert f'{RUN_AS_USER} is "{spelled}". Fix: set a non-zero user ID' in "\n".join(result.details())


def test_many_screened_values_are_listed_up_to_five_and_counted(pack: AnalyzerClient) -> None:
    props = workload("Deployment", name="odd")
    props["spec"]["replicas"] = [float("nan")] * 8
    details = [d for _, _, d in screen_findings(pack.analyze(DEPLOYMENT, "odd", props))]
    assert details == [non_finite_message("Deployment tenant-a/odd", f"spec.replicas[{i}]", "NaN")
                       for i in range(5)] + [
        "Deployment tenant-a/odd: 3 more values could not be read as sent (numbers JSON cannot hold, or nesting "
        "past 64 levels). Fix: correct them as above."]


def test_a_non_finite_number_in_the_provider_is_screened_too(pack: AnalyzerClient) -> None:
    result = pack.analyze(DEPLOYMENT, "odd", workload("Deployment", name="odd"),
                          provider=Provider(props={"namespace": "tenant-a", "timeout": float("inf")}))
    assert screen_findings(result) == [("pod-security-standards", "mandatory", non_finite_message(
        "Deployment tenant-a/odd", "the provider's timeout", "Infinity"))]


@pytest.mark.parametrize("levels", [200, 300])  # the SDK follows about 200; the client marshals 300
def test_props_nested_too_deep_are_cut_at_the_bound_with_a_finding(pack: AnalyzerClient, levels: int) -> None:
    props = workload("Deployment", name="odd")
    props["spec"]["template"]["metadata"]["annotations"] = {"note": "kept"}
    props["spec"]["strategy"] = deep(levels)
    result = pack.analyze(DEPLOYMENT, "odd", props)
    assert screen_findings(result) == [("pod-security-standards", "mandatory", (
        f"Deployment tenant-a/odd: spec.strategy.a.a.a.a.a.a.a.a.a.a.a.a.a… (level {MAX_DEPTH}) nests objects or "
        f"lists more than {MAX_DEPTH} levels deep (the pack read what lies below as not set). Fix: flatten it; no "
        f"Kubernetes object nests this deep."))]


def test_what_the_sdk_reads_as_sent_is_not_screened(pack: AnalyzerClient) -> None:
    props = workload("Deployment", name="fine")
    props["spec"]["strategy"] = deep(100)
    assert pack.analyze(DEPLOYMENT, "fine", props).diagnostics == ()


def test_analyze_stack_screens_every_resource_and_names_each_by_urn(pack: AnalyzerClient) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": float("nan")}}
    deep_quota = {"metadata": {"name": "gpu", "namespace": "tenant-b"},
                  "spec": {"hard": {"requests.nvidia.com/gpu": "1"}, "extra": deep(300)}}
    resources = [Resource(DEPLOYMENT, "train", workload("Deployment", spec, name="train")),
                 Resource(QUOTA, "quota", deep_quota)]
    result = pack.analyze_stack(resources)
    gpu_path = 'spec.template.spec.containers[0].resources.limits["nvidia.com/gpu"]'
    assert [(d.policy_name, d.urn) for d in result.diagnostics if "cannot hold" in d.detail or "levels deep" in d.detail] \
        == [("gpu-quota-required", make_urn(DEPLOYMENT, "train")), ("gpu-quota-required", make_urn(QUOTA, "quota"))]
    assert non_finite_message("Deployment tenant-a/train", gpu_path, "NaN") in result.details()
    # "NaN" is not zero: the workload still requests GPUs, and tenant-a has no quota.
    assert any(d.startswith('Deployment tenant-a/train, container "main" (containers[0]): ' + gpu_path + " requests")
               for d in result.details("gpu-quota-required"))


def test_with_the_first_judging_policy_disabled_the_next_one_reports_it(pack: AnalyzerClient, lab_config: dict) -> None:
    spec = restricted_pod_spec()
    spec["containers"][0]["securityContext"]["runAsUser"] = float("nan")
    try:
        pack.configure({**lab_config, "pod-security-standards": "disabled"})
        result = pack.analyze(DEPLOYMENT, "odd", workload("Deployment", spec, name="odd"))
        # The next policy that judges the workload reports it instead, at its own level.
        assert screen_findings(result) == [("container-images-pinned", "mandatory", non_finite_message(
            "Deployment tenant-a/odd", RUN_AS_USER, "NaN"))]
    finally:
        pack.configure(lab_config)


@st.composite
def odd_request(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A resource as the fuzzer made them: well-shaped or free-form, numbers that may be NaN or infinite, and
    sometimes a value buried under up to 250 levels of objects and lists."""
    type_, props = draw(st.one_of(shaped_resource(), st.tuples(st.sampled_from(TYPES), st.dictionaries(
        st.text(max_size=6), json_values, max_size=4))))
    if not isinstance(props, dict):
        props = {"spec": props}
    if draw(st.booleans()):
        value: Any = draw(st.sampled_from([float("nan"), float("inf"), float("-inf"), "x", 1.0]))
        for level in range(draw(st.integers(0, 250))):
            value = {"a": value} if level % 3 else [value]
        props = {**props, draw(st.sampled_from(["spec", "metadata", "values", "odd"])): value}
    return type_, props


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(request=odd_request())
def test_generated_requests_never_fail_the_rpc(pack: AnalyzerClient, request: tuple[str, dict[str, Any]]) -> None:
    """Seeded and bounded: 60 generated requests, each sent with Analyze and alone with AnalyzeStack; an RPC
    error would raise here, and no policy may end in its fail-closed internal error."""
    type_, props = request
    for result in (pack.analyze(type_, "gen", props), pack.analyze_stack([Resource(type_, "gen", props)])):
        assert not any("internal error" in d.detail for d in result.diagnostics)


# --- the screen itself --------------------------------------------------------------------------------------------

def test_the_screen_walks_without_recursion_and_reports_every_value() -> None:
    struct = struct_pb2.Struct()
    struct.update({"a": [1.0, float("nan"), {"b": float("-inf")}], "ok": "x"})
    chain = struct.fields["deep"].struct_value
    for _ in range(5000):  # built level by level: far deeper than any recursive walk could follow
        chain = chain.fields["a"].struct_value
    findings = screen_struct(struct)
    assert sorted((f.path, f.problem) for f in findings) == [
        ("a[1]", "NaN"), ("a[2].b", "-Infinity"), (".".join(["deep"] + ["a"] * (MAX_DEPTH - 1)), "too deep")]
    assert struct.fields["a"].list_value.values[1].string_value == "NaN"
    assert struct.fields["ok"].string_value == "x"


def test_the_screen_leaves_readable_input_alone() -> None:
    struct = struct_pb2.Struct()
    struct.update(workload("Deployment", name="fine"))
    before = struct.SerializeToString(deterministic=True)
    assert screen_struct(struct) == []
    assert struct.SerializeToString(deterministic=True) == before
