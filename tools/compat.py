"""`dev.py compat`: before an upgrade, whether the pinned chart and driver support the target, from shipped data.

    python -m tools.compat [--stack lab] [--kubernetes X.Y] [--chart vX.Y.Z] [--driver V] [--platform P] [--json]

The lab's Version Compatibility Check, run before every Kubernetes upgrade. No cluster is needed: the answers
come from NVIDIA's support tables as this project ships them (components/data: the Kubernetes releases each chart
release is validated on, per platform; the drivers NVIDIA documents per chart release; end-of-life driver
branches), and from the program's own config rules, which the stack config with the target must pass.
Each unspecified target is the stack's pin (`cluster.kubernetesVersion`, `gpuOperator.chart.version`,
`gpuOperator.driver.version`); the platform follows `cluster.containerRuntime` (rke2, k3s, else upstream
Kubernetes).

Exit codes: 0 supported (warnings allowed), 1 something is not supported (the finding says what to change),
2 a usage or config error.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path
from typing import Any

from tools.findings import ROOT, Finding, LoadedStack, UsageError, exit_code, load_stack, render_json, render_text

PLATFORM_NAMES = {"rke2": "RKE2", "k3s": "K3s", "kubernetes": "upstream Kubernetes"}


def _minor_key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")
    return int(major), int(minor)


def kubernetes_finding(chart: str, kubernetes: str, platform: str) -> Finding:
    """Is `kubernetes` in NVIDIA's validated list for `chart` on `platform`? If not, which releases list it."""
    from components.releases import kubernetes_support, supported_releases

    support = kubernetes_support()
    listed = support.get((chart, platform), ())
    name = PLATFORM_NAMES[platform]
    subject = f"Kubernetes {kubernetes} on {name}"
    expected = f"chart {chart} validated on {name} {kubernetes}"
    if kubernetes in listed:
        return Finding("kubernetes", subject, "pass", expected,
                       f"chart {chart} lists {name} {listed[0]}-{listed[-1]}")
    found = (f"chart {chart} lists {name} {listed[0]}-{listed[-1]}" if listed
             else f"NVIDIA lists no {name} for chart {chart}")
    fitting = [release for release in supported_releases() if kubernetes in support.get((release, platform), ())]
    newer = [r for r in fitting if supported_releases()[r].key > supported_releases()[chart].key]
    if newer:
        action = (f"upgrade the chart first: chart releases listing {name} {kubernetes}: {', '.join(newer)}. Set "
                  f"gpu-platform:gpuOperator.chart.version: {newer[-1]} (see `python3 dev.py upgrade-plan --chart "
                  f"{newer[-1]}`), roll it out and run `python3 dev.py verify`, then upgrade the cluster")
    elif fitting:
        action = (f"only older chart releases list {name} {kubernetes} ({', '.join(fitting)}), and NVIDIA documents "
                  f"chart upgrades, not downgrades: keep the cluster on a release {chart} lists")
    else:
        newest = max((r for r in supported_releases() if support.get((r, platform))),
                     key=lambda r: supported_releases()[r].key, default=None)
        newest_text = (f"; the newest, {newest}, lists up to {support[(newest, platform)][-1]}" if newest else "")
        action = (f"no chart release this program supports is validated on {name} {kubernetes}{newest_text}. Stay on "
                  "a listed Kubernetes release, or wait for an NVIDIA release that lists it (then add it to "
                  "components/data with its source)")
    return Finding("kubernetes", subject, "fail", expected, found, action)


def driver_finding(chart: str, driver: str, key: str, *, allow_undocumented: bool) -> Finding:
    """Is `driver` among the drivers NVIDIA documents for `chart` (its component matrix)?"""
    from components.driver import documented_problem
    from components.releases import supported_releases

    release = supported_releases()[chart]
    subject = f"driver {driver} with chart {chart}"
    expected = f"{driver} in NVIDIA's component matrix for {chart}"
    if driver.isdigit():  # a precompiled branch
        builds = [d.version for d in release.drivers if d.version.startswith(f"{driver}.")]
        if builds:
            return Finding("driver", subject, "pass", expected, f"branch R{driver} documented ({', '.join(builds)})")
        return Finding("driver", subject, "fail", expected, f"no R{driver} driver documented for {chart}",
                       f"pick a branch documented for {chart}: "
                       f"{', '.join(sorted({d.version.split('.')[0] for d in release.drivers}))}")
    problem = documented_problem(driver, release, key)
    if problem is None:
        flags = next((("default" if d.default else "") + (" recommended" if d.recommended else "")).strip()
                     for d in release.drivers if d.version == driver)
        return Finding("driver", subject, "pass", expected, f"documented{f' ({flags})' if flags else ''}")
    return Finding("driver", subject, "warn" if allow_undocumented else "fail", expected,
                   f"not documented for {chart}" + (" (driver.allowUndocumentedVersion is set)" if allow_undocumented
                                                    else ""), problem)


def lifecycle_finding(chart: str) -> Finding:
    from components.releases import supported_releases

    lifecycle = supported_releases()[chart].lifecycle
    supported = [r for r, release in supported_releases().items() if release.lifecycle == "supported"]
    if lifecycle == "supported":
        return Finding("lifecycle", f"chart {chart}", "pass", "a release NVIDIA supports", "supported by NVIDIA")
    return Finding("lifecycle", f"chart {chart}", "warn", "a release NVIDIA supports", lifecycle,
                   f"plan a chart upgrade to {supported[-1]} (`python3 dev.py upgrade-plan --chart {supported[-1]}`)")


def with_targets(raw: dict[str, Any], *, kubernetes: str | None, chart: str | None, driver: str | None
                 ) -> dict[str, Any]:
    """The stack's raw config with the targets in place (what the config would say after the upgrade)."""
    out = copy.deepcopy(raw)
    if kubernetes:
        out["cluster"]["kubernetesVersion"] = kubernetes
    if chart:
        out["gpuOperator"]["chart"]["version"] = chart
        out["gpuOperator"]["chart"].pop("path", None)  # an archive of the old release would not match
    if driver and out["gpuOperator"]["driver"].get("mode") == "operator":
        out["gpuOperator"]["driver"]["version"] = driver
    return out


def config_findings(raw: dict[str, Any], subject: str, said: list[Finding] = ()) -> list[Finding]:
    """The program's own rules on the config with the targets: what `pulumi preview` would refuse (a problem that
    an earlier finding in `said` already explains is not repeated)."""
    from components.stack_config import ConfigError, compile_config

    try:
        compile_config(raw, secret_keys=("registryPassword",) if "registryPassword" in raw else ())
    except ConfigError as error:
        explained = {finding.action for finding in said}
        return [Finding("stack-config", f"{subject}: {path}", "fail", "a config the program accepts",
                        "refused, as the driver finding above says" if message in explained else message,
                        "change the stack config as the message says (or choose another target)")
                for path, message in error.problems]
    return [Finding("stack-config", subject, "pass", "a config the program accepts",
                    "accepted (the same validation as `pulumi preview`)")]


def compat(loaded: LoadedStack, *, kubernetes: str | None = None, chart: str | None = None,
           driver: str | None = None, platform: str | None = None) -> tuple[list[Finding], list[str]]:
    """Every finding for the targets, and notes on what to change once they are reached."""
    from components.releases import SUPPORT_PLATFORMS, supported_releases

    stack = loaded.stack
    kubernetes = kubernetes or stack.cluster.kubernetes_version
    chart = chart or stack.gpu_operator.chart.version
    platform = platform or SUPPORT_PLATFORMS[stack.cluster.container_runtime]
    if not re.fullmatch(r"1\.\d{1,2}", kubernetes):
        raise UsageError(f"--kubernetes {kubernetes!r}: give a Kubernetes minor release such as 1.36")
    if chart not in supported_releases():
        raise UsageError(f"--chart {chart!r} is not a chart release this program supports "
                         f"({', '.join(supported_releases())})")
    mode = stack.gpu_operator.driver
    findings = [kubernetes_finding(chart, kubernetes, platform), lifecycle_finding(chart)]
    drivers: list[tuple[str, str]] = []
    if driver:
        drivers = [(driver, "gpuOperator.driver.version")]
    elif mode.mode == "operator":
        drivers = [(mode.version, "gpuOperator.driver.version")]
    elif mode.mode == "perPool":
        drivers = [(p.version, f"gpuOperator.driver.pools[{i}].version") for i, p in enumerate(mode.pools or [])]
    for version, key in drivers:
        findings.append(driver_finding(chart, version, key, allow_undocumented=mode.allow_undocumented_version))
    notes = []
    if mode.mode == "host" and not driver:
        notes.append(f"driver.mode: host: the hosts' driver ({mode.host_version}) is yours to keep compatible; "
                     "NVIDIA's matrix lists the drivers the operator installs")
    if driver and mode.mode != "operator":
        notes.append(f"--driver was judged against {chart}; the stack's driver.mode is {mode.mode}, so the config "
                     "check below keeps the stack's own driver settings")
    findings += config_findings(with_targets(loaded.raw, kubernetes=kubernetes, chart=chart, driver=driver),
                                "the stack config with the targets", findings)
    changes = []
    if kubernetes != stack.cluster.kubernetes_version:
        changes.append(f"gpu-platform:cluster.kubernetesVersion: \"{kubernetes}\" once the cluster runs it (it pins the "
                       "Pod Security label versions and the schemas `dev.py plan` checks against)")
    if chart != stack.gpu_operator.chart.version:
        changes.append(f"gpu-platform:gpuOperator.chart.version: {chart}")
    if driver and mode.mode == "operator" and driver != mode.version:
        changes.append(f"gpu-platform:gpuOperator.driver.version: {driver}")
    if changes:
        notes.append("to reach the targets, change in Pulumi." + loaded.name + ".yaml: " + "; ".join(changes))
    return findings, notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="dev.py compat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="lab", help="the stack whose pins are the defaults (default: lab)")
    parser.add_argument("--program-dir", type=Path, default=ROOT, help=argparse.SUPPRESS)
    parser.add_argument("--kubernetes", help="the target Kubernetes minor release, e.g. 1.36 (default: the stack's)")
    parser.add_argument("--chart", help="the gpu-operator chart release, e.g. v26.7.0 (default: the stack's pin)")
    parser.add_argument("--driver", help="the driver version, e.g. 595.91.07 (default: the stack's pin)")
    parser.add_argument("--platform", choices=["rke2", "k3s", "kubernetes"],
                        help="NVIDIA's platform column (default: from cluster.containerRuntime)")
    parser.add_argument("--json", action="store_true", help="one JSON document for automation")
    args = parser.parse_args(argv)
    try:
        loaded = load_stack(args.stack, args.program_dir.resolve())
        findings, notes = compat(loaded, kubernetes=args.kubernetes, chart=args.chart, driver=args.driver,
                                 platform=args.platform)
    except UsageError as error:
        print(f"compat: {error}", file=sys.stderr)
        return 2
    stack = loaded.stack
    targets = {"kubernetes": args.kubernetes or stack.cluster.kubernetes_version,
               "chart": args.chart or stack.gpu_operator.chart.version,
               "driver": args.driver or stack.gpu_operator.driver.version or stack.gpu_operator.driver.host_version}
    if args.json:
        sys.stdout.write(render_json({"command": "compat", "stack": args.stack, "targets": targets}, findings, notes))
    else:
        title = (f"compat: stack {args.stack}, Kubernetes {targets['kubernetes']}, chart {targets['chart']}"
                 + (f", driver {targets['driver']}" if targets["driver"] else ""))
        sys.stdout.write(render_text(title, findings, notes))
    return exit_code(findings)


if __name__ == "__main__":
    sys.exit(main())
