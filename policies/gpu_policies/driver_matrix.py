"""The drivers NVIDIA documents for each GPU Operator release (its "GPU Operator Component Matrix").

Source: NVIDIA/cloud-native-docs, gpu-operator/life-cycle-policy.rst, read at the last docs commit that
lists each release (the commit and its date are kept per release below). Flags as the docs mark them:
D = the chart's default driver, R = NVIDIA's recommended driver. The pack ships this table as data, so it
runs anywhere; tests/policies check it row for row against the upstream extract. Update it when NVIDIA
documents a new release (until then a lab can add pairs with the advisory policy's
``additionalDocumented`` config).

Known quirks of the upstream docs, kept as they are: for 25.3.0-25.3.2 the docs later changed the
default to 570.172.08 while those charts ship 570.124.06 / 570.148.08, and 25.10.1 lists 580.178.04 but
not 580.173.02.
"""
from __future__ import annotations

from typing import NamedTuple

SOURCE = "NVIDIA/cloud-native-docs gpu-operator/life-cycle-policy.rst (GPU Operator Component Matrix)"


class Release(NamedTuple):
    """One operator release as the docs list it."""

    docs_commit: str
    docs_date: str
    drivers: tuple[tuple[str, str], ...]  # (driver version, flags)


MATRIX: dict[str, Release] = {
    "24.9.0": Release("6699f5df", "2025-10-27", (
        ("535.216.03", ""), ("550.127.05", "D"), ("550.127.08", "R"), ("560.35.03", ""), ("565.57.01", ""),
    )),
    "24.9.1": Release("6699f5df", "2025-10-27", (
        ("535.216.03", ""), ("535.230.02", ""), ("550.127.08", "D"), ("550.144.03", "R"), ("560.35.03", ""),
        ("565.57.01", ""),
    )),
    "24.9.2": Release("6699f5df", "2025-10-27", (
        ("535.216.03", ""), ("535.230.02", ""), ("535.247.01", ""), ("535.261.03", ""), ("550.127.08", ""),
        ("550.144.03", "D"), ("550.163.01", ""), ("560.35.03", ""), ("565.57.01", ""), ("570.86.15", ""),
        ("570.133.20", ""), ("570.148.08", ""), ("570.158.01", ""), ("570.172.08", ""), ("575.57.08", ""),
        ("580.65.06", "R"),
    )),
    "25.3.0": Release("a8adeaa3", "2026-02-11", (
        ("535.247.01", ""), ("535.261.03", ""), ("550.163.01", ""), ("570.148.08", ""), ("570.158.01", ""),
        ("570.172.08", "D"), ("575.57.08", ""), ("580.65.06", "R"),
    )),
    "25.3.1": Release("a8adeaa3", "2026-02-11", (
        ("535.247.01", ""), ("535.261.03", ""), ("550.163.01", ""), ("570.148.08", ""), ("570.158.01", ""),
        ("570.172.08", "D"), ("575.57.08", ""), ("580.65.06", "R"),
    )),
    "25.3.2": Release("a8adeaa3", "2026-02-11", (
        ("535.247.01", ""), ("535.261.03", ""), ("550.163.01", ""), ("570.148.08", ""), ("570.158.01", ""),
        ("570.172.08", "D"), ("575.57.08", ""), ("580.65.06", "R"),
    )),
    "25.3.3": Release("a8adeaa3", "2026-02-11", (
        ("535.247.01", ""), ("535.261.03", ""), ("550.163.01", ""), ("570.148.08", ""), ("570.158.01", ""),
        ("570.172.08", ""), ("575.57.08", ""), ("580.65.06", ""), ("580.82.07", "D+R"),
    )),
    "25.3.4": Release("a8adeaa3", "2026-02-11", (
        ("535.247.01", ""), ("535.261.03", ""), ("535.288.01", ""), ("550.163.01", ""), ("570.148.08", ""),
        ("570.158.01", ""), ("570.172.08", ""), ("570.211.01", ""), ("575.57.08", ""), ("580.65.06", ""),
        ("580.82.07", "D"), ("580.95.05", ""), ("580.126.09", ""), ("580.126.16", "R"), ("590.48.01", ""),
    )),
    "25.10.0": Release("17f2f870", "2026-08-19", (
        ("535.274.02", ""), ("550.163.01", ""), ("570.195.03", ""), ("575.57.08", ""), ("580.82.07", ""),
        ("580.95.05", "D+R"),
    )),
    "25.10.1": Release("17f2f870", "2026-08-19", (
        ("535.274.02", ""), ("535.288.01", ""), ("535.309.01", ""), ("550.163.01", ""), ("570.195.03", ""),
        ("570.211.01", ""), ("575.57.08", ""), ("580.82.07", ""), ("580.95.05", ""), ("580.105.08", "D"),
        ("580.126.09", ""), ("580.126.16", ""), ("580.159.03", ""), ("580.159.04", ""), ("580.167.08", ""),
        ("580.178.04", "R"), ("590.48.01", ""), ("595.58.03", ""), ("595.71.05", ""), ("595.91.07", ""),
        ("610.57.04", ""),
    )),
    "26.3.0": Release("ee488781", "2026-08-19", (
        ("535.288.01", ""), ("535.309.01", ""), ("570.211.01", ""), ("580.126.20", "D"), ("580.159.03", ""),
        ("580.159.04", ""), ("580.167.08", ""), ("580.173.02", "R"), ("590.48.01", ""), ("595.58.03", ""),
        ("595.71.05", ""),
    )),
    "26.3.1": Release("ee488781", "2026-08-19", (
        ("535.288.01", ""), ("535.309.01", ""), ("570.211.01", ""), ("580.126.20", "D"), ("580.159.03", ""),
        ("580.159.04", ""), ("580.167.08", ""), ("580.173.02", "R"), ("590.48.01", ""), ("595.58.03", ""),
        ("595.71.05", ""),
    )),
    "26.3.2": Release("ee488781", "2026-08-19", (
        ("535.288.01", ""), ("535.309.01", ""), ("570.211.01", ""), ("580.126.20", "D"), ("580.159.03", ""),
        ("580.159.04", ""), ("580.167.08", ""), ("580.173.02", "R"), ("590.48.01", ""), ("595.58.03", ""),
        ("595.71.05", ""),
    )),
    "26.3.3": Release("ee488781", "2026-08-19", (
        ("535.288.01", ""), ("535.309.01", ""), ("570.211.01", ""), ("580.126.20", "D"), ("580.159.03", ""),
        ("580.159.04", ""), ("580.167.08", ""), ("580.173.02", ""), ("580.178.04", "R"), ("590.48.01", ""),
        ("595.58.03", ""), ("595.71.05", ""), ("595.91.07", ""), ("610.57.04", ""),
    )),
    "26.7.0": Release("187a4a5b", "2026-08-21", (
        ("535.309.01", ""), ("580.173.02", ""), ("595.91.07", "D+R"), ("610.57.04", ""),
    )),
}


def documented_drivers(chart_version: str) -> tuple[tuple[str, str], ...] | None:
    """The drivers documented for a chart version (``v26.7.0`` or ``26.7.0``), None if not in the table."""
    release = MATRIX.get(chart_version[1:] if chart_version.startswith("v") else chart_version)
    return release.drivers if release is not None else None


def describe(drivers: tuple[tuple[str, str], ...]) -> str:
    """``610.57.04, 595.91.07 (default, recommended), …``, newest first, as a message lists them."""
    words = {"D": "default", "R": "recommended"}
    parts = []
    for version, flags in sorted(drivers, key=lambda d: tuple(int(p) for p in d[0].split(".")), reverse=True):
        marks = [words[f] for f in flags.split("+") if f in words]
        parts.append(f"{version} ({', '.join(marks)})" if marks else version)
    return ", ".join(parts)
