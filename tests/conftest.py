"""Shared test settings: import paths and the upstream data folder."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The program's modules (components/, tools/) import from the project root, as under the Pulumi CLI;
# the policy pack's modules import from policies/, as when the CLI runs the pack there.
for path in (ROOT, ROOT / "policies"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from tools.upstream import ENV_VAR, upstream_dir  # noqa: E402


@pytest.fixture(scope="session")
def upstream() -> Path:
    """The upstream data folder; a missing folder fails the test (it is required, never skipped)."""
    path = upstream_dir()
    if not (path / "gpu-operator").is_dir():
        pytest.fail(f"upstream data not found at {path}; set {ENV_VAR} to the folder that holds gpu-operator/")
    return path
