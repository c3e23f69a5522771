"""Message and link faults: the plan's interposer, unit by unit on a manual clock, then end to
end in both masters: a pipeline with a shuffle still returns the right answer (or fails with
the documented error when the loss is unrecoverable by design)."""

from __future__ import annotations

import pytest

from sparklet import Context
from sparklet.actors import DELIVER, DROP, ActorSystem, Delay, Duplicate, Hold, ManualClock, Refuse, Send
from sparklet.runtime import ExecutorRemoved, Fault, FaultInjected, FaultPlan, StageSubmitted, TaskEnd
from sparklet.runtime._msgfaults import MessageFaults

QUIET = {"ui.showConsoleProgress": False}
EXPECTED = [(0, 950), (1, 970), (2, 990), (3, 1010), (4, 1030)]
BOTH = ["inproc[2]", "local[2]"]


def pipeline(sc: Context) -> list:
    return sorted(sc.parallelize(range(100), 4).map(lambda x: (x % 5, x)).reduceByKey(lambda a, b: a + b).collect())


# -- validation --------------------------------------------------------------------------------------------
def test_message_faults_are_validated_before_anything_runs():
    with pytest.raises(ValueError, match=r"needs message='<MessageType>'"):
        Fault("drop_message")
    with pytest.raises(ValueError, match="seconds=0.0 must be positive for a delay"):
        Fault("delay_message", message="RunTask")
    with pytest.raises(ValueError, match="count=1 must be at least 2"):
        Fault("reorder_messages", message="RunTask", count=1)
    with pytest.raises(ValueError, match="nth=0 counts matching messages from 1"):
        Fault("drop_message", message="RunTask", nth=0)
    with pytest.raises(ValueError, match="cut_link.*needs sender and recipient"):
        Fault("cut_link", sender="executor:exec-0", seconds=1)
    with pytest.raises(ValueError, match="seconds=0.0 must be positive: how long the link stays cut"):
        Fault("cut_link", sender="executor:exec-0", recipient="executor:exec-1")
    with pytest.raises(ValueError, match="recipient='x' does not apply: swizzle_clog picks"):
        Fault("swizzle_clog", recipient="x", seconds=1)
    with pytest.raises(ValueError, match="stage=0 does not apply: address a message fault"):
        Fault("drop_message", message="RunTask", stage=0)
    with pytest.raises(ValueError, match="sender='x' applies to message and link faults only"):
        Fault("raise", sender="x")
    assert Fault("cut_link", sender="executor:exec-0", recipient="driver", seconds=1).describe() == (
        "cut_link(seconds=1, sender='executor:exec-0', recipient='driver')")


# -- the interposer, unit by unit ------------------------------------------------------------------------------
class Reports(list):
    def __call__(self, index, fault, executor_id, where):
        self.append((index, fault.kind, executor_id, where))


def send(message_type: str, sender: str | None, recipient: str, kind: str = "tell") -> Send:
    return Send(sender, recipient, None, message_type, kind, None)


TS = "/user/sparklet/scheduler/task-scheduler"
EXEC0 = "/user/sparklet/executors/exec-0"
EXEC1 = "/user/sparklet/executors/exec-1"


def test_ends_are_named_by_path_and_role_for_each_host_and_master():
    system = ActorSystem("names", clock=ManualClock())
    inproc = MessageFaults(FaultPlan(), system, host="driver", report=Reports())
    assert inproc.names(TS, None) == (TS, "driver", "task-scheduler")
    assert inproc.names(EXEC1, None) == (EXEC1, "executor:exec-1")
    assert inproc.names(None, None) == ("driver",)
    local_driver = MessageFaults(FaultPlan(), system, host="driver", report=Reports(), stand_ins=True)
    assert local_driver.names(EXEC1, None) == (EXEC1, "driver")  # a stand-in: its wire hop is the executor
    assert local_driver.names("/user/exec-1", "tcp://127.0.0.1:1") == ("/user/exec-1", "executor:exec-1")
    in_process = MessageFaults(FaultPlan(), system, host="exec-3", report=Reports(), driver_address="tcp://d:1")
    assert in_process.names(None, None) == ("executor:exec-3",)  # its task threads send as the executor
    assert in_process.names("/system/nodes", "tcp://d:1") == ("/system/nodes", "driver")


def test_nth_and_count_count_per_sending_end_and_each_hit_is_reported():
    plan = FaultPlan([Fault("drop_message", message="StatusUpdate", recipient="task-scheduler", nth=2, count=2),
                      Fault("duplicate_message", message="Heart*", sender="executor:exec-1")])
    reports = Reports()
    faults = MessageFaults(plan, ActorSystem("count", clock=ManualClock()), host="driver", report=reports)
    decisions = [faults.decide(send("StatusUpdate", EXEC0, TS)) for _ in range(5)]
    assert decisions == [DELIVER, DROP, DROP, DELIVER, DELIVER]
    assert faults.decide(send("StatusUpdate", EXEC1, TS)) == DELIVER  # exec-1 has its own count
    assert faults.decide(send("StatusUpdate", EXEC1, TS)) == DROP
    assert faults.decide(send("Heartbeat", EXEC0, TS)) == DELIVER
    assert faults.decide(send("Heartbeat", EXEC1, TS)) == Duplicate(2)
    assert faults.decide(send("FaultFired", EXEC0, TS)) == DELIVER  # reports are never interposed
    faults.validate_state()
    assert [r[:3] for r in reports] == [(0, "drop_message", "exec-0")] * 2 + [(0, "drop_message", "exec-1"),
                                                                              (1, "duplicate_message", "exec-1")]
    assert reports[0][3] == "dropped StatusUpdate #2 from executor:exec-0 to task-scheduler"


def test_probability_is_decided_by_hash_so_the_same_seed_drops_the_same_messages():
    def dropped(seed: int) -> list[int]:
        plan = FaultPlan([Fault("drop_message", message="*", count=100, probability=0.3)], seed=seed)
        faults = MessageFaults(plan, ActorSystem("p", clock=ManualClock()), host="driver", report=Reports())
        return [n for n in range(100) if faults.decide(send("RunTask", TS, EXEC0)) == DROP]

    assert dropped(1) == dropped(1)
    assert dropped(1) != dropped(2)
    assert 10 < len(dropped(1)) < 50


async def test_an_in_system_cut_refuses_the_trigger_then_holds_the_link_until_it_heals():
    clock = ManualClock()
    async with ActorSystem("cut", clock=clock) as system:
        plan = FaultPlan([Fault("cut_link", message="FetchSegments", sender="executor:exec-1",
                                recipient="executor:exec-0", seconds=2)])
        reports = Reports()
        faults = MessageFaults(plan, system, host="driver", report=reports)
        assert faults.decide(send("RunTask", TS, EXEC0)) == DELIVER
        assert isinstance(faults.decide(send("FetchSegments", EXEC1, EXEC0, "ask")), Refuse)
        assert faults.decide(send("reply:FetchSegments", EXEC0, EXEC1, "reply")) == Hold("cut:exec-0|exec-1")
        assert faults.decide(send("StatusUpdate", EXEC1, TS)) == DELIVER  # other links are untouched
        faults.validate_state()
        await clock.advance(2.1)
        faults.validate_state()
        assert faults.decide(send("FetchSegments", EXEC1, EXEC0, "ask")) == DELIVER  # healed; fires once
        assert reports[0][3] == "cut the link exec-1 <-> exec-0 for 2s at FetchSegments #1 from executor:exec-1 to executor:exec-0"


async def swizzle_schedule(seed: int, executors: int = 4) -> tuple[list[str], list]:
    clock = ManualClock()
    async with ActorSystem("swizzle", clock=clock) as system:
        reports = Reports()
        plan = FaultPlan([Fault("swizzle_clog", message="RunTask", seconds=1.0)], seed=seed)
        faults = MessageFaults(plan, system, host="driver", report=reports,
                               executor_ids=tuple(f"exec-{i}" for i in range(executors)))
        assert faults.decide(send("RunTask", TS, EXEC0)) == DELIVER  # the trigger itself goes through
        await clock.advance(0.0)
        steps = [r[3] for r in reports if "clog" in r[3].split()[0]]
        first = steps[0].split()[1]
        decisions = [faults.decide(send("StatusUpdate", f"/user/sparklet/executors/{first}", TS))]
        for _ in range(2 * executors):
            await clock.advance(1.0)
            faults.validate_state()
        steps = [r[3] for r in reports if r[3].split()[0] in ("clog", "unclog")]
        decisions.append(faults.decide(send("StatusUpdate", f"/user/sparklet/executors/{first}", TS)))
        faults.close()
        faults.validate_state()
        return steps, decisions


async def test_swizzle_clogs_one_by_one_then_releases_in_a_seeded_order():
    steps, decisions = await swizzle_schedule(seed=11)
    clogs = [s.split()[1] for s in steps if s.startswith("clog")]
    unclogs = [s.split()[1] for s in steps if s.startswith("unclog")]
    assert len(steps) == 2 * len(clogs) and sorted(clogs) == sorted(unclogs)
    assert [s.split("(step ")[1] for s in steps] == [f"{i + 1} of {len(steps)})" for i in range(len(steps))]
    assert decisions == [Hold(f"clog:{clogs[0]}"), DELIVER]  # held while clogged, free afterwards
    assert (await swizzle_schedule(seed=11))[0] == steps  # same seed, same schedule
    others = [(await swizzle_schedule(seed=s))[0] for s in (12, 13, 14)]
    assert any(other != steps for other in others)


# -- end to end -------------------------------------------------------------------------------------------------
def fired(sc: Context) -> list[FaultInjected]:
    return sc.listener_events(FaultInjected)


@pytest.mark.parametrize("master", BOTH)
def test_a_dropped_task_launch_is_noticed_through_heartbeats_and_the_task_runs_again(master):
    """A lost RunTask: the executor's heartbeats never list it as received; after
    network.timeout the task is lost and runs again (the job never waits for ever)."""
    plan = FaultPlan([Fault("drop_message", message="RunTask", recipient="executor:exec-0")])
    conf = {**QUIET, "executor.heartbeatInterval": 0.1, "network.timeout": 1.0}
    with Context(master, "msgfaults", conf=conf, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        [dropped] = fired(sc)
        assert dropped.where.startswith("dropped RunTask #1")
        lost = [e for e in sc.listener_events(TaskEnd) if e.status == "executor_lost"]
        assert len(lost) == 1 and "never reached executor exec-0 (its launch was lost" in lost[0].reason


@pytest.mark.parametrize("master", BOTH)
def test_a_dropped_status_update_is_recovered_through_heartbeats(master):
    plan = FaultPlan([Fault("drop_message", message="StatusUpdate", sender="executor:exec-0")])
    conf = {**QUIET, "executor.heartbeatInterval": 0.2}
    with Context(master, "msgfaults", conf=conf, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        [event] = fired(sc)
        assert event.executor_id == "exec-0" and event.where.startswith("dropped StatusUpdate #1 from executor:exec-0")
        assert sc.actor_system.interposition_statistics()["deliver"] > 0


@pytest.mark.parametrize("master", BOTH)
def test_dropped_fetch_replies_time_out_as_fetch_failures_and_the_map_output_is_recomputed(master):
    plan = FaultPlan([Fault("drop_message", message="reply:FetchSegments", sender="executor:exec-0")])
    with Context(master, "msgfaults", conf={**QUIET, "shuffle.fetchTimeout": 0.5}, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        assert [e.where.split(" #")[0] for e in fired(sc)] == ["dropped reply:FetchSegments"]
        failed = [e for e in sc.listener_events(TaskEnd) if e.status == "fetch_failed"]
        assert failed and "no reply" in failed[0].reason and "FetchSegments" in failed[0].reason
        assert any(e.attempt > 0 for e in sc.listener_events(StageSubmitted))


def test_losing_every_fetch_reply_fails_the_job_after_the_stage_attempts_with_a_clear_error():
    plan = FaultPlan([Fault("drop_message", message="reply:FetchSegments", count=1000)])
    conf = {**QUIET, "shuffle.fetchTimeout": 0.3, "stage.maxConsecutiveAttempts": 2}
    with Context("inproc[2]", "msgfaults", conf=conf, faults=plan) as sc:
        with pytest.raises(Exception, match=r"failed the maximum allowable number of times: 2.*FetchSegments") as info:
            pipeline(sc)
        assert type(info.value).__name__ == "JobFailedError"
        assert sc.parallelize(range(3)).sum() == 3  # the runtime keeps serving other jobs


@pytest.mark.parametrize("master", BOTH)
def test_duplicated_delayed_and_reordered_messages_give_the_same_answer(master):
    plan = FaultPlan([
        Fault("duplicate_message", message="StatusUpdate", sender="executor:exec-0", count=2),
        Fault("reorder_messages", message="StatusUpdate", sender="executor:exec-1", count=2, seconds=2),
        Fault("delay_message", message="RunTask", nth=2, seconds=0.2),
        Fault("duplicate_message", message="FetchSegments", count=2),
    ], seed=5)
    with Context(master, "msgfaults", conf={**QUIET, "executor.heartbeatInterval": 0.2}, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        kinds = sorted({e.fault.split("(")[0] for e in fired(sc)})
        assert kinds == ["delay_message", "duplicate_message", "reorder_messages"]
        reorder = [e.where for e in fired(sc) if e.fault.startswith("reorder")]
        assert reorder == ["reordered 2 message(s) of exec-1: delivered in the order [1, 0]"] or \
            reorder[0].startswith("reordered 2 message(s) of exec-1")


@pytest.mark.parametrize("master", BOTH)
def test_a_cut_link_between_executors_fails_the_fetch_and_the_job_recovers(master):
    plan = FaultPlan([Fault("cut_link", message="FetchSegments", sender="executor:exec-1",
                            recipient="executor:exec-0", seconds=0.5)])
    with Context(master, "msgfaults", conf=QUIET, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        [event] = fired(sc)
        assert event.where.startswith("cut the link exec-1 <-> exec-0 for 0.5s at FetchSegments #1")
        failed = [e for e in sc.listener_events(TaskEnd) if e.status == "fetch_failed"]
        assert failed and "ConnectionLost" in failed[0].reason
        assert pipeline(sc) == EXPECTED  # after the cut, the link carries the next job


def test_a_cut_link_between_an_executor_and_the_driver_is_survived_inproc():
    plan = FaultPlan([Fault("cut_link", message="StatusUpdate", sender="executor:exec-0",
                            recipient="task-scheduler", seconds=0.3)])
    with Context("inproc[2]", "msgfaults", conf={**QUIET, "executor.heartbeatInterval": 0.1}, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        assert [e.where.split(" at ")[0] for e in fired(sc)] == ["cut the link exec-0 <-> driver for 0.3s"]
        assert "StatusUpdate" in [d.message_type for d in sc.actor_system.dead_letters.recent]  # what the cut lost


def test_cutting_an_executor_process_off_the_driver_loses_it_and_a_replacement_finishes_the_job():
    plan = FaultPlan([Fault("cut_link", message="StatusUpdate", sender="executor:exec-0",
                            recipient="task-scheduler", seconds=0.5)])
    with Context("local[2]", "msgfaults", conf=QUIET, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        [event] = fired(sc)  # reported before the cut, or it would be lost with the link
        assert event.where.startswith("cut the link exec-0 <-> driver for 0.5s at StatusUpdate #1")
        assert [e.executor_id for e in sc.listener_events(ExecutorRemoved)] == ["exec-0"]


@pytest.mark.parametrize("master", ["inproc[3]", "local[3]"])
def test_swizzle_clog_holds_then_releases_executors_in_seeded_order_and_the_answer_is_right(master):
    def run(seed: int) -> list[str]:
        plan = FaultPlan([Fault("swizzle_clog", message="RunTask", count=2, seconds=0.2)], seed=seed)
        with Context(master, "msgfaults", conf=QUIET, faults=plan) as sc:
            assert pipeline(sc) == EXPECTED
            steps = [e.where for e in fired(sc)]
            assert sc.actor_system.interposition_statistics()["hold"] > 0
            return steps

    steps = run(21)
    assert steps[0].startswith("swizzle started at RunTask #1 from stage-0.0 to executor:exec-")
    moves = [s.split(" (step")[0] for s in steps[1:]]
    clogs, unclogs = moves[:2], moves[2:]
    assert all(m.startswith("clog ") for m in clogs) and all(m.startswith("unclog ") for m in unclogs)
    assert sorted(c.split()[1] for c in clogs) == sorted(u.split()[1] for u in unclogs)
    if master.startswith("inproc"):
        assert run(21) == steps  # the same seed gives the same order


def test_with_tracing_each_fired_message_fault_is_also_an_actor_event():
    plan = FaultPlan([Fault("delay_message", message="RunTask", nth=1, count=2, seconds=0.05)])
    with Context("inproc[2]", "msgfaults", conf={**QUIET, "tracing": True}, faults=plan) as sc:
        assert pipeline(sc) == EXPECTED
        events = sc.actor_system.events.select(kind="fault")
        assert [e["where"] for e in events] == [e.where for e in fired(sc)] and len(events) == 2  # counted per sender: the driver
        interposed = sc.actor_system.events.select(kind="interposed")
        assert len(interposed) == 2 and all(e["msg"] == "RunTask" and "Delay" in e["decision"] for e in interposed)
