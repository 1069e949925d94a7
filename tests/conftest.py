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


# The SARIF 2.1.0 JSON schema, as Microsoft's SARIF SDK for JavaScript ships it (npm registry), pinned
# by version and checksum; downloaded once into .cache/ (never committed).
SARIF_PACKAGE = "https://registry.npmjs.org/@microsoft/sarif-matcher-utils/-/sarif-matcher-utils-1.0.0-beta.0.tgz"
SARIF_INTEGRITY = "JZzMgMK8nvSk6IDDjdC6HKbvj7knvatzwHmGAV5HeMe6kC6LFAy/a179Zzhw8lCKFXsR9siUm1H0nmc3KjcuZQ=="
SARIF_MEMBER = "package/lib/schemas/sarif-2.1.0-rtm.5.json"


@pytest.fixture(scope="session")
def sarif_schema() -> dict:
    import base64
    import hashlib
    import io
    import json
    import tarfile
    import urllib.request

    cached = ROOT / ".cache" / "sarif-2.1.0-rtm.5.json"
    if not cached.exists():
        try:
            with urllib.request.urlopen(SARIF_PACKAGE, timeout=60) as response:
                archive = response.read()
        except OSError as error:
            pytest.fail(f"cannot download the SARIF 2.1.0 schema from the npm registry ({error}); "
                        f"put {SARIF_MEMBER} of {SARIF_PACKAGE} at {cached.relative_to(ROOT)}")
        digest = base64.b64encode(hashlib.sha512(archive).digest()).decode()
        assert digest == SARIF_INTEGRITY, "the SARIF schema package does not match its pinned checksum"
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            member = tar.extractfile(SARIF_MEMBER)
            assert member is not None
            cached.parent.mkdir(exist_ok=True)
            cached.write_bytes(member.read())
    return json.loads(cached.read_text())


@pytest.fixture
def recorders(monkeypatch: pytest.MonkeyPatch) -> list:
    """Every mock-engine Recorder a test's program run creates, to see what it registered (even on failure)."""
    import tools.mockrun as mockrun

    created: list[mockrun.Recorder] = []

    class Spy(mockrun.Recorder):
        def __init__(self, *args: object, **kwargs: object):
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            created.append(self)

    monkeypatch.setattr(mockrun, "Recorder", Spy)
    return created
