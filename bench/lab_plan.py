"""Lab plan: the offline plan with verdicts of the lab stack vs a bare import of the same pulumi_kubernetes modules.

    venv/bin/python -m bench.lab_plan [--runs 9]

The baseline imports exactly the pulumi_kubernetes modules the plan ends up importing (read from a plan run,
lazily loaded ones included), in a fresh interpreter. Both are whole commands as a reviewer starts them
(interpreter start included), run alternately in one session; the figures are medians. Target: ratio <= 1.3.
Both run with Python's bytecode cache on, as on a reviewer's machine (PYTHONDONTWRITEBYTECODE is removed from
their environment; the installed packages have their bytecode from pip, the project's own is written by the
warm-up run).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.3
PLAN = [sys.executable, "-m", "tools.plan", "--stack", "lab"]
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def plan_modules() -> list[str]:
    """The pulumi_kubernetes modules a lab plan imports (the plan run in-process, then sys.modules read)."""
    probe = ("import contextlib, io, json, sys\n"
             "from tools.plan import main\n"
             "with contextlib.redirect_stdout(io.StringIO()):\n"
             "    code = main(['--stack', 'lab'])\n"
             "print(json.dumps({'code': code, 'modules': sorted(m for m in sys.modules "
             "if m == 'pulumi_kubernetes' or m.startswith('pulumi_kubernetes.'))}))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                            env=ENV)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    if report["code"] != 0:
        raise SystemExit(f"the lab plan did not pass (exit {report['code']}); fix that before timing it")
    return report["modules"]


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=ENV)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.lab_plan", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="runs of each command (alternated)")
    args = parser.parse_args(argv)
    modules = plan_modules()
    baseline = [sys.executable, "-c", "import " + ", ".join(modules)]
    # The plan ends with os._exit once its report is flushed, skipping interpreter teardown; a bare import pays
    # it. The same import ending the same way shows how much of the margin that is (a figure, not the target).
    no_teardown = [sys.executable, "-c", "import os, " + ", ".join(modules) + "; os._exit(0)"]
    timed(baseline), timed(PLAN), timed(no_teardown)  # warm the file cache and .pyc files
    times: dict[str, list[float]] = {"plan": [], "import": [], "no_teardown": []}
    for _ in range(args.runs):
        times["import"].append(timed(baseline))
        times["plan"].append(timed(PLAN))
        times["no_teardown"].append(timed(no_teardown))
    med = {name: statistics.median(values) for name, values in times.items()}

    def line(name: str) -> str:
        return f"median {med[name]:.3f} s (min {min(times[name]):.3f}, max {max(times[name]):.3f})"

    ratio = med["plan"] / med["import"]
    print(f"lab plan with verdicts: {line('plan')} over {args.runs} runs")
    print(f"bare import of the same {len(modules)} pulumi_kubernetes modules: {line('import')}")
    print(f"ratio {ratio:.2f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'missed'}")
    print(f"the same import ended with os._exit(0), no interpreter teardown, as the plan ends: {line('no_teardown')};"
          f" ratio {med['plan'] / med['no_teardown']:.2f}")
    return 0

if __name__ == "__main__":
    sys.exit(main())
