"""Aggregating actions: each partition is folded in its task, the per-partition results are
merged on the driver through ``ctx._run_on_driver`` (user code runs off the event loop).

``treeAggregate``/``treeReduce`` run PySpark's tree: the per-partition aggregates are
regrouped level by level (``i % curNumPartitions``) through a ``reduceByKey``, each level a
shuffle stage, while another level pays off; the driver merges what the last level leaves.
"""

from __future__ import annotations

from collections import defaultdict
from functools import reduce
from math import ceil
from typing import Any, Callable, Iterable

from sparklet.rdd._util import fail_on_stopiteration

__all__ = ["AggregationsMixin"]


class AggregationsMixin:
    def reduce(self, f: Callable[[Any, Any], Any]) -> Any:
        """Reduces the elements of this RDD using the specified commutative and associative
        binary operator. Currently reduces partitions locally.

        >>> from operator import add
        >>> sc.parallelize([1, 2, 3, 4, 5]).reduce(add)
        15
        >>> sc.parallelize((2 for _ in range(10))).map(lambda x: 1).cache().reduce(add)
        10
        >>> sc.parallelize([]).reduce(add)
        Traceback (most recent call last):
            ...
        ValueError: Can not reduce() empty RDD
        """
        return self._sync(self.reduceAsync(f))  # type: ignore[attr-defined]

    async def reduceAsync(self, f: Callable[[Any, Any], Any]) -> Any:
        """Awaitable twin of :meth:`reduce`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> from operator import mul
        >>> asyncio.run(sc.parallelize([1, 2, 3, 4]).reduceAsync(mul))
        24
        """
        g = fail_on_stopiteration(f)

        def func(_: Any, iterator: Iterable) -> list:
            iterator = iter(iterator)
            try:
                initial = next(iterator)
            except StopIteration:
                return []
            return [reduce(g, iterator, initial)]

        vals = [v for part in await self._run_job(func) for v in part]  # type: ignore[attr-defined]
        if vals:
            return await self._on_driver(reduce, g, vals)  # type: ignore[attr-defined]
        raise ValueError("Can not reduce() empty RDD")

    def fold(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Aggregate the elements of each partition, and then the results for all the
        partitions, using a given associative function and a neutral "zero value". ``op(t1,
        t2)`` may modify ``t1`` and return it; it should not modify ``t2``.

        >>> from operator import add
        >>> sc.parallelize([1, 2, 3, 4, 5]).fold(0, add)
        15
        """
        return self._sync(self.foldAsync(zeroValue, op))  # type: ignore[attr-defined]

    async def foldAsync(self, zeroValue: Any, op: Callable[[Any, Any], Any]) -> Any:
        """Awaitable twin of :meth:`fold`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> from operator import add
        >>> asyncio.run(sc.parallelize([1, 2, 3]).foldAsync(0, add))
        6
        """
        g = fail_on_stopiteration(op)

        def func(_: Any, iterator: Iterable) -> Any:
            acc = zeroValue
            for obj in iterator:
                acc = g(acc, obj)
            return acc

        # each task folds into its own copy of zeroValue (it travels pickled with the task)
        vals = await self._run_job(func)  # type: ignore[attr-defined]
        return await self._on_driver(reduce, g, vals, zeroValue)  # type: ignore[attr-defined]

    def aggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any], combOp: Callable[[Any, Any], Any]) -> Any:
        """Aggregate the elements of each partition with ``seqOp``, and then the results for all
        the partitions with ``combOp``, starting from a neutral "zero value".

        >>> seqOp = (lambda x, y: (x[0] + y, x[1] + 1))
        >>> combOp = (lambda x, y: (x[0] + y[0], x[1] + y[1]))
        >>> sc.parallelize([1, 2, 3, 4]).aggregate((0, 0), seqOp, combOp)
        (10, 4)
        >>> sc.parallelize([]).aggregate((0, 0), seqOp, combOp)
        (0, 0)
        """
        return self._sync(self.aggregateAsync(zeroValue, seqOp, combOp))  # type: ignore[attr-defined]

    async def aggregateAsync(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                             combOp: Callable[[Any, Any], Any]) -> Any:
        """Awaitable twin of :meth:`aggregate`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2, 3]).aggregateAsync(0, max, max))
        3
        """
        seq = fail_on_stopiteration(seqOp)
        comb = fail_on_stopiteration(combOp)

        def func(_: Any, iterator: Iterable) -> Any:
            acc = zeroValue
            for obj in iterator:
                acc = seq(acc, obj)
            return acc

        vals = await self._run_job(func)  # type: ignore[attr-defined]
        return await self._on_driver(reduce, comb, vals, zeroValue)  # type: ignore[attr-defined]

    def treeAggregate(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any], combOp: Callable[[Any, Any], Any],
                      depth: int = 2) -> Any:
        """Aggregates the elements of this RDD in a multi-level tree pattern (each level a
        shuffle stage, see the module notes).

        >>> add = lambda x, y: x + y
        >>> rdd = sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10)
        >>> rdd.treeAggregate(0, add, add)
        -5
        >>> rdd.treeAggregate(0, add, add, 1)
        -5
        >>> rdd.treeAggregate(0, add, add, 10)
        -5
        """
        return self._sync(self.treeAggregateAsync(zeroValue, seqOp, combOp, depth))  # type: ignore[attr-defined]

    async def treeAggregateAsync(self, zeroValue: Any, seqOp: Callable[[Any, Any], Any],
                                 combOp: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """Awaitable twin of :meth:`treeAggregate`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> add = lambda x, y: x + y
        >>> asyncio.run(sc.parallelize(range(10), 5).treeAggregateAsync(0, add, add))
        45
        """
        if depth < 1:
            raise ValueError("Depth cannot be smaller than 1 but got %d." % depth)
        if self.getNumPartitions() == 0:  # type: ignore[attr-defined]
            return zeroValue
        seq = fail_on_stopiteration(seqOp)

        def aggregate_partition(iterator: Iterable) -> Iterable:
            acc = zeroValue
            for obj in iterator:
                acc = seq(acc, obj)
            yield acc

        partially_aggregated = self.mapPartitions(aggregate_partition)  # type: ignore[attr-defined]
        num_partitions: float = partially_aggregated.getNumPartitions()
        scale = max(int(ceil(pow(num_partitions, 1.0 / depth))), 2)
        # If creating an extra level doesn't help reduce the wall-clock time, we stop the tree aggregation.
        while num_partitions > scale + num_partitions / scale:
            num_partitions /= scale
            cur_num_partitions = int(num_partitions)

            def key_by_group(i: int, iterator: Iterable, groups: int = cur_num_partitions) -> Iterable:
                for obj in iterator:
                    yield (i % groups, obj)

            partially_aggregated = (partially_aggregated.mapPartitionsWithIndex(key_by_group)
                                    .reduceByKey(combOp, cur_num_partitions).values())
        return await partially_aggregated.reduceAsync(combOp)

    def treeReduce(self, f: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """Reduces the elements of this RDD in a multi-level tree pattern.

        >>> add = lambda x, y: x + y
        >>> rdd = sc.parallelize([-5, -4, -3, -2, -1, 1, 2, 3, 4], 10)
        >>> rdd.treeReduce(add)
        -5
        >>> rdd.treeReduce(add, 5)
        -5
        >>> sc.parallelize([]).treeReduce(add)
        Traceback (most recent call last):
            ...
        ValueError: Cannot reduce empty RDD.
        """
        return self._sync(self.treeReduceAsync(f, depth))  # type: ignore[attr-defined]

    async def treeReduceAsync(self, f: Callable[[Any, Any], Any], depth: int = 2) -> Any:
        """Awaitable twin of :meth:`treeReduce`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize(range(10), 3).treeReduceAsync(max))
        9
        """
        if depth < 1:
            raise ValueError("Depth cannot be smaller than 1 but got %d." % depth)
        zero_value = (None, True)  # the second entry says whether this is a dummy value

        def op(x: tuple, y: tuple) -> tuple:
            if x[1]:
                return y
            elif y[1]:
                return x
            return f(x[0], y[0]), False

        reduced = await self.map(lambda x: (x, False)).treeAggregateAsync(zero_value, op, op, depth)  # type: ignore[attr-defined]
        if reduced[1]:
            raise ValueError("Cannot reduce empty RDD.")
        return reduced[0]

    def max(self, key: Callable[[Any], Any] | None = None) -> Any:
        """Find the maximum item in this RDD.

        >>> rdd = sc.parallelize([1.0, 5.0, 43.0, 10.0])
        >>> rdd.max()
        43.0
        >>> rdd.max(key=str)
        5.0
        """
        return self._sync(self.maxAsync(key))  # type: ignore[attr-defined]

    async def maxAsync(self, key: Callable[[Any], Any] | None = None) -> Any:
        """Awaitable twin of :meth:`max`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 5, 3]).maxAsync())
        5
        """
        if key is None:
            return await self.reduceAsync(max)
        return await self.reduceAsync(lambda a, b: max(a, b, key=key))

    def min(self, key: Callable[[Any], Any] | None = None) -> Any:
        """Find the minimum item in this RDD.

        >>> rdd = sc.parallelize([2.0, 5.0, 43.0, 10.0])
        >>> rdd.min()
        2.0
        >>> rdd.min(key=str)
        10.0
        """
        return self._sync(self.minAsync(key))  # type: ignore[attr-defined]

    async def minAsync(self, key: Callable[[Any], Any] | None = None) -> Any:
        """Awaitable twin of :meth:`min`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([4, 1, 3]).minAsync())
        1
        """
        if key is None:
            return await self.reduceAsync(min)
        return await self.reduceAsync(lambda a, b: min(a, b, key=key))

    def countByValue(self) -> dict:
        """Return the count of each unique value in this RDD as a dictionary of (value, count)
        pairs.

        >>> sorted(sc.parallelize([1, 2, 1, 2, 2], 2).countByValue().items())
        [(1, 2), (2, 3)]
        """
        return self._sync(self.countByValueAsync())  # type: ignore[attr-defined]

    async def countByValueAsync(self) -> dict:
        """Awaitable twin of :meth:`countByValue`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> sorted(asyncio.run(sc.parallelize("abca").countByValueAsync()).items())
        [('a', 2), ('b', 1), ('c', 1)]
        """

        def count_partition(iterator: Iterable) -> Iterable:
            counts: dict = defaultdict(int)
            for obj in iterator:
                counts[obj] += 1
            yield counts

        def merge_maps(m1: dict, m2: dict) -> dict:
            for k, v in m2.items():
                m1[k] += v
            return m1

        return await self.mapPartitions(count_partition).reduceAsync(merge_maps)  # type: ignore[attr-defined]
