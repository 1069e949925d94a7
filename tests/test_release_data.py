"""The project's release data (components/data) agrees with the upstream sources it was taken from."""
from __future__ import annotations

import csv
from pathlib import Path

from components.releases import end_of_life_branches, supported_releases


def read_tsv(path: Path) -> list[dict[str, str]]:
    with path.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_documented_drivers_match_nvidias_component_matrix(upstream):
    matrix = read_tsv(upstream / "gpu-operator" / "component-matrix.tsv")
    for chart, release in supported_releases().items():
        rows = [r for r in matrix if r["operator_version"] == chart.lstrip("v")]
        assert rows, f"{chart} is not in NVIDIA's component matrix"
        expected = {(r["driver_version"], "D" in r["flags"], "R" in r["flags"]) for r in rows}
        assert {(d.version, d.default, d.recommended) for d in release.drivers} == expected, chart


def test_the_default_driver_is_the_charts_own_default(upstream):
    defaults = {r["tag"]: r["default_driver_version"]
                for r in read_tsv(upstream / "gpu-operator" / "driver-defaults.tsv")}
    for chart, release in supported_releases().items():
        assert release.default_driver == defaults[chart], chart


def test_the_lab_pin_is_documented_for_the_lab_chart_and_not_for_25_10():
    assert "580.173.02" in supported_releases()["v26.7.0"].documented_driver_versions
    assert "580.173.02" not in supported_releases()["v25.10.1"].documented_driver_versions


def test_end_of_life_branches_match_the_driver_container_builds(upstream):
    builds = read_tsv(upstream / "gpu-operator" / "driver-container-builds.tsv")
    for branch, eol in end_of_life_branches().items():
        rows = [r for r in builds if r["branch"] == branch]
        assert tuple(r["driver_version"] for r in rows) == eol.container_builds, branch
        assert max(r["last_seen_date"] for r in rows) == eol.last_build, branch
        # an end-of-life branch is documented for none of the supported releases
        assert not any(v.startswith(f"{branch}.") for r in supported_releases().values()
                       for v in r.documented_driver_versions), branch


def test_the_design_notes_pin_was_never_built_as_a_driver_container(upstream):
    builds = {r["driver_version"] for r in read_tsv(upstream / "gpu-operator" / "driver-container-builds.tsv")}
    assert "525.85.05" not in builds
    assert "525.85.05" not in end_of_life_branches()["525"].container_builds


def test_kubernetes_support_matches_nvidias_platform_tables(upstream):
    """components/data/kubernetes-support.tsv: per release and platform, the minor releases NVIDIA lists for every
    operating system in the GPU-passthrough tables (the lab's Proxmox VM)."""
    from components.releases import kubernetes_support

    rows = read_tsv(upstream / "gpu-operator" / "kubernetes-support.tsv")
    expected = {}
    for chart in supported_releases():
        for platform in ("kubernetes", "rke2", "k3s"):
            listed = [set(r["versions"].split()) for r in rows if r["release"] == chart
                      and r["platform"] == platform and "GPU Passthrough" in r["table"]]
            if listed:
                expected[(chart, platform)] = sorted(set.intersection(*listed), key=lambda v: int(v.split(".")[1]))
    assert {key: list(versions) for key, versions in kubernetes_support().items()} == expected


def test_the_lab_kubernetes_is_supported_by_every_release_and_1_36_needs_26_3_2():
    from components.releases import kubernetes_support

    support = kubernetes_support()
    assert all("1.34" in support[(chart, "rke2")] for chart in supported_releases())
    assert [chart for chart in supported_releases() if "1.36" in support[(chart, "rke2")]] == [
        "v26.3.2", "v26.3.3", "v26.7.0"]
