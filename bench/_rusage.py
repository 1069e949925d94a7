"""Run a module as ``python -m <module> <args>`` would, then record its resource use and its children's.

    BENCH_RUSAGE_FILE=out.json python -m bench._rusage tools.plan --stack lab
    BENCH_PROFILE_FILE=plan.prof python -m bench._rusage tools.plan --stack lab    (cProfile of the module)
    BENCH_GC_THRESHOLD=700,10,10 python -m bench._rusage tools.plan ...   (GC thresholds while the program runs)

The JSON file gets this process's peak RSS and CPU time (getrusage RUSAGE_SELF), every child started with
subprocess and reaped through it (its command, peak RSS and CPU time: os.waitpid is served by os.wait4, which
returns the child's own rusage), RUSAGE_CHILDREN (the largest reaped child's peak, all children's CPU), and
the cyclic garbage collector's collections and seconds per generation in this process (gc.callbacks).
For tools.plan the children are the policy pack and whatever helper processes the plan starts; the plan
ends with os._exit (it skips interpreter teardown), so the recording also runs before that.
"""
from __future__ import annotations

import gc
import json
import os
import resource
import runpy
import subprocess
import sys
import time
from typing import Any

_real_exit, _real_waitpid, _real_popen_init = os._exit, os.waitpid, subprocess.Popen.__init__
_finalizers: list = []
_commands: dict[int, list[str]] = {}
_children: list[dict[str, Any]] = []
_gc = {"collections": [0, 0, 0], "seconds": [0.0, 0.0, 0.0], "started": 0.0}


def _gc_callback(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _gc["started"] = time.perf_counter()
    else:
        generation = info["generation"]
        _gc["collections"][generation] += 1
        _gc["seconds"][generation] += time.perf_counter() - _gc["started"]


def _finish() -> None:
    while _finalizers:
        _finalizers.pop()()


def _exit(code: int) -> None:
    sys.stdout.flush()
    _finish()
    _real_exit(code)


def _waitpid(pid: int, options: int) -> tuple[int, int]:
    reaped, status, usage = os.wait4(pid, options)
    if reaped:
        _children.append({"pid": reaped, "args": _commands.get(reaped, []), "maxrss_kb": usage.ru_maxrss,
                          "cpu": usage.ru_utime + usage.ru_stime})
    return reaped, status


def _popen_init(self: subprocess.Popen, args: Any, *rest: Any, **kwargs: Any) -> None:
    _real_popen_init(self, args, *rest, **kwargs)
    _commands[self.pid] = [str(a) for a in args] if isinstance(args, (list, tuple)) else [str(args)]


def _write_rusage(path: str) -> None:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(path, "w") as handle:
        json.dump({"self_maxrss_kb": own.ru_maxrss, "self_cpu": own.ru_utime + own.ru_stime,
                   "children_maxrss_kb": children.ru_maxrss,
                   "children_cpu": children.ru_utime + children.ru_stime, "children": _children,
                   "gc_collections": _gc["collections"], "gc_seconds": _gc["seconds"]}, handle)


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python -m bench._rusage MODULE [ARGS...]")
    module = sys.argv[1]
    sys.argv = [module, *sys.argv[2:]]
    if path := os.environ.get("BENCH_RUSAGE_FILE"):
        _finalizers.append(lambda: _write_rusage(path))
        os.waitpid = _waitpid
        gc.callbacks.append(_gc_callback)
        subprocess.Popen.__init__ = _popen_init  # type: ignore[method-assign]
    if thresholds := os.environ.get("BENCH_GC_THRESHOLD"):
        from tools import mockrun  # the plan imports the same module object

        mockrun.PROGRAM_GC_THRESHOLD = tuple(int(t) for t in thresholds.split(","))  # type: ignore[assignment]
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
