"""The workloads in PySpark's RDD API: the very same code runs on sparklet and on PySpark.

Each function takes a context and the spec, runs one workload once and returns what
``workloads.check`` compares with plain Python.
"""

from __future__ import annotations

import operator
from typing import Any

from benchmarks.workloads import GRAPH_PARTITIONS, PAGERANK_ITERATIONS, PAIR_KEYS, PAIR_PARTITIONS, merge_dicts, merge_into


def empty_tasks(sc: Any, spec: dict) -> None:
    n = spec["tasks"]
    sc.parallelize(range(n), n).foreach(lambda _: None)


def x_plus_1(sc: Any, spec: dict) -> int:
    return sc.parallelize(range(spec["ints"]), 2).map(lambda x: x + 1).sum()


def wordcount(sc: Any, spec: dict) -> list:
    return sc.textFile(spec["corpus"]).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add).collect()


def reduce_by_key(sc: Any, spec: dict) -> list:
    keys = PAIR_KEYS
    pairs = sc.range(spec["pairs"], numSlices=PAIR_PARTITIONS).map(lambda i: (i % keys, 1))
    return pairs.reduceByKey(operator.add, PAIR_PARTITIONS).collect()


def pagerank(sc: Any, spec: dict, links_data: list) -> dict:
    """10 iterations over a cached link RDD: the ranks are broadcast, the contributions
    aggregated to the driver; the source is read once (checked with an accumulator)."""
    reads = sc.accumulator(0)

    def read(record: Any) -> Any:
        reads.add(1)
        return record

    links = sc.parallelize(links_data, GRAPH_PARTITIONS).map(read).cache()
    ranks = {node: 1.0 for node, _ in links_data}
    for _ in range(PAGERANK_ITERATIONS):
        current = sc.broadcast(ranks)
        contributions = links.flatMap(
            lambda item: [(out, current.value[item[0]] / len(item[1])) for out in item[1]]
        ).aggregate({}, merge_into, merge_dicts)
        ranks = {node: 0.15 + 0.85 * contributions.get(node, 0.0) for node, _ in links_data}
        current.destroy()
    links.unpersist()
    if reads.value != len(links_data):
        raise AssertionError(f"the cached source was read {reads.value / len(links_data):.1f} times")
    return ranks


def run_all(sc: Any, spec: dict, links_data: list, measure: Any) -> None:
    """Every workload through ``measure(name, fn)``."""
    empty_tasks(sc, {**spec, "tasks": min(spec["tasks"], 200)})  # warm: task binaries, imports, worker pools
    measure("empty_tasks", lambda: empty_tasks(sc, spec))
    measure("x_plus_1", lambda: x_plus_1(sc, spec))
    measure("wordcount", lambda: wordcount(sc, spec))
    measure("reduce_by_key", lambda: reduce_by_key(sc, spec))
    measure("pagerank", lambda: pagerank(sc, spec, links_data))
