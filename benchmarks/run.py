#!/usr/bin/env python3
"""Run sparklet's benchmarks: one JSON line per figure, then a readable table.

    python3 dev.py bench                 # everything, default sizes
    python3 dev.py bench --scale 0.2     # smaller sizes, for a quick look
    python3 dev.py bench --only actors   # one suite

Every figure is printed beside a baseline measured in the same run (a plain-Python
floor), since these machines are noisy: ratios travel, absolute numbers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import actors_bench, engine_bench, shuffle_bench  # noqa: E402
from benchmarks.report import print_figures  # noqa: E402

SUITES = {"actors": actors_bench.run, "engine": engine_bench.run, "shuffle": shuffle_bench.run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload size (default 1.0)")
    parser.add_argument("--only", choices=sorted(SUITES), action="append", help="run only these suites")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    runner = asyncio.run
    loop_name = "asyncio"
    if not args.no_uvloop:
        try:
            import uvloop
            runner, loop_name = uvloop.run, f"uvloop {uvloop.__version__}"
        except ImportError:
            pass
    print(f"# sparklet benchmarks on {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, {loop_name}, scale {args.scale}", file=sys.stderr)
    figures = []
    for name in args.only or SUITES:
        suite = SUITES[name]
        if asyncio.iscoroutinefunction(suite):
            figures += runner(suite(args.scale))
        else:
            figures += suite(args.scale)  # blocking suites run their own context
    print_figures(figures)


if __name__ == "__main__":
    main()
