"""Barrier stages end to end, on real contexts: tasks in executor threads (inproc) and in
executor processes (local) synchronize through the driver's coordinator, fail together
and run again together."""

from __future__ import annotations

import operator
import time

import pytest

from sparklet import BarrierTaskContext, Context
from sparklet.rdd import BarrierSyncError
from sparklet.runtime import Fault, FaultInjected, FaultPlan, InjectedFault, StageSubmitted, TaskEnd
from sparklet.runtime._dag_barrier import BarrierJobSlotsNumberCheckFailed, BarrierJobUnsupportedRDDChainException

QUIET = {"ui.showConsoleProgress": False}


def gather_and_wait(index, iterator):
    context = BarrierTaskContext.get()
    gathered = context.allGather(f"partition-{index}:{sum(iterator)}")
    if index == 0:
        time.sleep(0.3)  # the others must wait for this one at the barrier
    before = time.time()
    context.barrier()
    after = time.time()
    yield index, gathered, before, after, len(context.getTaskInfos()), context.stageAttemptNumber()


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_all_gather_returns_every_message_in_partition_order_and_barrier_synchronizes(master):
    with Context(master, "barrier", conf=QUIET) as sc:
        rdd = sc.parallelize(range(10), 2).barrier().mapPartitionsWithIndex(gather_and_wait)
        assert rdd.isBarrier() and not sc.parallelize([1]).isBarrier()
        rows = rdd.collect()
        expected = ["partition-0:10", "partition-1:35"]
        assert [(index, gathered) for index, gathered, *_ in rows] == [(0, expected), (1, expected)]
        latest_arrival = max(before for _, _, before, _, _, _ in rows)
        assert all(after >= latest_arrival for _, _, _, after, _, _ in rows)  # nobody left the barrier early
        assert all(infos == 2 and attempt == 0 for *_, infos, attempt in rows)
        launches = [e for e in sc.listener_events(TaskEnd)]
        assert sorted((e.partition, e.status) for e in launches) == [(0, "success"), (1, "success")]


def fail_partition_one_once(index, iterator):
    context = BarrierTaskContext.get()
    gathered = context.allGather(str(index))
    return [(index, gathered, context.stageAttemptNumber(), sum(iterator))]


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_task_failing_once_reruns_the_whole_stage(master):
    plan = FaultPlan([Fault("raise", stage=0, partition=1, attempt=0)])
    with Context(master, "barrier", conf=QUIET, faults=plan) as sc:
        rows = sc.parallelize(range(10), 2).barrier().mapPartitionsWithIndex(fail_partition_one_once).collect()
        assert rows == [(0, ["0", "1"], 1, 10), (1, ["0", "1"], 1, 35)]  # both from attempt 1
        ends = sorted((e.stage_attempt, e.partition, e.attempt, e.status) for e in sc.listener_events(TaskEnd))
        # Partition 0 waited in allGather: it is killed, or fails first if the coordinator's
        # release (the attempt ended) reaches it before the kill does.
        assert ends[0][:3] == (0, 0, 0) and ends[0][3] in ("killed", "failed")
        assert ends[1:] == [(0, 1, 0, "failed"), (1, 0, 1, "success"), (1, 1, 1, "success")]
        submitted = [(e.attempt, e.partitions) for e in sc.listener_events(StageSubmitted)]
        assert submitted == [(0, (0, 1)), (1, (0, 1))]
        assert len(sc.listener_events(FaultInjected)) == 1
        assert sc.parallelize(range(10), 2).barrier().mapPartitions(lambda it: [sum(it)]).collect() == [10, 35]


def test_not_enough_slots_is_a_clear_error_and_the_context_serves_the_next_job():
    with Context("inproc[2]", "barrier", conf=QUIET) as sc:
        with pytest.raises(BarrierJobSlotsNumberCheckFailed,
                           match=r"has 3 tasks, so it needs 3 slots at once; the cluster has 2 \(cores per executor: "
                                 r"exec-0: 1, exec-1: 1\)"):
            sc.parallelize(range(9), 3).barrier().mapPartitions(lambda it: it).collect()
        assert not sc.listener_events(TaskEnd)  # nothing ran
        assert sc.parallelize(range(9), 3).sum() == 36
        fewer = sc.parallelize(range(9), 3).repartition(2).barrier().mapPartitions(lambda it: [sum(it)])
        assert fewer.getNumPartitions() == 2 and fewer.sum() == 36  # a shuffle to 2 partitions first: fits
        with pytest.raises(BarrierJobUnsupportedRDDChainException, match="has 3 partitions, the stage runs 2 tasks"):
            sc.parallelize(range(9), 3).coalesce(2).barrier().mapPartitions(lambda it: it).collect()


def test_a_task_failing_on_every_attempt_fails_the_job_naming_the_stage_and_cause():
    plan = FaultPlan([Fault("raise", stage=0, partition=1, attempt=None, message="disk on fire")])
    with Context("inproc[2]", "barrier", conf={**QUIET, "stage.maxConsecutiveAttempts": 2}, faults=plan) as sc:
        with pytest.raises(InjectedFault, match="disk on fire") as failure:
            sc.parallelize(range(4), 2).barrier().mapPartitions(lambda it: it).collect()
        note = "\n".join(failure.value.__notes__)
        assert "Barrier ResultStage 0" in note and "has failed the maximum allowable number of times: 2" in note
        assert "attempt 0: Stage failed because barrier task" in note and "partition 1, stage attempt 1" in note
        assert sorted({e.stage_attempt for e in sc.listener_events(TaskEnd)}) == [0, 1]
        assert sc.parallelize(range(4), 2).count() == 4  # still serving


def test_a_sync_timeout_fails_the_waiting_task_clearly():
    def only_partition_zero_waits(index, iterator):
        if index == 0:
            BarrierTaskContext.get().barrier()
        return iterator

    conf = {**QUIET, "barrier.sync.timeout": 0.3, "stage.maxConsecutiveAttempts": 1}
    with Context("inproc[2]", "barrier", conf=conf) as sc:
        started = time.monotonic()
        with pytest.raises(BarrierSyncError, match=r"didn't get all barrier sync requests for barrier epoch 0 from "
                                                   r"Stage 0 \(Attempt 0\) within 0.3 second\(s\).*1 of 2 tasks"):
            sc.parallelize(range(4), 2).barrier().mapPartitionsWithIndex(only_partition_zero_waits).collect()
        assert time.monotonic() - started < 10


def test_a_barrier_map_stage_reruns_in_full_and_its_shuffle_is_right():
    plan = FaultPlan([Fault("raise", stage=0, partition=0, attempt=0)])
    with Context("inproc[2]", "barrier", conf=QUIET, faults=plan) as sc:
        def tag(index, iterator):
            peers = BarrierTaskContext.get().allGather(str(index))
            return [(x % 3, (x, len(peers))) for x in iterator]

        pairs = sc.parallelize(range(12), 2).barrier().mapPartitionsWithIndex(tag)
        result = sorted(pairs.mapValues(lambda v: v[0] * v[1]).reduceByKey(operator.add).collect())
        assert result == sorted((k, 2 * sum(x for x in range(12) if x % 3 == k)) for k in range(3))
        map_ends = sorted((e.stage_attempt, e.partition, e.status) for e in sc.listener_events(TaskEnd) if e.stage_id == 0)
        assert map_ends[0] == (0, 0, "failed") and map_ends[1][:2] == (0, 1) and map_ends[1][2] in ("killed", "failed")
        assert map_ends[2:] == [(1, 0, "success"), (1, 1, "success")]


def test_take_and_barrier_context_outside_a_barrier_stage_are_refused_clearly():
    with Context("inproc[2]", "barrier", conf=QUIET) as sc:
        barrier = sc.parallelize(range(4), 2).barrier().mapPartitions(lambda it: it)
        with pytest.raises(BarrierJobUnsupportedRDDChainException, match=r"barrierRdd.collect\(\)\[0\]"):
            barrier.first()
        assert barrier.collect()[0] == 0
        with pytest.raises(RuntimeError, match="It is not in a barrier stage"):
            sc.parallelize(range(4), 2).mapPartitions(lambda it: [BarrierTaskContext.get()]).collect()
        with pytest.raises(RuntimeError, match="It is not in a barrier stage"):
            BarrierTaskContext.get()


def test_the_failing_barrier_task_scenario_reruns_both_tasks_of_the_stage():
    import subprocess
    import sys
    from pathlib import Path

    scenario = Path(__file__).resolve().parent.parent / "examples" / "scenarios" / "barrier_failure.toml"
    result = subprocess.run([sys.executable, "-m", "sparklet.runtime.cli", "chaos", "run", str(scenario)],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "faults fired: 1" in result.stdout and "tasks re-run: 2" in result.stdout  # the failed one and its partner
    assert "stages resubmitted: 0.1" in result.stdout and "verdict: PASS" in result.stdout


def test_an_executor_killed_under_a_barrier_stage_reruns_it_once_the_executor_is_back():
    plan = FaultPlan([Fault("kill_executor", executor="exec-1", before_task=1)])
    with Context("local[2]", "barrier", conf=QUIET, faults=plan) as sc:
        rows = sc.parallelize(range(10), 2).barrier().mapPartitionsWithIndex(fail_partition_one_once).collect()
        assert [(index, gathered, sum_) for index, gathered, _, sum_ in rows] == [(0, ["0", "1"], 10), (1, ["0", "1"], 35)]
        assert rows[0][2] == rows[1][2] >= 1  # both from the same, later attempt
        lost = [e for e in sc.listener_events(TaskEnd) if e.status == "executor_lost"]
        assert lost and all(e.stage_attempt == 0 for e in lost)
        assert len(sc.listener_events(FaultInjected)) == 1
