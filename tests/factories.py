"""Factories for tests: the lab's stack config as a baseline, and one-change mutations of it."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import yaml

from components.stack_config import NAMESPACE, CompiledConfig, ConfigError, compile_config
from tools.mockrun import StackFile

ROOT = Path(__file__).resolve().parent.parent
DELETE = object()


def lab_raw() -> dict[str, Any]:
    """The `gpu-platform:*` entries of Pulumi.lab.yaml, keyed without the namespace."""
    document = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())
    prefix = f"{NAMESPACE}:"
    return {key[len(prefix):]: value for key, value in document["config"].items() if key.startswith(prefix)}


def mutate(raw: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `raw` with `path` (e.g. "gpuOperator.driver.version", "nodes[0].labels") set or deleted."""
    out = copy.deepcopy(raw)
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    target: Any = out
    for part in parts[:-1]:
        if isinstance(part, str) and part not in target:
            target[part] = {}
        target = target[part]
    if value is DELETE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value
    return out


def lab_with(**changes: Any) -> dict[str, Any]:
    """The lab config with several changes: lab_with(**{"gpuOperator.chart.version": "v26.3.3"})."""
    raw = lab_raw()
    for path, value in changes.items():
        raw = mutate(raw, path, value)
    return raw


def compiled(raw: dict[str, Any] | None = None, secret_keys: tuple[str, ...] = ()) -> CompiledConfig:
    return compile_config(lab_raw() if raw is None else raw, secret_keys=secret_keys)


def problems(raw: dict[str, Any], secret_keys: tuple[str, ...] = (),
             other_keys: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """The problems a config is rejected with (fails the test when it is accepted)."""
    try:
        compile_config(raw, secret_keys=secret_keys, other_keys=other_keys)
    except ConfigError as error:
        return error.problems
    raise AssertionError("the config was accepted, but it should have been rejected")


def stack_file(raw: dict[str, Any], secret_keys: tuple[str, ...] = ()) -> StackFile:
    """A stack file for the mock engine from `gpu-platform:*` entries (as the CLI passes them: JSON objects)."""
    config = {f"{NAMESPACE}:{key}": value if isinstance(value, str) else json.dumps(value)
              for key, value in raw.items()}
    return StackFile("gpu-platform", "test", config, [f"{NAMESPACE}:{k}" for k in secret_keys])
