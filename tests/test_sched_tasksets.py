"""TaskSchedulerCore and TaskSetManagerCore: retries, executor loss, delay scheduling,
FIFO, zombies, kills. Every step is followed by ``validate_state``."""

from __future__ import annotations

import pytest

from sparklet.actors import InvalidTransition
from sparklet.runtime._sched_events import (
    CancelTasks, ExecutorAdded, ExecutorLost, KillTask, LaunchTask, MarkPartitionCompleted, SubmitTasks, TaskEnded,
    TaskLocality, TaskSetFailed, TaskSpec, executor_location,
)
from sparklet.runtime._sched_inline import InlineTaskScheduler
from sparklet.runtime._tasksets import TASK_TRANSITIONS, TaskState

from test_sched_support import FakeClock, of_type, only

L = TaskLocality


class Harness:
    def __init__(self, **options) -> None:
        self.clock = FakeClock()
        self.ts = InlineTaskScheduler(clock=self.clock, **options)

    def step(self, actions: list) -> list:
        self.ts.validate_state()
        return actions

    def add(self, executor_id: str, host: str = "host", cores: int = 1) -> list:
        return self.step(self.ts.executor_added(executor_id, host, cores))

    def submit(self, stage_id: int, partitions: list[int], attempt: int = 0, priority: int = 0,
               prefs: dict[int, tuple[str, ...]] | None = None) -> list:
        tasks = tuple(TaskSpec(p, i, (prefs or {}).get(p, ())) for i, p in enumerate(partitions))
        return self.step(self.ts.submit_tasks(SubmitTasks(priority, stage_id, attempt, None, None, tasks, False, {}, priority, cause=0)))

    def end(self, task_id: int, status: str = "success", reason: str = "", **fields) -> list:
        return self.step(self.ts.task_ended(task_id, status, reason, **fields))

    def offer(self) -> list:
        return self.step(self.ts.resource_offers())

    def assert_idle(self) -> None:
        self.ts.validate_state()
        assert not self.ts.task_sets and not self.ts.task_id_to_manager and not self.ts.task_id_to_executor
        assert all(not info.running for info in self.ts.executors.values())


def launched(actions: list) -> list[tuple[int, str, int, TaskLocality]]:
    return [(a.partition, a.executor_id, a.attempt_number, a.locality) for a in of_type(actions, LaunchTask)]


def test_max_failures_aborts_with_every_reason():
    h = Harness(max_failures=3)
    h.add("e1", "hostA")
    (launch,) = of_type(h.submit(0, [7]), LaunchTask)
    errors = [ValueError(f"boom {k}") for k in range(3)]
    for k, error in enumerate(errors):
        actions = h.end(launch.task_id, "failed", f"ValueError: boom {k}", result=error)
        ended = only(actions, TaskEnded)
        assert (ended.status, ended.result, ended.partition, ended.attempt_number) == ("failed", error, 7, k)
        if k < 2:
            launch = only(actions, LaunchTask)  # re-queued and relaunched at once on the freed core
            assert launch.attempt_number == k + 1
    failed = only(actions, TaskSetFailed)
    assert actions.index(ended) < actions.index(failed)  # the DAG hears of the task first
    assert failed.exception is errors[-1] and (failed.stage_id, failed.stage_attempt) == (0, 0)
    assert failed.reason.startswith("Task 0 in stage 0.0 failed 3 times, most recent failure: Lost task 0.2 "
                                    "(partition 7) in stage 0.0 (TID 2) (hostA executor e1): ValueError: boom 2")
    for k in range(3):
        assert f"{k + 1}. Lost task 0.{k} (partition 7) in stage 0.0 (TID {k}) (hostA executor e1): ValueError: boom {k}" in failed.reason
    h.assert_idle()


def test_executor_loss_is_not_a_task_failure():
    h = Harness(max_failures=1)
    h.add("e0")
    (launch,) = of_type(h.submit(3, [0]), LaunchTask)
    for k in range(1, 4):  # lost again and again: never counted, never given up on
        h.add(f"e{k}")
        actions = h.step(h.ts.executor_lost(launch.executor_id, "heartbeat timed out"))
        ended = only(actions, TaskEnded)
        assert (ended.status, ended.executor_id) == ("executor_lost", launch.executor_id)
        assert "heartbeat timed out" in ended.reason
        assert actions.index(ended) < actions.index(only(actions, ExecutorLost))
        assert of_type(actions, TaskSetFailed) == []
        lost_task, launch = launch, only(actions, LaunchTask)
        assert (launch.executor_id, launch.attempt_number) == (f"e{k}", k)
        assert h.end(lost_task.task_id, "success") == []  # a late report from the lost executor
    assert h.step(h.ts.executor_lost("e0", "again")) == []  # already gone
    assert only(h.end(launch.task_id), TaskEnded).status == "success"
    h.assert_idle()


def test_delay_scheduling_relaxes_levels_with_the_clock():
    h = Harness(locality_wait=3.0)
    h.add("e1", "hostA")
    h.add("e2", "hostB")
    here = executor_location("hostA", "e1")
    actions = h.submit(0, [0, 1, 2], prefs={0: (here,), 1: (here,), 2: (here,)})
    assert launched(actions) == [(0, "e1", 0, L.PROCESS_LOCAL)]  # e2 is free but not local
    assert h.ts.next_locality_deadline() == 3.0
    h.clock.now = 2.9
    assert h.offer() == []
    h.clock.now = 3.0  # PROCESS_LOCAL's wait is over; NODE_LOCAL (hostA) still has tasks: wait there too
    assert h.offer() == [] and h.ts.next_locality_deadline() == 6.0
    h.clock.now = 6.0
    assert launched(h.offer()) == [(1, "e2", 0, L.ANY)]
    # A launch at PROCESS_LOCAL restarts the wait there.
    h.clock.now = 7.0
    actions = h.end(0)
    assert launched(actions) == [(2, "e1", 0, L.PROCESS_LOCAL)]
    assert h.ts.task_sets[(0, 0)].levels[h.ts.task_sets[(0, 0)].current_level_index] is L.PROCESS_LOCAL
    h.end(1)
    h.end(2)
    h.assert_idle()


def test_node_local_then_any():
    h = Harness(locality_wait=2.0)
    h.add("e1", "hostA")
    h.add("e2", "hostB")
    actions = h.submit(0, [0, 1], prefs={0: ("hostA",), 1: ("hostA",)})
    assert launched(actions) == [(0, "e1", 0, L.NODE_LOCAL)]
    h.clock.now = 1.0
    assert h.offer() == []
    h.clock.now = 2.0
    assert launched(h.offer()) == [(1, "e2", 0, L.ANY)]
    h.end(0)
    h.end(1)
    h.assert_idle()


def test_no_pref_tasks_and_unknown_places_do_not_wait():
    h = Harness(locality_wait=5.0)
    h.add("e1", "hostA", cores=2)
    actions = h.submit(0, [0, 1], prefs={1: ("hostGone", executor_location("hostGone", "e9"))})
    assert sorted(launched(actions)) == [(0, "e1", 0, L.NO_PREF), (1, "e1", 0, L.ANY)]
    assert h.ts.next_locality_deadline() is None
    h.end(0)
    h.end(1)
    h.assert_idle()


def test_fifo_across_jobs():
    h = Harness()
    h.add("e1")
    assert launched(h.submit(5, [0, 1, 2], priority=1)) == [(0, "e1", 0, L.NO_PREF)]
    assert h.submit(7, [0, 1], priority=0) == []  # no free core
    first = h.ts.task_sets[(5, 0)].attempts[0][0].task_id
    actions = h.end(first)
    assert [(a.stage_id, a.partition) for a in of_type(actions, LaunchTask)] == [(7, 0)]  # the earlier job goes first
    order = []
    while h.ts.task_id_to_manager:
        (task_id,) = h.ts.task_id_to_manager
        actions = h.end(task_id)
        order += [(a.stage_id, a.partition) for a in of_type(actions, LaunchTask)]
    assert order == [(7, 1), (5, 1), (5, 2)]
    h.assert_idle()


def test_newer_attempt_makes_older_set_a_zombie():
    h = Harness()
    h.add("e1")
    (old,) = of_type(h.submit(3, [0, 1, 2]), LaunchTask)
    actions = h.submit(3, [1, 2], attempt=1)  # e.g. after a fetch failure, partitions 1 and 2 missing
    assert h.ts.task_sets[(3, 0)].is_zombie and actions == []
    actions = h.end(old.task_id)
    ended = only(actions, TaskEnded)  # still forwarded: the DAG core decides
    assert (ended.stage_id, ended.stage_attempt, ended.partition) == (3, 0, 0)
    assert (3, 0) not in h.ts.task_sets  # nothing runs in it any more: gone
    launch = only(actions, LaunchTask)  # the freed core goes to the live attempt
    assert (launch.stage_attempt, launch.partition, launch.index) == (1, 1, 0)
    h.step(h.ts.handle(MarkPartitionCompleted(3, 2)))  # computed elsewhere: not to be run here
    assert of_type(h.end(launch.task_id), LaunchTask) == []
    h.assert_idle()


def test_cancel_kills_running_tasks_and_kills_are_not_failures():
    h = Harness(max_failures=1)
    h.add("e1", cores=2)
    launches = of_type(h.submit(4, [0, 1, 2]), LaunchTask)
    kills = h.step(h.ts.handle(CancelTasks(4, None, "Job 0 cancelled")))
    assert kills == [KillTask(t.task_id, "e1", 4, 0, "Stage cancelled: Job 0 cancelled") for t in launches]
    for launch in launches:
        actions = h.end(launch.task_id, "killed", "killed: Stage cancelled")
        assert [a.status for a in of_type(actions, TaskEnded)] == ["killed"]
        assert of_type(actions, (LaunchTask, TaskSetFailed)) == []
    h.assert_idle()
    assert h.step(h.ts.cancel_tasks(4, None, "again")) == []


def test_fetch_failure_makes_the_set_a_zombie_without_retry():
    h = Harness(max_failures=1)
    h.add("e1", cores=2)
    first, second = of_type(h.submit(2, [0, 1, 2]), LaunchTask)
    actions = h.end(first.task_id, "fetch_failed", "shuffle 0 map 3 missing", fetch_failed_shuffle_id=0,
                    fetch_failed_map_id=3, fetch_failed_executor_id="e5")
    ended = only(actions, TaskEnded)
    assert (ended.status, ended.fetch_failed_shuffle_id, ended.fetch_failed_map_id, ended.fetch_failed_executor_id) == (
        "fetch_failed", 0, 3, "e5")
    assert of_type(actions, (LaunchTask, TaskSetFailed)) == []
    assert of_type(h.end(second.task_id, "failed", "boom"), TaskSetFailed) == []  # a zombie gives up on nothing
    h.assert_idle()


def test_usage_errors_and_ignored_reports():
    h = Harness()
    with pytest.raises(TypeError, match="speculation must be a Speculation or None, got True"):
        InlineTaskScheduler(clock=h.clock, speculation=True)
    with pytest.raises(ValueError, match="max_failures must be a positive integer, got 0"):
        InlineTaskScheduler(clock=h.clock, max_failures=0)
    h.add("e1")
    with pytest.raises(ValueError, match="'e1' is already registered"):
        h.ts.executor_added("e1", "host", 1)
    with pytest.raises(ValueError, match="status must be one of"):
        h.ts.task_ended(0, "exploded")
    assert h.end(12345) == []
    (launch,) = of_type(h.submit(1, [0]), LaunchTask)
    with pytest.raises(ValueError, match="already submitted"):
        h.submit(1, [0])
    h.end(launch.task_id)
    assert h.end(launch.task_id) == []  # a duplicate report
    h.assert_idle()


def test_executor_added_is_reported_to_the_dag_and_offers_its_cores():
    h = Harness()
    h.submit(0, [0, 1])
    actions = h.add("e1", "hostA", cores=2)
    assert actions[0] == ExecutorAdded("e1", "hostA", 2)
    assert sorted(launched(actions)) == [(0, "e1", 0, L.NO_PREF), (1, "e1", 0, L.NO_PREF)]
    for task_id in sorted(h.ts.task_id_to_manager):
        h.end(task_id)
    h.assert_idle()


def test_task_table_rejects_illegal_moves():
    h = Harness()
    h.add("e1")
    (launch,) = of_type(h.submit(0, [0]), LaunchTask)
    manager = h.ts.task_sets[(0, 0)]
    fsm = manager.task_fsms[0]
    h.clock.now = 2.5
    h.end(launch.task_id, cause=41)
    assert [(old.value, new.value, cause, t) for old, new, (cause, _), t in fsm.history] == [
        ("pending", "running", 0, 0.0), ("running", "succeeded", 41, 2.5)]
    with pytest.raises(InvalidTransition, match=r"succeeded -> running.*pending->running.*running->succeeded"):
        fsm.move(TaskState.RUNNING)
    assert [(a.task_id, a.status, a.locality) for a in manager.attempts[0]] == [(launch.task_id, "success", L.NO_PREF)]
    assert all(target in TASK_TRANSITIONS for targets in TASK_TRANSITIONS.values() for target in targets)
    h.assert_idle()
