"""Fixtures for the policy pack's tests: a fresh run per test, and the pack started as the CLI starts it."""
from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from gpu_policies.config import reset_reported_config_errors
from policy_factories import LAB_CONFIG, PACK_DIR


@pytest.fixture(autouse=True)
def _fresh_run() -> None:
    """Config errors are reported once per pack process; each test is a new run."""
    reset_reported_config_errors()


@pytest.fixture(scope="session")
def lab_config() -> dict:
    return json.loads(LAB_CONFIG.read_text())


@pytest.fixture(scope="module")
def pack(lab_config: dict) -> Iterator:
    """policies/ started with its own venv exactly as the CLI starts a Python pack, configured with lab.json.
    A missing venv fails (it is required): create it with `python3 dev.py setup`."""
    from tools.analyzer import PackError, open_pack

    try:
        with open_pack(PACK_DIR, lab_config) as client:
            yield client
    except PackError as error:
        pytest.fail(str(error))
