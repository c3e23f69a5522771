"""Sorting by key (PySpark's names, argument orders, defaults and results).

``sortByKey`` is PySpark's plan with Spark's RDDs: for one output partition, no shuffle
(``coalesce(1)`` and a sort within the partition); otherwise two jobs, a count and a
seeded sample, give the bounds of a :class:`~sparklet.rdd.RangePartitioner`, and a shuffle
by it reads each partition sorted by ``keyfunc(key)`` (``dep.key_ordering``). Partition
``i`` then holds only keys sorting before those of partition ``i + 1``, so the partitions
in order are the whole RDD in order. Because it runs jobs when called, as PySpark's does,
``sortByKey`` and ``sortBy`` have awaitable twins.

``repartitionAndSortWithinPartitions`` sorts each partition of a ``partitionBy`` in the
shuffle itself, or within each partition when the RDD is partitioned that way already.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

from sparklet.rdd._partitioner import portable_hash
from sparklet.rdd._range_partitioner import RangePartitioner, _identity, range_bounds, sample_fraction

if TYPE_CHECKING:
    from sparklet.rdd._rdd import RDD

__all__ = ["SortingMixin"]


def _sorter(ascending: bool, keyfunc: Callable[[Any], Any]) -> Callable[[Iterable], Iterator]:
    def sort_partition(iterator: Iterable) -> Iterator:
        return iter(sorted(iterator, key=lambda kv: keyfunc(kv[0]), reverse=not ascending))

    return sort_partition


class SortingMixin:
    def sortByKey(self, ascending: bool = True, numPartitions: int | None = None,
                  keyfunc: Callable[[Any], Any] = _identity) -> "RDD":
        """Sorts this RDD, which is assumed to consist of (key, value) pairs, by
        ``keyfunc(key)``: the partitions in order hold the records in order. Runs two small
        jobs (a count and a sample) to choose the ranges (see the module notes).

        >>> tmp = [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        >>> sc.parallelize(tmp).sortByKey().first()
        ('1', 3)
        >>> sc.parallelize(tmp).sortByKey(True, 1).collect()
        [('1', 3), ('2', 5), ('a', 1), ('b', 2), ('d', 4)]
        >>> sc.parallelize(tmp).sortByKey(True, 2).collect()
        [('1', 3), ('2', 5), ('a', 1), ('b', 2), ('d', 4)]
        >>> sc.parallelize(tmp).sortByKey(False, 3).keys().collect()
        ['d', 'b', 'a', '2', '1']
        >>> tmp2 = [('Mary', 1), ('had', 2), ('a', 3), ('little', 4), ('lamb', 5)]
        >>> tmp2.extend([('whose', 6), ('fleece', 7), ('was', 8), ('white', 9)])
        >>> sc.parallelize(tmp2).sortByKey(True, 3, keyfunc=lambda k: k.lower()).collect()
        [('a', 3), ('fleece', 7), ('had', 2), ('lamb', 5),...('white', 9), ('whose', 6)]
        """
        return self._sync(self.sortByKeyAsync(ascending, numPartitions, keyfunc))  # type: ignore[attr-defined]

    async def sortByKeyAsync(self, ascending: bool = True, numPartitions: int | None = None,
                             keyfunc: Callable[[Any], Any] = _identity) -> "RDD":
        """Awaitable twin of :meth:`sortByKey`; cancelling the awaiting task cancels the
        counting or sampling job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([(2, 'b'), (1, 'a'), (3, 'c')], 2).sortByKeyAsync()).collect()
        [(1, 'a'), (2, 'b'), (3, 'c')]
        """
        from sparklet.rdd._pairs import default_reduce_partitions
        from sparklet.rdd._shuffled import ShuffledRDD

        if numPartitions is None:
            numPartitions = default_reduce_partitions(self)
        if isinstance(numPartitions, bool) or not isinstance(numPartitions, int) or numPartitions < 1:
            raise ValueError(f"numPartitions must be a positive integer, got {numPartitions!r}")
        ascending = bool(ascending)
        if numPartitions == 1:
            rdd = self.coalesce(1) if self.getNumPartitions() > 1 else self  # type: ignore[attr-defined]
            return rdd.mapPartitions(_sorter(ascending, keyfunc), True)
        count = await self.countAsync()  # type: ignore[attr-defined]
        if not count:
            return self  # type: ignore[return-value]
        fraction = sample_fraction(numPartitions, count)
        samples = await self.sample(False, fraction, 1).map(lambda kv: kv[0]).collectAsync()  # type: ignore[attr-defined]
        bounds = await self._on_driver(range_bounds, samples, numPartitions, keyfunc)  # type: ignore[attr-defined]
        partitioner = RangePartitioner(numPartitions, bounds, ascending, keyfunc)
        return ShuffledRDD(self, partitioner, key_ordering=keyfunc, ascending=ascending)  # type: ignore[arg-type]

    def sortBy(self, keyfunc: Callable[[Any], Any], ascending: bool = True,
               numPartitions: int | None = None) -> "RDD":
        """Sorts this RDD by the given keyfunc (``keyBy(keyfunc).sortByKey(...).values()``).

        >>> tmp = [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        >>> sc.parallelize(tmp).sortBy(lambda x: x[0]).collect()
        [('1', 3), ('2', 5), ('a', 1), ('b', 2), ('d', 4)]
        >>> sc.parallelize(tmp).sortBy(lambda x: x[1]).collect()
        [('a', 1), ('b', 2), ('1', 3), ('d', 4), ('2', 5)]
        """
        return self._sync(self.sortByAsync(keyfunc, ascending, numPartitions))  # type: ignore[attr-defined]

    async def sortByAsync(self, keyfunc: Callable[[Any], Any], ascending: bool = True,
                          numPartitions: int | None = None) -> "RDD":
        """Awaitable twin of :meth:`sortBy`; cancelling the awaiting task cancels the
        counting or sampling job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize([3, 1, 2], 2).sortByAsync(lambda x: -x)).collect()
        [3, 2, 1]
        """
        keyed = self.keyBy(keyfunc)  # type: ignore[attr-defined]
        return (await keyed.sortByKeyAsync(ascending, numPartitions)).values()

    def repartitionAndSortWithinPartitions(self, numPartitions: int | None = None,
                                           partitionFunc: Callable[[Any], int] = portable_hash,
                                           ascending: bool = True,
                                           keyfunc: Callable[[Any], Any] = _identity) -> "RDD":
        """Repartition the RDD according to the given partitioner and, within each resulting
        partition, sort records by their keys (in the shuffle: no second pass).

        >>> rdd = sc.parallelize([(0, 5), (3, 8), (2, 6), (0, 8), (3, 8), (1, 3)])
        >>> rdd2 = rdd.repartitionAndSortWithinPartitions(2, lambda x: x % 2, True)
        >>> [[k for k, _ in part] for part in rdd2.glom().collect()]
        [[0, 0, 2], [1, 3, 3]]
        >>> sorted(rdd2.collect())
        [(0, 5), (0, 8), (1, 3), (2, 6), (3, 8), (3, 8)]
        """
        from sparklet.rdd._pairs import default_reduce_partitions, partitioner_for
        from sparklet.rdd._shuffled import ShuffledRDD

        if numPartitions is None:
            numPartitions = default_reduce_partitions(self)
        partitioner = partitioner_for(numPartitions, partitionFunc)
        ascending = bool(ascending)
        if self.partitioner == partitioner:  # type: ignore[attr-defined]
            return self.mapPartitions(_sorter(ascending, keyfunc), True)  # type: ignore[attr-defined]
        return ShuffledRDD(self, partitioner, key_ordering=keyfunc, ascending=ascending)  # type: ignore[arg-type]
