"""Build, or reuse, the real tier's toolchain: every binary from a pinned Go module, cached per user.

What is built, and at which version, is data: the Go modules under `toolchain/` (one per tool group, each
with its go.mod and go.sum; see toolchain/README.md for why each version). This file only knows how to
build them. The result goes into `$XDG_CACHE_HOME/gpu-platform/toolchain/<key>/bin` (default
`~/.cache/...`), where `<key>` hashes every file under `toolchain/`, the Go version and this recipe, so a
fresh clone on the same machine reuses it and a pin change builds a new one beside the old.

Only the Python standard library is used: `dev.py` runs this before any virtualenv exists.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODULES = ROOT / "toolchain"
# Bump when the recipe below changes what ends up in bin/ (flags, names), so old caches are not reused.
RECIPE = "4"
MIN_GO = (1, 26)

K8S_VERSION = "v1.34.4"
PULUMI_VERSION = "v3.274.1"
PROVIDER_VERSION = "4.25.0"  # the release tag of the provider commit pinned in toolchain/provider/go.mod
HELM_VERSION = "v3.18.6"


def _k8s_version_flags() -> str:
    major, minor = K8S_VERSION[1:].split(".")[:2]
    flags = []
    for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        flags += [f"-X {package}.gitVersion={K8S_VERSION}", f"-X {package}.gitMajor={major}",
                  f"-X {package}.gitMinor={minor}", f"-X {package}.gitTreeState=clean"]
    return " ".join(flags)


@dataclass(frozen=True)
class Binary:
    """One binary: the module folder under toolchain/ that pins it, its package, and link-time version flags."""

    name: str
    module: str
    package: str
    ldflags: str = ""
    prepare: Callable[[Path], None] | None = None


def _provider_sources(build_dir: Path) -> None:
    """Write the two files upstream's Makefile generates and its main embeds (see toolchain/provider/main.go)."""
    module = _module_dir(build_dir, "github.com/pulumi/pulumi-kubernetes/provider/v4")
    command = module / "cmd" / "pulumi-resource-kubernetes"
    schema = json.loads((command / "schema.json").read_text())
    schema["version"] = PROVIDER_VERSION
    (build_dir / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((command / "terraform-mapping.json").read_text())
    (build_dir / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))


# kwok's own stage definitions (Stage objects shipped in its module): nodes become Ready and renew their leases;
# pods scheduled to them become Running and Ready, Job pods Succeeded, deleted pods go away.
KWOK_STAGES = ("node/fast/node-initialize.yaml", "node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
               "pod/fast/pod-ready.yaml", "pod/fast/pod-complete.yaml", "pod/fast/pod-delete.yaml")


def _kwok_stages(work: Path, share: Path) -> None:
    module = _module_dir(work / "kwok", "sigs.k8s.io/kwok")
    documents = [(module / "kustomize" / "stage" / stage).read_text().strip() for stage in KWOK_STAGES]
    (share / "kwok-stages.yaml").write_text("\n---\n".join(documents) + "\n")


BINARIES = (
    Binary("etcd", "etcd", "go.etcd.io/etcd/server/v3"),
    Binary("kube-apiserver", "kubernetes", "k8s.io/kubernetes/cmd/kube-apiserver", _k8s_version_flags()),
    Binary("kube-controller-manager", "kubernetes", "k8s.io/kubernetes/cmd/kube-controller-manager",
           _k8s_version_flags()),
    Binary("kube-scheduler", "kubernetes", "k8s.io/kubernetes/cmd/kube-scheduler", _k8s_version_flags()),
    Binary("kubectl", "kubernetes", "k8s.io/kubernetes/cmd/kubectl", _k8s_version_flags()),
    Binary("kwok", "kwok", "sigs.k8s.io/kwok/cmd/kwok"),
    Binary("helm", "helm", "helm.sh/helm/v3/cmd/helm", f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}"),
    Binary("pulumi", "pulumi", "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi",
           f"-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={PULUMI_VERSION}"),
    Binary("pulumi-resource-kubernetes", "provider", ".",
           f"-X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={PROVIDER_VERSION}",
           prepare=_provider_sources),
)


class ToolchainError(Exception):
    """A step failed; the message says which and what to do."""


def say(message: str) -> None:
    print(f"toolchain: {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gpu-platform" / "toolchain"


def go_version() -> str:
    go = shutil.which("go")
    if go is None:
        raise ToolchainError("the real tier is built with Go 1.26 or newer, and `go` is not on PATH; install Go "
                             "(https://go.dev/doc/install, or Debian's golang package when it is 1.26+) and run again")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise ToolchainError(f"Go {MIN_GO[0]}.{MIN_GO[1]} or newer is needed to build the toolchain (kwok v0.8.0 "
                             f"requires it); `go env GOVERSION` says {out or 'nothing'}")
    return out


def key(go: str) -> str:
    """Hash of every pinned input: the toolchain modules, the Go version and this recipe."""
    digest = hashlib.sha256(f"recipe {RECIPE}\n{go}\n".encode())
    for path in sorted(p for p in MODULES.rglob("*") if p.is_file() and p.name != "README.md"):
        digest.update(str(path.relative_to(MODULES)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _go_env() -> dict[str, str]:
    env = dict(os.environ)
    # -trimpath: no machine paths in the binaries; -mod=readonly: go.sum is the pin, never rewritten here.
    env["GOFLAGS"] = "-trimpath -mod=readonly -buildvcs=false"
    env["GOTOOLCHAIN"] = "local"
    env["CGO_ENABLED"] = "0"
    env.pop("GOWORK", None)
    env["GOWORK"] = "off"
    return env


def _module_dir(cwd: Path, module: str) -> Path:
    result = subprocess.run(["go", "mod", "download", "-json", module], cwd=cwd, env=_go_env(),
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise ToolchainError(f"`go mod download {module}` failed in {cwd.name}:\n{result.stderr or result.stdout}")
    return Path(json.loads(result.stdout)["Dir"])


def _build(binary: Binary, out_dir: Path, work: Path) -> float:
    source = MODULES / binary.module
    build_dir = work / binary.module
    if not build_dir.exists():
        shutil.copytree(source, build_dir)
    if binary.prepare is not None:
        binary.prepare(build_dir)
    started = time.monotonic()
    command = ["go", "build", "-ldflags", f"-s -w {binary.ldflags}".strip(), "-o", str(out_dir / binary.name),
               binary.package]
    result = subprocess.run(command, cwd=build_dir, env=_go_env(), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout).splitlines()[-30:])
        raise ToolchainError(f"building {binary.name} ({binary.package}, pinned in toolchain/{binary.module}/go.mod) "
                             f"failed:\n  {' '.join(command)}\n{tail}")
    return time.monotonic() - started


@contextmanager
def _locked(root: Path) -> Iterator[None]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure() -> Path:
    """The bin folder of the toolchain for the current pins, built first if the cache has none."""
    go = go_version()
    root = cache_root()
    target = root / key(go)
    stamp = target / "built.json"
    if stamp.exists():
        return target / "bin"
    with _locked(root):
        if stamp.exists():  # another process built it while we waited
            return target / "bin"
        say(f"building the real tier's toolchain with {go} into {target} (the first build takes a while; "
            "later runs reuse it)")
        started = time.monotonic()
        timings: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="build-", dir=root) as tmp:
            work, bin_dir, share = Path(tmp) / "src", Path(tmp) / "bin", Path(tmp) / "share"
            for folder in (work, bin_dir, share):
                folder.mkdir()
            for binary in BINARIES:
                say(f"building {binary.name} ...")
                timings[binary.name] = round(_build(binary, bin_dir, work), 1)
                say(f"built {binary.name} in {timings[binary.name]:.0f} s")
            _kwok_stages(work, share)
            if target.exists():
                shutil.rmtree(target)
            target.mkdir(parents=True)
            shutil.move(str(bin_dir), target / "bin")
            shutil.move(str(share), target / "share")
        total = round(time.monotonic() - started, 1)
        stamp.write_text(json.dumps({"go": go, "seconds": total, "binaries": timings}, indent=2) + "\n")
        say(f"toolchain ready in {total:.0f} s: {target / 'bin'}")
    return target / "bin"


def main() -> int:
    try:
        print(ensure())
    except ToolchainError as error:
        say(str(error))
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
