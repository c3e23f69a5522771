"""Key-value operations against plain Python: aggregations by key, partitionBy, repartition,
lookup, determinism declarations, and the shuffle contract as SerialEnv implements it.

Data: skewed keys (one hot key drawn often), ``None`` keys, tuple keys, string and int keys
mixed, 1 to more partitions than records (so empty partitions), numPartitions 1..6 or the
default. The joins, set operations and sorts are in test_rdd_pairs_joins.py.
"""

from __future__ import annotations

import asyncio
import math
import operator
from collections import Counter, defaultdict

import cloudpickle
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdd_support import SerialContext

from sparklet.rdd import HashPartitioner, Partitioner, RangePartitioner, ResultIterable, TaskContext
from sparklet.rdd._base import Determinism, OneToOneDependency, ShuffleDependency
from sparklet.rdd._shuffled import (
    CanonicalRoundRobinRDD, Combiners, ShuffledRDD, canonical_round_robin,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

keys = st.one_of(
    st.none(), st.integers(-3, 3), st.text(alphabet="ab", max_size=2),
    st.tuples(st.integers(0, 2), st.one_of(st.none(), st.text(alphabet="x", max_size=1))),
)


@st.composite
def pair_data(draw, key_strategy=keys):
    """(records, slices): pairs with a skewed key distribution, cut into 1..len+3 slices."""
    hot = draw(key_strategy)
    records = draw(st.lists(st.tuples(st.one_of(st.just(hot), key_strategy), st.integers(-20, 20)), max_size=30))
    return records, draw(st.integers(1, len(records) + 3))


num_partitions = st.one_of(st.none(), st.integers(1, 6))


def grouped(records):
    out = defaultdict(list)
    for k, v in records:
        out[k].append(v)
    return out


def assert_placed_by(rdd, partitioner):
    """Every record of partition i has partitioner(key) == i."""
    for i, part in enumerate(rdd.glom().collect()):
        assert all(partitioner(k) == i for k, _ in part), (i, part)


def shuffle_deps(rdd):
    """Every ShuffleDependency in ``rdd``'s lineage."""
    found, stack, seen = [], [rdd], set()
    while stack:
        r = stack.pop()
        if id(r) in seen:
            continue
        seen.add(id(r))
        for dep in r.dependencies:
            if isinstance(dep, ShuffleDependency):
                found.append(dep)
            stack.append(dep.rdd)
    return found


# -- aggregations by key --------------------------------------------------------------------------

@SETTINGS
@given(pair_data(), num_partitions)
def test_reduce_by_key_matches_python(ctx, case, num):
    records, slices = case
    sc = ctx
    result = sc.parallelize(records, slices).reduceByKey(operator.add, num)
    expected = {k: sum(vs) for k, vs in grouped(records).items()}
    collected = result.collect()
    assert len(collected) == len(expected) and dict(collected) == expected
    n = num or slices
    assert result.getNumPartitions() == n and result.partitioner == HashPartitioner(n)
    assert_placed_by(result, HashPartitioner(n))


@SETTINGS
@given(pair_data(), num_partitions)
def test_combine_fold_and_aggregate_by_key_match_python(ctx, case, num):
    records, slices = case
    sc = ctx
    rdd = sc.parallelize(records, slices)
    expected = grouped(records)
    combined = rdd.combineByKey(lambda v: [v], lambda c, v: c + [v], lambda a, b: a + b, num).collect()
    assert {k: sorted(c) for k, c in combined} == {k: sorted(vs) for k, vs in expected.items()}
    assert len(combined) == len(expected)
    assert dict(rdd.foldByKey(0, operator.add, num).collect()) == {k: sum(vs) for k, vs in expected.items()}
    # a mutable zero value is copied per key and per partition, never shared
    aggregated = rdd.aggregateByKey([], lambda acc, v: (acc.append(v), acc)[1], lambda a, b: (a.extend(b), a)[1],
                                    num).collect()
    assert {k: sorted(c) for k, c in aggregated} == {k: sorted(vs) for k, vs in expected.items()}


@SETTINGS
@given(pair_data(), num_partitions)
def test_group_by_key_gives_result_iterables(ctx, case, num):
    records, slices = case
    sc = ctx
    result = sc.parallelize(records, slices).groupByKey(num).collect()
    assert all(isinstance(vs, ResultIterable) for _, vs in result)
    assert {k: sorted(vs) for k, vs in result} == {k: sorted(vs) for k, vs in grouped(records).items()}
    assert len(result) == len(grouped(records))


@SETTINGS
@given(st.lists(st.integers(-50, 50), max_size=30), st.integers(1, 8), num_partitions)
def test_group_by_and_distinct_match_python(ctx, values, slices, num):
    sc = ctx
    rdd = sc.parallelize(values, slices)
    by_mod = rdd.groupBy(lambda x: x % 3, num).collect()
    assert {k: sorted(vs) for k, vs in by_mod} == {k: sorted(vs) for k, vs in grouped((x % 3, x) for x in values).items()}
    distinct = rdd.distinct(num).collect()
    assert sorted(distinct) == sorted(set(values))


@SETTINGS
@given(pair_data())
def test_count_by_key_and_reduce_by_key_locally_match_python(ctx, case):
    records, slices = case
    sc = ctx
    rdd = sc.parallelize(records, slices)
    assert dict(rdd.countByKey()) == dict(Counter(k for k, _ in records))
    assert rdd.reduceByKeyLocally(operator.add) == {k: sum(vs) for k, vs in grouped(records).items()}
    assert asyncio.run(rdd.countByKeyAsync()) == Counter(k for k, _ in records)


def test_default_partition_counts_follow_pyspark():
    sc = SerialContext(default_parallelism=7)
    rdd = sc.parallelize([(1, 1), (2, 2)], 3)
    assert rdd.reduceByKey(operator.add).getNumPartitions() == 3  # the parent's, not defaultParallelism
    assert rdd.groupByKey().getNumPartitions() == 3
    assert rdd.partitionBy(None).getNumPartitions() == 3
    assert sc.emptyRDD().reduceByKey(operator.add).collect() == []  # no partitions: one reduce partition
    with pytest.raises(ValueError, match="numPartitions must be a positive integer, got 0"):
        rdd.reduceByKey(operator.add, 0)


def test_records_that_are_not_pairs_fail_the_task_as_unpacking_does():
    sc = SerialContext()
    with pytest.raises(TypeError, match="cannot unpack non-iterable int object"):
        sc.parallelize([1, 2, 3]).reduceByKey(operator.add).collect()
    with pytest.raises(ValueError, match="too many values to unpack"):
        sc.parallelize([(1, 2, 3)]).groupByKey().collect()
    with pytest.raises(TypeError, match="unhashable type: 'list'"):
        sc.parallelize([([1], 2)]).partitionBy(2).collect()


def test_a_stop_iteration_in_a_user_function_fails_the_task():
    def bad(a, b):
        raise StopIteration

    sc = SerialContext()
    with pytest.raises(RuntimeError, match="Caught StopIteration"):
        sc.parallelize([(1, 1), (1, 2)], 1).reduceByKey(bad).collect()


# -- partitioning ---------------------------------------------------------------------------------

@SETTINGS
@given(pair_data(), st.integers(1, 6))
def test_partition_by_places_each_key_by_the_partitioner(case, n):
    records, slices = case
    sc = SerialContext()
    rdd = sc.parallelize(records, slices)
    hashed = rdd.partitionBy(n)
    assert hashed.partitioner == HashPartitioner(n) and hashed.getNumPartitions() == n
    assert Counter(hashed.collect()) == Counter(records)
    assert_placed_by(hashed, HashPartitioner(n))
    custom = rdd.partitionBy(n, lambda k: len(repr(k)))
    assert custom.partitioner == Partitioner(n, custom.partitioner.partitionFunc)
    assert_placed_by(custom, lambda k: len(repr(k)) % n)
    assert hashed.partitionBy(n) is hashed  # already partitioned that way: nothing to do


def test_aggregating_an_rdd_already_partitioned_that_way_adds_no_shuffle():
    sc = SerialContext()
    parted = sc.parallelize([(k % 5, k) for k in range(40)], 3).partitionBy(4)
    assert len(shuffle_deps(parted)) == 1
    for result in (parted.reduceByKey(operator.add), parted.groupByKey().mapValues(sorted),
                   parted.combineByKey(lambda v: [v], lambda c, v: c + [v], operator.add),
                   parted.mapValues(lambda v: v * 2).filter(lambda kv: True).reduceByKey(operator.add)):
        assert shuffle_deps(result) == shuffle_deps(parted), result
        assert result.partitioner == HashPartitioner(4)
    assert dict(parted.reduceByKey(operator.add).collect()) == {k: sum(range(k, 40, 5)) for k in range(5)}
    assert len(shuffle_deps(parted.reduceByKey(operator.add, 3))) == 2  # another partitioner: a shuffle


def test_map_sides_run_once_per_shuffle_and_later_jobs_reuse_them():
    sc = SerialContext()
    counts = sc.parallelize([(k % 3, 1) for k in range(30)], 5).reduceByKey(operator.add)
    assert sorted(counts.collect()) == [(0, 10), (1, 10), (2, 10)]
    (dep,) = shuffle_deps(counts)
    assert sc.env.map_tasks == [(dep.shuffle_id, i) for i in range(5)]
    assert counts.count() == 3 and len(sc.env.map_tasks) == 5  # the second job skips the map side


def test_map_tasks_see_their_own_task_context():
    sc = SerialContext()
    seen = sc.parallelize(range(6), 3).map(lambda x: (TaskContext.get().partitionId(), x)).groupByKey(2)
    assert {k: sorted(v) for k, v in seen.collect()} == {0: [0, 1], 1: [2, 3], 2: [4, 5]}


# -- repartition ------------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.one_of(st.integers(-5, 5), st.text(alphabet="ab", max_size=2), st.none()), max_size=40),
       st.integers(1, 8), st.integers(1, 8))
def test_repartition_keeps_the_multiset_and_balances(ctx, values, slices, n):
    sc = ctx
    rdd = sc.parallelize(values, slices)
    for result in (rdd.repartition(n), rdd.coalesce(n, shuffle=True)):
        parts = result.glom().collect()
        assert len(parts) == n and result.getNumPartitions() == n
        assert Counter(x for p in parts for x in p) == Counter(values)
        assert max(map(len, parts)) - min(map(len, parts)) <= slices  # each map task deals evenly
        assert result.partitioner is None


@SETTINGS
@given(st.lists(st.one_of(st.integers(-5, 5), st.text(alphabet="ab", max_size=2), st.tuples(st.integers(0, 3))),
                max_size=30), st.integers(0, 6), st.integers(1, 6), st.randoms())
def test_a_map_task_deals_the_same_records_whatever_their_order(values, index, n, rnd):
    shuffled = list(values)
    rnd.shuffle(shuffled)

    def deal(records):
        out = defaultdict(Counter)
        for target, record in canonical_round_robin(index, n, records):
            assert 0 <= target < n
            out[target][repr(record)] += 1
        return dict(out)

    assert deal(values) == deal(shuffled)


def test_a_rerun_of_a_repartition_map_task_sends_identical_records_to_each_reduce_partition():
    sc = SerialContext()
    # the parent is itself a shuffle's output, so its record order may change on a re-run
    parent = sc.parallelize([(k % 7, k) for k in range(60)], 4).partitionBy(3).values()
    shuffled = parent.repartition(5).dependencies[0].rdd
    assert isinstance(shuffled, ShuffledRDD)
    dep = shuffled.dependencies[0]
    assert isinstance(dep.rdd, CanonicalRoundRobinRDD)
    sc.env.register_shuffles(shuffled)
    for split in dep.rdd.partitions:
        runs = []
        for order in (list, lambda rs: list(reversed(rs))):  # a re-run that reads its input in another order
            context = TaskContext(0, 0, split.index, 0, 0, env=sc.env)
            inner = dep.rdd.dependencies[0].rdd
            records = order(list(inner.iterator(split, context)))
            runs.append(sc.env.route(dep, canonical_round_robin(split.index, 5, records)))
        assert runs[0] == runs[1]
        context = TaskContext(0, 0, split.index, 0, 0, env=sc.env)
        assert sc.env.route(dep, dep.rdd.iterator(split, context)) == runs[0]  # and the RDD does the same


# -- lookup ------------------------------------------------------------------------------------------

@SETTINGS
@given(pair_data(), st.integers(1, 6))
def test_lookup_with_a_partitioner_runs_one_partition(case, n):
    records, slices = case
    sc = SerialContext()
    parted = sc.parallelize(records, slices).partitionBy(n)
    for key in {k for k, _ in records} | {"absent"}:
        jobs = len(sc.jobs)
        assert sorted(parted.lookup(key)) == sorted(v for k, v in records if k == key)
        assert len(sc.jobs) == jobs + 1 and sc.jobs[-1][1] == [HashPartitioner(n)(key)]
    unparted = sc.parallelize(records, slices)
    unparted.lookup(None)
    assert sc.jobs[-1][1] == list(range(slices))


# -- determinism ----------------------------------------------------------------------------------

def test_determinism_declarations():
    sc = SerialContext()
    pairs = sc.parallelize([(k % 3, k) for k in range(12)], 3)
    assert pairs.determinism is Determinism.DETERMINATE
    unordered = pairs.partitionBy(2)
    assert unordered.determinism is Determinism.UNORDERED  # fetch order varies
    assert pairs.reduceByKey(operator.add).determinism is Determinism.UNORDERED  # keys in fetch order
    assert pairs.groupByKey().determinism is Determinism.UNORDERED
    ordered = ShuffledRDD(pairs, HashPartitioner(2), Combiners(lambda v: v, operator.add, operator.add), True,
                          key_ordering=lambda k: k)
    assert ordered.determinism is Determinism.DETERMINATE  # unique keys in a fixed order (Spark's rule)
    assert ShuffledRDD(unordered, HashPartitioner(2), ordered.dependencies[0].aggregator,
                       key_ordering=lambda k: k).determinism is Determinism.DETERMINATE
    unseeded = pairs.sample(False, 0.5)
    assert unseeded.determinism is Determinism.INDETERMINATE
    assert unseeded.reduceByKey(operator.add).determinism is Determinism.INDETERMINATE
    assert ShuffledRDD(unseeded, HashPartitioner(2), ordered.dependencies[0].aggregator,
                       key_ordering=lambda k: k).determinism is Determinism.INDETERMINATE
    # repartition: a canonical deal makes it unordered, not indeterminate, even over an unordered parent
    assert pairs.repartition(3).determinism is Determinism.UNORDERED
    assert unordered.repartition(3).determinism is Determinism.UNORDERED
    assert CanonicalRoundRobinRDD(unordered, 3).determinism is Determinism.DETERMINATE
    assert unseeded.repartition(3).determinism is Determinism.INDETERMINATE
    # a co-partitioned cogroup keeps its parents' level; a shuffled one is unordered
    other = sc.parallelize([(1, "x")], 1).partitionBy(2)
    assert unordered.cogroup(other).determinism is Determinism.UNORDERED
    assert pairs.map(lambda kv: kv).partitionBy(2).mapValues(str).reduceByKey(operator.add).determinism \
        is Determinism.UNORDERED


def test_a_checkpointed_shuffle_is_determinate(tmp_path):
    sc = SerialContext(checkpoint_dir=str(tmp_path))
    counts = sc.parallelize([(k % 3, 1) for k in range(9)], 3).reduceByKey(operator.add)
    counts.checkpoint()
    assert sorted(counts.collect()) == [(0, 3), (1, 3), (2, 3)]
    assert counts.isCheckpointed() and counts.determinism is Determinism.DETERMINATE
    assert [type(d) for d in counts.dependencies] == [OneToOneDependency]
    assert sorted(counts.collect()) == [(0, 3), (1, 3), (2, 3)]
    assert counts.partitioner == HashPartitioner(3)


# -- the pieces -------------------------------------------------------------------------------------

def test_shuffled_rdds_print_their_shuffle_boundaries():
    sc = SerialContext()
    text = sc.parallelize([(1, 2)], 2).reduceByKey(operator.add).toDebugString().decode()
    lines = text.splitlines()
    assert lines[0].startswith("(2) ShuffledRDD[") and lines[1].lstrip().startswith("+-(2) ParallelCollectionRDD[")


def test_partitioners_and_result_iterables_pickle():
    p = RangePartitioner(3, ["b", "d"], ascending=False)
    q = cloudpickle.loads(cloudpickle.dumps(p))
    assert q == p and [q(k) for k in "abcde"] == [2, 2, 1, 1, 0]
    assert p != RangePartitioner(3, ["b", "d"]) and p != HashPartitioner(3)
    r = cloudpickle.loads(cloudpickle.dumps(ResultIterable([1, 2])))
    assert list(r) == [1, 2] and len(r) == 2
    with pytest.raises(ValueError, match="numPartitions must be a positive integer"):
        RangePartitioner(0, [])
    with pytest.raises(ValueError, match="2 bounds cut more than numPartitions=2 ranges"):
        RangePartitioner(2, [1, 2])


@SETTINGS
@given(st.lists(st.integers(-100, 100), max_size=60), st.integers(1, 40), st.integers(1, 4))
def test_tree_aggregate_levels_are_shuffle_stages(values, slices, depth):
    sc = SerialContext()
    rdd = sc.parallelize(values, slices)
    assert rdd.treeAggregate(0, operator.add, operator.add, depth) == sum(values)
    assert rdd.treeAggregate((0, 0), lambda acc, x: (acc[0] + x, acc[1] + 1),
                             lambda a, b: (a[0] + b[0], a[1] + b[1]), depth) == (sum(values), len(values))
    levels, n = 0, float(slices)
    scale = max(int(math.ceil(slices ** (1.0 / depth))), 2)
    while n > scale + n / scale:
        n /= scale
        levels += 1
    assert len({shuffle for shuffle, _ in sc.env.map_tasks}) == 2 * levels  # two aggregations, a stage per level
    assert len(sc.jobs) == 2  # and one job each
