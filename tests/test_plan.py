"""The offline plan end to end, run as a reviewer runs it: `python -m tools.plan` in its own process.

Each run starts the real policy pack (policies/__main__.py, as the CLI does) and the real program under
the mock engine; exit codes and reports are what CI and code scanning see.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree

import jsonschema
import pytest
import yaml

from tests.factories import ROOT, lab_raw, mutate

UNSAFE = ROOT / "tests" / "fixtures" / "unsafe-program"


def plan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tools.plan", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def lab_text() -> subprocess.CompletedProcess[str]:
    return plan("--stack", "lab")


@pytest.fixture(scope="module")
def lab_json() -> dict:
    result = plan("--stack", "lab", "--format", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def unsafe_json() -> tuple[int, dict]:
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "json")
    return result.returncode, json.loads(result.stdout)


def test_the_lab_plan_passes_with_zero_mandatory_violations(lab_text):
    assert lab_text.returncode == 0, lab_text.stdout + lab_text.stderr
    out = lab_text.stdout
    assert "Policies: pack gpu-platform-guardrails" in out and ": 0 mandatory," in out
    assert out.rstrip().endswith("Result: PASS (exit 0)")


def test_the_lab_summary_shows_the_release_settings(lab_text):
    out = lab_text.stdout
    assert "  chart    gpu-operator v26.7.0 from https://helm.ngc.nvidia.com/nvidia" in out
    assert "  driver   580.173.02, operator-managed" in out
    assert "  upgrade  1 node(s) at a time, GPU pods deleted (timeout 300s), drain off" in out
    assert "  sharing  default mps-4; mps-4=MPS x4 (ConfigMap device-plugin-config-" in out
    assert "  toolkit  CONTAINERD_SOCKET=/run/k3s/containerd/containerd.sock" in out


def test_the_lab_plan_lists_every_resource_by_type_and_namespace(lab_json, lab_text):
    custom = [r for r in lab_json["resources"] if r["custom"]]
    assert f"Resources: {len(custom)} (" in lab_text.stdout
    kinds = {r["type"] for r in custom}
    assert {"kubernetes:core/v1:Namespace", "kubernetes:core/v1:NodePatch", "kubernetes:helm.sh/v3:Release"} <= kinds
    assert "  gpu-operator\n" in lab_text.stdout and "    Node proj-k8sw04\n" in lab_text.stdout
    assert lab_json["violations"] == [] and lab_json["exitCode"] == 0
    assert all(s["findings"] == [] for s in lab_json["schemas"])
    checked = {s["urn"] for s in lab_json["schemas"]}
    unchecked = [r["urn"] for r in custom if r["type"] != "kubernetes:helm.sh/v3:Release" and r["urn"] not in checked]
    assert unchecked == [], (f"manifests without a schema check: {unchecked}; "
                             f"the plan says: {lab_json['unchecked'] + lab_json['schemaNotes']}")


def test_an_unsafe_program_exits_1_and_names_both_problems(unsafe_json):
    code, report = unsafe_json
    assert code == 1
    mandatory = [v for v in report["violations"] if v["level"] == "mandatory"]
    privileged = [v for v in mandatory if v["policy"] == "pod-security-standards" and "privileged" in v["message"]]
    unpinned = [v for v in mandatory if v["policy"] == "gpu-operator-driver-pinned"]
    assert privileged and privileged[0]["resource"] == "Deployment ml/trainer"
    assert "spec.template.spec.containers[0].securityContext.privileged" in privileged[0]["message"]
    assert unpinned and unpinned[0]["resource"] == "helm release gpu-operator (gpu-operator v26.7.0)"
    assert "values.driver.version" in unpinned[0]["message"]


def test_the_unsafe_text_report_names_both(tmp_path):
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--out", str(tmp_path / "manifests"))
    assert result.returncode == 1
    assert "[mandatory] pod-security-standards" in result.stdout
    assert "[mandatory] gpu-operator-driver-pinned" in result.stdout
    assert result.stdout.rstrip().endswith("Result: FAIL (exit 1)")
    files = sorted(p.name for p in (tmp_path / "manifests").iterdir())
    assert files == ["deployment-ml-trainer.yaml", "helm-release-gpu-operator-gpu-operator-v26.7.0.yaml"]
    deployment = yaml.safe_load((tmp_path / "manifests" / "deployment-ml-trainer.yaml").read_text())
    assert deployment["kind"] == "Deployment" and deployment["metadata"]["name"] == "trainer"


def broken_program(tmp_path: Path, raw: dict) -> Path:
    program = tmp_path / "program"
    program.mkdir()
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(ROOT / name, program / name)
    (program / "components").symlink_to(ROOT / "components", target_is_directory=True)
    config = {f"gpu-platform:{key}": value for key, value in raw.items()}
    (program / "Pulumi.broken.yaml").write_text(yaml.safe_dump({"config": config}))
    return program


def test_a_broken_stack_config_exits_2_with_the_config_message(tmp_path):
    program = broken_program(tmp_path, mutate(lab_raw(), "gpuOperator.driver.version", "525.85.05"))
    result = plan("--stack", "broken", "--program-dir", str(program), "--no-policies")
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("plan: invalid stack config (1 problem); nothing was declared:\n"
                                    "  - gpu-platform:gpuOperator.driver.version: NVIDIA documents these drivers")
    assert "Traceback" not in result.stderr


def test_a_missing_stack_file_and_a_bad_policy_config_exit_2(tmp_path):
    result = plan("--stack", "nosuchstack", "--no-policies")
    assert (result.returncode, result.stderr) == (2, "plan: no stack file Pulumi.nosuchstack.yaml in "
                                                     f"{ROOT}\n")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"gpu-operator-driver-pinned": {"allowedDriverVersions": "580.173.02"}}))
    result = plan("--stack", "lab", "--policy-pack-config", str(bad))
    assert result.returncode == 2
    assert "plan: policy pack configuration is invalid:" in result.stderr
    assert "gpu-operator-driver-pinned: allowedDriverVersions: '580.173.02' is not of type 'array'" in result.stderr
    result = plan("--stack", "lab", "--policy-pack-config", str(bad), "--format", "sarif")
    [entry] = json.loads(result.stdout)["runs"][0]["results"]
    assert result.returncode == 2 and "is not of type 'array'" in entry["message"]["text"]
    assert entry["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == bad.as_posix()


def test_sarif_output_validates_against_the_sarif_2_1_0_schema(sarif_schema):
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "sarif")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    jsonschema.Draft4Validator(sarif_schema).validate(document)
    results = document["runs"][0]["results"]
    rules = {r["id"] for r in document["runs"][0]["tool"]["driver"]["rules"]}
    assert {"pod-security-standards", "gpu-operator-driver-pinned", "kubernetes-schema"} <= rules
    assert {r["ruleId"] for r in results if r["level"] == "error"} >= {"pod-security-standards",
                                                                        "gpu-operator-driver-pinned"}
    # Each message names its resource once ("Deployment ml/trainer: Deployment ml/trainer, ..." was the bug).
    texts = [r["message"]["text"] for r in results if r["ruleId"] == "pod-security-standards"]
    assert texts and all(text.count("Deployment ml/trainer") <= 1 for text in texts), texts


def test_junit_output_parses_and_fails_the_right_cases_at_their_lines():
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "junit")
    suites = ElementTree.fromstring(result.stdout)
    failed = {(suite.get("name"), case.get("name")) for suite in suites for case in suite
              if case.find("failure") is not None}
    assert ("pod-security-standards", "Deployment ml/trainer") in failed
    assert ("gpu-operator-driver-pinned", "helm release gpu-operator (gpu-operator v26.7.0)") in failed
    assert all(int(s.get("tests")) == len(s.findall("testcase")) for s in suites)
    [trainer] = [case for suite in suites if suite.get("name") == "pod-security-standards" for case in suite
                 if case.get("name") == "Deployment ml/trainer"]
    assert (trainer.get("file"), trainer.get("line")) == (
        "tests/fixtures/unsafe-program/__main__.py", str(stack_line(UNSAFE / "__main__.py", "k8s.apps.v1.Deployment(")))


# --- writing reports -----------------------------------------------------------------------------------------

def test_a_report_that_cannot_be_written_is_one_line_and_exit_2(tmp_path):
    """Not a traceback with exit 1 (the code of a policy violation): the user's mistake, named, before the run."""
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    cases = {
        ("--output", str(tmp_path / "missing" / "plan.sarif")): f"the folder {tmp_path / 'missing'} does not exist",
        ("--output", str(tmp_path)): "is a folder; --output takes the report's file name",
        ("--out", str(a_file)): "is a file; --out takes a folder",
        ("--out", str(a_file / "manifests")): f"{a_file} is a file, not a folder",
    }
    for option, expected in cases.items():
        result = plan("--stack", "lab", "--no-policies", *option)
        assert result.returncode == 2, (option, result.stderr)
        assert result.stderr.startswith("plan: ") and result.stderr.count("\n") == 1, (option, result.stderr)
        assert expected in result.stderr and "Traceback" not in result.stderr, (option, result.stderr)
        assert result.stdout == ""


def stack_line(path: Path, text: str) -> int:
    [line] = [n for n, content in enumerate(path.read_text().splitlines(), 1) if text in content]
    return line


def test_an_invalid_config_still_writes_a_sarif_with_each_problem_at_its_key(tmp_path, sarif_schema):
    """The workflow uploads the SARIF whatever the exit code: a config error must be in it, on the key's line."""
    raw = mutate(mutate(lab_raw(), "nodes[0].gpu", "NVIDIA-RTX-A9999"), "nodes[0].name", "Bad_Name")
    program = broken_program(tmp_path, raw)
    output = tmp_path / "plan.sarif"
    result = plan("--stack", "broken", "--program-dir", str(program), "--format", "sarif", "--output", str(output))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("plan: invalid stack config (2 problems)")
    document = json.loads(output.read_text())
    jsonschema.Draft4Validator(sarif_schema).validate(document)
    stack = program / "Pulumi.broken.yaml"
    found = {}
    for entry in document["runs"][0]["results"]:
        [location] = entry["locations"]
        assert entry["ruleId"] == "plan-error" and entry["level"] == "error"
        key = location["logicalLocations"][0]["fullyQualifiedName"]
        found[key] = (location["physicalLocation"]["artifactLocation"]["uri"],
                      location["physicalLocation"]["region"]["startLine"])
        assert entry["message"]["text"].startswith(key + ": ")
    # tmp_path is in no git checkout: paths are relative to the program folder
    assert found == {"gpu-platform:nodes[0].gpu": ("Pulumi.broken.yaml", stack_line(stack, "gpu: NVIDIA-RTX-A9999")),
                     "gpu-platform:nodes[0].name": ("Pulumi.broken.yaml", stack_line(stack, "name: Bad_Name"))}


def test_an_invalid_config_in_json_lists_each_problem_with_its_line(tmp_path):
    program = broken_program(tmp_path, mutate(lab_raw(), "gpuOperator.driver.version", "525.85.05"))
    result = plan("--stack", "broken", "--program-dir", str(program), "--format", "json", "--no-policies")
    assert result.returncode == 2
    document = json.loads(result.stdout)
    [problem] = document["problems"]
    assert document["exitCode"] == 2 and document["error"].startswith("invalid stack config (1 problem)")
    assert problem["location"]["key"] == "gpu-platform:gpuOperator.driver.version"
    assert problem["location"]["line"] == stack_line(program / "Pulumi.broken.yaml", "version: 525.85.05")


# --- review annotations on the right line ------------------------------------------------------------------------

def test_a_violation_points_at_the_program_line_that_declared_the_resource(unsafe_json):
    _, report = unsafe_json
    main = UNSAFE / "__main__.py"
    expected = {"pod-security-standards": stack_line(main, "k8s.apps.v1.Deployment("),
                "gpu-operator-driver-pinned": stack_line(main, "k8s.helm.v3.Release(")}
    for verdict in report["violations"]:
        assert verdict["declaredAt"] == {"file": "tests/fixtures/unsafe-program/__main__.py",
                                         "line": expected[verdict["policy"]]}, verdict
        assert verdict["configKey"] is None  # neither value comes from the stack's config
    by_urn = {r["urn"]: r for r in report["resources"]}
    assert all(by_urn[v["urn"]]["declaredAt"] == v["declaredAt"] for v in report["violations"])


def at(location: dict) -> tuple[str, int]:
    """(file, line) of a SARIF location."""
    return location["physicalLocation"]["artifactLocation"]["uri"], location["physicalLocation"]["region"]["startLine"]


def test_sarif_results_sit_on_the_declaring_line_relative_to_the_repository():
    result = plan("--stack", "test", "--program-dir", str(UNSAFE), "--format", "sarif")
    lines = {(r["ruleId"], *at(location))
             for r in json.loads(result.stdout)["runs"][0]["results"] for location in r["locations"]}
    main = UNSAFE / "__main__.py"
    assert lines == {("pod-security-standards", "tests/fixtures/unsafe-program/__main__.py",
                      stack_line(main, "k8s.apps.v1.Deployment(")),
                     ("gpu-operator-driver-pinned", "tests/fixtures/unsafe-program/__main__.py",
                      stack_line(main, "k8s.helm.v3.Release("))}


def test_a_violation_of_a_config_value_points_at_its_stack_file_key_then_the_component(tmp_path):
    """A pack config that no longer allows the lab's driver: the reviewer sees it on `version: 580.173.02`."""
    config = tmp_path / "pack.json"
    config.write_text(json.dumps({"gpu-operator-driver-pinned": {"allowedDriverVersions": ["595.91.07"]}}))
    result = plan("--stack", "lab", "--policy-pack-config", str(config), "--format", "sarif")
    assert result.returncode == 1, result.stderr
    results = json.loads(result.stdout)["runs"][0]["results"]
    [entry] = [r for r in results if r["ruleId"] == "gpu-operator-driver-pinned"]
    [key, component] = [at(location) for location in entry["locations"]]
    assert key == ("Pulumi.lab.yaml", stack_line(ROOT / "Pulumi.lab.yaml", "version: 580.173.02"))
    key_name = entry["locations"][0]["logicalLocations"][-1]["fullyQualifiedName"]
    assert key_name == "gpu-platform:gpuOperator.driver.version"
    assert component[0] == "components/gpu_operator.py"
    declaring = (ROOT / component[0]).read_text().splitlines()[component[1] - 1]
    assert "Release(" in declaring, declaring


# --- set-up and upstream data -------------------------------------------------------------------------------------

def test_a_venv_without_the_plans_packages_gets_one_line_naming_them_and_the_setup_command():
    """A venv built from requirements.txt alone (what `pulumi install` builds) lacks the schema checker."""
    blocked = "; ".join(f"sys.modules[{name!r}] = None" for name in ("jsonschema", "kubernetes_validate"))
    code = (f"import runpy, sys; {blocked}; sys.argv = ['tools.plan', '--stack', 'lab']; "
            "runpy.run_module('tools.plan', run_name='__main__', alter_sys=True)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.count("\n") == 1
    assert "lacks jsonschema, kubernetes-validate" in result.stderr and "python3 dev.py setup" in result.stderr


def test_without_upstream_crds_the_plan_is_incomplete_and_names_the_setting_and_the_folder(tmp_path):
    """Exit 2, never 0, when CRD-backed manifests could not be checked; the note names the fix that applies."""
    wrong = tmp_path / "not-upstream"
    wrong.mkdir()
    result = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "lab", "--no-policies"], cwd=ROOT,
                            capture_output=True, text=True, timeout=300,
                            env={**os.environ, "GPU_PLATFORM_UPSTREAM": str(wrong)})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "INCOMPLETE PrometheusRule monitoring/" in result.stdout
    assert result.stdout.rstrip().endswith("Result: INCOMPLETE (exit 2)")
    assert result.stderr == ("plan: INCOMPLETE, 1 custom resource(s) not checked (PrometheusRule "
                             "monitoring/gpu-platform-gpu-alerts): no CRD schemas: "
                             f"{wrong} has no gpu-operator/ folder (from GPU_PLATFORM_UPSTREAM={wrong}); set "
                             "GPU_PLATFORM_UPSTREAM to the folder that holds gpu-operator/<tag>/crds/ and "
                             "prometheus-operator/\n")
    sarif = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "lab", "--no-policies", "--format", "sarif"],
                           cwd=ROOT, capture_output=True, text=True, timeout=300,
                           env={**os.environ, "GPU_PLATFORM_UPSTREAM": str(wrong)})
    [entry] = json.loads(sarif.stdout)["runs"][0]["results"]
    assert sarif.returncode == 2 and entry["level"] == "warning"
    assert "not checked, no CRD schemas" in entry["message"]["text"]
    assert at(entry["locations"][0])[0] == "components/monitoring.py"


def test_the_default_upstream_folder_is_named_when_the_setting_is_unset(monkeypatch, tmp_path):
    import tools.upstream
    from tools.plan import crd_source

    monkeypatch.delenv("GPU_PLATFORM_UPSTREAM", raising=False)
    monkeypatch.setattr(tools.upstream, "ROOT", tmp_path / "project")
    files, missing = crd_source("v26.7.0")
    assert files == []
    assert missing.startswith(f"no CRD schemas: {tmp_path / 'shared' / 'upstream'} has no gpu-operator/ folder "
                              "(from the default ../shared/upstream beside the project "
                              "(GPU_PLATFORM_UPSTREAM is not set))")


def test_a_chart_release_without_crds_upstream_is_incomplete(monkeypatch, upstream):
    from tools.plan import crd_source

    monkeypatch.setenv("GPU_PLATFORM_UPSTREAM", str(upstream))
    files, missing = crd_source("v99.1.0")
    assert missing.startswith("no CRD schemas of gpu-operator v99.1.0 (or its minor release) in "
                              f"{upstream / 'gpu-operator'}")


# --- any Pulumi Python program: what Pulumi.yaml says -------------------------------------------------------------

def project_with_main_and_defaults(tmp_path: Path, stack_config: dict, project_config: dict | None = None) -> Path:
    """A program in infra/ (`main: infra/`), stack files in stacks/ (`stackConfigDir`), defaults in Pulumi.yaml."""
    program = tmp_path / "repo"
    (program / "infra").mkdir(parents=True)
    (program / "stacks").mkdir()
    (program / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "elsewhere", "runtime": "python", "main": "infra/", "stackConfigDir": "stacks",
        "config": project_config if project_config is not None else {
            "team": {"type": "string", "default": "ml"}, "replicas": 2,
            "labels": {"type": "object", "default": {"tier": "gpu"}}}}))
    (program / "infra" / "names.py").write_text("PREFIX = 'from-infra'\n")
    (program / "infra" / "__main__.py").write_text(
        "import pulumi\nimport pulumi_kubernetes as k8s\nfrom names import PREFIX\n\n"
        "config = pulumi.Config()\n"
        "k8s.core.v1.ConfigMap('settings', metadata={'name': PREFIX, 'namespace': config.require('team'), "
        "'labels': config.require_object('labels')},\n"
        "                      data={'replicas': str(config.require_int('replicas')),\n"
        "                            'cwd': __import__('os').getcwd()})\n")
    (program / "stacks" / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": stack_config}))
    return program


def test_main_stack_config_dir_and_project_config_defaults_are_honoured(tmp_path):
    program = project_with_main_and_defaults(tmp_path, {"elsewhere:replicas": 3})
    result = plan("--stack", "dev", "--program-dir", str(program), "--no-policies", "--format", "json")
    assert result.returncode == 0, result.stderr
    [config_map] = [r for r in json.loads(result.stdout)["resources"] if r["type"] == "kubernetes:core/v1:ConfigMap"]
    inputs = config_map["inputs"]
    assert inputs["metadata"] == {"name": "from-infra", "namespace": "ml", "labels": {"tier": "gpu"}}
    assert inputs["data"] == {"replicas": "3", "cwd": str(program / "infra")}  # the stack's value wins
    assert config_map["declaredAt"] == {"file": "infra/__main__.py", "line": 6}


def test_a_declared_project_key_without_default_or_stack_value_is_refused_as_the_cli_does(tmp_path):
    program = project_with_main_and_defaults(tmp_path, {}, {"team": {"type": "string"}})
    result = plan("--stack", "dev", "--program-dir", str(program), "--no-policies")
    assert result.returncode == 2
    assert result.stderr == ("plan: Pulumi.dev.yaml: Stack 'dev' is missing configuration value 'elsewhere:team' "
                             "(Pulumi.yaml declares it without a default)\n")


def test_a_key_declared_secret_must_be_set_as_a_secret(tmp_path):
    program = project_with_main_and_defaults(tmp_path, {"elsewhere:team": "hunter2-in-plaintext"},
                                             {"team": {"type": "string", "secret": True}})
    result = plan("--stack", "dev", "--program-dir", str(program), "--no-policies")
    assert result.returncode == 2 and "elsewhere:team must be a secret" in result.stderr
    assert "hunter2" not in result.stderr


def program_with_its_own_venv(tmp_path: Path, main: str) -> Path:
    """A program whose Pulumi.yaml names its own virtualenv holding a package the plan's venv lacks."""
    import importlib.util
    import sysconfig
    import venv as venv_module

    program = tmp_path / "program"
    program.mkdir(parents=True)
    (program / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "own-venv", "runtime": {"name": "python", "options": {"toolchain": "pip", "virtualenv": "env"}}}))
    (program / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {"own-venv:team": "ml"}}))
    (program / "__main__.py").write_text(main)
    venv_module.EnvBuilder(with_pip=False).create(program / "env")
    [packages] = (program / "env" / "lib").glob("python3*/site-packages")
    # The program's venv: the plan's packages (pulumi, pulumi_kubernetes) through a .pth, plus its own module.
    (packages / "plan_packages.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (packages / "own_venv_marker.py").write_text("VALUE = 'only in the program venv'\n")
    assert importlib.util.find_spec("own_venv_marker") is None  # the plan's own venv does not have it
    return program


OWN_VENV_MAIN = '''\
import sys
import pulumi
import pulumi_kubernetes as k8s
import own_venv_marker

k8s.core.v1.ConfigMap("marker", metadata={"name": "marker", "namespace": pulumi.Config().require("team")},
                      data={"marker": own_venv_marker.VALUE, "prefix": sys.prefix})
k8s.apps.v1.Deployment("trainer", metadata={"name": "trainer", "namespace": "ml"}, spec={
    "selector": {"matchLabels": {"app": "t"}},
    "template": {"metadata": {"labels": {"app": "t"}}, "spec": {"containers": [
        {"name": "t", "image": "nvcr.io/nvidia/pytorch:25.01-py3", "securityContext": {"privileged": True}}]}}})
'''


def test_the_program_runs_with_its_own_virtualenv_as_the_cli_would(tmp_path):
    program = program_with_its_own_venv(tmp_path, OWN_VENV_MAIN)
    result = plan("--stack", "dev", "--program-dir", str(program), "--format", "json")
    assert result.returncode == 1, result.stderr  # the privileged Deployment, judged by the pack as it streamed
    report = json.loads(result.stdout)
    [config_map] = [r for r in report["resources"] if r["type"] == "kubernetes:core/v1:ConfigMap"]
    assert config_map["inputs"]["data"] == {"marker": "only in the program venv", "prefix": str(program / "env")}
    privileged = [v for v in report["violations"] if "privileged is true" in v["message"]]
    assert privileged and privileged[0]["declaredAt"] == {"file": "__main__.py", "line": 8}
    text = plan("--stack", "dev", "--program-dir", str(program), "--no-policies")
    assert "Program run with its virtualenv env\n" in text.stdout


def test_a_program_failing_in_its_own_virtualenv_is_one_message_with_its_line(tmp_path):
    program = program_with_its_own_venv(tmp_path, "import pulumi\n\nraise ValueError('no GPUs here')\n")
    result = plan("--stack", "dev", "--program-dir", str(program), "--no-policies")
    assert (result.returncode, result.stderr) == (2, "plan: the program failed: ValueError: no GPUs here "
                                                     "(at __main__.py:3)\n")
    run_error = program_with_its_own_venv(tmp_path / "b", "import pulumi\n\nraise pulumi.RunError('bad config')\n")
    result = plan("--stack", "dev", "--program-dir", str(run_error), "--no-policies")
    assert (result.returncode, result.stderr) == (2, "plan: bad config\n")


def test_a_schema_finding_points_at_the_line_that_declared_the_manifest(tmp_path):
    program = tmp_path / "program"
    program.mkdir()
    (program / "Pulumi.yaml").write_text(yaml.safe_dump({"name": "schema", "runtime": "python"}))
    (program / "Pulumi.dev.yaml").write_text(yaml.safe_dump({"config": {}}))
    (program / "__main__.py").write_text(
        "import pulumi_kubernetes as k8s\n\n"
        "k8s.apiextensions.CustomResource('odd', api_version='v1', kind='ConfigMap',\n"
        "                                 metadata={'name': 'odd', 'namespace': 'ml'}, spec={'data': 'x'})\n")
    text = plan("--stack", "dev", "--program-dir", str(program), "--no-policies")
    assert text.returncode == 1
    assert "  INVALID ConfigMap ml/odd (Kubernetes 1.34 OpenAPI) at __main__.py:3\n" in text.stdout
    sarif = plan("--stack", "dev", "--program-dir", str(program), "--no-policies", "--format", "sarif")
    [entry] = json.loads(sarif.stdout)["runs"][0]["results"]
    location = entry["locations"][0]["physicalLocation"]
    assert entry["ruleId"] == "kubernetes-schema" and "'spec' was unexpected" in entry["message"]["text"]
    assert (location["artifactLocation"]["uri"], location["region"]["startLine"]) == ("__main__.py", 3)
