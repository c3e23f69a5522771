"""The task scheduler's two halves apart: the cross-set core (executors, FIFO offers one
at a time, task ids, crashed sets) driven alone, and crashed task sets end to end through
both cores. Every step is followed by ``validate_state``."""

from __future__ import annotations

import collections

import pytest

from sparklet.actors import SparkletInternalError
from sparklet.runtime._sched_events import (
    ExecutorAdded, ExecutorLost, JobFailed, JobSucceeded, KillTask, LaunchTask, StageCompletedInfo, StageSubmittedInfo,
    SubmitTasks, TaskLocality, TaskSetLost, TaskSpec,
)
from sparklet.runtime._tasksets import Slot, TaskLost, TaskSchedulerCore, TaskSetManagerCore

from test_sched_support import Cluster, FakeClock, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, of_type, only


class Core:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.core = TaskSchedulerCore(clock=self.clock)

    def __getattr__(self, name: str):
        method = getattr(self.core, name)

        def checked(*args, **kwargs):
            result = method(*args, **kwargs)
            self.core.validate_state()
            return result

        return checked


def launch(offer, k: int, executor_id: str, partition: int = 0) -> LaunchTask:
    return LaunchTask(offer.first_task_id + k, executor_id, *offer.key, partition, partition, 0, TaskLocality.ANY)


def test_offers_go_to_sets_in_fifo_order_one_at_a_time():
    c = Core()
    assert c.executor_added("e1", "h1", 1) == [ExecutorAdded("e1", "h1")]
    c.executor_added("e2", "h2", 2)
    c.add_task_set(5, 0, priority=1)
    c.add_task_set(7, 0, priority=0)
    first = c.next_offer()
    assert first.key == (7, 0) and first.first_task_id == 0
    assert first.slots == (Slot("e1", "h1", 1, 1), Slot("e2", "h2", 2, 2)) and first.cores == 3
    assert c.next_offer() is None  # one offer in flight at a time
    assert c.offer_answered(first, [launch(first, 0, "e2")]) == []
    second = c.next_offer()
    assert second.key == (5, 0) and second.first_task_id == 1  # the rest goes to the next set
    assert second.slots == (Slot("e1", "h1", 1, 1), Slot("e2", "h2", 1, 2))
    c.offer_answered(second, [launch(second, 0, "e1"), launch(second, 1, "e2")])
    assert c.next_offer() is None and c.core.statistics()["free_cores"] == 0
    entry = c.task_ended(0)
    assert entry.key == (7, 0) and c.next_offer().key == (7, 0)  # a freed core starts a new round
    with pytest.raises(SparkletInternalError, match="breaks the reserved ids"):
        c.core.offer_answered(c.core.round_offer, [launch(second, 0, "e2")])


def test_a_freed_core_goes_straight_back_to_the_first_set_beside_the_round():
    c = Core()
    c.executor_added("e1", "h1", 2)
    c.add_task_set(0, 0, priority=0)
    c.add_task_set(1, 0, priority=1)
    offer = c.next_offer()
    c.offer_answered(offer, [launch(offer, 0, "e1"), launch(offer, 1, "e1", 1)])
    assert c.next_offer() is None  # no free core for the round's next set
    c.task_ended(0)
    assert c.offer_to_first((1, 0)) is None  # not first in FIFO order: the round decides
    direct = c.offer_to_first((0, 0))
    assert direct.slots == (Slot("e1", "h1", 1, 1),) and direct.first_task_id == 2
    assert c.next_offer() is None  # the freed core is reserved: the round finds nothing to offer
    c.task_ended(1)
    again = c.offer_to_first((0, 0))  # a second offer in flight, for the other core
    assert again.first_task_id == 3 and c.core.reserved == {"e1": 2}
    c.offer_answered(direct, [])  # declined: a round may place the core elsewhere
    assert c.core.dirty
    round_offer = c.next_offer()
    assert round_offer.key == (0, 0) and round_offer.slots == (Slot("e1", "h1", 1, 1),)
    assert round_offer.first_task_id == 4  # ids 2 and 3 went to the direct offers
    c.offer_answered(again, [launch(again, 0, "e1")])
    assert c.core.reserved == {"e1": 1}
    c.offer_answered(round_offer, [])
    assert c.core.next_task_id == 4 and not c.core.reserved  # the latest reservation's unused ids go back
    following = c.next_offer()
    assert following.key == (1, 0) and following.first_task_id == 4  # the round goes on in FIFO order


def test_a_newer_attempt_supersedes_and_a_finished_set_withdraws_its_offer():
    c = Core()
    c.executor_added("e1", "h1", 2)
    assert c.add_task_set(3, 0, priority=0) == []
    offer = c.next_offer()
    c.offer_answered(offer, [launch(offer, 0, "e1")])
    assert c.add_task_set(3, 1, priority=0) == [(3, 0)]
    assert c.core.task_sets[(3, 0)].is_zombie
    with pytest.raises(ValueError, match="already submitted"):
        c.core.add_task_set(3, 1, priority=0)
    offer = c.next_offer()
    assert offer.key == (3, 1)
    assert c.set_state((3, 1), is_zombie=True, is_finished=True)  # finished meanwhile: the offer is void
    assert not c.core.offers_in_flight
    assert not c.set_state((3, 0), is_zombie=True, is_finished=True)  # a task still runs there
    c.task_ended(0)
    assert c.set_state((3, 0), is_zombie=True, is_finished=True) and not c.core.task_sets


def test_crashed_set_is_withdrawn_and_its_tasks_killed():
    c = Core()
    c.executor_added("e1", "h1", 2)
    c.add_task_set(1, 0, priority=0)
    c.add_task_set(2, 0, priority=1)
    offer = c.next_offer()
    c.offer_answered(offer, [launch(offer, 0, "e1")])
    pending = c.next_offer()
    assert pending.key == (2, 0)
    assert c.set_crashed((2, 0)) == []  # nothing ran: gone at once, its offer withdrawn
    assert (2, 0) not in c.core.task_sets and not c.core.offers_in_flight
    assert c.set_crashed((1, 0)) == [(0, "e1")]  # to kill; the set stays until its task is accounted for
    assert c.core.task_sets[(1, 0)].crashed and c.next_offer() is None  # a crashed set is offered nothing
    assert c.set_crashed((1, 0)) == []
    assert c.task_ended(0).crashed and not c.core.task_sets


def test_answer_after_executor_loss_reports_launches_lost():
    c = Core()
    c.executor_added("e1", "h1", 1)
    c.executor_added("e2", "h2", 1)
    c.add_task_set(0, 0, priority=0)
    offer = c.next_offer()
    c.executor_lost("e1", "gone")
    c.executor_lost("e2", "restarted")
    c.executor_added("e2", "h2", 1)  # a new incarnation under the same id
    lost = c.offer_answered(offer, [launch(offer, 0, "e1"), launch(offer, 1, "e2", 1)])
    assert [(t.task_id, t.executor_id) for t in lost] == [(0, "e1"), (1, "e2")]
    assert all(isinstance(t, TaskLost) and "lost before task" in t.reason for t in lost)
    assert not c.core.task_id_to_set and c.core.next_task_id == 2


def test_executor_loss_lists_lost_tasks_before_telling_the_dag():
    c = Core()
    c.executor_added("e1", "h1", 2)
    c.add_task_set(0, 0, priority=0)
    offer = c.next_offer()
    c.offer_answered(offer, [launch(offer, 0, "e1"), launch(offer, 1, "e1", 1)])
    actions = c.executor_lost("e1", "worker died")
    assert [type(a) for a in actions] == [TaskLost, TaskLost, ExecutorLost]
    assert [a.task_id for a in actions[:2]] == [0, 1] and "worker died" in actions[0].reason
    assert c.executor_lost("e1", "again") == [] and c.task_ended(0) is None


def test_set_core_launches_onto_offered_slots_with_reserved_ids():
    clock = FakeClock()
    tasks = tuple(TaskSpec(p, i) for i, p in enumerate([4, 5, 6]))
    manager = TaskSetManagerCore(SubmitTasks(0, 2, 0, None, None, tasks, False, {}, 0), clock=clock, max_failures=2,
                                 locality_wait=0.0, executor_hosts={"e1": "h1", "e2": "h2"})
    launches = manager.resource_offers((Slot("e1", "h1", 1), Slot("e2", "h2", 1)), first_task_id=40)
    assert [(l.task_id, l.executor_id, l.partition) for l in launches] == [(40, "e1", 4), (41, "e2", 5)]
    ended = manager.task_ended(40, "failed", "ValueError: x", result=ValueError("x"))
    assert [e.status for e in ended] == ["failed"] and manager.task_fsms[0].state.value == "pending"
    kills = manager.cancel("job cancelled")
    assert kills == [KillTask(41, "e2", 2, 0, "Stage cancelled: job cancelled")] and manager.is_zombie
    assert manager.resource_offers((Slot("e1", "h1", 1),), first_task_id=42) == []
    manager.validate_state()


def test_a_crashed_task_set_is_resubmitted_and_the_job_gets_every_result_once():
    ctx = FakeContext()
    cluster = Cluster()
    cluster.add_executor("e0", cores=2)
    job = cluster.submit(MappedRDD(SourceRDD(ctx, 4)))
    first, second = sorted(cluster.running)
    cluster.finish(first)  # partition 0 is done and stands
    cluster.crash_task_set(0, 0)
    assert [k.task_id for k in cluster.kills] == [second, 2] and "crashed" in cluster.kills[0].reason
    resubmitted = cluster.task_sets[(0, 1)]
    assert [t.partition for t in resubmitted.tasks] == [1, 2, 3]
    assert not cluster.ts.task_sets.get((0, 0))
    cluster.finish(second)  # the kill had not landed: its success is void
    cluster.run_until_idle()
    assert cluster.outcomes[job] == JobSucceeded(job, [("result", p) for p in range(4)], cause=cluster.outcomes[job].cause)
    assert collections.Counter((m.stage_id, m.partition) for m in cluster.merges) == {(0, p): 1 for p in range(4)}
    infos = [(i.stage_id, i.attempt, i.status) for i in cluster.dag_infos if isinstance(i, StageCompletedInfo)]
    assert infos[0] == (0, 0, "failed")
    cluster.assert_idle()


def test_a_task_set_crashing_again_and_again_fails_the_job():
    ctx = FakeContext()
    cluster = Cluster(max_attempts=2)
    cluster.add_executor("e0", cores=1)
    job = cluster.submit(ShuffledRDD(SourceRDD(ctx, 2), 1))
    cluster.crash_task_set(0, 0)
    cluster.crash_task_set(0, 1)
    failed = cluster.outcomes[job]
    assert isinstance(failed, JobFailed)
    assert "failed 2 attempts in a row" in failed.error and "Task set 0.1 crashed: ActorKilled: on purpose" in failed.error
    for task_id in sorted(cluster.running):
        cluster.finish(task_id, "killed", "killed")
    cluster.assert_idle()
    assert of_type(cluster.ts.crash_task_set(0, 1, "again"), TaskSetLost) == []
