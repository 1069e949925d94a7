"""The pack is a standard Python policy pack: PulumiPolicy.yaml with a venv runtime, pinned requirements, a
__main__.py that only assembles the PolicyPack from one module per policy, and nothing that reads files
a user's machine does not have."""
from __future__ import annotations

import ast
import importlib
import pkgutil
import re
import subprocess

import yaml
from pulumi_policy import EnforcementLevel

import gpu_policies

from policy_factories import PACK_DIR


def _policy_modules() -> dict[str, object]:
    modules = {}
    for info in pkgutil.iter_modules(gpu_policies.__path__):
        module = importlib.import_module(f"gpu_policies.{info.name}")
        if hasattr(module, "POLICY"):
            modules[info.name] = module
    return modules


def test_pulumi_policy_yaml_declares_a_python_pack_with_its_venv() -> None:
    project = yaml.safe_load((PACK_DIR / "PulumiPolicy.yaml").read_text())
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert re.fullmatch(r"\d+\.\d+\.\d+", project["version"]) and project["description"]


def test_requirements_are_pinned() -> None:
    lines = [line for line in (PACK_DIR / "requirements.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines and all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[^=\s]+", line) for line in lines)
    assert "pulumi-policy==1.21.0" in lines


def test_main_only_assembles_the_pack_from_every_policy_module() -> None:
    """Imports, the request screen's install, and one PolicyPack(...) listing every policy module."""
    tree = ast.parse((PACK_DIR / "__main__.py").read_text())
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    imports = [node for node in body if isinstance(node, (ast.Import, ast.ImportFrom))]
    rest = [node for node in body if node not in imports]
    assert len(rest) == 2 and all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call) for n in rest)
    assert ast.unparse(rest[0]) == "intake.install()"  # the request screen, before the SDK builds its servicer
    pack = rest[1].value
    assert getattr(pack.func, "id", None) == "PolicyPack"
    listed = [f"{element.value.id}" for keyword in pack.keywords if keyword.arg == "policies"
              for element in keyword.value.elts]  # type: ignore[attr-defined]
    assert sorted(listed) == sorted(_policy_modules())
    assert listed.index("pod_security_exemptions") == listed.index("pod_security") + 1


def test_every_policy_carries_its_metadata() -> None:
    names = []
    for module in _policy_modules().values():
        policy = module.POLICY  # type: ignore[attr-defined]
        names.append(policy.name)
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)+", policy.name)
        assert policy.description and policy.remediation_steps and policy.severity is not None
        assert policy.config_schema is not None and isinstance(policy.enforcement_level, EnforcementLevel)
        assert policy.name == module.NAME  # type: ignore[attr-defined]
    assert len(names) == len(set(names))


def test_only_the_two_advisory_policies_are_advisory() -> None:
    advisory = {m.POLICY.name for m in _policy_modules().values()  # type: ignore[attr-defined]
                if m.POLICY.enforcement_level is EnforcementLevel.ADVISORY}  # type: ignore[attr-defined]
    assert advisory == {"gpu-operator-driver-documented", "pod-security-exemptions"}


def test_pack_reads_no_upstream_files_and_has_no_machine_paths() -> None:
    code = [*PACK_DIR.glob("*.py"), *PACK_DIR.glob("*.yaml"), *(PACK_DIR / "gpu_policies").glob("*.py"),
            *(PACK_DIR / "config").glob("*.json")]
    for path in [*code, *PACK_DIR.glob("*.md")]:
        assert not re.search(r"/work/|/home/|/root/|/tmp/", path.read_text()), path.name
    for path in code:
        assert not re.search(r"shared/upstream|GPU_PLATFORM_UPSTREAM|open\(|read_text|Path\(", path.read_text()), path.name


def test_install_sets_the_collector_thresholds_and_the_screening_servicer() -> None:
    """What __main__.py's ``intake.install()`` does to the pack's own process (run in a fresh interpreter of the
    pack's venv, so this test process keeps the SDK as shipped)."""
    from gpu_policies.intake import GC_THRESHOLDS

    code = ("import gc; from gpu_policies import intake; intake.install(); intake.install(); "
            "from pulumi_policy import policy; servicer = policy._PolicyAnalyzerServicer; "
            "print(gc.get_threshold(), servicer.__name__, servicer.__mro__[1].__name__)")
    done = subprocess.run([str(PACK_DIR / "venv" / "bin" / "python"), "-c", code], cwd=PACK_DIR,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{GC_THRESHOLDS} ScreeningServicer _PolicyAnalyzerServicer"
