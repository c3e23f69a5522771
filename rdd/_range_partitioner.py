"""``RangePartitioner``: keys to partitions by ranges, for ``sortByKey``.

The bounds come from a sample of the keys, as PySpark's ``sortByKey`` computes them: count
the RDD (a job), sample ``min(20 * numPartitions / count, 1)`` of it with seed 1 (a second
job), sort the sampled sort keys and take the one at ``int(len * (i + 1) / numPartitions)``
for each ``i < numPartitions - 1``. A key goes to ``bisect_left(bounds, keyfunc(key))``, or
to the mirror partition when descending, so partition ``i`` holds only keys that sort
before those of partition ``i + 1``.

Unlike PySpark, whose bounds are the sampled keys themselves while the lookup compares
``keyfunc(key)`` with them, the bounds here are sort keys (``keyfunc`` of the samples): with
a ``keyfunc`` the two orders can disagree and PySpark's partitions then overlap.
"""

from __future__ import annotations

import bisect
from typing import Any, Callable, Sequence

from sparklet.rdd._partitioner import Partitioner

__all__ = ["RangePartitioner", "range_bounds", "sample_fraction"]

MAX_SAMPLE_PER_PARTITION = 20.0  # Spark's RangePartitioner constant, as PySpark's sortByKey


def _identity(x: Any) -> Any:
    return x


def sample_fraction(num_partitions: int, count: int) -> float:
    """The fraction of an RDD of ``count`` records to sample for ``num_partitions`` ranges.

    >>> sample_fraction(4, 1000), sample_fraction(4, 10)
    (0.08, 1.0)
    """
    return min(num_partitions * MAX_SAMPLE_PER_PARTITION / max(count, 1), 1.0)


def range_bounds(samples: Sequence, num_partitions: int, keyfunc: Callable[[Any], Any] = _identity) -> list:
    """The ``num_partitions - 1`` bounds (sort keys, ascending) cut from sampled keys.

    >>> range_bounds([5, 1, 4, 2, 3, 6], 3)
    [3, 5]
    >>> range_bounds(["b", "A", "c"], 2, keyfunc=str.lower)
    ['b']
    >>> range_bounds([], 3)
    []
    """
    sort_keys = sorted(keyfunc(k) for k in samples)
    if not sort_keys:
        return []
    return [sort_keys[int(len(sort_keys) * (i + 1) / num_partitions)] for i in range(num_partitions - 1)]


class _RangeIndex:
    """The partition function of a :class:`RangePartitioner` (equal when the ranges are)."""

    def __init__(self, bounds: list, ascending: bool, keyfunc: Callable[[Any], Any], num_partitions: int) -> None:
        self.bounds, self.ascending, self.keyfunc, self.num_partitions = bounds, ascending, keyfunc, num_partitions

    def __call__(self, key: Any) -> int:
        p = bisect.bisect_left(self.bounds, self.keyfunc(key))
        return p if self.ascending else self.num_partitions - 1 - p

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, _RangeIndex) and self.bounds == other.bounds and self.ascending == other.ascending
                and self.keyfunc == other.keyfunc and self.num_partitions == other.num_partitions)

    def __hash__(self) -> int:
        return hash((len(self.bounds), self.ascending, self.num_partitions))


class RangePartitioner(Partitioner):
    """Partitions by ranges of ``keyfunc(key)`` cut at ``bounds`` (sorted sort keys, at most
    ``numPartitions - 1`` of them): ascending, partition 0 holds the smallest keys;
    descending, the largest. Equal to another with the same ranges, direction and
    ``keyfunc``. ``sortByKey`` builds one from a sample (see the module notes).

    >>> p = RangePartitioner(3, [10, 20])
    >>> [p(k) for k in (5, 10, 15, 25)]
    [0, 0, 1, 2]
    >>> [RangePartitioner(3, [10, 20], ascending=False)(k) for k in (5, 10, 15, 25)]
    [2, 2, 1, 0]
    >>> p == RangePartitioner(3, [10, 20]), p == RangePartitioner(3, [10, 21])
    (True, False)
    """

    def __init__(self, numPartitions: int, bounds: Sequence, ascending: bool = True,
                 keyfunc: Callable[[Any], Any] = _identity) -> None:
        bounds = list(bounds)
        if isinstance(numPartitions, bool) or not isinstance(numPartitions, int) or numPartitions < 1:
            raise ValueError(f"numPartitions must be a positive integer, got {numPartitions!r}")
        if len(bounds) > numPartitions - 1:
            raise ValueError(f"{len(bounds)} bounds cut more than numPartitions={numPartitions} ranges")
        super().__init__(numPartitions, _RangeIndex(bounds, bool(ascending), keyfunc, numPartitions))

    @property
    def bounds(self) -> list:
        return self.partitionFunc.bounds

    @property
    def ascending(self) -> bool:
        return self.partitionFunc.ascending

    @property
    def keyfunc(self) -> Callable[[Any], Any]:
        return self.partitionFunc.keyfunc

    def __repr__(self) -> str:
        direction = "" if self.ascending else ", ascending=False"
        return f"RangePartitioner({self.numPartitions}, {self.bounds!r}{direction})"
