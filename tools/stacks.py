"""A stack of a program in a project folder of its own: for the real tier, the benchmarks and a person.

The folder links the program's files (this project's by default) and holds the generated stack file, so the
tracked Pulumi.<stack>.yaml files are never written to (the CLI's passphrase provider adds a salt to them).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from tools.engine import ROOT, Engine, EngineError, Result
from tools.upstream import upstream_dir

NAMESPACE = "gpu-platform"


def chart_archive(version: str) -> Path:
    """The published chart of `version` in the upstream data folder (as an air-gapped lab keeps it)."""
    path = upstream_dir() / "gpu-operator" / version / "chart" / f"gpu-operator-{version}.tgz"
    if not path.exists():
        raise EngineError(f"the published chart {version} is not at {path}; set GPU_PLATFORM_UPSTREAM to the "
                          "shared upstream data folder")
    return path


def lab_config() -> dict[str, Any]:
    """Pulumi.lab.yaml's config, with the chart taken from the published archive (the air-gapped route)."""
    config = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())["config"]
    chart = config[f"{NAMESPACE}:gpuOperator"]["chart"]
    chart.pop("repository", None)
    chart["path"] = str(chart_archive(chart["version"]))
    return config


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """`gpuOperator.driver.version` inside `gpu-platform:gpuOperator`; `[n]` indexes lists."""
    parts: list[str | int] = [int(p) if p.isdigit() else p for p in re.findall(r"[^.\[\]]+", path)]
    target: Any = config
    head = f"{NAMESPACE}:{parts[0]}" if ":" not in str(parts[0]) else parts[0]
    parts = [head, *parts[1:]]
    for part in parts[:-1]:
        target = target[part] if isinstance(part, int) else target.setdefault(part, {})
    target[parts[-1]] = value


# The README's policy arguments, relative to the project folder (which links this project's policies/).
POLICY_ARGS = ("--policy-pack", "policies/analyzer", "--policy-pack-config", "policies/config/lab.json")


def make_project(folder: Path, program: Path = ROOT) -> Path:
    """A project folder: the program's Pulumi.yaml, links to its code, and a link to this project's pack."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "Pulumi.yaml").write_text((program / "Pulumi.yaml").read_text())
    links = {"__main__.py": program / "__main__.py", "components": program / "components",
             "policies": ROOT / "policies"}
    for entry, target in links.items():
        if target.exists() and not (folder / entry).exists():
            (folder / entry).symlink_to(target)
    return folder


def write_stack_file(folder: Path, stack: str, config: dict[str, Any]) -> Path:
    """Pulumi.<stack>.yaml with `config`, keeping what the CLI added (the passphrase salt)."""
    stack_file = folder / f"Pulumi.{stack}.yaml"
    existing = yaml.safe_load(stack_file.read_text()) if stack_file.exists() else {}
    document = {key: value for key, value in (existing or {}).items() if key != "config"}
    document["config"] = copy.deepcopy(config)
    stack_file.write_text(yaml.safe_dump(document, sort_keys=False))
    return stack_file


class Stack:
    """A project folder linking a program's files (this project's by default) and one stack of it."""

    def __init__(self, engine: Engine, folder: Path, name: str, *, program: Path = ROOT,
                 config: dict[str, Any] | None = None):
        self.engine = Engine(engine.bin_dir, engine.workspace, make_project(folder, program), engine.kubeconfig,
                             engine.python)
        self.folder = folder
        self.name = name
        self.config = lab_config() if config is None else config
        self.deployed = False

    def set(self, path: str, value: Any) -> "Stack":
        set_path(self.config, path, value)
        return self

    def write(self) -> None:
        write_stack_file(self.folder, self.name, self.config)

    def init(self) -> None:
        result = self.engine.run("stack", "init", self.name)
        if result.returncode != 0:
            raise EngineError(f"pulumi stack init {self.name} failed:\n{result.output}")
        self.write()

    def pulumi(self, *args: str, **kwargs: Any) -> Result:
        self.write()
        return self.engine.run(*args, "--stack", self.name, **kwargs)

    def preview(self, *extra: str, policy: bool = True) -> Result:
        return self.pulumi("preview", "--non-interactive", *self.policy_args(policy), *extra)

    def up(self, *extra: str, policy: bool = True, skip_preview: bool = False, **kwargs: Any) -> Result:
        """`pulumi up --yes`: a preview (where the pack's stack policies can still stop it), then the update."""
        self.deployed = True
        skip = ["--skip-preview"] if skip_preview else []
        return self.pulumi("up", "--yes", "--non-interactive", *skip, *self.policy_args(policy), *extra, **kwargs)

    def destroy(self, *extra: str) -> Result:
        result = self.pulumi("destroy", "--yes", "--non-interactive", *extra)
        if result.returncode == 0:
            self.deployed = False
        return result

    @staticmethod
    def policy_args(policy: bool) -> list[str]:
        return list(POLICY_ARGS) if policy else []


