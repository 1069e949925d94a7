"""The real Pulumi CLI on this project: a private Pulumi home and file backend, the provider plugin installed
from the toolchain, and the program attached through the SDK's language server (tools/program_host.py).

    python -m tools.engine [--workspace DIR] [--kubeconfig FILE] [--project DIR] -- <pulumi arguments>

`preview`, `up`, `refresh` and `destroy` get `--client=<address>` of a program host started for that one
command; every other command (`stack init`, `config`, `stack export`, `cancel`, ...) is passed through as it
is. The policy pack is given as `policies/analyzer`, the pack's executable entry point (see
policies/README.md): the CLI starts it as a binary analyzer plugin, so it needs no language host either.
Nothing here touches the user's own Pulumi login: `PULUMI_HOME` and the backend live in the workspace.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROGRAM_COMMANDS = {"preview", "up", "update", "refresh", "destroy"}
# A fixed passphrase for the workspace's file backend: the stacks here are test stacks, their secrets too.
PASSPHRASE = "gpu-platform-local"


class EngineError(Exception):
    """The workspace could not be prepared; the message says which step and what it printed."""


@dataclass
class Result:
    """One CLI command: its arguments, exit code and output."""

    args: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


@dataclass
class Engine:
    """The real CLI in one workspace folder (Pulumi home, state), on one project, against one kubeconfig."""

    bin_dir: Path
    workspace: Path
    project: Path = ROOT
    kubeconfig: Path | None = None
    python: Path = field(default_factory=lambda: Path(sys.executable))

    @property
    def home(self) -> Path:
        return self.workspace / "pulumi-home"

    @property
    def state(self) -> Path:
        return self.workspace / "state"

    @property
    def pulumi(self) -> Path:
        return self.bin_dir / "pulumi"

    def env(self) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items()
               if not key.startswith("PULUMI_") and key != "KUBECONFIG"}
        env.update({
            "PULUMI_HOME": str(self.home),
            "PULUMI_BACKEND_URL": f"file://{self.state}",
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            "PULUMI_AUTOMATION_API_SKIP_VERSION_CHECK": "true",
        })
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def prepare(self) -> None:
        """The Pulumi home with the provider plugin installed, the file backend, and the login to it."""
        self.state.mkdir(parents=True, exist_ok=True)
        from tools.toolchain import PROVIDER_VERSION
        plugin = self.home / "plugins" / f"resource-kubernetes-v{PROVIDER_VERSION}"
        if not plugin.exists():
            self._checked("plugin", "install", "resource", "kubernetes", PROVIDER_VERSION,
                          "--file", str(self.bin_dir / "pulumi-resource-kubernetes"))
        self._checked("login", f"file://{self.state}")

    def _checked(self, *args: str) -> Result:
        result = self.run(*args)
        if result.returncode != 0:
            raise EngineError(f"pulumi {' '.join(args)} failed ({result.returncode}):\n{result.output}")
        return result

    def run(self, *args: str, timeout: float = 900, capture: bool = True,
            on_start: Callable[[subprocess.Popen[str]], None] | None = None) -> Result:
        """`pulumi <args>` in the project; commands that run the program get a program host of their own.

        `capture=False` leaves stdout and stderr on the terminal (for a person); `on_start` gets the CLI's
        process as soon as it runs (the interruption tests signal it).
        """
        command = [str(self.pulumi), *args]
        host = self._start_program_host() if args and args[0] in PROGRAM_COMMANDS else None
        if host is not None:
            command.append(f"--client={host.stdout.readline().strip()}")  # type: ignore[union-attr]
        pipe = subprocess.PIPE if capture else None
        try:
            proc = subprocess.Popen(command, cwd=self.project, env=self.env(), stdout=pipe, stderr=pipe, text=True,
                                    start_new_session=capture)
            if on_start is not None:
                on_start(proc)
            try:
                stdout, stderr = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                stdout, stderr = proc.communicate()
                raise EngineError(f"pulumi {' '.join(args)} did not finish within {timeout:.0f} s:\n"
                                  f"{stdout or ''}{stderr or ''}") from None
            return Result(command[1:], proc.returncode, stdout or "", stderr or "")
        finally:
            if host is not None:
                host.stdin.close()  # type: ignore[union-attr]
                try:
                    host.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    host.kill()
                    host.wait()

    def _start_program_host(self) -> subprocess.Popen[str]:
        env = self.env()
        env["PYTHONPATH"] = str(ROOT)
        return subprocess.Popen([str(self.python), "-m", "tools.program_host", str(self.project)], cwd=ROOT,
                                env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def main(argv: list[str] | None = None) -> int:
    from tools import toolchain
    from tools.stacks import lab_config, make_project, write_stack_file

    parser = argparse.ArgumentParser(prog="dev.py pulumi", description=__doc__.split("\n\n")[0])
    workspace = toolchain.cache_root().parent / "workspace"
    parser.add_argument("--workspace", type=Path, default=workspace,
                        help="Pulumi home and file backend (default: %(default)s)")
    parser.add_argument("--project", type=Path, default=None,
                        help="a Pulumi project folder (default: the local lab project in the workspace: links to "
                             "this project and a Pulumi.lab.yaml whose chart is the published archive)")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the pulumi command and its arguments")
    options = parser.parse_args(argv)
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    if not args:
        parser.error("give a pulumi command, e.g. `python3 dev.py pulumi -- preview --stack lab`")
    kubeconfig = Path(os.environ["KUBECONFIG"]) if os.environ.get("KUBECONFIG") else None
    try:
        project = options.project
        if project is None:
            project = make_project(options.workspace / "lab")
            if not (project / "Pulumi.lab.yaml").exists():
                write_stack_file(project, "lab", lab_config())
        engine = Engine(toolchain.ensure(), options.workspace, project.resolve(), kubeconfig)
        engine.prepare()
    except (toolchain.ToolchainError, EngineError) as error:
        print(f"dev.py pulumi: {error}", file=sys.stderr)
        return 2
    print(f"dev.py pulumi: project {engine.project}, state {engine.state}", file=sys.stderr)
    return engine.run(*args, timeout=24 * 3600, capture=False).returncode


if __name__ == "__main__":
    sys.exit(main())
