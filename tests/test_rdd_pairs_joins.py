"""Joins, cogroup, set operations and sorts against plain Python: exact multisets for every
join kind, co-partitioned inputs read without a shuffle, global order across partitions
for sortByKey/sortBy (ascending, descending, with a keyfunc)."""

from __future__ import annotations

import asyncio
import operator
from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdd_support import SerialContext

from sparklet.rdd import HashPartitioner, RangePartitioner, ResultIterable
from sparklet.rdd._base import OneToOneDependency, ShuffleDependency
from sparklet.rdd._shuffled import CoGroupedRDD

from test_rdd_pairs import keys, num_partitions, pair_data, shuffle_deps

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def reference_join(left, right, kind):
    out = []
    left_keys = {k for k, _ in left}
    for k, v in left:
        matches = [w for kk, w in right if kk == k]
        out += [(k, (v, w)) for w in matches]
        if not matches and kind in ("left", "full"):
            out.append((k, (v, None)))
    if kind in ("right", "full"):
        out += [(k, (None, w)) for k, w in right if k not in left_keys]
    return Counter(out)


def find_cogroup(rdd):
    stack = [rdd]
    while stack:
        r = stack.pop()
        if isinstance(r, CoGroupedRDD):
            return r
        stack.extend(d.rdd for d in r.dependencies)
    raise AssertionError(f"no CoGroupedRDD under {rdd!r}")


# -- joins and cogroup -----------------------------------------------------------------------------

@SETTINGS
@given(pair_data(), pair_data(), num_partitions)
def test_every_join_kind_gives_the_exact_multiset(ctx, left_case, right_case, num):
    (left, ls), (right, rs) = left_case, right_case
    sc = ctx
    a, b = sc.parallelize(left, ls), sc.parallelize(right, rs)
    for kind, join in (("inner", a.join), ("left", a.leftOuterJoin), ("right", a.rightOuterJoin),
                       ("full", a.fullOuterJoin)):
        result = join(b, num)
        assert Counter(result.collect()) == reference_join(left, right, kind), kind
        n = num or ls + rs  # PySpark's default: the union of the inputs' partitions
        assert result.getNumPartitions() == n and result.partitioner == HashPartitioner(n)


@SETTINGS
@given(pair_data(), pair_data(), pair_data(), num_partitions)
def test_cogroup_and_group_with_match_python(ctx, c1, c2, c3, num):
    sc = ctx
    rdds = [sc.parallelize(records, slices) for records, slices in (c1, c2, c3)]
    inputs = [c1[0], c2[0], c3[0]]

    def expected(sources):
        all_keys = {k for records in sources for k, _ in records}
        return {k: tuple(sorted(v for kk, v in records if kk == k) for records in sources) for k in all_keys}

    pairs = rdds[0].cogroup(rdds[1], num).collect()
    assert all(isinstance(g, ResultIterable) for _, groups in pairs for g in groups)
    assert len(pairs) == len({k for k, _ in inputs[0] + inputs[1]})
    assert {k: tuple(sorted(g) for g in groups) for k, groups in pairs} == expected(inputs[:2])
    triples = rdds[0].groupWith(rdds[1], rdds[2]).collect()
    assert {k: tuple(sorted(g) for g in groups) for k, groups in triples} == expected(inputs)


@SETTINGS
@given(pair_data(), pair_data(), num_partitions)
def test_subtract_by_key_matches_python(ctx, left_case, right_case, num):
    (left, ls), (right, rs) = left_case, right_case
    sc = ctx
    result = sc.parallelize(left, ls).subtractByKey(sc.parallelize(right, rs), num).collect()
    right_keys = {k for k, _ in right}
    assert Counter(result) == Counter((k, v) for k, v in left if k not in right_keys)


@SETTINGS
@given(st.lists(keys, max_size=25), st.lists(keys, max_size=25), st.integers(1, 6), st.integers(1, 6), num_partitions)
def test_subtract_and_intersection_match_python(left, right, ls, rs, num):
    sc = SerialContext()
    a, b = sc.parallelize(left, ls), sc.parallelize(right, rs)
    assert Counter(a.subtract(b, num).collect()) == Counter(x for x in left if x not in right)
    both = a.intersection(b).collect()
    assert len(both) == len(set(both)) and set(both) == set(left) & set(right)


def test_co_partitioned_inputs_are_read_without_a_shuffle():
    sc = SerialContext()
    left = [(k % 6, k) for k in range(30)]
    right = [(k % 4, -k) for k in range(12)]
    a = sc.parallelize(left, 3).partitionBy(4)
    b = sc.parallelize(right, 2).partitionBy(4)
    joined = a.join(b)
    cogrouped = find_cogroup(joined)
    assert all(type(d) is OneToOneDependency for d in cogrouped.dependencies)
    assert {id(d) for d in shuffle_deps(joined)} == {id(d) for d in shuffle_deps(a) + shuffle_deps(b)}
    assert joined.partitioner == HashPartitioner(4) and joined.getNumPartitions() == 4
    assert Counter(joined.collect()) == reference_join(left, right, "inner")
    map_side = {shuffle for shuffle, _ in sc.env.map_tasks}
    assert map_side == {d.shuffle_id for d in shuffle_deps(a) + shuffle_deps(b)}  # the join moved nothing
    for kind, op in (("left", a.leftOuterJoin), ("full", a.fullOuterJoin)):
        result = op(b)
        assert all(type(d) is OneToOneDependency for d in find_cogroup(result).dependencies)
        assert Counter(result.collect()) == reference_join(left, right, kind)


def test_only_the_inputs_not_partitioned_that_way_are_shuffled():
    sc = SerialContext()
    a = sc.parallelize([(k % 5, k) for k in range(20)], 2).partitionBy(3)
    c = sc.parallelize([(k, k) for k in range(5)], 2)
    mixed = find_cogroup(a.join(c, 3))
    assert [type(d) for d in mixed.dependencies] == [OneToOneDependency, ShuffleDependency]
    assert sorted(a.join(c, 3).collect()) == sorted((k % 5, (k, k % 5)) for k in range(20))
    # no numPartitions and no common partitioner: both are shuffled (PySpark's default count)
    both = find_cogroup(a.join(c))
    assert [type(d) for d in both.dependencies] == [ShuffleDependency, ShuffleDependency]
    assert both.partitioner == HashPartitioner(3 + 2)
    # another partitioner of the same size is not the same partitioner
    other = sc.parallelize([(1, 1)], 1).partitionBy(3, lambda k: 0)
    assert [type(d) for d in find_cogroup(a.cogroup(other)).dependencies] == [ShuffleDependency] * 2


# -- sorting ------------------------------------------------------------------------------------------

sortable = st.one_of(
    st.lists(st.tuples(st.integers(-30, 30), st.integers()), max_size=40),
    st.lists(st.tuples(st.text(alphabet="aAbBc", max_size=3), st.integers()), max_size=40),
    st.lists(st.tuples(st.tuples(st.integers(0, 3), st.text(alphabet="xy", max_size=1)), st.integers()), max_size=40),
)


def _keyfunc(name):
    return {"identity": None, "negate-len": lambda k: (-len(repr(k)), repr(k)), "lower": lambda k: repr(k).lower()}[name]


@SETTINGS
@given(sortable, st.integers(1, 6), st.booleans(), st.one_of(st.none(), st.integers(1, 5)),
       st.sampled_from(["identity", "negate-len", "lower"]))
def test_sort_by_key_orders_globally_across_partitions(records, slices, ascending, num, keyfunc_name):
    sc = SerialContext()
    keyfunc = _keyfunc(keyfunc_name)
    kwargs = {} if keyfunc is None else {"keyfunc": keyfunc}
    sort_key = keyfunc or (lambda k: k)
    rdd = sc.parallelize(records, slices)
    jobs = len(sc.jobs)
    result = rdd.sortByKey(ascending, num, **kwargs)
    n = num or slices
    if n > 1:
        assert len(sc.jobs) - jobs == (2 if records else 1)  # a count, then a sample
    parts = result.glom().collect()
    flat = [r for p in parts for r in p]
    assert Counter(flat) == Counter(records)
    assert [sort_key(k) for k, _ in flat] == sorted((sort_key(k) for k, _ in records), reverse=not ascending)
    if records:
        assert len(parts) == n
    if records and n > 1:
        assert isinstance(result.partitioner, RangePartitioner)
        for i, part in enumerate(parts):
            assert all(result.partitioner(k) == i for k, _ in part)


@SETTINGS
@given(st.lists(st.integers(-100, 100), max_size=40), st.integers(1, 6), st.booleans(), num_partitions)
def test_sort_by_matches_sorted(ctx, values, slices, ascending, num):
    sc = ctx
    rdd = sc.parallelize(values, slices)
    assert rdd.sortBy(lambda x: x % 7, ascending, num).map(lambda x: x % 7).collect() == \
        sorted((x % 7 for x in values), reverse=not ascending)
    assert asyncio.run(rdd.sortByAsync(lambda x: -x, ascending, num)).collect() == \
        sorted(values, key=lambda x: -x, reverse=not ascending)


@SETTINGS
@given(pair_data(st.integers(-10, 10)), st.integers(1, 5), st.booleans())
def test_repartition_and_sort_within_partitions(ctx, case, n, ascending):
    records, slices = case
    sc = ctx
    rdd = sc.parallelize(records, slices)
    result = rdd.repartitionAndSortWithinPartitions(n, lambda k: k % 3, ascending)
    parts = result.glom().collect()
    assert len(parts) == n and Counter(r for p in parts for r in p) == Counter(records)
    for i, part in enumerate(parts):
        assert [k for k, _ in part] == sorted((k for k, _ in part), reverse=not ascending)
        assert all(k % 3 % n == i for k, _ in part)
    parted = rdd.partitionBy(n)
    narrow = parted.repartitionAndSortWithinPartitions(n, ascending=ascending, keyfunc=lambda k: -k)
    assert shuffle_deps(narrow) == shuffle_deps(parted)  # partitioned that way already: sort in place
    for part in narrow.glom().collect():
        assert [-k for k, _ in part] == sorted((-k for k, _ in part), reverse=not ascending)


def test_sort_by_key_of_an_empty_rdd_and_into_one_partition():
    sc = SerialContext()
    empty = sc.parallelize([], 3)
    assert empty.sortByKey(numPartitions=4).collect() == []
    one = sc.parallelize([(3, "c"), (1, "a"), (2, "b")], 3).sortByKey(False, 1)
    assert one.glom().collect() == [[(3, "c"), (2, "b"), (1, "a")]]
    assert shuffle_deps(one) == []  # PySpark's plan: coalesce(1), then sort


def test_word_count_end_to_end():
    sc = SerialContext()
    text = ["a rose is a rose", "is a rose", ""]
    counts = (sc.parallelize(text, 2).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add)
              .sortBy(lambda kv: (-kv[1], kv[0])).collect())
    assert counts == [("a", 3), ("rose", 3), ("is", 2)]
