"""The actor system: the explicit object everything hangs off.

It owns the tree of cells (``/`` with the guardians ``/user`` and ``/system``), the codec,
the clock, the event log, dead letters and, once :meth:`ActorSystem.listen` is called,
the transport to other processes. There are no global registries: two systems in one
process share nothing but the message type catalogue.

Strict mode round-trips every local message (and every reply) through the msgpack codec,
so a message that could not cross a process boundary fails in a single-process test too.
It defaults to the environment variable ``SPARKLET_STRICT=1``, which the test suite sets,
so it is on everywhere there, child processes included.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import itertools
import logging
import os
import uuid
from typing import Any

from sparklet.actors._actor import Actor, ChildFailure, Props, Terminated, as_props
from sparklet.actors._cell import Cell
from sparklet.actors._clock import Clock, RealClock
from sparklet.actors._codec import Codec, MessageRegistry
from sparklet.actors._errors import ActorNotFound, ActorStopped, CodecError
from sparklet.actors._events import EventLog
from sparklet.actors._interpose import Interposer, Interposition, Send
from sparklet.actors._ref import REPLY, TRACE_ID, ActorRef, Envelope, LocalActorRef, current_cell, refuse

log = logging.getLogger("sparklet.actors")

__all__ = ["ActorSystem", "DeadLetter", "DeadLetters"]


@dataclasses.dataclass(frozen=True)
class DeadLetter:
    """A message that could not be delivered, and why."""

    recipient: str
    message_type: str
    sender: str | None
    reason: str
    message: Any


class DeadLetters:
    """Counts every undelivered message and keeps the most recent ones."""

    def __init__(self, capacity: int) -> None:
        self.count = 0
        self.recent: collections.deque[DeadLetter] = collections.deque(maxlen=capacity)

    def record(self, letter: DeadLetter) -> None:
        self.count += 1
        self.recent.append(letter)

    def statistics(self) -> dict[str, Any]:
        return {"count": self.count, "kept": len(self.recent)}


class _Guardian(Actor):
    """``/``, ``/user`` and ``/system``. A failing top-level actor is restarted (Akka's
    default); if its restart fails too, it is stopped and the failure logged."""

    async def handle_child_failure(self, failure: ChildFailure) -> None:
        try:
            await self.context.restart_child(failure.child, failure.error)
        except Exception as exc:
            log.error("%s failed (%r) and could not be restarted (%r); stopping it", failure.child.path, failure.error, exc)
            await self.context.stop(failure.child, reason=f"error: {type(exc).__name__}: {exc}")


class _PromiseRef(ActorRef):
    """A reference whose only behaviour is to complete a future with the first message:
    how code outside any actor waits for a ``Terminated``."""

    __slots__ = ("_future",)

    def __init__(self, system: "ActorSystem", path: str, future: asyncio.Future) -> None:
        super().__init__(system, path)
        self._future = future

    @property
    def address(self) -> str | None:
        return self._system.address

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        if not self._future.done():
            self._future.set_result(message)

    def ask_nowait(self, message: Any, timeout: float | None = None) -> asyncio.Future:
        raise TypeError(f"{self.path} is a promise; it cannot be asked")


class ActorSystem:
    """A tree of actors in one process, optionally connected to others.

    Use ``async with ActorSystem("name") as system:`` or call :meth:`start` and
    :meth:`shutdown` yourself. All methods must be called from the loop it runs on.
    """

    def __init__(
        self,
        name: str = "sparklet",
        *,
        strict: bool | None = None,
        tracing: bool = False,
        trace_file: str | None = None,
        trace_dir: str | None = None,
        event_capacity: int = 100_000,
        clock: Clock | None = None,
        mailbox_capacity: int = 1_000_000,
        default_ask_timeout: float = 30.0,
        stop_timeout: float = 5.0,
        dead_letter_capacity: int = 1_000,
        registry: MessageRegistry | None = None,
    ) -> None:
        self.name = name
        self.uid = uuid.uuid4().hex[:12]
        # None: from the environment, so a test suite can make every system strict,
        # including those in child processes (they inherit the variable).
        self._strict = os.environ.get("SPARKLET_STRICT") == "1" if strict is None else strict
        self.clock: Clock = clock or RealClock()
        self.mailbox_capacity = mailbox_capacity
        self.default_ask_timeout = default_ask_timeout
        self.stop_timeout = stop_timeout
        self.events = EventLog(system=name, enabled=tracing, capacity=event_capacity, path=trace_file,
                               directory=trace_dir)
        self.dead_letters = DeadLetters(dead_letter_capacity)
        # Tell's fast path skips codec, tracing and interposition when none is on (kept in
        # step by _update_plain).
        self._interposition: Interposition | None = None
        self._plain = not self._strict and not self.events.enabled
        self.events.on_change = self._update_plain
        self.unhandled_count = 0
        self._codec = Codec(ref_type=ActorRef, encode_ref=self._encode_ref, resolve_ref=self._resolve_ref, registry=registry)
        self._cells: dict[str, Cell] = {}
        self._watching: dict[ActorRef, set[ActorRef]] = {}  # watcher -> targets it watches
        self._promises = itertools.count(1)
        self._remote: Any = None  # the transport layer, once listen() is called
        self.secret: bytes | None = None
        self._root: Cell | None = None
        self._user: Cell | None = None
        self._system: Cell | None = None
        self._state = "new"
        self._shutdown_done: asyncio.Future | None = None

    # -- lifecycle ----------------------------------------------------------------------
    async def start(self) -> "ActorSystem":
        if self._state != "new":
            return self
        self._state = "running"
        root = Cell(self, Props(actor_class=_Guardian), "", None)
        self._root = root
        self._cells["/"] = root
        started = asyncio.get_running_loop().create_future()
        root.task = asyncio.get_running_loop().create_task(root._run(started), name=f"actor / of {self.name}")
        await started
        self._system = self._cells[(await root.spawn_child(Props(actor_class=_Guardian), "system", None)).path]
        self._user = self._cells[(await root.spawn_child(Props(actor_class=_Guardian), "user", None)).path]
        return self

    async def __aenter__(self) -> "ActorSystem":
        return await self.start()

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.shutdown()

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop every actor, children first in reverse start order, then the transport.
        Leaves no task, thread or socket behind. Idempotent."""
        if self._state == "new":
            self._state = "stopped"
            self.events.close()
            return
        if self._shutdown_done is not None:
            await asyncio.shield(self._shutdown_done)
            return
        self._state = "stopping"
        self._shutdown_done = asyncio.get_running_loop().create_future()
        if self._interposition is not None:
            interposition, self._interposition = self._interposition, None
            self._update_plain()
            interposition.uninstall(deliver=False)
        try:
            for guardian in (self._user, self._system):
                if guardian is not None:
                    await guardian.stop("shutdown", timeout)
            if self._remote is not None:
                await self._remote.close()
            if self._root is not None:
                await self._root.stop("shutdown", timeout)
                if self._root.task is not None:
                    await self._root.task
        finally:
            self._state = "stopped"
            self.events.close()
            self._shutdown_done.set_result(None)

    def _update_plain(self) -> None:
        self._plain = not self._strict and not self.events.enabled and self._interposition is None

    @property
    def strict(self) -> bool:
        """Whether every local message round-trips through the codec (fixed at construction)."""
        return self._strict

    @property
    def running(self) -> bool:
        return self._state == "running"

    # -- actors -------------------------------------------------------------------------
    async def spawn(self, props: Props | type, name: str | None = None, *, shutdown: float | None = 5.0) -> ActorRef:
        """Start a top-level actor under ``/user`` and wait for its ``pre_start``.

        Raises :class:`ActorStartFailed` (with the cause) if ``pre_start`` raised,
        :class:`ActorNameTaken` if the name is in use, :class:`Ignore` if it declined.
        """
        return await self._guardian("user").spawn_child(as_props(props), name, shutdown)

    async def spawn_system_actor(self, props: Props | type, name: str | None = None, *, shutdown: float | None = 5.0) -> ActorRef:
        """Start an actor under ``/system`` (runtime internals; stopped after ``/user``)."""
        return await self._guardian("system").spawn_child(as_props(props), name, shutdown)

    def _guardian(self, which: str) -> Cell:
        if self._state != "running":
            raise ActorStopped(f"actor system {self.name!r} is {self._state}; call start() (or use 'async with')")
        cell = self._user if which == "user" else self._system
        assert cell is not None
        return cell

    def lookup(self, path: str) -> ActorRef:
        """The live actor at ``path`` (``/user/...``); raises :class:`ActorNotFound`."""
        cell = self._cells.get(path)
        if cell is None or cell.terminated:
            raise ActorNotFound(f"no live actor at {path} in system {self.name!r}")
        return cell.ref

    async def stop(self, ref: ActorRef, *, timeout: float | None = None, reason: str = "normal") -> None:
        """Stop a local actor (its children first) and wait until it has terminated."""
        cell = self._cells.get(ref.path)
        if cell is None or cell.terminated:
            return
        await cell.stop(reason, self.stop_timeout if timeout is None else timeout)

    def state_of(self, ref: ActorRef) -> str:
        cell = self._cells.get(ref.path)
        return cell.state.value if cell is not None else "stopped"

    def restart_count(self, ref: ActorRef) -> int:
        cell = self._cells.get(ref.path)
        return cell.restart_count if cell is not None else 0

    # -- death watch ----------------------------------------------------------------------
    def watch(self, target: ActorRef, watcher: ActorRef) -> None:
        """Deliver ``Terminated`` to ``watcher`` when ``target`` stops (at once if gone)."""
        self._watch(target, watcher)

    async def wait_terminated(self, target: ActorRef, timeout: float | None = None) -> Terminated:
        """Wait, from outside any actor, until ``target`` has stopped; return its ``Terminated``."""
        future = asyncio.get_running_loop().create_future()
        promise = _PromiseRef(self, f"/temp/${next(self._promises)}", future)
        self._watch(target, promise)
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._unwatch(target, promise)

    def _is_local(self, ref: ActorRef) -> bool:
        return isinstance(ref, LocalActorRef) or ref.address is None or ref.address == self.address

    def _watch(self, target: ActorRef, watcher: ActorRef) -> None:
        if self._is_local(target):
            cell = self._cells.get(target.path)
            if cell is None or cell.terminated:
                watcher.tell(Terminated(target, "not found"))
                return
            cell.watchers.add(watcher)
        elif self._remote is not None:
            self._remote.watch(target, watcher)
        else:
            watcher.tell(Terminated(target, "connection lost: this system has no transport"))
            return
        self._watching.setdefault(watcher, set()).add(target)

    def _unwatch(self, target: ActorRef, watcher: ActorRef) -> None:
        targets = self._watching.get(watcher)
        if targets is not None:
            targets.discard(target)
            if not targets:
                del self._watching[watcher]
        if self._is_local(target):
            cell = self._cells.get(target.path)
            if cell is not None:
                cell.watchers.discard(watcher)
        elif self._remote is not None:
            self._remote.unwatch(target, watcher)

    def _cell_terminated(self, cell: Cell) -> None:
        for target in list(self._watching.get(cell.ref, ())):
            self._unwatch(target, cell.ref)

    # -- delivery bookkeeping ---------------------------------------------------------------
    def _trace_send(self, message: Any, target: str, sending: Cell | None, ask: bool) -> tuple[int, int | None]:
        """Record a send event; return the message's (trace id, cause id)."""
        trace_id = self.events.next_id()
        cause_id = sending.current[TRACE_ID] if sending is not None and sending.current is not None else None
        self.events.record(
            "send", sending.path if sending is not None else None, to=target,
            msg=type(message).__qualname__, id=trace_id, cause=cause_id, ask=ask,
        )
        return trace_id, cause_id

    def _reply(self, env: Envelope, result: Any, cell: Cell, interposed: bool = True) -> None:
        message, _, reply, trace_id, _ = env
        if reply is None or reply.done():
            return
        if interposed and self._interposition is not None and self._interpose_reply(env, result, cell):
            return
        if self.strict:
            try:
                result = self._codec.roundtrip(result)
            except CodecError as exc:
                reply.set_exception(CodecError(f"reply of {cell.path} to {type(message).__qualname__}: {exc}"))
                return
        if self.events.enabled:
            self.events.record("send", cell.path, msg=type(result).__qualname__, id=self.events.next_id(), reply_to=trace_id)
        reply.set_result(result)

    # -- interposition (see actors/_interpose.py) -----------------------------------------------
    def interpose(self, interposer: Interposer | None) -> None:
        """Put ``interposer`` between every sender in this system and delivery (local and
        remote tells and asks, and replies); ``None`` removes it, delivering whatever it
        delayed or held. One at a time: installing over another one is refused."""
        if interposer is not None and self._interposition is not None:
            raise RuntimeError(f"system {self.name!r} already has an interposer ({self._interposition.interposer!r}); "
                               "remove it with interpose(None) first")
        previous, self._interposition = self._interposition, None
        if interposer is not None:
            self._interposition = Interposition(self, interposer)
        self._update_plain()
        if previous is not None:
            previous.uninstall()

    @property
    def interposer(self) -> Interposer | None:
        """The installed interposer, if any."""
        return self._interposition.interposer if self._interposition is not None else None

    def release(self, gate: str, order: Any = None) -> int:
        """Deliver the messages the interposer held behind ``gate`` (in send order, or in
        ``order``, a permutation of their indices); returns how many."""
        return self._interposition.release(gate, order) if self._interposition is not None else 0

    def held(self, gate: str | None = None) -> int:
        """How many messages the interposer holds behind ``gate`` (all gates when None)."""
        return self._interposition.held(gate) if self._interposition is not None else 0

    def interposition_statistics(self) -> dict[str, Any]:
        """Decisions taken so far by kind, and how many messages are held or delayed now."""
        return self._interposition.statistics() if self._interposition is not None else {}

    def cut_link(self, address: str, seconds: float) -> None:
        """Cut the connection to the system at ``address`` for ``seconds``: it closes now
        (pending asks fail with ``ConnectionLost``, watchers get ``Terminated``), and
        reconnecting, either way, is refused until the cut ends. Messages sent meanwhile
        queue while the transport redials with backoff, as after any lost connection."""
        if self._remote is None:
            raise RuntimeError(f"system {self.name!r} has no transport (call listen()); there is no link to cut")
        self._remote.endpoint.cut(address, seconds)

    def _interpose_reply(self, env: Envelope, result: Any, cell: Cell) -> bool:
        asker = env[1]
        # A remote asker's reply handle knows its peer even when the ask came from outside any actor.
        address = asker.address if asker is not None else getattr(env[2], "_peer", self.address)
        send = Send(cell.path, asker.path if asker is not None else "", address,
                    "reply:" + type(env[0]).__qualname__, "reply", result)
        return self._interposition.intercept(  # type: ignore[union-attr]
            send, lambda: self._reply(env, result, cell, interposed=False),
            lambda reason: refuse(self, env, cell.path, reason))  # the asker learns it as a lost connection

    def _dead_letter_dropped(self, send: Send) -> None:
        self.dead_letters.record(DeadLetter((send.address or "") + send.recipient, send.message_type, send.sender,
                                            "dropped by the interposer", send.message))

    def _dead_letter(self, env: Envelope, recipient: str, reason: str) -> None:
        msg, sender_ref, reply, trace_id, _ = env
        sender = sender_ref.path if sender_ref is not None else None
        self.dead_letters.record(DeadLetter(recipient, type(msg).__qualname__, sender, reason, msg))
        if reply is not None and not reply.done():
            reply.set_exception(ActorStopped(f"{recipient}: {reason}; {type(msg).__qualname__} was not delivered"))
        if self.events.enabled:
            self.events.record("dead_letter", recipient, msg=type(msg).__qualname__, id=trace_id, reason=reason, sender=sender)
        log.debug("dead letter to %s (%s): %s", recipient, reason, type(msg).__qualname__)

    def _unhandled(self, env: Envelope, path: str, exc: Exception) -> None:
        self.unhandled_count += 1
        if self.events.enabled:
            self.events.record("unhandled", path, msg=type(env[0]).__qualname__, id=env[TRACE_ID])
        log.warning("%s", exc)

    # -- other processes ------------------------------------------------------------------------
    async def listen(self, address: str = "tcp://127.0.0.1:0", *, secret: bytes | None = None, **transport_options: Any) -> str:
        """Accept connections from other sparklet processes and make references to this
        system's actors usable there. Returns the canonical address (``tcp://host:port``
        or ``unix:///path``). Listens on loopback unless ``address`` names another host.

        ``secret`` is the cluster's shared secret (generated when omitted; see
        :attr:`secret`): every connection must prove it knows it before any frame is read.
        """
        from sparklet.actors._handshake import generate_secret
        from sparklet.actors._remote import RemoteLayer

        self._guardian("user")
        if self._remote is not None:
            raise RuntimeError(f"system {self.name!r} already listens at {self.address}")
        self.secret = secret if secret is not None else generate_secret()
        self._remote = RemoteLayer(self, self.secret, **transport_options)
        return await self._remote.listen(address)

    def transport_statistics(self) -> dict[str, Any]:
        return self._remote.statistics() if self._remote is not None else {}

    # -- references and the codec -------------------------------------------------------------
    @property
    def address(self) -> str | None:
        return self._remote.address if self._remote is not None else None

    def _encode_ref(self, ref: ActorRef) -> tuple[str | None, str]:
        return ref.address, ref.path

    def _resolve_ref(self, address: str | None, path: str) -> ActorRef:
        if address is None or address == self.address:
            return LocalActorRef(self, path, self._cells.get(path))
        if self._remote is None:
            raise CodecError(f"reference to {address}{path}, but system {self.name!r} has no transport (call listen())")
        return self._remote.ref(address, path)

    def ref_for(self, address: str | None, path: str) -> ActorRef:
        """A reference to the actor at ``path`` in the system listening at ``address``."""
        return self._resolve_ref(address, path)

    @property
    def codec(self) -> Codec:
        return self._codec

    # -- introspection --------------------------------------------------------------------------
    def tree(self) -> str:
        """The live actor tree, one line per actor: path, class, state, restarts."""
        lines: list[str] = []

        def walk(cell: Cell, prefix: str, last: bool, top: bool) -> None:
            label = f"{cell.name or '/'} [{cell.props.label}] {cell.state.value}"
            if cell.restart_count:
                label += f" restarts={cell.restart_count}"
            lines.append(label if top else prefix + ("└── " if last else "├── ") + label)
            children = list(cell.children.values())
            for i, child in enumerate(children):
                walk(child, prefix if top else prefix + ("    " if last else "│   "), i == len(children) - 1, False)

        if self._root is not None and not self._root.terminated:
            walk(self._root, "", True, True)
        return "\n".join(lines)

    def statistics(self) -> dict[str, Any]:
        return {
            "actors": len(self._cells),
            "dead_letters": self.dead_letters.count,
            "unhandled": self.unhandled_count,
            "events": self.events.statistics(),
            "mailboxes": {path: len(cell.mailbox) for path, cell in self._cells.items() if cell.mailbox},
        }

    def current_actor(self) -> ActorRef | None:
        """The actor whose code is running now, if any."""
        cell = current_cell.get()
        return cell.ref if cell is not None else None
