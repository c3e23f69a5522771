"""Joins, ``cogroup`` and the set operations built on it (PySpark's names, argument orders,
defaults and results).

Everything here is a :class:`~sparklet.rdd._shuffled.CoGroupedRDD` followed by narrow steps,
as PySpark's ``python_join`` family is a cogroup followed by ``flatMapValues``. The
cogroup's partitioner: with ``numPartitions``, a ``HashPartitioner`` of that many; without,
the inputs' common partitioner when they all have the same one, else a ``HashPartitioner``
of as many partitions as the inputs have together (what PySpark's union of the inputs
gives ``groupByKey``). An input already partitioned by that partitioner is read without a
shuffle (Spark's co-partitioning), so joining RDDs that went through the same
``partitionBy`` moves nothing. The result keeps the cogroup's partitioner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from sparklet.rdd._partitioner import HashPartitioner

if TYPE_CHECKING:
    from sparklet.rdd._rdd import RDD

__all__ = ["JoinsMixin", "cogroup"]


def cogroup(rdds: Sequence["RDD"], numPartitions: int | None) -> "RDD":
    """``(key, (ResultIterable per input))`` for every key of any input (see the notes)."""
    from sparklet.rdd._shuffled import CoGroupedRDD

    if numPartitions is not None:
        partitioner: Any = HashPartitioner(numPartitions)
    else:
        first = rdds[0].partitioner
        if first is not None and all(rdd.partitioner == first for rdd in rdds):
            partitioner = first
        else:
            partitioner = HashPartitioner(sum(rdd.getNumPartitions() for rdd in rdds) or 1)
    return CoGroupedRDD(rdds, partitioner)


def _inner(groups: tuple) -> Iterable[tuple]:
    vs, ws = groups
    return ((v, w) for v in vs for w in ws)


def _left_outer(groups: tuple) -> Iterable[tuple]:
    vs, ws = groups
    return ((v, w) for v in vs for w in (ws if len(ws) else [None]))


def _right_outer(groups: tuple) -> Iterable[tuple]:
    vs, ws = groups
    return ((v, w) for v in (vs if len(vs) else [None]) for w in ws)


def _full_outer(groups: tuple) -> Iterable[tuple]:
    vs, ws = groups
    return ((v, w) for v in (vs if len(vs) else [None]) for w in (ws if len(ws) else [None]))


class JoinsMixin:
    def cogroup(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """For each key k in ``self`` or ``other``, return a resulting RDD that contains a
        tuple with the list of values for that key in ``self`` as well as ``other``.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd2 = sc.parallelize([("a", 2)])
        >>> [(x, tuple(map(list, y))) for x, y in sorted(list(rdd1.cogroup(rdd2).collect()))]
        [('a', ([1], [2])), ('b', ([4], []))]
        """
        return cogroup([self, other], numPartitions)  # type: ignore[list-item]

    def groupWith(self, other: "RDD", *others: "RDD") -> "RDD":
        """Alias for cogroup but with support for multiple RDDs.

        >>> rdd1 = sc.parallelize([("a", 5), ("b", 6)])
        >>> rdd2 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd3 = sc.parallelize([("a", 2)])
        >>> rdd4 = sc.parallelize([("b", 42)])
        >>> [(x, tuple(map(list, y))) for x, y in
        ...     sorted(list(rdd1.groupWith(rdd2, rdd3, rdd4).collect()))]
        [('a', ([5], [1], [2], [])), ('b', ([6], [4], [], [42]))]
        """
        return cogroup([self, other, *others], None)  # type: ignore[list-item]

    def join(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Return an RDD containing all pairs of elements with matching keys in ``self`` and
        ``other``: a ``(k, (v1, v2))`` tuple for each ``(k, v1)`` in ``self`` and ``(k, v2)``
        in ``other``. Performs a hash join across the cluster.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd2 = sc.parallelize([("a", 2), ("a", 3)])
        >>> sorted(rdd1.join(rdd2).collect())
        [('a', (1, 2)), ('a', (1, 3))]
        """
        return self.cogroup(other, numPartitions).flatMapValues(_inner)  # type: ignore[attr-defined]

    def leftOuterJoin(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Perform a left outer join of ``self`` and ``other``: for each ``(k, v)`` in
        ``self``, every ``(k, (v, w))`` with ``(k, w)`` in ``other``, or ``(k, (v, None))``
        if no element of ``other`` has key k.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd2 = sc.parallelize([("a", 2)])
        >>> sorted(rdd1.leftOuterJoin(rdd2).collect())
        [('a', (1, 2)), ('b', (4, None))]
        """
        return self.cogroup(other, numPartitions).flatMapValues(_left_outer)  # type: ignore[attr-defined]

    def rightOuterJoin(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Perform a right outer join of ``self`` and ``other``: for each ``(k, w)`` in
        ``other``, every ``(k, (v, w))`` with ``(k, v)`` in ``self``, or ``(k, (None, w))``
        if no element of ``self`` has key k.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd2 = sc.parallelize([("a", 2)])
        >>> sorted(rdd2.rightOuterJoin(rdd1).collect())
        [('a', (2, 1)), ('b', (None, 4))]
        """
        return self.cogroup(other, numPartitions).flatMapValues(_right_outer)  # type: ignore[attr-defined]

    def fullOuterJoin(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Perform a full outer join of ``self`` and ``other``: the pairs of the left and of
        the right outer join, ``(k, (v, None))`` and ``(k, (None, w))`` for keys only one side
        has.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4)])
        >>> rdd2 = sc.parallelize([("a", 2), ("c", 8)])
        >>> sorted(rdd1.fullOuterJoin(rdd2).collect())
        [('a', (1, 2)), ('b', (4, None)), ('c', (None, 8))]
        """
        return self.cogroup(other, numPartitions).flatMapValues(_full_outer)  # type: ignore[attr-defined]

    def subtractByKey(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Return each (key, value) pair in ``self`` that has no pair with matching key in
        ``other``.

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 2)])
        >>> rdd2 = sc.parallelize([("a", 3), ("c", None)])
        >>> sorted(rdd1.subtractByKey(rdd2).collect())
        [('b', 4), ('b', 5)]
        """

        def only_in_self(pair: tuple) -> bool:
            _, (val1, val2) = pair
            return bool(len(val1)) and not len(val2)

        return (self.cogroup(other, numPartitions)
                .filter(only_in_self)  # type: ignore[attr-defined]
                .flatMapValues(lambda groups: groups[0]))

    def subtract(self, other: "RDD", numPartitions: int | None = None) -> "RDD":
        """Return each value in ``self`` that is not contained in ``other`` (every copy of it).

        >>> rdd1 = sc.parallelize([("a", 1), ("b", 4), ("b", 5), ("a", 3)])
        >>> rdd2 = sc.parallelize([("a", 3), ("c", None)])
        >>> sorted(rdd1.subtract(rdd2).collect())
        [('a', 1), ('b', 4), ('b', 5)]
        """
        rdd = other.map(lambda x: (x, True))
        return self.map(lambda x: (x, True)).subtractByKey(rdd, numPartitions).keys()  # type: ignore[attr-defined]

    def intersection(self, other: "RDD") -> "RDD":
        """Return the intersection of this RDD and another one, without duplicates, even if
        the inputs had some.

        >>> rdd1 = sc.parallelize([1, 10, 2, 3, 4, 5])
        >>> rdd2 = sc.parallelize([1, 6, 2, 3, 7, 8])
        >>> sorted(rdd1.intersection(rdd2).collect())
        [1, 2, 3]
        """
        return (self.map(lambda v: (v, None))  # type: ignore[attr-defined]
                .cogroup(other.map(lambda v: (v, None)))
                .filter(lambda k_vs: all(k_vs[1]))
                .keys())
