"""Property tests: every transformation and action against a plain-Python computation of the
same pipeline over the same partitions (lists of ints, strings, tuples; 1 to more slices
than elements; empty inputs)."""

from __future__ import annotations

import bisect
import heapq
import math
import operator
import random
from collections import Counter
from functools import reduce

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rdd_support import SerialContext, pyspark_slices

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


ints = st.lists(st.integers(-1000, 1000), max_size=40)
strings = st.lists(st.text(alphabet="abcxyz", max_size=4), max_size=30)
pairs = st.lists(st.tuples(st.integers(0, 6), st.integers(-50, 50)), max_size=30)
any_data = st.one_of(ints, strings, pairs)


@st.composite
def partitioned(draw, data=any_data):
    values = draw(data)
    return values, draw(st.integers(1, len(values) + 3))


# -- element-wise pipelines ----------------------------------------------------------------------

STEPS = {
    "map": (lambda r: r.map(lambda x: x * 3 + 1), lambda i, p: [x * 3 + 1 for x in p]),
    "filter": (lambda r: r.filter(lambda x: x % 2 == 0), lambda i, p: [x for x in p if x % 2 == 0]),
    "flatMap": (lambda r: r.flatMap(lambda x: [x] * (x % 3)), lambda i, p: [y for x in p for y in [x] * (x % 3)]),
    "mapPartitions": (lambda r: r.mapPartitions(lambda it: [sum(it)]), lambda i, p: [sum(p)]),
    "mapPartitionsWithIndex": (lambda r: r.mapPartitionsWithIndex(lambda k, it: (x + k for x in it)),
                               lambda i, p: [x + i for x in p]),
    "glom-len": (lambda r: r.glom().map(len), lambda i, p: [len(p)]),
}


@SETTINGS
@given(partitioned(ints), st.lists(st.sampled_from(sorted(STEPS)), max_size=6))
def test_pipelines_of_narrow_steps_match_python(ctx, case, steps):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    expected = pyspark_slices(data, n)
    for name in steps:
        transform, reference = STEPS[name]
        rdd = transform(rdd)
        expected = [reference(i, p) for i, p in enumerate(expected)]
    assert rdd.glom().collect() == expected
    assert rdd.collect() == [x for p in expected for x in p]
    if steps:  # the whole chain is one pipelined RDD over the source
        assert type(rdd).__name__ == "PipelinedRDD"
        assert [type(d.rdd).__name__ for d in rdd.dependencies] == ["ParallelCollectionRDD"]


# -- actions ------------------------------------------------------------------------------------

@SETTINGS
@given(partitioned(ints), st.integers(0, 45))
def test_int_actions_match_python(ctx, case, k):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    assert rdd.count() == len(data)
    assert rdd.sum() == sum(data)
    assert rdd.collect() == data
    assert rdd.take(k) == data[:k]
    assert rdd.isEmpty() == (not data)
    assert rdd.top(k) == heapq.nlargest(k, data)
    assert rdd.takeOrdered(k, key=lambda x: -x) == heapq.nsmallest(k, data, key=lambda x: -x)
    assert rdd.fold(0, operator.add) == sum(data)
    assert rdd.aggregate((0, 0), lambda a, x: (a[0] + x, a[1] + 1), lambda a, b: (a[0] + b[0], a[1] + b[1])) \
        == (sum(data), len(data))
    for depth in (1, 2, 3, 4):
        assert rdd.treeAggregate(0, operator.add, operator.add, depth) == sum(data)
    assert dict(rdd.countByValue()) == Counter(data)
    if data:
        assert rdd.first() == data[0]
        assert rdd.reduce(operator.add) == sum(data)
        assert rdd.treeReduce(operator.add, 3) == sum(data)
        assert rdd.max() == max(data) and rdd.min() == min(data)
        assert rdd.max(key=lambda x: -x) == min(data)
        stats = rdd.stats()
        assert stats.count() == len(data)
        assert stats.mean() == pytest.approx(sum(data) / len(data))
        mean = sum(data) / len(data)
        assert stats.variance() == pytest.approx(sum((x - mean) ** 2 for x in data) / len(data), abs=1e-6)
        assert rdd.mean() == pytest.approx(mean)
        assert (rdd.max(), rdd.min()) == (stats.max(), stats.min())
    else:
        with pytest.raises(ValueError, match="RDD is empty"):
            rdd.first()
        with pytest.raises(ValueError, match=r"Can not reduce\(\) empty RDD"):
            rdd.reduce(operator.add)
        with pytest.raises(ValueError, match="Cannot reduce empty RDD."):
            rdd.treeReduce(operator.add)


@SETTINGS
@given(partitioned(strings), st.integers(0, 35))
def test_string_actions_match_python(ctx, case, k):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    assert rdd.collect() == data
    assert rdd.take(k) == data[:k]
    assert rdd.top(k) == heapq.nlargest(k, data)
    assert rdd.takeOrdered(k) == sorted(data)[:k]
    assert dict(rdd.countByValue()) == Counter(data)
    assert rdd.map(len).sum() == sum(map(len, data))
    if data:
        assert (rdd.max(), rdd.min()) == (max(data), min(data))
        assert rdd.reduce(lambda a, b: a + b) == "".join(data)


def _reference_histogram(data, buckets):
    counts = [0] * (len(buckets) - 1)
    for x in data:
        if buckets[0] <= x <= buckets[-1]:
            i = bisect.bisect_right(buckets, x) - 1
            counts[min(i, len(counts) - 1)] += 1
    return counts


@SETTINGS
@given(partitioned(st.lists(st.integers(-100, 100), min_size=1, max_size=40)), st.integers(1, 8),
       st.lists(st.integers(-120, 120), min_size=2, max_size=6, unique=True))
def test_histogram_matches_python(ctx, case, num_buckets, edges):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    buckets, counts = rdd.histogram(num_buckets)
    assert sum(counts) == len(data)
    if min(data) != max(data):
        assert len(counts) == num_buckets and buckets[0] == min(data) and buckets[-1] == max(data)
        assert counts == _reference_histogram(data, buckets)
    edges = sorted(edges)
    assert rdd.histogram(edges) == (edges, _reference_histogram(data, edges))


# -- pairs ----------------------------------------------------------------------------------------

@SETTINGS
@given(partitioned(pairs), st.integers(0, 7))
def test_pair_operations_match_python(ctx, case, key):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    assert rdd.keys().collect() == [k for k, _ in data]
    assert rdd.values().collect() == [v for _, v in data]
    assert rdd.mapValues(lambda v: v * 2).collect() == [(k, v * 2) for k, v in data]
    assert rdd.flatMapValues(lambda v: range(v % 3)).collect() == [(k, x) for k, v in data for x in range(v % 3)]
    assert rdd.keyBy(lambda kv: kv[1]).collect() == [(kv[1], kv) for kv in data]
    assert rdd.collectAsMap() == dict(data)
    assert rdd.lookup(key) == [v for k, v in data if k == key]


# -- zip, union, cartesian, coalesce -------------------------------------------------------------

@SETTINGS
@given(partitioned(any_data))
def test_zips_match_python(ctx, case):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    assert rdd.zip(rdd.map(lambda x: (x,))).collect() == [(x, (x,)) for x in data]
    assert rdd.zipWithIndex().collect() == [(x, i) for i, x in enumerate(data)]
    expected = [(x, i * n + k) for k, part in enumerate(pyspark_slices(data, n)) for i, x in enumerate(part)]
    assert rdd.zipWithUniqueId().collect() == expected


@SETTINGS
@given(partitioned(ints), partitioned(strings), st.integers(1, 12))
def test_union_cartesian_coalesce_match_python(ctx, left, right, m):
    (a, n1), (b, n2) = left, right
    sc = ctx
    r1, r2 = sc.parallelize(a, n1), sc.parallelize(b, n2)
    union = r1.union(r2)
    assert union.collect() == a + b
    assert union.getNumPartitions() == n1 + n2
    assert union.glom().collect() == pyspark_slices(a, n1) + pyspark_slices(b, n2)
    assert (r1 + r2).collect() == a + b
    assert sc.union([r1, r2, r1]).collect() == a + b + a
    assert Counter(r1.cartesian(r2).collect()) == Counter((x, y) for x in a for y in b)
    assert r1.cartesian(r2).getNumPartitions() == n1 * n2
    coalesced = r1.coalesce(m)
    parts = pyspark_slices(a, n1)
    if m >= n1:
        groups = [[i] for i in range(n1)]
    else:
        groups = [list(range((i * n1) // m, ((i + 1) * n1) // m)) for i in range(m)]
    assert coalesced.glom().collect() == [[x for i in g for x in parts[i]] for g in groups]


# -- sampling ---------------------------------------------------------------------------------------

def _reference_generator(seed, split):
    rng = random.Random(seed ^ split)
    for _ in range(10):
        rng.randint(0, 1)
    return rng


def _reference_poisson(rng, mean):
    if mean < 20.0:
        lda, p, k = math.exp(-mean), rng.random(), 0
        while p > lda:
            k += 1
            p *= rng.random()
        return k
    p, k = rng.expovariate(mean), 0
    while p < 1.0:
        k += 1
        p += rng.expovariate(mean)
    return k


@SETTINGS
@given(partitioned(ints), st.floats(0, 1), st.integers(0, 2 ** 40))
def test_seeded_samples_are_pysparks(ctx, case, fraction, seed):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    expected, with_replacement = [], []
    for split, part in enumerate(pyspark_slices(data, n)):
        rng = _reference_generator(seed, split)
        expected += [x for x in part if rng.random() < fraction]
        rng = _reference_generator(seed, split)
        with_replacement += [x for x in part for _ in range(_reference_poisson(rng, fraction * 2))]
    assert rdd.sample(False, fraction, seed).collect() == expected
    assert rdd.sample(True, fraction * 2, seed).collect() == with_replacement


@SETTINGS
@given(partitioned(ints), st.lists(st.floats(0, 10), min_size=1, max_size=4).filter(lambda w: sum(w) > 0),
       st.integers(0, 2 ** 32))
def test_random_split_partitions_the_data(ctx, case, weights, seed):
    data, n = case
    sc = ctx
    splits = sc.parallelize(data, n).randomSplit(weights, seed)
    assert len(splits) == len(weights)
    collected = [s.collect() for s in splits]
    assert Counter(x for c in collected for x in c) == Counter(data)
    assert collected == [s.collect() for s in splits]  # seeded: the same every time


@SETTINGS
@given(partitioned(ints), st.integers(0, 50), st.booleans(), st.integers(0, 1000))
def test_take_sample_sizes_and_membership(ctx, case, num, with_replacement, seed):
    data, n = case
    sc = ctx
    rdd = sc.parallelize(data, n)
    sample = rdd.takeSample(with_replacement, num, seed)
    if not data:
        assert sample == []
    elif with_replacement:
        assert len(sample) == num and set(sample) <= set(data)
    else:
        assert len(sample) == min(num, len(data))
        assert not Counter(sample) - Counter(data)
    assert sample == rdd.takeSample(with_replacement, num, seed)


def test_reduce_merges_partition_results_on_the_driver():
    sc = SerialContext()  # counts its driver calls
    assert reduce(operator.add, range(10)) == sc.parallelize(range(10), 3).reduce(operator.add)
    assert sc.driver_calls == 1
