"""Barrier stages without a loop: the coordinator's core, the DAG's whole-stage rule, the
task scheduler's all-or-nothing launch, and the checks at submission."""

from __future__ import annotations

import pytest
from test_sched_support import (
    Cluster, DagHarness, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, UnionRDD, of_type, only,
)

from sparklet.rdd._barrier import is_barrier
from sparklet.runtime._barrier import (
    BarrierSyncCore, CancelSyncTimer, RequestToSync, StartSyncTimer, SyncReply,
)
from sparklet.runtime._dag_barrier import BarrierJobSlotsNumberCheckFailed, BarrierJobUnsupportedRDDChainException
from sparklet.runtime._sched_events import ExecutorAdded, JobFailed, JobSucceeded, SubmitTasks


# -- the coordinator's core ---------------------------------------------------------------------------

def request(partition: int, epoch: int = 0, method: str = "allGather", message: str = "", *, num_tasks: int = 3,
            stage: int = 5, attempt: int = 0) -> RequestToSync:
    return RequestToSync(stage, attempt, num_tasks, partition, 100 + partition, epoch, method, message)


class Sync:
    def __init__(self, timeout: float = 30.0) -> None:
        self.core = BarrierSyncCore(timeout=timeout)

    def ask(self, req: RequestToSync, requester: str | None = None) -> list:
        actions = self.core.request(req, requester or f"p{req.partition}")
        self.core.validate_state()
        return actions


def replies(actions: list) -> dict:
    return {a.requester: (a.ok, a.messages, a.error) for a in of_type(actions, SyncReply)}


def test_all_gather_releases_everyone_in_partition_order():
    s = Sync()
    first = s.ask(request(2, message="c"))
    assert first == [StartSyncTimer((5, 0), 0, 30.0)]
    assert s.ask(request(0, message="a")) == []
    last = s.ask(request(1, message="b"))
    assert replies(last) == {p: (True, ("a", "b", "c"), "") for p in ("p0", "p1", "p2")}
    assert [a.requester for a in of_type(last, SyncReply)] == ["p0", "p1", "p2"]
    assert last[-1] == CancelSyncTimer((5, 0))
    assert s.core.attempts[(5, 0)].epoch == 1 and not s.core.timers


def test_epochs_advance_and_a_stale_epoch_fails():
    s = Sync()
    for epoch in range(3):
        for p in range(3):
            actions = s.ask(request(p, epoch, "barrier"))
        assert all(ok for ok, _, _ in replies(actions).values()) and len(replies(actions)) == 3
    stale = replies(s.ask(request(1, 1, "barrier")))["p1"]
    assert stale[0] is False and "barrier epoch 1 does not match the current epoch 3" in stale[2]
    assert "task 101 (partition 1) is not properly killed" in stale[2]


def test_timeout_fails_every_waiter_and_ends_the_attempt():
    s = Sync(timeout=2.5)
    s.ask(request(0))
    s.ask(request(2))
    assert s.core.timed_out(5, 0, 7) == []  # a timer of another epoch: ignored
    actions = s.core.timed_out(5, 0, 0)
    s.core.validate_state()
    failed = replies(actions)
    assert set(failed) == {"p0", "p2"} and not any(ok for ok, _, _ in failed.values())
    assert ("didn't get all barrier sync requests for barrier epoch 0 from Stage 5 (Attempt 0) within 2.5 second(s) "
            "(barrier.sync.timeout): 2 of 3 tasks arrived (partitions [0, 2])") in failed["p0"][2]
    assert CancelSyncTimer((5, 0)) in actions
    late = replies(s.ask(request(1)))["p1"]
    assert late[0] is False and "Stage 5 (Attempt 0) has already ended" in late[2]


def test_mixing_barrier_and_all_gather_fails_the_call():
    s = Sync()
    s.ask(request(0, method="barrier"))
    failed = replies(s.ask(request(1, method="allGather", message="x")))
    assert set(failed) == {"p0", "p1"} and not any(ok for ok, _, _ in failed.values())
    assert "Different barrier sync types found for the sync Stage 5 (Attempt 0) epoch 0: barrier, allGather" in failed["p1"][2]


def test_attempt_end_releases_waiters_and_late_calls_fail():
    s = Sync()
    s.ask(request(0, num_tasks=2))
    s.ask(request(0, num_tasks=2, attempt=1))  # another attempt is untouched
    actions = s.core.attempt_ended(5, 0, "failed: task 3 raised")
    s.core.validate_state()
    assert replies(actions) == {"p0": (False, (), "Stage 5 (Attempt 0) has finished: failed: task 3 raised")}
    assert s.core.attempt_ended(5, 0, "again") == []
    assert not replies(s.ask(request(1, num_tasks=2)))["p1"][0]
    assert replies(s.ask(request(1, num_tasks=2, attempt=1)))["p1"][0] is True


def test_disagreeing_task_counts_and_duplicates_fail_the_newcomer():
    s = Sync()
    s.ask(request(0))
    wrong = replies(s.ask(request(1, num_tasks=4)))["p1"]
    assert "Number of tasks of Stage 5 (Attempt 0) is 4 from task 101 (partition 1), previously it was 3." == wrong[2]
    twice = replies(s.ask(request(0), requester="copy"))["copy"]
    assert twice[0] is False and "already waiting in barrier epoch 0" in twice[2]
    assert s.core.fail_everyone("stopping") and not s.core.attempts


# -- which RDDs are barrier ---------------------------------------------------------------------------

class BarrierRDD(MappedRDD):
    _from_barrier = True


def test_barrier_reaches_narrow_children_but_not_past_a_shuffle():
    ctx_rdd = SourceRDD(FakeContext(), 2)
    barrier = BarrierRDD(ctx_rdd)
    assert not is_barrier(ctx_rdd) and is_barrier(barrier) and is_barrier(MappedRDD(MappedRDD(barrier)))
    assert not is_barrier(ShuffledRDD(barrier, 2)) and is_barrier(UnionRDD(barrier, ctx_rdd))


# -- the DAG and task scheduler rules, on a simulated cluster -------------------------------------------

def barrier_job(c: Cluster, n: int = 3, shuffle: bool = False) -> tuple[int, BarrierRDD]:
    rdd = BarrierRDD(SourceRDD(FakeContext(), n))
    return c.submit(ShuffledRDD(rdd, 2) if shuffle else rdd), rdd


def running_of(c: Cluster, stage: int, attempt: int) -> dict[int, int]:
    """partition -> task id of the tasks running for (stage, attempt)."""
    return {l.partition: t for t, l in c.running.items() if (l.stage_id, l.stage_attempt) == (stage, attempt)}


def test_barrier_task_set_launches_all_at_once_or_waits():
    c = Cluster()
    c.add_executor("e1", cores=2)
    c.add_executor("e2", cores=1)
    c.submit(MappedRDD(SourceRDD(FakeContext(), 2)))  # an ordinary job takes 2 of the 3 slots
    assert len(c.running) == 2
    barrier_job(c, n=2)
    task_set = c.task_sets[(1, 0)]
    assert task_set.barrier and not running_of(c, 1, 0)  # 1 free slot, 2 tasks: nothing launches
    c.finish(min(c.running))
    launched = running_of(c, 1, 0)
    assert sorted(launched) == [0, 1]  # both at once
    c.run_until_idle()
    c.assert_idle()


def test_barrier_tasks_ignore_locality_waits():
    c = Cluster(locality_wait=60.0)
    c.add_executor("e1", "hostA", cores=1)
    c.add_executor("e2", "hostB", cores=1)
    rdd = BarrierRDD(SourceRDD(FakeContext(), 2, prefs={0: ["hostA"], 1: ["hostA"]}))
    c.submit(rdd)
    assert sorted(l.executor_id for l in c.running.values()) == ["e1", "e2"]  # no 60 s wait for hostA
    c.run_until_idle()
    c.assert_idle()


def test_barrier_task_failure_kills_the_others_and_reruns_the_whole_stage():
    c = Cluster()
    c.add_executor("e1", cores=3)
    job, _ = barrier_job(c, n=3)
    first = running_of(c, 0, 0)
    c.finish(first[0])  # partition 0 succeeds in attempt 0: its result will be void
    c.finish(first[1], "failed", "boom", ValueError("boom"))
    assert [k.task_id for k in c.kills] == [first[2]]
    retry = c.task_sets[(0, 1)]
    assert [t.partition for t in retry.tasks] == [0, 1, 2] and retry.barrier
    assert not running_of(c, 0, 1)  # partition 2's task, being killed, still holds one of the 3 slots
    c.finish(first[2], "killed", "killed")
    assert sorted(running_of(c, 0, 1)) == [0, 1, 2]
    assert {l.attempt_number for l in c.running.values()} == {1}  # attempt k of the stage: attempt k of each task
    c.run_until_idle()
    assert isinstance(c.outcomes[job], JobSucceeded) and len(c.outcomes[job].results) == 3
    c.assert_idle()


def test_stale_results_of_a_failed_barrier_attempt_are_void():
    c = Cluster()
    c.add_executor("e1", cores=4)
    job, _ = barrier_job(c, n=2)
    first = running_of(c, 0, 0)
    c.finish(first[0], "failed", "boom", ValueError("boom"))
    c.finish(first[1])  # raced the kill: a success of the failed attempt
    stage = c.dag.stage_id_to_stage[0]
    assert stage.active_job.num_finished == 0 and c.dag.running_stages[0].latest_attempt == 1
    c.run_until_idle()
    assert isinstance(c.outcomes[job], JobSucceeded)
    c.assert_idle()


def test_barrier_map_stage_failure_unregisters_every_output_and_reruns_all():
    c = Cluster()
    c.add_executor("e1", cores=4)
    job, _ = barrier_job(c, n=2, shuffle=True)
    first = running_of(c, 0, 0)
    c.finish(first[0])
    assert c.dag.map_outputs.num_available_outputs(0) == 1
    c.finish(first[1], "executor_lost", "worker died")
    assert c.dag.map_outputs.num_available_outputs(0) == 0
    assert [t.partition for t in c.task_sets[(0, 1)].tasks] == [0, 1]
    c.run_until_idle()
    assert isinstance(c.outcomes[job], JobSucceeded)
    c.assert_idle()


def test_a_barrier_stage_failing_every_attempt_fails_the_job_naming_it():
    c = Cluster(max_attempts=2)
    c.add_executor("e1", cores=2)
    job, _ = barrier_job(c, n=2)
    for attempt in range(2):
        tasks = running_of(c, 0, attempt)
        c.finish(tasks[1], "failed", f"boom {attempt}", ValueError(f"boom {attempt}"))
        c.finish(tasks[0], "killed", "killed")
    failure = c.outcomes[job]
    assert isinstance(failure, JobFailed) and isinstance(failure.exception, ValueError)
    assert "Barrier ResultStage 0" in failure.error and "failed the maximum allowable number of times: 2" in failure.error
    assert "attempt 0: Stage failed because barrier task" in failure.error and "boom 1" in failure.error
    c.assert_idle()


def test_a_fetch_failure_in_a_barrier_stage_kills_its_tasks_and_reruns_it_in_full():
    c = Cluster()
    c.add_executor("e1", cores=4)
    source = ShuffledRDD(SourceRDD(FakeContext(), 2), 2)
    job = c.submit(BarrierRDD(source))
    c.finish(min(c.running))
    c.finish(min(c.running))  # the map stage is done; the barrier reduce stage runs
    reduce_tasks = running_of(c, 1, 0)
    c.fetch_fail(reduce_tasks[0], 0)
    assert [k.task_id for k in c.kills] == [reduce_tasks[1]]  # the attempt's other task is killed
    c.finish(reduce_tasks[1])  # it finished before the kill landed: void
    assert c.dag.stage_id_to_stage[1].active_job.num_finished == 0
    c.run_until_idle()
    assert isinstance(c.outcomes[job], JobSucceeded)
    attempts = sorted(key for key in c.task_sets if key[0] == 1)
    assert [t.partition for t in c.task_sets[attempts[-1]].tasks] == [0, 1]
    c.assert_idle()


# -- checks at submission -----------------------------------------------------------------------------------

def test_too_few_slots_fails_the_job_at_once_naming_the_numbers():
    h = DagHarness()
    h.handle(ExecutorAdded("e1", "hostA", 2))
    h.handle(ExecutorAdded("e2", "hostB", 1))
    _, actions = h.submit(BarrierRDD(SourceRDD(FakeContext(), 4)))
    failure = only(actions, JobFailed)
    assert isinstance(failure.exception, BarrierJobSlotsNumberCheckFailed)
    assert failure.error.startswith("[SPARK-24819]: Barrier execution mode does not allow run a barrier stage")
    assert "has 4 tasks, so it needs 4 slots at once; the cluster has 3 (cores per executor: e1: 2, e2: 1)" in failure.error
    assert (failure.exception.requiredConcurrentTasks, failure.exception.maxConcurrentTasks) == (4, 3)
    assert not of_type(actions, SubmitTasks)
    h.assert_idle()
    _, ok = h.submit(BarrierRDD(SourceRDD(FakeContext(), 3)))  # fits: runs
    assert only(ok, SubmitTasks).barrier
    h.close()


def test_a_barrier_stage_over_part_of_its_partitions_is_refused():
    h = DagHarness()
    h.handle(ExecutorAdded("e1", "hostA", 8))
    ctx = FakeContext()
    _, take_like = h.submit(BarrierRDD(SourceRDD(ctx, 4)), partitions=[0])  # what take(1) and first() do
    failure = only(take_like, JobFailed)
    assert isinstance(failure.exception, BarrierJobUnsupportedRDDChainException)
    assert "[SPARK-24820][SPARK-24821]" in failure.error and "barrierRdd.collect()[0]" in failure.error
    _, union = h.submit(UnionRDD(BarrierRDD(SourceRDD(ctx, 2)), SourceRDD(ctx, 2)))
    assert "has 2 partitions, the stage runs 4 tasks" in only(union, JobFailed).error
    h.assert_idle()


@pytest.mark.parametrize("status", ["failed", "killed", "executor_lost"])
def test_any_unsuccessful_end_of_a_barrier_task_reruns_the_stage(status):
    c = Cluster()
    c.add_executor("e1", cores=2)
    job, _ = barrier_job(c, n=2)
    tasks = running_of(c, 0, 0)
    c.finish(tasks[0], status, status, ValueError(status) if status == "failed" else None)
    assert (0, 1) in c.task_sets
    c.finish(tasks[1], "killed", "killed")
    c.run_until_idle()
    assert isinstance(c.outcomes[job], JobSucceeded)
    c.assert_idle()
