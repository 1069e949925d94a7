"""`dev.py verify`: a read-only check of a live cluster against the stack config.

    python -m tools.verify [--stack lab] [--kubeconfig FILE] [--context NAME] [--json]

`pulumi up` succeeding means the release and the declared objects were written; the operator then works
asynchronously (driver first, then the toolkit, the device plugin, GFD, the DCGM exporter), so the pinned driver,
the advertised GPUs and the metrics arrive later, or not at all. This command says, check by check, what the
stack config expects, what the cluster shows, and what to do. It only reads (GET and LIST); it never writes.

Expectations come from the typed stack config (components/stack_config.py) and from the objects the program
declares, read by running the program under the mock engine (tools/mockrun.py), so a new declared kind is checked
for drift without a change here. The checks are data (`CHECKS`): each is a pure function of the expectation and a
snapshot of the cluster (`Live`), so each verdict is tested without a cluster (tests/test_verify.py) and on the
real tier (tests/real/test_live_verify.py).

Exit codes: 0 every check passed (warnings allowed), 1 a check failed, 2 a usage, config or connection error.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.tenancy import parse_quantity
from tools.findings import ROOT, Finding, LoadedStack, UsageError, exit_code, load_stack, render_json, render_text

# --- what the operator and GFD write (NVIDIA's names; see ../shared FACTS and components/) -------------------
CLUSTER_POLICY = ("nvidia.com/v1", "ClusterPolicy")
NVIDIA_DRIVER = ("nvidia.com/v1alpha1", "NVIDIADriver")
SERVICE_MONITOR = ("monitoring.coreos.com/v1", "ServiceMonitor")
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
GPU_COUNT_LABEL = "nvidia.com/gpu.count"
DRIVER_VERSION_LABEL = "nvidia.com/cuda.driver-version.full"
SHARING_STRATEGY_LABEL = "nvidia.com/gpu.sharing-strategy"
REPLICAS_LABEL = "nvidia.com/gpu.replicas"
UPGRADE_STATE_LABEL = "nvidia.com/gpu-driver-upgrade-state"  # the driver upgrade controller's per-node state
SHARED_RESOURCE = "nvidia.com/gpu.shared"  # renameByDefault: true
# With a sharing profile GFD appends -SHARED to the product label unless renameByDefault renames the resource
# (NVIDIA's time-slicing docs); both forms name the configured GPU.
SHARED_PRODUCT_SUFFIX = "-SHARED"
# The DCGM exporter's Service, as the operator creates it (NVIDIA/gpu-operator assets/state-dcgm-exporter).
DCGM_SERVICE = "nvidia-dcgm-exporter"

# Kinds of declared objects, grouped into the checks the runbook's manual steps had. A kind not listed here is
# checked under "declared-objects". Admission policies are checked as soon as the program declares them.
DRIFT_CHECKS: tuple[tuple[str, frozenset[str]], ...] = (
    ("pod-security", frozenset({"Namespace"})),
    ("quotas", frozenset({"ResourceQuota", "LimitRange"})),
    ("rbac", frozenset({"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"})),
    ("admission-policies", frozenset({"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding",
                                      "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"})),
)
OTHER_DECLARED = "declared-objects"
# Declared types that are not objects of their own: a patch of the node (checked by node-config) and the
# Helm release (checked through what it produces).
NOT_OBJECTS = ("kubernetes:core/v1:NodePatch", "kubernetes:helm.sh/v3:Release")


# --- the expectation and the snapshot ------------------------------------------------------------------------

@dataclass(frozen=True)
class Expectation:
    """The stack config and the objects the program declares (manifests as the engine receives them)."""

    loaded: LoadedStack
    declared: tuple[dict[str, Any], ...] = ()

    @property
    def stack(self) -> Any:
        return self.loaded.stack

    @property
    def namespace(self) -> str:
        return self.stack.gpu_operator.namespace


@dataclass(frozen=True)
class DeclaredObject:
    manifest: dict[str, Any]
    live: dict[str, Any] | None
    error: str = ""  # why it could not be read (a kind the cluster does not know)


@dataclass
class Live:
    """What the cluster shows, as the API returned it. None for a list means its kind (CRD) is not installed."""

    cluster_policies: list[dict[str, Any]] | None = None
    nvidia_drivers: list[dict[str, Any]] | None = None
    nodes: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    config_maps: dict[str, dict[str, Any]] = field(default_factory=dict)
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    endpoint_slices: list[dict[str, Any]] = field(default_factory=list)
    service_monitors: list[dict[str, Any]] | None = None
    declared: list[DeclaredObject] = field(default_factory=list)


Check = Callable[[Expectation, Live], list[Finding]]


def _labels(obj: dict[str, Any] | None) -> dict[str, str]:
    return ((obj or {}).get("metadata") or {}).get("labels") or {}


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def _status(obj: dict[str, Any]) -> dict[str, Any]:
    return obj.get("status") or {}


# --- the operator's own state --------------------------------------------------------------------------------

def check_cluster_policy(expect: Expectation, live: Live) -> list[Finding]:
    """The ClusterPolicy the chart created is `ready` and asks for what the config pins."""
    chart = expect.stack.gpu_operator.chart.version
    if live.cluster_policies is None:
        return [Finding("clusterpolicy", "ClusterPolicy", "fail", f"the gpu-operator chart {chart} installed",
                        "no clusterpolicies.nvidia.com CRD: the chart is not installed on this cluster",
                        "check that --kubeconfig/--context name the right cluster; then run `pulumi up` for the "
                        "stack (README, \"The real path\")")]
    if not live.cluster_policies:
        return [Finding("clusterpolicy", "ClusterPolicy", "fail", "one ClusterPolicy (the chart creates it)",
                        "none", "run `pulumi up` for the stack; if the release is deployed, the operator could not "
                        f"create it: `kubectl -n {expect.namespace} logs deploy/gpu-operator | tail -50`")]
    findings = []
    driver = expect.stack.gpu_operator.driver
    for policy in live.cluster_policies:
        subject = f"ClusterPolicy {_name(policy)}"
        spec_driver = ((policy.get("spec") or {}).get("driver") or {})
        if driver.mode == "operator" and str(spec_driver.get("version", "")) != driver.version:
            findings.append(Finding(
                "clusterpolicy", subject, "fail", f"spec.driver.version {driver.version} (gpuOperator.driver.version)",
                f"spec.driver.version {spec_driver.get('version') or '(none)'}",
                "either the last `pulumi up` did not carry this config (`pulumi preview` shows the difference; "
                "then `pulumi up`), or the ClusterPolicy was edited by hand, which no preview shows: one `pulumi up` "
                "with gpuOperator.chart.forceUpdate: true puts the chart's object back (docs/runbook.md, Drift)"))
            continue
        state = str(_status(policy).get("state") or "")
        if state == "ready":
            findings.append(Finding("clusterpolicy", subject, "pass", "state ready", "state ready"))
            continue
        conditions = [f"{c.get('type')}: {c.get('message') or c.get('reason')}" for c in
                      _status(policy).get("conditions") or [] if c.get("status") == "True" and c.get("type") != "Ready"]
        found = f"state {state or '(none yet)'}" + (f" ({'; '.join(conditions)})" if conditions else "")
        findings.append(Finding(
            "clusterpolicy", subject, "fail", "state ready", found,
            "the operator has not finished rolling out its operands (the driver comes first, the rest waits for it): "
            f"`kubectl -n {expect.namespace} get pods -o wide`; a driver pod in ErrImagePull means the pinned version "
            "has no image for the node's OS; see docs/runbook.md, Troubleshooting"))
    return findings


def check_nvidia_drivers(expect: Expectation, live: Live) -> list[Finding]:
    """Every NVIDIADriver (driver.mode: perPool, one per pool) exists, asks for its pool's version, and is ready."""
    driver = expect.stack.gpu_operator.driver
    pools = {pool.name: pool for pool in driver.pools or []} if driver.mode == "perPool" else {}
    if live.nvidia_drivers is None:
        if not pools:
            return []
        return [Finding("nvidiadriver", "NVIDIADriver", "fail", "the NVIDIADriver CRD (chart with "
                        "driver.nvidiaDriverCRD.enabled)", "no nvidiadrivers.nvidia.com CRD",
                        "run `pulumi up` for the stack")]
    by_name = {_name(d): d for d in live.nvidia_drivers}
    findings = []
    for name, pool in pools.items():
        if name not in by_name:
            findings.append(Finding("nvidiadriver", f"NVIDIADriver {name}", "fail",
                                    f"NVIDIADriver {name} for pool {name} (gpuOperator.driver.pools)", "missing",
                                    "run `pulumi up` for the stack"))
    for name, obj in sorted(by_name.items()):
        subject = f"NVIDIADriver {name}"
        version = str((obj.get("spec") or {}).get("version", ""))
        if name in pools and version != pools[name].version:
            findings.append(Finding("nvidiadriver", subject, "fail", f"spec.version {pools[name].version}",
                                    f"spec.version {version}", "run `pulumi up` for the stack"))
            continue
        state = str(_status(obj).get("state") or "")
        if state == "ready":
            findings.append(Finding("nvidiadriver", subject, "pass", "state ready", "state ready"))
        else:
            findings.append(Finding("nvidiadriver", subject, "fail", "state ready", f"state {state or '(none yet)'}",
                                    f"the driver of pool {name} is not rolled out yet: `kubectl -n {expect.namespace} "
                                    "get pods -o wide | grep nvidia-gpu-driver`"))
    return findings


# --- every GPU node --------------------------------------------------------------------------------------------

def _node_or_missing(check: str, expect: Expectation, live: Live, node: Any) -> tuple[dict[str, Any] | None,
                                                                                      list[Finding]]:
    obj = live.nodes.get(node.name)
    if obj is None:
        return None, [Finding(check, f"node {node.name}", "fail", f"node {node.name} (nodes[].name)", "no such node",
                              "check the node name in the stack config against `kubectl get nodes`")]
    return obj, []


def check_node_ready(expect: Expectation, live: Live) -> list[Finding]:
    """Every configured GPU node is Ready: a NotReady node runs no operand, serves no GPU and reports no metrics."""
    findings = []
    for node in expect.stack.nodes:
        obj, missing = _node_or_missing("node-ready", expect, live, node)
        if obj is None:
            findings += missing
            continue
        ready = next((c for c in _status(obj).get("conditions") or [] if c.get("type") == "Ready"), {})
        if ready.get("status") == "True":
            findings.append(Finding("node-ready", f"node {node.name}", "pass", "Ready", "Ready"))
            continue
        taints = [t["key"] for t in (obj.get("spec") or {}).get("taints") or []
                  if str(t.get("key", "")).startswith("node.kubernetes.io/")]
        found = (f"NotReady ({ready.get('reason') or 'no Ready condition'}"
                 + (f": {ready['message']}" if ready.get("message") else "") + ")"
                 + (f", tainted {', '.join(taints)}" if taints else ""))
        findings.append(Finding(
            "node-ready", f"node {node.name}", "fail", "Ready", found,
            f"the kubelet on {node.name} stopped reporting: check the host (Proxmox VM, `systemctl status "
            "rke2-agent`); while it is down no driver upgrade or GPU pod can run there, and with the operator "
            "pinned to it Helm upgrades wait (docs/runbook.md)"))
    return findings


def check_node_config(expect: Expectation, live: Live) -> list[Finding]:
    """The labels and taints the stack sets on each node (GpuNodes' patch) are there."""
    findings = []
    for node in expect.stack.nodes:
        obj = live.nodes.get(node.name)
        if obj is None:
            continue  # said by node-ready
        labels = _labels(obj)
        problems = [f"label {k}={labels[k]!r}" if k in labels else f"label {k} missing"
                    for k, v in node.node_labels().items() if labels.get(k) != v]
        live_taints = {(t.get("key"), t.get("value") or "", t.get("effect"))
                       for t in (obj.get("spec") or {}).get("taints") or []}
        problems += [f"taint {t.key}={t.value}:{t.effect} missing" for t in node.taints
                     if (t.key, t.value, t.effect) not in live_taints]
        expected = ", ".join([f"{k}={v}" for k, v in node.node_labels().items()]
                             + [f"taint {t.key}={t.value}:{t.effect}" for t in node.taints]) or "nothing"
        if problems:
            findings.append(Finding("node-config", f"node {node.name}", "fail", expected, "; ".join(problems),
                                    "someone changed the node by hand, or `pulumi up` has not run: `pulumi up "
                                    "--refresh` puts them back"))
        else:
            findings.append(Finding("node-config", f"node {node.name}", "pass", expected, f"labels and taints: {expected}"))
    return findings


def check_gfd_labels(expect: Expectation, live: Live) -> list[Finding]:
    """GPU Feature Discovery labelled each node: a GPU is present, the product and the count are the configured."""
    if not expect.stack.gpu_operator.gfd.enabled:
        return [Finding("gfd-labels", "GPU Feature Discovery", "warn", "GFD labels on the GPU nodes",
                        "gpuOperator.gfd.enabled is false: nothing writes them, so the driver and sharing checks "
                        "cannot read the nodes", "enable GFD (gpuOperator.gfd.enabled: true)")]
    findings = []
    for node in expect.stack.nodes:
        obj = live.nodes.get(node.name)
        if obj is None:
            continue
        labels = _labels(obj)
        product = labels.get("nvidia.com/gpu.product")
        problems = []
        if labels.get(GPU_PRESENT_LABEL) != "true":
            problems.append(f"{GPU_PRESENT_LABEL} {_shown(labels.get(GPU_PRESENT_LABEL))}")
        if product not in (node.gpu, node.gpu + SHARED_PRODUCT_SUFFIX):
            problems.append(f"nvidia.com/gpu.product {_shown(product)}")
        if labels.get(GPU_COUNT_LABEL) != str(node.gpu_count):
            problems.append(f"{GPU_COUNT_LABEL} {_shown(labels.get(GPU_COUNT_LABEL))}")
        expected = (f"{GPU_PRESENT_LABEL}=true, nvidia.com/gpu.product={node.gpu} (nodes[].gpu), "
                    f"{GPU_COUNT_LABEL}={node.gpu_count} (nodes[].gpuCount)")
        if not problems:
            findings.append(Finding("gfd-labels", f"node {node.name}", "pass", expected,
                                    f"GPU present: {product}, {node.gpu_count} GPU(s)"))
            continue
        missing = any("missing" in p for p in problems)
        action = (f"GFD has not labelled the node: `kubectl -n {expect.namespace} get pods -o wide "
                  f"--field-selector spec.nodeName={node.name}` (GFD waits for the driver and the toolkit); "
                  "see docs/runbook.md, \"Node GPU-ready but workloads fail\"" if missing else
                  f"the node's GPU is not the configured one: fix nodes[].gpu / gpuCount, or check the GPU with "
                  "`nvidia-smi -L` in the driver container (docs/runbook.md, GpuCountDropped)")
        findings.append(Finding("gfd-labels", f"node {node.name}", "fail", expected, "; ".join(problems), action))
    return findings


def _shown(value: str | None) -> str:
    return "missing" if value is None else f"is {value!r}"


def expected_driver(stack: Any, node: Any, live_labels: dict[str, str]) -> tuple[str | None, str]:
    """The driver version the node should run and the config key it comes from (None: no pool selects it)."""
    driver = stack.gpu_operator.driver
    if driver.mode == "operator":
        return driver.version, "gpuOperator.driver.version"
    if driver.mode == "host":
        return driver.host_version, "gpuOperator.driver.hostVersion"
    labels = {**live_labels, **node.scheduling_labels()}
    for index, pool in enumerate(driver.pools or []):
        if all(labels.get(k) == v for k, v in pool.node_selector.items()):
            return pool.version, f"gpuOperator.driver.pools[{index}].version"
    return None, "gpuOperator.driver.pools"


def _driver_matches(expected: str, found: str) -> bool:
    # A precompiled pin is a branch ("580"): any build of that branch is it.
    return found == expected or (expected.isdigit() and found.startswith(f"{expected}."))


def check_driver_version(expect: Expectation, live: Live) -> list[Finding]:
    """The driver GFD reports on each node is the pin (or the expected host driver in host mode)."""
    findings = []
    mode = expect.stack.gpu_operator.driver.mode
    for node in expect.stack.nodes:
        obj = live.nodes.get(node.name)
        if obj is None or not expect.stack.gpu_operator.gfd.enabled:
            continue
        labels = _labels(obj)
        version, key = expected_driver(expect.stack, node, labels)
        subject = f"node {node.name}"
        if version is None:
            findings.append(Finding("driver-version", subject, "fail", "a driver pool selecting the node",
                                    "no pool's nodeSelector matches its labels", f"add a pool for it to {key}"))
            continue
        found = labels.get(DRIVER_VERSION_LABEL)
        expected = f"{DRIVER_VERSION_LABEL}={version} ({key})"
        state = labels.get(UPGRADE_STATE_LABEL)
        state_text = f" (driver upgrade state: {state})" if state else ""
        if found is not None and _driver_matches(version, found):
            findings.append(Finding("driver-version", subject, "pass", expected, f"driver {found}{state_text}"))
        elif found is None:
            action = ("the driver is not rolled out on this node yet (GFD labels the version once the driver runs): "
                      f"`kubectl -n {expect.namespace} get pods -o wide --field-selector spec.nodeName={node.name}`, "
                      f"`kubectl get node {node.name} -L {UPGRADE_STATE_LABEL}`; wait, or see docs/runbook.md, "
                      "\"Operator pods failing after a driver change\"")
            if mode == "host":
                action = (f"no driver is loaded on {node.name}: install {version} on the host (driver.mode: host), "
                          "then check `nvidia-smi` there")
            findings.append(Finding("driver-version", subject, "fail", expected, f"no driver version label{state_text}",
                                    action))
        else:
            action = (f"the node still runs {found}: the upgrade controller has not reached it or is stuck"
                      f"{' at ' + state if state else ''}. `kubectl get node {node.name} -L {UPGRADE_STATE_LABEL}`; "
                      "`upgrade-failed` needs `kubectl -n " + expect.namespace + " logs deploy/gpu-operator`; "
                      "pods that the GPU-pod deletion may not remove (no controller, emptyDir) hold it: see "
                      "`python3 dev.py upgrade-plan`")
            if mode == "host":
                action = (f"the host runs {found}, the config records {version}: update the host's driver, or "
                          f"record the installed one in {key}")
            findings.append(Finding("driver-version", subject, "fail", expected, f"driver {found}{state_text}", action))
    return findings


def check_sharing(expect: Expectation, live: Live) -> list[Finding]:
    """Each node advertises GPUs x replicas of its sharing profile, and GFD's sharing labels agree."""
    sharing = expect.stack.gpu_operator.device_plugin.sharing
    findings = []
    for node in expect.stack.nodes:
        obj = live.nodes.get(node.name)
        if obj is None:
            continue
        profile_name = (node.sharing or sharing.default) if sharing else None
        profile = sharing.profiles[profile_name] if sharing and profile_name else None
        replicas = profile.replicas if profile else 1
        rename = bool(profile and (profile.mps or profile.time_slicing) and
                      (profile.mps or profile.time_slicing).rename_by_default)
        resource = SHARED_RESOURCE if rename else "nvidia.com/gpu"
        want = node.gpu_count * replicas
        allocatable = str((_status(obj).get("allocatable") or {}).get(resource, "0"))
        labels = _labels(obj)
        subject = f"node {node.name}"
        source = (f"{node.gpu_count} GPU(s) x {replicas} ({profile.strategy} profile {profile_name!r})" if profile
                  else f"{node.gpu_count} GPU(s), no sharing")
        expected = f"allocatable {resource}: {want} = {source}"
        problems = []
        if allocatable != str(want):
            problems.append(f"allocatable {resource}: {allocatable}")
        if profile is not None and expect.stack.gpu_operator.gfd.enabled:
            for label, value in ((SHARING_STRATEGY_LABEL, profile.strategy), (REPLICAS_LABEL, str(replicas))):
                if labels.get(label) != value:
                    problems.append(f"{label} {_shown(labels.get(label))} (want {value})")
        if node.sharing is not None and labels.get("nvidia.com/device-plugin.config") != node.sharing:
            problems.append(f"nvidia.com/device-plugin.config {_shown(labels.get('nvidia.com/device-plugin.config'))}"
                            f" (want {node.sharing}, nodes[].sharing)")
        if not problems:
            findings.append(Finding("sharing", subject, "pass", expected, f"allocatable {resource}: {allocatable}"
                                    + (f", {profile.strategy} x {replicas}" if profile else "")))
            continue
        namespace = expect.namespace
        restart = f"`kubectl -n {namespace} rollout restart daemonset/nvidia-device-plugin-daemonset`"
        if profile is not None and profile.mps is not None:
            restart += f" and `kubectl -n {namespace} rollout restart daemonset/nvidia-device-plugin-mps-control-daemon`"
        action = (f"the device plugin serves another config than the stack's (the operator does not watch its "
                  f"ConfigMap, NVIDIA/gpu-operator#1144): {restart}, then `kubectl get node {node.name} -L "
                  f"{REPLICAS_LABEL}`; if it still differs, see the device-plugin-config check")
        if allocatable == str(want) and all(p.startswith((SHARING_STRATEGY_LABEL, REPLICAS_LABEL)) and " missing " in p
                                            for p in problems):
            action = ("GFD has not written its sharing labels on the node yet: see the gfd-labels check (GFD runs "
                      "after the driver, the toolkit and the device plugin)")
        if allocatable in ("0", ""):
            action = (f"the node advertises no {resource}: the device plugin is not running there "
                      f"(`kubectl -n {namespace} get pods -l app=nvidia-device-plugin-daemonset -o wide`); it waits "
                      "for the driver and the toolkit")
        findings.append(Finding("sharing", subject, "fail", expected, "; ".join(problems), action))
    return findings


# --- operator-namespace objects --------------------------------------------------------------------------------

def check_device_plugin_config(expect: Expectation, live: Live) -> list[Finding]:
    """The ClusterPolicy names the stack's device-plugin ConfigMap, and that ConfigMap exists with its profiles."""
    sharing = expect.stack.gpu_operator.device_plugin.sharing
    if sharing is None or not live.cluster_policies:
        return []  # whole GPUs: no config; no ClusterPolicy: said by the clusterpolicy check
    wanted = sharing.config_map_name()
    findings = []
    for policy in live.cluster_policies:
        config = (((policy.get("spec") or {}).get("devicePlugin") or {}).get("config") or {})
        named, default = config.get("name"), config.get("default")
        subject = f"ClusterPolicy {_name(policy)}"
        expected = (f"spec.devicePlugin.config {wanted} (default {sharing.default}) in {expect.namespace}, with the "
                    f"profiles {', '.join(sorted(sharing.profiles))}")
        if named != wanted or default != sharing.default:
            findings.append(Finding("device-plugin-config", subject, "fail", expected,
                                    f"names {named or '(none)'} (default {default or '(none)'})",
                                    "either the last `pulumi up` did not carry this config (`pulumi preview` shows "
                                    "the difference; then `pulumi up`), or the ClusterPolicy was edited by hand, "
                                    "which no preview shows: one `pulumi up` with gpuOperator.chart.forceUpdate: true "
                                    "puts the chart's object back (docs/runbook.md, Drift)"))
            continue
        config_map = live.config_maps.get(named)
        if config_map is None:
            findings.append(Finding(
                "device-plugin-config", subject, "fail", expected, f"ConfigMap {expect.namespace}/{named} does not exist",
                "the device plugin cannot start with sharing; a failed Helm upgrade with cleanupOnFail can leave "
                "this (docs/real-tier.md): run `pulumi up --refresh`, which creates it again"))
            continue
        data = config_map.get("data") or {}
        if data != sharing.config_data():
            differing = sorted(k for k in set(data) | set(sharing.config_data()) if data.get(k) != sharing.config_data().get(k))
            findings.append(Finding("device-plugin-config", subject, "fail", expected,
                                    f"ConfigMap {named} differs in {', '.join(differing)}",
                                    "someone edited the ConfigMap: `pulumi up --refresh` writes it back (change "
                                    "sharing in the stack config instead)"))
            continue
        findings.append(Finding("device-plugin-config", subject, "pass", expected,
                                f"ConfigMap {named}, profiles {', '.join(sorted(data))}"))
    return findings


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions) against labels."""
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression.get("key"), expression.get("operator"), expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def check_dcgm_exporter(expect: Expectation, live: Live) -> list[Finding]:
    """The DCGM exporter's Service has a ready endpoint on every GPU node, and a ServiceMonitor selects it."""
    dcgm = expect.stack.gpu_operator.dcgm_exporter
    if not dcgm.enabled:
        return []
    namespace = expect.namespace
    service = live.services.get(DCGM_SERVICE)
    findings = []
    if service is None:
        return [Finding("dcgm-endpoints", f"Service {namespace}/{DCGM_SERVICE}", "fail",
                        "the DCGM exporter's Service (the operator creates it)", "missing",
                        "the operator has not deployed the exporter yet (it waits for the driver): see the "
                        "clusterpolicy check and docs/runbook.md, DcgmExporterAbsent")]
    ready_nodes = {str(endpoint.get("nodeName")) for s in live.endpoint_slices
                   if _labels(s).get("kubernetes.io/service-name") == DCGM_SERVICE
                   for endpoint in s.get("endpoints") or [] if (endpoint.get("conditions") or {}).get("ready")}
    for node in expect.stack.nodes:
        subject = f"Service {namespace}/{DCGM_SERVICE} on {node.name}"
        if node.name in ready_nodes:
            findings.append(Finding("dcgm-endpoints", subject, "pass", "a ready endpoint", "a ready endpoint"))
        else:
            findings.append(Finding(
                "dcgm-endpoints", subject, "fail", "a ready exporter endpoint on the node (port 9400)",
                "none", f"`kubectl -n {namespace} get pods -l app=nvidia-dcgm-exporter -o wide --field-selector "
                f"spec.nodeName={node.name}`; see docs/runbook.md, DcgmExporterDown"))
    monitor_config = dcgm.service_monitor
    if not monitor_config.enabled:
        return findings
    wanted = dict(monitor_config.additional_labels)
    expected = (f"a ServiceMonitor in {namespace} labelled {wanted or '(any)'} selecting Service {DCGM_SERVICE} on "
                "one of its ports")
    if live.service_monitors is None:
        findings.append(Finding("dcgm-servicemonitor", "ServiceMonitor", "fail", expected,
                                "no servicemonitors.monitoring.coreos.com CRD",
                                "install kube-prometheus-stack (the prometheus-operator CRDs), or set "
                                "gpuOperator.dcgmExporter.serviceMonitor.enabled: false"))
        return findings
    ports = {str(p.get("name")) for p in (service.get("spec") or {}).get("ports") or []}
    found = []
    for monitor in live.service_monitors:
        spec = monitor.get("spec") or {}
        spaces = spec.get("namespaceSelector") or {}
        in_namespace = spaces.get("any") or namespace in (spaces.get("matchNames") or [namespace])
        selects = in_namespace and _selects(spec.get("selector") or {}, _labels(service))
        if not selects:
            continue
        subject = f"ServiceMonitor {namespace}/{_name(monitor)}"
        problems = [f"label {k} {_shown(_labels(monitor).get(k))}" for k, v in wanted.items()
                    if _labels(monitor).get(k) != v]
        bad_ports = [str(e.get("port")) for e in spec.get("endpoints") or [] if str(e.get("port")) not in ports]
        if bad_ports:
            problems.append(f"endpoint port {', '.join(bad_ports)} is not a port of the Service ({', '.join(sorted(ports))})")
        if problems:
            found.append(Finding("dcgm-servicemonitor", subject, "fail", expected, "; ".join(problems),
                                 "Prometheus selects ServiceMonitors by label: set gpuOperator.dcgmExporter."
                                 "serviceMonitor.additionalLabels to its serviceMonitorSelector and run `pulumi up`"))
        else:
            found.append(Finding("dcgm-servicemonitor", subject, "pass", expected,
                                 f"selects {DCGM_SERVICE}, labels {wanted or '(none needed)'}"))
    if not found:
        found.append(Finding("dcgm-servicemonitor", f"ServiceMonitor in {namespace}", "fail", expected,
                             "no ServiceMonitor selects the exporter's Service",
                             "the operator creates it from dcgmExporter.serviceMonitor once the exporter runs: "
                             "see docs/runbook.md, DcgmExporterAbsent"))
    return findings + found


# --- declared objects: no drift ---------------------------------------------------------------------------------

_MISSING = object()


def _same(declared: Any, found: Any) -> bool:
    if str(declared) == str(found) and type(declared) is type(found):
        return True
    if isinstance(declared, bool) or isinstance(found, bool):
        return False
    a, b = parse_quantity(declared), parse_quantity(found)  # the API normalises quantities ("0.5" -> "500m")
    return a is not None and a == b


def differences(declared: Any, found: Any, path: str = "") -> list[str]:
    """Where `found` differs from what was declared; fields the API added are not differences, and neither are
    declared zero values the API leaves out (its `omitempty`: a PriorityClass's `globalDefault: false` reads back
    as no field)."""
    if found is _MISSING and (declared is None or declared is False or declared in (0, "", [], {})):
        return []
    if isinstance(declared, dict):
        if not isinstance(found, dict):
            return [f"{path or 'the object'} is {_brief(found)}, declared {_brief(declared)}"]
        out: list[str] = []
        for key, value in declared.items():
            out += differences(value, found.get(key, _MISSING), f"{path}.{key}" if path else key)
        return out
    if isinstance(declared, list):
        if not isinstance(found, list) or len(found) != len(declared):
            return [f"{path} is {_brief(found)}, declared {_brief(declared)}"]
        return [d for i, (a, b) in enumerate(zip(declared, found)) for d in differences(a, b, f"{path}[{i}]")]
    if found is _MISSING:
        return [f"{path} is missing, declared {_brief(declared)}"]
    return [] if _same(declared, found) else [f"{path} is {_brief(found)}, declared {_brief(declared)}"]


def _brief(value: Any) -> str:
    if value is _MISSING:
        return "missing"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _compared(manifest: dict[str, Any]) -> dict[str, Any]:
    """The declared fields drift is judged on: labels, annotations and every field but metadata and status."""
    metadata = manifest.get("metadata") or {}
    out = {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    kept = {k: metadata[k] for k in ("labels", "annotations") if metadata.get(k)}
    if kept:
        out["metadata"] = kept
    return out


def describe(manifest: dict[str, Any]) -> str:
    metadata = manifest.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{manifest.get('kind')} {namespace + '/' if namespace else ''}{metadata.get('name')}"


def drift_check_of(kind: str) -> str:
    return next((check for check, kinds in DRIFT_CHECKS if kind in kinds), OTHER_DECLARED)


def check_declared(expect: Expectation, live: Live) -> list[Finding]:
    """Every object the program declares exists as declared (Pod Security labels, quotas, RBAC, ... : no drift)."""
    groups: dict[str, list[DeclaredObject]] = {}
    for item in live.declared:
        groups.setdefault(drift_check_of(str(item.manifest.get("kind"))), []).append(item)
    findings = []
    order = [check for check, _ in DRIFT_CHECKS] + [OTHER_DECLARED]
    for check in order:
        items = groups.get(check)
        if not items:
            continue
        problems = []
        for item in items:
            if item.live is None:
                problems.append(f"{describe(item.manifest)} is missing" + (f" ({item.error})" if item.error else ""))
            else:
                problems += [f"{describe(item.manifest)}: {d}" for d in
                             differences(_compared(item.manifest), item.live)]
        kinds = ", ".join(sorted({str(i.manifest.get("kind")) for i in items}))
        subject = f"{kinds} ({len(items)} declared)"
        expected = f"{len(items)} object(s) exactly as the stack declares them"
        if items and all(item.live is None for item in items):
            findings.append(Finding(check, subject, "fail", expected,
                                    f"none of them exists ({', '.join(describe(i.manifest) for i in items)})",
                                    "`pulumi up` has not run for this stack on this cluster (or --context names "
                                    "another cluster)"))
        elif problems:
            findings.append(Finding(check, subject, "fail", expected, "; ".join(problems),
                                    "the cluster drifted from the stack (a hand edit, or `pulumi up` has not run "
                                    "since the config changed): `pulumi preview --refresh` shows it, `pulumi up "
                                    "--refresh` puts it back; change the stack config if the edit was intended"))
        else:
            findings.append(Finding(check, subject, "pass", expected,
                                    f"as declared: {', '.join(describe(i.manifest) for i in items)}"))
    return findings


# The checks, in the order a person reads them: the operator's state, each node, the namespace's objects, drift.
CHECKS: tuple[tuple[str, Check], ...] = (
    ("clusterpolicy", check_cluster_policy),
    ("nvidiadriver", check_nvidia_drivers),
    ("node-ready", check_node_ready),
    ("node-config", check_node_config),
    ("gfd-labels", check_gfd_labels),
    ("driver-version", check_driver_version),
    ("sharing", check_sharing),
    ("device-plugin-config", check_device_plugin_config),
    ("dcgm-exporter", check_dcgm_exporter),
    ("declared", check_declared),
)


def run_checks(expect: Expectation, live: Live) -> list[Finding]:
    return [finding for _, check in CHECKS for finding in check(expect, live)]


# --- reading the cluster (GET and LIST only) ---------------------------------------------------------------------

def declared_manifests(program_dir: Path, stack: str) -> tuple[dict[str, Any], ...]:
    """The Kubernetes objects the program declares for the stack (the mock engine's record, secrets hidden)."""
    from tools.mockrun import SECRET_PLACEHOLDER, is_secret
    from tools.plan import PlanError, run_program

    def unwrap(value: Any) -> Any:
        if is_secret(value):
            return SECRET_PLACEHOLDER
        if isinstance(value, dict):
            return {k: unwrap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [unwrap(v) for v in value]
        return value

    try:
        _, run, _ = run_program(program_dir, stack)
    except PlanError as error:
        raise UsageError(str(error)) from None
    manifests = []
    for resource in run.resources:
        metadata = resource.inputs.get("metadata")
        if (resource.custom and resource.type.startswith("kubernetes:") and resource.type not in NOT_OBJECTS
                and isinstance(metadata, dict) and metadata.get("name") and resource.inputs.get("kind")):
            manifests.append(unwrap(resource.inputs))
    # The mock engine records in completion order, which varies from run to run; reports should not.
    return tuple(sorted(manifests, key=lambda m: (str(m["kind"]), str(m["metadata"].get("namespace") or ""),
                                                  str(m["metadata"]["name"]))))


def collect(kube: Any, expect: Expectation) -> Live:
    """A snapshot of what the checks read, through GET and LIST requests only."""
    from tools.kube import KubeError

    namespace = expect.namespace

    def optional_list(api_version: str, kind: str, ns: str | None = None) -> list[dict[str, Any]] | None:
        try:
            return kube.list(api_version, kind, ns)
        except KubeError as error:
            if error.code == 404:  # the kind (its CRD) is not installed
                return None
            raise

    live = Live(
        cluster_policies=optional_list(*CLUSTER_POLICY),
        nvidia_drivers=optional_list(*NVIDIA_DRIVER),
        nodes={node.name: kube.find("v1", "Node", node.name) for node in expect.stack.nodes},
        config_maps={_name(o): o for o in optional_list("v1", "ConfigMap", namespace) or []},
        services={_name(o): o for o in optional_list("v1", "Service", namespace) or []},
        endpoint_slices=optional_list("discovery.k8s.io/v1", "EndpointSlice", namespace) or [],
        service_monitors=optional_list(*SERVICE_MONITOR, namespace),
    )
    for manifest in expect.declared:
        metadata = manifest["metadata"]
        try:
            found = kube.find(manifest["apiVersion"], manifest["kind"], metadata["name"], metadata.get("namespace"))
            live.declared.append(DeclaredObject(manifest, found))
        except KubeError as error:
            if error.code != 404:
                raise
            live.declared.append(DeclaredObject(manifest, None, f"the cluster has no kind {manifest['kind']} in "
                                                              f"{manifest['apiVersion']}"))
    return live


def connect(kubeconfig: str | None, context: str | None) -> Any:
    """A client as kubectl would build it (--kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context)."""
    from tools.kube import Kube, KubeError

    if kubeconfig and not Path(kubeconfig).is_file():
        raise UsageError(f"--kubeconfig {kubeconfig}: no such file")
    try:
        kube = Kube.from_kubeconfig(kubeconfig, context)
        kube.request("GET", "/version", timeout=10)
    except KubeError as error:
        raise UsageError(f"cannot use the cluster: {error.message or error}") from None
    except (OSError, KeyError, ValueError) as error:
        raise UsageError(f"cannot read the kubeconfig: {error}") from None
    return kube


def verify(kube: Any, expect: Expectation) -> list[Finding]:
    from tools.kube import KubeError

    try:
        return run_checks(expect, collect(kube, expect))
    except KubeError as error:
        raise UsageError(f"reading the cluster failed: {error} (verify needs read access to nodes, the "
                         "operator namespace, ClusterPolicies and the declared objects)") from None


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: its current context)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="lab", help="the stack whose Pulumi.<stack>.yaml is expected (default: lab)")
    parser.add_argument("--program-dir", type=Path, default=ROOT, help=argparse.SUPPRESS)
    add_cluster_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON document for automation")
    args = parser.parse_args(argv)
    try:
        loaded = load_stack(args.stack, args.program_dir.resolve())
        expect = Expectation(loaded, declared_manifests(args.program_dir.resolve(), args.stack))
        kube = connect(args.kubeconfig, args.context)
        findings = verify(kube, expect)
    except UsageError as error:
        print(f"verify: {error}", file=sys.stderr)
        return 2
    header = {"command": "verify", "stack": args.stack, "server": kube.server, "context": args.context}
    if args.json:
        sys.stdout.write(render_json(header, findings))
    else:
        title = f"verify: stack {args.stack} against {kube.server}" + (f" (context {args.context})" if args.context else "")
        sys.stdout.write(render_text(title, findings))
    return exit_code(findings)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # the mock engine leaves gRPC threads; nothing is left to finalize
