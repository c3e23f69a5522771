"""The workloads on Ray core (``ray.init(num_cpus=2)``), written as a Ray user would:
remote functions for tasks, a map/reduce of remote functions with ``num_returns`` for the
shuffles, the link table ``ray.put`` once (the cache), an actor for messaging."""

from __future__ import annotations

import collections
import os
import zlib
from typing import Any, Callable

from benchmarks.workloads import (
    GRAPH_PARTITIONS, PAGERANK_ITERATIONS, PAIR_KEYS, PAIR_PARTITIONS, PEER_MESSAGES, merge_dicts,
)


def _line_range(path: str, start: int, end: int) -> list[str]:
    """The lines that start in ``[start, end)`` (Hadoop's rule), as text."""
    with open(path, "rb") as f:
        f.seek(start)
        if start:
            f.readline()  # the previous range reads the line that crosses its end
        data = f.read(max(0, end - f.tell()))
        tail = f.readline() if data and not data.endswith(b"\n") else b""
    return (data + tail).decode("utf-8").splitlines()


def run(spec: dict, measure: Any, links: list, ready: Callable[[str], None]) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        @ray.remote
        def noop() -> None:
            return None

        @ray.remote
        def sum_plus_1(start: int, stop: int) -> int:
            return sum(map(lambda x: x + 1, range(start, stop)))

        @ray.remote
        def count_words(path: str, start: int, end: int, parts: int) -> list:
            counts = collections.Counter(w for line in _line_range(path, start, end) for w in line.split())
            out: list[dict] = [{} for _ in range(parts)]
            for word, n in counts.items():
                out[zlib.crc32(word.encode()) % parts][word] = n  # the same in every worker
            return out if parts > 1 else out[0]

        @ray.remote
        def merge_counts(*dicts: dict) -> list:
            total: collections.Counter = collections.Counter()
            for d in dicts:
                total.update(d)
            return list(total.items())

        @ray.remote
        def pairs_map(start: int, stop: int, parts: int) -> list:
            out: list[dict] = [{} for _ in range(parts)]
            for i in range(start, stop):
                key = i % PAIR_KEYS
                bucket = out[key % parts]
                bucket[key] = bucket.get(key, 0) + 1
            return out

        @ray.remote
        def pairs_reduce(*dicts: dict) -> list:
            total: dict = {}
            for d in dicts:
                for k, v in d.items():
                    total[k] = total.get(k, 0) + v
            return list(total.items())

        @ray.remote
        def contributions(part: list, ranks: dict) -> dict:
            out: dict = {}
            for node, outs in part:
                share = ranks[node] / len(outs)
                for target in outs:
                    out[target] = out.get(target, 0.0) + share
            return out

        @ray.remote
        class Sink:
            def __init__(self) -> None:
                self.count = 0

            def tick(self, n: int) -> None:
                self.count += 1

            def sync(self) -> int:
                return self.count

        ray.get([noop.remote() for _ in range(2)])
        ready("ray")
        ray.get([noop.remote() for _ in range(200)])  # warm

        measure("empty_tasks", lambda: ray.get([noop.remote() for _ in range(spec["tasks"])]))
        half = spec["ints"] // 2
        measure("x_plus_1", lambda: sum(ray.get([sum_plus_1.remote(0, half), sum_plus_1.remote(half, spec["ints"])])))

        def wordcount() -> list:
            path, size = spec["corpus"], os.path.getsize(spec["corpus"])
            bounds = [0, size // 2, size]
            maps = [count_words.options(num_returns=2).remote(path, bounds[i], bounds[i + 1], 2) for i in range(2)]
            reduced = ray.get([merge_counts.remote(*(m[r] for m in maps)) for r in range(2)])
            return [pair for part in reduced for pair in part]

        measure("wordcount", wordcount)

        def reduce_by_key() -> list:
            n, parts = spec["pairs"], PAIR_PARTITIONS
            step = -(-n // parts)
            maps = [pairs_map.options(num_returns=parts).remote(i * step, min(n, (i + 1) * step), parts)
                    for i in range(parts)]
            reduced = ray.get([pairs_reduce.remote(*(m[r] for m in maps)) for r in range(parts)])
            return [pair for part in reduced for pair in part]

        measure("reduce_by_key", reduce_by_key)

        def pagerank() -> dict:
            step = -(-len(links) // GRAPH_PARTITIONS)
            cached = [ray.put(links[i:i + step]) for i in range(0, len(links), step)]
            ranks = {node: 1.0 for node, _ in links}
            for _ in range(PAGERANK_ITERATIONS):
                shared = ray.put(ranks)
                total: dict = {}
                for part in ray.get([contributions.remote(ref, shared) for ref in cached]):
                    merge_dicts(total, part)
                ranks = {node: 0.15 + 0.85 * total.get(node, 0.0) for node, _ in links}
            return ranks

        measure("pagerank", pagerank)

        def actor_tell() -> int:
            sink = Sink.remote()
            n = min(spec["tells"], PEER_MESSAGES)
            for i in range(n):
                sink.tick.remote(i)
            if ray.get(sink.sync.remote()) != n:
                raise AssertionError("the actor missed messages")
            return n

        def actor_ask() -> int:
            sink = Sink.remote()
            ray.get(sink.sync.remote())
            for _ in range(min(spec["asks"], PEER_MESSAGES)):
                ray.get(sink.sync.remote())
            return min(spec["asks"], PEER_MESSAGES)

        measure("actor_tell", actor_tell, repeat=1, items=min(spec["tells"], PEER_MESSAGES))
        measure("actor_ask", actor_ask, repeat=1, items=min(spec["asks"], PEER_MESSAGES))
    finally:
        ray.shutdown()
