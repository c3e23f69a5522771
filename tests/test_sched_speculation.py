"""Speculation in the task set core, no loop: Spark's checkSpeculatableTasks rule, a copy
on another executor, the first result wins and the other attempt is killed, failures of
one copy while the other runs. Every step is followed by ``validate_state``."""

from __future__ import annotations

import pytest

from sparklet.runtime._sched_events import KillTask, LaunchTask, TaskEnded, TaskSetFailed
from sparklet.runtime._sched_taskset import Speculation, TaskState

from test_sched_support import of_type, only
from test_sched_tasksets import Harness


def straggling(cores_per_executor: int = 1, executors: int = 3) -> tuple[Harness, LaunchTask]:
    """Four tasks; three finish after 1s, the fourth (partition 0, on e0) is still running at t=2."""
    h = Harness(speculation=Speculation(multiplier=1.5, quantile=0.75, min_task_runtime=0.1))
    for k in range(executors):
        h.add(f"e{k}", f"h{k}", cores=cores_per_executor)
    launches = of_type(h.submit(0, [0, 1, 2, 3]), LaunchTask)
    slow = next(l for l in launches if l.partition == 0)
    assert slow.executor_id == "e0"
    h.clock.now = 1.0
    for launch in launches:
        if launch is not slow:
            for more in of_type(h.end(launch.task_id), LaunchTask):
                launches.append(more)
    return h, slow


def test_a_slow_task_gets_a_copy_on_another_executor_and_the_first_result_wins():
    h, slow = straggling()
    h.clock.now = 1.4  # 1.4s running < 1.5 x the 1s median: not yet
    assert h.step(h.ts.check_speculatable_tasks()) == []
    h.clock.now = 2.0
    (copy,) = of_type(h.step(h.ts.check_speculatable_tasks()), LaunchTask)
    assert (copy.partition, copy.attempt_number, copy.speculative) == (0, 1, True)
    assert copy.executor_id != "e0"  # never beside the attempt it copies
    manager = h.ts.task_sets[(0, 0)]
    assert manager.copies_running[0] == 2 and manager.task_fsms[0].state is TaskState.RUNNING
    assert h.step(h.ts.check_speculatable_tasks()) == []  # one copy per task
    actions = h.end(copy.task_id)
    ended = only(actions, TaskEnded)
    assert (ended.partition, ended.status, ended.attempt_number) == (0, "success", 1)
    kill = only(actions, KillTask)
    assert kill.task_id == slow.task_id and kill.executor_id == "e0"
    assert kill.reason == f"another attempt succeeded: TID {copy.task_id} (attempt 1) on executor {copy.executor_id}"
    actions = h.end(slow.task_id, "killed", kill.reason)
    assert [e.status for e in of_type(actions, TaskEnded)] == ["killed"] and of_type(actions, LaunchTask) == []
    assert [a.state for a in manager.attempts[0]] == [TaskState.KILLED, TaskState.SUCCEEDED]
    h.assert_idle()


def test_the_original_winning_kills_the_copy_and_a_late_success_of_the_loser_changes_nothing():
    h, slow = straggling()
    h.clock.now = 2.0
    (copy,) = of_type(h.step(h.ts.check_speculatable_tasks()), LaunchTask)
    actions = h.end(slow.task_id)
    assert only(actions, KillTask).task_id == copy.task_id
    late = h.end(copy.task_id)  # finished before the kill landed: reported, the DAG ignores the duplicate
    assert [e.status for e in of_type(late, TaskEnded)] == ["success"] and of_type(late, KillTask) == []
    assert h.ts.task_sets == {} and h.ts.core.task_sets == {}
    h.assert_idle()


def test_no_copy_without_another_executor_or_enough_successes():
    h, slow = straggling(cores_per_executor=3, executors=1)
    h.clock.now = 5.0
    assert h.step(h.ts.check_speculatable_tasks()) == []  # the only free cores are beside the original
    assert h.ts.task_sets[(0, 0)].speculatable == {0}  # still wanted, should another executor come
    copy = only(h.add("e9", "h9"), LaunchTask)
    assert copy.speculative and copy.executor_id == "e9"
    h.end(copy.task_id)
    h.end(slow.task_id, "killed")
    h.assert_idle()

    h = Harness(speculation=Speculation())
    h.add("e0")
    h.add("e1")
    first, second = of_type(h.submit(0, [0, 1, 2, 3]), LaunchTask)
    h.clock.now = 1.0
    h.end(first.task_id)
    h.clock.now = 60.0  # 1 of 4 succeeded: below the 0.75 quantile, nothing is slow yet
    assert h.step(h.ts.check_speculatable_tasks()) == []


def test_a_failing_copy_counts_but_does_not_requeue_while_the_original_runs():
    h, slow = straggling()
    h.clock.now = 2.0
    (copy,) = of_type(h.step(h.ts.check_speculatable_tasks()), LaunchTask)
    actions = h.end(copy.task_id, "failed", "ValueError: copy", result=ValueError("copy"))
    assert [e.status for e in of_type(actions, TaskEnded)] == ["failed"]
    assert of_type(actions, (LaunchTask, TaskSetFailed)) == []  # the original still runs
    manager = h.ts.task_sets[(0, 0)]
    assert len(manager.failure_reasons[0]) == 1 and manager.task_fsms[0].state is TaskState.RUNNING
    h.end(slow.task_id)
    h.assert_idle()


def test_speculation_settings_are_checked():
    with pytest.raises(ValueError, match="quantile must be within"):
        Speculation(quantile=0.0)
    with pytest.raises(ValueError, match="multiplier must be >= 1"):
        Speculation(multiplier=0.5)
