"""Our policy pack against checkov on the same Kubernetes manifests: speed, and verdicts per Pod Security control.

Speed. bench/pack_overhead.py's generator makes the workload (every pod-bearing kind, compliant, violating,
exempt and GPU-requesting, RBAC, quotas, namespaces, config maps, ClusterPolicy/NVIDIADriver); the resources
that are Kubernetes manifests (not helm Releases, not ``...Patch`` resources, which checkov cannot read) are
written as YAML, one file per manifest, into bench/.work/checkov/manifests. Both tools read those files:

- checkov 3.3.30 (pinned; installed by this benchmark into bench/.work/checkov-venv) runs with
  ``-d <dir> --framework kubernetes --skip-download --quiet --compact -o json`` (its Kubernetes checks only,
  no network, only failed checks printed);
- ours: the same files read with PyYAML (libyaml), each sent to the pack with Analyze and all of them with one
  AnalyzeStack, over the analyzer gRPC protocol, the pack started as the Pulumi CLI starts it, lab.json config.

Each is timed three ways, in the same run, alternating: (1) the whole command from a fresh interpreter
(checkov's CLI; ``python -m bench.checkov_compare --scan <dir>`` for ours: imports, YAML, pack start, analysis,
pack stop); (2) the scan without interpreter start and imports (checkov's ``Checkov(argv).run()`` timed inside
a fresh interpreter after ``import checkov.main``; ours: YAML read + requests + Analyze/AnalyzeStack, timed
inside the command of (1), after the pack has started); (3) in-process, our validators called directly on the
parsed manifests (no protocol, no YAML) against (2) for checkov. Medians; ratios are checkov / ours. checkov
spreads file parsing over both cores; the pack runs on one.

Verdicts. Both tools judge Kubernetes' own Pod Security conformance pods (pod-security-admission
restricted-v1.34: 74 pods it rejects, 22 it admits; read from the upstream folder, never copied) and a
generated corpus (every control's violations on a Pod, a Deployment and a CronJob, container-level ones in
each container list, plus allowed variants). A control counts as caught by ours when pod-security-standards
names that control; by checkov when one of the checks mapped to it (CHECKOV_MAP, from reading each check's
source) fails. A mapped check failing on an admitted pod is a false alarm.

    venv/bin/python -m bench.checkov_compare [--resources 10000] [--runs 3] [--quick] [--skip-speed]
"""
from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACK_DIR = ROOT / "policies"
LAB_CONFIG = PACK_DIR / "config" / "lab.json"
WORK_DIR = ROOT / "bench" / ".work" / "checkov"
CHECKOV_VERSION = "3.3.30"
CHECKOV_VENV = ROOT / "bench" / ".work" / "checkov-venv"
CHECKOV_ARGS = ["--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"]
# Both tools run with Python's bytecode cache on, as on a user's machine (this machine sets
# PYTHONDONTWRITEBYTECODE; checkov's packages have their bytecode from pip, ours is written by the first run).
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
# checkov skips files under any directory whose name starts with "." (the work folder is bench/.work).
CHECKOV_ENV = {**ENV, "CKV_IGNORE_HIDDEN_DIRECTORIES": "false"}
TARGET_PROTOCOL, TARGET_IN_PROCESS = 10.0, 100.0
PSS_FIXTURES = "pod-security-admission/restricted-v1.34"

# Upstream fixture family -> the control pod-security-standards reports for it at restricted (upstream's
# restricted profile replaces the baseline capabilities, hostPath and seccomp checks with its own).
RESTRICTED_CONTROL = {
    "allowprivilegeescalation": "allowPrivilegeEscalation", "apparmorprofile": "appArmorProfile",
    "capabilities_baseline": "capabilities_restricted", "capabilities_restricted": "capabilities_restricted",
    "hostnamespaces": "hostNamespaces", "hostpathvolumes": "restrictedVolumes", "hostports": "hostPorts",
    "hostprobesandhostlifecycle": "hostProbesAndHostLifecycle", "privileged": "privileged",
    "procmount": "procMount", "restrictedvolumes": "restrictedVolumes", "runasnonroot": "runAsNonRoot",
    "runasuser": "runAsUser", "seccompprofile_baseline": "seccompProfile_restricted",
    "seccompprofile_restricted": "seccompProfile_restricted", "selinuxoptions": "seLinuxOptions",
    "sysctls": "sysctls", "windowshostprocess": "windowsHostProcess",
}
# Family -> the checkov 3.3.30 Kubernetes checks that test the same thing (read from
# checkov/kubernetes/checks/resource/k8s/*.py). Empty: checkov has no check for it.
CHECKOV_MAP: dict[str, tuple[str, ...]] = {
    "allowprivilegeescalation": ("CKV_K8S_20",),               # allowPrivilegeEscalation must be false
    "apparmorprofile": (),
    "capabilities_baseline": ("CKV_K8S_25", "CKV_K8S_39"),     # any capability added; SYS_ADMIN added
    "capabilities_restricted": ("CKV_K8S_37", "CKV_K8S_25"),   # drop must contain ALL; any capability added
    "hostnamespaces": ("CKV_K8S_17", "CKV_K8S_18", "CKV_K8S_19"),  # hostPID, hostIPC, hostNetwork
    "hostpathvolumes": ("CKV_K8S_27",),                        # only a hostPath of /var/run/docker.sock
    "hostports": ("CKV_K8S_26",),                              # any hostPort key, 0 included
    "hostprobesandhostlifecycle": (),
    "privileged": ("CKV_K8S_16",),
    "procmount": (),
    "restrictedvolumes": ("CKV_K8S_27",),                      # only the docker socket hostPath
    "runasnonroot": ("CKV_K8S_23",),                           # runAsNonRoot, or runAsUser >= 1
    "runasuser": ("CKV_K8S_23", "CKV_K8S_40"),                 # runAsUser >= 1; runAsUser >= 10000
    "seccompprofile_baseline": ("CKV_K8S_31",),                # RuntimeDefault on the pod or every container
    "seccompprofile_restricted": ("CKV_K8S_31",),
    "selinuxoptions": (),
    "sysctls": (),
    "windowshostprocess": (),
}
PSS_TAG = re.compile(r"\[PSS (?:baseline|restricted): (\w+)\]")


# --- checkov, in its own virtualenv ---------------------------------------------------------------------------

def checkov_python() -> Path:
    return CHECKOV_VENV / "bin" / "python"


def ensure_checkov() -> Path:
    """checkov==CHECKOV_VERSION in bench/.work/checkov-venv (created once; a stamp records the version)."""
    stamp = CHECKOV_VENV / ".checkov-version"
    if stamp.exists() and stamp.read_text() == CHECKOV_VERSION and checkov_python().exists():
        return CHECKOV_VENV / "bin" / "checkov"
    print(f"checkov_compare: installing checkov=={CHECKOV_VERSION} into {CHECKOV_VENV.relative_to(ROOT)}",
          flush=True)
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base, "-m", "venv", "--clear", str(CHECKOV_VENV)], check=True)
    subprocess.run([str(checkov_python()), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    f"checkov=={CHECKOV_VERSION}"], stderr=subprocess.DEVNULL, check=True)
    stamp.write_text(CHECKOV_VERSION)
    return CHECKOV_VENV / "bin" / "checkov"


# Runs inside checkov's venv: the import and the scan timed separately, the report to a file as the CLI writes it.
CHECKOV_DRIVER = """
import contextlib, json, sys, time, warnings
started = time.perf_counter()
from checkov.main import Checkov
imported = time.perf_counter()
with open(sys.argv[1], "w") as out, contextlib.redirect_stdout(out), warnings.catch_warnings():
    warnings.simplefilter("ignore", category=SyntaxWarning)
    Checkov(argv=sys.argv[3:]).run()
done = time.perf_counter()
with open(sys.argv[2], "w") as timing:
    json.dump({"import": imported - started, "scan": done - imported}, timing)
"""


def checkov_whole(checkov: Path, target: Path, out: Path) -> float:
    started = time.perf_counter()
    with out.open("w") as handle:
        subprocess.run([str(checkov), "-d", str(target), *CHECKOV_ARGS], stdout=handle,
                       stderr=subprocess.DEVNULL, env=CHECKOV_ENV, check=False)
    return time.perf_counter() - started


def checkov_in_process(target: Path, out: Path) -> dict[str, float]:
    timing = out.with_suffix(".timing.json")
    subprocess.run([str(checkov_python()), "-c", CHECKOV_DRIVER, str(out), str(timing), "-d", str(target),
                    *CHECKOV_ARGS], stderr=subprocess.DEVNULL, env=CHECKOV_ENV, check=True)
    return json.loads(timing.read_text())


def checkov_failures(report: Path) -> dict[str, set[str]]:
    """file name -> failed check ids, from checkov's JSON report (one document or a list of them)."""
    text = report.read_text().strip()
    documents = json.loads(text) if text else []
    documents = documents if isinstance(documents, list) else [documents]
    failed: dict[str, set[str]] = defaultdict(set)
    for document in documents:
        if document.get("check_type") != "kubernetes":
            continue
        for check in document.get("results", {}).get("failed_checks", []):
            failed[Path(check["file_path"]).name].add(check["check_id"])
    return failed


# --- the manifests ---------------------------------------------------------------------------------------------

def manifest_of(token: str, props: dict[str, Any]) -> dict[str, Any]:
    """A Pulumi Kubernetes type token and its inputs as the manifest kubectl would read."""
    _, group_version, kind = token.split(":")
    group, version = group_version.split("/")
    api_version = version if group == "core" else f"{group}/{version}"
    return {"apiVersion": api_version, "kind": kind, **copy.deepcopy(props)}


def token_of(manifest: dict[str, Any]) -> str:
    api_version = str(manifest["apiVersion"])
    group, _, version = api_version.rpartition("/")
    return f"kubernetes:{group or 'core'}/{version}:{manifest['kind']}"


def workload_manifests(count: int) -> list[dict[str, Any]]:
    """``count`` manifests from bench/pack_overhead.py's generator (helm releases and patches left out)."""
    from bench.pack_overhead import build_corpus

    manifests: list[dict[str, Any]] = []
    size = count
    while len(manifests) < count:
        manifests = [manifest_of(t, p) for t, _, p in build_corpus(size)
                     if not t.endswith("Patch") and ":helm.sh/" not in t][:count]
        size = int(size * 1.2) + 10
    return manifests


def write_manifests(manifests: list[dict[str, Any]], dest: Path, names: list[str] | None = None) -> Path:
    import yaml

    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for index, manifest in enumerate(manifests):
        name = names[index] if names else f"{index:05d}"
        (dest / f"{name}.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return dest


def read_manifests(source: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, manifest) for every YAML file, parsed with libyaml as fast as PyYAML goes."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [(path.name, yaml.load(path.read_text(), Loader=loader)) for path in sorted(source.glob("*.yaml"))]


# --- ours, through the analyzer protocol -------------------------------------------------------------------------

def pack_config() -> dict[str, Any]:
    from tools.analyzer import load_policy_config

    return load_policy_config(LAB_CONFIG)


def scan_with_pack(source: Path, config: dict[str, Any], *, collect: bool = False) -> dict[str, Any]:
    """Read the YAML files, start the pack, Analyze each manifest, AnalyzeStack once, stop the pack.
    Returns the timings (and, with ``collect``, each file's diagnostics as (policy, message))."""
    from tools.analyzer import Provider, Resource, open_pack

    started = time.perf_counter()
    provider = Provider(props={"enableServerSideApply": "true"})
    with open_pack(PACK_DIR, config, python=PACK_DIR / "venv" / "bin" / "python") as client:
        ready = time.perf_counter()
        files = read_manifests(source)
        findings: dict[str, list[tuple[str, str]]] = defaultdict(list)
        requests = []
        for name, manifest in files:
            meta = manifest.get("metadata") or {}
            requests.append((name, client.build_request(token_of(manifest), str(meta.get("name") or name),
                                                        manifest, provider=provider)))
        for name, request in requests:
            reply = client.analyze_raw(request)
            if collect:
                findings[name] += [(d.policyName, d.message) for d in reply.diagnostics]
        stack = client.analyze_stack_raw(client.build_stack_request([
            Resource(r.type, r.name, manifest, urn=r.urn, provider=provider)
            for (_, r), (_, manifest) in zip(requests, files)]))
        if collect:
            by_urn = {r.urn: name for name, r in requests}
            for d in stack.diagnostics:
                findings[by_urn.get(d.urn, "(stack)")].append((d.policyName, d.message))
        done = time.perf_counter()
    return {"pack_start": ready - started, "scan": done - ready, "total": time.perf_counter() - started,
            "files": len(files), "findings": dict(findings) if collect else None}


def ours_whole(source: Path) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "bench.checkov_compare", "--scan", str(source)], cwd=ROOT,
                            capture_output=True, text=True, check=True, env=ENV)
    return time.perf_counter() - started, json.loads(result.stdout)


def ours_in_process(manifests: list[dict[str, Any]], config: dict[str, Any]) -> tuple[float, float]:
    """Resources per second through every validator called directly (plain dicts; through the SDK's proxy)."""
    from bench.pack_overhead import in_process_throughput

    corpus = [(token_of(m), str((m.get("metadata") or {}).get("name")), m) for m in manifests]
    return (in_process_throughput(copy.deepcopy(corpus), config, proxied=False),
            in_process_throughput(copy.deepcopy(corpus), config, proxied=True))


# --- the per-control corpus ----------------------------------------------------------------------------------

def _container(name: str) -> dict[str, Any]:
    return {"name": name, "image": "registry.example/app:1.2.3",
            "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}}


def _pod_spec() -> dict[str, Any]:
    return {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [_container("main")], "initContainers": [_container("init")],
            "ephemeralContainers": [_container("debug")]}


def _put(target: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for key in keys[:-1]:
        target = target.setdefault(key, {})
    if value is None:
        target.pop(keys[-1], None)
    else:
        target[keys[-1]] = value


Mutation = Callable[[dict[str, Any], dict[str, Any]], None]  # (pod spec, pod metadata)
LISTS = ("containers", "initContainers", "ephemeralContainers")


def _in_container(path: str, value: Any, list_name: str) -> Mutation:
    return lambda spec, _meta: _put(spec[list_name][0], path, value)


def _in_pod(path: str, value: Any) -> Mutation:
    return lambda spec, _meta: _put(spec, path, value)


def _annotation(key: str, value: str) -> Mutation:
    return lambda _spec, meta: meta.setdefault("annotations", {}).__setitem__(key, value)


# family -> [(case, mutation per container list, or one pod-level mutation)]
CONTAINER_CASES: dict[str, list[tuple[str, str, Any]]] = {
    "allowprivilegeescalation": [("true", "securityContext.allowPrivilegeEscalation", True),
                                 ("unset", "securityContext.allowPrivilegeEscalation", None)],
    "apparmorprofile": [("unconfined", "securityContext.appArmorProfile", {"type": "Unconfined"})],
    "capabilities_baseline": [("add-sys-admin", "securityContext.capabilities.add", ["SYS_ADMIN"]),
                              ("add-net-raw", "securityContext.capabilities.add", ["NET_RAW"])],
    "capabilities_restricted": [("no-drop", "securityContext.capabilities.drop", None),
                                ("add-chown", "securityContext.capabilities.add", ["CHOWN"])],
    "hostports": [("host-port", "ports", [{"containerPort": 8080, "hostPort": 8080}])],
    "hostprobesandhostlifecycle": [("probe-host", "livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}),
                                   ("hook-host", "lifecycle",
                                    {"preStop": {"tcpSocket": {"host": "db", "port": 5432}}})],
    "privileged": [("privileged", "securityContext.privileged", True)],
    "procmount": [("unmasked", "securityContext.procMount", "Unmasked")],
    "runasnonroot": [("false", "securityContext.runAsNonRoot", False)],
    "runasuser": [("root", "securityContext.runAsUser", 0)],
    "seccompprofile_baseline": [("unconfined", "securityContext.seccompProfile", {"type": "Unconfined"})],
    "selinuxoptions": [("type-spc-t", "securityContext.seLinuxOptions", {"type": "spc_t"})],
    "windowshostprocess": [("host-process", "securityContext.windowsOptions", {"hostProcess": True})],
}
POD_CASES: dict[str, list[tuple[str, Mutation]]] = {
    "apparmorprofile": [("annotation", _annotation("container.apparmor.security.beta.kubernetes.io/main",
                                                   "unconfined")),
                        ("pod-unconfined", _in_pod("securityContext.appArmorProfile", {"type": "Unconfined"}))],
    "hostnamespaces": [("host-network", _in_pod("hostNetwork", True)), ("host-pid", _in_pod("hostPID", True)),
                       ("host-ipc", _in_pod("hostIPC", True))],
    "hostpathvolumes": [("root", _in_pod("volumes", [{"name": "root", "hostPath": {"path": "/"}}])),
                        ("docker-socket", _in_pod("volumes", [{"name": "sock",
                                                               "hostPath": {"path": "/var/run/docker.sock"}}]))],
    "restrictedvolumes": [("nfs", _in_pod("volumes", [{"name": "n", "nfs": {"server": "nas", "path": "/x"}}])),
                          ("image", _in_pod("volumes", [{"name": "m", "image": {"reference": "reg/model:1"}}]))],
    "runasnonroot": [("pod-false", _in_pod("securityContext.runAsNonRoot", False)),
                     ("unset", _in_pod("securityContext.runAsNonRoot", None))],
    "runasuser": [("pod-root", _in_pod("securityContext.runAsUser", 0))],
    "seccompprofile_baseline": [("pod-unconfined", _in_pod("securityContext.seccompProfile", {"type": "Unconfined"}))],
    "seccompprofile_restricted": [("unset", _in_pod("securityContext.seccompProfile", None))],
    "selinuxoptions": [("pod-user", _in_pod("securityContext.seLinuxOptions", {"user": "root"}))],
    "sysctls": [("unsafe", _in_pod("securityContext.sysctls", [{"name": "kernel.msgmax", "value": "65536"}]))],
    "windowshostprocess": [("pod", _in_pod("securityContext.windowsOptions", {"hostProcess": True}))],
}
# Allowed by restricted: each must pass (a finding on these is a false alarm).
ALLOWED_CASES: list[tuple[str, Mutation]] = [
    ("baseline", lambda spec, meta: None),
    ("add-net-bind-service", _in_container("securityContext.capabilities.add", ["NET_BIND_SERVICE"], "containers")),
    ("seccomp-localhost", _in_pod("securityContext.seccompProfile",
                                  {"type": "Localhost", "localhostProfile": "profiles/app.json"})),
    ("run-as-user-1000", _in_pod("securityContext.runAsUser", 1000)),
    ("selinux-container-t", _in_container("securityContext.seLinuxOptions", {"type": "container_t"}, "containers")),
    ("safe-sysctl", _in_pod("securityContext.sysctls", [{"name": "net.ipv4.tcp_syncookies", "value": "1"}])),
    ("allowed-volumes", _in_pod("volumes", [{"name": "c", "configMap": {"name": "cfg"}}, {"name": "e", "emptyDir": {}},
                                            {"name": "p", "persistentVolumeClaim": {"claimName": "data"}}])),
    ("apparmor-runtime-default", _in_container("securityContext.appArmorProfile", {"type": "RuntimeDefault"},
                                               "containers")),
]
KINDS = ("Pod", "Deployment", "CronJob")


def _workload(kind: str, name: str, mutate: Mutation) -> dict[str, Any]:
    spec, meta = _pod_spec(), {}
    mutate(spec, meta)
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "namespace": "tenant-a", **meta}, "spec": spec}
    template = {"metadata": {"labels": {"app": name}, **meta}, "spec": spec}
    if kind == "Deployment":
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "tenant-a"},
                "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}}
    template["spec"]["restartPolicy"] = "OnFailure"
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "tenant-a"},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": template}}}}


def control_corpus() -> tuple[list[dict[str, Any]], list[str], dict[str, str]]:
    """(manifests, file stems, stem -> family or "pass") for every case on every kind."""
    manifests, stems, family_of = [], [], {}

    def add(family: str, case: str, kind: str, mutate: Mutation) -> None:
        stem = f"{family}__{case}__{kind.lower()}"
        manifests.append(_workload(kind, re.sub(r"[^a-z0-9-]", "-", stem.lower())[:63].strip("-"), mutate))
        stems.append(stem)
        family_of[stem] = family

    for kind in KINDS:
        for family, cases in CONTAINER_CASES.items():
            for case, path, value in cases:
                for list_name in LISTS:
                    add(family, f"{case}-{list_name}", kind, _in_container(path, value, list_name))
        for family, pod_cases in POD_CASES.items():
            for case, mutate in pod_cases:
                add(family, case, kind, mutate)
        for case, mutate in ALLOWED_CASES:
            add("pass", case, kind, mutate)
    return manifests, stems, family_of


# --- verdicts --------------------------------------------------------------------------------------------------

def pss_controls(findings: list[tuple[str, str]]) -> set[str]:
    return {m.group(1) for policy, message in findings if policy == "pod-security-standards"
            for m in [PSS_TAG.search(message)] if m}


def verdict_table(checkov: Path, config: dict[str, Any]) -> tuple[list[str], bool]:
    """Both tools over the upstream fixtures and the generated corpus; returns printable lines.

    A checkov check counts for a case only if it passes on the compliant pod the case was made from (upstream's
    pass/base.yaml; the generated corpus's baseline of the same kind): a check that fails on the compliant pod
    too (CKV_K8S_40, UID >= 10000, fails on every pod without a high runAsUser) says nothing about the case."""
    from tools.upstream import upstream_dir

    upstream = upstream_dir() / PSS_FIXTURES
    if not upstream.is_dir():
        return [f"  verdicts: {upstream} not found (set GPU_PLATFORM_UPSTREAM); skipped"], False
    sets: dict[str, tuple[Path, dict[str, str]]] = {}
    for verdict in ("fail", "pass"):
        folder = upstream / verdict
        sets[f"upstream-{verdict}"] = (folder, {p.name: (re.sub(r"\d+$", "", p.stem) if verdict == "fail" else "pass")
                                                for p in folder.glob("*.yaml")})
    manifests, stems, family_of = control_corpus()
    corpus_dir = write_manifests(manifests, WORK_DIR / "controls", stems)
    sets["generated"] = (corpus_dir, {f"{s}.yaml": f for s, f in family_of.items()})
    ours: dict[str, dict[str, list[tuple[str, str]]]] = {}
    theirs: dict[str, dict[str, set[str]]] = {}
    for label, (folder, _) in sets.items():
        ours[label] = scan_with_pack(folder, config, collect=True)["findings"]
        report = WORK_DIR / f"verdicts-{label}.json"
        checkov_whole(checkov, folder, report)
        theirs[label] = checkov_failures(report)
    base_failures = {"upstream": theirs["upstream-pass"].get("base.yaml", set())}
    for kind in KINDS:
        base_failures[kind.lower()] = theirs["generated"].get(f"pass__baseline__{kind.lower()}.yaml", set())

    def baseline_of(label: str, file_name: str) -> set[str]:
        return base_failures["upstream" if label.startswith("upstream") else file_name[:-5].rsplit("__", 1)[1]]

    mapped_all = {c for checks in CHECKOV_MAP.values() for c in checks}
    caught: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0])  # cases, ours, checkov
    alarms: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    alarm_checks: dict[str, set[str]] = defaultdict(set)
    for label, (_, families) in sets.items():
        for file_name, family in families.items():
            our_controls = pss_controls(ours[label].get(file_name, []))
            new_failures = theirs[label].get(file_name, set()) - baseline_of(label, file_name)
            if family == "pass":
                entry = alarms[label]
                entry[0] += 1
                entry[1] += bool(our_controls)
                entry[2] += bool(new_failures & mapped_all)
                alarm_checks[label] |= new_failures & mapped_all
                continue
            entry = caught[(label, family)]
            entry[0] += 1
            entry[1] += RESTRICTED_CONTROL[family] in our_controls
            entry[2] += bool(new_failures & set(CHECKOV_MAP[family]))
    lines = ["  Pod Security Standards (restricted, v1.34) per control: cases caught / cases",
             f"  {'control (upstream fixture family)':28} {'upstream fail: ours':>19} {'checkov':>9} "
             f"{'generated: ours':>16} {'checkov':>9}  checkov checks mapped"]
    totals: dict[str, int] = defaultdict(int)
    for family in RESTRICTED_CONTROL:
        up, gen = caught[("upstream-fail", family)], caught[("generated", family)]
        for key, value in zip(("up_n", "up_ours", "up_ckv", "gen_n", "gen_ours", "gen_ckv"), (*up, *gen)):
            totals[key] += value
        checks = ", ".join(CHECKOV_MAP[family]) or "none: no equivalent check"
        lines.append(f"  {family:28} {up[1]:>15}/{up[0]:<3} {up[2]:>5}/{up[0]:<3} {gen[1]:>12}/{gen[0]:<3} "
                     f"{gen[2]:>5}/{gen[0]:<3}  {checks}")
    lines.append(f"  {'all controls':28} {totals['up_ours']:>15}/{totals['up_n']:<3} {totals['up_ckv']:>5}/"
                 f"{totals['up_n']:<3} {totals['gen_ours']:>12}/{totals['gen_n']:<3} {totals['gen_ckv']:>5}/"
                 f"{totals['gen_n']:<3}")
    for label in ("upstream-pass", "generated"):
        n, ours_n, ckv_n = alarms[label]
        lines.append(f"  admitted pods ({label}): flagged by ours {ours_n}/{n}; by a mapped checkov check {ckv_n}/{n}"
                     f" [{', '.join(sorted(alarm_checks[label])) or '-'}]")
    always = sorted(set.union(*base_failures.values()) & mapped_all)
    lines.append(f"  mapped checks failing on the compliant base pods themselves (not counted): "
                 f"{', '.join(always) or '-'}; checkov's container checks read containers and initContainers, "
                 "not ephemeralContainers")
    ok = totals["up_ours"] == totals["up_n"] and not alarms["upstream-pass"][1]
    return lines, ok


# --- main ------------------------------------------------------------------------------------------------------

def _scan_command(source: str) -> int:
    """``--scan DIR``: ours as one command (the 'whole command' timing); prints its inner timings as JSON."""
    result = scan_with_pack(Path(source), pack_config())
    result.pop("findings")
    print(json.dumps(result))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.checkov_compare", description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=10_000, help="manifests in the speed workload")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 manifests, one run (a smoke test)")
    parser.add_argument("--skip-speed", action="store_true", help="only the verdicts")
    parser.add_argument("--skip-verdicts", action="store_true", help="only the speed")
    parser.add_argument("--scan", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    if args.scan:
        return _scan_command(args.scan)
    if args.quick:
        args.resources, args.runs = 300, 1
    checkov = ensure_checkov()
    config = pack_config()
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    if not args.skip_speed:
        speed(checkov, config, args.resources, args.runs)
    if not args.skip_verdicts:
        lines, _ = verdict_table(checkov, config)
        print("\n".join(lines))
    return 0


def speed(checkov: Path, config: dict[str, Any], count: int, runs: int) -> None:
    manifests = workload_manifests(count)
    source = write_manifests(manifests, WORK_DIR / "manifests")
    kinds = defaultdict(int)
    for manifest in manifests:
        kinds[manifest["kind"]] += 1
    print(f"checkov_compare: {len(manifests)} manifests in {len(manifests)} files "
          f"({', '.join(f'{n} {k}' for k, n in sorted(kinds.items(), key=lambda kv: -kv[1]))})", flush=True)
    report = WORK_DIR / "speed-report.json"
    rows: dict[str, list[float]] = defaultdict(list)
    warm = write_manifests(manifests[:20], WORK_DIR / "warm-up")  # the file and bytecode caches, both tools
    checkov_whole(checkov, warm, report), ours_whole(warm)
    for run in range(runs):  # alternate the tools within each run
        rows["checkov whole"].append(checkov_whole(checkov, source, report))
        wall, inner = ours_whole(source)  # a fresh process, as checkov's: its own timings give the scan alone
        rows["ours whole"].append(wall)
        rows["ours pack start"].append(inner["pack_start"])
        rows["ours scan"].append(inner["scan"])
        timing = checkov_in_process(source, report)
        rows["checkov import"].append(timing["import"])
        rows["checkov scan"].append(timing["scan"])
        print(f"  run {run + 1}: checkov {rows['checkov whole'][-1]:.1f} s whole, {timing['scan']:.1f} s scan; "
              f"ours {wall:.1f} s whole, {inner['scan']:.1f} s scan", flush=True)
    plain, proxied = ours_in_process(manifests, config)
    failed = checkov_failures(report)
    med = {k: statistics.median(v) for k, v in rows.items()}
    n = len(manifests)
    print(f"checkov_compare: checkov {CHECKOV_VERSION} (--framework kubernetes) vs the pack, median of {runs} runs")
    print(f"  whole command    checkov {med['checkov whole']:7.2f} s   ours {med['ours whole']:7.2f} s   "
          f"ratio {med['checkov whole'] / med['ours whole']:6.1f}x  (interpreters, imports, pack start included)")
    print(f"  scan             checkov {med['checkov scan']:7.2f} s   ours {med['ours scan']:7.2f} s   "
          f"ratio {med['checkov scan'] / med['ours scan']:6.1f}x  (target >= {TARGET_PROTOCOL:.0f}x: "
          f"{'met' if med['checkov scan'] / med['ours scan'] >= TARGET_PROTOCOL else 'NOT met'}; without "
          f"checkov's import {med['checkov import']:.2f} s and the pack's start {med['ours pack start']:.2f} s)")
    in_process = n / plain
    print(f"  in-process       checkov {med['checkov scan']:7.2f} s   ours {in_process:7.3f} s   "
          f"ratio {med['checkov scan'] / in_process:6.1f}x  (target >= {TARGET_IN_PROCESS:.0f}x: "
          f"{'met' if med['checkov scan'] / in_process >= TARGET_IN_PROCESS else 'NOT met'}; ours: the 8 "
          f"validators on parsed dicts, {plain:,.0f}/s; through the SDK's proxy {proxied:,.0f}/s)")
    print(f"  per manifest     checkov {med['checkov scan'] / n * 1000:.2f} ms, "
          f"ours {med['ours scan'] / n * 1000:.2f} ms "
          f"over gRPC, {1000 / plain:.3f} ms in-process; checkov reported failed checks on {len(failed)} files")
    spread = {k: (min(v), max(v)) for k, v in rows.items()}
    print("  spread (min-max): " + ", ".join(f"{k} {a:.2f}-{b:.2f}" for k, (a, b) in spread.items()))


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
