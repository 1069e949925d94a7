"""A local Kubernetes cluster for the real tier: etcd, kube-apiserver, kube-controller-manager, kube-scheduler and
kwok on loopback, with certificates made per run, shaped like the lab's RKE2 cluster.

    python -m tools.cluster up [--dir DIR]     start one in the background; prints its kubeconfig
    python -m tools.cluster down [--dir DIR]   stop it and remove its folder
    python -m tools.cluster status [--dir DIR]

Admission is the API server's own, configured as RKE2's CIS profile configures it: Pod Security `restricted`
by default in every namespace but kube-system, cis-operator-system and tigera-operator, plus NodeRestriction,
ResourceQuota, LimitRanger, ServiceAccount and the rest of the default plugins, with RBAC and Node authorization.
No kubelet runs: one kwok per node keeps its lease and status, and walks the pods scheduled to it through
their lifecycle (Running and Ready; Succeeded for Job pods), so Deployments become available and hook Jobs
complete, while no container ever runs; stopping a node's kwok takes the node down. What that means for each
test is in docs/real-tier.md.

The nodes: `proj-k8sm01` (an RKE2 server: control-plane, etcd, master) and `proj-k8sw04` (the GPU worker,
advertising `nvidia.com/gpu`), with the labels RKE2 puts on its nodes. The prometheus-operator CRDs come from
the upstream data folder, in a `monitoring` namespace as kube-prometheus-stack would leave them.
"""
from __future__ import annotations

import argparse
import datetime
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tools.kube import Kube, KubeError
from tools.upstream import upstream_dir

K8S_MINOR = "1.34"
SERVICE_CIDR = "10.43.0.0/16"  # RKE2's default service range
CLUSTER_NAME = "lab-local"
SERVER_NODE = "proj-k8sm01"
GPU_NODE = "proj-k8sw04"
# Pod Security as RKE2's CIS profile configures it (rke2-pss.yaml): restricted unless a namespace says otherwise.
PSA_EXEMPT_NAMESPACES = ("kube-system", "cis-operator-system", "tigera-operator")


class ClusterError(Exception):
    """The cluster could not be started or reached; the message says which part and where its log is."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- certificates ---------------------------------------------------------------------------------------------

def _certificates(pki: Path) -> None:
    """A CA, the API server's serving certificate, client certificates per component, the service-account key."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    valid = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=2))

    def write_key(name: str, key: ec.EllipticCurvePrivateKey) -> None:
        path = pki / f"{name}.key"
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        path.chmod(0o600)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{CLUSTER_NAME}-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    write_key("ca", ca_key)
    (pki / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def issue(name: str, common_name: str, groups: tuple[str, ...] = (), server: bool = False) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                             *(x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups)])
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(valid[0]).not_valid_after(valid[1])
                   .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server
                                                         else ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False))
        if server:
            service_ip = next(ipaddress.ip_network(SERVICE_CIDR).hosts())
            builder = builder.add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
                x509.DNSName("kubernetes.default.svc"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                x509.IPAddress(service_ip)]), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        write_key(name, key)
        (pki / f"{name}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    issue("apiserver", "kube-apiserver", server=True)
    issue("admin", "lab-admin", ("system:masters",))
    issue("controller-manager", "system:kube-controller-manager")
    issue("scheduler", "system:kube-scheduler")
    issue("kwok", "kwok-controller", ("system:masters",))
    write_key("service-account", ec.generate_private_key(ec.SECP256R1()))
    sa_key = serialization.load_pem_private_key((pki / "service-account.key").read_bytes(), None)
    (pki / "service-account.pub").write_bytes(sa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


def write_kubeconfig(path: Path, server: str, pki: Path, user: str, context: str = CLUSTER_NAME) -> None:
    """A kubeconfig with the certificate paths inline as files (what kubectl, Helm and the provider read)."""
    config = {
        "apiVersion": "v1", "kind": "Config", "current-context": context, "preferences": {},
        "clusters": [{"name": CLUSTER_NAME, "cluster": {"server": server,
                                                        "certificate-authority": str(pki / "ca.crt")}}],
        "users": [{"name": user, "user": {"client-certificate": str(pki / f"{user}.crt"),
                                          "client-key": str(pki / f"{user}.key")}}],
        "contexts": [{"name": context, "context": {"cluster": CLUSTER_NAME, "user": user}}],
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)


# --- the cluster ------------------------------------------------------------------------------------------------

@dataclass
class State:
    """What `down` and `status` need to find a running cluster again (state.json in the cluster folder)."""

    server: str
    kubeconfig: str
    pids: dict[str, int] = field(default_factory=dict)


class LocalCluster:
    """One local cluster in `run_dir`: start, wait until ready, bootstrap the lab's shape, stop, clean."""

    def __init__(self, run_dir: Path, bin_dir: Path, *, upstream: Path | None = None):
        self.dir = run_dir
        self.bin = bin_dir
        self.upstream = upstream or upstream_dir()
        self.pki = run_dir / "pki"
        self.logs = run_dir / "logs"
        self.kubeconfig = run_dir / "kubeconfig"
        self.state: State | None = None
        self._processes: dict[str, subprocess.Popen[bytes]] = {}

    # lifecycle ----------------------------------------------------------------------------------------------
    def start(self, *, timeout: float = 180) -> None:
        """Start every component and bootstrap the lab's nodes and CRDs; stops what started if a step fails."""
        for binary in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "kubectl"):
            if not (self.bin / binary).exists():
                raise ClusterError(f"{self.bin / binary} is missing: build the toolchain with `python3 dev.py toolchain`")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        _certificates(self.pki)
        deadline = time.monotonic() + timeout
        try:
            self._start_etcd(deadline)
            self._start_apiserver(deadline)
            self._start_controllers()
            self._bootstrap(deadline)
        except BaseException:
            self.stop(remove=False)
            raise

    def stop(self, *, remove: bool = True, timeout: float = 20) -> None:
        """SIGTERM every component (newest first), SIGKILL what is left after `timeout`; then remove the folder."""
        pids = dict(self.state.pids) if self.state else {}
        pids.update({name: proc.pid for name, proc in self._processes.items()})
        for name in reversed(list(pids)):
            _signal(pids[name], signal.SIGTERM)
        end = time.monotonic() + timeout
        for name in reversed(list(pids)):
            while _alive(pids[name]) and time.monotonic() < end:
                proc = self._processes.get(name)
                if proc is not None:
                    try:
                        proc.wait(timeout=0.2)
                    except subprocess.TimeoutExpired:
                        pass
                else:
                    time.sleep(0.1)
            if _alive(pids[name]):
                _signal(pids[name], signal.SIGKILL)
        for proc in self._processes.values():
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._processes.clear()
        if remove and self.dir.exists():
            import shutil
            shutil.rmtree(self.dir, ignore_errors=True)

    def kube(self) -> Kube:
        assert self.state is not None, "the cluster is not started"
        return Kube.from_kubeconfig(self.kubeconfig)

    # components ---------------------------------------------------------------------------------------------
    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"{name}.log", "wb")
        proc = subprocess.Popen([str(self.bin / args[0]), *args[1:]], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=self.dir, start_new_session=True)
        log.close()
        self._processes[name] = proc
        self._save()
        return proc

    def _check_running(self, name: str) -> None:
        proc = self._processes[name]
        if proc.poll() is not None:
            tail = (self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-15:]
            raise ClusterError(f"{name} exited with code {proc.returncode}; its log ({self.logs / f'{name}.log'}) "
                               "ends with:\n  " + "\n  ".join(tail))

    def _start_etcd(self, deadline: float) -> None:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        self._spawn("etcd", ["etcd", "--name", "local", "--data-dir", str(self.dir / "etcd"),
                             "--listen-client-urls", self.etcd_url, "--advertise-client-urls", self.etcd_url,
                             "--listen-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
                             "--initial-cluster", f"local=http://127.0.0.1:{peer}",
                             "--listen-metrics-urls", f"http://127.0.0.1:{free_port()}",
                             "--unsafe-no-fsync", "--quota-backend-bytes", str(4 << 30), "--log-level", "warn"])
        _wait(deadline, "etcd to answer on /health", lambda: self._check_running("etcd") or _http_ok(
            f"{self.etcd_url}/health"))

    def _start_apiserver(self, deadline: float) -> None:
        port = free_port()
        server = f"https://127.0.0.1:{port}"
        admission = self.dir / "admission.json"
        admission.write_text(json.dumps({
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": "PodSecurity", "configuration": {
                "apiVersion": "pod-security.admission.config.k8s.io/v1", "kind": "PodSecurityConfiguration",
                "defaults": {"enforce": "restricted", "enforce-version": "latest", "audit": "restricted",
                             "audit-version": "latest", "warn": "restricted", "warn-version": "latest"},
                "exemptions": {"usernames": [], "runtimeClasses": [], "namespaces": list(PSA_EXEMPT_NAMESPACES)},
            }}],
        }))
        pki = self.pki
        self._spawn("kube-apiserver", [
            "kube-apiserver", f"--etcd-servers={self.etcd_url}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={port}", f"--cert-dir={pki}",
            f"--tls-cert-file={pki / 'apiserver.crt'}", f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={pki / 'ca.crt'}", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--admission-control-config-file={admission}", "--allow-privileged=true",
            f"--service-account-issuer={server}", f"--service-account-key-file={pki / 'service-account.pub'}",
            f"--service-account-signing-key-file={pki / 'service-account.key'}",
            "--endpoint-reconciler-type=none", "--profiling=false", "--v=1",
        ])
        write_kubeconfig(self.kubeconfig, server, pki, "admin")
        for component in ("controller-manager", "scheduler", "kwok"):
            write_kubeconfig(self.dir / f"{component}.kubeconfig", server, pki, component)
        self.state = State(server=server, kubeconfig=str(self.kubeconfig), pids=self.state.pids if self.state else {})
        self._save()
        kube = Kube.from_kubeconfig(self.kubeconfig)
        _wait(deadline, "kube-apiserver to be ready (/readyz)",
              lambda: self._check_running("kube-apiserver") or kube.ready())

    def _start_controllers(self) -> None:
        pki = self.pki
        self._spawn("kube-controller-manager", [
            "kube-controller-manager", f"--kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
            f"--authentication-kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
            f"--authorization-kubeconfig={self.dir / 'controller-manager.kubeconfig'}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}",
            f"--service-account-private-key-file={pki / 'service-account.key'}", f"--root-ca-file={pki / 'ca.crt'}",
            f"--cluster-signing-cert-file={pki / 'ca.crt'}", f"--cluster-signing-key-file={pki / 'ca.key'}",
            "--use-service-account-credentials=true", f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--controllers=*,-nodeipam,-service-lb-controller,-cloud-node-lifecycle-controller",
            "--v=1",
        ])
        self._spawn("kube-scheduler", [
            "kube-scheduler", f"--kubeconfig={self.dir / 'scheduler.kubeconfig'}",
            f"--authentication-kubeconfig={self.dir / 'scheduler.kubeconfig'}",
            f"--authorization-kubeconfig={self.dir / 'scheduler.kubeconfig'}",
            "--leader-elect=false", "--bind-address=127.0.0.1", f"--secure-port={free_port()}", "--v=1",
        ])
        for node in (SERVER_NODE, GPU_NODE):
            self.node_up(node)

    # simulated kubelets: one kwok per node, so that one node can go down ----------------------------------
    def node_up(self, name: str) -> None:
        """Start the node's kwok: its lease is renewed and its pods are walked through their lifecycle."""
        stages = self.bin.parent / "share" / "kwok-stages.yaml"
        self._spawn(f"kwok-{name}", [
            "kwok", f"--kubeconfig={self.dir / 'kwok.kubeconfig'}", f"--config={stages}",
            f"--manage-single-node={name}", f"--server-address=127.0.0.1:{free_port()}",
            "--node-lease-duration-seconds=40", "--node-ip=127.0.0.1",
        ])

    def node_down(self, name: str, timeout: float = 20) -> None:
        """Stop the node's kwok, as if its kubelet died: no more lease renewals, its pods stay as they are. The
        node controller marks it NotReady after its grace period (50 s) and taints it unreachable."""
        proc = self._processes.pop(f"kwok-{name}")
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
        if self.state is not None:
            self.state.pids.pop(f"kwok-{name}", None)
        self._save()

    # the lab's shape ----------------------------------------------------------------------------------------
    def _bootstrap(self, deadline: float) -> None:
        kube = Kube.from_kubeconfig(self.kubeconfig)
        _wait(deadline, "the default service account and RBAC bootstrap roles",
              lambda: self._all_running() or kube.exists("rbac.authorization.k8s.io/v1", "ClusterRole", "admin"))
        for node in lab_nodes():
            kube.create(node)
        for name in ("kube-controller-manager", "kube-scheduler", f"kwok-{SERVER_NODE}", f"kwok-{GPU_NODE}"):
            self._check_running(name)
        crds = sorted((self.upstream / "prometheus-operator").glob("*.yaml"))
        if not crds:
            raise ClusterError(f"no prometheus-operator CRDs in {self.upstream / 'prometheus-operator'}; "
                               "point GPU_PLATFORM_UPSTREAM at the shared upstream data folder")
        self.kubectl("apply", "--server-side", "--field-manager=kube-prometheus-stack",
                     *(arg for crd in crds for arg in ("-f", str(crd))))
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {
            "name": "monitoring", "labels": {"app.kubernetes.io/managed-by": "Helm",
                                             "pod-security.kubernetes.io/enforce": "privileged"}}})
        for crd in ("prometheusrules", "servicemonitors", "podmonitors"):
            _wait(deadline, f"the {crd}.monitoring.coreos.com CRD to be established",
                  lambda crd=crd: kube.crd_established(f"{crd}.monitoring.coreos.com"))
        _wait(deadline, "both nodes Ready (kwok)", lambda: self._all_running() or all(
            kube.node_ready(name) for name in (SERVER_NODE, GPU_NODE)))
        _wait(deadline, "the default namespace's service account",
              lambda: kube.exists("v1", "ServiceAccount", "default", namespace="default"))

    def _all_running(self) -> bool:
        for name in self._processes:
            self._check_running(name)
        return False

    def kubectl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([str(self.bin / "kubectl"), f"--kubeconfig={self.kubeconfig}", *args],
                                capture_output=True, text=True, check=False, timeout=120)
        if check and result.returncode != 0:
            raise ClusterError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
        return result

    # state --------------------------------------------------------------------------------------------------
    def _save(self) -> None:
        if self.state is None:
            self.state = State(server="", kubeconfig=str(self.kubeconfig))
        self.state.pids.update({name: proc.pid for name, proc in self._processes.items()})
        (self.dir / "state.json").write_text(json.dumps(asdict(self.state), indent=2))

    @classmethod
    def attach(cls, run_dir: Path, bin_dir: Path) -> "LocalCluster":
        """A handle on a cluster that `up` started in another process."""
        state_file = run_dir / "state.json"
        if not state_file.exists():
            raise ClusterError(f"no cluster in {run_dir} (no state.json); start one with `python3 dev.py cluster up`")
        cluster = cls(run_dir, bin_dir)
        cluster.state = State(**json.loads(state_file.read_text()))
        return cluster


def lab_nodes() -> list[dict]:
    """The lab's two node kinds as RKE2 registers them, for kwok to keep Ready."""
    def node(name: str, labels: dict[str, str], capacity: dict[str, str]) -> dict:
        base = {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "kubernetes.io/hostname": name,
                "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64",
                "node.kubernetes.io/instance-type": "rke2"}
        return {"apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "labels": {**base, **labels},
                             "annotations": {"rke2.io/hostname": name}},
                "status": {"capacity": capacity, "allocatable": capacity,
                           "nodeInfo": {"kubeletVersion": "v1.34.4+rke2r1", "containerRuntimeVersion":
                                        "containerd://2.1.5-k3s1", "osImage": "Ubuntu 24.04.3 LTS",
                                        "operatingSystem": "linux", "architecture": "amd64"}}}
    return [
        node(SERVER_NODE, {"node-role.kubernetes.io/control-plane": "true", "node-role.kubernetes.io/etcd": "true",
                           "node-role.kubernetes.io/master": "true"},
             {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"}),
        node(GPU_NODE, {}, {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "200Gi",
                            "nvidia.com/gpu": "4"}),
    ]


def _signal(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a child we started and that exited but was not reaped yet
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _http_ok(url: str) -> bool:
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _wait(deadline: float, what: str, ready: Callable[[], bool | None], interval: float = 0.25) -> None:
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except ClusterError:
            raise
        except (KubeError, OSError) as error:
            last_error = error
        time.sleep(interval)
    raise ClusterError(f"timed out waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


# --- command line -----------------------------------------------------------------------------------------------

def default_dir() -> Path:
    base = os.environ.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpu-platform" / "cluster"


def main(argv: list[str] | None = None) -> int:
    from tools import toolchain

    parser = argparse.ArgumentParser(prog="dev.py cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=default_dir(), help="the cluster's folder (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        bin_dir = toolchain.ensure()
        if args.action == "up":
            if (args.dir / "state.json").exists():
                raise ClusterError(f"a cluster already runs from {args.dir}; `python3 dev.py cluster down` first")
            cluster = LocalCluster(args.dir, bin_dir)
            cluster.start()
            print(cluster.kubeconfig)
            return 0
        if not (args.dir / "state.json").exists():
            if args.action == "down":
                print(f"no cluster in {args.dir}; nothing to stop", file=sys.stderr)
                return 0
        cluster = LocalCluster.attach(args.dir, bin_dir)
        if args.action == "down":
            cluster.stop()
            print(f"stopped and removed {args.dir}", file=sys.stderr)
            return 0
        running = {name: _alive(pid) for name, pid in cluster.state.pids.items()}
        print(json.dumps({"kubeconfig": cluster.state.kubeconfig, "server": cluster.state.server,
                          "running": running}, indent=2))
        return 0 if all(running.values()) else 1
    except (ClusterError, toolchain.ToolchainError) as error:
        print(f"cluster: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
