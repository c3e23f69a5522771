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
    async with Context(master, "crash-set", conf=QUIET) as sc:
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
        # the crash is in the actor tree's history: the dead set is gone, no set is left behind
        await _wait_for(lambda: sc.actor_system.lookup(TASK_SCHEDULER) is not None)
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
