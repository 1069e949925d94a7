"""Run the benchmarks: all of them, or the ones named.

    python3 dev.py bench [names...] [--quick]        (sets up the venvs, then runs this)
    venv/bin/python -m bench [names...] [--quick]

Names: lab_plan, pack_overhead, pack_scale, checkov, fleet, real_engine. Each is a module with
``main(argv) -> int`` that prints its own figures (medians of several runs, ratios measured in the same run);
``--quick`` runs each one small and once, as a smoke test whose figures are not the ones to record.
The full set takes about 40 minutes on two cores (most of it checkov); docs/benchmarks.md holds the figures.
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# name -> (module, arguments for --quick)
BENCHMARKS: dict[str, tuple[str, list[str]]] = {
    "lab_plan": ("bench.lab_plan", ["--runs", "3"]),
    "pack_overhead": ("bench.pack_overhead", ["--resources", "1000", "--runs", "1"]),
    "pack_scale": ("bench.pack_scale", ["--containers", "250,500", "--workloads", "50,100", "--runs", "1"]),
    "checkov": ("bench.checkov_compare", ["--quick"]),
    "fleet": ("bench.fleet", ["--quick"]),
    "real_engine": ("bench.real_engine", ["--runs", "1"]),
}


def available() -> list[str]:
    return [name for name, (module, _) in BENCHMARKS.items() if importlib.util.find_spec(module) is not None]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"any of: {', '.join(BENCHMARKS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="each benchmark small and once (a smoke test)")
    args = parser.parse_args(argv)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    present = available()
    unknown = [n for n in args.names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    missing = [n for n in args.names if n not in present]
    if missing:
        parser.error(f"{', '.join(missing)}: not in bench/ yet")
    names = args.names or present
    codes: dict[str, int] = {}
    for name in names:
        module_name, quick_args = BENCHMARKS[name]
        print(f"=== {name} ({module_name}{' --quick' if args.quick else ''})", flush=True)
        started = time.perf_counter()
        try:
            codes[name] = importlib.import_module(module_name).main(quick_args if args.quick else []) or 0
        except SystemExit as exit_:
            codes[name] = exit_.code if isinstance(exit_.code, int) else 1
        except Exception:  # noqa: BLE001 - one benchmark failing must not hide the others' figures
            traceback.print_exc()
            codes[name] = 1
        print(f"=== {name}: exit {codes[name]}, {time.perf_counter() - started:.0f} s\n", flush=True)
    failed = [n for n, c in codes.items() if c]
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
