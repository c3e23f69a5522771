"""Failure handling: intensity and escalation, deciders, in-place restarts keeping the
mailbox, back-off on a ManualClock, and a supervisor stuck in a failing restart loop."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparklet.actors import Actor, ActorRef, ActorSystem, ManualClock, Terminated, handler, message
from sparklet.supervision import (
    Backoff,
    ChildSpec,
    Directive,
    ReachedMaxRestartIntensity,
    decider_from,
    which_children,
)

from support import assert_no_tasks_left
from test_supervision_support import (  # noqa: F401  (fixtures are used by name)
    BEHAVIOUR,
    LOG,
    Boom,
    CustomError,
    GetSeen,
    Ping,
    Record,
    Worker,
    fresh_log,
    kinds,
    lifecycle,
    msys,
    quiesce,
    settle,
    specs,
    sup_props,
)

pytestmark = pytest.mark.timeout(15)


async def states(sup: ActorRef) -> dict[str, tuple[str, int]]:
    return {i.id: (i.state, i.restarts) for i in await which_children(sup)}


# -- restart intensity -----------------------------------------------------------------------
@pytest.mark.asyncio
async def test_intensity_exceeded_stops_children_in_reverse_and_escalates_to_the_parent(msys):
    sub = ChildSpec("sub", sup_props("one_for_one", specs("w1", "w2", "w3"), intensity=1, period=5.0), type="supervisor")
    top = await msys.spawn(sup_props("one_for_one", [ChildSpec("x", Worker), sub], intensity=3), "top")
    sub_ref, w2 = msys.lookup("/user/top/sub"), msys.lookup("/user/top/sub/w2")
    LOG.clear()
    w2.tell(Boom())
    await settle(msys, top, sub_ref)
    assert lifecycle() == ["stop:w2", "start:w2"]  # restart 1 of at most 1
    LOG.clear()
    w2.tell(Boom())
    await settle(msys, top, sub_ref)
    # restart 2 is one too many: sub stops its children in reverse start order and fails;
    # top restarts sub (one_for_one), whose new instance starts its children in order.
    assert lifecycle() == ["stop:w3", "stop:w2", "stop:w1", "start:w1", "start:w2", "start:w3"]
    assert [e["actor"] for e in kinds(msys, "max_intensity")] == ["/user/top/sub"]
    [decided] = kinds(msys, "directive", actor="/user/top")
    assert decided["child"] == "sub" and decided["error"].startswith("ReachedMaxRestartIntensity")
    assert await states(top) == {"x": ("running", 0), "sub": ("running", 1)}
    assert await states(sub_ref) == {"w1": ("running", 0), "w2": ("running", 0), "w3": ("running", 0)}


@pytest.mark.asyncio
async def test_intensity_is_a_sliding_window(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a"), intensity=2, period=10.0), "sup")
    a = msys.lookup("/user/sup/a")
    for at in (0.0, 5.0, 11.0):  # at t=11 the restart of t=0 has left the window
        await msys.clock.advance(at - msys.clock.now())
        a.tell(Boom())
        await settle(msys, sup)
        assert kinds(msys, "max_intensity") == []
    await msys.clock.advance(1.0)  # t=12: restarts at 5, 11, 12 are three within 10 s
    a.tell(Boom())
    await settle(msys, sup)
    assert len(kinds(msys, "max_intensity")) == 1
    [failed] = [e for e in kinds(msys, "escalate") if e["actor"] == "/user/sup"]
    assert failed["error"].startswith("ReachedMaxRestartIntensity")


@pytest.mark.asyncio
async def test_a_failed_restart_counts_toward_intensity_and_is_retried_by_message(msys):
    BEHAVIOUR.fail_restarts_only = {"b"}
    decide = decider_from({Exception: Directive.STOP})
    inner = ChildSpec("sub", sup_props("one_for_one", specs("a", "b"), intensity=2), type="supervisor")
    top = await msys.spawn(sup_props("one_for_one", [inner], decider=decide), "top")
    LOG.clear()
    msys.lookup("/user/top/sub/b").tell(Boom())
    await settle(msys, top)
    # restart 1 (counted at the decision) fails, retry = restart 2 fails, retry 3 > 2: give up
    assert LOG.count("start-failed:b") == 2
    assert len(kinds(msys, "restart_scheduled", actor="/user/top/sub", retry=True)) == 2
    assert lifecycle() == ["stop:b", "stop:a"]  # b's halted cell has no instance left to stop
    assert await states(top) == {"sub": ("stopped", 0)}  # top's decider said STOP


# -- deciders ------------------------------------------------------------------------------------
DECIDE = decider_from({
    LookupError: Directive.RESUME,
    RuntimeError: Directive.STOP,
    CustomError: Directive.ESCALATE,
    Exception: Directive.RESTART,
})


@pytest.mark.asyncio
async def test_resume_keeps_the_child_state_and_counts_no_restart(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a"), intensity=0, decider=DECIDE), "sup")
    a = msys.lookup("/user/sup/a")
    LOG.clear()
    a.tell(Record("1"))
    a.tell(Boom(kind="key"))  # KeyError -> LookupError -> RESUME
    assert await a.ask(Record("2")) == ("1", "2")
    await settle(msys, sup)
    assert lifecycle() == [] and await states(sup) == {"a": ("running", 0)}
    assert [e["directive"] for e in kinds(msys, "directive")] == ["resume"]


@pytest.mark.asyncio
async def test_stop_directive_stops_the_child_and_keeps_its_spec_unless_temporary(msys):
    children = [ChildSpec("a", Worker), ChildSpec("t", Worker, restart="temporary")]
    sup = await msys.spawn(sup_props("one_for_one", children, decider=DECIDE), "sup")
    LOG.clear()
    msys.lookup("/user/sup/a").tell(Boom(kind="runtime"))
    msys.lookup("/user/sup/t").tell(Boom(kind="runtime"))
    await settle(msys, sup)
    assert sorted(lifecycle()) == ["stop:a", "stop:t"]
    assert await states(sup) == {"a": ("stopped", 0)}  # permanent, yet not restarted
    assert kinds(msys, "max_intensity") == []


@pytest.mark.asyncio
async def test_escalate_fails_the_supervisor_with_the_same_exception(msys):
    seen: list[BaseException] = []

    def record_then_restart(error: BaseException) -> Directive:
        seen.append(error)
        return Directive.RESTART

    inner = ChildSpec("sub", sup_props("one_for_one", specs("a", "b"), decider=DECIDE), type="supervisor")
    top = await msys.spawn(sup_props("one_for_one", [inner], decider=record_then_restart), "top")
    LOG.clear()
    msys.lookup("/user/top/sub/b").tell(Boom(kind="custom", text="over my head"))
    await settle(msys, top, msys.lookup("/user/top/sub"))
    assert len(seen) == 1 and type(seen[0]) is CustomError and str(seen[0]) == "over my head"
    assert [e["directive"] for e in kinds(msys, "directive")] == ["escalate", "restart"]
    # top restarted sub, and sub's new instance started its children afresh
    assert lifecycle() == ["stop:b", "stop:a", "start:a", "start:b"]


@pytest.mark.asyncio
async def test_restart_directive_is_the_default(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a")), "sup")
    msys.lookup("/user/sup/a").tell(Boom(kind="runtime"))
    await settle(msys, sup)
    assert await states(sup) == {"a": ("running", 1)}
    assert [e["directive"] for e in kinds(msys, "directive")] == ["restart"]


# -- in-place restart and the mailbox ---------------------------------------------------------------
@pytest.mark.asyncio
async def test_restart_keeps_the_mailbox_and_does_not_reprocess_the_failed_message(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a")), "sup")
    a = msys.lookup("/user/sup/a")
    for msg in (Record("1"), Boom(), Record("2"), Record("3")):
        a.tell(msg)  # all queued before the actor runs
    assert await a.ask(GetSeen()) == ("2", "3")  # the new instance, same mailbox, Boom not retried
    assert LOG.count("boom:a") == 1
    await settle(msys, sup)


@pytest.mark.asyncio
async def test_messages_and_asks_sent_while_restarting_wait_for_the_new_instance(msys):
    children = [ChildSpec("a", Worker, backoff=Backoff(1.0, 8.0, jitter=0.0))]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    a = msys.lookup("/user/sup/a")
    a.tell(Boom())
    await settle(msys, sup)
    [info] = await which_children(sup)
    assert (info.state, info.ref) == ("restarting", a)  # halted; its mailbox takes messages
    a.tell(Record("x"))
    pending = asyncio.ensure_future(a.ask(GetSeen()))
    await quiesce(msys)
    assert not pending.done()
    await msys.clock.advance(1.0)
    assert await pending == ("x",)
    await settle(msys, sup)


@pytest.mark.asyncio
async def test_watch_on_an_already_dead_actor_delivers_terminated_at_once(msys):
    watcher = await msys.spawn(Watcher, "watcher")
    w = await msys.spawn(Worker, "gone")
    await msys.stop(w)
    await watcher.ask(WatchIt(w))
    assert await watcher.ask(GetTerminated()) == (("gone", "not found"),)
    # the supervisor relies on it: a child that stops before the watch is set is noticed
    BEHAVIOUR.stop_in_start = {"t"}
    sup = await msys.spawn(sup_props("one_for_one", [ChildSpec("t", Worker, restart="temporary")]), "sup")
    await settle(msys, sup)
    assert await which_children(sup) == []


@message
class WatchIt:
    target: ActorRef


@message
class GetTerminated:
    pass


class Watcher(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.terminated: list[tuple[str, str]] = []

    @handler(WatchIt)
    def watch_it(self, msg: WatchIt) -> None:
        self.context.watch(msg.target)

    @handler(Terminated)
    def on_terminated(self, msg: Terminated) -> None:
        self.terminated.append((msg.actor.name, msg.reason))

    @handler(GetTerminated)
    def get(self, msg: GetTerminated) -> tuple:
        return tuple(self.terminated)


# -- back-off ------------------------------------------------------------------------------------------
@pytest.mark.asyncio
async def test_backoff_delays_restarts_on_the_system_clock_and_resets_after_a_stable_run(msys):
    policy = Backoff(1.0, 4.0, jitter=0.0, reset_after=10.0)
    sup = await msys.spawn(sup_props("one_for_one", [ChildSpec("a", Worker, backoff=policy)], intensity=10), "sup")
    a = msys.lookup("/user/sup/a")

    async def fail_and_wait(delay: float) -> None:
        a.tell(Boom())
        await settle(msys, sup)
        await msys.clock.advance(delay - 0.001)
        await settle(msys, sup)
        assert (await states(sup))["a"][0] == "restarting", "restarted before its delay"
        await msys.clock.advance(0.001)
        await settle(msys, sup)
        assert (await states(sup))["a"][0] == "running", "not restarted right after its delay"

    await fail_and_wait(1.0)
    await fail_and_wait(2.0)
    await fail_and_wait(4.0)
    await fail_and_wait(4.0)   # capped at max_delay
    await msys.clock.advance(10.0)  # a stable run: the streak is forgotten
    await fail_and_wait(1.0)
    delays = [e["delay"] for e in kinds(msys, "restart_scheduled", child="a")]
    assert delays == [1.0, 2.0, 4.0, 4.0, 1.0]
    assert await states(sup) == {"a": ("running", 5)}


@pytest.mark.asyncio
async def test_backoff_jitter_is_deterministic_under_the_supervisors_seeded_rng(msys):
    import random

    policy = Backoff(1.0, 8.0, jitter=0.5, reset_after=100.0)
    children = [ChildSpec("a", Worker, backoff=policy)]
    sup = await msys.spawn(sup_props("one_for_one", children, intensity=10, rng=random.Random(7)), "sup")
    for _ in range(3):
        msys.lookup("/user/sup/a").tell(Boom())
        await settle(msys, sup)
        await msys.clock.advance(20.0)
        await settle(msys, sup)
    reference = random.Random(7)
    expected = [policy.delay(n, reference) for n in range(3)]
    assert [e["delay"] for e in kinds(msys, "restart_scheduled", child="a")] == expected
    assert len(set(expected)) == 3 and expected != [1.0, 2.0, 4.0]


# -- a supervisor stuck in a failing restart loop -------------------------------------------------------
@pytest.mark.asyncio
async def test_a_failing_restart_loop_still_answers_and_shuts_down_promptly(system):
    BEHAVIOUR.fail_restarts_only = {"b"}
    sup = await system.spawn(sup_props("one_for_one", specs("a", "b"), intensity=10**9, period=1.0), "sup")
    system.lookup("/user/sup/b").tell(Boom())
    await asyncio.sleep(0.05)
    infos = await asyncio.wait_for(which_children(sup), 1.0)
    assert {i.id: i.state for i in infos} == {"a": "running", "b": "restarting"}
    assert LOG.count("start-failed:b") > 3  # it keeps trying, one self-message at a time
    loop = asyncio.get_running_loop()
    started = loop.time()
    await asyncio.wait_for(system.stop(sup), 2.0)
    assert loop.time() - started < 1.0
    assert lifecycle()[-1] == "stop:a"


@pytest.mark.asyncio
async def test_a_failing_restart_loop_with_backoff_waits_between_attempts(msys):
    BEHAVIOUR.fail_restarts_only = {"b"}
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker, backoff=Backoff(1.0, 1.0, jitter=0.0))]
    sup = await msys.spawn(sup_props("one_for_one", children, intensity=100, period=1000.0), "sup")
    msys.lookup("/user/sup/b").tell(Boom())
    await settle(msys, sup)
    for attempt in range(1, 4):
        await msys.clock.advance(1.0)
        await settle(msys, sup)
        assert LOG.count("start-failed:b") == attempt
        assert (await states(sup))["b"] == ("restarting", 0)
    await msys.stop(sup)
    assert msys.clock.pending() == 0  # the retry timer went with the supervisor


# -- the intensity window against a reference model, with real actors ----------------------------------
def model_give_ups(times: list[float], intensity: int, period: float) -> list[int]:
    window: list[float] = []
    gave_up, out = 0, []
    for t in times:
        window = [x for x in window + [t] if t - x <= period]
        if len(window) > intensity:
            gave_up, window = gave_up + 1, []
        out.append(gave_up)
    return out


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    intensity=st.integers(0, 3),
    period=st.sampled_from([1.0, 2.5, 5.0]),
    gaps=st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0]), min_size=1, max_size=8),
)
def test_one_for_one_gives_up_exactly_when_the_model_window_overflows(intensity, period, gaps):
    async def scenario() -> list[int]:
        system = ActorSystem("hyp", strict=True, tracing=True, clock=ManualClock())
        await system.start()
        try:
            sup = await system.spawn(sup_props("one_for_one", specs("a", "b"), intensity=intensity, period=period), "sup")
            observed = []
            for i, gap in enumerate(gaps):
                await system.clock.advance(gap)
                system.lookup(f"/user/sup/{'ab'[i % 2]}").tell(Boom())
                await settle(system, sup)
                observed.append(len(kinds(system, "max_intensity")))
            return observed
        finally:
            await system.shutdown()
            assert_no_tasks_left()

    times = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    assert asyncio.run(scenario()) == model_give_ups(times, intensity, period)


def test_reached_max_restart_intensity_is_a_supervision_error():
    from sparklet.supervision import SupervisionError

    assert issubclass(ReachedMaxRestartIntensity, SupervisionError)
