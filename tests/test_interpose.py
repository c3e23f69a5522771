"""The interposition seam: an interposer decides, per message, what delivery does with it,
for local and remote tells, asks and replies; and a cut link closes a real socket."""

from __future__ import annotations

import asyncio

import pytest

from sparklet.actors import (
    DELIVER, DROP, Actor, ActorSystem, AskTimeout, ConnectionLost, Delay, Duplicate, Hold, ManualClock, Refuse,
    Send, handler, message,
)


@message
class Note:
    text: str


@message
class Notes:
    pass


@message
class Echo:
    text: str


class Recorder(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []

    @handler(Note)
    def note(self, msg: Note) -> None:
        self.notes.append(msg.text)

    @handler(Notes)
    def all_notes(self, msg: Notes) -> tuple:
        return tuple(self.notes)

    @handler(Echo)
    def echo(self, msg: Echo) -> str:
        self.notes.append("echo " + msg.text)
        return msg.text


class Script:
    """Decides by the text of a Note/Echo (or by the reply's type), and records what it saw."""

    def __init__(self, rules: dict[str, object] | None = None, replies: dict[str, object] | None = None) -> None:
        self.rules = rules or {}
        self.replies = replies or {}
        self.seen: list[Send] = []

    def decide(self, send: Send):
        self.seen.append(send)
        if send.kind == "reply":
            return self.replies.get(send.message_type, DELIVER)
        text = getattr(send.message, "text", None)
        return self.rules.get(text, DELIVER)


async def notes(ref) -> tuple:
    return await ref.ask(Notes())


async def test_no_interposer_keeps_the_plain_fast_path_and_removal_restores_it():
    async with ActorSystem("plain", strict=False) as system:
        assert system._plain
        system.interpose(Script())
        assert not system._plain
        with pytest.raises(RuntimeError, match="already has an interposer"):
            system.interpose(Script())
        system.interpose(None)
        assert system._plain


async def test_drop_loses_a_tell_and_records_it_as_a_dead_letter(system):
    ref = await system.spawn(Recorder, "r")
    script = Script({"b": DROP})
    system.interpose(script)
    for text in "abc":
        ref.tell(Note(text))
    assert await notes(ref) == ("a", "c")
    letter = system.dead_letters.recent[-1]
    assert (letter.recipient, letter.message_type, letter.reason) == ("/user/r", "Note", "dropped by the interposer")
    seen = [s for s in script.seen if s.message_type == "Note"]
    assert [(s.sender, s.recipient, s.address, s.kind) for s in seen] == [(None, "/user/r", None, "tell")] * 3
    interposed = system.events.select(kind="interposed")
    assert len(interposed) == 1 and interposed[0]["msg"] == "Note" and "Drop" in interposed[0]["decision"]


async def test_a_dropped_ask_times_out_like_a_lost_message(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"x": DROP}))
    with pytest.raises(AskTimeout, match="Echo"):
        await ref.ask(Echo("x"), timeout=0.05)
    assert await ref.ask(Echo("y")) == "y"


async def test_delay_delivers_after_the_seconds_on_the_system_clock():
    clock = ManualClock()
    async with ActorSystem("delay", strict=True, clock=clock) as system:
        ref = await system.spawn(Recorder, "r")
        system.interpose(Script({"late": Delay(2.0)}))
        ref.tell(Note("late"))
        ref.tell(Note("on time"))
        assert await notes(ref) == ("on time",)
        await clock.advance(1.9)
        assert await notes(ref) == ("on time",)
        await clock.advance(0.2)
        assert await notes(ref) == ("on time", "late")
        assert system._interposition.statistics()["delayed"] == 0


async def test_duplicate_delivers_twice_and_a_duplicated_ask_is_answered_once(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"twice": Duplicate(), "thrice": Duplicate(3)}))
    ref.tell(Note("twice"))
    assert await ref.ask(Echo("thrice")) == "thrice"
    assert await notes(ref) == ("twice", "twice", "echo thrice", "echo thrice", "echo thrice")


async def test_hold_then_release_in_a_permutation_reorders(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({t: Hold("g") for t in ("1", "2", "3")}))
    for text in ("1", "2", "3", "free"):
        ref.tell(Note(text))
    assert await notes(ref) == ("free",)
    assert system.held("g") == 3 and system.held() == 3
    with pytest.raises(ValueError, match="permutation"):
        system.release("g", order=[0, 0, 1])
    assert system.release("g", order=[2, 0, 1]) == 3
    assert await notes(ref) == ("free", "3", "1", "2")
    assert system.held() == 0 and system.release("g") == 0


async def test_a_held_ask_keeps_its_timeout_and_release_delivers_it_late():
    clock = ManualClock()
    async with ActorSystem("hold", strict=True, clock=clock) as system:
        ref = await system.spawn(Recorder, "r")
        system.interpose(Script({"held": Hold("g")}))
        waiting = ref.ask_nowait(Echo("held"), timeout=1.0)
        await clock.advance(1.5)
        with pytest.raises(AskTimeout):
            await waiting
        system.release("g")
        assert await notes(ref) == ("echo held",)  # delivered; its reply has nowhere to go


async def test_refuse_fails_an_ask_at_once_and_dead_letters_a_tell(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"no": Refuse("link cut")}))
    with pytest.raises(ConnectionLost, match="link cut"):
        await ref.ask(Echo("no"), timeout=5)
    ref.tell(Note("no"))
    assert await notes(ref) == ()
    assert system.dead_letters.recent[-1].reason == "link cut"


async def test_replies_are_interposed_as_reply_of_the_asked_type(system):
    ref = await system.spawn(Recorder, "r")
    script = Script(replies={"reply:Echo": DROP})
    system.interpose(script)
    with pytest.raises(AskTimeout):
        await ref.ask(Echo("lost reply"), timeout=0.05)
    assert await notes(ref) == ("echo lost reply",)  # the request arrived; its answer did not
    reply = [s for s in script.seen if s.kind == "reply" and s.message_type == "reply:Echo"][0]
    assert (reply.sender, reply.recipient, reply.message) == ("/user/r", "", "lost reply")


async def test_removing_the_interposer_delivers_what_it_delayed_or_held(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"held": Hold("g"), "slow": Delay(60)}))
    ref.tell(Note("held"))
    ref.tell(Note("slow"))
    assert await notes(ref) == ()
    system.interpose(None)
    assert sorted(await notes(ref)) == ["held", "slow"]


async def test_an_unknown_decision_is_a_type_error_naming_the_message(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"bad": "deliver please"}))
    with pytest.raises(TypeError, match="Note"):
        ref.tell(Note("bad"))


@pytest.fixture
async def pair():
    a = ActorSystem("a", strict=True)
    b = ActorSystem("b", strict=True)
    await a.start()
    await b.start()
    await a.listen()
    await b.listen(secret=a.secret)
    yield a, b
    await b.shutdown()
    await a.shutdown()


async def test_remote_tells_and_asks_are_decided_in_the_sending_system(pair):
    a, b = pair
    await b.spawn(Recorder, "r")
    remote = a.ref_for(b.address, "/user/r")
    script = Script({"drop": DROP, "dup": Duplicate(), "held": Hold("g"), "late": Delay(0.05)})
    a.interpose(script)
    for text in ("held", "drop", "dup", "late", "plain"):
        remote.tell(Note(text))
    assert await remote.ask(Echo("asked")) == "asked"
    assert await notes(remote) == ("dup", "dup", "plain", "echo asked")
    await asyncio.sleep(0.1)
    a.release("g")
    assert await notes(remote) == ("dup", "dup", "plain", "echo asked", "late", "held")
    tell = [s for s in script.seen if s.kind == "tell"][0]
    assert (tell.recipient, tell.address, tell.message_type) == ("/user/r", b.address, "Note")
    with pytest.raises(AskTimeout):
        await remote.ask(Echo("drop"), timeout=0.1)
    assert a.transport_statistics()["pending_asks"] == 0


async def test_a_remote_reply_is_decided_where_the_handler_ran(pair):
    a, b = pair
    await b.spawn(Recorder, "r")
    remote = a.ref_for(b.address, "/user/r")
    script = Script(replies={"reply:Echo": Delay(0.1)})
    b.interpose(script)
    started = asyncio.get_running_loop().time()
    assert await remote.ask(Echo("slow answer")) == "slow answer"
    assert asyncio.get_running_loop().time() - started >= 0.09
    reply = [s for s in script.seen if s.kind == "reply"][0]
    assert reply.address == a.address


async def test_cut_link_closes_the_socket_refuses_reconnects_then_heals(pair):
    a, b = pair
    await b.spawn(Recorder, "r")
    await a.spawn(Recorder, "r")
    to_b = a.ref_for(b.address, "/user/r")
    to_a = b.ref_for(a.address, "/user/r")
    assert await to_b.ask(Echo("before")) == "before"
    assert a.transport_statistics()["connections"] == 1
    a.cut_link(b.address, 0.5)
    await asyncio.sleep(0.05)
    assert a.transport_statistics()["connections"] == 0
    assert b.transport_statistics()["connections"] == 0  # the socket really closed: b saw it go
    to_b.tell(Note("during, from a"))  # queued while a's redials are refused
    to_a.tell(Note("during, from b"))  # b's dials are refused at a's handshake
    await asyncio.sleep(0.2)
    assert b.transport_statistics()["connect_failures"] + a.transport_statistics()["connect_failures"] >= 1
    assert await to_b.ask(Echo("after"), timeout=10) == "after"  # the cut ended: reconnected
    assert await notes(to_b) == ("echo before", "during, from a", "echo after")
    assert await to_a.ask(Notes(), timeout=10) == ("during, from b",)


async def test_a_cut_fails_pending_asks_with_connection_lost(pair):
    a, b = pair

    class Sleeper(Actor):
        @handler(Echo)
        async def echo(self, msg):
            await asyncio.sleep(1)
            return msg.text

    await b.spawn(Sleeper, "s")
    pending = a.ref_for(b.address, "/user/s").ask_nowait(Echo("x"), timeout=5)
    await asyncio.sleep(0.05)
    a.cut_link(b.address, 0.2)
    with pytest.raises(ConnectionLost):
        await pending
    with pytest.raises(RuntimeError, match="no transport"):
        ActorSystem("lonely").cut_link(b.address, 1)


async def test_a_refused_reply_fails_its_ask_as_a_lost_connection(system):
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script(replies={"reply:Echo": Refuse("link cut")}))
    with pytest.raises(ConnectionLost, match="link cut"):
        await ref.ask(Echo("x"), timeout=5)


async def test_shutting_down_fails_held_asks_at_once_instead_of_leaving_them_hanging():
    system = ActorSystem("bye", strict=True)
    await system.start()
    ref = await system.spawn(Recorder, "r")
    system.interpose(Script({"held": Hold("g"), "late": Delay(60)}))
    held = ref.ask_nowait(Echo("held"), timeout=60)
    late = ref.ask_nowait(Echo("late"), timeout=60)
    await system.shutdown()
    for waiting in (held, late):
        with pytest.raises(ConnectionLost, match="shut down while the interposer held it"):
            await waiting
    assert system.interposer is None
