"""Where a finding of the offline plan belongs: the program line that declared a resource, and the stack file's
line of a config key.

The SDK sends the engine the call stack that declared each resource (RegisterResourceRequest's stackTrace;
tools/mockrun.py keeps it). The stack file's lines come from its YAML node tree. Reports give both relative to
the repository that holds the program, so a pull request's review annotations land on the line that caused them.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tools.plan_model import Location


def repository_root(program_dir: Path) -> Path:
    """The git checkout that holds the program (paths in reports are relative to it), else the program folder."""
    for folder in (program_dir, *program_dir.parents):
        if (folder / ".git").exists():
            return folder
    return program_dir


def declared_at(frames: tuple[tuple[str, int], ...], program_dir: Path) -> Location | None:
    """The innermost frame of the program's own code (not an installed package, not the plan's tools)."""
    program, tools = str(program_dir) + os.sep, str(Path(__file__).resolve().parent) + os.sep
    for file, line in frames:
        if file.startswith(program) and not file.startswith(tools) and f"{os.sep}site-packages{os.sep}" not in file:
            return Location(Path(file), line)
    return None


class StackFileLines:
    """The line of each config key in a Pulumi.<stack>.yaml (keys written bare or as `<project>:<key>`)."""

    def __init__(self, path: Path, project: str):
        import yaml

        self.path, self.project = path, project
        self.config_line = 1
        self._entries: list[tuple[str, Any, Any]] = []  # (full key, key node, value node)
        try:
            root = yaml.compose(path.read_text())
        except (OSError, yaml.YAMLError):
            return
        if not isinstance(root, yaml.MappingNode):
            return
        for key, value in root.value:
            if key.value == "config":
                self.config_line = key.start_mark.line + 1
                if isinstance(value, yaml.MappingNode):
                    self._entries = [(k.value if ":" in str(k.value) else f"{project}:{k.value}", k, v)
                                     for k, v in value.value]

    def location(self, key_path: str) -> Location:
        """The deepest key of `key_path` (`ns:key.sub[0].leaf`) that the file has; its `config:` line if none."""
        import yaml

        for full_key, key_node, value_node in self._entries:
            if key_path == full_key or key_path.startswith((full_key + ".", full_key + "[")):
                line, rest, node = key_node.start_mark.line + 1, key_path[len(full_key):], value_node
                while rest:
                    if isinstance(node, yaml.SequenceNode) and (match := re.match(r"\[(\d+)\]", rest)):
                        index = int(match[1])
                        if index >= len(node.value):
                            break
                        node, rest = node.value[index], rest[match.end():]
                        line = node.start_mark.line + 1
                        continue
                    if isinstance(node, yaml.MappingNode) and rest.startswith("."):
                        rest = rest[1:]
                        # the longest key that fits: keys may hold dots (`nvidia.com/gpu.product`)
                        fits = [(k, v) for k, v in node.value if rest == str(k.value)
                                or rest.startswith((f"{k.value}.", f"{k.value}["))]
                        if fits:
                            key, node = max(fits, key=lambda kv: len(str(kv[0].value)))
                            line, rest = key.start_mark.line + 1, rest[len(str(key.value)):]
                            continue
                    break
                return Location(self.path, line, key=key_path)
        return Location(self.path, self.config_line, key=key_path)

    def leaves(self) -> list[tuple[str, str, Location]]:
        """Every scalar value in the config: (key path, its text as written, where)."""
        import yaml

        found: list[tuple[str, str, Location]] = []

        def walk(path: str, node: Any, line: int) -> None:
            if isinstance(node, yaml.MappingNode):
                if any(k.value == "secure" for k, _ in node.value):
                    return  # a secret: never matched against (or shown next to) a plaintext value
                for key, value in node.value:
                    walk(f"{path}.{key.value}", value, key.start_mark.line + 1)
            elif isinstance(node, yaml.SequenceNode):
                for index, item in enumerate(node.value):
                    walk(f"{path}[{index}]", item, item.start_mark.line + 1)
            elif isinstance(node, yaml.ScalarNode):
                found.append((path, str(node.value), Location(self.path, line, key=path)))

        for full_key, key_node, value_node in self._entries:
            walk(full_key, value_node, key_node.start_mark.line + 1)
        return found


# A property path that a policy message names: `values.driver.version`, `spec.template.spec.containers[0].image`.
PROPERTY_PATH = re.compile(r"\b(?:values|spec|metadata|data)(?:\.[A-Za-z_][\w-]*|\[\d+\])+")


def _value_at(inputs: Any, path: str) -> Any:
    value = inputs
    for part in re.findall(r"[^.\[\]]+", path):
        if isinstance(value, dict):
            value = value.get(part)
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def _text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    return None


def config_source(message: str, inputs: dict[str, Any], leaves: list[tuple[str, str, Location]]) -> Location | None:
    """The stack-file key a judged value came from, where that is knowable: the message names a property path,
    the resource holds a plain value there, and exactly one config key with that value ends in the same name."""
    from tools.mockrun import is_secret

    for path in PROPERTY_PATH.findall(message):
        value = _value_at(inputs, path)
        text = None if is_secret(value) else _text(value)
        if text is None:
            continue
        segments = re.findall(r"[^.\[\]]+", path)
        best: list[tuple[int, Location]] = []
        for key, written, where in leaves:
            if written != text:
                continue
            key_segments = re.findall(r"[^.\[\]:]+", key)
            shared = 0
            while (shared < min(len(segments), len(key_segments))
                   and segments[-1 - shared] == key_segments[-1 - shared]):
                shared += 1
            if shared:
                best.append((shared, where))
        if best:
            top = max(score for score, _ in best)
            winners = [where for score, where in best if score == top]
            if len(winners) == 1:
                return winners[0]
    return None


def relative(path: Path, repository: Path) -> str:
    """`path` relative to the repository, as the program saw it (a linked folder is not followed out of it)."""
    try:
        return Path(os.path.abspath(path)).relative_to(repository).as_posix()
    except ValueError:
        return path.as_posix()
