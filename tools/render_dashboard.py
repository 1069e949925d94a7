"""Draw docs/dashboard.svg: the lab's Grafana dashboard, its layout and panels over synthetic data.

    python -m tools.render_dashboard          # regenerate
    python -m tools.render_dashboard --check  # exit 1 when the committed picture is stale

The picture is drawn from the dashboard model that components/monitoring.py builds (titles, grid positions,
units, value ranges, drawn thresholds), so a change to the dashboard shows up here and a stale picture fails the
tests. The data is made up and deterministic (no clock, no randomness): one training run that crosses the
utilisation, memory and temperature thresholds, and an XID 43 when it dies. Plain SVG, no dependency.
"""
from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import yaml

from tools.generated import write_or_check

ROOT = Path(__file__).resolve().parent.parent
SVG_FILE = ROOT / "docs" / "dashboard.svg"

COLUMN, ROW, HEADER, GAP = 50, 30, 64, 8  # Grafana's grid: 24 columns, rows of ~30 px
HOURS, SAMPLES = 6, 73  # the dashboard's default range (now-6h), a sample every 5 minutes
COLORS = ["#73bf69", "#f2cc0c", "#8ab8ff", "#ff780a", "#f2495c", "#5794f2"]
THRESHOLD_COLOR = "#f2495c"
UNITS = {"percent": "%", "celsius": " °C", "watt": " W", "none": ""}


def lab_dashboard() -> tuple[dict[str, Any], list[tuple[str, int]]]:
    """The lab's dashboard model and its GPUs (node, index), from Pulumi.lab.yaml."""
    from components.monitoring import dashboard
    from components.stack_config import NAMESPACE, compile_config

    document = yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())
    prefix = f"{NAMESPACE}:"
    raw = {key[len(prefix):]: value for key, value in document["config"].items() if key.startswith(prefix)}
    stack = compile_config(raw).stack
    if stack.monitoring is None:
        raise SystemExit("Pulumi.lab.yaml has no gpu-platform:monitoring, so there is no dashboard to draw")
    return dashboard(stack.monitoring), gpus(stack.nodes)


def gpus(nodes: Sequence[Any]) -> list[tuple[str, int]]:
    return [(node.name, index) for node in nodes for index in range(node.gpu_count)]


# --- synthetic data: a training run from 1h to 4.6h into the window --------------------------------------------------

def _training(hour: float, shift: float) -> float:
    """0 when idle, 1 when fully busy; a smooth ramp at both ends."""
    start, end = 1.0 + shift, 4.6 + shift
    ramp = 0.15
    if hour < start or hour > end:
        return 0.0
    return min(1.0, (hour - start) / ramp, (end - hour) / ramp)


def _utilisation(hour: float, shift: float) -> float:
    busy = _training(hour, shift)
    peak = 1.0 if 3.3 + shift <= hour <= 4.0 + shift else 0.0  # the phase that crosses the alert threshold
    return 2 + busy * (89 + 3 * math.sin(hour * 7.3) + 5 * peak)


def _memory(hour: float, shift: float) -> float:
    busy = _training(hour, shift)
    peak = 1.0 if 3.5 + shift <= hour <= 4.1 + shift else 0.0
    return 6 + busy * (80 + 2 * math.sin(hour * 3.1) + 9.5 * peak)


def _temperature(hour: float, shift: float) -> float:
    # the card heats up and cools down behind the load
    lagged = sum(_utilisation(hour - k / 12, shift) * 0.8 ** k for k in range(8)) / sum(0.8 ** k for k in range(8))
    return 33 + 0.5 * lagged


def _power(hour: float, shift: float) -> float:
    return 17 + 1.23 * _utilisation(hour, shift)


def _xid(hour: float, shift: float) -> float:
    return 43.0 if hour >= 4.6 + shift else 0.0


SYNTHETIC: dict[str, Callable[[float, float], float]] = {
    "DCGM_FI_DEV_GPU_UTIL": _utilisation, "DCGM_FI_DEV_FB_USED": _memory, "DCGM_FI_DEV_GPU_TEMP": _temperature,
    "DCGM_FI_DEV_POWER_USAGE": _power, "DCGM_FI_DEV_XID_ERRORS": _xid,
}


def synthetic(expr: str, index: int) -> list[float]:
    """Samples for a panel's query (picked by the first metric it reads), one curve per GPU."""
    metric = next(name for name in SYNTHETIC if name in expr)
    shift = 0.35 * index
    return [round(SYNTHETIC[metric](HOURS * i / (SAMPLES - 1), shift), 1) for i in range(SAMPLES)]


# --- drawing -------------------------------------------------------------------------------------------------------

def _f(value: float) -> str:
    text = f"{value:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _label(value: float, unit: str) -> str:
    return f"{_f(value)}{UNITS.get(unit, '')}"


def _y_range(defaults: dict[str, Any], curves: list[list[float]], lines: list[float]) -> tuple[float, float]:
    """The panel's min/max when set, else 0 (or below the data) up to four round ticks above it."""
    if "min" in defaults and "max" in defaults:
        return float(defaults["min"]), float(defaults["max"])
    values = [v for curve in curves for v in curve] + lines
    low = 0.0 if min(values) < 40 else math.floor((min(values) - 5) / 10) * 10
    raw = (max(values) * 1.1 - low) / 4
    tick = next(t for t in (1, 2, 2.5, 5, 10, 20, 25, 40, 50, 100, 200, 250, 500) if t >= raw)
    return low, low + 4 * tick


def _panel(panel: dict[str, Any], gpu_names: list[tuple[str, int]]) -> list[str]:
    grid = panel["gridPos"]
    x, y = grid["x"] * COLUMN + GAP / 2, HEADER + grid["y"] * ROW + GAP / 2
    width, height = grid["w"] * COLUMN - GAP, grid["h"] * ROW - GAP
    defaults = panel["fieldConfig"]["defaults"]
    unit = defaults["unit"]
    lines = [step["value"] for step in defaults["thresholds"]["steps"][1:]]
    expr = panel["targets"][0]["expr"]
    curves = [synthetic(expr, index) for index, _ in enumerate(gpu_names)]
    low, high = _y_range(defaults, curves, lines)
    legend_rows = len(gpu_names)
    left, right, top, bottom = x + 48, x + width - 12, y + 30, y + height - 22 - 16 * (legend_rows + 1)

    def px(i: int) -> float:
        return left + (right - left) * i / (SAMPLES - 1)

    def py(value: float) -> float:
        return bottom - (bottom - top) * (value - low) / (high - low)

    out = [f'<g class="panel">',
           f'<rect x="{_f(x)}" y="{_f(y)}" width="{_f(width)}" height="{_f(height)}" rx="3" fill="#181b1f" '
           'stroke="#2c3235"/>',
           f'<text x="{_f(x + 10)}" y="{_f(y + 19)}" class="title">{escape(panel["title"])}</text>']
    for k in range(5):
        value = low + (high - low) * k / 4
        out.append(f'<line x1="{_f(left)}" y1="{_f(py(value))}" x2="{_f(right)}" y2="{_f(py(value))}" '
                   'class="grid"/>')
        out.append(f'<text x="{_f(left - 6)}" y="{_f(py(value) + 4)}" class="tick" text-anchor="end">'
                   f'{escape(_label(value, unit))}</text>')
    for hour in range(HOURS + 1):
        tx = left + (right - left) * hour / HOURS
        text = "now" if hour == HOURS else f"−{HOURS - hour}h"
        out.append(f'<text x="{_f(tx)}" y="{_f(bottom + 14)}" class="tick" text-anchor="middle">{text}</text>')
    step_after = panel["fieldConfig"]["defaults"]["custom"].get("lineInterpolation") == "stepAfter"
    for index, curve in enumerate(curves):
        color = COLORS[index % len(COLORS)]
        points: list[tuple[float, float]] = []
        for i, value in enumerate(curve):
            if step_after and points:
                points.append((px(i), points[-1][1]))
            points.append((px(i), py(value)))
        path = " ".join(f"{_f(a)},{_f(b)}" for a, b in points)
        area = f"{_f(points[0][0])},{_f(py(low))} {path} {_f(points[-1][0])},{_f(py(low))}"
        out.append(f'<polygon points="{area}" fill="{color}" fill-opacity="0.1"/>')
        out.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.5"/>')
    alert = panel["links"][0]["title"].removeprefix("Runbook: ") if panel.get("links") else ""
    for line in lines:
        out.append(f'<line x1="{_f(left)}" y1="{_f(py(line))}" x2="{_f(right)}" y2="{_f(py(line))}" '
                   f'stroke="{THRESHOLD_COLOR}" stroke-width="1.2" stroke-dasharray="6 4"/>')
        out.append(f'<text x="{_f(right - 4)}" y="{_f(py(line) - 4)}" class="threshold" text-anchor="end">'
                   f'{escape(alert)} &gt; {escape(_label(line, unit))}</text>')
    legend_top = bottom + 30
    out.append(f'<text x="{_f(left)}" y="{_f(legend_top)}" class="legend-head">Name</text>')
    out.append(f'<text x="{_f(right - 90)}" y="{_f(legend_top)}" class="legend-head" text-anchor="end">Last *</text>')
    out.append(f'<text x="{_f(right)}" y="{_f(legend_top)}" class="legend-head" text-anchor="end">Max</text>')
    for index, ((node, gpu), curve) in enumerate(zip(gpu_names, curves)):
        row = legend_top + 16 * (index + 1)
        color = COLORS[index % len(COLORS)]
        name = panel["targets"][0]["legendFormat"].replace("{{Hostname}}", node).replace("{{gpu}}", str(gpu))
        out.append(f'<rect x="{_f(left)}" y="{_f(row - 8)}" width="12" height="3" fill="{color}"/>')
        out.append(f'<text x="{_f(left + 18)}" y="{_f(row)}" class="legend">{escape(name)}</text>')
        out.append(f'<text x="{_f(right - 90)}" y="{_f(row)}" class="legend" text-anchor="end">'
                   f'{escape(_label(curve[-1], unit))}</text>')
        out.append(f'<text x="{_f(right)}" y="{_f(row)}" class="legend" text-anchor="end">'
                   f'{escape(_label(max(curve), unit))}</text>')
    out.append("</g>")
    return out


def render(board: dict[str, Any], gpu_names: Sequence[tuple[str, int]]) -> str:
    """The SVG text for a dashboard model and the GPUs (node, index) to draw a synthetic curve for."""
    names = list(gpu_names) or [("node", 0)]
    width = 24 * COLUMN
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in board["panels"])
    height = HEADER + rows * ROW + GAP
    variables = " · ".join(f'{v["label"]}: {"Prometheus" if v["type"] == "datasource" else "All"}'
                          for v in board["templating"]["list"])
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="Inter, Helvetica, Arial, sans-serif">',
        "<style>.title{font-size:13px;font-weight:600;fill:#d8d9da}.tick{font-size:10px;fill:#8e8e8e}"
        ".grid{stroke:#2c3235;stroke-width:1}.threshold{font-size:10px;fill:#f2495c}"
        ".legend{font-size:11px;fill:#d8d9da}.legend-head{font-size:10px;fill:#6e9fff}"
        ".head{font-size:17px;font-weight:600;fill:#d8d9da}.note{font-size:11px;fill:#8e8e8e}</style>",
        f'<rect width="{width}" height="{height}" fill="#111217"/>',
        f'<text x="8" y="26" class="head">{escape(board["title"])}</text>',
        f'<text x="8" y="48" class="note">{escape(variables)}   ·   last {HOURS} hours   ·   synthetic data, drawn '
        'by tools/render_dashboard.py from the dashboard that components/monitoring.py generates</text>',
    ]
    for panel in board["panels"]:
        out += _panel(panel, names)
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    board, gpu_names = lab_dashboard()
    return write_or_check(SVG_FILE, render(board, gpu_names), "tools.render_dashboard", argv)

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
