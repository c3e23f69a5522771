"""Figures as JSON lines and readable tables: sparklet beside its plain-Python floors, then
the engines side by side, then the targets met or missed."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Any, TextIO

WORKLOADS = {  # name: (what, unit shown, how a time in seconds is shown in that unit)
    "empty_tasks": ("empty-task overhead, {tasks:,} tasks", "us/task"),
    "x_plus_1": ("`x + 1` over {ints:,} ints, sum", "s"),
    "wordcount": ("wordcount, {corpus_mb:g} MB Zipf corpus", "s"),
    "reduce_by_key": ("reduceByKey, {pairs:,} pairs, 8 partitions", "s"),
    "pagerank": ("PageRank, 10 iterations, cached {nodes:,}-node graph", "s"),
    "actor_tell": ("cross-process actor tell, {tells:,} messages", "us/msg"),
    "actor_ask": ("cross-process actor ask, {asks:,} round trips", "us/ask"),
}
ENGINES = ["sparklet", "pyspark", "dask", "ray"]


@dataclasses.dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: float
    baseline_name: str
    higher_is_better: bool
    target: str = ""

    @property
    def ratio(self) -> float:
        """value / baseline: for throughputs higher is better, for latencies lower is."""
        return self.value / self.baseline if self.baseline else float("nan")

    def json_line(self) -> str:
        return json.dumps({
            "kind": "figure", "name": self.name, "value": round(self.value, 6), "unit": self.unit,
            "baseline": round(self.baseline, 6), "baseline_name": self.baseline_name,
            "ratio": round(self.ratio, 3), "target": self.target,
        })


def print_figures(figures: list[Figure], out: TextIO = sys.stdout, json_lines: bool = True) -> None:
    if json_lines:
        for figure in figures:
            print(figure.json_line(), file=out)
        print(file=out)
    header = f"{'figure':40} {'value':>18} {'baseline':>18} {'ratio':>7}  target"
    print(header, file=out)
    print("-" * len(header), file=out)
    for f in figures:
        print(f"{f.name:40} {_number(f.value)} {f.unit:<5} {_number(f.baseline)} {f.unit:<5} {f.ratio:>7.2f}  {f.target}",
              file=out)


def per_unit(workload: str, seconds: float, sizes: dict, items: int | None = None) -> float:
    """A workload's time in the unit the tables show (``items``: the count the time
    covers, when an engine ran fewer than the spec's)."""
    per = {"empty_tasks": "tasks", "actor_tell": "tells", "actor_ask": "asks"}.get(workload)
    if per is None:
        return seconds
    return seconds / (items or sizes[per]) * 1e6


def print_comparison(results: dict[str, dict[str, Any]], floors: dict[str, float], sizes: dict,
                     floor_cpu: dict[str, float] | None = None, out: TextIO = sys.stdout) -> None:
    """Rows: workloads; columns: the plain-Python floor, then each engine's time (and its
    CPU seconds), then each peer's time as a multiple of sparklet's (> 1: sparklet faster)."""
    engines = [e for e in ENGINES if e in results]
    peers = [e for e in engines if e != "sparklet"]
    cols = ["plain", *engines, *(f"{p}/sparklet" for p in peers)]
    print(f"{'workload (wall; cpu in brackets)':52} {'unit':8}" + "".join(f"{c:>22}" for c in cols), file=out)
    print("-" * (61 + 22 * len(cols)), file=out)
    startup = {e: results[e].get("startup_seconds") for e in engines}
    print(f"{'start-up (import to first task possible)':52} {'s':8}{'':>22}"
          + "".join(f"{_cell(startup[e]):>22}" for e in engines)
          + "".join(f"{_ratio(startup[p], startup.get('sparklet')):>22}" for p in peers), file=out)
    for workload, (what, unit) in WORKLOADS.items():
        if not any(workload in results[e].get("workloads", {}) for e in engines):
            continue
        floor = floors.get(workload)
        plain_cpu = (floor_cpu or {}).get(workload)
        cells = [(_cell(floor) + (f" [{plain_cpu:.1f}]" if plain_cpu and unit == "s" else "")) if floor is not None else "-"]
        values: dict[str, float | None] = {}
        for engine in engines:
            entry = results[engine].get("workloads", {}).get(workload)
            if entry is None:
                values[engine] = None
                cells.append("-")
            elif "error" in entry:
                values[engine] = None
                cells.append("failed")
            else:
                values[engine] = per_unit(workload, entry["seconds"], sizes, entry.get("items"))
                cpu = entry.get("cpu_seconds")
                cells.append(_cell(values[engine]) + (f" [{cpu:.1f}]" if cpu and unit == "s" else ""))
        for peer in peers:
            cells.append(_ratio(values.get(peer), values.get("sparklet")))
        print(f"{what.format(**sizes):52} {unit:8}" + "".join(f"{c:>22}" for c in cells), file=out)
    for workload in ("wordcount", "reduce_by_key"):
        values = {}
        for engine in engines:
            entry = results[engine].get("workloads", {}).get(workload)
            if entry and "error" not in entry and startup.get(engine) is not None:
                values[engine] = entry["seconds"] + startup[engine]
        if values:
            what = WORKLOADS[workload][0].format(**sizes) + ", with start-up"
            print(f"{what:52} {'s':8}{'-':>22}" + "".join(f"{_cell(values.get(e)):>22}" for e in engines)
                  + "".join(f"{_ratio(values.get(p), values.get('sparklet')):>22}" for p in peers), file=out)


def _cell(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}x"


def _number(value: float) -> str:
    return f"{value:>12,.3f}" if abs(value) < 100 else f"{value:>12,.0f}"
