"""Location transparency: references to actors in other processes.

The remote layer sits between an :class:`ActorSystem` and its transport
:class:`~sparklet.actors._transport.Endpoint`. A frame is one msgpack array, encoded by
the system's codec, whose first element says what it is:

=======  ==========================================================================
kind     fields
=======  ==========================================================================
TELL     target path, message, sender ref, trace id, cause id
ASK      target path, message, sender ref, request id, trace id, cause id
REPLY    request id, ok, value (ok) or error (type, text, traceback, pickled or nil)
WATCH    target path (the sending system watches it)
UNWATCH  target path
=======  ==========================================================================

A remote ``Terminated`` is an ordinary ``TELL`` to the watcher's reference. When a
connection is lost, every local watcher of an actor behind it gets ``Terminated(actor,
"connection lost: ...")`` and every ask waiting on it fails with :class:`ConnectionLost`.

``on_frame`` is the single receive point: whatever a peer sends that is not a valid frame
is a :class:`ProtocolError` there, and the transport closes that connection only.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any

import cloudpickle

from sparklet.actors._actor import Terminated
from sparklet.actors._codec import UnknownMessage
from sparklet.actors._errors import ActorStopped, CodecError, ConnectionLost, ProtocolError, RemoteActorError
from sparklet.actors._interpose import Send
from sparklet.actors._ref import ActorRef, Envelope, LocalActorRef, arm_timeout, current_cell, refuse
from sparklet.actors._transport import Endpoint

if TYPE_CHECKING:
    from sparklet.actors._system import ActorSystem

log = logging.getLogger("sparklet.remote")

__all__ = ["RemoteLayer", "RemoteActorRef"]

TELL, ASK, REPLY, WATCH, UNWATCH = range(5)
_WATCH_PATH = "/system/remote-watch"  # where Terminated for a remote watch is told


class RemoteActorRef(ActorRef):
    """A reference to an actor in another process: tell, ask and watch as for a local one."""

    __slots__ = ("_address", "_layer")

    def __init__(self, system: "ActorSystem", layer: "RemoteLayer", address: str, path: str) -> None:
        super().__init__(system, path)
        self._address = address
        self._layer = layer

    @property
    def address(self) -> str:
        return self._address

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        sending = current_cell.get()
        if sender is None and sending is not None:
            sender = sending.ref
        trace_id = cause_id = None
        if self._system.events.enabled:
            trace_id, cause_id = self._system._trace_send(message, self._address + self.path, sending, False)
        frame = (TELL, self.path, message, sender, trace_id, cause_id)
        if self._system._interposition is not None and self._layer.interpose(self, frame, sender, "tell"):
            return
        self._layer.send(self._address, frame)

    def ask_nowait(self, message: Any, timeout: float | None = None) -> asyncio.Future:
        return self._layer.ask_nowait(self, message, timeout)


class _RemoteReply:
    """Where a remote asker's reply goes: duck-types the part of Future a cell uses."""

    __slots__ = ("_layer", "_peer", "_request_id", "_done")

    def __init__(self, layer: "RemoteLayer", peer: str, request_id: int) -> None:
        self._layer, self._peer, self._request_id, self._done = layer, peer, request_id, False

    def done(self) -> bool:
        return self._done

    def set_result(self, value: Any) -> None:
        self._done = True
        try:
            self._layer.send(self._peer, (REPLY, self._request_id, True, value))
        except CodecError as exc:
            self._layer.send(self._peer, (REPLY, self._request_id, False, _describe_error(exc)))

    def set_exception(self, exc: BaseException) -> None:
        self._done = True
        self._layer.send(self._peer, (REPLY, self._request_id, False, _describe_error(exc)))


def _describe_error(exc: BaseException) -> tuple:
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickled: bytes | None = cloudpickle.dumps(exc)
    except Exception:
        pickled = None
    return (f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text, pickled)


def _rebuild_error(error: tuple) -> BaseException:
    type_name, text, remote_traceback, pickled = error
    if pickled is not None:
        try:
            exc = cloudpickle.loads(pickled)
        except Exception:
            exc = None
        if isinstance(exc, BaseException):
            exc.add_note(f"raised in a remote actor; remote traceback:\n{remote_traceback}")
            return exc
    return RemoteActorError(type_name, text, remote_traceback)


class RemoteLayer:
    def __init__(self, system: "ActorSystem", secret: bytes, **endpoint_options: Any) -> None:
        self._system = system
        self._codec = system.codec
        self.endpoint = Endpoint(
            secret=secret,
            on_frame=self.on_frame,
            on_peer_lost=self.on_peer_lost,
            on_undeliverable=self.on_undeliverable,
            **endpoint_options,
        )
        self._refs: dict[tuple[str, str], RemoteActorRef] = {}
        self._request_ids = itertools.count(1)
        # request id -> (future, peer, target path, message type name)
        self._pending: dict[int, tuple[asyncio.Future, str, str, str]] = {}
        # peer -> target path -> local watchers of that remote actor
        self._watched: dict[str, dict[str, set[ActorRef]]] = {}

    @property
    def address(self) -> str | None:
        return self.endpoint.address

    async def listen(self, address: str) -> str:
        return await self.endpoint.listen(address)

    def ref(self, address: str, path: str) -> RemoteActorRef:
        key = (address, path)
        ref = self._refs.get(key)
        if ref is None:
            ref = self._refs[key] = RemoteActorRef(self._system, self, address, path)
        return ref

    # -- sending ----------------------------------------------------------------------
    def send(self, peer: str, frame: tuple) -> None:
        self.endpoint.send(peer, self._codec.encode(frame))

    def ask_nowait(self, target: RemoteActorRef, message: Any, timeout: float | None) -> asyncio.Future:
        sending = current_cell.get()
        request_id = next(self._request_ids)
        future = asyncio.get_running_loop().create_future()
        trace_id = cause_id = None
        if self._system.events.enabled:
            trace_id, cause_id = self._system._trace_send(message, target.address + target.path, sending, True)
        sender = sending.ref if sending else None
        frame = (ASK, target.path, message, sender, request_id, trace_id, cause_id)
        self._pending[request_id] = (future, target.address, target.path, type(message).__qualname__)
        if self._system._interposition is None or not self.interpose(target, frame, sender, "ask", future):
            try:
                self.send(target.address, frame)
            except BaseException:
                self._pending.pop(request_id, None)
                raise
        future.add_done_callback(lambda _: self._pending.pop(request_id, None))
        return arm_timeout(self._system, future, timeout, target.address + target.path, message)

    def interpose(self, target: RemoteActorRef, frame: tuple, sender: ActorRef | None, kind: str,
                  reply: asyncio.Future | None = None) -> bool:
        """Let the system's interposer decide about a tell or ask to ``target`` (True: handled)."""
        message = frame[2]
        send = Send(sender.path if sender is not None else None, target.path, target.address,
                    type(message).__qualname__, kind, message)
        env = (message, sender, reply, None, None)
        return self._system._interposition.intercept(  # type: ignore[union-attr]
            send, lambda: self.send(target.address, frame), lambda reason: refuse(self._system, env, target.address + target.path, reason))

    def watch(self, target: ActorRef, watcher: ActorRef) -> None:
        watchers = self._watched.setdefault(target.address, {}).setdefault(target.path, set())
        first = not watchers
        watchers.add(watcher)
        if first:
            self.send(target.address, (WATCH, target.path))

    def unwatch(self, target: ActorRef, watcher: ActorRef) -> None:
        by_path = self._watched.get(target.address, {})
        watchers = by_path.get(target.path)
        if watchers is None:
            return
        watchers.discard(watcher)
        if not watchers:
            del by_path[target.path]
            try:
                self.send(target.address, (UNWATCH, target.path))
            except Exception:
                pass  # the peer is gone; nothing to unwatch

    # -- receiving: the single receive point -----------------------------------------------------
    def on_frame(self, peer: str, payload: bytes) -> None:
        # Malformed msgpack is a ProtocolError (CodecError): the transport drops that link.
        # An unknown message type is not: it fails just that delivery, below.
        frame = self._codec.decode(payload, lenient=True)
        if type(frame) is not tuple or not frame or type(frame[0]) is not int:
            raise ProtocolError(f"frame from {peer} is not a sparklet frame: {type(frame).__name__}")
        kind = frame[0]
        try:
            if kind == TELL:
                _, path, message, sender, trace_id, cause_id = frame
                if path == _WATCH_PATH and type(message) is Terminated:
                    self._fan_out_terminated(peer, message)
                else:
                    self._deliver(path, (message, sender, None, trace_id, cause_id))
            elif kind == ASK:
                _, path, message, sender, request_id, trace_id, cause_id = frame
                self._deliver(path, (message, sender, _RemoteReply(self, peer, request_id), trace_id, cause_id))
            elif kind == REPLY:
                _, request_id, ok, value = frame
                pending = self._pending.pop(request_id, None)
                if pending is not None and not pending[0].done():
                    if ok:
                        pending[0].set_result(value)
                    else:
                        pending[0].set_exception(_rebuild_error(value))
            elif kind == WATCH:
                _, path = frame
                self._system._watch(LocalActorRef(self._system, path), _PeerWatcher(self, peer))
            elif kind == UNWATCH:
                _, path = frame
                self._system._unwatch(LocalActorRef(self._system, path), _PeerWatcher(self, peer))
            else:
                raise ProtocolError(f"unknown frame kind {kind} from {peer}")
        except ValueError:
            raise ProtocolError(f"frame of kind {kind} from {peer} has {len(frame)} fields") from None

    def _deliver(self, path: Any, env: Envelope) -> None:
        if type(path) is not str:
            raise ProtocolError(f"target path must be a string, got {type(path).__name__}")
        system = self._system
        if type(env[0]) is UnknownMessage:
            error = CodecError(
                f"system {system.name!r} (pid {os.getpid()}) does not know message type {env[0].tag!r} sent to {path}; "
                "declare message types in a module both processes import"
            )
            log.warning("%s", error)
            if env[2] is not None:
                env[2].set_exception(error)
            system._dead_letter((env[0], env[1], None, env[3], env[4]), path, f"unknown message type {env[0].tag!r}")
            return
        cell = system._cells.get(path)
        if cell is None or cell.terminated:
            system._dead_letter(env, path, "no such actor")
        else:
            cell.enqueue(env)

    def _fan_out_terminated(self, peer: str, message: Terminated) -> None:
        watchers = self._watched.get(peer, {}).pop(message.actor.path, ())
        for watcher in watchers:
            watcher.tell(Terminated(self.ref(peer, message.actor.path), message.reason))

    def on_peer_lost(self, peer: str, error: BaseException | None) -> None:
        reason = f"connection lost: {peer}" + (f" ({error})" if error else "")
        for request_id, (future, where, path, msg_type) in list(self._pending.items()):
            if where == peer and not future.done():
                future.set_exception(ConnectionLost(f"connection to {peer} lost while asking {path} with {msg_type}"))
        for path, watchers in self._watched.pop(peer, {}).items():
            for watcher in watchers:
                watcher.tell(Terminated(self.ref(peer, path), reason))
        # Watches this peer held on our actors die with it.
        gone = _PeerWatcher(self, peer)
        for cell in list(self._system._cells.values()):
            cell.watchers.discard(gone)
        if self._system.events.enabled:
            self._system.events.record("peer_lost", None, peer=peer, reason=reason)

    def on_undeliverable(self, peer: str, frames: list[bytes], error: BaseException) -> None:
        for payload in frames:
            try:
                frame = self._codec.decode(payload)
            except CodecError:
                continue
            if frame and frame[0] in (TELL, ASK):
                message, sender = frame[2], frame[3]
                self._system._dead_letter((message, sender, None, None, None), peer + frame[1], f"undeliverable: {error}")

    async def close(self) -> None:
        for future, _, path, msg_type in list(self._pending.values()):
            if not future.done():
                future.set_exception(ActorStopped(f"system {self._system.name!r} shut down while asking {path} with {msg_type}"))
        self._pending.clear()
        await self.endpoint.close()

    def statistics(self) -> dict[str, Any]:
        return {"pending_asks": len(self._pending), "watched_peers": len(self._watched), **self.endpoint.statistics()}


class _PeerWatcher(ActorRef):
    """Stands for a remote system that watches one of our actors: a ``Terminated`` told to
    it goes back over the wire to that system, which fans it out to its local watchers."""

    __slots__ = ("_layer", "_peer")

    def __init__(self, layer: RemoteLayer, peer: str) -> None:
        super().__init__(layer._system, _WATCH_PATH)
        self._layer, self._peer = layer, peer

    @property
    def address(self) -> str:
        return self._peer

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        if type(message) is Terminated:
            self._layer.send(self._peer, (TELL, _WATCH_PATH, message, None, None, None))

    def ask_nowait(self, message: Any, timeout: float | None = None) -> asyncio.Future:
        raise TypeError("a peer watcher cannot be asked")
