"""A property-based fuzzer over the lab's stack config: generated bad values at every key, checked for the three
promises of the config: no traceback, no secret in plaintext anywhere, every bad value refused with its key path.

Seeded and bounded by example counts (hypothesis' `derandomize`, no example database), so every run checks the
same inputs and takes the same time; the number of examples is the budget, never a clock.
"""
from __future__ import annotations

import copy
import json
import os
import string
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pulumi
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components.base import format_path
from components.stack_config import NAMESPACE, CompiledConfig, ConfigError, compile_config, parse_config_value
from tests.factories import ROOT, lab_raw, lab_with
from tools.mockrun import StackFile, is_secret, run_program

KeyPath = tuple[str | int, ...]
LAB = lab_raw()
# The lab with every optional setting the lab leaves out, so that their keys are fuzzed too.
RICH = lab_with(**{
    "gpuOperator.toolkit": {"extraEnv": [{"name": "NVIDIA_DEBUG", "value": "false"}]},
    "gpuOperator.devicePlugin.extraEnv": [{"name": "NVIDIA_MIG_MONITOR_DEVICES", "value": "all"}],
    "gpuOperator.operator": {"nodeSelector": {"node-role.kubernetes.io/control-plane": "true"}, "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "infra", "effect": "NoSchedule"}]},
    "gpuOperator.registry": {"server": "nvcr.io", "username": "$oauthtoken", "secretName": "ngc-pull"},
    "gpuOperator.mig": {"strategy": "single"},
    "gpuOperator.driver.repository": "registry.lab.example/nvidia",
    "gpuOperator.driver.kernelModuleType": "open",
    "gpuOperator.devicePlugin.sharing.profiles.ts-2": {"timeSlicing": {"replicas": 2, "renameByDefault": True}},
    "nodes[0].sharing": "ts-2",
    "registryPassword": "s3cret-token",
})
# One NVIDIADriver per node pool instead of one driver.
POOLS = lab_with(**{"gpuOperator.driver": {
    "mode": "perPool", "upgradePolicy": LAB["gpuOperator"]["driver"]["upgradePolicy"],
    "pools": [{"name": "a4000", "nodeSelector": {"nvidia.com/gpu.product": "NVIDIA-RTX-A4000"},
               "version": "580.173.02"}]}})
BASES = {"lab": LAB, "rich": RICH, "pools": POOLS}
SECRET_KEYS = ("registryPassword",)  # the one secret key of its own; the CLI gives it as text, never checked here
FUZZ = settings(derandomize=True, database=None, deadline=None, max_examples=200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Maps whose keys are the user's (labels, groups, profiles, per-class quotas): any key may be valid there.
FREE_MAPS = {"labels", "prometheusLabels", "additionalLabels", "sidecarLabel", "groups", "profiles",
             "priorityGpuQuota", "nodeSelector"}


def leaves(value: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaves(item, (*path, index))
    else:
        yield path, value


def models(value: Any, path: KeyPath = ()) -> Iterator[KeyPath]:
    """Paths of the objects whose keys are the program's (unknown keys are refused there)."""
    if isinstance(value, dict):
        if not path or path[-1] not in FREE_MAPS:
            yield path
        for key, item in value.items():
            yield from models(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from models(item, (*path, index))


Where = tuple[str, KeyPath]  # (base, key path)
LEAVES: list[tuple[Where, Any]] = [((name, path), value) for name, base in BASES.items()
                                  for path, value in leaves({k: v for k, v in base.items() if k not in SECRET_KEYS})]
STRINGS = [where for where, value in LEAVES if isinstance(value, str)]
INTEGERS = [where for where, value in LEAVES if isinstance(value, int) and not isinstance(value, bool)]
BOOLEANS = [where for where, value in LEAVES if isinstance(value, bool)]
MODELS = [(name, path) for name, base in BASES.items() for path in models(base) if path and path[0] not in SECRET_KEYS]


def with_value(where: Where, value: Any) -> dict[str, Any]:
    name, path = where
    raw = copy.deepcopy(BASES[name])
    target: Any = raw
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    return raw


def shown(path: KeyPath) -> str:
    return f"{NAMESPACE}:{path[0]}" + ("" if len(path) == 1 else
                                       ("." if isinstance(path[1], str) else "") + format_path(path[1:]))


def related(found: str, expected: str) -> bool:
    """The problem is at the changed key, one of the objects around it, or inside it."""
    return any(a == b or a.startswith(b + ".") or a.startswith(b + "[") for a, b in ((found, expected),
                                                                                     (expected, found)))


def outcome(raw: dict[str, Any], **kwargs: Any) -> CompiledConfig | ConfigError:
    """Compile; a ConfigError is the one allowed failure (any other exception fails the test as a traceback)."""
    kwargs["secret_keys"] = (*kwargs.get("secret_keys", ()), *SECRET_KEYS)
    try:
        return compile_config(raw, **kwargs)
    except ConfigError as error:
        return error


def refused_at(raw: dict[str, Any], path: KeyPath) -> None:
    result = outcome(raw)
    assert isinstance(result, ConfigError), f"accepted: {shown(path)}"
    assert any(related(found, shown(path)) for found, _ in result.problems), (shown(path), result.problems)


nested = st.integers(1, 3000).map(lambda depth: json.loads("[" * min(depth, 900) + "]" * min(depth, 900)))
containers = st.one_of(st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(),
                                                                            max_size=3), nested)
words = st.text(alphabet=string.ascii_letters, min_size=1, max_size=12)
odd_floats = st.sampled_from([float("nan"), float("inf"), float("-inf"), 1.5, -0.25, 1e300])


@FUZZ
@given(st.sampled_from(STRINGS), st.one_of(st.booleans(), containers))
def test_a_string_key_refuses_other_types(where, value):
    refused_at(with_value(where, value), where[1])


@FUZZ
@given(st.sampled_from(INTEGERS), st.one_of(words, st.booleans(), st.none(), containers,
                                            st.sampled_from([float("nan"), float("inf")]),  # 1.5: thresholds are decimals
                                            st.just(10**18)))
def test_a_number_key_refuses_other_types_and_numbers_past_any_bound(where, value):
    refused_at(with_value(where, value), where[1])


@FUZZ
@given(st.sampled_from(BOOLEANS), st.one_of(words, st.integers(), st.none(), containers,
                                            st.sampled_from(["true", "false", "yes", "no"])))
def test_a_boolean_key_refuses_everything_but_true_and_false(where, value):
    refused_at(with_value(where, value), where[1])


@FUZZ
@given(st.sampled_from(STRINGS), st.integers(2049, 2**20))
def test_no_string_is_unbounded(where, size):
    refused_at(with_value(where, "x" * size), where[1])


@FUZZ
@given(st.sampled_from(MODELS), words)
def test_an_unknown_key_is_refused_where_it_is(where, key):
    name, path = where
    raw = copy.deepcopy(BASES[name])
    target: Any = raw
    for part in path:
        target = target[part]
    if key in target:
        return
    target[key] = "x"
    refused_at(raw, (*path, key))


@FUZZ
@given(st.sampled_from(LEAVES), st.one_of(st.text(max_size=40), st.integers(), odd_floats, st.booleans(), st.none(),
                                          containers))
def test_no_value_anywhere_makes_a_traceback(leaf, value):
    where, _ = leaf
    outcome(with_value(where, value))  # accepted or refused, never another exception


@FUZZ
@given(st.sampled_from(sorted(LAB)), st.integers(2, 5000), st.booleans())  # depth 1 is `[]`: no nodes, valid
def test_json_nested_past_pythons_limit_is_refused_not_a_traceback(key, depth, secret):
    # The CLI passes each object as JSON text; deep nesting used to end in a RecursionError traceback.
    text = "[" * depth + "]" * depth
    raw = {**copy.deepcopy(LAB), key: parse_config_value(text)}
    result = outcome(raw, secret_keys=(key,) if secret else ())
    assert isinstance(result, ConfigError)
    assert any(related(found, f"{NAMESPACE}:{key}") for found, _ in result.problems)


# --- secrets --------------------------------------------------------------------------------------------------------

tokens = st.text(alphabet=string.ascii_lowercase + string.digits, min_size=10, max_size=24).map(lambda t: f"tok{t}")


@FUZZ
@given(st.sampled_from(STRINGS), tokens, st.sampled_from(["", "\n", " ", "/", "@", "UPPER", "#x"]))
def test_a_secret_is_never_shown_in_a_message_or_warning(where, token, suffix):
    value = token + suffix
    raw = with_value(where, value)
    path = where[1]
    result = outcome(raw, secret_keys=(str(path[0]),), secure={str(path[0]): [path[1:]]})
    text = str(result) if isinstance(result, ConfigError) else "\n".join(result.warnings)
    assert value not in text and token not in text


# Keys where any token makes a valid value, so that the program runs and its inputs can be searched.
SECRET_HOMES: list[tuple[KeyPath, str]] = [
    (("monitoring", "runbookUrl"), "https://user:{}@git.lab.example/runbook.md"),
    (("tenancy", "groups", "dataScience"), "lab:{}"),
    (("tenancy", "priorityClasses", 0, "description"), "inference {}"),
    (("gpuOperator", "driver", "repository"), "registry.lab.example/{}"),
    (("nodes", 0, "labels", "gpu"), "{}"),
    (("gpuOperator", "driver", "upgradePolicy", "drain", "podSelector"), "app={}"),
]


def plaintext(value: Any, secret: str) -> bool:
    if is_secret(value):
        return False
    if isinstance(value, dict):
        return any(plaintext(k, secret) or plaintext(v, secret) for k, v in value.items())
    if isinstance(value, list):
        return any(plaintext(v, secret) for v in value)
    return isinstance(value, str) and secret in value


@settings(FUZZ, max_examples=16)
@given(st.sampled_from(SECRET_HOMES), tokens)
def test_a_secret_set_with_path_is_in_no_input_or_output_in_plaintext(home, token):
    path, form = home
    raw = with_value(("lab", path), form.format(token))
    key = str(path[0])
    document = copy.deepcopy(raw)
    target: Any = document[key]
    for part in path[1:-1]:
        target = target[part]
    target[path[-1]] = {"secure": "v1:ciphertext"}
    with tempfile.TemporaryDirectory() as folder:
        program = Path(folder)
        for name in ("__main__.py", "Pulumi.yaml", "components"):
            os.symlink(ROOT / name, program / name)
        (program / "Pulumi.fuzz.yaml").write_text(json.dumps(
            {"config": {f"{NAMESPACE}:{k}": v for k, v in document.items()}}))
        config = {f"{NAMESPACE}:{k}": json.dumps(v) for k, v in raw.items()}
        try:
            run = run_program(program, StackFile("gpu-platform", "fuzz", config, [f"{NAMESPACE}:{key}"]))
        except pulumi.RunError as error:
            assert token not in str(error)
            return
    assert not [r.name for r in run.resources if plaintext(r.inputs, token)]
    assert not plaintext(run.outputs, token)
