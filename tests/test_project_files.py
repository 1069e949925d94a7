"""The files a user and the Pulumi CLI read agree with each other: README commands, CI, project files, pins."""
from __future__ import annotations

import re

import yaml

from tests.factories import ROOT


def readme_commands() -> list[str]:
    block = re.search(r"```sh\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert block, "the README starts with a sh block of commands"
    return [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]


def test_the_readme_opens_with_the_plan_and_test_commands():
    assert readme_commands() == ["python3 dev.py plan", "python3 dev.py test"]
    first_lines = (ROOT / "README.md").read_text().splitlines()[:6]
    assert "```sh" in first_lines


def test_ci_runs_exactly_the_readmes_test_command():
    script = (ROOT / ".ci" / "run").read_text().splitlines()
    commands = [line for line in script if line and not line.startswith("#") and not line.startswith(("set ", "cd "))]
    assert commands == ["python3 dev.py test"]


def test_the_pulumi_project_and_pack_files_are_what_the_cli_expects():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["name"] == "gpu-platform" and project["description"]
    assert project["runtime"] == {"name": "python", "options": {"toolchain": "pip", "virtualenv": "venv"}}
    pack = yaml.safe_load((ROOT / "policies" / "PulumiPolicy.yaml").read_text())
    assert pack["runtime"]["name"] == "python" and pack["runtime"]["options"]["virtualenv"] == "venv"
    assert re.match(r"^\d+\.\d+\.\d+$", str(pack["version"]))


def test_every_python_dependency_is_pinned():
    for name in ("requirements.txt", "requirements-dev.txt", "policies/requirements.txt"):
        for line in (ROOT / name).read_text().splitlines():
            line = line.strip()
            if not line or line.startswith(("#", "-r ")):
                continue
            assert re.match(r"^[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+$", line), f"{name}: {line!r} is not pinned"


def test_main_stays_thin():
    lines = (ROOT / "__main__.py").read_text().splitlines()
    assert len(lines) <= 30


def test_the_pull_request_workflow_runs_tests_plan_and_preview():
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "pull-request.yml").read_text())
    jobs = workflow["jobs"]
    assert any(step.get("run") == "python3 dev.py test" for step in jobs["test"]["steps"])
    plan_script = "\n".join(step.get("run", "") for step in jobs["plan"]["steps"])
    assert "python3 dev.py plan --stack" in plan_script and "--format sarif" in plan_script
    assert any("upload-sarif" in step.get("uses", "") for step in jobs["plan"]["steps"])
    preview = next(step for step in jobs["preview"]["steps"] if "pulumi/actions" in step.get("uses", ""))
    assert preview["with"]["policyPacks"] == "policies"
    assert jobs["preview-skipped"]["if"] == "${{ needs.secrets.outputs.preview != 'true' }}"


def test_every_dev_py_command_is_documented_in_the_readme():
    """Each command of dev.py's usage appears in a README command block or in its opening set-up paragraphs
    (`dev.py setup` was documented only in policies/README.md)."""
    usage = re.findall(r"^    python3 dev\.py (\w+)", (ROOT / "dev.py").read_text(), re.M)
    readme = (ROOT / "README.md").read_text()
    opening = readme.split("\n## ", 1)[0]
    blocks = "\n".join(re.findall(r"```sh\n(.*?)```", readme, re.S))
    assert usage and {"plan", "test", "setup"} <= set(usage)
    assert [c for c in usage if f"dev.py {c}" not in blocks and f"dev.py {c}" not in opening] == []
