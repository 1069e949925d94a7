"""The committed JSON Schema for stack files is current, and the lab's stack file conforms to it."""
from __future__ import annotations

import copy

import jsonschema
import yaml

from tests.factories import ROOT
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
