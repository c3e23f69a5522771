"""Hostile bytes against a live actor system.

An authenticated peer (it knows the secret) sends malformed, truncated, oversized and
unknown-tag frames. Each bad frame costs at most that one connection (or, for an unknown
message type, just that one delivery); the system goes on serving a well-behaved peer.
"""

from __future__ import annotations

import asyncio
import itertools

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from sparklet.actors import ActorSystem, CodecError, message_tag
from sparklet.actors._framing import encode_frame
from sparklet.actors._handshake import CHALLENGE_SIZE, VERDICT_SIZE, ClientHandshake, encode_hello

from test_actors import Add, Counter, Get

_fake_ports = itertools.count(20000)


async def raw_peer(system: ActorSystem) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A socket that passed the handshake and said hello, ready to send raw frames."""
    host, port = system.address.removeprefix("tcp://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    client = ClientHandshake(system.secret)
    writer.write(client.receive_challenge(await reader.readexactly(CHALLENGE_SIZE)))
    client.receive_verdict(await reader.readexactly(VERDICT_SIZE))
    writer.write(encode_frame(encode_hello(f"tcp://127.0.0.1:{next(_fake_ports)}")))
    size = int.from_bytes(await reader.readexactly(4), "big")
    await reader.readexactly(size)  # the welcome
    return reader, writer


async def close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    try:
        await writer.wait_closed()
    except (ConnectionError, OSError):
        pass


ADD_TAG = message_tag(Add).encode()

bad_frames = st.one_of(
    st.binary(min_size=1, max_size=64),                                           # garbage
    st.binary(min_size=1, max_size=32).map(lambda b: msgpack.packb([0, "/user/c"])[:-1] + b[:1]),  # truncated
    st.builds(lambda k: msgpack.packb([k, "/user/c", 1, None, None, None]), st.integers(5, 200)),  # unknown kind
    st.builds(lambda n: msgpack.packb([0] + [None] * n), st.integers(0, 9)),      # wrong field count
    st.builds(lambda v: msgpack.packb([0, v, 1, None, None, None]), st.integers(-2**63, 2**64 - 1) | st.none()),  # bad path
    st.just(msgpack.packb([0, "/user/c", [msgpack.ExtType(1, ADD_TAG), 1, 2, 3], None, None, None])),  # bad arity
    st.just(msgpack.packb([0, "/user/c", msgpack.ExtType(77, b"?"), None, None, None])),  # unknown ext
    st.just(msgpack.packb({"not": "a frame"})),
)


@pytest.fixture
async def victim():
    system = ActorSystem("victim", strict=True)
    await system.start()
    await system.listen(max_frame_size=4096)
    await system.spawn(Counter, "c")
    async with ActorSystem("friend", strict=True) as friend:
        await friend.listen(secret=system.secret)
        yield system, friend.ref_for(system.address, "/user/c")
    await system.shutdown()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(frames=st.lists(bad_frames, min_size=1, max_size=4))
async def test_malformed_frames_cost_only_their_connection(victim, frames):
    system, counter = victim
    before = (await counter.ask(Get()))[0]
    reader, writer = await raw_peer(system)
    for frame in frames:
        writer.write(encode_frame(frame))
    await writer.drain()
    # The victim drops this connection (or ignores the frames); either way it keeps
    # serving the well-behaved peer, and the counter was not touched by garbage.
    counter.tell(Add(1))
    assert (await counter.ask(Get(), timeout=5))[0] == before + 1
    await close(writer)


async def test_oversized_frame_closes_only_that_connection(victim):
    system, counter = victim
    reader, writer = await raw_peer(system)
    writer.write((10_000_000).to_bytes(4, "big") + b"x" * 100)
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed on us
    await close(writer)
    counter.tell(Add(2))
    assert (await counter.ask(Get(), timeout=5))[0] == 2
    assert system.transport_statistics()["protocol_errors"] >= 1


async def test_unknown_message_type_fails_one_delivery_not_the_link(victim):
    system, counter = victim
    reader, writer = await raw_peer(system)
    unknown = [msgpack.ExtType(1, b"elsewhere.Mystery"), 1]
    writer.write(encode_frame(msgpack.packb([0, "/user/c", unknown, None, None, None])))
    writer.write(encode_frame(msgpack.packb([0, "/user/c", [msgpack.ExtType(1, ADD_TAG), 5], None, None, None])))
    await writer.drain()
    for _ in range(200):
        if (await counter.ask(Get()))[0] == 5:
            break
        await asyncio.sleep(0.01)
    assert (await counter.ask(Get()))[0] == 5  # the frame after the unknown one was delivered
    letter = system.dead_letters.recent[-1]
    assert letter.recipient == "/user/c" and "unknown message type 'elsewhere.Mystery'" in letter.reason
    await close(writer)


async def test_an_ask_with_an_unknown_type_gets_a_clear_error_back():
    from sparklet.actors import message
    from sparklet.actors._codec import DEFAULT_REGISTRY

    only_b = DEFAULT_REGISTRY.copy()  # as if b's process imported a module a's did not

    @message(tag="only.in.b.Question", registry=only_b)
    class Question:
        text: str

    async with ActorSystem("a") as a, ActorSystem("b", registry=only_b) as b:
        await a.listen()
        await b.listen(secret=a.secret)
        await a.spawn(Counter, "c")
        with pytest.raises(CodecError, match=r"does not know message type 'only.in.b.Question' sent to /user/c"):
            await b.ref_for(a.address, "/user/c").ask(Question("?"), timeout=5)
        assert (await b.ref_for(a.address, "/user/c").ask(Get()))[0] == 0
