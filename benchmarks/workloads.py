"""What every engine runs: the sizes, the generated inputs, the plain-Python floors and the
expected answers, and the CPU time of a process tree.

The runner (``run.py``) makes the inputs once, times the plain-Python floors in its own
process, and hands each engine process a spec (a JSON file): sizes, input paths and the
path of the expected answers, which each engine checks its results against.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
import os
import random
import time
from typing import Any, Callable

__all__ = ["Sizes", "zipf_corpus", "graph", "pagerank_step", "merge_into", "merge_dicts", "tree_cpu_seconds",
           "best_of", "plain_floors"]


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Workload sizes at ``scale`` (1.0: the issue's sizes)."""

    scale: float = 1.0

    @property
    def tasks(self) -> int:
        return max(100, int(2000 * self.scale))

    @property
    def ints(self) -> int:
        return max(10_000, int(2_000_000 * self.scale))

    @property
    def corpus_mb(self) -> float:
        return max(0.5, 64 * self.scale)

    @property
    def pairs(self) -> int:
        return max(100_000, int(4_000_000 * self.scale))

    @property
    def nodes(self) -> int:
        return max(500, int(20_000 * self.scale))

    @property
    def tells(self) -> int:
        return max(2_000, int(100_000 * self.scale))

    @property
    def asks(self) -> int:
        return max(200, int(5_000 * self.scale))


PAIR_KEYS = 100_000  # reduceByKey: key = i % PAIR_KEYS
PAIR_PARTITIONS = 8
PAGERANK_ITERATIONS = 10
GRAPH_PARTITIONS = 8
PEER_MESSAGES = 2_000  # the peers' actors take milliseconds a message: fewer messages, same per-message figure


def zipf_corpus(path: str, megabytes: float, vocabulary: int = 50_000, seed: int = 3) -> None:
    """``megabytes`` of text, 12 words a line, words drawn Zipf(1.1) from ``vocabulary``."""
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(vocabulary)))
    target = int(megabytes * (1 << 20))
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            chunk = rng.choices(words, cum_weights=weights, k=120_000)
            text = "\n".join(" ".join(chunk[i:i + 12]) for i in range(0, len(chunk), 12)) + "\n"
            out.write(text)
            written += len(text)


def graph(nodes: int, seed: int = 1) -> list[tuple[int, list[int]]]:
    """Each node links to 4 random others."""
    rng = random.Random(seed)
    return [(n, rng.sample(range(nodes), k=min(nodes - 1, 4))) for n in range(nodes)]


def pagerank_step(links: list[tuple[int, list[int]]], ranks: dict[int, float]) -> dict[int, float]:
    contributions: dict[int, float] = {}
    for node, outs in links:
        share = ranks[node] / len(outs)
        for out in outs:
            contributions[out] = contributions.get(out, 0.0) + share
    return {node: 0.15 + 0.85 * contributions.get(node, 0.0) for node, _ in links}


def merge_into(acc: dict, item: tuple[int, float]) -> dict:
    acc[item[0]] = acc.get(item[0], 0.0) + item[1]
    return acc


def merge_dicts(left: dict, right: dict) -> dict:
    for key, value in right.items():
        left[key] = left.get(key, 0.0) + value
    return left


def best_of(fn: Callable[[], Any], repeat: int, cpu: dict[str, float] | None = None,
            name: str = "") -> tuple[float, Any]:
    """The best wall time of ``repeat`` runs, and the last result; the CPU seconds of the
    best run go to ``cpu[name]`` when ``cpu`` is given."""
    best, result = float("inf"), None
    for _ in range(max(1, repeat)):
        started, started_cpu = time.perf_counter(), time.process_time()
        result = fn()
        elapsed = time.perf_counter() - started
        if elapsed < best:
            best = elapsed
            if cpu is not None:
                cpu[name] = time.process_time() - started_cpu
    return best, result


def plain_floors(sizes: Sizes, corpus: str, links: list, repeat: int,
                 cpu: dict[str, float]) -> tuple[dict[str, float], dict[str, Any]]:
    """The single-process plain-Python time of each workload (best of ``repeat``; its CPU
    seconds go to ``cpu``) and the expected answers."""
    floors: dict[str, float] = {}
    expected: dict[str, Any] = {}
    n = sizes.tasks
    floors["empty_tasks"] = best_of(lambda: [None for _ in range(n)], repeat)[0] / n * 1e6  # µs per item
    floors["x_plus_1"], expected["x_plus_1"] = best_of(lambda: sum(x + 1 for x in range(sizes.ints)), repeat,
                                                       cpu, "x_plus_1")

    def count_words() -> collections.Counter:
        with open(corpus, encoding="utf-8") as f:
            return collections.Counter(word for line in f for word in line.split())

    floors["wordcount"], expected["wordcount"] = best_of(count_words, repeat, cpu, "wordcount")

    def reduce_pairs() -> dict:
        totals: dict[int, int] = {}
        for i in range(sizes.pairs):
            key = i % PAIR_KEYS
            totals[key] = totals.get(key, 0) + 1
        return totals

    floors["reduce_by_key"], expected["reduce_by_key"] = best_of(reduce_pairs, repeat, cpu, "reduce_by_key")

    def pagerank() -> dict:
        ranks = {node: 1.0 for node, _ in links}
        for _ in range(PAGERANK_ITERATIONS):
            ranks = pagerank_step(links, ranks)
        return ranks

    floors["pagerank"], expected["pagerank"] = best_of(pagerank, repeat, cpu, "pagerank")
    return floors, expected


def check(workload: str, got: Any, expected: dict[str, Any]) -> None:
    """Raise when an engine's answer differs from plain Python's."""
    want = expected.get(workload)
    if workload in ("wordcount", "reduce_by_key"):
        ok = dict(got) == dict(want)
    elif workload == "pagerank":
        ok = set(got) == set(want) and all(abs(got[k] - want[k]) < 1e-9 for k in want)
    elif workload == "x_plus_1":
        ok = got == want
    else:
        ok = True
    if not ok:
        raise AssertionError(f"{workload}: the answer differs from plain Python's")


def tree_cpu_seconds(root: int | None = None) -> float:
    """User + system CPU seconds of ``root`` (default: this process) and its live
    descendants, from /proc (0.0 where there is no /proc). Load on the machine stretches
    wall time, much less CPU time: the two together tell work from waiting."""
    root = os.getpid() if root is None else root
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return 0.0
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / tick
    children: dict[int, list[int]] = collections.defaultdict(list)
    for pid, parent in parents.items():
        children[parent].append(pid)
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        total += cpu.get(pid, 0.0)
        stack.extend(children.get(pid, ()))
    return total
