"""The workloads on Dask (distributed ``LocalCluster``: 2 worker processes, 1 thread each),
written as a Dask user would: futures for empty tasks, ``dask.bag`` for the data
workloads (``frequencies`` for the wordcount, ``foldby`` for the reduce by key), an
actor for messaging."""

from __future__ import annotations

import operator
import os
from typing import Any, Callable

from benchmarks.workloads import (
    GRAPH_PARTITIONS, PAGERANK_ITERATIONS, PAIR_KEYS, PAIR_PARTITIONS, PEER_MESSAGES, merge_dicts,
)


def _noop(_: Any) -> None:
    return None


def _first(pair: tuple) -> Any:
    return pair[0]


def _add_value(total: int, pair: tuple) -> int:
    return total + pair[1]


def _contributions(links: list, ranks: dict) -> dict:
    out: dict = {}
    for node, outs in links:
        share = ranks[node] / len(outs)
        for target in outs:
            out[target] = out.get(target, 0.0) + share
    return out


class Sink:
    def __init__(self) -> None:
        self.count = 0

    def tick(self, n: int) -> None:
        self.count += 1

    def sync(self) -> int:
        return self.count


def run(spec: dict, measure: Any, links: list, ready: Callable[[str], None]) -> None:
    import dask
    import dask.bag as db
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"})
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=50) as cluster, Client(cluster) as client:
        client.wait_for_workers(2)
        ready("dask")
        client.gather(client.map(_noop, range(200), pure=False))  # warm

        def empty_tasks() -> None:
            client.gather(client.map(_noop, range(spec["tasks"]), pure=False))

        measure("empty_tasks", empty_tasks)
        measure("x_plus_1", lambda: db.range(spec["ints"], npartitions=2).map(lambda x: x + 1).sum().compute())
        blocksize = max(1, os.path.getsize(spec["corpus"]) // 2 + 1)
        measure("wordcount", lambda: db.read_text(spec["corpus"], blocksize=blocksize).str.split().flatten()
                .frequencies().compute())
        keys = PAIR_KEYS
        measure("reduce_by_key", lambda: db.range(spec["pairs"], npartitions=PAIR_PARTITIONS)
                .map(lambda i: (i % keys, 1)).foldby(_first, _add_value, 0, operator.add, 0).compute())

        def pagerank() -> dict:
            cached = db.from_sequence(links, npartitions=GRAPH_PARTITIONS).persist()
            ranks = {node: 1.0 for node, _ in links}
            for _ in range(PAGERANK_ITERATIONS):
                [shared] = client.scatter([ranks], broadcast=True)  # a dict alone would scatter per key
                parts = cached.map_partitions(lambda part, r: [_contributions(part, r)], shared)
                contributions: dict = {}
                for part in parts.compute():
                    merge_dicts(contributions, part)
                ranks = {node: 0.15 + 0.85 * contributions.get(node, 0.0) for node, _ in links}
            return ranks

        measure("pagerank", pagerank)

        def actor_tell() -> float:
            sink = client.submit(Sink, actor=True).result()
            n = min(spec["tells"], PEER_MESSAGES)
            futures = [sink.tick(i) for i in range(n)]
            futures[-1].result()
            if sink.sync().result() != n:
                raise AssertionError("the actor missed messages")
            return n

        def actor_ask() -> int:
            sink = client.submit(Sink, actor=True).result()
            for _ in range(min(spec["asks"], PEER_MESSAGES)):
                sink.sync().result()
            return min(spec["asks"], PEER_MESSAGES)

        measure("actor_tell", actor_tell, repeat=1, items=min(spec["tells"], PEER_MESSAGES))
        measure("actor_ask", actor_ask, repeat=1, items=min(spec["asks"], PEER_MESSAGES))
