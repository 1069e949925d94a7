"""Run a program under the mock engine with the program's own virtualenv, as the Pulumi CLI would.

The CLI runs a Python program with the interpreter of Pulumi.yaml's `runtime.options.virtualenv`, so the
packages that count are the program's (its own pulumi and providers, whatever it imports). When that venv is
not the plan's own interpreter, the program runs in a child process of the venv's Python (this module, as
`python -m tools.program_venv`, with only tools/mockrun.py's needs: pulumi and PyYAML, both of which every
Pulumi Python program has), which sends each registration back as a JSON line while the program runs, so the
plan streams it to the policy pack as it would in-process.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class ChildError(Exception):
    """The program failed in its own virtualenv: `kind` is "run" (a pulumi.RunError: `problems` are its config
    problems), "program" (an exception: `frame` is where), or "setup" (the venv cannot run the mock engine)."""

    def __init__(self, kind: str, message: str, problems: list[tuple[str, str]] | None = None,
                 frame: tuple[str, int] | None = None):
        super().__init__(message)
        self.kind, self.problems, self.frame = kind, problems, frame


def interpreter(project: Any) -> tuple[Path | None, str]:
    """(the venv's Python when the program must run in a child process, else None; which Python runs it)."""
    venv = project.virtualenv
    if venv is None:
        return None, "this Python (Pulumi.yaml names no virtualenv)"
    shown = os.path.relpath(venv, project.folder)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if not python.exists():
        return None, (f"this Python: Pulumi.yaml's virtualenv {shown} does not exist "
                      "(`pulumi install` creates it)")
    if Path(sys.prefix).resolve() == venv.resolve():
        return None, f"its virtualenv {shown} (the plan's own Python)"
    return python, f"its virtualenv {shown}"


def run_in(python: Path, program_dir: Path, stack_file: Any, on_register: Any = None) -> Any:
    """The program's run (tools.mockrun.ProgramRun) by `python`; raises ChildError when it fails."""
    from tools.mockrun import ProgramRun, Registration

    read_end, write_end = os.pipe()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    request = {"fd": write_end, "programDir": str(program_dir),
               "stackFile": {**dataclasses.asdict(stack_file), "path": str(stack_file.path or "")}}
    # The program's own prints go to the plan's stderr: stdout carries the report.
    child = subprocess.Popen([str(python), "-m", "tools.program_venv"], stdin=subprocess.PIPE,
                             stdout=sys.stderr.fileno(), pass_fds=(write_end,), env=env, cwd=ROOT)
    os.close(write_end)
    assert child.stdin is not None
    child.stdin.write(json.dumps(request).encode())
    child.stdin.close()
    resources: list[Registration] = []
    outputs: dict[str, Any] = {}
    error: ChildError | None = None
    with os.fdopen(read_end) as messages:
        for line in messages:
            message = json.loads(line)
            kind = message.pop("kind")
            if kind == "resource":
                registration = Registration(**{**message, "frames": tuple(map(tuple, message["frames"]))})
                resources.append(registration)
                if on_register is not None:
                    on_register(registration)
            elif kind == "outputs":
                outputs = message["outputs"]
            else:
                error = ChildError(message["type"], message["message"],
                                   [tuple(p) for p in message["problems"]] if message.get("problems") else None,
                                   tuple(message["frame"]) if message.get("frame") else None)
    code = child.wait()
    if error is not None:
        raise error
    if code != 0:
        raise ChildError("setup", f"{python} ended with exit code {code} before the program finished")
    return ProgramRun(resources, outputs)


def _child() -> None:
    request = json.loads(sys.stdin.read())
    out = os.fdopen(request["fd"], "w", buffering=1)

    def send(kind: str, **data: Any) -> None:
        out.write(json.dumps({"kind": kind, **data}) + "\n")

    program_dir = Path(request["programDir"])
    try:
        import pulumi

        from tools.mockrun import StackFile, config_problems_of, run_program
    except ImportError as error:
        send("error", type="setup", message=f"the program's virtualenv ({sys.prefix}) cannot run the mock "
                                            f"engine: {error}; install the program's requirements into it")
        return
    stack = request["stackFile"]
    stack_file = StackFile(**{**stack, "path": Path(stack["path"]) if stack["path"] else None})
    try:
        run = run_program(program_dir, stack_file,
                          on_register=lambda r: send("resource", **{f.name: getattr(r, f.name)
                                                                   for f in dataclasses.fields(r)}))
        send("outputs", outputs=run.outputs)
    except pulumi.RunError as error:
        send("error", type="run", message=str(error), problems=config_problems_of(error))
    except Exception as error:  # noqa: BLE001 - sent to the plan, which reports it in one line
        import traceback

        frames = [f for f in traceback.extract_tb(error.__traceback__)
                  if f.filename.startswith(str(program_dir)) and "site-packages" not in f.filename]
        send("error", type="program", message=f"{type(error).__name__}: {error}",
             frame=[frames[-1].filename, frames[-1].lineno] if frames else None)


if __name__ == "__main__":
    _child()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)  # the SDK's threads need no teardown: everything was sent
