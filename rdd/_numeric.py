"""Numeric actions: ``sum``, ``stats`` and what derives from it, ``histogram`` (PySpark's
semantics, including the evenly-spaced fast path and its errors)."""

from __future__ import annotations

import bisect
import operator
from math import isinf, isnan
from typing import Any, Iterable, Sequence

from sparklet.rdd._statcounter import StatCounter

__all__ = ["NumericMixin"]


class NumericMixin:
    def sum(self) -> Any:
        """Add up the elements in this RDD.

        >>> sc.parallelize([1.0, 2.0, 3.0]).sum()
        6.0
        """
        return self._sync(self.sumAsync())  # type: ignore[attr-defined]

    async def sumAsync(self) -> Any:
        """Awaitable twin of :meth:`sum`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.range(5).sumAsync())
        10
        """
        return await self.mapPartitions(lambda x: [sum(x)]).foldAsync(0, operator.add)  # type: ignore[attr-defined]

    def stats(self) -> StatCounter:
        """Return a :class:`StatCounter` object that captures the mean, variance and count of
        the RDD's elements in one operation.

        >>> sc.parallelize([1, 2, 3]).stats()
        (count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)
        """
        return self._sync(self.statsAsync())  # type: ignore[attr-defined]

    async def statsAsync(self) -> StatCounter:
        """Awaitable twin of :meth:`stats`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2, 3]).statsAsync()).count()
        3
        """

        def red_func(left: StatCounter, right: StatCounter) -> StatCounter:
            return left.mergeStats(right)

        return await self.mapPartitions(lambda i: [StatCounter(i)]).reduceAsync(red_func)  # type: ignore[attr-defined]

    def mean(self) -> float:
        """Compute the mean of this RDD's elements.

        >>> sc.parallelize([1, 2, 3]).mean()
        2.0
        """
        return self._sync(self.meanAsync())  # type: ignore[attr-defined]

    async def meanAsync(self) -> float:
        """Awaitable twin of :meth:`mean`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2]).meanAsync())
        1.5
        """
        return (await self.statsAsync()).mean()

    def variance(self) -> float:
        """Compute the variance of this RDD's elements.

        >>> sc.parallelize([1, 2, 3]).variance()  # doctest: +ELLIPSIS
        0.666...
        """
        return self._sync(self.varianceAsync())  # type: ignore[attr-defined]

    async def varianceAsync(self) -> float:
        """Awaitable twin of :meth:`variance`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 3]).varianceAsync())
        1.0
        """
        return (await self.statsAsync()).variance()

    def stdev(self) -> float:
        """Compute the standard deviation of this RDD's elements.

        >>> sc.parallelize([1, 2, 3]).stdev()  # doctest: +ELLIPSIS
        0.816...
        """
        return self._sync(self.stdevAsync())  # type: ignore[attr-defined]

    async def stdevAsync(self) -> float:
        """Awaitable twin of :meth:`stdev`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 3]).stdevAsync())
        1.0
        """
        return (await self.statsAsync()).stdev()

    def sampleStdev(self) -> float:
        """Compute the sample standard deviation of this RDD's elements (which corrects for
        bias in estimating the standard deviation by dividing by N-1 instead of N).

        >>> sc.parallelize([1, 2, 3]).sampleStdev()
        1.0
        """
        return self._sync(self.sampleStdevAsync())  # type: ignore[attr-defined]

    async def sampleStdevAsync(self) -> float:
        """Awaitable twin of :meth:`sampleStdev`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2, 3]).sampleStdevAsync())
        1.0
        """
        return (await self.statsAsync()).sampleStdev()

    def sampleVariance(self) -> float:
        """Compute the sample variance of this RDD's elements (which corrects for bias in
        estimating the variance by dividing by N-1 instead of N).

        >>> sc.parallelize([1, 2, 3]).sampleVariance()
        1.0
        """
        return self._sync(self.sampleVarianceAsync())  # type: ignore[attr-defined]

    async def sampleVarianceAsync(self) -> float:
        """Awaitable twin of :meth:`sampleVariance`; cancelling the awaiting task cancels the
        job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2, 3]).sampleVarianceAsync())
        1.0
        """
        return (await self.statsAsync()).sampleVariance()

    def histogram(self, buckets: int | Sequence[Any]) -> tuple[Sequence[Any], list[int]]:
        """Compute a histogram using the provided buckets. The buckets are all open to the
        right except for the last which is closed: ``[1, 10, 20, 50]`` means the buckets
        ``[1,10) [10,20) [20,50]``. Buckets must be sorted, not contain any duplicates, and
        have at least two elements; evenly spaced buckets are found in O(1) per element.

        If ``buckets`` is a number, it generates that many buckets evenly spaced between the
        minimum and maximum of the RDD (a single bucket if they are equal).

        >>> rdd = sc.parallelize(range(51))
        >>> rdd.histogram(2)
        ([0, 25, 50], [25, 26])
        >>> rdd.histogram([0, 5, 25, 50])
        ([0, 5, 25, 50], [5, 20, 26])
        >>> rdd.histogram([0, 15, 30, 45, 60])  # evenly spaced buckets
        ([0, 15, 30, 45, 60], [15, 15, 15, 6])
        >>> rdd = sc.parallelize(["ab", "ac", "b", "bd", "ef"])
        >>> rdd.histogram(("a", "b", "c"))
        (('a', 'b', 'c'), [2, 2])
        """
        return self._sync(self.histogramAsync(buckets))  # type: ignore[attr-defined]

    async def histogramAsync(self, buckets: int | Sequence[Any]) -> tuple[Sequence[Any], list[int]]:
        """Awaitable twin of :meth:`histogram`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([1, 2, 3, 4]).histogramAsync([0, 2, 4]))
        ([0, 2, 4], [1, 3])
        """
        if isinstance(buckets, int):
            if buckets < 1:
                raise ValueError("number of buckets must be >= 1")

            def comparable(x: Any) -> bool:  # filter out non-comparable elements
                if x is None:
                    return False
                if type(x) is float and isnan(x):
                    return False
                return True

            filtered = self.filter(comparable)  # type: ignore[attr-defined]

            def minmax(a: tuple, b: tuple) -> tuple:
                return min(a[0], b[0]), max(a[1], b[1])

            try:
                minv, maxv = await filtered.map(lambda x: (x, x)).reduceAsync(minmax)
            except TypeError as e:
                if " empty " in str(e):
                    raise ValueError("can not generate buckets from empty RDD")
                raise

            if minv == maxv or buckets == 1:
                return [minv, maxv], [await filtered.countAsync()]

            try:
                inc = (maxv - minv) / buckets
            except TypeError:
                raise TypeError("Can not generate buckets with non-number in RDD")

            if isinf(inc):
                raise ValueError("Can not generate buckets with infinite value")

            # keep them as integer if possible
            inc = int(inc)
            if inc * buckets != maxv - minv:
                inc = (maxv - minv) * 1.0 / buckets

            buckets = [i * inc + minv for i in range(buckets)]
            buckets.append(maxv)  # fix accumulated error
            even = True

        elif isinstance(buckets, (list, tuple)):
            if len(buckets) < 2:
                raise ValueError("buckets should have more than one value")

            if any(i is None or isinstance(i, float) and isnan(i) for i in buckets):
                raise ValueError("can not have None or NaN in buckets")

            if sorted(buckets) != list(buckets):
                raise ValueError("buckets should be sorted")

            if len(set(buckets)) != len(buckets):
                raise ValueError("buckets should not contain duplicated values")

            minv = buckets[0]
            maxv = buckets[-1]
            even = False
            inc = None
            try:
                steps = [buckets[i + 1] - buckets[i] for i in range(len(buckets) - 1)]
            except TypeError:
                pass  # objects in buckets do not support '-'
            else:
                if max(steps) - min(steps) < 1e-10:  # handle precision errors
                    even = True
                    inc = (maxv - minv) / (len(buckets) - 1)

        else:
            raise TypeError("buckets should be a list or tuple or number(int or long)")

        final_buckets = buckets

        def histogram(iterator: Iterable) -> Iterable[list[int]]:
            counters = [0] * len(final_buckets)
            for i in iterator:
                if i is None or (isinstance(i, float) and isnan(i)) or i > maxv or i < minv:
                    continue
                t = int((i - minv) / inc) if even else bisect.bisect_right(final_buckets, i) - 1
                counters[t] += 1
            # add last two together
            last = counters.pop()
            counters[-1] += last
            return [counters]

        def merge_counters(a: list[int], b: list[int]) -> list[int]:
            return [i + j for i, j in zip(a, b)]

        return buckets, await self.mapPartitions(histogram).reduceAsync(merge_counters)  # type: ignore[attr-defined]
