"""Real engine: `pulumi preview` of the lab stack with and without the pack, `pulumi up`, and the offline plan.

    venv/bin/python -m bench.real_engine [--runs 5]

On a local cluster of its own (tools/cluster.py) with the toolchain's CLI and provider, as the real tier runs
them: each preview is a whole CLI command (the program host's start included), alternated with and without
`--policy-pack`; each `up` deploys the lab stack into an empty cluster and is destroyed before the next. The
offline plan (`python -m tools.plan --stack lab`, mock engine plus the pack) runs alternately with the previews,
and its ratio to the preview with the pack is printed. Medians of `--runs` runs.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def median_line(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main(argv: list[str] | None = None) -> int:
    from tools import toolchain
    from tools.cluster import LocalCluster
    from tools.engine import Engine
    from tools.stacks import Stack

    parser = argparse.ArgumentParser(prog="python -m bench.real_engine", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    bin_dir = toolchain.ensure()
    with tempfile.TemporaryDirectory(prefix="bench-real-") as tmp:
        work = Path(tmp)
        cluster = LocalCluster(work / "cluster", bin_dir)
        started = time.perf_counter()
        cluster.start()
        print(f"local cluster ready in {time.perf_counter() - started:.1f} s", flush=True)
        try:
            engine = Engine(bin_dir, work / "pulumi", kubeconfig=cluster.kubeconfig)
            engine.prepare()
            stack = Stack(engine, work / "project", "bench")
            stack.init()
            stack.preview()  # warm: plugin load, bytecode

            def timed(call) -> float:
                began = time.perf_counter()
                result = call()
                elapsed = time.perf_counter() - began
                if result.returncode != 0:
                    raise SystemExit(f"a benchmarked command failed:\n{result.output}")
                return elapsed

            def offline() -> subprocess.CompletedProcess[str]:
                done = subprocess.run([sys.executable, "-m", "tools.plan", "--stack", "lab"], cwd=ROOT,
                                      capture_output=True, text=True)
                done.output = done.stdout + done.stderr  # type: ignore[attr-defined]
                return done

            times: dict[str, list[float]] = {"with": [], "without": [], "offline": [], "up": []}
            for _ in range(args.runs):
                times["with"].append(timed(stack.preview))
                times["without"].append(timed(lambda: stack.preview(policy=False)))
                times["offline"].append(timed(offline))
            for _ in range(args.runs):
                times["up"].append(timed(stack.up))
                stack.pulumi("state", "unprotect", "--all", "--yes")
                timed(stack.destroy)
        finally:
            cluster.stop()
    with_pack, without = statistics.median(times["with"]), statistics.median(times["without"])
    print(f"real pulumi preview, lab stack, with the pack:    {median_line(times['with'])}")
    print(f"real pulumi preview, lab stack, without the pack: {median_line(times['without'])}")
    print(f"  the pack adds {with_pack - without:.2f} s ({with_pack / without:.2f}x)")
    print(f"real pulumi up (preview + update, 46 resources, the chart installed by Helm): {median_line(times['up'])}")
    print(f"offline plan (tools.plan --stack lab): {median_line(times['offline'])}; "
          f"{statistics.median(times['offline']) / with_pack:.2f}x the real preview with the pack")
    return 0


if __name__ == "__main__":
    sys.exit(main())
