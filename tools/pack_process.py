"""Start a CrossGuard policy pack exactly as the Pulumi CLI starts a Python pack.

The CLI (pulumi/pulumi ``analyzer_plugin.go`` and the ``pulumi-analyzer-policy-python`` shim) runs, with the
pack directory as working directory::

    <pack>/venv/bin/python -u -m pulumi.policy <engineAddress> .

with ``PULUMI_CONFIG``, ``PULUMI_PROJECT``, ``PULUMI_STACK``, ``PULUMI_DRY_RUN`` and ``PULUMI_ORGANIZATION``
in the environment, and reads the port the pack prints. This module needs only the standard library, so a
caller can launch the pack before it imports gRPC and Pulumi (the plan overlaps the two start-ups);
``tools.analyzer`` speaks the protocol.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections import deque
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PACK_DIR = ROOT / "policies"


def _default_interrupt() -> None:
    """SIGINT back to its default in the pack: a shell starts background jobs with SIGINT ignored, and Python
    then never raises KeyboardInterrupt, so `stop()` would wait out its timeout and kill the pack."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class PackError(RuntimeError):
    """The pack could not be started or did not answer; the message carries its stderr."""


class PackProcess:
    """A policy pack started exactly as the CLI starts a Python pack; stops cleanly on ``stop()``."""

    def __init__(self, pack_dir: Path | str = DEFAULT_PACK_DIR, *, python: Path | str | None = None,
                 project: str = "gpu-platform", stack: str = "lab", dry_run: bool = True,
                 organization: str = "organization", stack_config: Mapping[str, str] | None = None,
                 engine_address: str = "127.0.0.1:1", startup_timeout: float = 60.0,
                 extra_env: Mapping[str, str] | None = None) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        default_python = self.pack_dir / "venv" / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
        self.python = Path(python) if python is not None else default_python
        self.project, self.stack, self.dry_run, self.organization = project, stack, dry_run, organization
        self.stack_config = dict(stack_config or {})
        self.engine_address = engine_address
        self.startup_timeout = startup_timeout
        self.extra_env = dict(extra_env or {})
        self.port: int | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: deque[str] = deque(maxlen=200)
        self._threads: list[threading.Thread] = []
        self._first_line: list[bytes] = []
        self._got_line = threading.Event()

    @property
    def address(self) -> str:
        if self.port is None:
            raise PackError("the pack is not running")
        return f"127.0.0.1:{self.port}"

    @property
    def command(self) -> list[str]:
        return [str(self.python), "-u", "-m", "pulumi.policy", self.engine_address, "."]

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env.update({
            "PULUMI_CONFIG": json.dumps(self.stack_config),
            "PULUMI_PROJECT": self.project,
            "PULUMI_STACK": self.stack,
            "PULUMI_DRY_RUN": "true" if self.dry_run else "false",
            "PULUMI_ORGANIZATION": self.organization,
        })
        env.update(self.extra_env)
        return env

    def stderr_tail(self) -> str:
        return "".join(self._stderr)

    def start(self) -> PackProcess:
        """Launch the pack and wait until it serves (its port is known)."""
        return self.launch().wait_for_port()

    def launch(self) -> PackProcess:
        """Start the process and return at once; `wait_for_port()` waits for the port it prints."""
        if not self.python.exists():
            raise PackError(f"{self.python} does not exist: the pack's virtualenv is missing. "
                            f"Create it with `python3 dev.py setup` (or `pulumi install` in the pack).")
        self._proc = subprocess.Popen(self.command, cwd=self.pack_dir, env=self.environment(),
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      preexec_fn=_default_interrupt if os.name != "nt" else None)
        first_line, got_line = self._first_line, self._got_line

        def read_stdout() -> None:
            assert self._proc is not None and self._proc.stdout is not None
            for number, line in enumerate(self._proc.stdout):
                if number == 0:
                    first_line.append(line)
                    got_line.set()
            got_line.set()

        def read_stderr() -> None:
            assert self._proc is not None and self._proc.stderr is not None
            for line in self._proc.stderr:
                self._stderr.append(line.decode(errors="replace"))

        for target in (read_stdout, read_stderr):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def wait_for_port(self) -> PackProcess:
        assert self._proc is not None, "launch() first"
        first_line = self._first_line
        if not self._got_line.wait(self.startup_timeout) or not first_line:
            code = self._proc.poll()
            self.stop()
            for thread in self._threads:
                thread.join(5)
            what = (f"exited with code {code} before printing its port" if code is not None
                    else f"printed no port within {self.startup_timeout:.0f}s")
            raise PackError(f"the pack ({' '.join(self.command)}, in {self.pack_dir}) {what}.\n{self.stderr_tail()}")
        try:
            self.port = int(first_line[0].strip())
        except ValueError:
            self.stop()
            raise PackError(f"the pack's first line is not a port: {first_line[0]!r}\n{self.stderr_tail()}") from None
        return self

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Interrupt the pack (the SDK stops its server on KeyboardInterrupt) and wait; kill if it hangs."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT if os.name != "nt" else signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return self._reaped(proc, timeout)

    def kill(self, timeout: float = 10.0) -> int | None:
        """End the pack as the CLI ends a plugin (plugin.go Close: close the connection, kill the process)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout)
        return self._reaped(proc, timeout)

    def _reaped(self, proc: subprocess.Popen, timeout: float) -> int | None:
        """After the process has ended: drain its output readers, forget the port, give its exit code."""
        for thread in self._threads:
            thread.join(timeout)
        self.port = None
        return proc.returncode

    def __enter__(self) -> PackProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
