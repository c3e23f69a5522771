"""Key-value operations (PySpark's names, argument orders, defaults and results).

Each is built as PySpark builds it, with Spark's RDDs underneath: ``combineByKey`` (and
``reduceByKey``, ``foldByKey``, ``aggregateByKey``, ``distinct``) is a
:class:`~sparklet.rdd._shuffled.ShuffledRDD` combining map side; ``groupByKey`` one that does
not (as Spark's: combining into lists saves nothing); ``partitionBy`` a plain shuffle. When
the RDD is already partitioned by the partitioner asked for, there is no shuffle at all:
the combining runs within each partition, as in Spark's ``combineByKeyWithClassTag`` and
PySpark's ``partitionBy`` returning ``self``. The joins, ``cogroup`` and the set operations
are in :mod:`~sparklet.rdd._joins`, the sorts in :mod:`~sparklet.rdd._sorting`.

``numPartitions`` defaults to the RDD's number of partitions (PySpark's
``_defaultReducePartitions`` when ``spark.default.parallelism`` is not set; sparklet has no
such setting), or 1 for an RDD without partitions. ``partitionFunc=portable_hash`` gives a
:class:`~sparklet.rdd.HashPartitioner`, any other function a ``Partitioner`` over it.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Callable, Iterable

from sparklet.rdd._joins import JoinsMixin
from sparklet.rdd._partitioner import HashPartitioner, Partitioner, portable_hash
from sparklet.rdd._sorting import SortingMixin
from sparklet.rdd._util import fail_on_stopiteration, identity

if TYPE_CHECKING:
    from sparklet.rdd._rdd import RDD

__all__ = ["PairsMixin", "default_reduce_partitions", "partitioner_for"]


def _shuffled() -> Any:
    from sparklet.rdd import _shuffled as module  # the shuffled RDD classes subclass RDD

    return module


def default_reduce_partitions(rdd: Any) -> int:
    """PySpark's ``_defaultReducePartitions`` (see the module notes)."""
    return rdd.getNumPartitions() or 1


def partitioner_for(numPartitions: int, partitionFunc: Callable[[Any], int]) -> Partitioner:
    """The partitioner ``partitionBy(numPartitions, partitionFunc)`` gives; a bad
    ``numPartitions`` is a ``ValueError`` naming it."""
    if partitionFunc is portable_hash:
        return HashPartitioner(numPartitions)
    if not callable(partitionFunc):
        raise TypeError(f"partitionFunc must be callable, got {partitionFunc!r}")
    return Partitioner(numPartitions, partitionFunc)


def _append(xs: list, x: Any) -> list:
    xs.append(x)
    return xs


def _extend(a: list, b: list) -> list:
    a.extend(b)
    return a


class PairsMixin(JoinsMixin, SortingMixin):
    def partitionBy(self, numPartitions: int | None, partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Return a copy of the RDD partitioned using the specified partitioner (the RDD
        itself when it is partitioned that way already). The result's ``partitioner`` is set,
        so joins and aggregations by key over it need no further shuffle.

        >>> pairs = sc.parallelize([1, 2, 3, 4, 2, 4, 1]).map(lambda x: (x, x))
        >>> sets = pairs.partitionBy(2).glom().collect()
        >>> len(set(sets[0]).intersection(set(sets[1])))
        0
        >>> pairs.partitionBy(2).partitioner
        HashPartitioner(2)
        """
        if numPartitions is None:
            numPartitions = default_reduce_partitions(self)
        partitioner = partitioner_for(numPartitions, partitionFunc)
        if self.partitioner == partitioner:  # type: ignore[attr-defined]
            return self  # type: ignore[return-value]
        return _shuffled().ShuffledRDD(self, partitioner)

    def combineByKey(self, createCombiner: Callable[[Any], Any], mergeValue: Callable[[Any, Any], Any],
                     mergeCombiners: Callable[[Any, Any], Any], numPartitions: int | None = None,
                     partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Generic function to combine the elements for each key using a custom set of
        aggregation functions: turns an RDD of ``(K, V)`` into one of ``(K, C)``. Values are
        combined map side with ``createCombiner``/``mergeValue``, the combiners across
        partitions with ``mergeCombiners``; ``mergeValue`` and ``mergeCombiners`` may modify
        and return their first argument.

        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])
        >>> def to_list(a):
        ...     return [a]
        >>> def append(a, b):
        ...     a.append(b)
        ...     return a
        >>> def extend(a, b):
        ...     a.extend(b)
        ...     return a
        >>> sorted((k, sorted(c)) for k, c in rdd.combineByKey(to_list, append, extend).collect())
        [('a', [1, 2]), ('b', [1])]
        """
        if numPartitions is None:
            numPartitions = default_reduce_partitions(self)
        partitioner = partitioner_for(numPartitions, partitionFunc)
        shuffled = _shuffled()
        aggregator = shuffled.Combiners.of(createCombiner, mergeValue, mergeCombiners)
        if self.partitioner == partitioner:  # type: ignore[attr-defined]
            def combine(iterator: Iterable) -> Iterable:
                return shuffled.combine_values_by_key(aggregator, iterator)

            return self.mapPartitions(combine, preservesPartitioning=True)  # type: ignore[attr-defined]
        return shuffled.ShuffledRDD(self, partitioner, aggregator, map_side_combine=True)

    def reduceByKey(self, func: Callable[[Any, Any], Any], numPartitions: int | None = None,
                    partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Merge the values for each key using an associative and commutative reduce
        function, locally on each mapper first (a "combiner" in MapReduce).

        >>> from operator import add
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
        >>> sorted(rdd.reduceByKey(add).collect())
        [('a', 2), ('b', 1)]
        >>> rdd.reduceByKey(add, 3).getNumPartitions()
        3
        """
        return self.combineByKey(identity, func, func, numPartitions, partitionFunc)

    def foldByKey(self, zeroValue: Any, func: Callable[[Any, Any], Any], numPartitions: int | None = None,
                  partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Merge the values for each key using an associative function ``func`` and a neutral
        ``zeroValue`` which may be added to the result an arbitrary number of times (each
        key's fold starts from a deep copy of it).

        >>> from operator import add
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
        >>> sorted(rdd.foldByKey(0, add).collect())
        [('a', 2), ('b', 1)]
        """

        def create_zero() -> Any:
            return copy.deepcopy(zeroValue)

        return self.combineByKey(lambda v: func(create_zero(), v), func, func, numPartitions, partitionFunc)

    def aggregateByKey(self, zeroValue: Any, seqFunc: Callable[[Any, Any], Any], combFunc: Callable[[Any, Any], Any],
                       numPartitions: int | None = None,
                       partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Aggregate the values of each key, using given combine functions and a neutral
        "zero value": ``seqFunc`` merges a value into an aggregate within a partition,
        ``combFunc`` merges two aggregates. Both may modify and return their first argument.

        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 2)])
        >>> seqFunc = (lambda x, y: (x[0] + y, x[1] + 1))
        >>> combFunc = (lambda x, y: (x[0] + y[0], x[1] + y[1]))
        >>> sorted(rdd.aggregateByKey((0, 0), seqFunc, combFunc).collect())
        [('a', (3, 2)), ('b', (1, 1))]
        """

        def create_zero() -> Any:
            return copy.deepcopy(zeroValue)

        return self.combineByKey(lambda v: seqFunc(create_zero(), v), seqFunc, combFunc, numPartitions,
                                 partitionFunc)

    def groupByKey(self, numPartitions: int | None = None,
                   partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Group the values for each key in the RDD into a single sequence (a
        :class:`~sparklet.rdd.ResultIterable`), hash-partitioning the result into
        ``numPartitions`` partitions. To aggregate, ``reduceByKey`` or ``aggregateByKey``
        combine map side and move far less.

        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
        >>> sorted(rdd.groupByKey().mapValues(len).collect())
        [('a', 2), ('b', 1)]
        >>> sorted(rdd.groupByKey().mapValues(list).collect())
        [('a', [1, 1]), ('b', [1])]
        """
        if numPartitions is None:
            numPartitions = default_reduce_partitions(self)
        partitioner = partitioner_for(numPartitions, partitionFunc)
        shuffled = _shuffled()
        aggregator = shuffled.Combiners(lambda v: [v], _append, _extend)
        if self.partitioner == partitioner:  # type: ignore[attr-defined]
            def group(iterator: Iterable) -> Iterable:
                return shuffled.combine_values_by_key(aggregator, iterator)

            grouped = self.mapPartitions(group, preservesPartitioning=True)  # type: ignore[attr-defined]
        else:
            grouped = shuffled.ShuffledRDD(self, partitioner, aggregator, map_side_combine=False)
        return grouped.mapValues(shuffled.ResultIterable)

    def groupBy(self, f: Callable[[Any], Any], numPartitions: int | None = None,
                partitionFunc: Callable[[Any], int] = portable_hash) -> "RDD":
        """Return an RDD of grouped items: ``(f(x), values with that key)``.

        >>> rdd = sc.parallelize([1, 1, 2, 3, 5, 8])
        >>> result = rdd.groupBy(lambda x: x % 2).collect()
        >>> sorted([(x, sorted(y)) for (x, y) in result])
        [(0, [2, 8]), (1, [1, 1, 3, 5])]
        """
        return self.map(lambda x: (f(x), x)).groupByKey(numPartitions, partitionFunc)  # type: ignore[attr-defined]

    def distinct(self, numPartitions: int | None = None) -> "RDD":
        """Return a new RDD containing the distinct elements in this RDD.

        >>> sorted(sc.parallelize([1, 1, 2, 3]).distinct().collect())
        [1, 2, 3]
        """
        return (self.map(lambda x: (x, None))  # type: ignore[attr-defined]
                .reduceByKey(lambda x, _: x, numPartitions)
                .map(lambda x: x[0]))

    def repartition(self, numPartitions: int) -> "RDD":
        """Return a new RDD that has exactly ``numPartitions`` partitions, redistributing the
        records through a shuffle (``coalesce(numPartitions, shuffle=True)``). Each map task
        deals its records round-robin in a canonical order, so a re-run deals them the same
        way (see :mod:`~sparklet.rdd._shuffled`); to only reduce the number of partitions,
        ``coalesce`` avoids the shuffle.

        >>> rdd = sc.parallelize([1, 2, 3, 4, 5, 6, 7], 4)
        >>> sorted(rdd.glom().collect())
        [[1], [2, 3], [4, 5], [6, 7]]
        >>> len(rdd.repartition(2).glom().collect())
        2
        >>> len(rdd.repartition(10).glom().collect())
        10
        >>> sorted(rdd.repartition(3).collect())
        [1, 2, 3, 4, 5, 6, 7]
        """
        return self.coalesce(numPartitions, shuffle=True)  # type: ignore[attr-defined]

    def reduceByKeyLocally(self, func: Callable[[Any, Any], Any]) -> dict:
        """Merge the values for each key using an associative and commutative reduce
        function, but return the results immediately to the driver as a dictionary (each
        partition is reduced in its task, the partial maps merged on the driver).

        >>> from operator import add
        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
        >>> sorted(rdd.reduceByKeyLocally(add).items())
        [('a', 2), ('b', 1)]
        """
        return self._sync(self.reduceByKeyLocallyAsync(func))  # type: ignore[attr-defined]

    async def reduceByKeyLocallyAsync(self, func: Callable[[Any, Any], Any]) -> dict:
        """Awaitable twin of :meth:`reduceByKeyLocally`; cancelling the awaiting task cancels
        the job.

        >>> import asyncio
        >>> from operator import add
        >>> asyncio.run(sc.parallelize([("a", 1), ("a", 2)]).reduceByKeyLocallyAsync(add))
        {'a': 3}
        """
        func = fail_on_stopiteration(func)

        def reduce_partition(iterator: Iterable) -> Iterable[dict]:
            m: dict = {}
            for k, v in iterator:
                m[k] = func(m[k], v) if k in m else v
            yield m

        def merge_maps(m1: dict, m2: dict) -> dict:
            for k, v in m2.items():
                m1[k] = func(m1[k], v) if k in m1 else v
            return m1

        return await self.mapPartitions(reduce_partition).reduceAsync(merge_maps)  # type: ignore[attr-defined]

    def countByKey(self) -> dict:
        """Count the number of elements for each key, and return the result to the driver
        as a dictionary.

        >>> rdd = sc.parallelize([("a", 1), ("b", 1), ("a", 1)])
        >>> sorted(rdd.countByKey().items())
        [('a', 2), ('b', 1)]
        """
        return self._sync(self.countByKeyAsync())  # type: ignore[attr-defined]

    async def countByKeyAsync(self) -> dict:
        """Awaitable twin of :meth:`countByKey`; cancelling the awaiting task cancels the job.

        >>> import asyncio
        >>> sorted(asyncio.run(sc.parallelize([("a", 1), ("b", 2), ("a", 3)]).countByKeyAsync()).items())
        [('a', 2), ('b', 1)]
        """
        return await self.map(lambda x: x[0]).countByValueAsync()  # type: ignore[attr-defined]
