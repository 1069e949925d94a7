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
    timed(baseline), timed(PLAN)  # warm the file cache and .pyc files
    plan_times, import_times = [], []
    for _ in range(args.runs):
        import_times.append(timed(baseline))
        plan_times.append(timed(PLAN))
    plan_median, import_median = statistics.median(plan_times), statistics.median(import_times)
    ratio = plan_median / import_median
    print(f"lab plan with verdicts: median {plan_median:.3f} s over {args.runs} runs "
          f"(min {min(plan_times):.3f}, max {max(plan_times):.3f})")
    print(f"bare import of the same {len(modules)} pulumi_kubernetes modules: median {import_median:.3f} s "
          f"(min {min(import_times):.3f}, max {max(import_times):.3f})")
    print(f"ratio {ratio:.2f} (target <= {TARGET}): {'met' if ratio <= TARGET else 'missed'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
