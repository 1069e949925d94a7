"""The Pod Security Standards, as Kubernetes defines them: kubernetes/pod-security-admission, policy
version v1.34 (the controls of its ``policy/check_*.go``), both levels.

Baseline controls: hostProcess, host namespaces, privileged, capabilities (baseline set), hostPath
volumes, host ports, AppArmor, SELinux, /proc mount, seccomp (no Unconfined), sysctls, host probes and
lifecycle hooks. Restricted adds: volume types, allowPrivilegeEscalation=false, runAsNonRoot, runAsUser
!= 0, seccomp RuntimeDefault/Localhost required, capabilities drop ALL / add only NET_BIND_SERVICE; and,
as upstream, it replaces three baseline controls with its stricter versions (capabilities, hostPath ->
volume types, seccomp). At v1.34 no control is relaxed for user-namespace pods (``hostUsers: false``;
that came in v1.35), and the restricted controls that Windows pods cannot express
(allowPrivilegeEscalation, capabilities, seccomp) are skipped for ``spec.os.name: windows``.

Where upstream reports one aggregated reason per control, this module reports one finding per offending
field, with its path and fix; the verdict (any finding = rejected) is the same, and the tests hold it
against upstream's own conformance fixtures.

Wrong types (a string where Kubernetes has a boolean, say) never reach admission because the API server
rejects them; here a scalar that is not one of the allowed values is a finding (fail closed), and a
structure of the wrong type reads as absent.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .access import UNKNOWN, get, is_mapping, key_path, keys, seq, show
from .pods import PodSpecRef

VERSION = "v1.34"
BASELINE = "baseline"
RESTRICTED = "restricted"
LEVELS = (BASELINE, RESTRICTED)

BASELINE_CAPABILITIES = frozenset({
    "AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE",
    "SETFCAP", "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT",
})
RESTRICTED_ADDABLE_CAPABILITY = "NET_BIND_SERVICE"
SAFE_SYSCTLS = frozenset({
    "kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
})
SELINUX_TYPES = ("container_t", "container_init_t", "container_kvm_t", "container_engine_t")
RESTRICTED_VOLUME_SOURCES = ("configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                             "persistentVolumeClaim", "projected", "secret")
PROFILE_TYPES = ("RuntimeDefault", "Localhost")
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
PROBES = ("livenessProbe", "readinessProbe", "startupProbe")
LIFECYCLE_HANDLERS = ("postStart", "preStop")

_OFF = "remove it or set it to false"


@dataclass(frozen=True, slots=True)
class Finding:
    """One field that breaks one control."""

    control: str           # upstream's check ID
    level: str             # the level the control belongs to
    subject: str | None    # the container or volume, or None for a pod-level field
    path: str
    problem: str
    fix: str

    @property
    def tag(self) -> str:
        return f"PSS {self.level}: {self.control}"


class _Run:
    """One evaluation: the findings so far and the unknown paths it met."""

    __slots__ = ("findings", "unknowns", "patch")

    def __init__(self, unknowns: list[str], patch: bool) -> None:
        self.findings: list[Finding] = []
        self.unknowns = unknowns
        self.patch = patch

    def add(self, control: str, level: str, subject: str | None, path: str, problem: str, fix: str) -> None:
        self.findings.append(Finding(control, level, subject, path, problem, fix))

    def allowed(self, value: Any, path: str, allowed: tuple) -> bool:
        """True when ``value`` is absent or one of ``allowed``; an unknown is noted and passes here."""
        if value is None:
            return True
        if value is UNKNOWN:
            self.unknowns.append(path)
            return True
        return any(value is a if isinstance(a, bool) else (value == a and not isinstance(value, bool))
                   for a in allowed)

    def items(self, value: Any, path: str) -> Iterator[tuple[int, Any, str]]:
        """The known elements of the list ``value`` at ``path``, each with its index and path; an unknown list
        or element is noted (absent or not a list: nothing)."""
        elements = seq(value)
        if elements is UNKNOWN:
            self.unknowns.append(path)
            return
        for i, element in enumerate(elements):
            if element is UNKNOWN:
                self.unknowns.append(f"{path}[{i}]")
            else:
                yield i, element, f"{path}[{i}]"


def check(pod: PodSpecRef, level: str, unknowns: list[str]) -> list[Finding]:
    """Every finding of ``level`` (baseline, or restricted which includes baseline) for one pod spec.
    Patch resources (``...Patch``) merge into objects the pack cannot see, so for them a field that is
    absent is not a finding; only values they set are judged."""
    run = _Run(unknowns, pod.is_patch)
    spec, p = pod.spec, pod.path
    pod_sc = get(spec, "securityContext")
    if pod_sc is UNKNOWN:
        unknowns.append(f"{p}.securityContext")
        pod_sc = None
    contexts = []
    for c in pod.containers:
        sc = get(c.body, "securityContext")
        if sc is UNKNOWN:
            unknowns.append(f"{c.path}.securityContext")
            sc = None
        contexts.append((c, sc, f"{c.path}.securityContext"))

    _host_process(run, pod_sc, p, contexts)
    _host_namespaces(run, spec, p)
    _privileged(run, contexts)
    _host_ports(run, pod)
    _app_armor(run, pod, pod_sc, p, contexts)
    _selinux(run, pod_sc, p, contexts)
    _proc_mount(run, contexts)
    _sysctls(run, pod_sc, p)
    _host_probes(run, pod)
    if level == RESTRICTED:
        _restricted_volumes(run, spec, p)
        _run_as_non_root(run, pod_sc, p, contexts)
        _run_as_user(run, pod_sc, p, contexts)
        os_name = get(get(spec, "os"), "name")
        before = len(run.findings)
        if os_name != "windows":
            _allow_privilege_escalation(run, contexts)
            _seccomp(run, pod_sc, p, contexts, RESTRICTED)
            _capabilities_restricted(run, contexts)
        if os_name is UNKNOWN and len(run.findings) > before:
            # These three do not apply to Windows pods, and the OS is not known yet.
            del run.findings[before:]
            unknowns.append(f"{p}.os.name")
    else:
        _capabilities_baseline(run, contexts)
        _host_path_volumes(run, spec, p)
        _seccomp(run, pod_sc, p, contexts, BASELINE)
    return run.findings


# --- baseline ---------------------------------------------------------------------------------------

def _host_process(run: _Run, pod_sc: Any, p: str, contexts: list) -> None:
    path = f"{p}.securityContext.windowsOptions.hostProcess"
    value = get(get(pod_sc, "windowsOptions"), "hostProcess")
    if not run.allowed(value, path, (False,)):
        run.add("windowsHostProcess", BASELINE, None, path, f"is {show(value)}",
                f"{_OFF}; Windows HostProcess pods need the privileged level (a namespace exemption)")
    for c, sc, sc_path in contexts:
        path = f"{sc_path}.windowsOptions.hostProcess"
        value = get(get(sc, "windowsOptions"), "hostProcess")
        if not run.allowed(value, path, (False,)):
            run.add("windowsHostProcess", BASELINE, str(c), path, f"is {show(value)}",
                    f"{_OFF}; Windows HostProcess containers need the privileged level (a namespace exemption)")


def _host_namespaces(run: _Run, spec: Any, p: str) -> None:
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        path = f"{p}.{key}"
        value = get(spec, key)
        if not run.allowed(value, path, (False,)):
            run.add("hostNamespaces", BASELINE, None, path, f"is {show(value)}",
                    f"{_OFF}; sharing the node's namespaces needs the privileged level")


def _privileged(run: _Run, contexts: list) -> None:
    for c, sc, sc_path in contexts:
        path = f"{sc_path}.privileged"
        value = get(sc, "privileged")
        if not run.allowed(value, path, (False,)):
            run.add("privileged", BASELINE, str(c), path, f"is {show(value)}", _OFF)


def _capabilities_baseline(run: _Run, contexts: list) -> None:
    allowed = ", ".join(sorted(BASELINE_CAPABILITIES))
    for c, sc, sc_path in contexts:
        for _, cap, cap_path in run.items(get(get(sc, "capabilities"), "add"), f"{sc_path}.capabilities.add"):
            if not isinstance(cap, str) or cap not in BASELINE_CAPABILITIES:
                run.add("capabilities_baseline", BASELINE, str(c), cap_path,
                        f"is {show(cap)}, which baseline does not allow",
                        f"remove it; baseline allows adding only {allowed} (names without CAP_)")


def _host_path_volumes(run: _Run, spec: Any, p: str) -> None:
    for i, volume, vpath in _volumes(run, spec, p):
        host_path = get(volume, "hostPath")
        if host_path is UNKNOWN:
            run.unknowns.append(f"{vpath}.hostPath")
        elif host_path is not None:
            run.add("hostPathVolumes", BASELINE, _volume_label(volume, i), f"{vpath}.hostPath", "is set",
                    "use a volume that does not mount the node's filesystem (emptyDir, configMap, secret, "
                    "persistentVolumeClaim, ...)")


def _host_ports(run: _Run, pod: PodSpecRef) -> None:
    for c in pod.containers:
        for _, port, port_path in run.items(get(c.body, "ports"), f"{c.path}.ports"):
            path = f"{port_path}.hostPort"
            value = get(port, "hostPort")
            if not run.allowed(value, path, (0,)):
                run.add("hostPorts", BASELINE, str(c), path, f"is {show(value)}",
                        "remove hostPort (or set it to 0) and expose the port through a Service")


def _app_armor(run: _Run, pod: PodSpecRef, pod_sc: Any, p: str, contexts: list) -> None:
    fix = 'set it to "RuntimeDefault" or "Localhost" (with localhostProfile), or remove it'
    profile = get(pod_sc, "appArmorProfile")
    _profile_type(run, "appArmorProfile", BASELINE, None, profile, f"{p}.securityContext.appArmorProfile", fix)
    for c, sc, sc_path in contexts:
        _profile_type(run, "appArmorProfile", BASELINE, str(c), get(sc, "appArmorProfile"),
                      f"{sc_path}.appArmorProfile", fix)
    annotations = get(pod.metadata, "annotations")
    if annotations is UNKNOWN:
        run.unknowns.append(f"{pod.metadata_path}.annotations")
        return
    for key in keys(annotations):
        if not key.startswith(APPARMOR_ANNOTATION_PREFIX):
            continue
        path = key_path(f"{pod.metadata_path}.annotations", key)
        value = get(annotations, key)
        if value is UNKNOWN:
            run.unknowns.append(path)
        elif not (value is None or value == "" or value == "runtime/default"
                  or (isinstance(value, str) and value.startswith("localhost/"))):
            run.add("appArmorProfile", BASELINE, None, path, f"is {show(value)}",
                    'set it to "runtime/default" or "localhost/<profile>", or remove it')


def _profile_type(run: _Run, control: str, level: str, subject: str | None, profile: Any, path: str,
                  fix: str) -> bool:
    """A seccomp or AppArmor profile, if set, must be RuntimeDefault or Localhost. True if acceptable."""
    if profile is None:
        return True
    if profile is UNKNOWN:
        run.unknowns.append(path)
        return True
    kind = get(profile, "type")
    if kind is UNKNOWN:
        run.unknowns.append(f"{path}.type")
        return True
    if kind in PROFILE_TYPES and isinstance(kind, str):
        return True
    run.add(control, level, subject, f"{path}.type", f"is {show(kind)}", fix)
    return False


def _selinux(run: _Run, pod_sc: Any, p: str, contexts: list) -> None:
    types = ", ".join(json.dumps(t) for t in SELINUX_TYPES)
    for subject, sc, sc_path in [(None, pod_sc, f"{p}.securityContext")] + [(str(c), sc, sp) for c, sc, sp in contexts]:
        options = get(sc, "seLinuxOptions")
        path = f"{sc_path}.seLinuxOptions"
        if options is UNKNOWN:
            run.unknowns.append(path)
            continue
        if options is None:
            continue
        kind = get(options, "type")
        if kind is UNKNOWN:
            run.unknowns.append(f"{path}.type")
        elif not (kind is None or kind == "" or (isinstance(kind, str) and kind in SELINUX_TYPES)):
            run.add("seLinuxOptions", BASELINE, subject, f"{path}.type", f"is {show(kind)}",
                    f"set it to one of {types}, or remove it")
        for field in ("user", "role"):
            value = get(options, field)
            if value is UNKNOWN:
                run.unknowns.append(f"{path}.{field}")
            elif not (value is None or value == ""):
                run.add("seLinuxOptions", BASELINE, subject, f"{path}.{field}", f"is {show(value)}",
                        "remove it; only the SELinux type and level may be set")


def _proc_mount(run: _Run, contexts: list) -> None:
    for c, sc, sc_path in contexts:
        path = f"{sc_path}.procMount"
        value = get(sc, "procMount")
        if not run.allowed(value, path, ("Default",)):
            run.add("procMount", BASELINE, str(c), path, f"is {show(value)}", 'remove it or set it to "Default"')


def _sysctls(run: _Run, pod_sc: Any, p: str) -> None:
    for _, sysctl, sysctl_path in run.items(get(pod_sc, "sysctls"), f"{p}.securityContext.sysctls"):
        name = get(sysctl, "name")
        if name is UNKNOWN:
            run.unknowns.append(f"{sysctl_path}.name")
        elif not (isinstance(name, str) and name in SAFE_SYSCTLS):
            run.add("sysctls", BASELINE, None, f"{sysctl_path}.name", f"is {show(name)}, which is not a safe sysctl",
                    f"remove it; only these sysctls are allowed: {', '.join(sorted(SAFE_SYSCTLS))}")


def _host_probes(run: _Run, pod: PodSpecRef) -> None:
    for c in pod.containers:
        handlers = [(probe, get(c.body, probe)) for probe in PROBES]
        lifecycle = get(c.body, "lifecycle")
        if lifecycle is UNKNOWN:
            run.unknowns.append(f"{c.path}.lifecycle")
        else:
            handlers += [(f"lifecycle.{h}", get(lifecycle, h)) for h in LIFECYCLE_HANDLERS]
        for where, handler in handlers:
            if handler is UNKNOWN:
                run.unknowns.append(f"{c.path}.{where}")
                continue
            for action in ("httpGet", "tcpSocket"):
                path = f"{c.path}.{where}.{action}.host"
                host = get(get(handler, action), "host")
                if host is UNKNOWN:
                    run.unknowns.append(path)
                elif not (host is None or host == ""):
                    run.add("hostProbesAndHostLifecycle", BASELINE, str(c), path, f"is {show(host)}",
                            "remove host, so the kubelet connects to the pod's own IP")


# --- restricted ------------------------------------------------------------------------------------

def _volumes(run: _Run, spec: Any, p: str):
    for i, volume, path in run.items(get(spec, "volumes"), f"{p}.volumes"):
        if is_mapping(volume):
            yield i, volume, path


def _volume_label(volume: Any, index: int) -> str:
    name = get(volume, "name")
    return f'volume "{name}" (volumes[{index}])' if isinstance(name, str) and name else f"volume (volumes[{index}])"


def _restricted_volumes(run: _Run, spec: Any, p: str) -> None:
    allowed = ", ".join(RESTRICTED_VOLUME_SOURCES)
    for i, volume, vpath in _volumes(run, spec, p):
        if any(get(volume, source) is not None for source in RESTRICTED_VOLUME_SOURCES):
            continue
        # A volume with no source at all is defaulted to emptyDir by the API server, and so allowed.
        sources = [k for k in keys(volume) if k != "name" and get(volume, k) is not None]
        known = [k for k in sources if get(volume, k) is not UNKNOWN]
        if known:
            run.add("restrictedVolumes", RESTRICTED, _volume_label(volume, i), f"{vpath}.{known[0]}",
                    f"is set, and {known[0]} is not a volume type that restricted allows",
                    f"use one of {allowed}")
        elif sources:
            run.unknowns.extend(f"{vpath}.{k}" for k in sources)


def _list(items: list) -> str:
    shown = ", ".join(show(i) for i in items[:6]) + (", ..." if len(items) > 6 else "")
    return f"[{shown}]"


def _allow_privilege_escalation(run: _Run, contexts: list) -> None:
    for c, sc, sc_path in contexts:
        path = f"{sc_path}.allowPrivilegeEscalation"
        value = get(sc, "allowPrivilegeEscalation")
        if value is UNKNOWN:
            run.unknowns.append(path)
        elif value is not False and not (value is None and run.patch):
            run.add("allowPrivilegeEscalation", RESTRICTED, str(c), path, f"is {show(value)}", "set it to false")


def _run_as_non_root(run: _Run, pod_sc: Any, p: str, contexts: list) -> None:
    pod_path = f"{p}.securityContext.runAsNonRoot"
    pod_value = get(pod_sc, "runAsNonRoot")
    if pod_value is UNKNOWN:
        run.unknowns.append(pod_path)
    elif pod_value is not None and pod_value is not True:
        run.add("runAsNonRoot", RESTRICTED, None, pod_path, f"is {show(pod_value)}", "set it to true")
    for c, sc, sc_path in contexts:
        path = f"{sc_path}.runAsNonRoot"
        value = get(sc, "runAsNonRoot")
        if value is UNKNOWN:
            run.unknowns.append(path)
        elif value is not None:
            if value is not True:
                run.add("runAsNonRoot", RESTRICTED, str(c), path, f"is {show(value)}", "set it to true")
        elif pod_value is not True and pod_value is not UNKNOWN and not run.patch:
            run.add("runAsNonRoot", RESTRICTED, str(c), path, f"is not set and {pod_path} is {show(pod_value)}",
                    f"set {pod_path} to true (or runAsNonRoot: true on every container)")


def _run_as_user(run: _Run, pod_sc: Any, p: str, contexts: list) -> None:
    places = [(None, pod_sc, f"{p}.securityContext")] + [(str(c), sc, sp) for c, sc, sp in contexts]
    for subject, sc, sc_path in places:
        path = f"{sc_path}.runAsUser"
        value = get(sc, "runAsUser")
        if value is None:
            continue
        if value is UNKNOWN:
            run.unknowns.append(path)
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or value == 0:
            run.add("runAsUser", RESTRICTED, subject, path, f"is {show(value)}",
                    "set a non-zero user ID, or remove it so runAsNonRoot makes the image's user apply")


def _seccomp(run: _Run, pod_sc: Any, p: str, contexts: list, level: str) -> None:
    """Baseline: a profile, where set, is not Unconfined. Restricted: and the pod or every container
    sets RuntimeDefault or Localhost."""
    control = "seccompProfile_restricted" if level == RESTRICTED else "seccompProfile_baseline"
    fix = 'set it to "RuntimeDefault" (or "Localhost" with localhostProfile)'
    pod_path = f"{p}.securityContext.seccompProfile"
    pod_profile = get(pod_sc, "seccompProfile")
    pod_ok = _profile_type(run, control, level, None, pod_profile, pod_path, fix)
    pod_set = pod_ok and pod_profile is not None
    for c, sc, sc_path in contexts:
        profile = get(sc, "seccompProfile")
        if profile is not None:
            _profile_type(run, control, level, str(c), profile, f"{sc_path}.seccompProfile", fix)
        elif level == RESTRICTED and not pod_set and pod_profile is not UNKNOWN and not run.patch:
            run.add(control, level, str(c), f"{sc_path}.seccompProfile",
                    f"is not set and {pod_path} is {'not set' if pod_profile is None else 'not allowed'}",
                    f'set {pod_path}.type to "RuntimeDefault" (or set a profile on every container)')


def _capabilities_restricted(run: _Run, contexts: list) -> None:
    for c, sc, sc_path in contexts:
        caps = get(sc, "capabilities")
        if caps is UNKNOWN:
            run.unknowns.append(f"{sc_path}.capabilities")
            continue
        drop_path = f"{sc_path}.capabilities.drop"
        raw_drop = get(caps, "drop")
        drop = seq(raw_drop)
        if drop is UNKNOWN:
            run.unknowns.append(drop_path)
        elif "ALL" not in drop and not (raw_drop is None and run.patch):
            if any(d is UNKNOWN for d in drop):
                run.unknowns.append(drop_path)
            else:
                shown = "is not set" if raw_drop is None else f"is {_list(drop)}, without \"ALL\""
                run.add("capabilities_restricted", RESTRICTED, str(c), drop_path, shown, 'set it to ["ALL"]')
        for _, cap, cap_path in run.items(get(caps, "add"), f"{sc_path}.capabilities.add"):
            if cap != RESTRICTED_ADDABLE_CAPABILITY or not isinstance(cap, str):
                run.add("capabilities_restricted", RESTRICTED, str(c), cap_path,
                        f"is {show(cap)}, which restricted does not allow",
                        f'remove it; restricted allows adding only "{RESTRICTED_ADDABLE_CAPABILITY}"')
