"""How the offline plan grows with the fleet: synthetic stacks of 10, 100 and 1,000 GPU nodes.

Each stack is the lab's config (Pulumi.lab.yaml) grown to ``nodes`` GPU nodes and ``tenants`` tenant namespaces,
and kept valid, so the real program declares everything and the pack judges it:

- nodes cycle through the GPU products of components/gpus.py (seeded shuffle), 1-8 GPUs each, the lab's label
  and taint, a node-pool label; every sixth node takes a named sharing profile, MIG-capable nodes in every
  third pool get a MIG profile and a time-slicing or whole-GPU profile (MPS is never combined with MIG), and
  the MIG manager is on. MPS profiles stay within each product's client limit (16 before compute capability
  7.5);
- tenants are the lab's two tenants' shape (quota, defaults, both priority classes, a per-class GPU quota no
  larger than the namespace's), owned by a few teams; the tenants' GPU quotas together never exceed the GPUs
  the fleet advertises (GPUs x sharing replicas);
- monitoring as in the lab (one GpuCountDropped rule per node).

Each stack file goes into a temporary program directory under bench/.work/fleet (Pulumi.yaml and __main__.py
copied, ``components`` a symlink), and ``python -m tools.plan --stack fleet-<n> --program-dir <dir>
--policy-pack-config policies/config/lab.json`` runs as a subprocess: the real tool, with the pack over gRPC and
the schema checks, its text report discarded. The plan runs under bench/_rusage.py, which runs the module as
``python -m`` would and then reports the plan process's own peak RSS and time in cyclic GC, and each child's
peak RSS (the pack's, from os.wait4); a thread here samples plan and pack together as their summed proportional
set sizes (shared pages counted once). Wall time is measured here from spawn to exit. Sizes alternate within
each round; medians per size.

    venv/bin/python -m bench.fleet [--runs 5] [--runs-large 5] [--sizes 10,100,1000] [--quick] [--profile N]
                                   [--compare-gc [THRESHOLDS]] [--check]
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / "bench" / ".work" / "fleet"
PYTHON = Path(sys.executable)
# nodes -> tenant namespaces
SIZES = {10: 10, 100: 50, 1000: 100}
TARGET_SECONDS, TARGET_MB, TARGET_GROWTH = 10.0, 300.0, 12.0
# As on a user's machine, Python caches bytecode (this machine sets PYTHONDONTWRITEBYTECODE; bench/lab_plan.py
# removes it too): the plan and the pack it starts inherit this environment, and a warm-up run writes the cache.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
GC_EXPERIMENT = "700,10,10"  # Python's default thresholds, against the plan's own (tools/mockrun.PROGRAM_GC_THRESHOLD)
TEAMS = ("dataScience", "radio", "vision", "speech", "robotics")


# --- the synthetic stack configs --------------------------------------------------------------------------------

def lab_config() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "Pulumi.lab.yaml").read_text())["config"]


def fleet_config(nodes: int, tenants: int, seed: int = 11) -> dict[str, Any]:
    """The lab's config with ``nodes`` GPU nodes and ``tenants`` tenant namespaces (valid: see the docstring)."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from components.gpus import PRODUCTS

    rng = random.Random(seed)
    config = lab_config()
    operator = config["gpu-platform:gpuOperator"]
    operator["devicePlugin"]["sharing"] = {"default": "mps-4", "profiles": {
        "mps-4": {"mps": {"replicas": 4, "renameByDefault": False}},
        "mps-8": {"mps": {"replicas": 8, "renameByDefault": False}},
        "ts-4": {"timeSlicing": {"replicas": 4}},
        "whole": {},
    }}
    operator["migManager"] = {"enabled": True}
    operator["mig"] = {"strategy": "mixed"}
    products = sorted(PRODUCTS)
    rng.shuffle(products)
    replicas = {"mps-4": 4, "mps-8": 8, "ts-4": 4, "whole": 1}
    node_list, advertised = [], 0
    for index in range(nodes):
        product = PRODUCTS[products[index % len(products)]]
        pool = index // 25
        node: dict[str, Any] = {"name": f"gpu-{pool:03d}-{index:04d}", "gpu": product.product,
                                "gpuCount": rng.choice([1, 2, 4, 8]),
                                "labels": {"gpu": "true", "pool": f"pool-{pool:03d}"},
                                "taints": [{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}]}
        profile = "mps-4"  # the default
        if product.mig and pool % 3 == 0:
            node["migConfig"] = "all-1g.10gb"
            profile = node["sharing"] = rng.choice(["ts-4", "whole"])
        elif index % 6 == 0:
            profile = node["sharing"] = rng.choice(["mps-8", "ts-4", "whole"])
        node_list.append(node)
        advertised += node["gpuCount"] * replicas[profile]
    config["gpu-platform:nodes"] = node_list
    tenancy = config["gpu-platform:tenancy"]
    tenancy["groups"] = {"infrastructure": "lab:infrastructure", "security": "lab:security",
                         "operations": "lab:operations", **{team: f"lab:{team.lower()}" for team in TEAMS}}
    template = tenancy["tenants"][0]
    per_tenant = max(1, advertised // tenants)
    tenant_list = []
    for index in range(tenants):
        tenant = json.loads(json.dumps(template))
        tenant["namespace"] = f"team-{index:03d}"
        tenant["owner"] = TEAMS[index % len(TEAMS)]
        tenant["quota"]["gpu"] = per_tenant
        tenant["priorityGpuQuota"] = {"gpu-inference-high": max(1, per_tenant // 2)}
        tenant["allowExec"] = index % 4 == 0
        tenant_list.append(tenant)
    tenancy["tenants"] = tenant_list
    return config


def write_program(configs: dict[str, dict[str, Any]], dest: Path) -> Path:
    """A program directory like tests/test_plan.py's broken_program(): the real program, the given stacks."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(ROOT / name, dest / name)
    (dest / "components").symlink_to(ROOT / "components", target_is_directory=True)
    for stack, config in configs.items():
        (dest / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=False))
    return dest


# --- one measured plan ------------------------------------------------------------------------------------------

@dataclass
class Measurement:
    seconds: float
    plan_mb: float            # the plan process's own peak RSS
    pack_mb: float            # the policy pack's peak RSS
    others_mb: dict[str, float]  # other child processes of the plan (by module), peak RSS each
    pack_cpu: float
    exit_code: int
    resources: int
    gc_seconds: float = 0.0   # the plan process's time in cyclic GC, all generations
    gc_full: int = 0          # its full (generation 2) collections
    tree_mb: float = 0.0      # the largest PSS of the plan and its children together, sampled (0: not on Linux)

    @property
    def total_mb(self) -> float:
        """The sum of the processes' peaks: an upper bound of the plan's footprint at any moment."""
        return self.plan_mb + self.pack_mb + sum(self.others_mb.values())


class TreeRss:
    """Samples the memory of a process and its descendants together every few milliseconds (Linux /proc): their
    proportional set sizes summed (PSS: each shared page, such as libpython's and grpc's code, counted once
    across the processes instead of once in each), the footprint at one moment. The per-process peaks
    (getrusage) only bound it from above, and count the shared pages twice."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval, self.peak_kb = pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _tree(self, pid: int) -> list[int]:
        pids, index = [pid], 0
        while index < len(pids):
            try:
                for task in os.listdir(f"/proc/{pids[index]}/task"):
                    with open(f"/proc/{pids[index]}/task/{task}/children") as handle:
                        pids.extend(int(c) for c in handle.read().split())
            except OSError:
                pass
            index += 1
        return pids

    def _pss_kb(self, pid: int) -> int:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, sum(self._pss_kb(p) for p in self._tree(self.pid)))
            self._stop.wait(self.interval)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_kb / 1024


def _child_name(args: list[str]) -> str:
    if "pulumi.policy" in args:
        return "pack"
    return args[args.index("-m") + 1] if "-m" in args[:-1] else Path(args[0]).name if args else "?"


def plan_command(program: Path, stack: str, *extra: str) -> list[str]:
    return [str(PYTHON), "-m", "bench._rusage", "tools.plan", "--stack", stack, "--program-dir", str(program),
            "--policy-pack-config", str(ROOT / "policies" / "config" / "lab.json"), *extra]


def measure(program: Path, stack: str, gc_threshold: str | None = None) -> Measurement:
    """One plan, its text report (the default format) read for the resource count and discarded."""
    with tempfile.NamedTemporaryFile("r", suffix=".json", dir=WORK_DIR, delete=False) as report:
        usage_file = Path(report.name)
    env = {**ENV, "BENCH_RUSAGE_FILE": str(usage_file)}
    if gc_threshold:
        env["BENCH_GC_THRESHOLD"] = gc_threshold
    started = time.perf_counter()
    proc = subprocess.Popen(plan_command(program, stack), cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    sampler = TreeRss(proc.pid)
    stdout, stderr = proc.communicate()
    seconds = time.perf_counter() - started
    tree_mb = sampler.stop()
    try:
        usage = json.loads(usage_file.read_text())
    finally:
        usage_file.unlink(missing_ok=True)
    counted = re.search(r"^Resources: (\d+) \((\d+) components\)", stdout.decode(), re.M)
    if proc.returncode not in (0, 1) or not counted:
        raise RuntimeError(f"plan of {stack} exited {proc.returncode}:\n{stderr.decode()[-3000:]}")
    children = {_child_name(c["args"]): c for c in usage["children"]}
    pack = children.pop("pack", None)
    if pack is None:
        raise RuntimeError(f"plan of {stack}: the policy pack was not among the reaped children ({usage})")
    return Measurement(seconds, usage["self_maxrss_kb"] / 1024, pack["maxrss_kb"] / 1024,
                       {name: c["maxrss_kb"] / 1024 for name, c in children.items()}, pack["cpu"],
                       proc.returncode, int(counted[1]) + int(counted[2]), sum(usage["gc_seconds"]),
                       usage["gc_collections"][2], tree_mb)


def profile(program: Path, stack: str, out: Path) -> None:
    """cProfile the plan process (the pack runs unprofiled beside it); prints the top functions."""
    import pstats

    env = {**ENV, "BENCH_PROFILE_FILE": str(out)}
    subprocess.run(plan_command(program, stack, "--format", "json", "--output", os.devnull), cwd=ROOT, env=env,
                   check=False)
    stats = pstats.Stats(str(out))
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


def report(results: dict[int, list[Measurement]], title: str, judge: bool) -> bool:
    """Print the medians per size; with ``judge``, the targets. Returns whether a target was missed."""
    sizes = list(results)
    others = sorted({k for ms in results.values() for m in ms for k in m.others_mb})

    def med(values: Any) -> float:
        return statistics.median(list(values))

    print(f"fleet: {title}; median per size, peak RSS per process; tree: the largest sampled PSS of plan and "
          "pack together, over the runs")
    print(f"  {'nodes':>5} {'tenants':>7} {'resources':>9} {'runs':>4} {'time s':>7} {'min-max':>11} "
          f"{'plan MB':>7} {'pack MB':>7} " + "".join(f"{k + ' MB':>{max(8, len(k) + 3)}} " for k in others)
          + f"{'sum MB':>6} {'tree MB':>7} {'pack cpu s':>10} {'plan GC s':>9} {'full GCs':>8}")
    medians: dict[int, float] = {}
    missed = False
    for n in sizes:
        ms = results[n]
        medians[n] = med(m.seconds for m in ms)
        plan_mb, pack_mb, total_mb = med(m.plan_mb for m in ms), med(m.pack_mb for m in ms), med(m.total_mb for m in ms)
        tree_mb = max(m.tree_mb for m in ms)
        print(f"  {n:5} {SIZES[n]:7} {ms[0].resources:9} {len(ms):4} {medians[n]:7.2f} "
              f"{min(m.seconds for m in ms):5.2f}-{max(m.seconds for m in ms):5.2f} {plan_mb:7.0f} {pack_mb:7.0f} "
              + "".join(f"{med(m.others_mb.get(k, 0) for m in ms):>{max(8, len(k) + 3)}.0f} " for k in others)
              + f"{total_mb:6.0f} {tree_mb:7.0f} {med(m.pack_cpu for m in ms):10.2f} {med(m.gc_seconds for m in ms):9.2f} "
              f"{med(m.gc_full for m in ms):8.0f}")
        if n == 1000 and judge:
            largest = max(plan_mb, pack_mb, *(med(m.others_mb.get(k, 0) for m in ms) for k in others))
            together = tree_mb or total_mb  # sampled when /proc allows it, else the upper bound
            ok_time, ok_mem = medians[n] <= TARGET_SECONDS, largest <= TARGET_MB and together <= TARGET_MB
            missed |= not (ok_time and ok_mem)
            print(f"  1000 nodes: {medians[n]:.2f} s (target <= {TARGET_SECONDS:.0f} s: "
                  f"{'met' if ok_time else 'NOT met'}); largest process {largest:.0f} MB, plan and pack together "
                  f"{together:.0f} MB at most ({'sampled PSS' if tree_mb else 'the peaks summed'}; the RSS peaks summed "
                  f"{total_mb:.0f} MB) (target <= {TARGET_MB:.0f} MB: {'met' if ok_mem else 'NOT met'})")
    if 100 in medians and 1000 in medians:
        growth = medians[1000] / medians[100]
        missed |= judge and growth > TARGET_GROWTH
        print(f"  time(1000)/time(100) = {growth:.2f}" + (f" (target <= {TARGET_GROWTH:.0f}: "
              f"{'met' if growth <= TARGET_GROWTH else 'NOT met'})" if judge else "")
              + f"; resources grew {results[1000][0].resources / results[100][0].resources:.2f}x")
    if 10 in medians and 100 in medians:
        print(f"  time(100)/time(10) = {medians[100] / medians[10]:.2f}; resources grew "
              f"{results[100][0].resources / results[10][0].resources:.2f}x")
    return missed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.fleet", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per size (10 and 100 nodes)")
    parser.add_argument("--runs-large", type=int, default=5, help="runs of the 1,000-node stack")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="node counts, from 10, 100, 1000")
    parser.add_argument("--quick", action="store_true", help="one run of 10 and 100 nodes (a smoke test)")
    parser.add_argument("--profile", type=int, metavar="NODES", help="cProfile the plan of this size and stop")
    parser.add_argument("--compare-gc", metavar="THRESHOLDS", nargs="?", const=GC_EXPERIMENT,
                        help="also run each plan with these cyclic-GC thresholds while its program runs "
                             f"(default {GC_EXPERIMENT}, Python's own): the cyclic-GC finding in docs/benchmarks.md")
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.quick:
        sizes, args.runs, args.runs_large = [s for s in sizes if s < 1000] or [10], 1, 1
    unknown = [s for s in sizes if s not in SIZES]
    if unknown:
        parser.error(f"unknown sizes {unknown}; choose from {list(SIZES)}")
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    stacks = {f"fleet-{n}": fleet_config(n, SIZES[n]) for n in sorted(set(sizes) | ({args.profile} - {None}))}
    program = write_program(stacks, WORK_DIR / "program")
    if args.profile:
        profile(program, f"fleet-{args.profile}", WORK_DIR / f"fleet-{args.profile}.prof")
        return 0
    variants: dict[str, str | None] = {"as is": None}
    if args.compare_gc:
        variants[f"GC thresholds {args.compare_gc}"] = args.compare_gc
    results: dict[str, dict[int, list[Measurement]]] = {v: {n: [] for n in sizes} for v in variants}
    measure(program, f"fleet-{min(sizes)}")  # warm-up: the file cache and the project's bytecode cache
    for round_ in range(max(args.runs, args.runs_large)):
        for n in sizes:  # sizes, and variants, alternate within a round
            if round_ >= (args.runs_large if n >= 1000 else args.runs):
                continue
            for variant, threshold in variants.items():
                m = measure(program, f"fleet-{n}", threshold)
                results[variant][n].append(m)
                print(f"  round {round_ + 1}: {n:5} nodes{'' if threshold is None else ' (' + variant + ')'} "
                      f"{m.seconds:6.2f} s, plan {m.plan_mb:4.0f} MB, pack {m.pack_mb:4.0f} MB, "
                      + "".join(f"{k} {v:4.0f} MB, " for k, v in m.others_mb.items()) + f"exit {m.exit_code}",
                      flush=True)
    missed = report(results["as is"], "offline plan with verdicts (tools.plan, schema checks, pack over gRPC)", True)
    for variant in list(variants)[1:]:
        report(results[variant], f"the same with {variant} while the program runs (not the tool's setting)", False)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
