"""The shuffle end to end, under both masters: real map outputs on executors' disks,
real fetches between executor processes, real kills."""

from __future__ import annotations

import collections
import operator
import os
import signal
import time

import pytest

from sparklet import Context
from sparklet.runtime import StageCompleted, StageSubmitted, TaskEnd

MASTERS = ["inproc[2]", "local[2]"]
QUIET = {"ui.showConsoleProgress": False}


@pytest.fixture(params=MASTERS)
def sc(request):
    with Context(request.param, "shuffle-tests", conf=QUIET) as context:
        yield context


def words(n: int = 3000) -> list[str]:
    return [f"w{(i * 7919) % 97}" for i in range(n)]


def test_word_count_matches_python(sc):
    data = words()
    counts = sc.parallelize(data, 5).map(lambda w: (w, 1)).reduceByKey(operator.add).collect()
    assert dict(counts) == collections.Counter(data) and len(counts) == len(set(data))


def test_joins_group_and_sort_match_python(sc):
    left = [(k % 13, k) for k in range(200)]
    right = [(k % 7, -k) for k in range(50)]
    joined = sc.parallelize(left, 4).join(sc.parallelize(right, 3)).collect()
    expected = [(a, (x, y)) for a, x in left for b, y in right if a == b]
    assert sorted(joined) == sorted(expected)
    grouped = {k: sorted(v) for k, v in sc.parallelize(left, 4).groupByKey(3).collect()}
    assert grouped == {k: sorted(x for kk, x in left if kk == k) for k in {k for k, _ in left}}
    ordered = sc.parallelize(left, 4).sortByKey(ascending=False, numPartitions=3).collect()
    assert [k for k, _ in ordered] == sorted((k for k, _ in left), reverse=True)


def test_a_spill_forced_by_a_tiny_budget_keeps_the_answer():
    conf = {**QUIET, "shuffle.memory": "64k"}
    with Context("inproc[2]", "spill", conf=conf) as sc:
        data = [(f"key{i % 5000}", i) for i in range(60_000)]
        sc.listener_bus.clear()
        result = dict(sc.parallelize(data, 4).reduceByKey(operator.add, 3).collect())
        expected = collections.defaultdict(int)
        for k, v in data:
            expected[k] += v
        assert result == expected
        spills = sum(e.metrics.get("shuffle_spills", 0) for e in sc.listener_events(TaskEnd))
        assert spills > 0


def test_a_second_action_skips_the_map_stage(sc):
    pairs = sc.parallelize(words(), 4).map(lambda w: (w, 1)).reduceByKey(operator.add, 3)
    first = sorted(pairs.collect())
    sc.listener_bus.clear()
    assert sorted(pairs.collect()) == first
    statuses = [e.status for e in sc.listener_events(StageCompleted)]
    assert "skipped" in statuses and statuses.count("succeeded") == 1
    assert {e.stage_id for e in sc.listener_events(TaskEnd)} == {e.stage_id for e in sc.listener_events(StageCompleted)
                                                                 if e.status == "succeeded"}


def test_a_killed_executor_after_the_map_stage_reruns_only_its_map_tasks():
    with Context("local[2]", "kill-after-map", conf=QUIET) as sc:
        pairs = sc.parallelize(words(4000), 6).map(lambda w: (w, os.getpid())).groupByKey(4)
        first = {k: len(list(v)) for k, v in pairs.collect()}
        map_stage = sc.listener_events(StageSubmitted)[0].stage_id
        ran_on = {e.partition: e.executor_id for e in sc.listener_events(TaskEnd, stage_id=map_stage)}
        victim = next(e for e in sc.executors() if e["executor_id"] == ran_on[0])
        lost = {p for p, executor in ran_on.items() if executor == victim["executor_id"]}
        os.kill(victim["pid"], signal.SIGKILL)
        time.sleep(0.3)
        sc.listener_bus.clear()
        second = {k: len(list(v)) for k, v in pairs.collect()}
        assert second == first
        # The second job builds its own map stage for the same shuffle (parents are
        # submitted first) and runs only the partitions whose outputs were lost.
        rerun_stage = sc.listener_events(StageSubmitted)[0]
        assert rerun_stage.num_tasks == len(lost)
        rerun = {e.partition for e in sc.listener_events(TaskEnd, stage_id=rerun_stage.stage_id) if e.status == "success"}
        assert rerun == lost


def test_repartition_after_a_kill_keeps_the_exact_multiset():
    with Context("local[2]", "repartition", conf=QUIET) as sc:
        data = list(range(1000)) + list(range(500))
        spread = sc.parallelize(data, 5).repartition(4)
        assert sorted(spread.collect()) == sorted(data)
        os.kill(sc.executors()[0]["pid"], signal.SIGKILL)
        time.sleep(0.3)
        assert collections.Counter(spread.collect()) == collections.Counter(data)
        assert collections.Counter(spread.map(lambda x: x * 2).collect()) == collections.Counter(x * 2 for x in data)
