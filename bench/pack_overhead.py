"""What the policy pack's checks cost, measured through the analyzer protocol.

10,000 mixed resources (every pod-bearing kind, compliant, violating, exempt and GPU-requesting; gpu-operator
releases, ClusterPolicy/NVIDIADriver, RBAC, quotas, namespaces, config maps) go to two packs started the
same way as the Pulumi CLI starts them, with the same venv (policies/venv) and the same config (lab.json):

  (a) policies/, the pack as shipped;
  (b) a no-op pack generated into bench/.work/ with the same policies (names, resource/stack types,
      levels, config schemas) whose validators do nothing.

Each run sends every resource with Analyze and then the whole stack once with AnalyzeStack, as a preview
does; requests are built before the clock starts. Runs alternate between the packs; the medians are
compared (target: (a) <= 1.3 x (b)). Then the validators are timed in-process, called directly.

    venv/bin/python -m bench.pack_overhead [--resources 10000] [--runs 3] [--check]
"""
from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACK_DIR = ROOT / "policies"
WORK_DIR = ROOT / "bench" / ".work"
NOOP_DIR = WORK_DIR / "noop-pack"
TARGET_RATIO = 1.3

KIND_TOKENS = {
    "Pod": "kubernetes:core/v1:Pod", "PodTemplate": "kubernetes:core/v1:PodTemplate",
    "ReplicationController": "kubernetes:core/v1:ReplicationController",
    "Deployment": "kubernetes:apps/v1:Deployment", "ReplicaSet": "kubernetes:apps/v1:ReplicaSet",
    "StatefulSet": "kubernetes:apps/v1:StatefulSet", "DaemonSet": "kubernetes:apps/v1:DaemonSet",
    "Job": "kubernetes:batch/v1:Job", "CronJob": "kubernetes:batch/v1:CronJob",
}
SPEC_KEYS = {"Pod": ("spec",), "PodTemplate": ("template", "spec"),
             "CronJob": ("spec", "jobTemplate", "spec", "template", "spec")}
RBAC = "kubernetes:rbac.authorization.k8s.io/v1:"


# --- the corpus ------------------------------------------------------------------------------------------------

def _container(name: str, image: str, gpu: bool = False) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": name, "image": image,
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "readOnlyRootFilesystem": True},
        "ports": [{"containerPort": 8080, "name": "http"}],
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}, "periodSeconds": 10},
        "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "MODE", "value": "serve"}],
        "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "2Gi"}},
        "volumeMounts": [{"name": "cache", "mountPath": "/cache"}],
    }
    if gpu:
        container["resources"]["limits"]["nvidia.com/gpu"] = "1"
    return container


def _pod_spec(rng: random.Random, variant: str) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 2000},
        "containers": [_container("main", "registry.example/app:1.4.2", gpu=variant == "gpu"),
                       _container("sidecar", "registry.example/proxy:2.0.1")],
        "initContainers": [_container("init", "registry.example/init:1.0.0")],
        "volumes": [{"name": "cache", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "app"}}],
        "serviceAccountName": "app", "nodeSelector": {"kubernetes.io/os": "linux"},
    }
    if variant == "violating":
        spec["hostNetwork"] = True
        spec["containers"][0]["securityContext"] = {"privileged": True}
        spec["containers"][1]["image"] = "busybox"
        spec["volumes"].append({"name": "host", "hostPath": {"path": "/var/run"}})
    elif variant == "baseline-only":
        del spec["securityContext"]["seccompProfile"]
    if rng.random() < 0.1:
        spec["ephemeralContainers"] = [_container("debug", "registry.example/debug:0.9.0")]
    return spec


def _workload(rng: random.Random, index: int) -> tuple[str, str, dict[str, Any]]:
    kind = rng.choice(list(KIND_TOKENS))
    variant = rng.choices(["compliant", "violating", "gpu", "exempt", "baseline-only"], [50, 15, 15, 10, 10])[0]
    namespace = "gpu-operator" if variant == "exempt" else f"tenant-{index % 7}"
    name = f"{kind.lower()}-{index}"
    props: dict[str, Any] = {"metadata": {"name": name, "namespace": namespace, "labels": {"app": name}}}
    spec_keys = SPEC_KEYS.get(kind, ("spec", "template", "spec"))
    target = props
    for key in spec_keys[:-1]:
        target = target.setdefault(key, {})
    target[spec_keys[-1]] = _pod_spec(rng, variant)
    if kind != "Pod":
        target["metadata"] = {"labels": {"app": name}}
    token = KIND_TOKENS[kind] + ("Patch" if rng.random() < 0.05 else "")
    return token, name, props


def _release(rng: random.Random, index: int) -> tuple[str, str, dict[str, Any]]:
    version = rng.choice(["580.173.02", "595.91.07", "525.85.05", "latest", None])
    driver: dict[str, Any] = {"enabled": True, "upgradePolicy": {"autoUpgrade": True, "maxParallelUpgrades": 1}}
    if version:
        driver["version"] = version
    props = {"chart": "gpu-operator", "version": rng.choice(["v26.7.0", "v26.3.3", "~26.7"]),
             "repositoryOpts": {"repo": "https://helm.ngc.nvidia.com/nvidia"}, "namespace": "gpu-operator",
             "name": f"gpu-operator-{index}",
             "values": {"driver": driver, "toolkit": {"env": [{"name": "CONTAINERD_SOCKET",
                                                               "value": "/run/k3s/containerd/containerd.sock"}]},
                        "devicePlugin": {"config": {"name": "sharing", "default": "any"}},
                        "dcgmExporter": {"serviceMonitor": {"enabled": True}}}}
    return "kubernetes:helm.sh/v3:Release", f"gpu-operator-{index}", props


def _other(rng: random.Random, index: int) -> tuple[str, str, dict[str, Any]]:
    choice = rng.choice(["role", "clusterrole", "binding", "quota", "namespace", "configmap", "nvidiadriver",
                         "clusterpolicy"])
    namespace = f"tenant-{index % 7}"
    if choice in ("role", "clusterrole"):
        verbs = rng.choice([["get", "list", "watch"], ["*"]])
        props = {"metadata": {"name": f"role-{index}", "namespace": namespace},
                 "rules": [{"apiGroups": [""], "resources": ["pods", "services"], "verbs": verbs},
                           {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get"]}]}
        return RBAC + ("Role" if choice == "role" else "ClusterRole"), f"role-{index}", props
    if choice == "binding":
        role = rng.choice(["view", "cluster-admin", f"role-{index - 1}"])
        props = {"metadata": {"name": f"binding-{index}", "namespace": namespace},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
                 "subjects": [{"kind": rng.choice(["User", "Group", "ServiceAccount"]), "name": f"s{index}"}]}
        return RBAC + "RoleBinding", f"binding-{index}", props
    if choice == "quota":
        return "kubernetes:core/v1:ResourceQuota", f"quota-{index}", {
            "metadata": {"name": f"quota-{index}", "namespace": namespace},
            "spec": {"hard": {"requests.nvidia.com/gpu": "2", "requests.cpu": "16", "pods": "50"}}}
    if choice == "namespace":
        return "kubernetes:core/v1:Namespace", f"ns-{index}", {"metadata": {"name": namespace, "labels": {
            "pod-security.kubernetes.io/enforce": "restricted"}}}
    if choice == "nvidiadriver":
        return "kubernetes:nvidia.com/v1alpha1:NVIDIADriver", f"driver-{index}", {
            "metadata": {"name": f"driver-{index}"},
            "spec": {"driverType": "gpu", "image": "driver", "repository": "nvcr.io/nvidia",
                     "version": rng.choice(["580.173.02", "580"]), "nodeSelector": {"nvidia.com/gpu.present": "true"}}}
    if choice == "clusterpolicy":
        return "kubernetes:nvidia.com/v1:ClusterPolicy", f"cp-{index}", {
            "metadata": {"name": "cluster-policy"}, "spec": {"driver": {"enabled": True, "version": "580.173.02"}}}
    return "kubernetes:core/v1:ConfigMap", f"cm-{index}", {
        "metadata": {"name": f"cm-{index}", "namespace": namespace},
        "data": {f"key{j}": "x" * 40 for j in range(8)}}


def build_corpus(count: int, seed: int = 7) -> list[tuple[str, str, dict[str, Any]]]:
    """``count`` mixed resources: 65% pod-bearing, 5% gpu-operator releases, 30% everything else."""
    rng = random.Random(seed)
    corpus = []
    for index in range(count):
        roll = rng.random()
        maker = _workload if roll < 0.65 else _release if roll < 0.70 else _other
        corpus.append(maker(rng, index))
    return corpus


# --- the no-op pack --------------------------------------------------------------------------------------------

def write_noop_pack(info: Any, dest: Path = NOOP_DIR) -> Path:
    """A pack with the same policies as ``info`` (name, type, level, severity, config schema) whose validators
    do nothing, so the difference in time is what the real validators cost."""
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "PulumiPolicy.yaml").write_text(
        "description: No-op twin of the GPU platform pack (benchmark baseline).\nversion: 0.0.1\n"
        "runtime:\n  name: python\n  options:\n    virtualenv: venv\n")
    levels = {"mandatory": "MANDATORY", "advisory": "ADVISORY", "disabled": "DISABLED", "remediate": "REMEDIATE"}
    severities = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "critical": "CRITICAL"}
    entries = []
    for policy in info.policies:
        cls = "StackValidationPolicy" if policy.policy_type == "stack" else "ResourceValidationPolicy"
        severity = f"Severity.{severities[policy.severity]}" if policy.severity in severities else "None"
        entries.append(
            f"    {cls}(name={policy.name!r}, description={policy.description!r}, validate=_nothing,\n"
            f"        enforcement_level=EnforcementLevel.{levels[policy.enforcement_level]}, severity={severity},\n"
            f"        config_schema=PolicyConfigSchema(properties={policy.config_schema!r})),")
    (dest / "__main__.py").write_text(textwrap.dedent('''\
        """Generated by bench/pack_overhead.py: the same policies as the real pack, validators doing nothing,
        and the same garbage-collector thresholds (gpu_policies/intake.py), so the difference is the validators."""
        import gc

        from pulumi_policy import (EnforcementLevel, PolicyConfigSchema, PolicyPack, ResourceValidationPolicy,
                                   Severity, StackValidationPolicy)

        gc.set_threshold(GC_THRESHOLDS)


        def _nothing(args, report_violation):
            return None


        PolicyPack(name="noop-twin", enforcement_level=EnforcementLevel.MANDATORY, policies=[
        ''').replace("GC_THRESHOLDS", ", ".join(map(str, _gc_thresholds()))) + "\n".join(entries) + "\n])\n")
    venv = dest / "venv"
    if not venv.exists():
        venv.symlink_to(PACK_DIR / "venv", target_is_directory=True)  # the same interpreter and packages
    return dest


def _gc_thresholds() -> tuple[int, ...]:
    """The collector's thresholds the real pack sets at start (gpu_policies/intake.py)."""
    if str(PACK_DIR) not in sys.path:
        sys.path.insert(0, str(PACK_DIR))
    from gpu_policies.intake import GC_THRESHOLDS

    return GC_THRESHOLDS


# --- timing ---------------------------------------------------------------------------------------------------

def time_pack(pack_dir: Path, corpus: list[tuple[str, str, dict[str, Any]]], config: dict[str, Any]) -> float:
    """Seconds to send every resource with Analyze and the whole stack with AnalyzeStack."""
    from tools.analyzer import Provider, Resource, open_pack

    provider = Provider(props={"enableServerSideApply": "true"})
    with open_pack(pack_dir, config, python=PACK_DIR / "venv" / "bin" / "python") as client:
        requests = [client.build_request(t, n, p, provider=provider) for t, n, p in corpus]
        stack = client.build_stack_request([Resource(t, n, p, provider=provider) for t, n, p in corpus])
        for request in requests[:200]:  # warm up: imports, caches, the channel
            client.analyze_raw(request)
        started = time.perf_counter()
        for request in requests:
            client.analyze_raw(request)
        client.analyze_stack_raw(stack)
        return time.perf_counter() - started


def in_process_throughput(corpus: list[tuple[str, str, dict[str, Any]]], config: dict[str, Any],
                          proxied: bool) -> float:
    """Resources per second through every validator called directly: each resource policy on each resource,
    then the stack policies once over the whole corpus. ``proxied``: the props sit behind pulumi-policy's
    unknown-checking proxy, as the SDK hands them over (built before the clock starts: that is SDK cost)."""
    if str(PACK_DIR) not in sys.path:
        sys.path.insert(0, str(PACK_DIR))
    from pulumi_policy import (PolicyCustomTimeouts, PolicyResource, PolicyResourceOptions, ResourceValidationArgs,
                               StackValidationArgs, StackValidationPolicy)
    from pulumi_policy.policy import _NotApplicableError
    from pulumi_policy.proxy import UnknownValueError, unknown_checking_proxy

    from gpu_policies import (driver_documented, driver_pinning, gpu_quota, pinned_images, pod_security,
                              pod_security_exemptions, rbac_bindings, rbac_wildcards)

    policies = [driver_pinning.POLICY, driver_documented.POLICY, pod_security.POLICY, pod_security_exemptions.POLICY,
                pinned_images.POLICY, gpu_quota.POLICY, rbac_wildcards.POLICY, rbac_bindings.POLICY]
    resource_policies = [p for p in policies if not isinstance(p, StackValidationPolicy)]
    stack_policies = [p for p in policies if isinstance(p, StackValidationPolicy)]
    opts = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
    props_of = [unknown_checking_proxy(p) if proxied else p for _, _, p in corpus]
    configs = {p.name: (config.get(p.name) or {}) for p in policies}
    resources = [PolicyResource(t, props, f"urn:{n}", n, opts, None, None, [], {})
                 for (t, n, _), props in zip(corpus, props_of)]

    def ignore(message: str, urn: str | None = None) -> None:
        return None

    started = time.perf_counter()
    for (type_, name, _), props in zip(corpus, props_of):
        for policy in resource_policies:
            args = ResourceValidationArgs(type_, props, f"urn:{name}", name, opts, None, configs[policy.name].copy())
            try:
                policy.validate(args, ignore)
            except (_NotApplicableError, UnknownValueError):
                pass
    for policy in stack_policies:
        try:
            policy.validate(StackValidationArgs(resources, configs[policy.name].copy()), ignore)
        except (_NotApplicableError, UnknownValueError):
            pass
    return len(corpus) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Policy pack overhead over the analyzer protocol.")
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--check", action="store_true", help=f"exit 1 if the ratio exceeds {TARGET_RATIO}")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.analyzer import PackError, load_policy_config, open_pack

    config = load_policy_config(PACK_DIR / "config" / "lab.json")
    corpus = build_corpus(args.resources)
    try:
        with open_pack(PACK_DIR, config) as client:
            info = client.get_analyzer_info()
    except PackError as error:
        print(f"pack_overhead: {error}", file=sys.stderr)
        return 2
    noop_dir = write_noop_pack(info)
    real, noop = [], []
    for run in range(args.runs):
        real.append(time_pack(PACK_DIR, corpus, config))
        noop.append(time_pack(noop_dir, corpus, config))
        print(f"  run {run + 1}: pack {real[-1]:.2f} s, no-op pack {noop[-1]:.2f} s", flush=True)
    real_median, noop_median = statistics.median(real), statistics.median(noop)
    ratio = real_median / noop_median
    kinds = sum(1 for t, _, _ in corpus if t.split(":")[-1].removesuffix("Patch") in KIND_TOKENS)
    print(f"pack_overhead: {len(corpus)} resources ({kinds} pod-bearing) via Analyze + one AnalyzeStack, "
          f"median of {args.runs} runs")
    print(f"  policies pack : {real_median:.3f} s  ({len(corpus) / real_median:,.0f} resources/s)")
    print(f"  no-op pack    : {noop_median:.3f} s  ({len(corpus) / noop_median:,.0f} resources/s)")
    print(f"  ratio         : {ratio:.3f}  (target <= {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    plain = in_process_throughput(copy.deepcopy(corpus), config, proxied=False)
    proxied = in_process_throughput(copy.deepcopy(corpus), config, proxied=True)
    print(f"  in-process    : {plain:,.0f} resources/s through all 8 validators called directly (plain dicts); "
          f"{proxied:,.0f} resources/s reading through pulumi-policy's unknown-checking proxy")
    return 1 if args.check and ratio > TARGET_RATIO else 0


if __name__ == "__main__":
    sys.exit(main())
