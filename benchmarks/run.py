#!/usr/bin/env python3
"""Run sparklet's benchmark suite: JSON lines, then readable tables.

    python3 dev.py bench                       # everything at the default sizes
    python3 dev.py bench --scale 0.1           # smaller sizes, for a quick look
    python3 dev.py bench --engines sparklet    # no peers
    python3 dev.py bench --only wordcount --only recovery

The inputs (a Zipf corpus, a graph) are made once; the plain-Python floors are timed in
this process; then each engine (sparklet, and PySpark, Dask and Ray where installed: the
``bench`` extra) runs the same workloads in a fresh process of its own, one engine at a
time, reporting its start-up apart from the workloads. Ratios measured in one run travel
between machines; absolute numbers do not.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import importlib.util
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from benchmarks import actors_bench  # noqa: E402
from benchmarks.report import ENGINES, WORKLOADS, Figure, print_comparison, print_figures  # noqa: E402
from benchmarks.targets import evaluate  # noqa: E402
from benchmarks.workloads import Sizes, graph, plain_floors, zipf_corpus  # noqa: E402

ALL = [*WORKLOADS, "recovery", "actors_local"]


def available(engine: str) -> str | None:
    """Why ``engine`` cannot run here, or None."""
    module = {"sparklet": "sparklet", "pyspark": "pyspark", "dask": "distributed", "ray": "ray"}[engine]
    if importlib.util.find_spec(module) is None:
        return f"{module} is not installed (pip install 'sparklet[bench]')"
    if engine == "pyspark" and shutil.which("java") is None:
        return "PySpark needs Java (17 or newer) on PATH"
    return None


def run_engine(engine: str, spec_path: str, log_path: str, timeout: float) -> dict[str, Any]:
    """One engine in a fresh process; its JSON lines gathered into one dict."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": ROOT + os.pathsep + os.environ.get("PYTHONPATH", "")}
    result: dict[str, Any] = {"workloads": {}, "figures": {}}
    with open(log_path, "w", encoding="utf-8") as log:
        try:
            completed = subprocess.run([sys.executable, "-m", "benchmarks.engines", engine, spec_path], cwd=ROOT,
                                       env=env, stdout=subprocess.PIPE, stderr=log, text=True, timeout=timeout)
            lines = completed.stdout.splitlines()
        except subprocess.TimeoutExpired as exc:
            lines = (exc.stdout or b"").decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            lines = lines.splitlines()
            result["error"] = f"timed out after {timeout:.0f} s"
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if "startup_seconds" in entry:
            result["startup_seconds"] = entry["startup_seconds"]
        elif "workload" in entry:
            result["workloads"][entry["workload"]] = entry
        elif "figure" in entry:
            result["figures"][entry["figure"]] = entry
        elif "error" in entry:
            result["error"] = entry["error"]
    return result


def sparklet_figures(results: dict, floors: dict, sizes: dict) -> list[Figure]:
    ours = results.get("sparklet", {})
    runs = ours.get("workloads", {})
    figures: list[Figure] = []

    def add(workload: str, name: str, baseline_name: str, target: str) -> None:
        entry = runs.get(workload)
        if entry and "error" not in entry:
            unit = WORKLOADS[workload][1]
            value = entry["seconds"] / sizes["tasks"] * 1e6 if workload == "empty_tasks" else entry["seconds"]
            figures.append(Figure(name, value, unit, floors[workload], baseline_name, False, target))

    add("empty_tasks", "engine.empty_task_overhead", "plain loop per item", "<= 1/10 of PySpark's")
    add("x_plus_1", "engine.udf_x_plus_1", "plain-Python loop", "ratio < 1.0")
    add("wordcount", "shuffle.wordcount", "Counter over the file", "ratio <= 0.8")
    add("reduce_by_key", "shuffle.reduce_by_key", "dict loop", "faster than PySpark")
    add("pagerank", "engine.pagerank_cached", "plain loop", "source read once (checked)")
    memory = ours.get("figures", {}).get("peak_executor_memory")
    if memory:
        figures.append(Figure("shuffle.peak_executor_memory", memory["value"], "MiB", memory["baseline"],
                              "budget + idle executor", False, "<= budget + fixed overhead"))
    recovery = ours.get("figures", {}).get("recovery")
    if recovery:
        figures.append(Figure("recovery.wordcount_one_executor_killed", recovery["with_fault"], "s",
                              recovery["fault_free"], "fault-free run", False,
                              f"<= fault-free + lost share ({recovery['lost_share']:.2f} s) + fixed"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every workload size (default 1.0)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per workload; the best is kept (default 2)")
    parser.add_argument("--peer-repeat", type=int, default=1,
                        help="runs per workload on the peers, whose runs are long (default 1)")
    parser.add_argument("--engines", default=",".join(ENGINES),
                        help=f"comma-separated, from {','.join(ENGINES)} (default: all that are installed)")
    parser.add_argument("--only", choices=ALL, action="append", help="run only these workloads")
    parser.add_argument("--json", metavar="FILE", help="also write the JSON lines to FILE")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per engine (default 1200)")
    args = parser.parse_args()
    if args.scale <= 0:
        parser.error(f"--scale must be positive, got {args.scale}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        parser.error(f"unknown engine(s) {unknown}; known: {', '.join(ENGINES)}")
    sizes = Sizes(args.scale)
    size_fields = {k: getattr(sizes, k) for k in ("tasks", "ints", "corpus_mb", "pairs", "nodes", "tells", "asks")}
    machine = (f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, "
               f"{platform.machine()}, load average {os.getloadavg()[0]:.1f} at start")
    print(f"# sparklet benchmarks, {time.strftime('%Y-%m-%d %H:%M')}, {machine}, scale {args.scale}", file=sys.stderr)
    only = set(args.only or ())
    folder = tempfile.mkdtemp(prefix="sparklet-bench-")
    lines: list[str] = []
    try:
        corpus = os.path.join(folder, "zipf.txt")
        zipf_corpus(corpus, sizes.corpus_mb)
        links = graph(sizes.nodes)
        print("# plain-Python floors ...", file=sys.stderr)
        floor_cpu: dict[str, float] = {}
        floors, expected = plain_floors(sizes, corpus, links, args.repeat, floor_cpu)
        lines += [json.dumps({"kind": "floor", "workload": w, "seconds": floors[w], "cpu_seconds": floor_cpu.get(w)})
                  for w in floors]
        spec = {**size_fields, "corpus": corpus, "repeat": args.repeat, "workloads": sorted(only),
                "expected": os.path.join(folder, "expected.pickle"), "graph": os.path.join(folder, "graph.pickle")}
        for path, value in ((spec["expected"], expected), (spec["graph"], links)):
            with open(path, "wb") as f:
                pickle.dump(value, f)
        spec_path = os.path.join(folder, "spec.json")
        with open(spec_path, "w", encoding="utf-8") as f:
            json.dump(spec, f)
        floors["actor_tell"] = floors["actor_ask"] = None  # the floors are in the actor figures
        results: dict[str, dict] = {}
        for engine in engines:
            why = available(engine)
            if why:
                print(f"# {engine}: skipped, {why}", file=sys.stderr)
                continue
            print(f"# {engine} ...", file=sys.stderr)
            log = os.path.join(folder, f"{engine}.log")
            engine_spec = spec_path
            if engine != "sparklet":
                engine_spec = os.path.join(folder, f"spec-{engine}.json")
                with open(engine_spec, "w", encoding="utf-8") as f:
                    json.dump({**spec, "repeat": max(1, args.peer_repeat)}, f)
            results[engine] = run_engine(engine, engine_spec, log, args.timeout)
            if "error" in results[engine] or any("error" in w for w in results[engine]["workloads"].values()):
                errors = [results[engine].get("error")] + [f"{k}: {w['error']}" for k, w in
                                                           results[engine]["workloads"].items() if "error" in w]
                print(f"# {engine}: {'; '.join(e for e in errors if e)}; its log:", file=sys.stderr)
                with open(log, encoding="utf-8", errors="replace") as f:
                    print("".join(f.readlines()[-15:]), file=sys.stderr)
            for entry in [*results[engine]["workloads"].values(), *results[engine]["figures"].values()]:
                lines.append(json.dumps({"kind": "engine", **{k: v for k, v in entry.items() if k != "trace"}}))
            if "startup_seconds" in results[engine]:
                lines.append(json.dumps({"kind": "engine", "engine": engine, "startup_seconds":
                                         results[engine]["startup_seconds"]}))
        figures = sparklet_figures(results, floors, size_fields)
        if not only or "actors_local" in only:
            print("# sparklet actors ...", file=sys.stderr)
            figures += _actor_figures(args.scale)
        lines += [f.json_line() for f in figures]
        verdicts = evaluate(results, floors, size_fields)
        lines += [json.dumps({"kind": "target", **dataclasses.asdict(v)}) for v in verdicts]
        print("\n".join(lines))
        print()
        print_figures(figures, json_lines=False)
        print()
        print_comparison(results, floors, size_fields, floor_cpu)
        print()
        for verdict in verdicts:
            print(verdict.line())
        if args.json:
            with open(args.json, "w", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _actor_figures(scale: float) -> list[Figure]:
    runner: Any = asyncio.run
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:  # pragma: no cover
        pass
    return runner(actors_bench.run(scale))


if __name__ == "__main__":
    main()
