"""The local actor kernel: delivery, ask, lifecycle, restart, watch, dead letters, timers, shutdown."""

from __future__ import annotations

import asyncio

import pytest

from sparklet.actors import (
    ACTOR_TRANSITIONS,
    Actor,
    ActorNameTaken,
    ActorNotFound,
    ActorStartFailed,
    ActorState,
    ActorStopped,
    ActorSystem,
    AskTimeout,
    CodecError,
    InvalidActorDefinition,
    InvalidTransition,
    Kill,
    ManualClock,
    Props,
    StateMachine,
    Terminated,
    UnhandledMessage,
    handler,
    message,
)

from support import assert_no_tasks_left


@message
class Add:
    n: int


@message
class Get:
    pass


@message
class Fail:
    text: str


@message
class Slow:
    seconds: float


@message
class Forward:
    to: object  # an ActorRef
    n: int


@message
class BadSet:
    items: object


class Counter(Actor):
    def __init__(self, log: list | None = None, start: int = 0) -> None:
        super().__init__()
        self.log = log if log is not None else []
        self.total = start
        self.seen: list[int] = []

    def pre_start(self):
        self.log.append(("pre_start", self.total))

    def post_stop(self):
        self.log.append(("post_stop", self.total))

    def pre_restart(self, reason, message):
        self.log.append(("pre_restart", repr(reason)))
        return super().pre_restart(reason, message)

    def post_restart(self, reason):
        self.log.append(("post_restart", repr(reason)))
        return super().post_restart(reason)

    @handler(Add)
    def add(self, msg):
        self.total += msg.n
        self.seen.append(msg.n)

    @handler(Get)
    async def get(self, msg):
        return (self.total, tuple(self.seen))

    @handler(Fail)
    def fail(self, msg):
        raise RuntimeError(msg.text)

    @handler(Slow)
    async def slow(self, msg):
        self.log.append(("slow-start", msg.seconds))
        await asyncio.sleep(msg.seconds)
        self.log.append(("slow-end", msg.seconds))
        return "done"

    @handler(Forward)
    def forward(self, msg):
        msg.to.tell(Add(msg.n))


async def test_tell_is_ordered_and_ask_returns_handler_value(system):
    ref = await system.spawn(Counter, "counter")
    for i in range(100):
        ref.tell(Add(i))
    total, seen = await ref.ask(Get())
    assert total == sum(range(100))
    assert seen == tuple(range(100))


async def test_paths_are_hierarchical_and_lookup_finds_them(system):
    class Parent(Actor):
        async def pre_start(self):
            await self.context.spawn(Counter, "child")

    parent = await system.spawn(Parent, "parent")
    assert parent.path == "/user/parent"
    child = system.lookup("/user/parent/child")
    assert child.path == "/user/parent/child" and child.name == "child"
    child.tell(Add(2))
    assert (await child.ask(Get()))[0] == 2
    with pytest.raises(ActorNotFound, match="/user/nobody"):
        system.lookup("/user/nobody")
    with pytest.raises(ActorNameTaken, match="/user/parent"):
        await system.spawn(Counter, "parent")
    with pytest.raises(ValueError, match="invalid actor name"):
        await system.spawn(Counter, "a/b")
    anonymous = await system.spawn(Counter)
    assert anonymous.path.startswith("/user/$")


async def test_ask_timeout_names_the_target_and_the_message_type(system):
    ref = await system.spawn(Counter, "sleepy")
    with pytest.raises(AskTimeout, match=r"/user/sleepy to Slow within 0.05s"):
        await ref.ask(Slow(0.5), timeout=0.05)


async def test_one_message_at_a_time_even_across_awaits(system):
    log: list = []
    ref = await system.spawn(Props.of(Counter, log), "serial")
    await asyncio.gather(ref.ask(Slow(0.02)), ref.ask(Slow(0.01)))
    steps = [entry for entry in log if entry[0].startswith("slow")]
    assert steps == [("slow-start", 0.02), ("slow-end", 0.02), ("slow-start", 0.01), ("slow-end", 0.01)]


async def test_sender_is_implicit_inside_actors(system):
    class Echo(Actor):
        @handler(Add)
        def echo(self, msg):
            self.sender.tell(Add(msg.n * 10))

    class Asker(Actor):
        def __init__(self):
            super().__init__()
            self.got = []

        @handler(Forward)
        def go(self, msg):
            msg.to.tell(Add(msg.n))

        @handler(Add)
        def back(self, msg):
            self.got.append(msg.n)

        @handler(Get)
        def get(self, msg):
            return tuple(self.got)

    echo = await system.spawn(Echo, "echo")
    asker = await system.spawn(Asker, "asker")
    asker.tell(Forward(echo, 4))
    for _ in range(50):
        if await asker.ask(Get()):
            break
        await asyncio.sleep(0.005)
    assert await asker.ask(Get()) == (40,)


async def test_handler_error_reaches_the_asker_and_actor_restarts_with_mailbox_kept(system):
    log: list = []
    ref = await system.spawn(Props.of(Counter, log, 100), "restarting")
    ref.tell(Slow(0.02))  # keeps the actor busy while the next three queue up in order
    ref.tell(Add(1))
    failing = asyncio.ensure_future(ref.ask(Fail("boom")))
    await asyncio.sleep(0)
    ref.tell(Add(2))  # queued behind the failure: handled by the new instance
    with pytest.raises(RuntimeError, match="boom"):
        await failing
    total, seen = await ref.ask(Get())
    # The new instance starts from its Props (100), gets the queued Add(2), not the failed message.
    assert (total, seen) == (102, (2,))
    assert system.restart_count(ref) == 1
    names = [entry[0] for entry in log if not entry[0].startswith("slow")]
    assert names == ["pre_start", "pre_restart", "post_stop", "post_restart", "pre_start"]
    assert system.events.select(kind="restart", actor="/user/restarting")


async def test_kill_fails_the_actor_after_earlier_messages_and_its_supervisor_restarts_it(system):
    log: list = []
    ref = await system.spawn(Props.of(Counter, log, 0), "killed")
    ref.tell(Add(5))
    ref.tell(Kill("chaos"))
    ref.tell(Add(7))  # behind the Kill: handled by the restarted instance, mailbox kept
    total, seen = await ref.ask(Get())
    assert (total, seen) == (7, (7,))
    assert system.restart_count(ref) == 1
    [failure] = system.events.select(kind="failure", actor="/user/killed")
    assert failure["msg"] == "Kill" and "ActorKilled: /user/killed killed: chaos" in failure["error"]


def test_an_actor_cannot_handle_kill():
    with pytest.raises(InvalidActorDefinition, match="handles Kill"):
        class Immortal(Actor):
            @handler(Kill)
            def ignore(self, msg):
                return None


async def test_unhandled_message_type_fails_the_ask_and_the_actor_keeps_serving(system):
    ref = await system.spawn(Counter, "strict")
    with pytest.raises(UnhandledMessage, match="no handler for builtins.str"):
        await ref.ask("hello")
    ref.tell(Add(5))
    assert (await ref.ask(Get()))[0] == 5
    assert system.restart_count(ref) == 0
    assert system.unhandled_count == 1


async def test_forgetting_super_init_is_named(system):
    class Forgetful(Actor):
        def __init__(self):
            self.x = 1

    with pytest.raises(ActorStartFailed) as info:
        await system.spawn(Forgetful, "forgetful")
    assert isinstance(info.value.__cause__, InvalidActorDefinition)
    assert "did not call super().__init__()" in str(info.value)
    with pytest.raises(InvalidActorDefinition, match="not by calling the class"):
        Counter()
    with pytest.raises(InvalidActorDefinition, match="Actor subclass"):
        Props(actor_class=int)


async def test_start_failure_is_reported_to_the_spawner_with_its_cause(system):
    class Broken(Actor):
        def pre_start(self):
            raise KeyError("missing config")

    with pytest.raises(ActorStartFailed, match=r"/user/broken \(.*Broken\) failed to start: KeyError") as info:
        await system.spawn(Broken, "broken")
    assert isinstance(info.value.__cause__, KeyError)
    with pytest.raises(ActorNotFound):
        system.lookup("/user/broken")


async def test_watch_delivers_terminated_with_reason_and_at_once_for_dead_actors(system):
    ref = await system.spawn(Counter, "watched")
    waiting = asyncio.ensure_future(system.wait_terminated(ref, timeout=2))
    await asyncio.sleep(0)
    await system.stop(ref)
    terminated = await waiting
    assert terminated == Terminated(ref, "normal") and not terminated.abnormal
    # Already dead: Terminated comes at once.
    again = await system.wait_terminated(ref, timeout=1)
    assert again.reason == "not found"


async def test_actor_watch_gets_terminated_message(system):
    class Watcher(Actor):
        def __init__(self):
            super().__init__()
            self.terminated = []

        @handler(Forward)
        def watch(self, msg):
            self.context.watch(msg.to)

        @handler(Terminated)
        def on_terminated(self, msg):
            self.terminated.append((msg.actor.path, msg.reason))

        @handler(Get)
        def get(self, msg):
            return tuple(self.terminated)

    target = await system.spawn(Counter, "target")
    watcher = await system.spawn(Watcher, "watcher")
    watcher.tell(Forward(target, 0))
    await watcher.ask(Get())
    await system.stop(target)
    for _ in range(100):
        if await watcher.ask(Get()):
            break
        await asyncio.sleep(0.005)
    assert await watcher.ask(Get()) == (("/user/target", "normal"),)


async def test_messages_to_stopped_actors_are_dead_letters_and_pending_asks_fail(system):
    ref = await system.spawn(Counter, "mortal")
    slow = asyncio.ensure_future(ref.ask(Slow(10)))
    queued = asyncio.ensure_future(ref.ask(Get()))
    await asyncio.sleep(0.01)
    await system.stop(ref, timeout=0.05)  # the slow handler does not finish: killed
    with pytest.raises(ActorStopped, match="/user/mortal stopped"):
        await slow
    with pytest.raises(ActorStopped, match="before handling Get"):
        await queued
    before = system.dead_letters.count
    ref.tell(Add(1))
    assert system.dead_letters.count == before + 1
    letter = system.dead_letters.recent[-1]
    assert (letter.recipient, letter.message_type, letter.reason) == ("/user/mortal", "Add", "no such actor")
    with pytest.raises(ActorStopped):
        await ref.ask(Get())


async def test_strict_mode_rejects_a_message_that_could_not_cross_processes(system):
    ref = await system.spawn(Counter, "c")
    with pytest.raises(CodecError, match="set"):
        ref.tell(BadSet({1, 2}))
    loose = ActorSystem("loose", strict=False)
    async with loose:
        r = await loose.spawn(Counter, "c")
        r.tell(Add(1))
        assert (await r.ask(Get()))[0] == 1


async def test_mailbox_capacity_overflow_goes_to_dead_letters(system):
    ref = await system.spawn(Props(actor_class=Counter, mailbox_capacity=3), "small")
    ref.tell(Slow(0.05))
    await asyncio.sleep(0.01)
    for i in range(5):
        ref.tell(Add(i))
    assert system.dead_letters.count == 2
    assert "mailbox full" in system.dead_letters.recent[-1].reason


async def test_shutdown_stops_children_first_in_reverse_start_order():
    order: list[str] = []

    class Node(Actor):
        def __init__(self, name, kids):
            super().__init__()
            self.name, self.kids = name, kids

        async def pre_start(self):
            for kid in self.kids:
                await self.context.spawn(Props.of(Node, kid, ()), kid)

        def post_stop(self):
            order.append(self.name)

    system = ActorSystem("shutdown", strict=True)
    await system.start()
    await system.spawn(Props.of(Node, "a", ("a1", "a2")), "a")
    await system.spawn(Props.of(Node, "b", ("b1",)), "b")
    await system.shutdown()
    assert order == ["b1", "b", "a2", "a1", "a"]
    assert_no_tasks_left()
    with pytest.raises(ActorStopped, match="stopped"):
        await system.spawn(Counter)


async def test_stop_kills_after_timeout_when_post_stop_hangs(system):
    class Stubborn(Actor):
        async def post_stop(self):
            await asyncio.sleep(10)

    ref = await system.spawn(Stubborn, "stubborn")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.stop(ref, timeout=0.05)
    assert loop.time() - started < 1.0
    assert (await system.wait_terminated(ref, timeout=1)).reason == "not found"
    assert system.events.select(kind="stop", actor="/user/stubborn")[0]["reason"] == "killed"


async def test_self_stop_after_current_message(system):
    class Quitter(Actor):
        @handler(Add)
        def quit(self, msg):
            self.context.stop_self()
            return "bye"

    ref = await system.spawn(Quitter, "quitter")
    assert await ref.ask(Add(1)) == "bye"
    assert (await system.wait_terminated(ref, timeout=1)).reason in ("normal", "not found")


async def test_timers_fire_on_the_clock_and_are_cancelled_on_stop():
    clock = ManualClock()

    class Ticker(Actor):
        def __init__(self):
            super().__init__()
            self.ticks = 0

        def pre_start(self):
            self.timers.start_periodic("tick", Add(1), 1.0)
            self.timers.start_single("once", Add(100), 2.5)

        @handler(Add)
        def add(self, msg):
            self.ticks += msg.n

        @handler(Get)
        def get(self, msg):
            return self.ticks

    async with ActorSystem("timers", strict=True, clock=clock) as system:
        ref = await system.spawn(Ticker, "ticker")
        await clock.advance(0.5)
        assert await ref.ask(Get()) == 0
        await clock.advance(2.1)  # t=2.6: ticks at 1 and 2, the single at 2.5
        assert await ref.ask(Get()) == 102
        await clock.advance(1.0)
        assert await ref.ask(Get()) == 103
        await system.stop(ref)
        assert clock.pending() == 0


async def test_cancelling_an_ask_leaves_the_actor_serving(system):
    ref = await system.spawn(Counter, "c")
    task = asyncio.ensure_future(ref.ask(Slow(0.05)))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    ref.tell(Add(3))
    assert (await ref.ask(Get()))[0] == 3


async def test_events_link_receive_to_send_and_carry_causes(system):
    a = await system.spawn(Counter, "a")
    b = await system.spawn(Counter, "b")
    system.events.clear()
    a.tell(Forward(b, 7))
    await b.ask(Get())
    sends = system.events.select(kind="send")
    first = next(e for e in sends if e["msg"] == "Forward")
    assert first["actor"] is None and first["to"] == "/user/a"
    receive = next(e for e in system.events.select(kind="receive", actor="/user/a") if e["id"] == first["id"])
    assert receive["msg"] == "Forward"
    caused = next(e for e in sends if e["msg"] == "Add")
    assert caused["actor"] == "/user/a" and caused["cause"] == first["id"]
    assert any(e["id"] == caused["id"] for e in system.events.select(kind="handled", actor="/user/b"))
    reply = next(e for e in sends if e.get("reply_to") is not None)
    assert reply["actor"] == "/user/b"


async def test_events_go_to_a_json_lines_file(tmp_path):
    import json

    path = tmp_path / "events.jsonl"
    async with ActorSystem("file", trace_file=str(path)) as system:
        ref = await system.spawn(Counter, "c")
        ref.tell(Add(1))
        await ref.ask(Get())
    kinds = {json.loads(line)["kind"] for line in path.read_text().splitlines()}
    assert {"spawn", "send", "receive", "handled", "stop"} <= kinds


async def test_tracing_off_records_nothing():
    async with ActorSystem("quiet") as system:
        ref = await system.spawn(Counter, "c")
        ref.tell(Add(1))
        await ref.ask(Get())
        assert len(system.events) == 0


async def test_tree_shows_states_and_restarts(system):
    ref = await system.spawn(Counter, "c")
    with pytest.raises(RuntimeError):
        await ref.ask(Fail("x"))
    await ref.ask(Get())
    tree = system.tree()
    assert "└── c [test_actors.Counter" not in tree  # qualnames, not module paths
    assert "c [Counter] running restarts=1" in tree


def test_state_table_rejects_illegal_moves_with_history():
    fsm = StateMachine("actor /x", ActorState.STARTING, ACTOR_TRANSITIONS)
    fsm.move(ActorState.RUNNING, "started")
    fsm.move(ActorState.STOPPING, "stop")
    with pytest.raises(InvalidTransition, match=r"stopping -> running.*starting->running \(started\)"):
        fsm.move(ActorState.RUNNING, "oops")
    # Every state but STOPPED can reach STOPPED (a kill), and STOPPED is final.
    assert all(ActorState.STOPPED in moves for state, moves in ACTOR_TRANSITIONS.items() if state is not ActorState.STOPPED)
    assert ACTOR_TRANSITIONS[ActorState.STOPPED] == frozenset()
