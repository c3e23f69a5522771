"""Pipelines the example scenarios run: each takes a Context and returns a plain value
that a fault-free run and a run under faults must agree on."""

from __future__ import annotations

import operator


def wordcount(sc) -> list:
    """A word count over generated text (a shuffle)."""
    lines = [" ".join(f"w{(i * j) % 41}" for j in range(12)) for i in range(400)]
    counts = sc.parallelize(lines, 6).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add, 4)
    return sorted(counts.collect())


def cached_twice(sc) -> tuple:
    """A cached RDD queried twice (the second query reads the cache, or recomputes)."""
    squares = sc.parallelize(range(2000), 4).map(lambda x: x * x).cache()
    return squares.count(), squares.sum()


def always_failing(sc) -> int:
    """A job whose first partition can never succeed under its scenario's plan."""
    return sc.parallelize(range(10), 2).count()


def wordcount_with_accumulator(sc) -> tuple:
    """A word count whose map side counts the words it saw in an accumulator: a scheduler
    restart must change neither the counts nor the accumulator (no update merged twice)."""
    seen = sc.accumulator(0)

    def pair(word):
        seen.add(1)
        return (word, 1)

    lines = [" ".join(f"w{(i * j) % 29}" for j in range(10)) for i in range(300)]
    counts = sc.parallelize(lines, 6).flatMap(str.split).map(pair).reduceByKey(operator.add, 4)
    return sorted(counts.collect()), seen.value


def barrier_all_gather(sc) -> list:
    """A barrier stage: every task gathers every partition's partial sum, then all leave
    the barrier together; any task failing re-runs the whole stage."""
    from sparklet import BarrierTaskContext

    def total_of_all(index, iterator):
        context = BarrierTaskContext.get()
        partials = context.allGather(str(sum(iterator)))
        context.barrier()
        yield index, sum(int(p) for p in partials)

    return sc.parallelize(range(100), 2).barrier().mapPartitionsWithIndex(total_of_all).collect()
