"""The committed JSON Schema for stack files is current, and the lab's stack file conforms to it."""
from __future__ import annotations

import copy

import jsonschema
import pytest
import yaml

from tests.factories import ROOT, compiled, lab_with, problems
from tools.gen_schema import SCHEMA_FILE, render


def schema() -> dict:
    return yaml.safe_load(SCHEMA_FILE.read_text())


def lab_document() -> dict:
    return yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())


def test_the_committed_schema_is_not_stale():
    assert SCHEMA_FILE.read_text() == render(), "run `venv/bin/python -m tools.gen_schema` and commit the result"


def test_the_lab_stack_file_conforms():
    jsonschema.Draft202012Validator(schema()).validate(lab_document())


def test_the_schema_catches_what_editors_should_flag():
    validator = jsonschema.Draft202012Validator(schema())
    document = lab_document()
    misspelt = copy.deepcopy(document)
    misspelt["config"]["gpu-platform:gpuOperator"]["driver"]["verison"] = "580.173.02"
    top_level_mps = copy.deepcopy(document)
    top_level_mps["config"]["gpu-platform:mps"] = {"enabled": True}
    plain_password = copy.deepcopy(document)
    plain_password["config"]["gpu-platform:registryPassword"] = "not-a-secret"
    other_namespace = copy.deepcopy(document)
    other_namespace["config"]["kubernetes:context"] = "lab"
    assert not validator.is_valid(misspelt)
    assert not validator.is_valid(top_level_mps)
    assert not validator.is_valid(plain_password)
    assert validator.is_valid(other_namespace)  # other providers' keys are not ours to judge


def with_change(path: str, value: object) -> dict:
    """The lab's stack file with one value changed (path: the config key, then the keys below it)."""
    document = lab_document()
    key, *rest = path.split(".")
    target = document["config"][f"gpu-platform:{key}"]
    for part in rest[:-1]:
        target = target[int(part)] if part.isdigit() else target[part]
    target[rest[-1]] = value
    return document


@pytest.mark.parametrize(("path", "value"), [
    ("gpuOperator.gfd.enabled", "yes"), ("gpuOperator.gfd.enabled", 1), ("gpuOperator.chart.timeoutSeconds", "900"),
    ("gpuOperator.mig_manager", {"enabled": True}), ("tenancy.tenants.0.quota.cpu", "8 cores"),
    ("monitoring.alerts.gpuUtilization.for", "10 minutes"), ("gpuOperator.driver.version", 580.173),
])
def test_the_schema_refuses_what_the_model_refuses(path, value):
    assert not jsonschema.Draft202012Validator(schema()).is_valid(with_change(path, value))
    assert problems(lab_with(**{path.replace(".0.", "[0]."): value}))


@pytest.mark.parametrize(("path", "value"), [
    ("tenancy.tenants.0.quota.cpu", "1e3"), ("tenancy.tenants.0.quota.cpu", "1.2345"),
    ("tenancy.tenants.0.quota.memory", 34359738368), ("monitoring.alerts.gpuUtilization.for", "1h30m"),
    ("monitoring.alerts.gpuMemory.threshold", 95.5),
])
def test_the_schema_accepts_what_the_model_accepts(path, value):
    assert jsonschema.Draft202012Validator(schema()).is_valid(with_change(path, value))
    assert compiled(lab_with(**{path.replace(".0.", "[0]."): value}))
