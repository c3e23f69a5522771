"""Actions that bring records to the driver or run side effects (PySpark's semantics).

Each action is an ``...Async`` coroutine plus its blocking twin. ``take`` scans partitions
incrementally as PySpark does: one partition, then up to four times as many as scanned so
far, interpolating from what the scanned ones yielded; each round is a job.
"""

from __future__ import annotations

import heapq
import random
import sys
from itertools import islice
from math import log, sqrt
from typing import Any, Callable, Iterable

__all__ = ["ActionsMixin"]


class ActionsMixin:
    def collect(self) -> list:
        """Return a list that contains all of the elements in this RDD.

        >>> sc.range(5).collect()
        [0, 1, 2, 3, 4]
        """
        return self._sync(self.collectAsync())  # type: ignore[attr-defined]

    async def collectAsync(self) -> list:
        """Awaitable twin of :meth:`collect`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize(["x", "y"]).collectAsync())
        ['x', 'y']
        """
        parts = await self._run_job(lambda _, it: list(it))  # type: ignore[attr-defined]
        return [x for part in parts for x in part]

    def count(self) -> int:
        """Return the number of elements in this RDD.

        >>> sc.parallelize([2, 3, 4]).count()
        3
        """
        return self._sync(self.countAsync())  # type: ignore[attr-defined]

    async def countAsync(self) -> int:
        """Awaitable twin of :meth:`count`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([2, 3, 4]).countAsync())
        3
        """
        return sum(await self._run_job(lambda _, it: sum(1 for _ in it)))  # type: ignore[attr-defined]

    def take(self, num: int) -> list:
        """Take the first ``num`` elements of the RDD, scanning one partition first and using
        what it yielded to estimate how many more partitions are needed.

        >>> sc.parallelize([2, 3, 4, 5, 6]).cache().take(2)
        [2, 3]
        >>> sc.parallelize([2, 3, 4, 5, 6]).take(10)
        [2, 3, 4, 5, 6]
        >>> sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3)
        [91, 92, 93]
        """
        return self._sync(self.takeAsync(num))  # type: ignore[attr-defined]

    async def takeAsync(self, num: int) -> list:
        """Awaitable twin of :meth:`take`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.range(10).takeAsync(3))
        [0, 1, 2]
        """
        items: list = []
        total_parts = self.getNumPartitions()  # type: ignore[attr-defined]
        parts_scanned = 0
        while len(items) < num and parts_scanned < total_parts:
            num_parts_to_try = 1
            if parts_scanned > 0:
                # Nothing found yet: quadruple. Otherwise interpolate the number of partitions
                # needed, overestimating by 50%, and cap the estimate.
                if len(items) == 0:
                    num_parts_to_try = parts_scanned * 4
                else:
                    num_parts_to_try = int(1.5 * num * parts_scanned / len(items)) - parts_scanned
                    num_parts_to_try = min(max(num_parts_to_try, 1), parts_scanned * 4)
            left = num - len(items)
            p = range(parts_scanned, min(parts_scanned + num_parts_to_try, total_parts))
            res = await self._run_job(lambda _, it: list(islice(it, left)), p)  # type: ignore[attr-defined]
            for part in res:
                items += part
            parts_scanned += num_parts_to_try
        return items[:num]

    def first(self) -> Any:
        """Return the first element in this RDD.

        >>> sc.parallelize([2, 3, 4]).first()
        2
        >>> sc.parallelize([]).first()
        Traceback (most recent call last):
            ...
        ValueError: RDD is empty
        """
        return self._sync(self.firstAsync())  # type: ignore[attr-defined]

    async def firstAsync(self) -> Any:
        """Awaitable twin of :meth:`first`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([2, 3, 4]).firstAsync())
        2
        """
        rs = await self.takeAsync(1)
        if rs:
            return rs[0]
        raise ValueError("RDD is empty")

    def isEmpty(self) -> bool:
        """Returns true if and only if the RDD contains no elements at all.

        >>> sc.parallelize([]).isEmpty()
        True
        >>> sc.parallelize([1]).isEmpty()
        False
        """
        return self._sync(self.isEmptyAsync())  # type: ignore[attr-defined]

    async def isEmptyAsync(self) -> bool:
        """Awaitable twin of :meth:`isEmpty`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.emptyRDD().isEmptyAsync())
        True
        """
        return self.getNumPartitions() == 0 or len(await self.takeAsync(1)) == 0  # type: ignore[attr-defined]

    def takeOrdered(self, num: int, key: Callable[[Any], Any] | None = None) -> list:
        """Get the N elements from an RDD ordered in ascending order or as specified by the
        optional key function.

        >>> sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7]).takeOrdered(6)
        [1, 2, 3, 4, 5, 6]
        >>> sc.parallelize([10, 1, 2, 9, 3, 4, 5, 6, 7], 2).takeOrdered(6, key=lambda x: -x)
        [10, 9, 7, 6, 5, 4]
        >>> sc.emptyRDD().takeOrdered(3)
        []
        """
        return self._sync(self.takeOrderedAsync(num, key))  # type: ignore[attr-defined]

    async def takeOrderedAsync(self, num: int, key: Callable[[Any], Any] | None = None) -> list:
        """Awaitable twin of :meth:`takeOrdered`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([3, 1, 2]).takeOrderedAsync(2))
        [1, 2]
        """
        if num < 0:
            raise ValueError("top N cannot be negative.")
        if num == 0 or self.getNumPartitions() == 0:  # type: ignore[attr-defined]
            return []

        def merge(a: list, b: list) -> list:
            return heapq.nsmallest(num, a + b, key)

        return await self.mapPartitions(lambda it: [heapq.nsmallest(num, it, key)]).reduceAsync(merge)  # type: ignore[attr-defined]

    def top(self, num: int, key: Callable[[Any], Any] | None = None) -> list:
        """Get the top N elements from an RDD, in descending order.

        >>> sc.parallelize([10, 4, 2, 12, 3]).top(1)
        [12]
        >>> sc.parallelize([2, 3, 4, 5, 6], 2).top(2)
        [6, 5]
        >>> sc.parallelize([10, 4, 2, 12, 3]).top(3, key=str)
        [4, 3, 2]
        """
        return self._sync(self.topAsync(num, key))  # type: ignore[attr-defined]

    async def topAsync(self, num: int, key: Callable[[Any], Any] | None = None) -> list:
        """Awaitable twin of :meth:`top`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([3, 1, 2]).topAsync(2))
        [3, 2]
        """

        def topIterator(iterator: Iterable) -> Iterable:
            yield heapq.nlargest(num, iterator, key=key)

        def merge(a: list, b: list) -> list:
            return heapq.nlargest(num, a + b, key=key)

        return await self.mapPartitions(topIterator).reduceAsync(merge)  # type: ignore[attr-defined]

    def takeSample(self, withReplacement: bool, num: int, seed: int | None = None) -> list:
        """Return a fixed-size sampled subset of this RDD.

        >>> rdd = sc.parallelize(range(0, 10))
        >>> len(rdd.takeSample(True, 20, 1))
        20
        >>> len(rdd.takeSample(False, 5, 2))
        5
        >>> len(rdd.takeSample(False, 15, 3))
        10
        >>> sorted(rdd.takeSample(False, 15, 3))
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        return self._sync(self.takeSampleAsync(withReplacement, num, seed))  # type: ignore[attr-defined]

    async def takeSampleAsync(self, withReplacement: bool, num: int, seed: int | None = None) -> list:
        """Awaitable twin of :meth:`takeSample`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> len(asyncio.run(sc.range(100).takeSampleAsync(False, 7, 1)))
        7
        """
        num_st_dev = 10.0
        max_sample_size = sys.maxsize - int(num_st_dev * sqrt(sys.maxsize))
        if num < 0:
            raise ValueError("Sample size cannot be negative.")
        elif num > max_sample_size:
            raise ValueError("Sample size cannot be greater than %d." % max_sample_size)
        if num == 0 or self.getNumPartitions() == 0:  # type: ignore[attr-defined]
            return []
        initial_count = await self.countAsync()  # type: ignore[attr-defined]
        if initial_count == 0:
            return []
        rand = random.Random(seed)
        if (not withReplacement) and num >= initial_count:
            samples = await self.collectAsync()  # type: ignore[attr-defined]
            rand.shuffle(samples)
            return samples
        fraction = _compute_fraction_for_sample_size(num, initial_count, withReplacement)
        samples = await self.sample(withReplacement, fraction, seed).collectAsync()  # type: ignore[attr-defined]
        # If the first sample didn't turn out large enough, keep trying; this shouldn't happen
        # often because of the big multiplier in the fraction.
        while len(samples) < num:
            seed = rand.randint(0, sys.maxsize)
            samples = await self.sample(withReplacement, fraction, seed).collectAsync()  # type: ignore[attr-defined]
        rand.shuffle(samples)
        return samples[0:num]

    def foreach(self, f: Callable[[Any], None]) -> None:
        """Applies a function to all elements of this RDD (on the executors).

        >>> def f(x): print(x)
        >>> sc.parallelize([1, 2, 3, 4, 5]).foreach(f)  # doctest: +SKIP
        >>> sc.parallelize([1, 2]).foreach(lambda x: None) is None
        True
        """
        return self._sync(self.foreachAsync(f))  # type: ignore[attr-defined]

    async def foreachAsync(self, f: Callable[[Any], None]) -> None:
        """Awaitable twin of :meth:`foreach`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2]).foreachAsync(lambda x: None)) is None
        True
        """
        from sparklet.rdd._util import fail_on_stopiteration

        g = fail_on_stopiteration(f)

        def process_partition(_: Any, iterator: Iterable) -> None:
            for x in iterator:
                g(x)

        await self._run_job(process_partition)  # type: ignore[attr-defined]

    def foreachPartition(self, f: Callable[[Iterable], Any]) -> None:
        """Applies a function to each partition of this RDD (on the executors); if it
        returns an iterable, the iterable is consumed.

        >>> def f(iterator):
        ...     for x in iterator:
        ...         print(x)
        >>> sc.parallelize([1, 2, 3, 4, 5]).foreachPartition(f)  # doctest: +SKIP
        >>> sc.parallelize([1, 2]).foreachPartition(lambda it: None) is None
        True
        """
        return self._sync(self.foreachPartitionAsync(f))  # type: ignore[attr-defined]

    async def foreachPartitionAsync(self, f: Callable[[Iterable], Any]) -> None:
        """Awaitable twin of :meth:`foreachPartition`; cancelling the awaiting task cancels
        the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2]).foreachPartitionAsync(list)) is None
        True
        """

        def process_partition(_: Any, iterator: Iterable) -> None:
            r = f(iterator)
            try:
                it = iter(r)
            except TypeError:
                return
            for _ in it:
                pass

        await self._run_job(process_partition)  # type: ignore[attr-defined]

    def collectAsMap(self) -> dict:
        """Return the key-value pairs in this RDD to the driver as a dictionary.

        >>> m = sc.parallelize([(1, 2), (3, 4)]).collectAsMap()
        >>> m[1], m[3]
        (2, 4)
        """
        return self._sync(self.collectAsMapAsync())  # type: ignore[attr-defined]

    async def collectAsMapAsync(self) -> dict:
        """Awaitable twin of :meth:`collectAsMap`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([(1, 2)]).collectAsMapAsync())
        {1: 2}
        """
        return dict(await self.collectAsync())

    def lookup(self, key: Any) -> list:
        """Return the list of values in the RDD for key ``key``. Only the partition the key
        maps to is searched when the RDD has a partitioner.

        >>> l = range(1000)
        >>> rdd = sc.parallelize(zip(l, l), 10)
        >>> rdd.lookup(42)
        [42]
        >>> rdd.lookup(1024)
        []
        """
        return self._sync(self.lookupAsync(key))  # type: ignore[attr-defined]

    async def lookupAsync(self, key: Any) -> list:
        """Awaitable twin of :meth:`lookup`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([("a", 1), ("b", 2), ("a", 3)]).lookupAsync("a"))
        [1, 3]
        """
        values = self.filter(lambda kv: kv[0] == key).values()  # type: ignore[attr-defined]
        partitioner = self.partitioner  # type: ignore[attr-defined]
        if partitioner is not None:
            parts = await self._run_job(lambda _, it: list(it), [partitioner(key)], rdd=values)  # type: ignore[attr-defined]
            return parts[0]
        return await values.collectAsync()


def _compute_fraction_for_sample_size(sample_size_lower_bound: int, total: int, with_replacement: bool) -> float:
    """A sampling rate that gives a sample of at least ``sample_size_lower_bound`` elements
    99.99% of the time (PySpark's ``RDD._computeFractionForSampleSize``)."""
    fraction = float(sample_size_lower_bound) / total
    if with_replacement:
        num_st_dev = 5
        if sample_size_lower_bound < 12:
            num_st_dev = 9
        return fraction + num_st_dev * sqrt(fraction / total)
    delta = 0.00005
    gamma = -log(delta) / total
    return min(1, fraction + gamma + sqrt(gamma * gamma + 2 * gamma * fraction))
