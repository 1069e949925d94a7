"""The Pod Security Standards' own conformance fixtures (kubernetes/pod-security-admission, restricted at
v1.34): every pod upstream rejects, pod-security-standards rejects, for the control upstream tests; every
pod upstream admits, it admits. Images in these fixtures are untagged, so only this policy runs here."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gpu_policies import pod_security, pss
from gpu_policies.pods import pod_spec
from gpu_policies.resource import ResourceView

from policy_factories import check

FIXTURES = "pod-security-admission/restricted-v1.34"
# Fixture family -> the control that must reject it at restricted. Upstream's restricted profile replaces
# the baseline capabilities, hostPath and seccomp checks with its own, so those families land there.
EXPECTED_CONTROL = {
    "allowprivilegeescalation": "allowPrivilegeEscalation",
    "apparmorprofile": "appArmorProfile",
    "capabilities_baseline": "capabilities_restricted",
    "capabilities_restricted": "capabilities_restricted",
    "hostnamespaces": "hostNamespaces",
    "hostpathvolumes": "restrictedVolumes",
    "hostports": "hostPorts",
    "hostprobesandhostlifecycle": "hostProbesAndHostLifecycle",
    "privileged": "privileged",
    "procmount": "procMount",
    "restrictedvolumes": "restrictedVolumes",
    "runasnonroot": "runAsNonRoot",
    "runasuser": "runAsUser",
    "seccompprofile_baseline": "seccompProfile_restricted",
    "seccompprofile_restricted": "seccompProfile_restricted",
    "selinuxoptions": "seLinuxOptions",
    "sysctls": "sysctls",
    "windowshostprocess": "windowsHostProcess",
}


def _fixtures(upstream: Path, verdict: str) -> list[Path]:
    return sorted((upstream / FIXTURES / verdict).glob("*.yaml"))


def _findings(path: Path) -> tuple[list[pss.Finding], list[str]]:
    pod = yaml.safe_load(path.read_text())
    pod.setdefault("metadata", {})["namespace"] = "tenant-a"
    view = ResourceView("kubernetes:core/v1:Pod", pod, name=pod["metadata"]["name"])
    unknowns: list[str] = []
    ref = pod_spec(view, unknowns)
    assert ref is not None
    return pss.check(ref, pss.RESTRICTED, unknowns), unknowns


def test_fixture_counts(upstream: Path) -> None:
    """The whole upstream set is here: 74 pods to reject, 22 to admit."""
    assert (len(_fixtures(upstream, "fail")), len(_fixtures(upstream, "pass"))) == (74, 22)


def test_every_failing_fixture_fails_for_its_control(upstream: Path) -> None:
    wrong = {}
    for path in _fixtures(upstream, "fail"):
        findings, unknowns = _findings(path)
        family = re.sub(r"\d+$", "", path.stem)
        controls = {f.control for f in findings}
        if EXPECTED_CONTROL[family] not in controls or unknowns:
            wrong[path.name] = sorted(controls)
    assert wrong == {}


def test_every_passing_fixture_passes(upstream: Path) -> None:
    wrong = {}
    for path in _fixtures(upstream, "pass"):
        findings, unknowns = _findings(path)
        if findings or unknowns:
            wrong[path.name] = [f"{f.path}: {f.problem}" for f in findings] + unknowns
    assert wrong == {}


def test_the_policy_gives_the_fixture_verdicts_through_its_validator(upstream: Path) -> None:
    """The same verdicts through POLICY.validate, the path the SDK calls (messages, not findings)."""
    verdicts = {}
    for verdict in ("fail", "pass"):
        for path in _fixtures(upstream, verdict):
            pod = yaml.safe_load(path.read_text())
            pod.setdefault("metadata", {})["namespace"] = "tenant-a"
            reported = check(pod_security.POLICY, "kubernetes:core/v1:Pod", pod, name=path.stem)
            verdicts[f"{verdict}/{path.name}"] = "fail" if reported.messages else "pass"
            assert reported.unknown is None and reported.not_applicable is None
    assert {k for k, v in verdicts.items() if k.split("/")[0] != v} == set()


@pytest.mark.parametrize("name, message", [
    ("fail/privileged0.yaml",
     'Pod tenant-a/privileged0, container "container1" (containers[0]): spec.containers[0].securityContext.'
     "privileged is true. Fix: remove it or set it to false. [PSS baseline: privileged]"),
    ("fail/hostprobesandhostlifecycle1.yaml",
     'Pod tenant-a/hostprobesandhostlifecycle1, init container "initcontainer1" (initContainers[0]): '
     'spec.initContainers[0].readinessProbe.tcpSocket.host is "8.8.8.8". Fix: remove host, so the kubelet '
     "connects to the pod's own IP. [PSS baseline: hostProbesAndHostLifecycle]"),
    ("fail/sysctls0.yaml",
     'Pod tenant-a/sysctls0: spec.securityContext.sysctls[0].name is "othersysctl", which is not a safe '
     "sysctl. Fix: remove it; only these sysctls are allowed: kernel.shm_rmid_forced, "
     "net.ipv4.ip_local_port_range, net.ipv4.ip_local_reserved_ports, net.ipv4.ip_unprivileged_port_start, "
     "net.ipv4.ping_group_range, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, "
     "net.ipv4.tcp_keepalive_probes, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_rmem, net.ipv4.tcp_syncookies, "
     "net.ipv4.tcp_wmem. [PSS baseline: sysctls]"),
    ("fail/apparmorprofile0.yaml",
     'Pod tenant-a/apparmorprofile0: metadata.annotations["container.apparmor.security.beta.kubernetes.io/'
     'container1"] is "unconfined". Fix: set it to "runtime/default" or "localhost/<profile>", or remove it. '
     "[PSS baseline: appArmorProfile]"),
])
def test_representative_fixture_messages(upstream: Path, name: str, message: str) -> None:
    pod = yaml.safe_load((upstream / FIXTURES / name).read_text())
    pod["metadata"]["namespace"] = "tenant-a"
    reported = check(pod_security.POLICY, "kubernetes:core/v1:Pod", pod)
    assert message in reported.messages
