"""tools/plan_locations.py: the stack file's line of a config key path, which config key a judged value came
from, and the program line that declared a resource."""
from __future__ import annotations

from pathlib import Path

from tools.plan_locations import StackFileLines, config_source, declared_at

STACK = """\
# a comment
config:
  gpu-platform:gpuOperator:
    driver:
      version: 580.173.02
  nodes:
    - name: a
      labels:
        nvidia.com/gpu.product: NVIDIA-RTX-A4000
    - name: b
  gpu-platform:registryPassword:
    secure: AAABAx
  other:driverVersion: 580.173.02
"""


def lines(tmp_path: Path) -> StackFileLines:
    path = tmp_path / "Pulumi.s.yaml"
    path.write_text(STACK)
    return StackFileLines(path, "gpu-platform")


def test_a_key_path_resolves_to_its_own_line_through_maps_lists_and_dotted_keys(tmp_path):
    found = lines(tmp_path)
    assert found.location("gpu-platform:gpuOperator.driver.version").line == 5
    assert found.location("gpu-platform:nodes[1].name").line == 10  # bare `nodes` is the project's key
    assert found.location("gpu-platform:nodes[0].labels.nvidia.com/gpu.product").line == 9


def test_a_missing_key_points_at_its_deepest_existing_parent_or_at_config(tmp_path):
    found = lines(tmp_path)
    assert found.location("gpu-platform:gpuOperator.driver.upgradePolicy").line == 4
    assert found.location("gpu-platform:nodes[7].name").line == 6
    assert found.location("gpu-platform:monitoring").line == 2
    assert found.location("gpu-platform:monitoring").key == "gpu-platform:monitoring"


def test_an_unreadable_stack_file_gives_line_1(tmp_path):
    assert StackFileLines(tmp_path / "missing.yaml", "p").location("p:x").line == 1


def test_a_judged_value_maps_to_the_one_key_with_that_value_and_name(tmp_path):
    leaves = lines(tmp_path).leaves()
    inputs = {"values": {"driver": {"version": "580.173.02"}}}
    where = config_source('values.driver.version is "580.173.02", which is not allowed', inputs, leaves)
    # two keys hold 580.173.02; only one ends in driver.version
    assert where is not None and (where.key, where.line) == ("gpu-platform:gpuOperator.driver.version", 5)


def test_no_key_when_the_value_is_absent_ambiguous_or_secret(tmp_path):
    leaves = lines(tmp_path).leaves()
    assert config_source("values.driver.version is not set", {"values": {"driver": {}}}, leaves) is None
    assert config_source("values.driver.version", {"values": {"driver": {"version": "1.0"}}}, leaves) is None
    assert not any("registryPassword" in key for key, _, _ in leaves)  # secure values are never matched


def test_the_declaring_frame_is_the_programs_own_innermost_one(tmp_path):
    program = tmp_path / "program"
    frames = ((str(program / "venv/lib/python3.11/site-packages/pulumi_kubernetes/x.py"), 9),
              (str(program / "components/operator.py"), 42), (str(program / "__main__.py"), 7))
    where = declared_at(frames, program)
    assert where is not None and (where.file.name, where.line) == ("operator.py", 42)
    assert declared_at(((str(tmp_path / "elsewhere.py"), 1),), program) is None


def test_a_config_errors_problems_are_read_from_the_runerrors_context_or_not_at_all():
    import pulumi

    from tools.mockrun import config_problems_of

    class ConfigError(Exception):
        def __init__(self, problems: object):
            super().__init__("invalid")
            self.problems = problems

    def raised(problems: object) -> pulumi.RunError:
        try:
            try:
                raise ConfigError(problems)
            except ConfigError as error:
                raise pulumi.RunError(str(error)) from None
        except pulumi.RunError as run_error:
            return run_error

    assert config_problems_of(raised([("gpu-platform:nodes[0].gpu", "unknown")])) == [
        ("gpu-platform:nodes[0].gpu", "unknown")]
    assert config_problems_of(raised(["not a pair"])) is None
    assert config_problems_of(pulumi.RunError("no context")) is None
