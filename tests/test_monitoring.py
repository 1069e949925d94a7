"""Monitoring: the component under mocks, its config rules, and the alert rules run for real by promtool.

The promtool tests write the rule groups the program declares (the lab run's recorded PrometheusRule, or the
builder the component calls) and generate, for every alert, synthetic series that must fire at the threshold
after the duration and must not fire just below the threshold or before the duration.
"""
from __future__ import annotations

import copy
import json
import math
import re
import shutil
import subprocess
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.gpu_nodes import GpuNodeConfig
from components.monitoring import (
    DASHBOARD_CONFIGMAP,
    DASHBOARD_KEY,
    EXPORTER_JOB,
    GPU_LABELS,
    RULE_NAME,
    Monitoring,
    MonitoringConfig,
    alert_names,
    dashboard,
    level_alerts,
    prometheus_rule_spec,
    seconds,
)
from tests.factories import DELETE, ROOT, compiled, lab_with, problems, stack_file
from tools.k8s_schema import CrdSchemas, upstream_crd_files, validate
from tools.mockrun import ProgramRun, Recorder, read_stack_file, run_program

KUBERNETES_VERSION = "1.34"
ALERTS = ["GpuUtilizationHigh", "GpuMemoryHigh", "GpuTemperatureHigh", "GpuXidError", "DcgmExporterDown",
          "DcgmExporterAbsent", "GpuCountDropped"]
RULE_TYPE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIGMAP_TYPE = "kubernetes:core/v1:ConfigMap"


def lab_monitoring() -> MonitoringConfig:
    monitoring = compiled().stack.monitoring
    assert monitoring is not None
    return monitoring


def exporter_metrics(upstream: Path) -> set[str]:
    """The metrics the DCGM exporter collects by default (uncommented rows of default-counters.csv)."""
    metrics = set()
    for line in (upstream / "dcgm-exporter" / "default-counters.csv").read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, kind, *_ = (part.strip() for part in line.split(","))
        if kind != "label":
            metrics.add(name)
    return metrics


# --- the lab run and the component under mocks ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def lab() -> ProgramRun:
    return run_program(ROOT, read_stack_file(ROOT, "lab"))


def lab_rule(lab: ProgramRun) -> dict[str, Any]:
    [rule] = [r.inputs for r in lab.resources if r.type == RULE_TYPE]
    return rule


def test_the_lab_declares_exactly_the_rule_and_the_dashboard_under_the_monitoring_component(lab):
    [component] = [r for r in lab.resources if r.type == "gpu-platform:monitoring:Monitoring"]
    [platform] = [r for r in lab.resources if r.type == "gpu-platform:index:GpuPlatform"]
    assert component.name == "gpu-platform-monitoring" and component.parent == platform.urn
    children = sorted((r.type, r.name) for r in lab.resources if r.parent == component.urn)
    assert children == [(CONFIGMAP_TYPE, "gpu-platform-monitoring-dashboard"),
                        (RULE_TYPE, "gpu-platform-monitoring-rules")]


def test_the_lab_rule_is_the_builders_spec_in_the_monitoring_namespace_with_the_prometheus_labels(lab):
    rule = lab_rule(lab)
    assert rule["apiVersion"] == "monitoring.coreos.com/v1" and rule["kind"] == "PrometheusRule"
    assert rule["metadata"]["name"] == RULE_NAME and rule["metadata"]["namespace"] == "monitoring"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"] == prometheus_rule_spec(lab_monitoring(), compiled().stack.nodes)
    assert alert_names(rule["spec"]) == ALERTS


def test_the_lab_dashboard_configmap_carries_the_sidecar_label_and_the_generated_json(lab):
    [configmap] = [r.inputs for r in lab.resources if r.type == CONFIGMAP_TYPE
                   and r.inputs["metadata"]["namespace"] == "monitoring"]
    assert configmap["metadata"]["name"] == DASHBOARD_CONFIGMAP
    assert configmap["metadata"]["namespace"] == "monitoring"
    assert configmap["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(configmap["data"][DASHBOARD_KEY]) == dashboard(lab_monitoring())


def test_the_lab_monitoring_manifests_validate_against_kubernetes_and_the_prometheusrule_crd(lab, upstream):
    crds = CrdSchemas(upstream_crd_files(upstream, "v26.7.0"))
    assert crds.knows("monitoring.coreos.com/v1", "PrometheusRule")
    manifests = [r.inputs for r in lab.resources if r.type in (RULE_TYPE, CONFIGMAP_TYPE)
                 and r.inputs["metadata"]["namespace"] == "monitoring"]
    assert len(manifests) == 2
    for manifest in manifests:
        assert validate(manifest, kubernetes_version=KUBERNETES_VERSION, crds=crds) == [], manifest["kind"]
    broken = copy.deepcopy(lab_rule(lab))
    broken["spec"]["groups"][0]["rules"][0]["for"] = "10 minutes"
    [finding] = validate(broken, kubernetes_version=KUBERNETES_VERSION, crds=crds)
    assert finding.path == "spec.groups[0].rules[0].for"


@pytest.fixture
def recorder() -> Recorder:
    recorder = Recorder("gpu-platform", "test")
    recorder.start_stack()
    return recorder


def two_nodes() -> list[GpuNodeConfig]:
    return [GpuNodeConfig(name="proj-k8sw04", gpu="NVIDIA-RTX-A4000", gpu_count=1),
            GpuNodeConfig(name="gpu-b", gpu="NVIDIA-RTX-A4000", gpu_count=2)]


@pulumi.runtime.test
def test_the_component_declares_one_gpu_count_rule_per_node_and_parents_its_children(recorder):
    monitoring = Monitoring("mon", lab_monitoring(), nodes=two_nodes())

    def check(args: list[str]) -> None:
        rule_urn, dashboard_urn = args
        [component] = recorder.by_type("gpu-platform:monitoring:Monitoring")
        [rule] = recorder.by_type(RULE_TYPE)
        [configmap] = recorder.by_type(CONFIGMAP_TYPE)
        assert rule.urn == rule_urn and configmap.urn == dashboard_urn
        assert rule.parent == component.urn and configmap.parent == component.urn, rule_urn
        counts = [r["expr"] for r in all_rules(rule.inputs["spec"]) if r["alert"] == "GpuCountDropped"]
        assert len(counts) == 2
        assert counts[0].endswith(" < 1") and 'Hostname="proj-k8sw04"' in counts[0]
        assert counts[1].endswith(" < 2") and 'Hostname="gpu-b"' in counts[1]

    assert monitoring.dashboard is not None
    return pulumi.Output.all(monitoring.rules.urn, monitoring.dashboard.urn).apply(check)


@pulumi.runtime.test
def test_a_disabled_dashboard_declares_only_the_rule(recorder):
    config = compiled(lab_with(**{"monitoring.dashboard.enabled": False})).stack.monitoring
    monitoring = Monitoring("mon", config, nodes=[])

    def check(urn: str) -> None:
        assert recorder.by_type(CONFIGMAP_TYPE) == [], urn
        [rule] = recorder.by_type(RULE_TYPE)
        assert "GpuCountDropped" not in alert_names(rule.inputs["spec"])  # no nodes configured, nothing to count

    assert monitoring.dashboard is None
    return monitoring.rules.urn.apply(check)


# --- config rules --------------------------------------------------------------------------------------------------

NO_CRDS = ("the alert rules are a PrometheusRule (monitoring.coreos.com/v1), which needs the prometheus-operator CRDs; "
           "install them (kube-prometheus-stack does) and set cluster.prometheusOperatorCrds: true, or remove "
           "gpu-platform:monitoring")


@pytest.mark.parametrize(("changes", "expected"), [
    ({"cluster.prometheusOperatorCrds": False}, [("gpu-platform:monitoring", NO_CRDS)]),
    ({"gpuOperator.dcgmExporter.enabled": False}, [(
        "gpu-platform:gpuOperator.dcgmExporter.enabled",
        "monitoring alerts on the DCGM exporter's metrics: set dcgmExporter.enabled: true, or remove "
        "gpu-platform:monitoring")]),
    ({"gpuOperator.dcgmExporter.serviceMonitor.enabled": False}, [(
        "gpu-platform:gpuOperator.dcgmExporter.serviceMonitor.enabled",
        "monitoring needs the exporter scraped: set serviceMonitor.enabled: true (the operator then creates the "
        "ServiceMonitor that gives its metrics job=\"nvidia-dcgm-exporter\"), or remove gpu-platform:monitoring")]),
    ({"gpuOperator.dcgmExporter.serviceMonitor.additionalLabels": {"release": "prometheus"}}, [(
        "gpu-platform:gpuOperator.dcgmExporter.serviceMonitor.additionalLabels",
        "lacks release: kube-prometheus-stack from monitoring.prometheusLabels: the Prometheus that selects the rules "
        "by those labels would not select the exporter's ServiceMonitor, no GPU metric would be scraped and only "
        "DcgmExporterAbsent would fire; add release: kube-prometheus-stack")]),
    ({"monitoring.namespace": "gpu-operator"}, [(
        "gpu-platform:monitoring.namespace",
        "'gpu-operator' is the operator namespace; the rules and the dashboard belong where kube-prometheus-stack and "
        "its Grafana run (the Grafana sidecar reads dashboards from its own namespace by default), e.g. monitoring")]),
    ({"monitoring.alerts.gpuUtilization.for": "10 minutes"}, [(
        "gpu-platform:monitoring.alerts.gpuUtilization.for",
        "'10 minutes' is not a Prometheus duration: whole numbers with y, w, d, h, m or s, largest unit first and "
        "above zero, such as 30s, 5m or 1h30m "
        "(got \"10 minutes\")")]),
    ({"monitoring.alerts.gpuMemory.threshold": 100}, [(
        "gpu-platform:monitoring.alerts.gpuMemory.threshold", "Input should be less than 100 (got 100)")]),
    ({"monitoring.runbookUrl": "https://example.org/runbook.md#alerts"}, [(
        "gpu-platform:monitoring.runbookUrl",
        "'https://example.org/runbook.md#alerts' must be an http(s) URL of docs/runbook.md without a #fragment (each "
        "alert appends the anchor of its own section) (got \"https://example.org/runbook.md#alerts\")")]),
    ({"monitoring.dashboard.sidecarLabel": {}}, [(
        "gpu-platform:monitoring.dashboard.sidecarLabel",
        "the Grafana sidecar only loads ConfigMaps that carry its label (kube-prometheus-stack: grafana_dashboard: "
        "\"1\"); without one the dashboard would never appear")]),
    ({"monitoring.prometheusLabels": DELETE}, [
        ("gpu-platform:monitoring.prometheusLabels", "required key is missing")]),
    ({"monitoring.alerts.xidErrors.threshold": 0}, [(
        "gpu-platform:monitoring.alerts.xidErrors.threshold",
        "unknown key; allowed here: window, severity")]),
])
def test_a_monitoring_mistake_is_refused_with_its_key_path_and_what_to_do(changes, expected):
    assert problems(lab_with(**changes)) == expected


def test_labels_the_prometheus_selects_by_are_required_not_added_to_the_service_monitor():
    """The ServiceMonitor's labels stay what gpuOperator says (a superset is fine); monitoring never rewrites them."""
    raw = lab_with(**{"gpuOperator.dcgmExporter.serviceMonitor.additionalLabels": {
        "release": "kube-prometheus-stack", "team": "platform"}})
    values = compiled(raw).values.to_helm_values()
    assert values["dcgmExporter"]["serviceMonitor"]["additionalLabels"] == {
        "release": "kube-prometheus-stack", "team": "platform"}


def test_a_bad_monitoring_config_stops_the_program_before_anything_is_registered(recorders):
    raw = lab_with(**{"monitoring.namespace": "gpu-operator"})
    with pytest.raises(pulumi.RunError) as caught:
        run_program(ROOT, stack_file(raw))
    assert str(caught.value).startswith(
        "invalid stack config (1 problem); nothing was declared:\n"
        "  - gpu-platform:monitoring.namespace: 'gpu-operator' is the operator namespace")
    assert [r.resources for r in recorders] == [[]]


# --- what the rules say --------------------------------------------------------------------------------------------

def all_rules(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [rule for group in spec["groups"] for rule in group["rules"]]


def test_every_alert_has_a_severity_a_summary_a_description_and_its_runbook_section(lab):
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {github_anchor(m) for m in re.findall(r"^#{1,6} (.+)$", runbook, flags=re.M)}
    for rule in all_rules(lab_rule(lab)["spec"]):
        assert rule["labels"]["severity"] in {"info", "warning", "critical"}, rule["alert"]
        annotations = rule["annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, rule["alert"]
        base, _, anchor = annotations["runbook_url"].partition("#")
        assert base == lab_monitoring().runbook_url and anchor in anchors, rule["alert"]
        if rule["alert"].startswith("Gpu") and rule["alert"] != "GpuCountDropped":
            for part in ("{{ $labels.gpu }}", "{{ $labels.Hostname }}", "{{ $labels.UUID }}", "$value"):
                assert part in annotations["description"], (rule["alert"], part)


def github_anchor(heading: str) -> str:
    """How GitHub (and most Markdown renderers) turn a heading into its #anchor."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_runbook_has_the_troubleshooting_table_with_commands():
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    table = runbook[runbook.index("## Troubleshooting"):]
    rows = [line for line in table.splitlines() if line.startswith("| ") and not line.startswith("| Symptom")]
    situations = ["Pods pending on GPU requests", "Operator pods failing after a driver change",
                  "CUDA errors in workloads", "Node GPU-ready but workloads fail"]
    for situation in situations:
        [row] = [r for r in rows if r.startswith(f"| {situation}")]
        assert "`kubectl " in row, situation


def test_the_rules_use_only_dcgm_dev_metrics_that_the_exporter_collects_by_default(lab, upstream):
    collected = exporter_metrics(upstream)
    used = {m for rule in all_rules(lab_rule(lab)["spec"]) for m in re.findall(r"\bDCGM_\w+", rule["expr"])}
    assert used == {"DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_FB_FREE", "DCGM_FI_DEV_GPU_TEMP",
                    "DCGM_FI_DEV_XID_ERRORS"}
    assert used <= collected


# --- promtool ------------------------------------------------------------------------------------------------------

STEP = 15  # seconds between samples and between rule evaluations in the generated tests
MODEL = "NVIDIA RTX A4000"


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed, and the alert-rule tests need it (they never skip): run "
                    "`python3 dev.py test`, which installs Debian's `prometheus` package, or install promtool so that "
                    "it is on PATH")
    return path


def values(*runs: tuple[Any, int]) -> str:
    """promtool's series notation from (value, samples) runs; "_" is no sample, "stale" a staleness marker."""
    out = []
    for value, count in runs:
        if value == "_":
            out.append(f"_x{count}")
        elif value == "stale":
            out += ["stale"] * count
        else:
            out.append(f"{value}" if count == 1 else f"{value}x{count - 1}")
    return " ".join(out)


def series(metric: str, labels: dict[str, str]) -> str:
    return metric + "{" + ",".join(f'{k}="{v}"' for k, v in labels.items()) + "}"


def gpu_labels(node: str, index: int, **extra: str) -> dict[str, str]:
    """The labels a scraped DCGM series has: the exporter's own and the ServiceMonitor target's."""
    host = sum(node.encode()) % 250  # a stable, made-up pod address and name per node
    return {"job": EXPORTER_JOB, "Hostname": node, "gpu": str(index),
            "UUID": f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, f'{node}/{index}')}", "modelName": MODEL,
            "device": f"nvidia{index}", "pci_bus_id": f"00000000:0{index + 1}:00.0",
            "DCGM_FI_DRIVER_VERSION": "580.173.02", "instance": f"10.42.{host}.17:9400", "namespace": "gpu-operator",
            "pod": f"nvidia-dcgm-exporter-{host:03d}xk", "service": "nvidia-dcgm-exporter", "endpoint": "gpu-metrics",
            "container": "nvidia-dcgm-exporter", **extra}


def alert_labels(node: str, index: int) -> dict[str, str]:
    return {k: v for k, v in gpu_labels(node, index).items() if k in GPU_LABELS}


def render(template: str, labels: dict[str, str], value: float) -> str:
    """Prometheus's annotation templating for the constructs the rules use (an unknown label fails the test)."""
    def substitute(match: re.Match[str]) -> str:
        expr = match.group(1).strip()
        if expr.startswith("$labels."):
            return labels[expr.removeprefix("$labels.")]
        printf = re.fullmatch(r'\$value \| printf "%\.(\d)f"', expr)
        if printf:
            return f"{value:.{int(printf.group(1))}f}"
        raise AssertionError(f"the test's renderer does not know {{{{ {expr} }}}}")

    return re.sub(r"{{(.*?)}}", substitute, template)


class Cases:
    """promtool test cases for the alerts of one rule spec."""

    def __init__(self, spec: dict[str, Any], config: MonitoringConfig, nodes: list[GpuNodeConfig]):
        self.rules = {}
        for rule in all_rules(spec):
            self.rules.setdefault(rule["alert"], []).append(rule)
        self.config, self.nodes = config, nodes
        self.node = nodes[0].name if nodes else "proj-k8sw04"

    def expected(self, alert: str, labels: dict[str, str], value: float, rule_index: int = 0) -> dict[str, Any]:
        rule = self.rules[alert][rule_index]
        return {"exp_labels": {**rule["labels"], **labels},
                "exp_annotations": {k: render(v, labels, value) for k, v in rule["annotations"].items()}}

    def for_alert(self, alert: str) -> list[dict[str, Any]]:
        builders = {"GpuUtilizationHigh": self.level, "GpuMemoryHigh": self.level, "GpuTemperatureHigh": self.level,
                    "GpuXidError": self.xid, "DcgmExporterDown": self.down, "DcgmExporterAbsent": self.absent,
                    "GpuCountDropped": self.count}
        return builders[alert](alert)

    def level(self, alert: str) -> list[dict[str, Any]]:
        [level] = [a for a in level_alerts(self.config) if a.name == alert]
        duration = seconds(level.for_)
        samples = duration // STEP + 5
        shared = {"exported_pod": "trainer-0", "exported_namespace": "ai-ml", "exported_container": "trainer"}

        def inputs(fire: bool) -> list[dict[str, str]]:
            out = []
            for extra in ({}, shared):  # an unused view and a pod's view of one shared GPU: one alert, not two
                labels = gpu_labels(self.node, 0, **extra)
                for metric, value in level_samples(alert, level.threshold, fire).items():
                    out.append({"series": series(metric, labels), "values": values((value, samples))})
            return out

        fire_value = level_value(alert, level.threshold, fire=True)
        firing = self.expected(alert, alert_labels(self.node, 0), fire_value)
        return [
            {"name": f"{alert}: just above {level.threshold:g} fires after {level.for_}, not before",
             "input_series": inputs(fire=True), "alert_rule_test": [
                 {"eval_time": f"{duration - STEP}s", "alertname": alert, "exp_alerts": []},
                 {"eval_time": f"{duration}s", "alertname": alert, "exp_alerts": [firing]}]},
            {"name": f"{alert}: {level_value(alert, level.threshold, fire=False):g}, not above "
                     f"{level.threshold:g}, never fires",
             "input_series": inputs(fire=False), "alert_rule_test": [
                 {"eval_time": f"{duration + 3 * STEP}s", "alertname": alert, "exp_alerts": []}]},
        ]

    def xid(self, alert: str) -> list[dict[str, Any]]:
        window = seconds(self.config.alerts.xid_errors.window) // STEP
        first, second = 20, 20 + window + 8  # sample indexes where codes 43 and then 13 appear
        end = second + 10
        labels = alert_labels(self.node, 0)

        def at(index: int, exp: list[dict[str, Any]]) -> dict[str, Any]:
            return {"eval_time": f"{index * STEP}s", "alertname": alert, "exp_alerts": exp}

        timeline = [at(first - 1, []), at(first, [self.expected(alert, labels, 43)]),
                    at(first + window - 1, [self.expected(alert, labels, 43)]),
                    at(first + window, []),  # the gauge still says 43: not new any more, so not firing forever
                    at(second, [self.expected(alert, labels, 13)])]
        by_code = [  # exporters >= 3.3.6 label the code (err_code), so each code is a series of its own
            {"series": series("DCGM_FI_DEV_XID_ERRORS", gpu_labels(self.node, 0, err_code="0")),
             "values": values((0, first), ("stale", 1))},
            {"series": series("DCGM_FI_DEV_XID_ERRORS", gpu_labels(self.node, 0, err_code="43", err_msg="GPU stopped "
                                                                   "processing")),
             "values": values(("_", first), (43, second - first), ("stale", 1))},
            {"series": series("DCGM_FI_DEV_XID_ERRORS", gpu_labels(self.node, 0, err_code="13", err_msg="Graphics "
                                                                   "Engine Exception")),
             "values": values(("_", second), (13, end - second))},
        ]
        one_series = [{"series": series("DCGM_FI_DEV_XID_ERRORS", gpu_labels(self.node, 0)),
                       "values": values((0, first), (43, second - first), (13, end - second))}]
        never = [{"series": series("DCGM_FI_DEV_XID_ERRORS", gpu_labels(self.node, 0, err_code="0")),
                  "values": values((0, end))}]
        return [
            {"name": f"{alert}: a new code fires for {window * STEP}s, with an err_code label per code",
             "input_series": by_code, "alert_rule_test": timeline},
            {"name": f"{alert}: the same with one unlabelled gauge (older exporters)",
             "input_series": one_series, "alert_rule_test": timeline},
            {"name": f"{alert}: code 0 never fires", "input_series": never,
             "alert_rule_test": [at(first, []), at(end - 1, [])]},
        ]

    def down(self, alert: str) -> list[dict[str, Any]]:
        duration = seconds(self.config.alerts.exporter_down.for_)
        samples = duration // STEP + 5
        target = {k: v for k, v in gpu_labels(self.node, 0).items()
                  if k in {"job", "instance", "namespace", "pod", "service", "endpoint", "container"}}
        up = series("up", target)
        return [
            {"name": f"{alert}: a failing target fires after {duration}s, not before",
             "input_series": [{"series": up, "values": values((0, samples))}], "alert_rule_test": [
                 {"eval_time": f"{duration - STEP}s", "alertname": alert, "exp_alerts": []},
                 {"eval_time": f"{duration}s", "alertname": alert, "exp_alerts": [self.expected(alert, target, 0)]}]},
            {"name": f"{alert}: a healthy target never fires",
             "input_series": [{"series": up, "values": values((1, samples))}], "alert_rule_test": [
                 {"eval_time": f"{duration + 3 * STEP}s", "alertname": alert, "exp_alerts": []}]},
        ]

    def absent(self, alert: str) -> list[dict[str, Any]]:
        duration = seconds(self.config.alerts.exporter_absent.for_)
        samples = duration // STEP + 5
        other = {"series": series("up", {"job": "kube-state-metrics", "instance": "10.42.0.9:8080"}),
                 "values": values((1, samples))}
        ours = {"series": series("up", {"job": EXPORTER_JOB, "instance": "10.42.3.17:9400"}),
                "values": values((1, samples))}
        return [
            {"name": f"{alert}: no exporter target fires after {duration}s, not before",
             "input_series": [other], "alert_rule_test": [
                 {"eval_time": f"{duration - STEP}s", "alertname": alert, "exp_alerts": []},
                 {"eval_time": f"{duration}s", "alertname": alert,
                  "exp_alerts": [self.expected(alert, {"job": EXPORTER_JOB}, 1)]}]},
            {"name": f"{alert}: a present target never fires", "input_series": [other, ours], "alert_rule_test": [
                {"eval_time": f"{duration + 3 * STEP}s", "alertname": alert, "exp_alerts": []}]},
        ]

    def count(self, alert: str) -> list[dict[str, Any]]:
        duration = seconds(self.config.alerts.gpu_count_dropped.for_)
        drop = 4  # sample index of the staleness marker: from then on the GPU is not seen
        samples = drop + duration // STEP + 5
        cases = []
        for index, node in enumerate(self.nodes):
            for lost in sorted({1, node.gpu_count}):  # one GPU gone; the node's exporter reporting nothing
                inputs = []
                for other in self.nodes:
                    for gpu in range(other.gpu_count):
                        gone = other is node and gpu >= other.gpu_count - lost
                        runs = ((50, drop), ("stale", 1)) if gone else ((50, samples),)
                        inputs.append({"series": series("DCGM_FI_DEV_GPU_TEMP", gpu_labels(other.name, gpu)),
                                       "values": values(*runs)})
                seen = node.gpu_count - lost
                firing = self.expected(alert, {"Hostname": node.name}, seen, rule_index=index)
                cases.append({
                    "name": f"{alert}: {node.name} down to {seen} of {node.gpu_count} fires after {duration}s",
                    "input_series": inputs, "alert_rule_test": [
                        {"eval_time": f"{drop * STEP + duration - STEP}s", "alertname": alert, "exp_alerts": []},
                        {"eval_time": f"{drop * STEP + duration}s", "alertname": alert,
                         "exp_alerts": [firing]}]})
        full = [{"series": series("DCGM_FI_DEV_GPU_TEMP", gpu_labels(n.name, gpu)), "values": values((50, samples))}
                for n in self.nodes for gpu in range(n.gpu_count)]
        cases.append({"name": f"{alert}: every configured GPU seen never fires", "input_series": full,
                      "alert_rule_test": [{"eval_time": f"{(samples - 1) * STEP}s", "alertname": alert,
                                           "exp_alerts": []}]})
        return cases


def level_value(alert: str, threshold: float, *, fire: bool) -> float:
    """The value the alert's expression takes: just above the threshold, or the highest value not above it."""
    if alert == "GpuMemoryHigh":
        used, free = memory_mib(threshold, fire)
        return 100 * used / (used + free)
    # the exporter reports whole percent and whole degrees
    return math.floor(threshold) + 1 if fire else math.floor(threshold)


def memory_mib(threshold: float, fire: bool) -> tuple[int, int]:
    """FB_USED and FB_FREE (whole MiB, as the exporter reports them) giving exactly `threshold` %, or 1 MiB more."""
    total = 16_000  # about an RTX A4000's usable 16 GiB, and a whole number of MiB at most thresholds
    used = Fraction(str(threshold)) * total / 100
    assert used.denominator == 1, f"pick a total for which {threshold} % is a whole number of MiB"
    used_mib = int(used) + (1 if fire else 0)
    return used_mib, total - used_mib


def level_samples(alert: str, threshold: float, fire: bool) -> dict[str, float]:
    if alert == "GpuMemoryHigh":
        used, free = memory_mib(threshold, fire)
        return {"DCGM_FI_DEV_FB_USED": used, "DCGM_FI_DEV_FB_FREE": free}
    metric = {"GpuUtilizationHigh": "DCGM_FI_DEV_GPU_UTIL", "GpuTemperatureHigh": "DCGM_FI_DEV_GPU_TEMP"}[alert]
    return {metric: level_value(alert, threshold, fire=fire)}


def run_promtool(promtool: str, directory: Path, spec: dict[str, Any],
                 tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    (directory / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False, allow_unicode=True))
    (directory / "tests.yaml").write_text(yaml.safe_dump(
        {"rule_files": ["rules.yaml"], "evaluation_interval": f"{STEP}s", "tests": tests}, sort_keys=False,
        allow_unicode=True))
    return subprocess.run([promtool, "test", "rules", "tests.yaml"], cwd=directory, capture_output=True, text=True,
                          timeout=60)


def promtool_cases(spec: dict[str, Any], config: MonitoringConfig, nodes: list[GpuNodeConfig],
                   alert: str) -> list[dict[str, Any]]:
    return [{"interval": f"{STEP}s", **case} for case in Cases(spec, config, nodes).for_alert(alert)]


def other_config() -> tuple[MonitoringConfig, list[GpuNodeConfig]]:
    """Non-default thresholds and durations on two nodes: the tests follow the config, not the lab's numbers."""
    raw = lab_with(**{"monitoring.alerts": {
        "gpuUtilization": {"threshold": 90, "for": "3m"}, "gpuMemory": {"threshold": 92.5, "for": "90s"},
        "gpuTemperature": {"threshold": 85.5, "for": "1m"}, "xidErrors": {"window": "5m"},
        "exporterDown": {"for": "2m"}, "exporterAbsent": {"for": "3m"}, "gpuCountDropped": {"for": "1m"}}})
    stack = compiled(raw).stack
    assert stack.monitoring is not None
    return stack.monitoring, two_nodes()


def test_promtool_accepts_the_rule_file_the_lab_declares(lab, promtool, tmp_path):
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(lab_rule(lab)["spec"], allow_unicode=True))
    result = subprocess.run([promtool, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(all_rules(lab_rule(lab)['spec']))} rules found" in result.stdout


@pytest.mark.parametrize("alert", ALERTS)
def test_promtool_every_lab_alert_fires_at_its_threshold_after_its_duration_and_not_below_or_before(
        lab, promtool, tmp_path, alert):
    spec = lab_rule(lab)["spec"]
    result = run_promtool(promtool, tmp_path, spec, promtool_cases(spec, lab_monitoring(), compiled().stack.nodes,
                                                                   alert))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("alert", ALERTS)
def test_promtool_the_alerts_follow_a_non_default_config(promtool, tmp_path, alert):
    config, nodes = other_config()
    spec = prometheus_rule_spec(config, nodes)
    result = run_promtool(promtool, tmp_path, spec, promtool_cases(spec, config, nodes, alert))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_declared_alert_has_generated_promtool_cases(lab):
    spec = lab_rule(lab)["spec"]
    cases = Cases(spec, lab_monitoring(), compiled().stack.nodes)
    assert {alert: len(cases.for_alert(alert)) > 1 for alert in alert_names(spec)} == {a: True for a in ALERTS}


def _replace(spec: dict[str, Any], alert: str, change: Any) -> dict[str, Any]:
    broken = copy.deepcopy(spec)
    for rule in all_rules(broken):
        if rule["alert"] == alert:
            change(rule)
    return broken


@pytest.mark.parametrize(("alert", "change", "failing_case"), [
    ("GpuUtilizationHigh", lambda r: r.update(expr=r["expr"].replace(" > ", " >= ")), "98, not above 98, never fires"),
    ("GpuMemoryHigh", lambda r: r.pop("for"), "fires after 5m, not before"),
    ("GpuTemperatureHigh", lambda r: r.update(expr=r["expr"].replace("> 80", "> 81")), "fires after 2m, not before"),
    ("GpuXidError", lambda r: r.update(expr=r["expr"].split(" unless ")[0]), "a new code fires for 600s"),
    ("GpuCountDropped", lambda r: r.update(expr=r["expr"].split(" or ")[0].removeprefix("(") + " < 1"),
     "down to 0 of 1"),
    ("DcgmExporterAbsent", lambda r: r.update(expr=r["expr"].replace("absent(up", "absent(up_")),
     "a present target never fires"),
])
def test_promtool_cases_catch_a_wrong_rule(lab, promtool, tmp_path, alert, change, failing_case):
    """The generated cases have teeth: each plausible mistake in a rule makes promtool fail."""
    spec = lab_rule(lab)["spec"]
    cases = promtool_cases(spec, lab_monitoring(), compiled().stack.nodes, alert)
    result = run_promtool(promtool, tmp_path, _replace(spec, alert, change), cases)
    assert result.returncode != 0
    failed = [c["name"] for c in cases if c["name"] in result.stdout + result.stderr]
    assert any(failing_case in name for name in failed), result.stdout + result.stderr


# --- the dashboard -------------------------------------------------------------------------------------------------

def dashboard_queries(board: dict[str, Any]) -> list[str]:
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    queries += [v["query"]["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return queries


def test_every_dashboard_query_reads_only_metrics_the_exporter_collects_by_default(upstream):
    collected = exporter_metrics(upstream)
    for query in dashboard_queries(dashboard(lab_monitoring())):
        referenced = set(re.findall(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\s*\{", query))
        assert referenced, query
        assert referenced <= collected, (query, referenced - collected)
        assert all(name.startswith("DCGM_FI_DEV_") for name in referenced), query  # no DCGM_FI_PROF_* on the A4000


@pytest.mark.parametrize("make", [lab_monitoring, lambda: other_config()[0]])
def test_every_drawn_threshold_is_its_alerts_threshold_on_the_alerts_own_quantity(make):
    config = make()
    board = dashboard(config)
    rules = {r["alert"]: r for r in all_rules(prometheus_rule_spec(config, []))}
    drawn = {}
    for panel in board["panels"]:
        steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
        assert steps[0]["value"] is None  # the base step draws nothing
        lines = [step["value"] for step in steps[1:]]
        links = [link["url"].rpartition("#")[2] for link in panel.get("links", [])]
        alerts = [name for name in rules if name.lower() in links]
        if not lines:
            continue
        [alert] = alerts
        left, _, threshold = rules[alert]["expr"].rpartition(" > ")
        assert lines == [float(threshold)], panel["title"]
        assert panel["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"] == "dashed"
        assert panel["targets"][0]["expr"].replace(', Hostname=~"$node"', "") == left, panel["title"]
        drawn[alert] = lines[0]
    assert drawn == {a.name: a.threshold for a in level_alerts(config)}


def test_the_dashboard_shows_utilisation_memory_temperature_power_and_xid_per_gpu_and_node():
    board = dashboard(lab_monitoring())
    titles = [panel["title"] for panel in board["panels"]]
    assert titles == ["GPU utilisation", "GPU memory used", "GPU temperature", "GPU power", "Last XID error"]
    for panel in board["panels"]:
        assert all("max by (Hostname, gpu, UUID, modelName)" in t["expr"] for t in panel["targets"]), panel["title"]
        assert all(t["legendFormat"] == "{{Hostname}} · GPU {{gpu}}" for t in panel["targets"])
    cells = set()
    for panel in board["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & area, panel["title"]  # panels do not overlap
        cells |= area
    assert len({panel["id"] for panel in board["panels"]}) == len(board["panels"])


def test_the_committed_dashboard_picture_is_current():
    from tools.render_dashboard import SVG_FILE, gpus, render

    assert SVG_FILE == ROOT / "docs" / "dashboard.svg"
    assert SVG_FILE.read_text() == render(dashboard(lab_monitoring()), gpus(compiled().stack.nodes)), \
        "docs/dashboard.svg is stale: run `venv/bin/python -m tools.render_dashboard`"
