"""The pack's copy of NVIDIA's component matrix matches the upstream extract row for row (the pack ships
the table as data; this test is what keeps it honest)."""
from __future__ import annotations

import csv
from pathlib import Path

from gpu_policies import driver_matrix


def _upstream_rows(upstream: Path) -> list[dict[str, str]]:
    with (upstream / "gpu-operator" / "component-matrix.tsv").open(newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_every_upstream_row_is_in_the_pack_and_nothing_else(upstream: Path) -> None:
    upstream_rows = {(r["operator_version"], r["driver_version"], r["flags"], r["docs_commit"], r["docs_date"])
                     for r in _upstream_rows(upstream)}
    pack_rows = {(release, driver, flags, entry.docs_commit, entry.docs_date)
                 for release, entry in driver_matrix.MATRIX.items() for driver, flags in entry.drivers}
    assert pack_rows == upstream_rows


def test_releases_are_in_upstream_order(upstream: Path) -> None:
    order = list(dict.fromkeys(r["operator_version"] for r in _upstream_rows(upstream)))
    assert list(driver_matrix.MATRIX) == order


def test_lookup_accepts_chart_versions_with_or_without_v() -> None:
    assert driver_matrix.documented_drivers("v26.7.0") == driver_matrix.documented_drivers("26.7.0")
    assert driver_matrix.describe(driver_matrix.documented_drivers("v26.7.0") or ()) == (
        "610.57.04, 595.91.07 (default, recommended), 580.173.02, 535.309.01")
    assert driver_matrix.documented_drivers("v23.9.0") is None
