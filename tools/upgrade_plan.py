"""`dev.py upgrade-plan`: what a driver or chart upgrade will change, whether NVIDIA documents it, what the rollout
does on this cluster, and the commands to run it and to roll it back.

    python -m tools.upgrade_plan --driver V | --chart vX.Y.Z [--pool NAME] [--stack lab]
                                 [--kubeconfig FILE] [--context NAME] [--json]

The lab's quarterly Driver Updates, planned before anything is touched. Without a cluster the plan comes from the
stack config alone (the config lines to change, NVIDIA's component matrix and support tables as components/data
ships them, the driver upgrade policy); with one (`--kubeconfig`/`--context`, or $KUBECONFIG) it also lists, per
GPU node, the driver it runs now and the pods the upgrade will evict or wait for. It only reads the cluster.

Exit codes: 0 the upgrade is documented and the config valid (warnings allowed), 1 a check failed (an
undocumented pair, a config the program refuses), 2 a usage, config or connection error.
"""
from __future__ import annotations

import argparse
import copy
import math
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.findings import (
    NAMESPACE,
    ROOT,
    Finding,
    LoadedStack,
    UsageError,
    exit_code,
    finding_lines,
    load_stack,
    render_json,
    summary,
    wrapped,
)

GPU_RESOURCE_PREFIXES = ("nvidia.com/gpu", "nvidia.com/mig-")
# From v26.7.0 a chart-only upgrade no longer restarts the driver (NVIDIA/gpu-operator PR #2527).
CHART_ONLY_KEEPS_DRIVER_FROM = "v26.7.0"


@dataclass(frozen=True)
class LineChange:
    """One line of the stack file: where it is, what it says now and what it must say."""

    file: str
    line: int  # 1-based
    key: str
    old: str
    new: str


@dataclass
class PodImpact:
    namespace: str
    name: str
    gpu: bool
    owner: str        # the controlling owner's kind, or "" for a bare pod
    empty_dir: bool
    fate: str         # what the upgrade does with it, in words


@dataclass
class NodePlan:
    name: str
    driver_now: str | None = None
    ready: bool | None = None
    pods: list[PodImpact] = field(default_factory=list)


@dataclass
class UpgradePlan:
    stack: str
    what: str                     # "driver" or "chart"
    current: str
    target: str
    changes: list[LineChange]
    findings: list[Finding]
    rollout: list[str]            # what the operator will do, in order, in words
    nodes: list[NodePlan]
    commands: list[str]
    rollback: list[str]
    notes: list[str] = field(default_factory=list)
    cluster: str = ""


# --- the config change --------------------------------------------------------------------------------------------

def _scalar_line(document: yaml.Node, path: list[str | int]) -> yaml.ScalarNode | None:
    node: yaml.Node | None = document
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((value for key, value in node.value if key.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
        else:
            return None
    return node if isinstance(node, yaml.ScalarNode) else None


def line_change(loaded: LoadedStack, path: list[str | int], new: str) -> LineChange:
    """The line of Pulumi.<stack>.yaml that holds `path` (under `config:`), and that line with `new` in place."""
    text = loaded.path.read_text()
    document = yaml.compose(text)
    key = f"{NAMESPACE}:{path[0]}"
    node = _scalar_line(document, ["config", key, *path[1:]]) if document is not None else None
    shown = key + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    if node is None:
        raise UsageError(f"{loaded.path.name} has no {shown} to change; write it out (every pin is explicit)")
    lines = text.splitlines()
    old = lines[node.start_mark.line]
    start, end = node.start_mark.column, node.end_mark.column
    return LineChange(loaded.path.name, node.start_mark.line + 1, shown, old, old[:start] + new + old[end:])


def _pool_index(loaded: LoadedStack, pool: str | None) -> int:
    pools = loaded.stack.gpu_operator.driver.pools or []
    if pool is None:
        if len(pools) == 1:
            return 0
        raise UsageError(f"driver.mode is perPool: name the pool with --pool ({', '.join(p.name for p in pools)})")
    names = [p.name for p in pools]
    if pool not in names:
        raise UsageError(f"--pool {pool!r} is not a driver pool ({', '.join(names)})")
    return names.index(pool)


def _changed_raw(raw: dict[str, Any], change: LineChange, value: str) -> dict[str, Any]:
    raw = copy.deepcopy(raw)
    parts = [int(p) if p.isdigit() else p for p in
             change.key.split(":", 1)[1].replace("[", ".").replace("]", "").split(".")]
    target: Any = raw
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value
    return raw


# --- the rollout ----------------------------------------------------------------------------------------------------

def _seconds(value: int) -> str:
    if value == 0:
        return "no limit (0 waits forever)"
    return f"{value} s" + (f" ({value / 60:g} min)" if value >= 60 else "")


def nodes_at_once(policy: Any, nodes: int) -> int:
    parallel = policy.max_parallel_upgrades or nodes  # 0 = all at once
    unavailable = policy.max_unavailable
    if isinstance(unavailable, str):  # "25%": of the GPU nodes, at least one
        unavailable = max(1, math.floor(nodes * int(unavailable.rstrip("%")) / 100))
    return max(1, min(parallel, unavailable, nodes))


def driver_rollout(stack: Any, node_names: list[str]) -> list[str]:
    """What the operator's upgrade controller does with a new driver version, from the stack's upgrade policy."""
    policy = stack.gpu_operator.driver.upgrade_policy
    ns = stack.gpu_operator.namespace
    if policy is None:
        return []
    count = len(node_names)
    if not policy.auto_upgrade:
        return [f"driver.upgradePolicy.autoUpgrade is false: the operator does not roll the driver. Each node keeps "
                f"the old driver until its driver pod is deleted by hand (cordon and empty the node first, then "
                f"`kubectl -n {ns} delete pod -l app=nvidia-driver-daemonset --field-selector spec.nodeName=<node>`)"]
    at_once = nodes_at_once(policy, count)
    rounds = math.ceil(count / at_once) if count else 0
    steps = [f"{count} GPU node(s) ({', '.join(node_names) or 'none configured'}), {at_once} at a time "
             f"(maxParallelUpgrades {policy.max_parallel_upgrades}, maxUnavailable {policy.max_unavailable}): "
             f"{rounds} round(s). Per node:",
             "1. cordon the node (no new pods land on it)"]
    wait = policy.wait_for_completion
    if wait.pod_selector:
        steps.append(f"2. wait for pods matching `{wait.pod_selector}` to finish: {_seconds(wait.timeout_seconds)}")
    else:
        steps.append("2. no wait for jobs (waitForCompletion.podSelector is empty)")
    deletion = policy.gpu_pod_deletion
    spared = ([] if deletion.force else ["pods without a controller"]) + \
             ([] if deletion.delete_empty_dir else ["pods with emptyDir volumes"])
    steps.append(f"3. delete the pods that use a GPU, waiting up to {_seconds(deletion.timeout_seconds)} for them "
                 "to go" + (f"; it may not delete {' or '.join(spared)} (gpuPodDeletion.force / deleteEmptyDir), "
                             "and such a pod holds the node's upgrade until someone deletes it" if spared else ""))
    drain = policy.drain
    if drain.enable:
        steps.append(f"4. drain the node (every pod but DaemonSet pods"
                     + (f", matching `{drain.pod_selector}`" if drain.pod_selector else "")
                     + f"), waiting up to {_seconds(drain.timeout_seconds)}")
    else:
        steps.append("4. no drain (drain.enable is false): pods that do not use a GPU keep running")
    steps.append("5. restart the node's driver pod with the new version (the driver container builds or loads the "
                 "kernel modules: minutes, not bounded by the policy), then the validator checks it")
    steps.append(f"6. uncordon the node; the device plugin, GFD and the DCGM exporter come back on it. Follow it with "
                 f"`kubectl get nodes -L nvidia.com/gpu-driver-upgrade-state` (upgrade-done when finished)")
    bounded = [deletion.timeout_seconds] + ([drain.timeout_seconds] if drain.enable else []) + \
              ([wait.timeout_seconds] if wait.pod_selector else [])
    if all(bounded):
        total = sum(bounded)
        steps.append(f"The policy's waits add up to at most {_seconds(total)} per node, {_seconds(total * rounds)} "
                     f"for all {rounds} round(s), plus each driver's build and load time. Helm's "
                     f"chart.timeoutSeconds ({stack.gpu_operator.chart.timeout_seconds} s) does not cover this: "
                     "`pulumi up` returns when the release is deployed, before the nodes are upgraded")
    else:
        steps.append("A wait without a limit is set (timeoutSeconds: 0): one pod that never finishes stops the "
                     "rollout on its node")
    return steps


def chart_rollout(stack: Any, current: str, target: str, node_names: list[str]) -> list[str]:
    from components.releases import chart_version_key

    steps = [f"Helm upgrades the release {stack.gpu_operator.release_name} from {current} to {target}: the chart's "
             "pre-upgrade hook upgrades the CRDs first (operator.upgradeCRD), then the operator Deployment rolls; "
             f"Helm waits up to {stack.gpu_operator.chart.timeout_seconds} s (chart.timeoutSeconds) for the release's "
             "own objects",
             "the operator then updates its operands (toolkit, device plugin, GFD, DCGM exporter, validator) on each "
             "GPU node; the driver stays pinned at "
             f"{stack.gpu_operator.driver.version or stack.gpu_operator.driver.host_version or 'its pool versions'}"]
    if chart_version_key(target) < chart_version_key(CHART_ONLY_KEEPS_DRIVER_FROM):
        steps.append(f"before {CHART_ONLY_KEEPS_DRIVER_FROM} even a chart-only upgrade can restart the driver and "
                     "evict GPU workloads (NVIDIA/gpu-operator PR #2527): plan it like a driver upgrade:")
        steps += driver_rollout(stack, node_names)
    else:
        steps.append(f"from {CHART_ONLY_KEEPS_DRIVER_FROM} a chart-only upgrade does not restart the driver "
                     "(NVIDIA/gpu-operator PR #2527): no node is cordoned and no GPU pod is evicted")
    return steps


# --- the live cluster (read only) -----------------------------------------------------------------------------------

def _uses_gpu(pod: dict[str, Any]) -> bool:
    spec = pod.get("spec") or {}
    for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            if any(str(name).startswith(GPU_RESOURCE_PREFIXES) for name in (resources.get(section) or {})):
                return True
    return False


def _selects(selector: str, labels: dict[str, str]) -> bool:
    """A simple `k=v,k2=v2` selector (what the upgrade policy's podSelector fields take)."""
    for term in filter(None, (t.strip() for t in selector.split(","))):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip().lstrip("="):
            return False
    return True


def pod_impact(pod: dict[str, Any], policy: Any, operator_namespace: str) -> PodImpact | None:
    """What the driver upgrade does with one pod on a GPU node (None: the upgrade leaves it alone)."""
    metadata = pod.get("metadata") or {}
    if metadata.get("namespace") == operator_namespace:
        return None  # the operator's own operands: it stops and starts them itself
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return None
    owner = next((o.get("kind", "") for o in metadata.get("ownerReferences") or [] if o.get("controller")), "")
    empty_dir = any("emptyDir" in v for v in (pod.get("spec") or {}).get("volumes") or [])
    gpu = _uses_gpu(pod)
    labels = metadata.get("labels") or {}
    deletion, drain, wait = policy.gpu_pod_deletion, policy.drain, policy.wait_for_completion
    replaced = (f"deleted; its {owner} recreates it" if owner not in ("", "DaemonSet")
                else "deleted")
    if gpu:
        if wait.pod_selector and _selects(wait.pod_selector, labels):
            fate = f"waited for (waitForCompletion, {_seconds(wait.timeout_seconds)}), then {replaced}"
        elif not owner and not deletion.force:
            fate = ("NOT deleted: it has no controller and gpuPodDeletion.force is false, so it holds the node's "
                    "upgrade: delete it yourself (after saving its work) or set force: true")
        elif empty_dir and not deletion.delete_empty_dir:
            fate = ("NOT deleted: it uses emptyDir and gpuPodDeletion.deleteEmptyDir is false, so it holds the "
                    "node's upgrade: delete it yourself (its emptyDir data is lost) or set deleteEmptyDir: true")
        else:
            fate = replaced + ("" if owner else " for good (no controller recreates it)")
    elif drain.enable and owner != "DaemonSet" and (not drain.pod_selector or _selects(drain.pod_selector, labels)):
        fate = f"evicted by the drain ({replaced})"
    else:
        return None
    return PodImpact(str(metadata.get("namespace")), str(metadata.get("name")), gpu, owner, empty_dir, fate)


def live_nodes(kube: Any, stack: Any, node_names: list[str]) -> list[NodePlan]:
    """Per GPU node: its driver now, whether it is Ready, and what the driver upgrade does with each of its pods."""
    from tools.verify import DRIVER_VERSION_LABEL

    policy = stack.gpu_operator.driver.upgrade_policy
    plans = []
    for name in node_names:
        node = kube.find("v1", "Node", name)
        plan = NodePlan(name)
        if node is not None:
            plan.driver_now = ((node.get("metadata") or {}).get("labels") or {}).get(DRIVER_VERSION_LABEL)
            plan.ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                             for c in (node.get("status") or {}).get("conditions") or [])
        pods = kube.request("GET", "/api/v1/pods", params={"fieldSelector": f"spec.nodeName={name}"})["items"]
        if policy is not None:
            plan.pods = [impact for pod in pods
                         if (impact := pod_impact(pod, policy, stack.gpu_operator.namespace)) is not None]
        plans.append(plan)
    return plans


# --- the plan -------------------------------------------------------------------------------------------------------

def pulumi_commands(stack_name: str) -> tuple[str, str]:
    config = ROOT / "policies" / "config" / f"{stack_name}.json"
    policy = "--policy-pack policies" + (f" --policy-pack-config policies/config/{stack_name}.json"
                                         if config.exists() else "")
    return (f"pulumi preview --stack {stack_name} {policy}", f"pulumi up --stack {stack_name} {policy}")


def pack_allows(stack_name: str, current: str, target: str) -> Finding:
    """The pack's driver allowlist must name the new version in the same change, or the preview is refused."""
    import json

    from tools.findings import ROOT

    config_file = ROOT / "policies" / "config" / f"{stack_name}.json"
    subject = f"policies/config/{stack_name}.json"
    try:
        allowed = json.loads(config_file.read_text()).get("gpu-operator-driver-pinned", {}).get("allowedDriverVersions")
    except (OSError, ValueError):
        return Finding("pack-allowlist", subject, "warn", f"{target} in allowedDriverVersions", "no readable file",
                       "the pack's gpu-operator-driver-pinned policy reads its allowlist from this file")
    if allowed is None or target in allowed:
        return Finding("pack-allowlist", subject, "pass", f"{target} in allowedDriverVersions",
                       "allowed" if allowed else "no allowlist: every pinned version is allowed")
    return Finding("pack-allowlist", subject, "fail", f"{target} in allowedDriverVersions",
                   f"allowedDriverVersions is {allowed}",
                   f"add {target} to gpu-operator-driver-pinned.allowedDriverVersions in the same pull request (the "
                   f"pack refuses the preview otherwise); drop {current} in a later one, after the rollout")


def make_plan(loaded: LoadedStack, *, driver: str | None = None, chart: str | None = None, pool: str | None = None,
              kube: Any = None) -> UpgradePlan:
    from components.releases import SUPPORT_PLATFORMS, chart_version_key, supported_releases
    from tools import compat

    if bool(driver) == bool(chart):
        raise UsageError("give exactly one of --driver V or --chart vX.Y.Z")
    stack = loaded.stack
    op = stack.gpu_operator
    mode = op.driver.mode
    node_names = [node.name for node in stack.nodes]
    findings: list[Finding] = []
    notes: list[str] = []
    if driver:
        what, target = "driver", driver
        if mode == "operator":
            path: list[str | int] = ["gpuOperator", "driver", "version"]
            current = op.driver.version
        elif mode == "host":
            path, current = ["gpuOperator", "driver", "hostVersion"], op.driver.host_version
        else:
            index = _pool_index(loaded, pool)
            pool_config = op.driver.pools[index]
            path, current = ["gpuOperator", "driver", "pools", index, "version"], pool_config.version
            selected = {n.name for n in stack.nodes
                        if all(n.scheduling_labels().get(k) == v for k, v in pool_config.node_selector.items())}
            node_names = [n for n in node_names if n in selected]
        if target == current:
            raise UsageError(f"{'.'.join(map(str, path))} is already {current}")
        chart_now = op.chart.version
        if mode != "host":
            findings.append(compat.driver_finding(chart_now, target, "gpuOperator.driver.version",
                                                  allow_undocumented=op.driver.allow_undocumented_version))
        changes, new_values = [line_change(loaded, path, target)], [target]
        if mode != "host":
            findings.append(pack_allows(loaded.name, current, target))
        if mode == "host":
            rollout = [f"driver.mode is host: the operator does not install drivers. Install {target} on each GPU host "
                       f"yourself ({', '.join(node_names)}), one at a time: cordon and drain the node, install, reboot, "
                       "uncordon. The config records the expected version for `dev.py verify` (and the node "
                       "annotation gpu-platform/expected-host-driver-version)"]
        else:
            rollout = driver_rollout(stack, node_names)
    else:
        what, target, current = "chart", chart, op.chart.version
        if target not in supported_releases():
            raise UsageError(f"--chart {target!r} is not a chart release this program supports "
                             f"({', '.join(supported_releases())})")
        if target == current:
            raise UsageError(f"gpuOperator.chart.version is already {current}")
        changes, new_values = [line_change(loaded, ["gpuOperator", "chart", "version"], target)], [target]
        if op.chart.path is not None:
            new_path = op.chart.path.replace(current, target)
            if new_path == op.chart.path:
                raise UsageError(f"gpuOperator.chart.path ({op.chart.path}) does not name {current}; point it at "
                                 f"the {target} archive by hand, then run upgrade-plan again")
            changes.append(line_change(loaded, ["gpuOperator", "chart", "path"], new_path))
            new_values.append(new_path)
            notes.append(f"chart.path: put the {target} archive (helm pull nvidia/gpu-operator --version {target}) at "
                         f"{new_path} first")
        old_major, new_major = chart_version_key(current)[0], chart_version_key(target)[0]
        if chart_version_key(target) < chart_version_key(current):
            findings.append(Finding("upgrade-path", f"chart {current} -> {target}", "warn",
                                    "an upgrade (NVIDIA documents upgrades within a major release or to the next)",
                                    "a downgrade", "NVIDIA does not document chart downgrades: prefer fixing forward"))
        elif new_major - old_major > 1:
            findings.append(Finding("upgrade-path", f"chart {current} -> {target}", "fail",
                                    "an upgrade within a major release or to the next one (NVIDIA's upgrade policy)",
                                    f"{old_major} -> {new_major}",
                                    f"upgrade in steps: first to the newest {old_major + 1}.x release, then to {target}"))
        else:
            findings.append(Finding("upgrade-path", f"chart {current} -> {target}", "pass",
                                    "within a major release or to the next one", f"{old_major} -> {new_major}"))
        findings.append(compat.kubernetes_finding(target, stack.cluster.kubernetes_version,
                                                  SUPPORT_PLATFORMS[stack.cluster.container_runtime]))
        findings.append(compat.lifecycle_finding(target))
        versions = ([op.driver.version] if mode == "operator" else
                    [p.version for p in op.driver.pools or []] if mode == "perPool" else [])
        for version in versions:
            findings.append(compat.driver_finding(target, version, "gpuOperator.driver.version",
                                                  allow_undocumented=op.driver.allow_undocumented_version))
        rollout = chart_rollout(stack, current, target, node_names)
    raw = loaded.raw
    for change, value in zip(changes, new_values):
        raw = _changed_raw(raw, change, value)
    findings += compat.config_findings(raw, f"Pulumi.{loaded.name}.yaml with the change", findings)
    nodes = live_nodes(kube, stack, node_names) if kube is not None else [NodePlan(n) for n in node_names]
    if kube is not None and len(stack.nodes) == 1 and any(p.gpu for n in nodes for p in n.pods):
        notes.append("the stack has one GPU node: GPU pods deleted by the upgrade stay Pending until it is "
                     "uncordoned")
    if kube is None and (what == "driver" and mode != "host"):
        notes.append("no cluster given: add --kubeconfig/--context (or set KUBECONFIG) to list the pods the "
                     "upgrade evicts on each node")
    preview, up = pulumi_commands(loaded.name)
    key = changes[0].key
    commands = [
        f"edit {changes[0].file}: {key}: {target}" + (" (and chart.path, above)" if len(changes) > 1 else "")
        + "; review it in a pull request",
        f"python3 dev.py plan --stack {loaded.name}",
        preview,
        f"{up}    (never --skip-preview: the pack's stack policies judge in the preview)",
        "kubectl get nodes -l nvidia.com/gpu.present=true -L nvidia.com/gpu-driver-upgrade-state -w",
        f"python3 dev.py verify --stack {loaded.name}    (again until every check passes)",
    ]
    rollback = [
        f"revert the change ({key}: {current}), e.g. `git revert` of its commit",
        preview,
        up,
        f"python3 dev.py verify --stack {loaded.name}",
    ]
    if what == "driver" and mode != "host":
        rollback.append(f"a rollback is another node-by-node rollout to {current}, with the same cordons and "
                        "evictions as above")
    if what == "chart":
        rollback.append("NVIDIA documents chart upgrades, not downgrades: after a rollback, check the ClusterPolicy "
                        "and every node with `python3 dev.py verify`")
    return UpgradePlan(loaded.name, what, current, target, changes, findings, rollout, nodes, commands, rollback,
                       notes, getattr(kube, "server", ""))


def render_plan_text(plan: UpgradePlan) -> str:
    lines = [f"upgrade-plan: stack {plan.stack}, {plan.what} {plan.current} -> {plan.target}"
             + (f", cluster {plan.cluster}" if plan.cluster else ", no cluster"), "",
             f"1. The config change ({plan.changes[0].file})"]
    for change in plan.changes:
        lines += [f"   line {change.line}:", f"   - {change.old}", f"   + {change.new}"]
    lines += ["", "2. Checks"]
    for finding in plan.findings:
        lines += finding_lines(finding, "   ")
    lines += ["", "3. The rollout"]
    for step in plan.rollout:
        lines += wrapped("   ", step, hang=3 if step[:1].isdigit() else 0)
    if plan.cluster:
        lines += ["", "4. On this cluster"]
        for node in plan.nodes:
            state = "not found" if node.ready is None else "Ready" if node.ready else "NotReady"
            lines.append(f"   node {node.name} ({state}), driver now {node.driver_now or 'not reported'}:")
            if not node.pods:
                lines.append("     no pod is evicted or waited for")
            for pod in node.pods:
                lines += wrapped(f"     {pod.namespace}/{pod.name}{' (GPU)' if pod.gpu else ''}: ", pod.fate)
    lines += ["", "5. Commands" if plan.cluster else "4. Commands"]
    lines += [line for i, c in enumerate(plan.commands, 1) for line in wrapped(f"   {i}. ", c)]
    lines += ["", "6. Roll back" if plan.cluster else "5. Roll back"]
    lines += [line for i, c in enumerate(plan.rollback, 1) for line in wrapped(f"   {i}. ", c)]
    for note in plan.notes:
        lines += wrapped("note: ", note)
    counts = summary(plan.findings)
    lines += ["", f"{counts['pass']} passed, {counts['warn']} warnings, {counts['fail']} failed"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from tools.verify import add_cluster_arguments, connect

    parser = argparse.ArgumentParser(prog="dev.py upgrade-plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="lab", help="the stack to upgrade (default: lab)")
    parser.add_argument("--program-dir", type=Path, default=ROOT, help=argparse.SUPPRESS)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--driver", help="the new driver version, e.g. 595.91.07")
    target.add_argument("--chart", help="the new gpu-operator chart release, e.g. v26.7.0")
    parser.add_argument("--pool", help="driver.mode perPool: the pool whose driver changes")
    add_cluster_arguments(parser)
    parser.add_argument("--json", action="store_true", help="one JSON document for automation")
    args = parser.parse_args(argv)
    try:
        loaded = load_stack(args.stack, args.program_dir.resolve())
        use_cluster = args.kubeconfig or args.context or os.environ.get("KUBECONFIG")
        kube = connect(args.kubeconfig, args.context) if use_cluster else None
        try:
            plan = make_plan(loaded, driver=args.driver, chart=args.chart, pool=args.pool, kube=kube)
        except Exception as error:
            from tools.kube import KubeError
            if isinstance(error, KubeError):
                raise UsageError(f"reading the cluster failed: {error}") from None
            raise
    except UsageError as error:
        print(f"upgrade-plan: {error}", file=sys.stderr)
        return 2
    if args.json:
        header = {"command": "upgrade-plan", "stack": plan.stack, "what": plan.what, "current": plan.current,
                  "target": plan.target, "cluster": plan.cluster}
        sys.stdout.write(render_json(header, plan.findings, plan.notes,
                                     changes=[asdict(c) for c in plan.changes], rollout=plan.rollout,
                                     nodes=[asdict(n) for n in plan.nodes], commands=plan.commands,
                                     rollback=plan.rollback))
    else:
        sys.stdout.write(render_plan_text(plan))
    return exit_code(plan.findings)


if __name__ == "__main__":
    sys.exit(main())
