"""GPU monitoring: alert rules on the DCGM exporter's metrics, a Grafana dashboard, and their typed config.

The exporter and its ServiceMonitor belong to the gpu-operator release (`gpuOperator.dcgmExporter`); this module
adds what NVIDIA does not ship for vanilla Kubernetes: a `PrometheusRule` and a dashboard ConfigMap for the
Grafana sidecar, both in the namespace where kube-prometheus-stack runs.

Builders are pure functions of the config (`prometheus_rule_spec`, `dashboard`): the component declares what
they return, and the promtool tests run the very same rule groups, so what is tested is what is deployed.

Label facts the expressions rely on (NVIDIA/dcgm-exporter, NVIDIA/gpu-operator `assets/state-dcgm-exporter`):
- every GPU series carries `gpu` (index), `UUID`, `device`, `modelName`, `Hostname` and, from the default
  counters, `DCGM_FI_DRIVER_VERSION`; newer exporters add `pci_bus_id`, and `err_code`/`err_msg` on XID series;
- `Hostname` is the exporter's NODE_NAME, which the operator's DaemonSet sets from `spec.nodeName`: it is the
  Kubernetes node name, the same string as `nodes[].name`;
- on Kubernetes the exporter adds `namespace`/`pod`/`container` of the workload using a GPU (one series per pod
  when a GPU is shared); Prometheus renames them `exported_*` unless honorLabels is on;
- the operator's ServiceMonitor uses `jobLabel: app` on a Service labelled `app: nvidia-dcgm-exporter`, so every
  scraped series (and `up`) has `job="nvidia-dcgm-exporter"`.
Each GPU alert therefore aggregates `max by (Hostname, gpu, UUID, modelName)`: one series per physical GPU, no
matter how many pods share it, and a pod starting or a driver upgrade (new label values) does not reset `for`.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import pulumi
import pulumi_kubernetes as k8s
from pydantic import AfterValidator, Field, WithJsonSchema, field_validator

from .base import OWNED_ANNOTATIONS, ConfigModel, DnsLabel, Labels, Path
from .cluster import ClusterConfig
from .gpu_nodes import GpuNodeConfig
from .gpu_operator import GpuOperatorConfig

EXPORTER_JOB = "nvidia-dcgm-exporter"
GPU_LABELS = ("Hostname", "gpu", "UUID", "modelName")
NODE_LABEL = "Hostname"
# A metric every GPU reports on every card (profiling fields may be missing on the RTX A4000): GPUs are counted by it.
PRESENCE_METRIC = "DCGM_FI_DEV_GPU_TEMP"
RULE_NAME = "gpu-platform-gpu-alerts"
DASHBOARD_CONFIGMAP = "gpu-platform-gpu-dashboard"
DASHBOARD_KEY = "gpu-platform-gpus.json"
DASHBOARD_UID = "gpu-platform-gpus"
MANAGED_LABELS = {"app.kubernetes.io/part-of": "gpu-platform", "app.kubernetes.io/managed-by": "pulumi"}

# Prometheus' duration grammar (prometheus/common model.ParseDuration) in whole seconds: units from years down to
# seconds, each at most once and in that order, e.g. 90s, 10m or 1h30m. Milliseconds are left out: no alert here
# needs them, and `seconds()` stays whole.
_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_DURATION_RE = re.compile("".join(rf"(?:(?P<{unit}>\d{{1,6}}){unit})?" for unit, _ in _UNITS))
_DURATION_PATTERN = r"^(?!$)" + "".join(rf"(\d{{1,6}}{unit})?" for unit, _ in _UNITS) + "$"  # for editors


def _duration_seconds(value: str) -> int | None:
    match = _DURATION_RE.fullmatch(value) if value else None
    if match is None:
        return None
    return sum(int(match[unit] or 0) * factor for unit, factor in _UNITS)


def _check_duration(value: str) -> str:
    if not _duration_seconds(value):
        raise ValueError(f"{value!r} is not a Prometheus duration: whole numbers with y, w, d, h, m or s, largest "
                         "unit first and above zero, such as 30s, 5m or 1h30m")
    return value


def _check_runbook_url(value: str) -> str:
    if not re.fullmatch(r"https?://[^\s#/]+[^\s#]*", value):
        raise ValueError(f"{value!r} must be an http(s) URL of docs/runbook.md without a #fragment (each alert "
                         "appends the anchor of its own section)")
    return value


Duration = Annotated[str, AfterValidator(_check_duration),
                     WithJsonSchema({"type": "string", "pattern": _DURATION_PATTERN})]
Severity = Literal["info", "warning", "critical"]


def seconds(duration: str) -> int:
    """`"10m"` -> 600, `"1h30m"` -> 5400."""
    total = _duration_seconds(duration)
    if not total:
        raise ValueError(f"not a duration: {duration!r}")
    return total


# --- config --------------------------------------------------------------------------------------------------------

class UtilizationAlert(ConfigModel):
    """GpuUtilizationHigh: DCGM_FI_DEV_GPU_UTIL above `threshold` % for `for` (the lab: > 98 % for 10 min)."""

    threshold: float = Field(default=98, gt=0, lt=100, description="Percent; the alert fires strictly above it.")
    for_: Duration = Field(default="10m", alias="for", description=(
        "How long it must stay above the threshold before the alert fires."))
    severity: Severity = "warning"


class MemoryAlert(ConfigModel):
    """GpuMemoryHigh: framebuffer used / (used + free) above `threshold` % for `for` (the lab: > 95 % for 5 min)."""

    threshold: float = Field(default=95, gt=0, lt=100, description=(
        "Percent of the usable framebuffer; the alert fires strictly above it."))
    for_: Duration = Field(default="5m", alias="for", description=(
        "How long it must stay above the threshold before the alert fires."))
    severity: Severity = "warning"


class TemperatureAlert(ConfigModel):
    """GpuTemperatureHigh: DCGM_FI_DEV_GPU_TEMP above `threshold` °C for `for` (the lab: above 80 °C).

    The lab gave no duration; 2m ignores a single hot sample (8 scrapes at 15s must all agree) yet reports a
    failing fan or blocked airflow long before the card reaches its own slowdown temperature.
    """

    threshold: float = Field(default=80, gt=0, le=120, description=(
        "Degrees Celsius; the alert fires strictly above it."))
    for_: Duration = Field(default="2m", alias="for", description=(
        "How long it must stay above the threshold before the alert fires."))
    severity: Severity = "critical"


class XidAlert(ConfigModel):
    """GpuXidError: a new XID (CUDA/driver error) code on a GPU (the lab: errors > 0)."""

    window: Duration = Field(default="10m", description=(
        "How long the alert fires after a new code appears; the gauge keeps the last code, so 'new' means\n"
        "'different from `window` ago'."))
    severity: Severity = "warning"


class ExporterDownAlert(ConfigModel):
    """DcgmExporterDown: a scrape target of the exporter answers no scrape for `for`."""

    for_: Duration = Field(default="5m", alias="for", description=(
        "How long the target must stay down before the alert fires."))
    severity: Severity = "warning"


class ExporterAbsentAlert(ConfigModel):
    """DcgmExporterAbsent: Prometheus has no exporter target at all for `for` (every GPU alert is blind)."""

    for_: Duration = Field(default="10m", alias="for", description=(
        "How long the target may be missing before the alert fires (a rollout replaces the pods)."))
    severity: Severity = "critical"


class GpuCountAlert(ConfigModel):
    """GpuCountDropped: a node reports fewer GPUs than its `nodes[].gpuCount` for `for`."""

    for_: Duration = Field(default="5m", alias="for", description=(
        "How long the count must stay low before the alert fires."))
    severity: Severity = "critical"


class AlertsConfig(ConfigModel):
    """Thresholds, durations and severities; the defaults are the lab's monitoring targets."""

    gpu_utilization: UtilizationAlert = UtilizationAlert()
    gpu_memory: MemoryAlert = MemoryAlert()
    gpu_temperature: TemperatureAlert = TemperatureAlert()
    xid_errors: XidAlert = XidAlert()
    exporter_down: ExporterDownAlert = ExporterDownAlert()
    exporter_absent: ExporterAbsentAlert = ExporterAbsentAlert()
    gpu_count_dropped: GpuCountAlert = GpuCountAlert()


class DashboardConfig(ConfigModel):
    """The Grafana dashboard, delivered as a ConfigMap that Grafana's dashboard sidecar loads."""

    enabled: bool = True
    sidecar_label: Labels = Field(default={"grafana_dashboard": "1"}, description=(
        "The label Grafana's sidecar looks for (kube-prometheus-stack: grafana.sidecar.dashboards.label/labelValue)."))

    @field_validator("sidecar_label")
    @classmethod
    def _not_empty(cls, labels: dict[str, str]) -> dict[str, str]:
        if not labels:
            raise ValueError("the Grafana sidecar only loads ConfigMaps that carry its label (kube-prometheus-stack: "
                             "grafana_dashboard: \"1\"); without one the dashboard would never appear")
        return labels


class MonitoringConfig(ConfigModel):
    """Alert rules and a dashboard for the GPUs, for a Prometheus and Grafana run by kube-prometheus-stack."""

    namespace: DnsLabel = Field(default="monitoring", description=(
        "Where kube-prometheus-stack runs; the rules and the dashboard ConfigMap go there (not created here)."))
    prometheus_labels: Labels = Field(description=(
        "Labels your Prometheus selects PrometheusRules and ServiceMonitors by (kube-prometheus-stack: release: <its\n"
        "release name>). Put on the rule; the exporter's ServiceMonitor must carry them too (additionalLabels)."))
    runbook_url: Annotated[str, AfterValidator(_check_runbook_url)] = Field(description=(
        "Where people read docs/runbook.md (a web view of this repository); each alert links to its own section."))
    alerts: AlertsConfig = AlertsConfig()
    dashboard: DashboardConfig = DashboardConfig()


def monitoring_problems(monitoring: MonitoringConfig, cluster: ClusterConfig,
                        operator: GpuOperatorConfig) -> list[tuple[Path, str]]:
    """Cross-field rules between monitoring and the rest of the stack config (paths from the config root)."""
    problems: list[tuple[Path, str]] = []
    if not cluster.prometheus_operator_crds:
        problems.append((("monitoring",), "the alert rules are a PrometheusRule (monitoring.coreos.com/v1), which "
                                          "needs the prometheus-operator CRDs; install them (kube-prometheus-stack "
                                          "does) and set cluster.prometheusOperatorCrds: true, or remove "
                                          "gpu-platform:monitoring"))
    exporter = operator.dcgm_exporter
    if not exporter.enabled:
        problems.append((("gpuOperator", "dcgmExporter", "enabled"),
                         "monitoring alerts on the DCGM exporter's metrics: set dcgmExporter.enabled: true, or remove "
                         "gpu-platform:monitoring"))
    monitor = exporter.service_monitor
    if not monitor.enabled:
        problems.append((("gpuOperator", "dcgmExporter", "serviceMonitor", "enabled"),
                         "monitoring needs the exporter scraped: set serviceMonitor.enabled: true (the operator then "
                         f"creates the ServiceMonitor that gives its metrics job=\"{EXPORTER_JOB}\"), or remove "
                         "gpu-platform:monitoring"))
    else:
        missing = {k: v for k, v in monitoring.prometheus_labels.items() if monitor.additional_labels.get(k) != v}
        if missing:
            shown = ", ".join(f"{k}: {v}" for k, v in missing.items())
            problems.append((("gpuOperator", "dcgmExporter", "serviceMonitor", "additionalLabels"),
                             f"lacks {shown} from monitoring.prometheusLabels: the Prometheus that selects the rules "
                             "by those labels would not select the exporter's ServiceMonitor, no GPU metric would be "
                             f"scraped and only DcgmExporterAbsent would fire; add {shown}"))
    if monitoring.namespace == operator.namespace:
        problems.append((("monitoring", "namespace"),
                         f"{monitoring.namespace!r} is the operator namespace; the rules and the dashboard belong "
                         "where kube-prometheus-stack and its Grafana run (the Grafana sidecar reads dashboards from "
                         "its own namespace by default), e.g. monitoring"))
    return problems


# --- PromQL shared by the rules and the dashboard --------------------------------------------------------------------

def _number(value: float) -> str:
    return f"{value:g}"


def selector(metric: str, extra: str = "") -> str:
    """`metric{job="nvidia-dcgm-exporter"<extra>}`."""
    return f'{metric}{{job="{EXPORTER_JOB}"{extra}}}'


def per_gpu(metric: str, extra: str = "", offset: str | None = None) -> str:
    """One series per physical GPU (see the module docstring for why `max by`)."""
    inner = selector(metric, extra) + (f" offset {offset}" if offset else "")
    return f"max by ({', '.join(GPU_LABELS)}) ({inner})"


def memory_used_percent(extra: str = "") -> str:
    # 100 * used first: integral MiB values give an exact quotient, so "exactly at the threshold" stays exact.
    used, free = per_gpu("DCGM_FI_DEV_FB_USED", extra), per_gpu("DCGM_FI_DEV_FB_FREE", extra)
    return f"100 * {used} / ({used} + {free})"


def gpus_seen(node: str) -> str:
    """Distinct GPUs (by UUID) the exporter reports on `node`."""
    matcher = f', {NODE_LABEL}="{node}"'
    return f"count by ({NODE_LABEL}) (count by ({NODE_LABEL}, UUID) ({selector(PRESENCE_METRIC, matcher)}))"


@dataclass(frozen=True)
class LevelAlert:
    """An alert on a level crossing a threshold: what the dashboard draws and the promtool tests probe."""

    name: str
    expr_left: str
    threshold: float
    for_: str
    severity: str


def level_alerts(config: MonitoringConfig) -> list[LevelAlert]:
    a = config.alerts
    return [
        LevelAlert("GpuUtilizationHigh", per_gpu("DCGM_FI_DEV_GPU_UTIL"), a.gpu_utilization.threshold,
                   a.gpu_utilization.for_, a.gpu_utilization.severity),
        LevelAlert("GpuMemoryHigh", memory_used_percent(), a.gpu_memory.threshold, a.gpu_memory.for_,
                   a.gpu_memory.severity),
        LevelAlert("GpuTemperatureHigh", per_gpu("DCGM_FI_DEV_GPU_TEMP"), a.gpu_temperature.threshold,
                   a.gpu_temperature.for_, a.gpu_temperature.severity),
    ]


# --- the PrometheusRule ----------------------------------------------------------------------------------------------

def runbook_anchor(alert: str) -> str:
    """The GitHub-style anchor of the runbook heading `## <alert>`."""
    return alert.lower()


_GPU = "GPU {{ $labels.gpu }} ({{ $labels.modelName }}, {{ $labels.UUID }}) on node {{ $labels.Hostname }}"
_LEVEL_TEXT = {
    "GpuUtilizationHigh": ("GPU utilisation above {t}% for {f} on {{{{ $labels.Hostname }}}}",
                           "{gpu} has been above {t}% utilisation for more than {f}; now "
                           "{{{{ $value | printf \"%.0f\" }}}}%."),
    "GpuMemoryHigh": ("GPU memory above {t}% for {f} on {{{{ $labels.Hostname }}}}",
                      "{gpu} has had more than {t}% of its framebuffer in use for more than {f}; now "
                      "{{{{ $value | printf \"%.1f\" }}}}%."),
    "GpuTemperatureHigh": ("GPU temperature above {t}°C for {f} on {{{{ $labels.Hostname }}}}",
                           "{gpu} has been hotter than {t}°C for more than {f}; now "
                           "{{{{ $value | printf \"%.0f\" }}}}°C."),
}


def _alert(name: str, expr: str, for_: str | None, severity: str, summary: str, description: str,
           runbook_url: str) -> dict[str, Any]:
    rule: dict[str, Any] = {"alert": name, "expr": expr}
    if for_ is not None:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description,
                           "runbook_url": f"{runbook_url}#{runbook_anchor(name)}"}
    return rule


def gpu_rules(config: MonitoringConfig) -> list[dict[str, Any]]:
    rules = []
    for level in level_alerts(config):
        summary, description = _LEVEL_TEXT[level.name]
        values = {"t": _number(level.threshold), "f": level.for_, "gpu": _GPU}
        rules.append(_alert(level.name, f"{level.expr_left} > {_number(level.threshold)}", level.for_,
                            level.severity, summary.format(**values), description.format(**values),
                            config.runbook_url))
    xid = config.alerts.xid_errors
    # The gauge holds the LAST code and keeps it (until the exporter restarts): "> 0" alone would fire forever after
    # one error. The alert fires while the code differs from the one `window` ago, i.e. for `window` after a new code.
    # Aggregating first also covers exporters that put the code in an err_code label (a new series per code).
    current = per_gpu("DCGM_FI_DEV_XID_ERRORS")
    before = per_gpu("DCGM_FI_DEV_XID_ERRORS", offset=xid.window)
    rules.append(_alert(
        "GpuXidError", f"({current} > 0) unless ({before} == {current})", None, xid.severity,
        "New XID error {{ $value | printf \"%.0f\" }} on {{ $labels.Hostname }}",
        f"{_GPU} reported XID {{{{ $value | printf \"%.0f\" }}}} (a new code within the last {xid.window}); look it up "
        "in NVIDIA's XID catalogue and in the node's kernel log.",
        config.runbook_url))
    return rules


def exporter_rules(config: MonitoringConfig, nodes: Sequence[GpuNodeConfig]) -> list[dict[str, Any]]:
    a = config.alerts
    up = f'up{{job="{EXPORTER_JOB}"}}'
    rules = [
        _alert("DcgmExporterDown", f"{up} == 0", a.exporter_down.for_, a.exporter_down.severity,
               "DCGM exporter {{ $labels.pod }} cannot be scraped",
               f"Prometheus has failed to scrape {{{{ $labels.pod }}}} ({{{{ $labels.instance }}}}) for more than "
               f"{a.exporter_down.for_}: the GPU alerts of its node are blind.",
               config.runbook_url),
        _alert("DcgmExporterAbsent", f"absent({up})", a.exporter_absent.for_, a.exporter_absent.severity,
               "No DCGM exporter target in Prometheus",
               f"Prometheus has had no target with job=\"{EXPORTER_JOB}\" for more than {a.exporter_absent.for_}: "
               "every GPU alert is blind.",
               config.runbook_url),
    ]
    count = a.gpu_count_dropped
    for node in nodes:
        # `or vector(0)` labelled with the node: a node whose exporter reports nothing counts as 0, not as absent.
        expr = (f"({gpus_seen(node.name)} or label_replace(vector(0), \"{NODE_LABEL}\", \"{node.name}\", \"\", \"\"))"
                f" < {node.gpu_count}")
        rules.append(_alert(
            "GpuCountDropped", expr, count.for_, count.severity,
            f"Node {node.name} reports {{{{ $value | printf \"%.0f\" }}}} of {node.gpu_count} GPU(s)",
            f"The DCGM exporter on {node.name} has reported {{{{ $value | printf \"%.0f\" }}}} GPU(s) for more than "
            f"{count.for_}; nodes[].gpuCount expects {node.gpu_count}.",
            config.runbook_url))
    return rules


def prometheus_rule_spec(config: MonitoringConfig, nodes: Sequence[GpuNodeConfig]) -> dict[str, Any]:
    """The PrometheusRule's spec, which is also a Prometheus rule file as promtool reads it."""
    return {"groups": [
        {"name": "gpu-platform.gpus", "rules": gpu_rules(config)},
        {"name": "gpu-platform.dcgm-exporter", "rules": exporter_rules(config, nodes)},
    ]}


def alert_names(spec: dict[str, Any]) -> list[str]:
    return list(dict.fromkeys(rule["alert"] for group in spec["groups"] for rule in group["rules"]))


# --- the Grafana dashboard -------------------------------------------------------------------------------------------

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_NODE_FILTER = f', {NODE_LABEL}=~"$node"'
_LEGEND = "{{Hostname}} · GPU {{gpu}}"


def _panel(panel_id: int, title: str, description: str, expr: str, grid: tuple[int, int, int, int], unit: str, *,
           runbook_url: str, level: LevelAlert | None = None, runbook: str | None = None,
           value_range: tuple[float, float] | None = None, step: bool = False) -> dict[str, Any]:
    """A time series panel; `level` draws that alert's threshold, and a panel about an alert links its runbook."""
    x, y, w, h = grid
    steps: list[dict[str, Any]] = [{"color": "transparent", "value": None}]
    if level is not None:
        steps.append({"color": "red", "value": level.threshold})
    custom: dict[str, Any] = {"thresholdsStyle": {"mode": "dashed" if level else "off"}, "lineWidth": 2,
                              "fillOpacity": 10, "showPoints": "never"}
    if step:
        custom["lineInterpolation"] = "stepAfter"
    defaults: dict[str, Any] = {"unit": unit, "color": {"mode": "palette-classic"}, "custom": custom,
                                "thresholds": {"mode": "absolute", "steps": steps}}
    if value_range is not None:
        defaults["min"], defaults["max"] = value_range
    panel: dict[str, Any] = {
        "id": panel_id, "type": "timeseries", "title": title, "description": description, "datasource": _DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": [{"refId": "A", "datasource": _DATASOURCE, "expr": expr, "legendFormat": _LEGEND}],
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["lastNotNull", "max"]},
                    "tooltip": {"mode": "multi", "sort": "desc"}},
    }
    alert = level.name if level else runbook
    if alert is not None:
        panel["links"] = [{"title": f"Runbook: {alert}", "url": f"{runbook_url}#{runbook_anchor(alert)}",
                           "targetBlank": True}]
    return panel


def dashboard(config: MonitoringConfig) -> dict[str, Any]:
    """The Grafana dashboard model (schemaVersion 39): per-GPU panels with the alert thresholds drawn."""
    util, memory, temperature = level_alerts(config)
    xid_window = config.alerts.xid_errors.window
    url = config.runbook_url
    panels = [
        _panel(1, "GPU utilisation", "DCGM_FI_DEV_GPU_UTIL per GPU; the dashed line is GpuUtilizationHigh's threshold.",
               per_gpu("DCGM_FI_DEV_GPU_UTIL", _NODE_FILTER), (0, 0, 12, 8), "percent", runbook_url=url, level=util,
               value_range=(0, 100)),
        _panel(2, "GPU memory used", "100 × FB_USED / (FB_USED + FB_FREE) per GPU; the dashed line is GpuMemoryHigh's "
               "threshold.", memory_used_percent(_NODE_FILTER), (12, 0, 12, 8), "percent", runbook_url=url,
               level=memory,
               value_range=(0, 100)),
        _panel(3, "GPU temperature", "DCGM_FI_DEV_GPU_TEMP per GPU; the dashed line is GpuTemperatureHigh's threshold.",
               per_gpu("DCGM_FI_DEV_GPU_TEMP", _NODE_FILTER), (0, 8, 12, 8), "celsius", runbook_url=url,
               level=temperature),
        _panel(4, "GPU power", "DCGM_FI_DEV_POWER_USAGE per GPU (no alert).",
               per_gpu("DCGM_FI_DEV_POWER_USAGE", _NODE_FILTER), (12, 8, 12, 8), "watt", runbook_url=url),
        _panel(5, "Last XID error", "DCGM_FI_DEV_XID_ERRORS: the last XID code per GPU (0 = none). The gauge keeps a "
               f"code after the error, so GpuXidError fires for {xid_window} when a new code appears; there is no "
               "level to draw.", per_gpu("DCGM_FI_DEV_XID_ERRORS", _NODE_FILTER), (0, 16, 24, 7), "none",
               runbook_url=url, runbook="GpuXidError", step=True),
    ]
    return {
        "uid": DASHBOARD_UID,
        "title": "GPU platform · NVIDIA GPUs",
        "description": "DCGM exporter metrics per GPU and node, with the gpu-platform alert thresholds. Generated by "
                       "components/monitoring.py; edits in Grafana are overwritten.",
        "tags": ["gpu-platform", "nvidia", "dcgm"],
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [
            {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
            {"name": "node", "label": "Node", "type": "query", "datasource": _DATASOURCE,
             "query": {"query": f"label_values({selector(PRESENCE_METRIC)}, {NODE_LABEL})", "refId": "node"},
             "definition": f"label_values({selector(PRESENCE_METRIC)}, {NODE_LABEL})",
             "multi": True, "includeAll": True, "refresh": 2, "sort": 1},
        ]},
        "panels": panels,
    }


def dashboard_json(config: MonitoringConfig) -> str:
    return json.dumps(dashboard(config), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# --- the component ---------------------------------------------------------------------------------------------------

PROMETHEUS_RULE_CRD = "prometheusrules.monitoring.coreos.com"


class Monitoring(pulumi.ComponentResource):
    """The GPU alert rules (a PrometheusRule) and the Grafana dashboard ConfigMap, in the monitoring namespace."""

    rule_name: pulumi.Output[str]

    def __init__(self, name: str, config: MonitoringConfig, *, nodes: Sequence[GpuNodeConfig],
                 opts: pulumi.ResourceOptions | None = None):
        """`nodes`: the GPU nodes whose GPU count is watched (nodes[].gpuCount)."""
        super().__init__("gpu-platform:monitoring:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # What kube-prometheus-stack provides, read (not managed) so that a cluster without it fails the preview
        # with the missing object's name. Declared only, a PrometheusRule without its CRD previews green and
        # fails at `up` after a minute of retries, once everything else is applied.
        self.prerequisites = [
            k8s.apiextensions.v1.CustomResourceDefinition.get(
                f"{name}-prometheusrules-crd", PROMETHEUS_RULE_CRD, opts=child),
            k8s.core.v1.Namespace.get(f"{name}-namespace", config.namespace, opts=child),
        ]
        after = pulumi.ResourceOptions(parent=self, depends_on=self.prerequisites)
        labels = {**config.prometheus_labels, **MANAGED_LABELS, "app.kubernetes.io/component": "monitoring"}
        self.rules = k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata={"name": RULE_NAME, "namespace": config.namespace, "labels": labels,
                      "annotations": OWNED_ANNOTATIONS},
            spec=prometheus_rule_spec(config, nodes),
            opts=after,
        )
        self.dashboard: k8s.core.v1.ConfigMap | None = None
        if config.dashboard.enabled:
            self.dashboard = k8s.core.v1.ConfigMap(
                f"{name}-dashboard",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=DASHBOARD_CONFIGMAP, namespace=config.namespace,
                    labels={**config.dashboard.sidecar_label, **MANAGED_LABELS,
                            "app.kubernetes.io/component": "monitoring"},
                    annotations=OWNED_ANNOTATIONS),
                data={DASHBOARD_KEY: dashboard_json(config)},
                opts=after,
            )
        self.rule_name = self.rules.metadata["name"]
        self.register_outputs({"ruleName": self.rule_name,
                               "dashboard": self.dashboard.metadata.name if self.dashboard else None})
