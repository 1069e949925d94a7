"""A corpus of passing and failing workloads for every Pod Security Standards control, generated from one
compliant baseline per pod-bearing kind: each case changes one thing, as the control's Kubernetes
definition (pod-security-admission v1.34) allows or forbids it, and names exactly which findings the
baseline and restricted levels must give (control and full field path)."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from gpu_policies import pss
from gpu_policies.pods import pod_spec
from gpu_policies.resource import ResourceView

from policy_factories import CONTAINER_LISTS, KINDS, WORKLOAD_TOKENS, restricted_pod_spec, spec_path, workload

B, R = pss.BASELINE, pss.RESTRICTED
APPARMOR_KEY = "container.apparmor.security.beta.kubernetes.io/main"


def setting(path: str, value: Any) -> Callable[[dict], None]:
    """Set a dotted path inside a dict (``None`` deletes it)."""
    keys = path.split(".")

    def mutate(target: dict) -> None:
        for key in keys[:-1]:
            target = target.setdefault(key, {})
        if value is None:
            target.pop(keys[-1], None)
        else:
            target[keys[-1]] = value
    return mutate


def both(control: str, path: str) -> dict[str, list[tuple[str, str]]]:
    return {B: [(control, path)], R: [(control, path)]}


def restricted_only(*findings: tuple[str, str]) -> dict[str, list[tuple[str, str]]]:
    return {B: [], R: list(findings)}


PASS: dict[str, list] = {B: [], R: []}

# (id, mutation of one container, expected findings per level; "{c}" is that container's path)
CONTAINER_CASES = [
    ("privileged", setting("securityContext.privileged", True), both("privileged", "{c}.securityContext.privileged")),
    ("privileged-false", setting("securityContext.privileged", False), PASS),
    ("privileged-not-a-boolean", setting("securityContext.privileged", "true"),
     both("privileged", "{c}.securityContext.privileged")),
    ("escalation-true", setting("securityContext.allowPrivilegeEscalation", True),
     restricted_only(("allowPrivilegeEscalation", "{c}.securityContext.allowPrivilegeEscalation"))),
    ("escalation-unset", setting("securityContext.allowPrivilegeEscalation", None),
     restricted_only(("allowPrivilegeEscalation", "{c}.securityContext.allowPrivilegeEscalation"))),
    ("add-net-raw", setting("securityContext.capabilities.add", ["NET_RAW"]),
     {B: [("capabilities_baseline", "{c}.securityContext.capabilities.add[0]")],
      R: [("capabilities_restricted", "{c}.securityContext.capabilities.add[0]")]}),
    ("add-sys-admin", setting("securityContext.capabilities.add", ["SYS_ADMIN"]),
     {B: [("capabilities_baseline", "{c}.securityContext.capabilities.add[0]")],
      R: [("capabilities_restricted", "{c}.securityContext.capabilities.add[0]")]}),
    ("add-cap-prefixed", setting("securityContext.capabilities.add", ["CAP_CHOWN"]),
     {B: [("capabilities_baseline", "{c}.securityContext.capabilities.add[0]")],
      R: [("capabilities_restricted", "{c}.securityContext.capabilities.add[0]")]}),
    ("add-chown", setting("securityContext.capabilities.add", ["CHOWN"]),
     restricted_only(("capabilities_restricted", "{c}.securityContext.capabilities.add[0]"))),
    ("add-net-bind-service", setting("securityContext.capabilities.add", ["NET_BIND_SERVICE"]), PASS),
    ("drop-unset", setting("securityContext.capabilities.drop", None),
     restricted_only(("capabilities_restricted", "{c}.securityContext.capabilities.drop"))),
    ("drop-without-all", setting("securityContext.capabilities.drop", ["NET_RAW", "SYS_ADMIN"]),
     restricted_only(("capabilities_restricted", "{c}.securityContext.capabilities.drop"))),
    ("no-security-context", setting("securityContext", None),
     restricted_only(("allowPrivilegeEscalation", "{c}.securityContext.allowPrivilegeEscalation"),
                     ("capabilities_restricted", "{c}.securityContext.capabilities.drop"))),
    ("host-port", setting("ports", [{"containerPort": 80}, {"containerPort": 443, "hostPort": 8443}]),
     both("hostPorts", "{c}.ports[1].hostPort")),
    ("host-port-zero", setting("ports", [{"containerPort": 80, "hostPort": 0}]), PASS),
    ("proc-mount-unmasked", setting("securityContext.procMount", "Unmasked"),
     both("procMount", "{c}.securityContext.procMount")),
    ("proc-mount-default", setting("securityContext.procMount", "Default"), PASS),
    ("selinux-type", setting("securityContext.seLinuxOptions", {"type": "spc_t"}),
     both("seLinuxOptions", "{c}.securityContext.seLinuxOptions.type")),
    ("selinux-user", setting("securityContext.seLinuxOptions", {"user": "system_u"}),
     both("seLinuxOptions", "{c}.securityContext.seLinuxOptions.user")),
    ("selinux-role", setting("securityContext.seLinuxOptions", {"role": "sysadm_r"}),
     both("seLinuxOptions", "{c}.securityContext.seLinuxOptions.role")),
    ("selinux-container-t-with-level", setting("securityContext.seLinuxOptions",
                                               {"type": "container_t", "level": "s0:c1,c2"}), PASS),
    ("selinux-container-engine-t", setting("securityContext.seLinuxOptions", {"type": "container_engine_t"}), PASS),
    ("seccomp-unconfined", setting("securityContext.seccompProfile", {"type": "Unconfined"}),
     {B: [("seccompProfile_baseline", "{c}.securityContext.seccompProfile.type")],
      R: [("seccompProfile_restricted", "{c}.securityContext.seccompProfile.type")]}),
    ("seccomp-localhost", setting("securityContext.seccompProfile",
                                  {"type": "Localhost", "localhostProfile": "profiles/app.json"}), PASS),
    ("apparmor-unconfined", setting("securityContext.appArmorProfile", {"type": "Unconfined"}),
     both("appArmorProfile", "{c}.securityContext.appArmorProfile.type")),
    ("apparmor-runtime-default", setting("securityContext.appArmorProfile", {"type": "RuntimeDefault"}), PASS),
    ("host-process", setting("securityContext.windowsOptions", {"hostProcess": True}),
     both("windowsHostProcess", "{c}.securityContext.windowsOptions.hostProcess")),
    ("run-as-non-root-false", setting("securityContext.runAsNonRoot", False),
     restricted_only(("runAsNonRoot", "{c}.securityContext.runAsNonRoot"))),
    ("run-as-user-root", setting("securityContext.runAsUser", 0),
     restricted_only(("runAsUser", "{c}.securityContext.runAsUser"))),
    ("run-as-user-1000", setting("securityContext.runAsUser", 1000), PASS),
    ("liveness-http-host", setting("livenessProbe", {"httpGet": {"host": "10.0.0.1", "port": 80}}),
     both("hostProbesAndHostLifecycle", "{c}.livenessProbe.httpGet.host")),
    ("readiness-tcp-host", setting("readinessProbe", {"tcpSocket": {"host": "db", "port": 5432}}),
     both("hostProbesAndHostLifecycle", "{c}.readinessProbe.tcpSocket.host")),
    ("startup-http-host", setting("startupProbe", {"httpGet": {"host": "::1", "port": 80}}),
     both("hostProbesAndHostLifecycle", "{c}.startupProbe.httpGet.host")),
    ("pre-stop-http-host", setting("lifecycle", {"preStop": {"httpGet": {"host": "x.example", "port": 80}}}),
     both("hostProbesAndHostLifecycle", "{c}.lifecycle.preStop.httpGet.host")),
    ("post-start-tcp-host", setting("lifecycle", {"postStart": {"tcpSocket": {"host": "x.example", "port": 80}}}),
     both("hostProbesAndHostLifecycle", "{c}.lifecycle.postStart.tcpSocket.host")),
    ("probe-without-host", setting("livenessProbe", {"httpGet": {"host": "", "port": 80, "path": "/healthz"}}), PASS),
]


def _all_containers(path: str, value: Any) -> Callable[[dict, dict], None]:
    def mutate(spec: dict, _annotations: dict) -> None:
        for list_name in CONTAINER_LISTS:
            for container in spec[list_name]:
                setting(path, value)(container)
    return mutate


def _pod(path: str, value: Any) -> Callable[[dict, dict], None]:
    def mutate(spec: dict, _annotations: dict) -> None:
        setting(path, value)(spec)
    return mutate


def _chain(*mutations: Callable[[dict, dict], None]) -> Callable[[dict, dict], None]:
    def mutate(spec: dict, annotations: dict) -> None:
        for m in mutations:
            m(spec, annotations)
    return mutate


def _annotate(key: str, value: str) -> Callable[[dict, dict], None]:
    def mutate(_spec: dict, annotations: dict) -> None:
        annotations[key] = value
    return mutate


EVERY = ("initContainers[0]", "containers[0]", "ephemeralContainers[0]")
ALLOWED_VOLUMES = [
    {"name": "cm", "configMap": {"name": "cfg"}}, {"name": "csi", "csi": {"driver": "x.csi.k8s.io"}},
    {"name": "dapi", "downwardAPI": {"items": []}}, {"name": "scratch", "emptyDir": {}},
    {"name": "eph", "ephemeral": {"volumeClaimTemplate": {"spec": {}}}},
    {"name": "pvc", "persistentVolumeClaim": {"claimName": "data"}}, {"name": "proj", "projected": {"sources": []}},
    {"name": "sec", "secret": {"secretName": "s"}}, {"name": "defaulted-to-empty-dir"},
]

# (id, mutation of the pod spec and pod annotations, expected findings; "{s}" spec path, "{m}" metadata path)
POD_CASES = [
    ("host-network", _pod("hostNetwork", True), both("hostNamespaces", "{s}.hostNetwork")),
    ("host-pid", _pod("hostPID", True), both("hostNamespaces", "{s}.hostPID")),
    ("host-ipc", _pod("hostIPC", True), both("hostNamespaces", "{s}.hostIPC")),
    ("host-network-false", _pod("hostNetwork", False), PASS),
    ("hostpath-volume", _pod("volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
     {B: [("hostPathVolumes", "{s}.volumes[0].hostPath")], R: [("restrictedVolumes", "{s}.volumes[0].hostPath")]}),
    ("nfs-volume", _pod("volumes", [{"name": "n", "nfs": {"server": "nas", "path": "/x"}}]),
     restricted_only(("restrictedVolumes", "{s}.volumes[0].nfs"))),
    ("image-volume", _pod("volumes", [{"name": "model", "image": {"reference": "reg/model:1"}}]),
     restricted_only(("restrictedVolumes", "{s}.volumes[0].image"))),
    ("allowed-volume-types", _pod("volumes", ALLOWED_VOLUMES), PASS),
    ("unsafe-sysctl", _pod("securityContext.sysctls", [{"name": "net.ipv4.tcp_syncookies", "value": "1"},
                                                        {"name": "kernel.msgmax", "value": "65536"}]),
     both("sysctls", "{s}.securityContext.sysctls[1].name")),
    ("safe-sysctls", _pod("securityContext.sysctls", [{"name": n, "value": "1"} for n in sorted(pss.SAFE_SYSCTLS)]),
     PASS),
    ("pod-run-as-non-root-false", _chain(_pod("securityContext.runAsNonRoot", False),
                                         _all_containers("securityContext.runAsNonRoot", True)),
     restricted_only(("runAsNonRoot", "{s}.securityContext.runAsNonRoot"))),
    ("run-as-non-root-unset", _pod("securityContext.runAsNonRoot", None),
     restricted_only(*[("runAsNonRoot", f"{{s}}.{c}.securityContext.runAsNonRoot") for c in EVERY])),
    ("run-as-non-root-on-every-container", _chain(_pod("securityContext.runAsNonRoot", None),
                                                  _all_containers("securityContext.runAsNonRoot", True)), PASS),
    ("pod-run-as-user-root", _pod("securityContext.runAsUser", 0),
     restricted_only(("runAsUser", "{s}.securityContext.runAsUser"))),
    ("seccomp-unset", _pod("securityContext.seccompProfile", None),
     restricted_only(*[("seccompProfile_restricted", f"{{s}}.{c}.securityContext.seccompProfile") for c in EVERY])),
    ("seccomp-on-every-container", _chain(_pod("securityContext.seccompProfile", None),
                                          _all_containers("securityContext.seccompProfile", {"type": "RuntimeDefault"})),
     PASS),
    ("pod-seccomp-unconfined", _pod("securityContext.seccompProfile", {"type": "Unconfined"}),
     {B: [("seccompProfile_baseline", "{s}.securityContext.seccompProfile.type")],
      R: [("seccompProfile_restricted", "{s}.securityContext.seccompProfile.type")]
      + [("seccompProfile_restricted", f"{{s}}.{c}.securityContext.seccompProfile") for c in EVERY]}),
    ("pod-selinux-user", _pod("securityContext.seLinuxOptions", {"user": "root"}),
     both("seLinuxOptions", "{s}.securityContext.seLinuxOptions.user")),
    ("pod-apparmor-unconfined", _pod("securityContext.appArmorProfile", {"type": "Unconfined"}),
     both("appArmorProfile", "{s}.securityContext.appArmorProfile.type")),
    ("pod-host-process", _pod("securityContext.windowsOptions", {"hostProcess": True}),
     both("windowsHostProcess", "{s}.securityContext.windowsOptions.hostProcess")),
    ("apparmor-annotation-unconfined", _annotate(APPARMOR_KEY, "unconfined"),
     both("appArmorProfile", f'{{m}}.annotations["{APPARMOR_KEY}"]')),
    ("apparmor-annotation-localhost", _annotate(APPARMOR_KEY, "localhost/app"), PASS),
    ("windows-pod-without-linux-fields", _chain(_pod("os", {"name": "windows"}), _pod("securityContext.seccompProfile", None),
                                               _all_containers("securityContext", None)), PASS),
    ("linux-pod-without-linux-fields", _chain(_pod("os", {"name": "linux"}), _pod("securityContext.seccompProfile", None),
                                             _all_containers("securityContext", None)),
     restricted_only(*[(control, f"{{s}}.{c}.securityContext.{field}") for c in EVERY
                       for control, field in (("allowPrivilegeEscalation", "allowPrivilegeEscalation"),
                                              ("seccompProfile_restricted", "seccompProfile"),
                                              ("capabilities_restricted", "capabilities.drop"))])),
]


def findings_for(kind: str, spec: dict, annotations: dict, level: str) -> list[tuple[str, str]]:
    props = workload(kind, spec, pod_annotations=annotations or None)
    unknowns: list[str] = []
    ref = pod_spec(ResourceView(WORKLOAD_TOKENS[kind], props), unknowns)
    assert ref is not None
    found = pss.check(ref, level, unknowns)
    assert unknowns == []
    return sorted((f.control, f.path) for f in found)


def _meta_path(kind: str) -> str:
    return {"Pod": "metadata", "PodTemplate": "template.metadata",
            "CronJob": "spec.jobTemplate.spec.template.metadata"}.get(kind, "spec.template.metadata")


@pytest.mark.parametrize("kind", KINDS)
def test_baseline_workload_is_compliant(kind: str) -> None:
    for level in pss.LEVELS:
        assert findings_for(kind, restricted_pod_spec(), {}, level) == []


@pytest.mark.parametrize("list_name", CONTAINER_LISTS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_id, mutate, expected", CONTAINER_CASES, ids=[c[0] for c in CONTAINER_CASES])
def test_container_control(case_id: str, mutate: Callable, expected: dict, kind: str, list_name: str) -> None:
    spec = restricted_pod_spec()
    mutate(spec[list_name][0])
    container_path = f"{spec_path(kind)}.{list_name}[0]"
    for level in pss.LEVELS:
        want = sorted((control, path.format(c=container_path)) for control, path in expected[level])
        assert findings_for(kind, spec, {}, level) == want, level


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case_id, mutate, expected", POD_CASES, ids=[c[0] for c in POD_CASES])
def test_pod_control(case_id: str, mutate: Callable, expected: dict, kind: str) -> None:
    spec, annotations = restricted_pod_spec(), {}
    mutate(spec, annotations)
    for level in pss.LEVELS:
        want = sorted((control, path.format(s=spec_path(kind), m=_meta_path(kind)))
                      for control, path in expected[level])
        assert findings_for(kind, spec, annotations, level) == want, level


def test_corpus_covers_every_control() -> None:
    """Every control of both levels has at least one failing case in the corpus."""
    controls = {control for _, _, exp in CONTAINER_CASES + POD_CASES for level in exp for control, _ in exp[level]}
    assert controls == {
        "windowsHostProcess", "hostNamespaces", "privileged", "capabilities_baseline", "hostPathVolumes",
        "hostPorts", "appArmorProfile", "seLinuxOptions", "procMount", "seccompProfile_baseline", "sysctls",
        "hostProbesAndHostLifecycle", "restrictedVolumes", "allowPrivilegeEscalation", "runAsNonRoot",
        "runAsUser", "seccompProfile_restricted", "capabilities_restricted",
    }
