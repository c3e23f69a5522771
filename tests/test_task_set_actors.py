"""Task sets as actors: one ``stage-<id>.<attempt>`` child of the task scheduler per stage
attempt, stopped when done; a set that crashes (a real ``Kill`` sent to its path) is
replaced by a new attempt of its stage, and the job still gets the right answer with
accumulators counted once per partition."""

from __future__ import annotations

import asyncio
import re
import time

import pytest

from sparklet import Context
from sparklet.actors import Kill
from sparklet.runtime import StageCompleted, StageSubmitted, TaskEnd, TaskStart

QUIET = {"ui.showConsoleProgress": False}
TASK_SCHEDULER = "/user/sparklet/scheduler/task-scheduler"


async def _wait_for(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
async def test_a_killed_task_set_is_resubmitted_and_the_job_is_right(master):
    async with Context(master, "crash-set", conf={**QUIET, "tracing": True}) as sc:
        touched = sc.accumulator(0)

        def slow(x):
            time.sleep(0.05)  # user code in the executor's worker thread: a stage that takes a while
            touched.add(1)
            return x * 3

        job = asyncio.ensure_future(sc.parallelize(range(24), 12).map(slow).collectAsync())
        await _wait_for(lambda: len(sc.listener_events(TaskEnd, stage_id=0)) >= 2)
        path = f"{TASK_SCHEDULER}/stage-0.0"
        sc.actor_system.lookup(path).tell(Kill("crash test"))
        assert await asyncio.wait_for(job, 60) == [x * 3 for x in range(24)]
        assert touched.value == 24  # once per element: results of the dead attempt's tasks were not merged twice
        completed = sc.listener_events(StageCompleted, stage_id=0)
        assert [(c.attempt, c.status) for c in completed] == [(0, "failed"), (1, "succeeded")]
        assert "Task set 0.0 crashed: ActorKilled" in completed[0].failure_reason and "crash test" in completed[0].failure_reason
        resubmitted = sc.listener_events(StageSubmitted, stage_id=0, attempt=1)[0]
        ends = sc.listener_events(TaskEnd, stage_id=0, stage_attempt=0)
        done_first = {e.partition for e in ends if e.status == "success" and e.reason is None}
        assert set(resubmitted.partitions) == set(range(12)) - done_first  # only what was missing
        assert {e.partition for e in sc.listener_events(TaskStart, stage_id=0, stage_attempt=1)} == set(resubmitted.partitions)
        void = [e for e in ends if e.reason and e.reason.startswith("ignored: task set stage-0.0 crashed")]
        assert all(e.partition in resubmitted.partitions for e in void)  # late ends of the dead attempt count for nothing
        # the crash is in the actor events too; the dead set is gone, no set is left behind
        (failure,) = sc.actor_system.events.select(kind="failure", actor=path)
        assert "ActorKilled" in failure["error"] and "crash test" in failure["error"]
        assert "stage-0." not in sc.actor_system.tree()
        assert await sc.parallelize(range(4), 2).sumAsync() == 6  # the scheduler goes on serving


async def test_each_stage_attempt_is_a_child_actor_stopped_when_done():
    async with Context("inproc[2]", "sets", conf=QUIET) as sc:
        seen: set[str] = set()

        def slow(x):
            time.sleep(0.02)
            return x

        job = asyncio.ensure_future(sc.parallelize(range(8), 4).map(slow).map(lambda x: (x % 2, x)).reduceByKey(lambda a, b: a + b)
                                    .map(slow).collectAsync())
        while not job.done():
            seen.update(re.findall(r"stage-\d+\.\d+ \[TaskSetManager\]", sc.actor_system.tree()))
            await asyncio.sleep(0.005)
        assert sorted(await job) == [(0, 12), (1, 16)]
        assert seen >= {"stage-0.0 [TaskSetManager]", "stage-1.0 [TaskSetManager]"}
        assert "stage-" not in sc.actor_system.tree()


SPECULATE = {**QUIET, "speculation": True, "speculation.interval": 0.05, "speculation.minTaskRuntime": "100ms"}


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_straggler_is_overtaken_by_its_speculative_copy(master):
    from sparklet.runtime import Fault, FaultPlan

    straggle = 8.0
    plan = FaultPlan([Fault("slow", stage=0, partition=3, attempt=0, seconds=straggle)])
    with Context(master, "speculation", conf=SPECULATE, faults=plan) as sc:
        seen = sc.accumulator(0)

        def work(x):
            time.sleep(0.01)
            seen.add(1)
            return x + 1

        started = time.monotonic()
        assert sc.parallelize(range(40), 8).map(work).sum() == sum(range(1, 41))
        elapsed = time.monotonic() - started
        assert elapsed < straggle / 2, f"took {elapsed:.1f}s: the straggler was waited for"
        assert seen.value == 40  # the partition that ran twice is counted once
        copies = sc.listener_events(TaskStart, speculative=True)
        assert [(c.stage_id, c.partition, c.attempt) for c in copies] == [(0, 3, 1)]
        original = sc.listener_events(TaskStart, partition=3, attempt=0)[0]
        assert copies[0].executor_id != original.executor_id  # on the other executor
        deadline = time.monotonic() + straggle / 4  # the loser's end comes when its kill lands, after the job
        while len(ends := {e.attempt: e for e in sc.listener_events(TaskEnd, partition=3)}) < 2:
            assert time.monotonic() < deadline, f"the original attempt was not killed: {ends}"
            time.sleep(0.02)
        assert ends[1].status == "success" and ends[1].speculative
        killed = ends[0]
        assert killed.status == "killed" and not killed.speculative
        assert killed.reason == (f"another attempt succeeded: TID {copies[0].task_id} (attempt 1) "
                                 f"on executor {copies[0].executor_id}")


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_an_executor_that_keeps_failing_is_excluded_for_a_while(master):
    from sparklet.rdd._base import TaskContext
    from sparklet.runtime import ExecutorExcluded, ExecutorUnexcluded

    conf = {**QUIET, "excludeOnFailure.enabled": True, "excludeOnFailure.timeout": 2.0}
    with Context(master, "exclude", conf=conf) as sc:
        def flaky_on_exec_0(x):
            if TaskContext.get().env.executor_id == "exec-0":
                raise OSError("bad disk on exec-0")
            time.sleep(0.01)
            return x

        assert sc.parallelize(range(16), 8).map(flaky_on_exec_0).sum() == sum(range(16))
        failed = sc.listener_events(TaskEnd, status="failed")
        assert len(failed) == 2 and {e.executor_id for e in failed} == {"exec-0"}  # then excluded for the stage
        (excluded,) = sc.listener_events(ExecutorExcluded)
        assert (excluded.executor_id, excluded.task_failures) == ("exec-0", 2)
        assert excluded.until == pytest.approx(excluded.time + 2.0, abs=0.5)
        before = len(sc.listener_events(TaskStart))
        assert sc.parallelize(range(8), 8).map(lambda x: x).count() == 8
        assert {e.executor_id for e in sc.listener_events(TaskStart)[before:]} == {"exec-1"}  # nothing on exec-0
        deadline = time.monotonic() + 10
        while not sc.listener_events(ExecutorUnexcluded):
            assert time.monotonic() < deadline, "exec-0 was never let back"
            time.sleep(0.05)
        assert sc.listener_events(ExecutorUnexcluded)[0].executor_id == "exec-0"
        before = len(sc.listener_events(TaskStart))
        assert sc.parallelize(range(8), 8).map(lambda x: time.sleep(0.02) or x).count() == 8
        assert "exec-0" in {e.executor_id for e in sc.listener_events(TaskStart)[before:]}  # back in service
