"""Engine figures on local[2], each beside a plain-Python computation in the same run.

* empty-task overhead: 2,000 tasks that do nothing, microseconds per task
* the seed's UDF: ``lambda x: x + 1`` over 2,000,000 ints and a sum, against the loop
* iterative cached job: 10 PageRank-style iterations over a cached link RDD; the source
  must be read exactly once (checked with an accumulator)
"""

from __future__ import annotations

import random
import time

from sparklet import Context

from benchmarks.report import Figure

MASTER = "local[2]"


def _best(fn, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def _graph(nodes: int, seed: int = 1) -> list[tuple[int, list[int]]]:
    rng = random.Random(seed)
    return [(n, rng.sample(range(nodes), k=min(nodes - 1, 4))) for n in range(nodes)]


def _pagerank_step(links: list[tuple[int, list[int]]], ranks: dict[int, float]) -> dict[int, float]:
    contributions: dict[int, float] = {}
    for node, outs in links:
        share = ranks[node] / len(outs)
        for out in outs:
            contributions[out] = contributions.get(out, 0.0) + share
    return {node: 0.15 + 0.85 * contributions.get(node, 0.0) for node, _ in links}


def run(scale: float = 1.0) -> list[Figure]:
    figures: list[Figure] = []
    n_tasks = max(100, int(2000 * scale))
    n_ints = max(10_000, int(2_000_000 * scale))
    nodes = max(500, int(20_000 * scale))
    with Context(MASTER, "bench", conf={"ui.showConsoleProgress": False}) as sc:
        # -- empty tasks -----------------------------------------------------------------------
        sc.parallelize(range(n_tasks), n_tasks).foreach(lambda _: None)  # warm: binaries, imports
        per_task = _best(lambda: sc.parallelize(range(n_tasks), n_tasks).foreach(lambda _: None)) / n_tasks * 1e6
        loop = _best(lambda: [None for _ in range(n_tasks)]) / n_tasks * 1e6
        figures.append(Figure("engine.empty_task_overhead", per_task, "us", loop, "plain loop per item",
                              higher_is_better=False, target="<= 250 us per task"))

        # -- x + 1 ------------------------------------------------------------------------------
        expected = sum(x + 1 for x in range(n_ints))
        plain = _best(lambda: sum(x + 1 for x in range(n_ints)))
        rdd = sc.parallelize(range(n_ints), sc.defaultParallelism)
        assert rdd.map(lambda x: x + 1).sum() == expected
        ours = _best(lambda: rdd.map(lambda x: x + 1).sum())
        figures.append(Figure("engine.udf_x_plus_1_2M", ours, "s", plain, "plain-Python loop",
                              higher_is_better=False, target="ratio <= 1.0 on local[2]"))

        # -- iterative cached job -----------------------------------------------------------------
        graph = _graph(nodes)
        reads = sc.accumulator(0)

        def read(record):
            reads.add(1)
            return record

        links = sc.parallelize(graph, 8).map(read).cache()
        started = time.perf_counter()
        ranks = {n: 1.0 for n, _ in graph}
        for _ in range(10):
            current = sc.broadcast(ranks)
            contributions = links.flatMap(
                lambda item: [(out, current.value[item[0]] / len(item[1])) for out in item[1]]
            ).aggregate({}, _merge_into, _merge_dicts)
            ranks = {n: 0.15 + 0.85 * contributions.get(n, 0.0) for n, _ in graph}
            current.destroy()
        ours_pr = time.perf_counter() - started
        assert reads.value == nodes, f"the source was read {reads.value / nodes:.1f} times"
        reference = {n: 1.0 for n, _ in graph}
        started = time.perf_counter()
        for _ in range(10):
            reference = _pagerank_step(graph, reference)
        plain_pr = time.perf_counter() - started
        assert all(abs(reference[n] - ranks[n]) < 1e-9 for n in reference)
        figures.append(Figure("engine.pagerank_10_iterations_cached", ours_pr, "s", plain_pr, "plain-Python loop",
                              higher_is_better=False, target="source read once (checked)"))
    return figures


def _merge_into(acc: dict, item: tuple[int, float]) -> dict:
    acc[item[0]] = acc.get(item[0], 0.0) + item[1]
    return acc


def _merge_dicts(left: dict, right: dict) -> dict:
    for key, value in right.items():
        left[key] = left.get(key, 0.0) + value
    return left
