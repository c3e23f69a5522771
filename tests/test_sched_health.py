"""excludeOnFailure without a loop: a task is not retried where it failed, an executor
failing several tasks of a stage gets no more of them, a task that can run nowhere
aborts its set, and executors failing in successful sets are excluded application-wide
for a while. Every step is followed by ``validate_state``."""

from __future__ import annotations

import pytest

from sparklet.runtime._sched_events import LaunchTask, TaskEnded, TaskSetFailed
from sparklet.runtime._sched_health import (
    ExcludeOnFailure, ExecutorExcludedInfo, ExecutorUnexcludedInfo, HealthTracker,
)

from test_sched_support import FakeClock, of_type, only
from test_sched_tasksets import Harness

EXCLUDE = ExcludeOnFailure(max_task_attempts_per_executor=1, max_failed_tasks_per_executor_in_stage=2,
                           max_failed_tasks_per_executor=2, timeout=60.0)


def fail(h: Harness, launch: LaunchTask) -> list:
    return h.end(launch.task_id, "failed", "ValueError: bad disk", result=ValueError("bad disk"))


def test_a_failed_task_is_not_retried_on_the_executor_it_failed_on():
    h = Harness(exclude=EXCLUDE)
    h.add("e0", cores=1)
    h.add("e1", cores=1)
    first, second = of_type(h.submit(0, [0, 1, 2]), LaunchTask)
    assert (first.executor_id, second.executor_id) == ("e0", "e1")
    actions = fail(h, first)
    relaunch = only(actions, LaunchTask)
    assert relaunch.partition == 2 and relaunch.executor_id == "e0"  # e0 takes another task, not task 0
    retry = only(h.end(second.task_id), LaunchTask)
    assert (retry.partition, retry.executor_id, retry.attempt_number) == (0, "e1", 1)
    h.end(retry.task_id)
    h.end(relaunch.task_id)
    h.assert_idle()
    assert h.ts.health_events == []  # one failure on e0: below the application limit


def test_an_executor_failing_two_tasks_of_a_stage_gets_no_more_of_them_and_is_then_excluded():
    h = Harness(exclude=EXCLUDE)
    h.add("e0", cores=1)
    h.add("e1", cores=1)
    launches = of_type(h.submit(0, [0, 1, 2, 3]), LaunchTask)
    on_e0 = next(l for l in launches if l.executor_id == "e0")
    on_e0 = only(fail(h, on_e0), LaunchTask)  # another task on e0
    assert of_type(fail(h, on_e0), LaunchTask) == []  # two tasks failed there: e0 is excluded for this stage
    manager = h.ts.task_sets[(0, 0)]
    assert manager.excluded_executors == {"e0"}
    while h.ts.task_id_to_executor:
        (task_id,) = h.ts.task_id_to_executor
        assert h.ts.task_id_to_executor[task_id] == "e1"
        h.end(task_id)
    assert h.ts.health_events == [ExecutorExcludedInfo("e0", 2, 60.0)]  # the set succeeded: application-wide now
    h.assert_idle()
    (launch,) = of_type(h.submit(1, [0, 1]), LaunchTask)
    assert launch.executor_id == "e1" and h.ts.core.free_slots() == ()  # e0's core is not offered
    h.clock.now = 59.0
    assert h.step(h.ts.expire_exclusions()) == []
    h.clock.now = 60.0
    actions = h.step(h.ts.expire_exclusions())
    assert actions[0] == ExecutorUnexcludedInfo("e0")
    assert only(actions, LaunchTask).executor_id == "e0"  # back in service
    for task_id in sorted(h.ts.task_id_to_executor):
        h.end(task_id)
    h.assert_idle()


def test_a_task_excluded_everywhere_aborts_its_set_and_an_aborted_set_excludes_nobody():
    h = Harness(exclude=EXCLUDE, max_failures=4)
    h.add("e0", cores=1)
    h.add("e1", cores=1)
    first, other = of_type(h.submit(0, [0, 1]), LaunchTask)
    h.end(other.task_id)
    retry = only(fail(h, first), LaunchTask)
    assert retry.executor_id == "e1"
    actions = fail(h, retry)
    failed = only(actions, TaskSetFailed)
    assert failed.reason.startswith("Aborting TaskSet 0.0 because task 0 (partition 0) cannot run anywhere due to "
                                    "node and executor excludeOnFailure. Most recent failure:\nLost task 0.1")
    assert "spark.excludeOnFailure" in failed.reason and isinstance(failed.exception, ValueError)
    assert [e.status for e in of_type(actions, TaskEnded)] == ["failed"]
    h.assert_idle()
    assert h.ts.health_events == []


def test_the_health_tracker_forgets_old_failures_and_lost_executors():
    clock = FakeClock()
    tracker = HealthTracker(EXCLUDE, clock=clock)
    assert tracker.task_set_succeeded({"e0": 1}) == []
    clock.now = 61.0  # the first failure is forgotten
    assert tracker.task_set_succeeded({"e0": 1}) == []
    tracker.validate_state()
    assert tracker.task_set_succeeded({"e0": 1, "e1": 0}) == [ExecutorExcludedInfo("e0", 2, 121.0)]
    assert tracker.is_excluded("e0") and tracker.next_expiry() == 121.0
    assert tracker.executor_removed("e0") == [ExecutorUnexcludedInfo("e0")]  # a replacement starts clean
    assert not tracker.is_excluded("e0") and tracker.executor_removed("e0") == []
    tracker.validate_state()
    with pytest.raises(ValueError, match="max_task_attempts_per_executor must be a positive integer, got 0"):
        ExcludeOnFailure(max_task_attempts_per_executor=0)
