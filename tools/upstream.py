"""Where upstream data (chart values and CRDs, PSA fixtures, DCGM metrics) is read from.

One setting: the environment variable GPU_PLATFORM_UPSTREAM, default ``../shared/upstream`` beside the
project. Those files are fetched from elsewhere and never committed here.
"""
from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_VAR = "GPU_PLATFORM_UPSTREAM"


def upstream_dir() -> Path:
    """The upstream data folder (it may not exist on a user's machine; callers say so when they need it)."""
    configured = os.environ.get(ENV_VAR)
    return Path(configured).resolve() if configured else (ROOT.parent / "shared" / "upstream").resolve()
