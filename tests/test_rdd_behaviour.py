"""How RDDs use their context: jobs (take's incremental scan), blocking actions vs awaitable
twins, cancellation, what must pickle, persistence, lineage printouts, determinism,
partitioners, pipes, and the errors PySpark raises."""

from __future__ import annotations

import asyncio
import datetime
import os
import re
import subprocess
import sys
import threading

import cloudpickle
import pytest

from sparklet.rdd import RDD, ActionInLoopError, HashPartitioner, Partitioner, StatCounter, StorageLevel, portable_hash
from sparklet.rdd._base import Determinism, ShuffleDependency

from rdd_support import SerialContext


# -- jobs -------------------------------------------------------------------------------------------

def test_take_scans_one_partition_then_quadruples_while_nothing_is_found():
    sc = SerialContext()
    assert sc.parallelize(range(100), 100).filter(lambda x: x > 90).take(3) == [91, 92, 93]
    assert [parts for _, parts in sc.jobs] == [[0], list(range(1, 5)), list(range(5, 25)), list(range(25, 100))]


def test_take_interpolates_from_what_the_scanned_partitions_yielded():
    sc = SerialContext()
    assert sc.parallelize(range(100), 10).take(25) == list(range(25))
    # 10 records from 1 partition; 25 wanted: int(1.5 * 25 * 1 / 10) - 1 = 2 more partitions
    assert [parts for _, parts in sc.jobs] == [[0], [1, 2]]
    sc.jobs.clear()
    assert sc.parallelize(range(100), 10).filter(lambda x: x % 10 == 0).take(4) == [0, 10, 20, 30]
    # 1 record from 1 partition: int(1.5 * 4 * 1 / 1) - 1 = 5, capped at 4 * 1
    assert [parts for _, parts in sc.jobs] == [[0], [1, 2, 3, 4]]


def test_take_runs_no_job_when_nothing_is_wanted_or_there_is_no_partition():
    sc = SerialContext()
    assert sc.parallelize(range(10), 3).take(0) == []
    assert sc.emptyRDD().take(5) == []
    assert sc.jobs == []
    assert sc.parallelize([], 3).take(2) == []
    assert [parts for _, parts in sc.jobs] == [[0], [1, 2]]


def test_first_is_one_job_and_zip_with_index_counts_first():
    sc = SerialContext()
    rdd = sc.parallelize(range(10), 5)
    assert rdd.first() == 0 and len(sc.jobs) == 1
    indexed = rdd.zipWithIndex()
    assert len(sc.jobs) == 2  # counted when the transformation is made, as PySpark
    assert indexed.collect()[-1] == (9, 9)
    sc.parallelize(range(3), 1).zipWithIndex()
    assert len(sc.jobs) == 3  # one partition: no job


def test_lookup_with_a_partitioner_searches_one_partition():
    sc = SerialContext()
    rdd = sc.parallelize([(k, k * 10) for k in range(8)], 4).mapValues(lambda v: v)
    assert rdd.lookup(3) == [30] and sc.jobs[-1][1] == [0, 1, 2, 3]
    rdd.partitioner = Partitioner(4, lambda k: k // 2)  # matches how parallelize laid the keys out
    assert rdd.lookup(5) == [50]
    assert sc.jobs[-1][1] == [2]


# -- blocking actions and their awaitable twins --------------------------------------------------

async def test_blocking_actions_refuse_to_run_in_a_loop_and_name_the_twin():
    sc = SerialContext()
    rdd = sc.parallelize(range(10), 2)
    with pytest.raises(ActionInLoopError, match="countAsync"):
        rdd.count()
    with pytest.raises(ActionInLoopError, match="saveAsTextFileAsync"):
        rdd.saveAsTextFile("/nonexistent/never/written")
    assert await rdd.countAsync() == 10
    assert await rdd.map(lambda x: x * 2).collectAsync() == [x * 2 for x in range(10)]
    assert (await rdd.statsAsync()).mean() == 4.5
    assert await rdd.takeAsync(3) == [0, 1, 2]


async def test_cancelling_the_awaiting_task_cancels_the_job():
    sc = SerialContext()
    started = []
    rdd = sc.parallelize(range(10), 10).map(lambda x: started.append(x) or x)
    task = asyncio.ensure_future(rdd.collectAsync())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(sc.jobs) == 1


def test_functions_that_cannot_be_pickled_fail_the_job():
    sc = SerialContext()
    lock = threading.Lock()
    with pytest.raises(TypeError, match="lock"):
        sc.parallelize([1, 2]).map(lambda x: (x, lock)).collect()


def test_an_rdd_used_inside_a_task_says_so():
    sc = SerialContext()
    other = sc.parallelize([1, 2])
    with pytest.raises(RuntimeError, match="SPARK-5063"):
        sc.parallelize([1]).map(lambda x: other.count()).collect()
    with pytest.raises(RuntimeError, match="SPARK-5063"):
        sc.parallelize([1]).map(lambda x: other.map(str)).collect()


def test_the_task_binary_carries_no_parallelize_data_and_no_context():
    sc = SerialContext()
    data = list(range(10_000))
    rdd = sc.parallelize(data, 4).map(lambda x: x + 1)
    assert rdd.count() == 10_000
    binary = cloudpickle.dumps(rdd)
    assert len(binary) < 5_000
    clone = cloudpickle.loads(binary)
    assert clone.ctx is None and clone.id == rdd.id and clone.id() == rdd.id()


# -- persistence ---------------------------------------------------------------------------------

def test_a_cached_rdd_is_computed_once_until_unpersisted():
    sc = SerialContext()
    rdd = sc.parallelize(range(6), 3).map(lambda x: x * x).cache()
    assert sc.persisted == {rdd.id: StorageLevel.MEMORY_ONLY}
    assert rdd.collect() == rdd.collect() == [0, 1, 4, 9, 16, 25]
    assert sc.env.computed == [(rdd.id, 0), (rdd.id, 1), (rdd.id, 2)]
    assert rdd.persist(StorageLevel.MEMORY_ONLY) is rdd  # the same level again is fine
    with pytest.raises(ValueError, match="Cannot change storage level"):
        rdd.persist(StorageLevel.DISK_ONLY)
    rdd.unpersist(blocking=True)
    assert sc.unpersisted == [(rdd.id, True)] and rdd.getStorageLevel() == StorageLevel.NONE
    assert rdd.count() == 6 and len(sc.env.computed) == 3  # not cached any more
    rdd.persist(StorageLevel.DISK_ONLY)
    assert rdd.is_cached and rdd.getStorageLevel() == StorageLevel.DISK_ONLY


def test_a_persisted_step_is_not_folded_into_its_children():
    sc = SerialContext()
    base = sc.parallelize(range(4), 2).map(lambda x: x + 1)
    cached = base.map(lambda x: x * 2).cache()
    child = cached.map(lambda x: x - 1)
    assert child.dependencies[0].rdd is cached
    assert cached.dependencies[0].rdd.dependencies == []  # base's map folded into cached's
    assert child.collect() == [1, 3, 5, 7]


# -- lineage printouts ----------------------------------------------------------------------------

class FakeShuffledRDD(RDD):
    """Only to print a shuffle boundary: three partitions fed by a ShuffleDependency."""

    def __init__(self, parent: RDD) -> None:
        super().__init__(parent.ctx, [ShuffleDependency(parent, HashPartitioner(3))])

    def _get_partitions(self):
        from sparklet.rdd._base import Partition

        return [Partition(i) for i in range(3)]


def _shape(debug: bytes) -> str:
    """The printout without creation sites."""
    return re.sub(r" at \S+ at \S+", "", debug.decode())


def test_to_debug_string_is_sparks_format():
    sc = SerialContext()
    source = sc.parallelize(range(4), 2).setName("numbers")
    mapped = source.map(lambda x: x).cache()
    shuffled = FakeShuffledRDD(mapped)
    union = shuffled.union(source)
    assert _shape(mapped.toDebugString()) == (
        f"(2) PipelinedRDD[{mapped.id}] [Memory Serialized 1x Replicated]\n"
        f" |  numbers ParallelCollectionRDD[{source.id}] []")
    assert _shape(union.toDebugString()) == (
        f"(5) UnionRDD[{union.id}] []\n"
        f" |  FakeShuffledRDD[{shuffled.id}] []\n"
        f" +-(2) PipelinedRDD[{mapped.id}] [Memory Serialized 1x Replicated]\n"
        f"    |  numbers ParallelCollectionRDD[{source.id}] []\n"
        f" |  numbers ParallelCollectionRDD[{source.id}] []")
    assert re.match(rf"numbers ParallelCollectionRDD\[{source.id}\] at parallelize at rdd_support.py:\d+$",
                    repr(source))
    assert re.search(r"PipelinedRDD\[\d+\] at map at test_rdd_behaviour.py:\d+ ", mapped.toDebugString().decode())


# -- determinism and partitioners --------------------------------------------------------------------

def test_determinism_is_declared_per_rdd_type():
    sc = SerialContext()
    rdd = sc.parallelize(range(10), 2)
    assert rdd.map(str).determinism is Determinism.DETERMINATE
    assert rdd.sample(False, 0.5, 7).determinism is Determinism.DETERMINATE
    assert rdd.sample(False, 0.5).determinism is Determinism.INDETERMINATE
    assert rdd.sample(False, 0.5).map(str).determinism is Determinism.INDETERMINATE
    assert all(r.determinism is Determinism.INDETERMINATE for r in rdd.randomSplit([1, 1]))
    shuffled = FakeShuffledRDD(rdd)
    assert shuffled.determinism is Determinism.UNORDERED
    assert shuffled.map(str).determinism is Determinism.UNORDERED
    assert shuffled.zipWithUniqueId().determinism is Determinism.INDETERMINATE  # order-sensitive
    assert shuffled.glom().determinism is Determinism.INDETERMINATE
    assert shuffled.pipe("cat").determinism is Determinism.INDETERMINATE
    assert shuffled.map(str).glom().determinism is Determinism.INDETERMINATE  # composed: still order-sensitive
    assert rdd.glom().determinism is Determinism.DETERMINATE
    assert shuffled.zip(shuffled).determinism is Determinism.INDETERMINATE
    assert shuffled.union(rdd).determinism is Determinism.UNORDERED


def test_partitioners_are_kept_where_pyspark_keeps_them():
    sc = SerialContext()
    pairs = sc.parallelize([(i, i) for i in range(8)], 2)
    pairs.partitioner = HashPartitioner(2)
    assert pairs.mapValues(str).partitioner == HashPartitioner(2)
    assert pairs.flatMapValues(lambda v: [v]).partitioner == HashPartitioner(2)
    assert pairs.filter(lambda kv: True).partitioner == HashPartitioner(2)
    assert pairs.map(lambda kv: kv).partitioner is None
    assert pairs.map(lambda kv: kv, preservesPartitioning=True).partitioner == HashPartitioner(2)
    other = sc.parallelize([(9, 9)], 2)
    other.partitioner = HashPartitioner(2)
    union = pairs.union(other)
    assert type(union).__name__ == "PartitionerAwareUnionRDD"
    assert union.partitioner == HashPartitioner(2) and union.getNumPartitions() == 2
    assert union.glom().collect() == [[(0, 0), (1, 1), (2, 2), (3, 3)], [(4, 4), (5, 5), (6, 6), (7, 7), (9, 9)]]
    assert pairs.union(sc.parallelize([(9, 9)], 2)).partitioner is None


def test_partitioner_equality_and_portable_hash():
    assert HashPartitioner(3) == HashPartitioner(3) != HashPartitioner(4)
    assert HashPartitioner(3) != Partitioner(3, portable_hash)
    assert hash(HashPartitioner(3)) == hash(HashPartitioner(3))
    f = lambda k: 0  # noqa: E731
    assert Partitioner(2, f) == Partitioner(2, f) != Partitioner(2, lambda k: 0)
    assert portable_hash(None) == 0
    assert portable_hash((None, 1)) & 0xFFFFFFFF == 219750521
    assert portable_hash(("a", (1, None))) == portable_hash(("a", (1, None)))
    for unhashable in ([1], {1: 2}, {1}, bytearray(b"x"), ("a", [1])):
        with pytest.raises(TypeError, match="unhashable"):
            portable_hash(unhashable)
    with pytest.raises(ValueError, match="numPartitions must be a positive integer"):
        HashPartitioner(0)


def test_portable_hash_does_not_depend_on_the_hash_seed():
    values = ["", "a", "spark", "\u00e9t\u00e9", "\u4e2d\u6587", "\U0001f600", b"bytes", frozenset({"x", ("y", 2)}),
              datetime.date(2024, 2, 29), datetime.datetime(1999, 12, 31, 23, 59, 59, 999), ("k", 1, None), 12, 2.5]
    script = ("import datetime; from sparklet.rdd import portable_hash; "
              "print([portable_hash(v) for v in %r])") % (values,)
    outputs = set()
    for seed in ["0", "1", "12345", "random"]:
        env = {**os.environ, "PYTHONHASHSEED": seed}
        outputs.add(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert len(outputs) == 1
    assert outputs.pop().strip() == str([portable_hash(v) for v in values])
    # with seed 0 the builtin hash is PySpark's: strings hash exactly as on a PySpark worker
    script0 = "import datetime; print([hash(v) for v in %r])" % (values[:10],)
    builtin = subprocess.run([sys.executable, "-c", script0], env={**os.environ, "PYTHONHASHSEED": "0"},
                             capture_output=True, text=True, check=True).stdout
    assert builtin.strip() == str([portable_hash(v) for v in values[:10]])


# -- pipe -------------------------------------------------------------------------------------------

def test_pipe_feeds_each_partition_to_a_process():
    sc = SerialContext()
    assert sc.parallelize(["1", "2", "", "3"]).pipe("cat").collect() == ["1", "2", "", "3"]
    assert sc.parallelize(["b\n", "a"], 1).pipe("sort").collect() == ["a", "b"]
    assert sc.parallelize([1, 2, 3], 3).pipe("wc -l").map(lambda s: int(s.strip())).collect() == [1, 1, 1]
    env_out = sc.parallelize([1], 1).pipe("env", env={"ONLY": "this"}).collect()
    assert env_out == ["ONLY=this"]  # exactly env, as PySpark
    with pytest.raises(RuntimeError, match="Pipe function `false' exited with error code 1"):
        sc.parallelize([1], 1).pipe("false", checkCode=True).collect()
    assert sc.parallelize([1], 1).pipe("false").collect() == []


def test_pipe_stopped_early_leaves_no_process_or_thread():
    sc = SerialContext()
    assert sc.parallelize(range(100_000), 1).pipe("cat").take(2) == ["0", "1"]
    assert sc.parallelize(range(10), 1).pipe("head -n 1").collect() == ["0"]


def test_pipe_fails_the_task_when_its_input_fails():
    sc = SerialContext()
    with pytest.raises(ZeroDivisionError):
        sc.parallelize([1, 0], 1).map(lambda x: 1 // x).pipe("cat").collect()


# -- errors as PySpark raises them ------------------------------------------------------------------

def test_usage_errors_are_pysparks():
    sc = SerialContext()
    rdd = sc.parallelize(range(10), 2)
    with pytest.raises(ValueError, match="Fraction must be nonnegative."):
        rdd.sample(False, -0.1)
    with pytest.raises(ValueError, match="Weights must be nonnegative"):
        rdd.randomSplit([1, -1])
    with pytest.raises(ValueError, match="Sum of weights must be positive"):
        rdd.randomSplit([0, 0])
    with pytest.raises(ValueError, match="Sample size cannot be negative."):
        rdd.takeSample(False, -1)
    with pytest.raises(ValueError, match="Sample size cannot be greater than"):
        rdd.takeSample(False, sys.maxsize)
    with pytest.raises(ValueError, match="top N cannot be negative."):
        rdd.takeOrdered(-1)
    with pytest.raises(ValueError, match="Number of partitions must be positive."):
        rdd.coalesce(0)
    with pytest.raises(ValueError, match="Number of partitions must be positive."):
        rdd.coalesce(0, shuffle=True)
    with pytest.raises(ValueError, match="Depth cannot be smaller than 1 but got 0."):
        rdd.treeAggregate(0, max, max, 0)
    with pytest.raises(ValueError, match="Can only zip with RDD which has the same number of partitions"):
        rdd.zip(sc.parallelize(range(10), 3))
    with pytest.raises(ValueError, match="Can only zip RDDs with same number of elements in each partition"):
        rdd.zip(rdd.filter(lambda x: x != 3)).collect()
    with pytest.raises(ValueError, match="Can only zip RDDs with same number of elements in each partition"):
        rdd.filter(lambda x: x != 3).zip(rdd).collect()
    with pytest.raises(TypeError):
        rdd + [1]
    with pytest.raises(IndexError, match="union"):
        sc.union([])
    with pytest.raises(RuntimeError, match="Caught StopIteration thrown from user's code"):
        rdd.map(lambda x: next(iter([]))).collect()


def test_histogram_errors_are_pysparks():
    sc = SerialContext()
    rdd = sc.parallelize([1, 2, 3])
    for buckets, message in [(0, "number of buckets must be >= 1"), ([1], "buckets should have more than one value"),
                             ([1, None], "can not have None or NaN in buckets"), ([2, 1], "buckets should be sorted"),
                             ([1, 1, 2], "buckets should not contain duplicated values")]:
        with pytest.raises(ValueError, match=re.escape(message)):
            rdd.histogram(buckets)
    with pytest.raises(TypeError, match="buckets should be a list or tuple or number"):
        rdd.histogram("abc")
    with pytest.raises(ValueError, match="Can not generate buckets with infinite value"):
        sc.parallelize([1.0, float("inf")]).histogram(2)
    with pytest.raises(TypeError, match="Can not generate buckets with non-number in RDD"):
        sc.parallelize(["a", "b"]).histogram(2)
    assert sc.parallelize([1, None, float("nan"), 3]).histogram(2) == ([1, 2, 3], [1, 1])
    assert sc.parallelize([2, 2]).histogram(3) == ([2, 2], [2])
    assert sc.parallelize([0.0, 1.0]).histogram([0.0, 0.5, 1.0]) == ([0.0, 0.5, 1.0], [1, 1])


# -- StatCounter --------------------------------------------------------------------------------------

def test_stat_counter_is_pysparks():
    empty = StatCounter()
    assert empty.count() == 0 and str(empty.variance()) == "nan" and str(empty.sampleStdev()) == "nan"
    assert repr(empty) == "(count: 0, mean: 0.0, stdev: nan, max: -inf, min: inf)"
    s = StatCounter([1, 2, 3])
    assert repr(s) == "(count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)"
    merged = StatCounter([1, 2]).mergeStats(StatCounter([3, 4, 5]))
    assert merged.count() == 5 and merged.mean() == 3.0 and merged.variance() == 2.0
    assert s.mergeStats(s).count() == 6  # merging with itself
    assert StatCounter([1, float("nan")]).max() != StatCounter([1, float("nan")]).max()  # NaN propagates
    assert StatCounter([1, 2, 3, 4]).asDict(sample=True)["variance"] == 1.25
    sc = SerialContext()
    assert sc.parallelize([], 3).stats().count() == 0
    with pytest.raises(ValueError, match=r"Can not reduce\(\) empty RDD"):
        sc.emptyRDD().stats()
