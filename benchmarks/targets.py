"""The targets of issues 4 and 7, judged from one run's figures."""

from __future__ import annotations

import dataclasses
from typing import Any

# What recovering from a lost executor may cost beyond re-running its lost work: noticing
# the loss, the fetch failure's round trips, and starting a replacement process.
RECOVERY_FIXED_SECONDS = 2.0


@dataclasses.dataclass
class Verdict:
    target: str
    met: bool | None  # None: could not be judged in this run (an engine or a figure missing)
    detail: str

    def line(self) -> str:
        mark = {True: "MET   ", False: "MISSED", None: "n/a   "}[self.met]
        return f"{mark} {self.target}: {self.detail}"


def _seconds(results: dict, engine: str, workload: str) -> float | None:
    entry = results.get(engine, {}).get("workloads", {}).get(workload)
    if not entry or "error" in entry:
        return None
    return entry["seconds"]


def evaluate(results: dict[str, Any], floors: dict[str, float], sizes: dict) -> list[Verdict]:
    verdicts: list[Verdict] = []
    ours = lambda w: _seconds(results, "sparklet", w)  # noqa: E731
    tasks = sizes["tasks"]

    empty = ours("empty_tasks")
    if empty is not None:
        per_task = empty / tasks * 1e6
        for peer, factor in (("pyspark", 10.0), ("dask", 1.0), ("ray", 1.0)):
            theirs = _seconds(results, peer, "empty_tasks")
            want = "1/10 of PySpark's" if factor > 1 else f"below {peer}'s"
            if theirs is None:
                verdicts.append(Verdict(f"empty-task overhead {want}", None, f"{peer} did not run"))
                continue
            their_task = theirs / tasks * 1e6
            verdicts.append(Verdict(f"empty-task overhead {want}", per_task * factor <= their_task,
                                    f"{per_task:,.0f} us vs {their_task:,.0f} us per task "
                                    f"({their_task / per_task:.1f}x)"))

    plus = ours("x_plus_1")
    if plus is not None:
        verdicts.append(Verdict("x + 1 faster than the plain loop", plus < floors["x_plus_1"],
                                f"{plus:.3f} s vs {floors['x_plus_1']:.3f} s ({plus / floors['x_plus_1']:.2f}x)"))

    words = ours("wordcount")
    if words is not None:
        ratio = words / floors["wordcount"]
        verdicts.append(Verdict("wordcount <= 0.8x Counter (issue 4)", ratio <= 0.8,
                                f"{words:.2f} s vs {floors['wordcount']:.2f} s ({ratio:.2f}x)"))
    start = results.get("sparklet", {}).get("startup_seconds")
    for workload, what in (("wordcount", "wordcount"), ("reduce_by_key", "reduceByKey")):
        mine, theirs = ours(workload), _seconds(results, "pyspark", workload)
        their_start = results.get("pyspark", {}).get("startup_seconds")
        if mine is None or theirs is None or start is None or their_start is None:
            verdicts.append(Verdict(f"{what} faster than PySpark, start-up included", None, "PySpark did not run"))
            continue
        a, b = mine + start, theirs + their_start
        verdicts.append(Verdict(f"{what} faster than PySpark, start-up included", a < b,
                                f"{a:.2f} s vs {b:.2f} s ({b / a:.1f}x); without start-up "
                                f"{mine:.2f} s vs {theirs:.2f} s ({theirs / mine:.1f}x)"))

    recovery = results.get("sparklet", {}).get("figures", {}).get("recovery")
    if recovery:
        overhead = recovery["overhead"]
        verdicts.append(Verdict(f"recovery <= lost share + {RECOVERY_FIXED_SECONDS:g} s fixed",
                                overhead <= RECOVERY_FIXED_SECONDS,
                                f"fault-free {recovery['fault_free']:.2f} s, one executor killed "
                                f"{recovery['with_fault']:.2f} s: lost share {recovery['lost_share']:.2f} s "
                                f"+ {overhead:.2f} s"))
    memory = results.get("sparklet", {}).get("figures", {}).get("peak_executor_memory")
    if memory:
        verdicts.append(Verdict("peak executor memory <= shuffle budget + idle executor",
                                memory["value"] <= memory["baseline"],
                                f"{memory['value']:.0f} MiB vs {memory['baseline']:.0f} MiB"))
    return verdicts
