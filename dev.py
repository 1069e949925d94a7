#!/usr/bin/env python3
"""The project's two entry points, each doing its own set-up idempotently.

    python3 dev.py plan [--stack lab] [plan options]   offline plan + policy verdicts of a stack
    python3 dev.py verify [--stack lab] [--kubeconfig F] [--context C] [--json]
                                                        read-only check of a live cluster against the stack
    python3 dev.py compat --kubernetes X.Y [--chart V] [--driver V] [--json]
                                                        does the pinned chart and driver support the target?
    python3 dev.py upgrade-plan --driver V | --chart V [--kubeconfig F] [--context C] [--json]
                                                        the config change, NVIDIA's support, the rollout, the commands
    python3 dev.py test [pytest options]                the test suite, both tiers (builds what they need)
    python3 dev.py bench [names]                        the benchmarks under bench/
    python3 dev.py setup                                only the two virtualenvs
    python3 dev.py toolchain                            build or reuse the real tier's toolchain; print its bin folder
    python3 dev.py cluster up|down|status               a local cluster shaped like the lab's (prints its kubeconfig)
    python3 dev.py pulumi -- <pulumi arguments>         the real Pulumi CLI on this project (docs/real-tier.md)

Set-up: ./venv from requirements-dev.txt (the program's pins plus test tools) and
policies/venv from policies/requirements.txt (the venv the Pulumi CLI uses to run the pack).
Each is rebuilt only when its requirements change (a hash stamp inside the venv).
Only the Python standard library is used here, so this runs on a fresh machine.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)
# The read-only commands (tools/<module>.py); each takes --stack (default lab) itself.
READ_ONLY = {"verify": "tools.verify", "compat": "tools.compat", "upgrade-plan": "tools.upgrade_plan"}


def fail(message: str, code: int = 2) -> None:
    print(f"dev.py: {message}", file=sys.stderr)
    sys.exit(code)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest(requirements: Path) -> str:
    """Hash a requirements file and every file it includes with -r, so an edit anywhere rebuilds."""
    digest = hashlib.sha256()
    pending = [requirements]
    while pending:
        path = pending.pop()
        text = path.read_text()
        digest.update(text.encode())
        for line in text.splitlines():
            if line.startswith("-r "):
                pending.append((path.parent / line[3:].strip()).resolve())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def ensure_venv(venv: Path, requirements: Path) -> None:
    stamp = venv / ".requirements.sha256"
    wanted = requirements_digest(requirements)
    if stamp.exists() and stamp.read_text() == wanted and venv_python(venv).exists():
        return
    print(f"dev.py: setting up {venv.relative_to(ROOT)} from {requirements.relative_to(ROOT)}", flush=True)
    if not venv_python(venv).exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "--disable-pip-version-check", "-q"]
    result = subprocess.run([*pip, "install", "-r", str(requirements)])
    if result.returncode != 0:
        fail(f"pip could not install {requirements.relative_to(ROOT)} into {venv.relative_to(ROOT)}")
    stamp.write_text(wanted)


def setup() -> Path:
    if sys.version_info < MIN_PYTHON:
        fail(f"Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]}+ is required; this is {sys.version.split()[0]}")
    ensure_venv(ROOT / "venv", ROOT / "requirements-dev.txt")
    ensure_venv(ROOT / "policies" / "venv", ROOT / "policies" / "requirements.txt")
    return venv_python(ROOT / "venv")


def ensure_promtool() -> None:
    """promtool checks and unit-tests the alert rules; the tests need it and never skip without it."""
    if shutil.which("promtool"):
        return
    apt = shutil.which("apt-get")
    if apt is None:
        fail("promtool is required by the alert-rule tests and apt-get is not available here.\n"
             "Install Prometheus's promtool (for example from https://prometheus.io/download/) "
             "so that `promtool` is on PATH, then run this command again.")
    prefix: list[str] = []
    if os.geteuid() != 0:
        if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
            prefix = ["sudo", "-n"]
        else:
            fail("promtool is required by the alert-rule tests. Install it with\n"
                 "  sudo apt-get install prometheus\n"
                 "(Debian's package ships /usr/bin/promtool), then run this command again.")
    print("dev.py: installing promtool (Debian package 'prometheus')", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*prefix, apt, "-q", "update"], env=env, stdout=subprocess.DEVNULL)
    result = subprocess.run([*prefix, apt, "install", "-y", "-q", "--no-install-recommends", "prometheus"],
                            env=env, stdout=subprocess.DEVNULL)
    if result.returncode != 0 or not shutil.which("promtool"):
        fail("apt-get could not install the 'prometheus' package that provides promtool; "
             "install promtool by hand and run this command again.")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"plan", "test", "bench", "setup", "toolchain", "cluster", "pulumi", *READ_ONLY}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    if command == "toolchain":  # the standard library only: no virtualenv needed
        sys.path.insert(0, str(ROOT))
        from tools import toolchain
        return toolchain.main()
    python = setup()
    os.chdir(ROOT)
    if command == "setup":
        return 0
    if command in {"cluster", "pulumi"}:
        module = "tools.cluster" if command == "cluster" else "tools.engine"
        return subprocess.run([str(python), "-m", module, *rest]).returncode
    if command == "plan":
        args = rest if any(a == "--stack" or a.startswith("--stack=") for a in rest) else ["--stack", "lab", *rest]
        return subprocess.run([str(python), "-m", "tools.plan", *args]).returncode
    if command in READ_ONLY:
        return subprocess.run([str(python), "-m", READ_ONLY[command], *rest]).returncode
    if command == "bench":
        return subprocess.run([str(python), "-m", "bench", *rest]).returncode
    ensure_promtool()
    sys.path.insert(0, str(ROOT))
    from tools import toolchain
    try:  # before pytest, so that a first build shows its progress (the real tier's fixtures reuse it)
        toolchain.ensure()
    except toolchain.ToolchainError as error:
        fail(f"the real tier's toolchain could not be built: {error}")
    code = subprocess.run([str(python), "-m", "pytest", *rest]).returncode
    if code == 5:
        print("dev.py: pytest collected no tests; that is a failure, not a pass", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
