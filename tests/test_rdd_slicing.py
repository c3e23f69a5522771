"""``parallelize`` slices exactly as PySpark: ``glom().collect()`` of each case is what PySpark
returns (ranges cut at ``start + int(split * size / n) * step``; other collections cut into
pickling batches of ``max(1, min(len // n, 1024))`` that the JVM slices by position)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rdd_support import SerialContext, pyspark_slices

CASES = [
    # (collection, numSlices, PySpark's glom().collect())
    (range(10), 3, [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]),
    (list(range(10)), 3, [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9]]),
    ([0, 2, 3, 4, 6], 5, [[0], [2], [3], [4], [6]]),  # PySpark's doctest
    (range(0, 6, 2), 5, [[], [0], [], [2], [4]]),  # PySpark's doctest
    (["a", "b", "c"], 2, [["a"], ["b", "c"]]),  # PySpark's doctest
    ([1, 2, 3, 4, 5], 3, [[1], [2, 3], [4, 5]]),  # PySpark's coalesce doctest
    ([1, 2, 3, 4, 5, 6, 7], 4, [[1], [2, 3], [4, 5], [6, 7]]),  # PySpark's repartition doctest
    (list(range(11)), 3, [[0, 1, 2], [3, 4, 5], [6, 7, 8, 9, 10]]),  # batches of 3, four of them
    (list(range(20)), 3, [list(range(0, 6)), list(range(6, 12)), list(range(12, 20))]),  # batches of 6
    (range(20), 3, [list(range(0, 6)), list(range(6, 13)), list(range(13, 20))]),  # ranges are not batched
    ([1, 2], 5, [[], [], [1], [], [2]]),  # more slices than elements
    (range(2), 5, [[], [], [0], [], [1]]),
    (range(10, 0, -3), 2, [[10, 7], [4, 1]]),  # negative step
    (range(5, 4, -1), 2, [[], [5]]),  # one element: step taken as 1
    (range(1, 8, 2), 3, [[1], [3], [5, 7]]),
    (range(0), 3, [[], [], []]),
    (range(5, 0), 2, [[], []]),  # empty range with a "wrong" step direction
    ([], 2, [[], []]),
    ("abc", 2, [["a"], ["b", "c"]]),  # any iterable is list-ified
    ((x for x in range(4)), 2, [[0, 1], [2, 3]]),
    ({"k": 1, "j": 2}, 1, [["k", "j"]]),
    ([(1, "a"), (2, "b"), (3, "c")], 2, [[(1, "a")], [(2, "b"), (3, "c")]]),
    (list(range(7)), 1, [list(range(7))]),
]


@pytest.mark.parametrize("data, num_slices, expected", CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_parallelize_slices_as_pyspark(data, num_slices, expected):
    sc = SerialContext()
    assert sc.parallelize(data, num_slices).glom().collect() == expected


def test_large_lists_slice_by_batches_of_1024():
    sc = SerialContext()
    sizes = [len(p) for p in sc.parallelize(list(range(5000)), 2).glom().collect()]
    assert sizes == [2048, 2952]  # 5 batches of <= 1024, split 2 + 3
    sizes = [len(p) for p in sc.parallelize(range(5000), 2).glom().collect()]
    assert sizes == [2500, 2500]


def test_range_matches_pyspark_doctests():
    sc = SerialContext()
    assert sc.range(5).collect() == [0, 1, 2, 3, 4]
    assert sc.range(2, 4).collect() == [2, 3]
    assert sc.range(1, 7, 2).collect() == [1, 3, 5]
    assert sc.range(5, 0, -1).collect() == [5, 4, 3, 2, 1]
    assert sc.range(0, 5, -1).collect() == []
    assert sc.range(5, numSlices=1).getNumPartitions() == 1
    assert sc.range(5, numSlices=10).getNumPartitions() == 10
    assert sc.range(5).getNumPartitions() == 4  # defaultParallelism


@pytest.mark.parametrize("num_slices", [0, -1, -5])
def test_non_positive_num_slices_is_a_usage_error(num_slices):
    sc = SerialContext()
    with pytest.raises(ValueError, match="Positive number of partitions required"):
        sc.parallelize([1, 2, 3], num_slices)
    with pytest.raises(ValueError, match="Positive number of partitions required"):
        sc.range(10, numSlices=num_slices)


def test_the_collection_is_copied_at_parallelize_time():
    sc = SerialContext()
    data = [1, 2, 3]
    rdd = sc.parallelize(data, 2)
    data.append(4)
    assert rdd.collect() == [1, 2, 3]


@settings(max_examples=150, deadline=None)
@given(st.one_of(
    st.lists(st.integers(), max_size=60),
    st.builds(range, st.integers(-50, 50), st.integers(-50, 50), st.integers(-7, 7).filter(bool)),
), st.integers(1, 70))
def test_slicing_matches_the_reference_and_keeps_every_element_once(data, num_slices):
    sc = SerialContext()
    parts = sc.parallelize(data, num_slices).glom().collect()
    assert parts == pyspark_slices(data, num_slices)
    assert [x for p in parts for x in p] == list(data)
    assert len(parts) == num_slices
