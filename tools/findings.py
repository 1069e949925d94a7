"""What the read-only commands (`dev.py verify`, `compat`, `upgrade-plan`) share: the stack's typed config read
from its stack file, one finding per check, the text and JSON reports, and the exit codes.

Exit codes, the same for the three commands: 0 every check passed (warnings allowed), 1 a check failed,
2 a usage, config or connection error (said in one line, never a traceback).
"""
from __future__ import annotations

import json
import sys
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "gpu-platform"

Verdict = Literal["pass", "warn", "fail"]


class UsageError(Exception):
    """A usage, config or connection error: one line on stderr, exit code 2."""


@dataclass(frozen=True)
class Finding:
    """One check's result about one subject, written for the person who has to act on it."""

    check: str      # the check's id, e.g. "driver-version"
    subject: str    # what was looked at, e.g. "node proj-k8sw04"
    verdict: Verdict
    expected: str
    found: str
    action: str = ""  # what to do; empty when the check passed


@dataclass(frozen=True)
class LoadedStack:
    """A stack file and the validated config the program would deploy from it."""

    name: str
    path: Path
    raw: dict[str, Any]
    compiled: Any  # components.stack_config.CompiledConfig

    @property
    def stack(self) -> Any:
        return self.compiled.stack


def load_stack(stack: str, program_dir: Path = ROOT) -> LoadedStack:
    """Pulumi.<stack>.yaml through the stack config model, as `pulumi up` would validate it (no Pulumi engine)."""
    from components.stack_config import ConfigError, compile_config
    from tools.mockrun import StackFileError, read_stack_file

    try:
        stack_file = read_stack_file(program_dir, stack)
    except StackFileError as error:
        raise UsageError(str(error)) from None
    prefix = f"{NAMESPACE}:"
    raw: dict[str, Any] = {}
    for key, value in stack_file.config.items():
        if key.startswith(prefix):
            try:
                raw[key[len(prefix):]] = json.loads(value)
            except ValueError:
                raw[key[len(prefix):]] = value
    secrets = {key[len(prefix):] for key in stack_file.secret_keys if key.startswith(prefix)}
    try:
        compiled = compile_config(raw, secret_keys=secrets)
    except ConfigError as error:
        raise UsageError(f"Pulumi.{stack}.yaml: {error}") from None
    return LoadedStack(stack, program_dir / f"Pulumi.{stack}.yaml", raw, compiled)


def exit_code(findings: list[Finding]) -> int:
    return 1 if any(f.verdict == "fail" for f in findings) else 0


def summary(findings: list[Finding]) -> dict[str, int]:
    return {verdict: sum(1 for f in findings if f.verdict == verdict) for verdict in ("pass", "warn", "fail")}


def render_text(title: str, findings: list[Finding], notes: list[str] = ()) -> str:
    """Failures and warnings with expected / found / what to do; passes one line each."""
    lines = [title, ""]
    for finding in findings:
        lines += finding_lines(finding)
    for note in notes:
        lines += wrapped("note: ", note)
    counts = summary(findings)
    lines += ["", f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed"]
    return "\n".join(lines) + "\n"


def finding_lines(finding: Finding, indent: str = "") -> list[str]:
    lines = [f"{indent}{finding.verdict.upper():4}  {finding.check:22} {finding.subject}"]
    if finding.verdict == "pass":
        return lines + wrapped(f"{indent}      ", finding.found)
    lines += wrapped(f"{indent}      expected: ", finding.expected)
    lines += wrapped(f"{indent}      found:    ", finding.found)
    if finding.action:
        lines += wrapped(f"{indent}      do:       ", finding.action)
    return lines


def wrapped(head: str, text: str, width: int = 116, hang: int = 0) -> list[str]:
    """`text` after `head`, wrapped; continuation lines under the text (or `hang` further in)."""
    return textwrap.wrap(text, width, initial_indent=head, subsequent_indent=" " * (len(head) + hang),
                         break_long_words=False, break_on_hyphens=False) or [head.rstrip()]


def render_json(header: dict[str, Any], findings: list[Finding], notes: list[str] = (), **extra: Any) -> str:
    document = {**header, "findings": [asdict(f) for f in findings], "notes": list(notes), **extra,
                "summary": summary(findings), "exitCode": exit_code(findings)}
    return json.dumps(document, indent=2) + "\n"


def fail_usage(command: str, error: BaseException) -> int:
    print(f"{command}: {error}", file=sys.stderr)
    return 2
