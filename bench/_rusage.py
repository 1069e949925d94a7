"""Run a module as ``python -m <module> <args>`` would, then record this process's resource use.

    BENCH_RUSAGE_FILE=out.json python -m bench._rusage tools.plan --stack lab
    BENCH_PROFILE_FILE=plan.prof python -m bench._rusage tools.plan --stack lab    (cProfile of the module)

The JSON file gets the process's own peak RSS and CPU time (getrusage RUSAGE_SELF) and those of its
waited-for children (RUSAGE_CHILDREN: the largest child's peak RSS, CPU time summed). For tools.plan the only
child is the policy pack, which the plan ends and reaps before it exits, so the figures are the plan's and the
pack's. tools.plan ends with os._exit (it skips interpreter teardown); the recording runs before that too.
"""
from __future__ import annotations

import json
import os
import resource
import runpy
import sys

_real_exit = os._exit
_finalizers: list = []


def _finish() -> None:
    while _finalizers:
        _finalizers.pop()()


def _exit(code: int) -> None:
    sys.stdout.flush()
    _finish()
    _real_exit(code)


def _write_rusage(path: str) -> None:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(path, "w") as handle:
        json.dump({"self_maxrss_kb": own.ru_maxrss, "self_cpu": own.ru_utime + own.ru_stime,
                   "children_maxrss_kb": children.ru_maxrss,
                   "children_cpu": children.ru_utime + children.ru_stime}, handle)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m bench._rusage MODULE [ARGS...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    if path := os.environ.get("BENCH_RUSAGE_FILE"):
        _finalizers.append(lambda: _write_rusage(path))
    profiler = None
    if profile_path := os.environ.get("BENCH_PROFILE_FILE"):
        import cProfile

        profiler = cProfile.Profile()
        _finalizers.append(lambda: (profiler.disable(), profiler.dump_stats(profile_path)))
        profiler.enable()
    os._exit = _exit
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        sys.stdout.flush()
        _finish()


if __name__ == "__main__":
    main()
