"""The transport over real sockets (TCP on 127.0.0.1, Unix sockets in tmp_path) and real
processes. Every wait is bounded; every endpoint, socket and process is closed."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import signal
import socket
import sys

import pytest
import pytest_asyncio
import uvloop
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparklet.actors._errors import ConnectionLost, FrameTooLarge, HandshakeFailed, ProtocolError, SendQueueFull
from sparklet.actors._framing import FrameDecoder, encode_frame
from sparklet.actors._handshake import (
    CHALLENGE_SIZE, VERDICT_SIZE, ClientHandshake, encode_hello, generate_secret,
)
from sparklet.actors._transport import Endpoint, parse_address, reconnect_delays

pytestmark = pytest.mark.timeout(20)

SECRET = generate_secret()


class Recorder:
    """Collects what an endpoint reports, and waits (on the loop, bounded) for it."""

    def __init__(self) -> None:
        self.frames: list[tuple[str, bytes]] = []
        self.lost: list[tuple[str, BaseException | None]] = []
        self.undeliverable: list[tuple[str, list[bytes], BaseException]] = []

    def on_frame(self, peer: str, payload: bytes) -> None:
        self.frames.append((peer, payload))

    def on_peer_lost(self, peer: str, error: BaseException | None) -> None:
        self.lost.append((peer, error))

    def on_undeliverable(self, peer: str, frames: list[bytes], error: BaseException) -> None:
        self.undeliverable.append((peer, frames, error))

    def payloads_from(self, peer: str) -> list[bytes]:
        return [payload for sender, payload in self.frames if sender == peer]


async def eventually(condition, timeout: float = 5.0) -> None:
    """Wait on the loop until `condition()` holds; every live endpoint must stay consistent meanwhile."""
    async with asyncio.timeout(timeout):
        while not condition():
            for endpoint in _live_endpoints:
                endpoint.validate_state()
            await asyncio.sleep(0.005)


_live_endpoints: list[Endpoint] = []  # made by make_endpoint in the running test


def make_endpoint(recorder: Recorder, **options) -> Endpoint:
    options.setdefault("secret", SECRET)
    endpoint = Endpoint(on_frame=recorder.on_frame, on_peer_lost=recorder.on_peer_lost,
                        on_undeliverable=recorder.on_undeliverable, **options)
    _live_endpoints.append(endpoint)
    return endpoint


@pytest.fixture(autouse=True)
def forget_endpoints():
    yield
    _live_endpoints.clear()


@pytest_asyncio.fixture
async def endpoints():
    """endpoints(**options) -> (Endpoint, Recorder); all closed at teardown, leaving no task."""
    made: list[Endpoint] = []

    def make(**options) -> tuple[Endpoint, Recorder]:
        recorder = Recorder()
        made.append(make_endpoint(recorder, **options))
        return made[-1], recorder

    yield make
    for endpoint in made:
        endpoint.validate_state()
        await endpoint.close()
        endpoint.validate_state()
        assert endpoint.statistics()["open_sockets"] == 0
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not others, f"tasks left behind: {others}"


def listen_address(kind: str, tmp_path, name: str) -> str:
    return f"unix://{tmp_path / name}.sock" if kind == "unix" else "tcp://127.0.0.1:0"


# -- talking --------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["tcp", "unix"])
async def test_exchange_both_ways_over_one_connection(endpoints, tmp_path, kind):
    a, a_got = endpoints()
    b, b_got = endpoints()
    a_address = await a.listen(listen_address(kind, tmp_path, "a"))
    b_address = await b.listen(listen_address(kind, tmp_path, "b"))
    assert a.address == a_address and a_address.startswith(f"{kind}://")
    for i in range(5):
        a.send(b_address, b"ping %d" % i)
    await eventually(lambda: len(b_got.frames) == 5)
    assert b_got.frames == [(a_address, b"ping %d" % i) for i in range(5)]
    for i in range(5):
        b.send(a_address, b"pong %d" % i)
    await eventually(lambda: len(a_got.frames) == 5)
    assert a_got.frames == [(b_address, b"pong %d" % i) for i in range(5)]
    for endpoint in (a, b):
        stats = endpoint.statistics()
        assert stats["connections"] == 1 and stats["open_sockets"] == 1
        assert stats["frames_sent"] == stats["frames_received"] == 5
        assert stats["handshake_failures"] == stats["protocol_errors"] == stats["connect_failures"] == 0
        if kind == "tcp":
            [conn] = endpoint._sockets  # white-box: small frames must not wait for Nagle
            assert conn.writer.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


@pytest.mark.asyncio
async def test_simultaneous_connect_leaves_one_connection(endpoints):
    for _ in range(8):
        a, a_got = endpoints()
        b, b_got = endpoints()
        a_address, b_address = await a.listen(), await b.listen()
        a.send(b_address, b"from a")
        b.send(a_address, b"from b")
        await asyncio.gather(a.connect(b_address), b.connect(a_address))
        a.send(b_address, b"again from a")
        b.send(a_address, b"again from b")
        await eventually(lambda: len(a_got.frames) == 2 and len(b_got.frames) == 2)
        assert a_got.payloads_from(b_address) == [b"from b", b"again from b"]
        assert b_got.payloads_from(a_address) == [b"from a", b"again from a"]
        # The duplicate, if both dials got through, is refused and closed.
        await eventually(lambda: a.statistics()["open_sockets"] == 1 and b.statistics()["open_sockets"] == 1)
        assert a.statistics()["connections"] == b.statistics()["connections"] == 1
        assert not a_got.lost and not b_got.lost
        await a.close()
        await b.close()


@pytest.mark.asyncio
async def test_small_frames_are_coalesced(endpoints):
    a, _ = endpoints()
    b, b_got = endpoints()
    await a.listen()
    b_address = await b.listen()
    await a.connect(b_address)
    payloads = [b"frame %05d" % i for i in range(5000)]
    for payload in payloads:
        a.send(b_address, payload)
    await eventually(lambda: len(b_got.frames) == len(payloads))
    assert [payload for _, payload in b_got.frames] == payloads
    stats = a.statistics()
    assert stats["frames_sent"] == len(payloads)
    assert stats["writes"] < stats["frames_sent"] / 100


@pytest.mark.asyncio
async def test_large_frames_arrive_intact(endpoints):
    a, _ = endpoints(max_frame_size=8 * 1024 * 1024)
    b, b_got = endpoints(max_frame_size=8 * 1024 * 1024)
    await a.listen()
    b_address = await b.listen()
    big = bytes(random.Random(1).randbytes(5 * 1024 * 1024))
    a.send(b_address, big)
    a.send(b_address, b"small after big")
    await eventually(lambda: len(b_got.frames) == 2)
    assert b_got.frames[0][1] == big and b_got.frames[1][1] == b"small after big"


# -- refusing -------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wrong_secret_is_refused(endpoints):
    a, a_got = endpoints(secret=b"not the same secret at all")
    b, b_got = endpoints()
    a_address, b_address = await a.listen(), await b.listen()
    with pytest.raises(HandshakeFailed, match="different secret"):
        await a.connect(b_address)
    a.send(b_address, b"let me in")
    await eventually(lambda: a_got.undeliverable)
    [(peer, frames, error)] = a_got.undeliverable
    assert (peer, frames) == (b_address, [b"let me in"])
    assert isinstance(error, ConnectionLost) and isinstance(error.__cause__, HandshakeFailed)
    assert b.statistics()["handshake_failures"] == 2 and a.statistics()["handshake_failures"] == 2
    assert not b_got.frames and not b_got.lost
    assert b.statistics()["connections"] == 0
    b.send(a_address, b"and you cannot come in either")
    await eventually(lambda: b_got.undeliverable)


async def raw_exchange(address: str, data: bytes, *, half_close: bool = True) -> bytes:
    """Connect a plain socket, send `data`, and read whatever comes back until the peer closes."""
    kind, where = parse_address(address)
    if kind == "tcp":
        reader, writer = await asyncio.open_connection(*where)
    else:
        reader, writer = await asyncio.open_unix_connection(where)
    received = b""
    try:
        try:
            writer.write(data)
            if half_close:
                writer.write_eof()
        except OSError:
            pass
        while chunk := await reader.read(65536):
            received += chunk
    except OSError:
        pass  # the endpoint may reset a connection it closed with our bytes unread
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return received


@pytest.mark.asyncio
async def test_garbage_and_silent_peers_are_refused(endpoints, caplog):
    caplog.set_level(logging.WARNING, logger="sparklet.transport")
    b, b_got = endpoints(handshake_timeout=0.3)
    b_address = await b.listen()
    garbage = b"GET / HTTP/1.1\r\nHost: example\r\n\r\n" * 4
    reply = await raw_exchange(b_address, garbage)
    assert len(reply) == CHALLENGE_SIZE + VERDICT_SIZE  # greeting, then refusal, then close
    silent_reply = await raw_exchange(b_address, b"", half_close=False)  # says nothing at all
    assert len(silent_reply) == CHALLENGE_SIZE
    assert b.statistics()["handshake_failures"] == 2
    assert "not a sparklet endpoint" in caplog.text and "handshake_timeout" in caplog.text
    assert not b_got.frames and not b_got.lost
    a, _ = endpoints()
    await a.listen()
    a.send(b_address, b"still serving")
    await eventually(lambda: b_got.frames)


@pytest.mark.asyncio
async def test_oversized_frame_closes_only_that_connection(endpoints):
    target, target_got = endpoints(max_frame_size=1024)
    rude, rude_got = endpoints()
    polite, _ = endpoints()
    target_address = await target.listen()
    rude_address, polite_address = await rude.listen(), await polite.listen()
    polite.send(target_address, b"before")
    rude.send(target_address, b"fits")
    rude.send(target_address, b"x" * 2000)
    rude.send(target_address, b"never seen")
    await eventually(lambda: target_got.lost)
    assert target_got.payloads_from(rude_address) == [b"fits"]
    [(peer, error)] = target_got.lost
    assert peer == rude_address and isinstance(error, FrameTooLarge) and "2000" in str(error)
    assert target.statistics()["protocol_errors"] == 1
    await eventually(lambda: rude_got.lost)
    assert isinstance(rude_got.lost[0][1], ConnectionLost)  # refused without a goodbye
    polite.send(target_address, b"after")
    await eventually(lambda: len(target_got.payloads_from(polite_address)) == 2)
    assert target_got.payloads_from(polite_address) == [b"before", b"after"]
    assert target.statistics()["connections"] == 1


@pytest.mark.asyncio
async def test_on_frame_protocol_error_closes_but_other_errors_are_the_callers_bug(endpoints, caplog):
    caplog.set_level(logging.ERROR, logger="sparklet.transport")
    delivered: list[bytes] = []
    lost: list[tuple[str, BaseException | None]] = []

    def on_frame(peer: str, payload: bytes) -> None:
        if payload == b"bug":
            raise KeyError("a bug in the caller")
        if payload == b"bad":
            raise ProtocolError("the peer sent a bad message")
        delivered.append(payload)

    target = Endpoint(secret=SECRET, on_frame=on_frame, on_peer_lost=lambda peer, error: lost.append((peer, error)))
    try:
        sender, _ = endpoints()
        target_address = await target.listen()
        await sender.listen()
        for payload in (b"one", b"bug", b"two", b"bad", b"three"):
            sender.send(target_address, payload)
        await eventually(lambda: lost)
        assert delivered == [b"one", b"two"]
        assert isinstance(lost[0][1], ProtocolError)
        stats = target.statistics()
        assert stats["callback_errors"] == 1 and stats["protocol_errors"] == 1 and stats["connections"] == 0
        assert "a bug in the caller" in caplog.text
    finally:
        await target.close()


# -- fuzzing a live endpoint ----------------------------------------------------------

_fake_peers = itertools.count()


@st.composite
def hostile_streams(draw):
    """(authenticate?, hello, frame bytes): raw streams a broken or hostile peer might send."""
    pieces = st.one_of(
        st.binary(max_size=64).map(encode_frame),  # well-formed frame
        st.binary(min_size=1, max_size=64).map(lambda p: encode_frame(p)[: -1]),  # truncated
        st.integers(min_value=1025, max_value=2**32 - 1).map(lambda n: n.to_bytes(4, "big")),  # oversized
        st.binary(max_size=32),  # noise
    )
    authenticate = draw(st.booleans())
    hello = draw(st.sampled_from(["valid", "garbage", "oversized"]))
    return authenticate, hello, b"".join(draw(st.lists(pieces, max_size=6)))


async def attack(address: str, authenticate: bool, hello: str, stream: bytes) -> str:
    """Send one hostile stream; returns the fake peer's address."""
    fake_peer = f"tcp://fuzz.invalid:{next(_fake_peers)}"
    if not authenticate:
        await raw_exchange(address, stream)
        return fake_peer
    kind, where = parse_address(address)
    reader, writer = await asyncio.open_connection(*where)
    try:
        client = ClientHandshake(SECRET)
        writer.write(client.receive_challenge(await reader.readexactly(CHALLENGE_SIZE)))
        client.receive_verdict(await reader.readexactly(VERDICT_SIZE))
        hello_frame = {"valid": encode_frame(encode_hello(fake_peer)), "garbage": encode_frame(b"HELO\xff"),
                       "oversized": b"\x00\x10\x00\x00HELO"}[hello]
        try:
            writer.write(hello_frame + stream)
            writer.write_eof()
            while await reader.read(65536):
                pass
        except OSError:
            pass
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    return fake_peer


def expected_frames(stream: bytes, limit: int) -> list[bytes]:
    """What the endpoint may deliver from `stream`: frames up to the first error or goodbye."""
    decoder, out = FrameDecoder(limit), []
    for i in range(len(stream)):  # byte by byte: the frames before an oversized prefix count
        try:
            frames = decoder.feed(stream[i : i + 1])
        except FrameTooLarge:
            return out
        for frame in frames:
            if not frame:
                return out
            out.append(frame)
    return out


@pytest.mark.timeout(60)
@pytest.mark.parametrize("loop_factory", [None, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_fuzzed_streams_never_hurt_the_endpoint(loop_factory):
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        recorder = Recorder()
        target = make_endpoint(recorder, max_frame_size=1024, handshake_timeout=1.0)
        address = runner.run(target.listen())
        try:
            runs = []

            @settings(max_examples=50, deadline=None, suppress_health_check=list(HealthCheck))
            @given(case=hostile_streams())
            def survives(case):
                runs.append(case)
                authenticate, hello, stream = case
                frames_before, failures_before = len(recorder.frames), target.statistics()["handshake_failures"]
                fake_peer = runner.run(attack(address, authenticate, hello, stream))
                target.validate_state()
                if authenticate and hello == "valid":
                    assert recorder.payloads_from(fake_peer) == expected_frames(stream, 1024)
                    assert [peer for peer, _ in recorder.lost].count(fake_peer) == 1
                else:
                    assert len(recorder.frames) == frames_before
                    assert target.statistics()["handshake_failures"] == failures_before + 1

            survives()
            assert len(runs) >= 25

            async def still_serves() -> None:
                await eventually(lambda: target.statistics()["connections"] == 0)
                friend_got = Recorder()
                friend = make_endpoint(friend_got)
                friend_address = await friend.listen()
                try:
                    friend.send(address, b"hello")
                    await eventually(lambda: recorder.payloads_from(friend_address) == [b"hello"])
                    target.send(friend_address, b"hello back")
                    await eventually(lambda: friend_got.frames)
                finally:
                    await friend.close()

            runner.run(still_serves())
        finally:
            runner.run(target.close())
        assert target.statistics()["open_sockets"] == 0 and target.statistics()["tasks"] == 0


# -- losing peers and finding them again ----------------------------------------------


@pytest.mark.asyncio
async def test_disconnect_reports_a_clean_close_on_both_sides_and_send_reconnects(endpoints):
    a, a_got = endpoints()
    b, b_got = endpoints()
    a_address, b_address = await a.listen(), await b.listen()
    await a.connect(b_address)
    a.disconnect(b_address)
    assert a_got.lost == [(b_address, None)]  # reported at once, and exactly once
    await eventually(lambda: b_got.lost)
    assert b_got.lost == [(a_address, None)]  # the goodbye makes it a clean close
    await eventually(lambda: a.statistics()["open_sockets"] == 0 and b.statistics()["open_sockets"] == 0)
    for i in range(3):
        a.send(b_address, b"after %d" % i)
    await eventually(lambda: len(b_got.frames) == 3)
    assert b_got.payloads_from(a_address) == [b"after 0", b"after 1", b"after 2"]
    assert a.statistics()["reconnects"] == 1
    assert len(a_got.lost) == 1 and len(b_got.lost) == 1


PEER_PROCESS = r"""
import asyncio, sys
from sparklet.actors._transport import Endpoint

async def main():
    secret = bytes.fromhex(sys.stdin.readline().strip())
    endpoint = Endpoint(secret=secret, on_frame=lambda peer, payload: endpoint.send(peer, payload),
                        on_peer_lost=lambda peer, error: None)
    print("READY", await endpoint.listen(sys.argv[1]), flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


class EchoPeer:
    """A separate python process hosting an Endpoint that echoes every frame back."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", PEER_PROCESS, self.address,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        self.process.stdin.write(SECRET.hex().encode() + b"\n")  # never on the command line
        await self.process.stdin.drain()
        async with asyncio.timeout(15):
            line = await self.process.stdout.readline()
        assert line.split() == [b"READY", self.address.encode()], line

    async def kill(self) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.returncode is None:
            process.send_signal(signal.SIGKILL)
        await process.wait()
        process.stdin.close()
        await process.stdout.read()


@pytest_asyncio.fixture
async def echo_peer(tmp_path):
    peer = EchoPeer(f"unix://{tmp_path / 'peer.sock'}")
    yield peer
    await peer.kill()


@pytest.mark.asyncio
@pytest.mark.timeout(40)
async def test_peer_killed_is_reported_and_queued_frames_follow_the_restart(endpoints, echo_peer):
    a, a_got = endpoints(reconnect_initial=0.05, reconnect_max=0.3, reconnect_attempts=60)
    await a.listen()
    await echo_peer.start()
    a.send(echo_peer.address, b"first life")
    await eventually(lambda: a_got.frames, timeout=10)
    await echo_peer.kill()
    await eventually(lambda: a_got.lost)
    [(peer, error)] = a_got.lost
    assert peer == echo_peer.address and isinstance(error, ConnectionLost) and "goodbye" in str(error)
    queued = [b"queued %03d" % i for i in range(200)]
    for payload in queued:
        a.send(echo_peer.address, payload)  # nobody listens: these wait for the restart
    await eventually(lambda: a.statistics()["connect_failures"] >= 1)
    await echo_peer.start()
    await eventually(lambda: len(a_got.frames) == 1 + len(queued), timeout=15)
    assert a_got.payloads_from(echo_peer.address) == [b"first life"] + queued
    assert len(a_got.lost) == 1 and not a_got.undeliverable
    assert a.statistics()["reconnects"] == 1


@pytest.mark.asyncio
async def test_undeliverable_frames_are_handed_back_when_the_peer_never_returns(endpoints, tmp_path):
    a, a_got = endpoints(reconnect_initial=0.01, reconnect_max=0.02, reconnect_attempts=3)
    await a.listen()
    nobody = f"unix://{tmp_path / 'nobody.sock'}"
    for i in range(4):
        a.send(nobody, b"lost %d" % i)
    await eventually(lambda: a_got.undeliverable)
    [(peer, frames, error)] = a_got.undeliverable
    assert peer == nobody and frames == [b"lost 0", b"lost 1", b"lost 2", b"lost 3"]
    assert isinstance(error, ConnectionLost) and "3 attempt" in str(error)
    assert a_got.lost == [(nobody, error)]
    assert a.statistics()["connect_failures"] == 3 and a.statistics()["links"] == 0
    with pytest.raises(ConnectionLost):
        await a.connect(nobody)


# -- closing --------------------------------------------------------------------------


async def exercise_and_close(tmp_path) -> None:
    a_got, b_got, c_got = Recorder(), Recorder(), Recorder()
    a, b, c = make_endpoint(a_got), make_endpoint(b_got), make_endpoint(c_got)
    socket_file = tmp_path / "b.sock"
    a_address = await a.listen()
    b_address = await b.listen(f"unix://{socket_file}")
    await c.listen()
    a.send(b_address, b"to b")
    c.send(a_address, b"c to a")
    b.send(a_address, b"b to a")
    await eventually(lambda: len(a_got.frames) == 2 and b_got.frames)
    a.send(b_address, b"queued while closing")  # flushed, not dropped, by close()
    for endpoint in (a, b, c):
        await endpoint.close()
        await endpoint.close()  # idempotent
        stats = endpoint.statistics()
        assert stats["open_sockets"] == stats["connections"] == stats["links"] == stats["tasks"] == 0
        if endpoint is a:
            await eventually(lambda: b_got.lost and c_got.lost)
    assert not socket_file.exists()
    assert b_got.payloads_from(a_address) == [b"to b", b"queued while closing"]
    assert not a_got.lost  # closing reports nothing to the endpoint that closes...
    assert b_got.lost == c_got.lost == [(a_address, None)]  # ...and a clean close to its peers
    assert [t for t in asyncio.all_tasks() if t is not asyncio.current_task()] == []
    with pytest.raises(ConnectionLost, match="closed"):
        a.send(b_address, b"too late")


@pytest.mark.asyncio
async def test_close_leaves_nothing_behind(tmp_path):
    await exercise_and_close(tmp_path)


def test_close_leaves_nothing_behind_under_uvloop(tmp_path):
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(exercise_and_close(tmp_path))


def test_exchange_under_uvloop_over_tcp_and_unix(tmp_path):
    async def exchange() -> None:
        got = Recorder()
        a, b = make_endpoint(got), make_endpoint(got)
        try:
            a_address = await a.listen()
            b_address = await b.listen(f"unix://{tmp_path / 'b.sock'}")
            for i in range(1000):
                a.send(b_address, b"%d" % i)
            b.send(a_address, b"back")
            await eventually(lambda: len(got.frames) == 1001)
            assert got.payloads_from(a_address) == [b"%d" % i for i in range(1000)]
            assert a.statistics()["connections"] == b.statistics()["connections"] == 1
        finally:
            await a.close()
            await b.close()

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(exchange())


# -- usage errors and pure helpers ----------------------------------------------------


@pytest.mark.asyncio
async def test_send_refuses_what_it_cannot_deliver_synchronously(endpoints, tmp_path):
    a, _ = endpoints(max_frame_size=100, max_queued_bytes=400, reconnect_initial=1.0, reconnect_attempts=2)
    with pytest.raises(RuntimeError, match="listen"):
        a.send("tcp://127.0.0.1:9", b"x")
    a_address = await a.listen()
    nobody = f"unix://{tmp_path / 'nobody.sock'}"
    with pytest.raises(FrameTooLarge, match="101 bytes.*max_frame_size is 100"):
        a.send(nobody, b"x" * 101)
    with pytest.raises(ValueError, match="empty"):
        a.send(nobody, b"")
    with pytest.raises(ValueError, match="own address"):
        a.send(a_address, b"x")
    with pytest.raises(ValueError, match="got 'http://x'"):
        a.send("http://x", b"x")
    a.send(nobody, b"x" * 100)
    a.send(nobody, b"x" * 100)
    with pytest.raises(SendQueueFull, match="max_queued_bytes is 400"):
        a.send(nobody, b"x" * 100)  # each queued frame also counts its bookkeeping
    assert 200 < a.statistics()["bytes_queued"] <= 400 and a.statistics()["frames_queued"] == 2


@pytest.mark.parametrize(("bad", "match"), [
    ({"secret": b"short"}, "at least 16"),
    ({"max_frame_size": 0}, "max_frame_size"),
    ({"handshake_timeout": 0}, "handshake_timeout"),
    ({"reconnect_attempts": 0}, "reconnect_attempts"),
])
def test_bad_options_are_usage_errors_naming_the_option(bad, match):
    options = {"secret": SECRET, **bad}
    with pytest.raises(ValueError, match=match):
        Endpoint(on_frame=lambda peer, payload: None, on_peer_lost=lambda peer, error: None, **options)


def test_parse_address():
    assert parse_address("tcp://127.0.0.1:7077") == ("tcp", ("127.0.0.1", 7077))
    assert parse_address("tcp://:0") == ("tcp", ("127.0.0.1", 0))
    assert parse_address("tcp://[::1]:5") == ("tcp", ("::1", 5))
    assert parse_address("unix:///tmp/x.sock") == ("unix", "/tmp/x.sock")
    for bad in ("127.0.0.1:1", "tcp://host", "tcp://host:port", "tcp://h:70000", "unix://", "udp://h:1"):
        with pytest.raises(ValueError, match="address must look like"):
            parse_address(bad)


def test_reconnect_delays_double_up_to_the_maximum_with_jitter():
    delays = reconnect_delays(0.1, 1.0, 8, random.Random(7))
    assert len(delays) == 7  # pauses between eight attempts
    ceilings = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings))
    assert reconnect_delays(0.1, 1.0, 8, random.Random(7)) == delays  # seeded: reproducible
    assert reconnect_delays(0.1, 1.0, 1, random.Random(7)) == []
