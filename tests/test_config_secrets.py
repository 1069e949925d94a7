"""Config values set with `pulumi config set --secret --path` stay secret: in every resource input, every stack
output, and every message (components/config_secrets.py)."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.config_secrets import REDACTED, secret_values, secure_paths
from components.stack_config import NAMESPACE, ConfigError, compile_config
from tests.factories import ROOT, lab_raw, lab_with, mutate, problems
from tools.mockrun import SECRET_PLACEHOLDER, StackFile, is_secret, read_stack_file, run_program

TOKEN = "glpat-Zq8xP3kT9mW2"
RUNBOOK = f"https://oauth2:{TOKEN}@git.lab.example/platform/gpu-platform/-/blob/main/docs/runbook.md"


def plaintext_places(value: Any, secret: str, where: str = "") -> list[str]:
    """Where `secret` appears outside the engine's secret envelope."""
    if is_secret(value):
        return []
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in plaintext_places(k, secret, where) +
                plaintext_places(v, secret, f"{where}.{k}")]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in plaintext_places(v, secret, f"{where}[{i}]")]
    return [where or "(value)"] if isinstance(value, str) and secret in value else []


def program_with_stack_file(tmp_path: Path, stack: str, document: dict[str, Any]) -> Path:
    """A project folder like the CLI's: this program, and a stack file that says which values are encrypted."""
    for name in ("__main__.py", "Pulumi.yaml", "components"):
        os.symlink(ROOT / name, tmp_path / name)
    (tmp_path / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump(document))
    return tmp_path


def decrypted(raw: dict[str, Any], stack: str, secret_keys: tuple[str, ...]) -> StackFile:
    """What the CLI hands the program: every key's value decrypted, the keys holding secrets listed."""
    config = {f"{NAMESPACE}:{key}": json.dumps(value) for key, value in raw.items()}
    return StackFile("gpu-platform", stack, config, [f"{NAMESPACE}:{key}" for key in secret_keys])


def test_a_secret_inside_an_object_stays_secret_in_every_input_and_output(tmp_path):
    raw = lab_with(**{"monitoring.runbookUrl": RUNBOOK})
    document = {"config": {f"{NAMESPACE}:{k}": v for k, v in copy.deepcopy(raw).items()}}
    document["config"][f"{NAMESPACE}:monitoring"]["runbookUrl"] = {"secure": "v1:AAAABBBBCCCC"}
    program = program_with_stack_file(tmp_path, "sec", document)
    run = run_program(program, decrypted(raw, "sec", ("monitoring",)))
    leaks = [f"{r.name}{place}" for r in run.resources for place in plaintext_places(r.inputs, TOKEN)]
    leaks += [f"output {place}" for place in plaintext_places(run.outputs, TOKEN)]
    assert leaks == []
    [rule] = [r for r in run.resources if r.name == "gpu-platform-monitoring-rules"]
    assert is_secret(rule.inputs["spec"])  # the runbook links are in the alerts' annotations
    # only what holds the secret is secret: the stack file said which value it is
    [namespace] = [r for r in run.resources if r.name == "gpu-platform-namespace" and r.custom]
    assert not is_secret(namespace.inputs["metadata"])
    [release] = [r for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    assert not is_secret(release.inputs["values"])


def test_without_the_stack_file_every_value_of_the_secret_key_counts_as_secret():
    raw = lab_with(**{"gpuOperator.driver.repository": "registry.lab.example/zq8xp3-mirror"})
    # the CLI's view alone: gpuOperator is secret, which value is not known (no Pulumi.test.yaml in the project)
    run = run_program(ROOT, decrypted(raw, "test", ("gpuOperator",)))
    leaks = [f"{r.name}{place}" for r in run.resources for value in ("zq8xp3", "580.173.02")
             for place in plaintext_places(r.inputs, value)]
    leaks += [f"output {place}" for value in ("zq8xp3", "580.173.02") for place in plaintext_places(run.outputs, value)]
    assert leaks == []
    [release] = [r for r in run.resources if r.type == "kubernetes:helm.sh/v3:Release"]
    assert is_secret(release.inputs["values"]) and is_secret(release.inputs["version"])


def test_a_value_that_names_resources_cannot_be_secret():
    raw = lab_raw()
    found = problems(raw, secret_keys=("nodes",))
    assert found == [("gpu-platform:nodes[0].name",
                      "is a secret, but it becomes part of a Pulumi resource name, which the engine never encrypts: "
                      "set it as plain config, and keep --secret for the value that is one (the stack file does not "
                      "show which value of nodes was set with --secret, so every value of it counts as one)")]


@pytest.mark.parametrize(("path", "value"), [
    ("monitoring.runbookUrl", f"ftp://{TOKEN}@git.lab.example/runbook.md"),
    ("monitoring.runbookUrl", TOKEN * 300),  # also past the length bound: never shown truncated either
    ("gpuOperator.registry", {"server": f"https://{TOKEN}"}),
    ("gpuOperator.chart.repository", f"{TOKEN}.example/charts"),
])
def test_an_invalid_secret_value_is_never_echoed(path, value):
    key = path.split(".")[0]
    raw = mutate(lab_raw(), path, value)
    with pytest.raises(ConfigError) as caught:
        compile_config(raw, secret_keys=(key, "registryPassword"),
                       secure={key: [tuple(path.split(".")[1:])]})
    assert TOKEN not in str(caught.value)
    assert [p for p, _ in caught.value.problems][0].startswith(f"gpu-platform:{path}")


def test_an_invalid_secret_value_is_redacted_where_a_message_repeats_it():
    raw = lab_with(**{"tenancy.tenants[0].owner": "dataSciZq8xP3"})
    with pytest.raises(ConfigError) as caught:
        compile_config(raw, secret_keys=("tenancy",), secure={"tenancy": [("tenants", 0, "owner")]})
    [(path, message)] = caught.value.problems
    assert "Zq8xP3" not in message
    assert message == f"unknown group {REDACTED!r}; teams in tenancy.groups: dataScience"


def test_the_program_stops_on_an_invalid_secret_without_showing_it(tmp_path):
    raw = lab_with(**{"monitoring.runbookUrl": f"ftp://{TOKEN}@git.lab.example/runbook.md"})
    with pytest.raises(pulumi.RunError) as caught:
        run_program(ROOT, decrypted(raw, "test", ("monitoring",)))
    assert TOKEN not in str(caught.value)
    assert "gpu-platform:monitoring.runbookUrl" in str(caught.value)


def test_the_stack_file_says_which_values_are_encrypted():
    document = {"a": {"secure": "v1:x"}, "b": [{"c": 1}, {"d": {"secure": "v1:y"}}], "e": "plain"}
    assert list(secure_paths(document)) == [("a",), ("b", 1, "d")]
    raw = {"k": {"a": "s3cret-a", "b": [{"c": 1}, {"d": "s3cret-d"}], "e": "plain"}}
    assert secret_values(raw, ["k"], {"k": [("a",), ("b", 1, "d")]}).values == ("s3cret-a", "s3cret-d")
    guessed = secret_values(raw, ["k"]).values
    assert set(guessed) >= {"s3cret-a", "s3cret-d", "plain"} and "1" not in guessed


def test_the_mock_engine_reads_a_nested_secure_value_as_the_cli_does(tmp_path):
    (tmp_path / "Pulumi.yaml").write_text("name: gpu-platform\nruntime: python\n")
    (tmp_path / "Pulumi.sec.yaml").write_text(yaml.safe_dump({"config": {
        "gpu-platform:monitoring": {"runbookUrl": {"secure": "v1:AAAA"}, "namespace": "monitoring"}}}))
    stack = read_stack_file(tmp_path, "sec")
    assert stack.secret_keys == ["gpu-platform:monitoring"]
    assert json.loads(stack.config["gpu-platform:monitoring"]) == {"runbookUrl": SECRET_PLACEHOLDER,
                                                                   "namespace": "monitoring"}
