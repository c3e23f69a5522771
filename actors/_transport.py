"""The transport: authenticated, framed, coalescing connections between processes.

:class:`Endpoint` is the asyncio shell around two sans-I/O cores, the frame codec
(:mod:`~sparklet.actors._framing`) and the handshake (:mod:`~sparklet.actors._handshake`).
It moves opaque payloads; what they mean is the codec's business, one layer up. It owns
one listening socket, one *link* per peer (a send queue plus a pump task that dials,
redials and writes everything queued since its last write as one buffer) and one task
per socket (authenticate, then read).

Invariants (``validate_state()`` checks the bookkeeping ones):

* One connection per pair of endpoints. The dialling side names its listen address in a
  hello frame; the accepting side sends to that peer over the same connection. If both
  dial at once, the connection initiated by the lexicographically smaller address wins
  on both sides; the other is refused (``Welcome.DUPLICATE``) before any data crosses it.
* Frames to one peer leave in ``send()`` order; ``on_frame`` sees them in that order.
* Nothing an unauthenticated peer sends is decoded: the handshake reads fixed-size raw
  messages only, and the frame decoder starts after it.
* Every task is in ``_tasks`` and every socket in ``_sockets`` until closed; after
  ``close()`` both are empty.

Failure and recovery: a peer that breaks the protocol (frame over the limit, bad hello,
``on_frame`` raising :class:`ProtocolError`) loses its connection and nobody else
notices. A lost connection is reported once through ``on_peer_lost``: with ``None`` if
the peer said goodbye (the empty frame, sent by ``disconnect()`` and ``close()``), else
with the error, or :class:`ConnectionLost` for an EOF without goodbye, which is what a
killed process looks like. The next ``send()`` redials with exponential backoff and
jitter; frames queued meanwhile go out in order after the reconnect, or to
``on_undeliverable`` once every attempt failed. Frames already handed to a socket that
then dies are lost: delivery is at most once; acknowledgements belong upstairs.

Review checklist, by test in tests/test_transport.py: one connection ``test_exchange_both_ways_*``,
``test_simultaneous_connect_*``; coalescing ``test_small_frames_are_coalesced``; refusals
``test_wrong_secret_*``, ``test_garbage_and_silent_*``; isolation ``test_oversized_frame_*``,
``test_fuzzed_streams_*``; loss and reconnect ``test_disconnect_*``, ``test_peer_killed_*``,
``test_undeliverable_*``; nothing left behind ``test_close_leaves_nothing_behind*``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
from typing import Callable

from sparklet.actors._errors import ConnectionLost, FrameTooLarge, HandshakeFailed, ProtocolError, SendQueueFull
from sparklet.actors._framing import FRAME_HEADER, LARGEST_ENCODABLE_PAYLOAD, FrameDecoder, encode_frame
from sparklet.actors._links import Connection as _Connection, Link as _Link, parse_address, reconnect_delays
from sparklet.actors._handshake import (
    CHALLENGE_SIZE, MAX_SETUP_FRAME_SIZE, RESPONSE_SIZE, VERDICT_SIZE, ClientHandshake, ServerHandshake,
    Welcome, decode_hello, decode_welcome, encode_hello, encode_welcome,
)

__all__ = ["Endpoint", "parse_address", "reconnect_delays"]

logger = logging.getLogger("sparklet.transport")

_pack_header = FRAME_HEADER.pack
_GOODBYE = _pack_header(0)  # the empty frame: "I am closing on purpose"
_READ_CHUNK = 256 * 1024
_STREAM_LIMIT = 1024 * 1024  # StreamReader stops reading the socket past twice this
_CLOSE_GRACE = 1.0  # seconds a closing socket gets to flush before it is aborted
_QUEUED_FRAME_OVERHEAD = 64  # the Python objects around a queued payload: tiny frames count too
_LOST_PEERS_REMEMBERED = 1024  # enough to count reconnects; bounded so churn cannot grow it

PeerLostCallback = Callable[[str, "BaseException | None"], None]
UndeliverableCallback = Callable[[str, "list[bytes]", BaseException], None]


class Endpoint:
    """This process's door to the others. See the module docstring for the guarantees."""

    def __init__(self, *, secret: bytes,
                 on_frame: Callable[[str, bytes], None],
                 on_peer_lost: PeerLostCallback,
                 max_frame_size: int = 64 * 1024 * 1024,
                 handshake_timeout: float = 5.0,
                 reconnect_initial: float = 0.05, reconnect_max: float = 2.0, reconnect_attempts: int = 8,
                 max_queued_bytes: int = 256 * 1024 * 1024,
                 on_undeliverable: UndeliverableCallback | None = None) -> None:
        ClientHandshake(secret)  # validates the secret, naming what is wrong with it
        if not isinstance(max_frame_size, int) or not 0 < max_frame_size <= LARGEST_ENCODABLE_PAYLOAD:
            raise ValueError(f"max_frame_size must be in 1..{LARGEST_ENCODABLE_PAYLOAD}, got {max_frame_size!r}")
        for name, value in (("handshake_timeout", handshake_timeout), ("reconnect_initial", reconnect_initial),
                            ("reconnect_max", reconnect_max), ("max_queued_bytes", max_queued_bytes)):
            if not value > 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if not isinstance(reconnect_attempts, int) or reconnect_attempts < 1:
            raise ValueError(f"reconnect_attempts must be an int >= 1, got {reconnect_attempts!r}")
        self._secret = bytes(secret)
        self._on_frame, self._on_peer_lost, self._on_undeliverable = on_frame, on_peer_lost, on_undeliverable
        self._max_frame_size, self._handshake_timeout = max_frame_size, handshake_timeout
        self._reconnect_initial, self._reconnect_max = reconnect_initial, reconnect_max
        self._reconnect_attempts, self._max_queued_bytes = reconnect_attempts, max_queued_bytes
        self._rng = random.Random()
        self._server: asyncio.AbstractServer | None = None
        self._address: str | None = None
        self._unix_socket: tuple[str, int] | None = None  # (path, inode) we bound, to remove on close
        self._closing = False
        self._closed = asyncio.Event()
        self._peer_to_link: dict[str, _Link] = {}
        self._connections: set[_Connection] = set()  # Invariant: exactly the adopted, not lost ones
        self._sockets: set[_Connection] = set()  # Invariant: every socket not yet fully closed
        self._tasks: set[asyncio.Task[None]] = set()
        self._lost_peers: dict[str, None] = {}  # recently lost peers, oldest first
        self._cut_until: dict[str, float] = {}  # peer -> loop time its cut link may reconnect (fault injection)
        self._queued_bytes = 0
        self._frames_sent = self._bytes_sent = self._writes = 0
        self._frames_received = self._bytes_received = 0
        self._handshake_failures = self._protocol_errors = self._connect_failures = 0
        self._reconnects = self._undeliverable_frames = self._callback_errors = 0

    # -- public API -------------------------------------------------------------------

    @property
    def address(self) -> str | None:
        """The canonical listen address: this process's identity on the wire."""
        return self._address

    async def listen(self, address: str = "tcp://127.0.0.1:0") -> str:
        """Start accepting connections; returns the address actually bound."""
        if self._closing:
            raise RuntimeError("this endpoint is closed; create a new one")
        if self._server is not None:
            raise RuntimeError(f"already listening on {self._address}")
        kind, where = parse_address(address)
        if kind == "tcp":
            host, port = where  # type: ignore[misc]
            server = await asyncio.start_server(self._on_accept, host, port, limit=_STREAM_LIMIT)
            bound_host, bound_port = server.sockets[0].getsockname()[:2]
            if bound_host in ("0.0.0.0", "::"):
                bound_host = socket.gethostname()  # a wildcard is no address a peer can dial
            self._address = f"tcp://[{bound_host}]:{bound_port}" if ":" in bound_host else f"tcp://{bound_host}:{bound_port}"
        else:
            path = os.path.abspath(where)  # type: ignore[arg-type]
            server = await asyncio.start_unix_server(self._on_accept, path, limit=_STREAM_LIMIT)
            self._unix_socket = (path, os.stat(path).st_ino)
            self._address = f"unix://{path}"
        self._server = server
        return self._address

    def send(self, peer_address: str, payload: bytes) -> None:
        """Queue one frame for ``peer_address``; never blocks. Do not mutate ``payload`` afterwards."""
        size = len(payload)
        if not 0 < size <= self._max_frame_size:
            self._refuse_payload(peer_address, size)
        link = self._peer_to_link.get(peer_address)
        if link is None:
            link = self._open_link(peer_address)
        cost = size + _QUEUED_FRAME_OVERHEAD
        if self._queued_bytes + cost > self._max_queued_bytes:
            raise SendQueueFull(
                f"cannot queue {size} bytes for {peer_address}: {self._queued_bytes} bytes already wait "
                f"for slow or unreachable peers and max_queued_bytes is {self._max_queued_bytes}")
        queue = link.queue
        queue.append(_pack_header(size))
        queue.append(payload)
        link.queued_bytes += cost
        self._queued_bytes += cost
        wakeup = link.wakeup
        if wakeup is not None:
            link.wakeup = None
            wakeup.set_result(None)
        elif link.pump is None:
            link.pump = self._spawn(self._pump(link))

    async def connect(self, peer_address: str) -> None:
        """Connect now rather than on the first send; raises :class:`HandshakeFailed` or
        :class:`ConnectionLost` once every attempt failed."""
        link = self._peer_to_link.get(peer_address) or self._open_link(peer_address)
        if link.connection is not None:
            return
        waiter = asyncio.get_running_loop().create_future()
        link.connect_waiters.append(waiter)
        self._wake(link)
        try:
            await waiter
        finally:
            if waiter in link.connect_waiters:
                link.connect_waiters.remove(waiter)

    def disconnect(self, peer_address: str) -> None:
        """Say goodbye to ``peer_address`` and close the connection. Frames still queued
        for it go to ``on_undeliverable``; a later ``send()`` connects afresh."""
        link = self._peer_to_link.get(peer_address)
        if link is None:
            return
        frames = link.queue[1::2]
        self._retire(link, ConnectionLost(f"connection to {peer_address} closed by disconnect()"))
        if link.connection is not None:
            self._lose(link.connection, None, goodbye=True)
        if frames:
            self._hand_over(peer_address, frames, ConnectionLost(f"disconnect({peer_address!r}) called with frames queued"))

    def cut(self, peer_address: str, seconds: float) -> None:
        """Fault injection: close the connection to ``peer_address`` without goodbye (so
        ``on_peer_lost`` reports it) and refuse reconnecting, either way, for ``seconds``:
        frames queued meanwhile wait for the redial (with backoff) as after any loss."""
        if not seconds > 0:
            raise ValueError(f"cut({peer_address!r}): seconds must be positive, got {seconds!r}")
        self._cut_until[peer_address] = asyncio.get_running_loop().time() + seconds
        link = self._peer_to_link.get(peer_address)
        if link is not None and link.connection is not None:
            self._lose(link.connection, ConnectionLost(f"the link to {peer_address} was cut for {seconds:g}s"))

    def _is_cut(self, peer: str) -> bool:
        until = self._cut_until.get(peer)
        if until is None:
            return False
        if asyncio.get_running_loop().time() < until:
            return True
        del self._cut_until[peer]
        return False

    async def close(self) -> None:
        """Flush what is queued for connected peers, say goodbye, and close everything.
        Idempotent. Reports no ``on_peer_lost``: this endpoint is the one leaving."""
        if self._closing:
            await self._closed.wait()
            return
        self._closing = True
        server, self._server = self._server, None
        if server is not None:
            server.close()
        dropped = 0
        for link in list(self._peer_to_link.values()):
            if link.connection is not None and link.queue:
                self._write(link, link.connection)
            dropped += len(link.queue) // 2
            self._retire(link, ConnectionLost(f"endpoint {self._address} closed before reaching {link.peer}"))
        if dropped:
            self._undeliverable_frames += dropped
            logger.warning("endpoint %s closed with %d frame(s) queued for unreachable peers; dropped them",
                           self._address, dropped)
        for conn in list(self._sockets):
            self._lose(conn, None, goodbye=conn.adopted, report=False)
        while self._tasks:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if server is not None:
            await server.wait_closed()
        self._remove_unix_socket()
        self._closed.set()

    def statistics(self) -> dict:
        frames_queued = sum(len(link.queue) for link in self._peer_to_link.values()) // 2
        return {
            "address": self._address, "connections": len(self._connections), "open_sockets": len(self._sockets),
            "links": len(self._peer_to_link), "tasks": len(self._tasks),
            "frames_queued": frames_queued, "bytes_queued": self._queued_bytes,
            "frames_sent": self._frames_sent, "bytes_sent": self._bytes_sent, "writes": self._writes,
            "frames_received": self._frames_received, "bytes_received": self._bytes_received,
            "handshake_failures": self._handshake_failures, "protocol_errors": self._protocol_errors,
            "connect_failures": self._connect_failures, "reconnects": self._reconnects,
            "undeliverable_frames": self._undeliverable_frames, "callback_errors": self._callback_errors,
            "cut_links": len(self._cut_until),  # cuts not yet seen to be over
        }

    def validate_state(self) -> None:
        """Check the invariants above; tests call it between steps."""
        assert self._connections <= self._sockets, "an adopted connection is missing from _sockets"
        assert all(conn.adopted and not conn.lost for conn in self._connections)
        for peer, link in self._peer_to_link.items():
            assert link.peer == peer and not link.retired, f"link for {peer} is stale"
            assert link.connected.is_set() == (link.connection is not None), f"link for {peer}: connected out of sync"
            assert link.connection is None or link.connection in self._connections
            assert len(link.queue) % 2 == 0 and link.queued_bytes >= 0
        assert self._queued_bytes == sum(link.queued_bytes for link in self._peer_to_link.values())

    # -- links: queueing, dialling, writing -------------------------------------------

    def _refuse_payload(self, peer_address: str, size: int) -> None:
        if size == 0:
            raise ValueError(f"cannot send an empty payload to {peer_address}: the empty frame means goodbye")
        raise FrameTooLarge(f"cannot send a frame of {size} bytes to {peer_address}: max_frame_size is "
                            f"{self._max_frame_size} and the receiving side would refuse it")

    def _open_link(self, peer_address: str) -> _Link:
        if self._closing:
            raise ConnectionLost(f"cannot reach {peer_address}: this endpoint is closed")
        if self._address is None:
            raise RuntimeError("call listen() before send() or connect(): peers know this endpoint by its listen address")
        if peer_address == self._address:
            raise ValueError(f"peer_address {peer_address!r} is this endpoint's own address; deliver locally instead")
        parse_address(peer_address)
        link = self._peer_to_link[peer_address] = _Link(peer_address)
        return link

    def _wake(self, link: _Link) -> None:
        wakeup = link.wakeup
        if wakeup is not None:
            link.wakeup = None
            if not wakeup.done():
                wakeup.set_result(None)
        elif link.pump is None and not link.retired:
            link.pump = self._spawn(self._pump(link))

    def _retire(self, link: _Link, error: ProtocolError | ConnectionLost) -> None:
        """Forget a link: its queue, its pump, anyone waiting in connect()."""
        link.retired = True
        if self._peer_to_link.get(link.peer) is link:
            del self._peer_to_link[link.peer]
        self._queued_bytes -= link.queued_bytes
        link.queue, link.queued_bytes = [], 0
        for waiter in link.connect_waiters:
            if not waiter.done():
                waiter.set_exception(error)
        link.connect_waiters.clear()
        if link.pump is not None and link.pump is not asyncio.current_task():
            link.pump.cancel()

    async def _pump(self, link: _Link) -> None:
        """The link's one writer: dials when needed, then writes everything queued since
        its last write as one buffer, so frames coalesce exactly as fast as they arrive."""
        loop = asyncio.get_running_loop()
        while not link.retired:
            conn = link.connection
            if not link.queue and (conn is not None or not link.connect_waiters):
                link.wakeup = loop.create_future()
                await link.wakeup
            elif conn is None:
                if not await self._establish(link):
                    return
            else:
                self._write(link, conn)
                try:
                    await conn.writer.drain()
                except OSError as exc:
                    self._lose(conn, exc)

    def _write(self, link: _Link, conn: _Connection) -> None:
        queue = link.queue
        link.queue = []
        self._queued_bytes -= link.queued_bytes
        link.queued_bytes = 0
        data = b"".join(queue)
        conn.writer.write(data)
        self._bytes_sent += len(data)
        self._writes += 1
        self._frames_sent += len(queue) >> 1

    async def _establish(self, link: _Link) -> bool:
        """Dial with backoff until connected (True) or out of attempts (False, frames handed over)."""
        delays = reconnect_delays(self._reconnect_initial, self._reconnect_max, self._reconnect_attempts, self._rng)
        failure: BaseException | None = None
        for attempt in range(self._reconnect_attempts):
            try:
                await self._dial(link)
            except HandshakeFailed as exc:  # a different secret or version: retrying cannot help
                self._handshake_failures += 1
                failure = exc
                break
            except (OSError, EOFError, ProtocolError) as exc:
                self._connect_failures += 1
                failure = exc
                logger.debug("attempt %d to reach %s failed: %r", attempt + 1, link.peer, exc)
            if link.connection is not None:
                return True
            if attempt < len(delays):
                try:
                    async with asyncio.timeout(delays[attempt]):
                        await link.connected.wait()  # the peer may dial us meanwhile
                    return True
                except TimeoutError:
                    pass
        self._give_up(link, failure)
        return False

    def _give_up(self, link: _Link, failure: BaseException | None) -> None:
        hopeless = isinstance(failure, HandshakeFailed)
        error = ConnectionLost(f"cannot connect to {link.peer}: handshake failed: {failure}" if hopeless else
                               f"cannot reach {link.peer} after {self._reconnect_attempts} attempt(s): {failure!r}")
        error.__cause__ = failure
        logger.warning("giving up on %s: %s", link.peer, error)
        frames = link.queue[1::2]
        self._retire(link, failure if hopeless else error)  # type: ignore[arg-type]
        if frames:
            self._hand_over(link.peer, frames, error)
        self._call_back("on_peer_lost", self._on_peer_lost, link.peer, error)

    async def _dial(self, link: _Link) -> None:
        """One attempt: connect, authenticate, say hello. Returns with the link connected,
        or raises."""
        peer, conn = link.peer, None
        if self._cut_until and self._is_cut(peer):
            raise ConnectionRefusedError(f"the link to {peer} is cut (fault injection)")
        link.dialing = True
        try:
            async with asyncio.timeout(self._handshake_timeout):
                kind, where = parse_address(peer)
                if kind == "tcp":
                    reader, writer = await asyncio.open_connection(*where, limit=_STREAM_LIMIT)  # type: ignore[misc]
                else:
                    reader, writer = await asyncio.open_unix_connection(where, limit=_STREAM_LIMIT)
                conn = self._track(reader, writer, peer, initiated_locally=True)
                client = ClientHandshake(self._secret)
                writer.write(client.receive_challenge(await reader.readexactly(CHALLENGE_SIZE)))
                client.receive_verdict(await reader.readexactly(VERDICT_SIZE))
                writer.write(encode_frame(encode_hello(self._address)))  # type: ignore[arg-type]
                welcome = decode_welcome(await _read_setup_frame(reader))
        except BaseException as exc:
            link.dialing = False
            if isinstance(exc, HandshakeFailed):
                logger.warning("handshake with %s failed: %s", peer, exc)
            if conn is not None:
                await self._discard(conn)
            raise
        link.dialing = False
        if welcome is Welcome.ACCEPTED:
            self._adopt(conn)
            self._spawn(self._serve(conn, self._read_frames(conn)))
            return
        # Both sides dialled at once and the peer keeps the connection it initiated.
        await self._discard(conn)
        if link.connection is None:
            try:
                async with asyncio.timeout(self._handshake_timeout):
                    await link.connected.wait()
            except TimeoutError:
                raise ConnectionLost(f"{peer} said it already has a connection to us, but none arrived") from None

    # -- connections: accept, adopt, read, lose ---------------------------------------

    def _spawn(self, coro) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("sparklet transport task crashed (a sparklet bug, please report it)",
                         exc_info=task.exception())

    def _track(self, reader, writer, peer: str | None, *, initiated_locally: bool) -> _Connection:
        sock = writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        label = peer or str(writer.get_extra_info("peername") or "a unix socket peer")
        conn = _Connection(reader, writer, label, peer, initiated_locally)
        self._sockets.add(conn)
        return conn

    def _on_accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._closing:
            writer.transport.abort()
            return
        conn = self._track(reader, writer, None, initiated_locally=False)
        self._spawn(self._serve(conn, self._accept(conn)))

    async def _serve(self, conn: _Connection, work) -> None:
        """Own one socket for its whole life: run `work` on it, then close it for sure."""
        try:
            await work
        finally:
            await self._discard(conn)

    async def _accept(self, conn: _Connection) -> None:
        try:
            async with asyncio.timeout(self._handshake_timeout):
                server = ServerHandshake(self._secret)
                conn.writer.write(server.challenge())
                conn.writer.write(server.receive_response(await conn.reader.readexactly(RESPONSE_SIZE)))
                if server.failure is not None:
                    raise server.failure
                peer = decode_hello(await _read_setup_frame(conn.reader))
                if peer == self._address:
                    raise ProtocolError(f"peer claims our own address {peer} in its hello")
                if self._cut_until and self._is_cut(peer):
                    logger.debug("refused a connection from %s: the link is cut", peer)
                    return
        except (ProtocolError, OSError, EOFError) as exc:
            self._handshake_failures += 1
            reason = "no handshake within handshake_timeout" if isinstance(exc, TimeoutError) else _describe(exc)
            logger.warning("refused connection from %s: %s", conn.label, reason)
            return
        conn.peer = conn.label = peer
        link = self._peer_to_link.get(peer)
        ours_in_flight = link is not None and (
            link.dialing or (link.connection is not None and link.connection.initiated_locally))
        if ours_in_flight and self._address < peer:  # type: ignore[operator]
            # Tie-break: both dialled; the connection initiated by the smaller address wins.
            conn.writer.write(encode_frame(encode_welcome(Welcome.DUPLICATE)))
            return
        conn.writer.write(encode_frame(encode_welcome(Welcome.ACCEPTED)))
        self._adopt(conn)
        await self._read_frames(conn)

    def _adopt(self, conn: _Connection) -> None:
        """Make `conn` the connection for its peer, replacing any older one."""
        peer = conn.peer
        link = self._peer_to_link.get(peer)  # type: ignore[arg-type]
        if link is None:
            link = self._peer_to_link[peer] = _Link(peer)  # type: ignore[index]
        previous, link.connection = link.connection, conn
        conn.adopted = True
        self._connections.add(conn)
        link.connected.set()
        if previous is not None:  # the peer dialled again, so it holds `previous` for dead
            self._lose(previous, ConnectionLost(f"{peer} replaced this connection with a new one"))
        if peer in self._lost_peers:
            del self._lost_peers[peer]  # type: ignore[arg-type]
            self._reconnects += 1
        for waiter in link.connect_waiters:
            if not waiter.done():
                waiter.set_result(None)
        link.connect_waiters.clear()
        if link.queue:
            self._wake(link)

    async def _read_frames(self, conn: _Connection) -> None:
        reader, decoder = conn.reader, FrameDecoder(self._max_frame_size)
        error: BaseException | None = None
        try:
            while True:
                data = await reader.read(_READ_CHUNK)
                if not data:
                    error = ConnectionLost(f"{conn.peer} closed the connection without saying goodbye "
                                           "(its process probably died)")
                    break
                frames = decoder.feed(data)
                self._bytes_received += len(data)
                if self._deliver(conn.peer, frames):  # type: ignore[arg-type]
                    break  # the peer said goodbye
                if decoder.failure is not None:
                    raise decoder.failure
        except ProtocolError as exc:
            self._protocol_errors += 1
            logger.warning("closing the connection to %s: %s", conn.peer, exc)
            error = exc
        except OSError as exc:
            error = exc
        self._lose(conn, error)

    def _deliver(self, peer: str, frames: list[bytes]) -> bool:
        """Hand frames to on_frame in order; True if the peer said goodbye (an empty frame)."""
        on_frame, delivered = self._on_frame, 0
        try:
            for payload in frames:
                if not payload:
                    return True
                delivered += 1
                try:
                    on_frame(peer, payload)
                except ProtocolError:
                    raise
                except Exception:
                    self._callback_errors += 1
                    logger.exception("on_frame raised on a frame from %s (a bug in the caller); "
                                     "the connection stays open", peer)
            return False
        finally:
            self._frames_received += delivered

    def _lose(self, conn: _Connection, error: BaseException | None, *, goodbye: bool = False,
              report: bool = True) -> None:
        """Stop using `conn` and start closing it; report it once if it was adopted."""
        if conn.lost:
            return
        conn.lost = True
        if goodbye and not conn.writer.is_closing():
            conn.writer.write(_GOODBYE)
        conn.writer.close()
        if not conn.adopted:
            return
        self._connections.discard(conn)
        link = self._peer_to_link.get(conn.peer)  # type: ignore[arg-type]
        if link is not None and link.connection is conn:
            link.connection = None
            link.connected.clear()
            if not (link.queue or link.connect_waiters or link.dialing):
                self._retire(link, ConnectionLost(f"connection to {conn.peer} lost"))
        self._lost_peers[conn.peer] = None  # type: ignore[index]
        if len(self._lost_peers) > _LOST_PEERS_REMEMBERED:
            del self._lost_peers[next(iter(self._lost_peers))]
        if report:
            self._call_back("on_peer_lost", self._on_peer_lost, conn.peer, error)  # type: ignore[arg-type]

    async def _discard(self, conn: _Connection) -> None:
        """Close the socket for good: let it flush for a moment, then abort it."""
        self._lose(conn, None, report=False)
        try:
            async with asyncio.timeout(_CLOSE_GRACE):
                await conn.writer.wait_closed()
        except BaseException as exc:
            conn.writer.transport.abort()
            await asyncio.sleep(0)  # aborting closes the socket on the next loop iteration
            if not isinstance(exc, OSError):
                raise
        finally:
            self._sockets.discard(conn)

    # -- reporting --------------------------------------------------------------------

    def _call_back(self, name: str, callback: Callable, peer: str, *args) -> None:
        try:
            callback(peer, *args)
        except Exception:
            self._callback_errors += 1
            logger.exception("%s raised for %s (a bug in the caller)", name, peer)

    def _hand_over(self, peer: str, frames: list[bytes], error: BaseException) -> None:
        self._undeliverable_frames += len(frames)
        if self._on_undeliverable is None:
            logger.warning("dropping %d undeliverable frame(s) for %s: %s", len(frames), peer, error)
        else:
            self._call_back("on_undeliverable", self._on_undeliverable, peer, frames, error)

    def _remove_unix_socket(self) -> None:
        if self._unix_socket is None:
            return
        path, inode = self._unix_socket
        self._unix_socket = None
        try:
            if os.stat(path).st_ino == inode:  # not a socket some newer process bound since
                os.unlink(path)
        except FileNotFoundError:
            pass


async def _read_setup_frame(reader: asyncio.StreamReader) -> bytes:
    (size,) = FRAME_HEADER.unpack(await reader.readexactly(FRAME_HEADER.size))
    if size > MAX_SETUP_FRAME_SIZE:
        raise FrameTooLarge(f"peer announced a {size}-byte setup frame; setup frames are at most {MAX_SETUP_FRAME_SIZE}")
    return await reader.readexactly(size)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.IncompleteReadError):
        return f"closed the connection during the handshake after {len(exc.partial)} byte(s)"
    return str(exc) or type(exc).__name__
