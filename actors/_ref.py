"""Actor references: the only handle anybody holds on an actor.

A reference names an actor by ``(address, path)``: ``address`` is the listening address
of the system that hosts it (``None`` for a system that does not listen), ``path`` its
place in the tree (``/user/driver/dag-scheduler``). References are values: they compare
and hash by that pair, travel inside messages, and keep working across restarts of the
actor they name, because delivery resolves the path to whichever incarnation is alive.

``tell`` never blocks. ``ask`` sends and awaits the reply, which is the return value of
the handler (or the exception it raised). Inside an actor, the sender of a ``tell`` or
``ask`` is filled in implicitly, as in Akka.
"""

from __future__ import annotations

import abc
import asyncio
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from sparklet.actors._errors import AskTimeout, ConnectionLost
from sparklet.actors._interpose import Send

if TYPE_CHECKING:
    from sparklet.actors._cell import Cell
    from sparklet.actors._system import ActorSystem

__all__ = ["ActorRef", "LocalActorRef", "Envelope", "current_cell"]

# The cell whose task is running: set once at the start of each cell's task, so any
# tell or ask made while that actor handles a message knows its sender and its cause.
current_cell: ContextVar["Cell | None"] = ContextVar("sparklet_current_cell", default=None)


# A message in flight is a plain tuple ``(message, sender, reply, trace_id, cause_id)``,
# because one is built for every tell and a tuple costs a quarter of a slotted object.
# ``reply`` is None for a tell; for an ask, an object with done(), set_result(v) and
# set_exception(e): a local asyncio.Future, or the remote layer's reply handle.
Envelope = tuple
MESSAGE, SENDER, REPLY, TRACE_ID, CAUSE_ID = range(5)


class ActorRef(abc.ABC):
    """A reference to an actor, local or in another process."""

    __slots__ = ("_system", "path")

    def __init__(self, system: "ActorSystem", path: str) -> None:
        self._system = system
        self.path = path

    @property
    @abc.abstractmethod
    def address(self) -> str | None:
        """The listening address of the hosting system (``None``: local, not listening)."""

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @abc.abstractmethod
    def tell(self, message: Any, sender: "ActorRef | None" = None) -> None:
        """Send ``message``; never blocks. Undeliverable messages become dead letters."""

    async def ask(self, message: Any, timeout: float | None = None) -> Any:
        """Send ``message`` and await the handler's return value.

        Raises :class:`AskTimeout` (naming this actor and the message type) when no reply
        comes within ``timeout`` seconds (default: the system's ``default_ask_timeout``),
        :class:`ActorStopped` if the actor stops first, and the handler's exception if it
        raised. Cancelling the awaiting task abandons the reply.
        """
        return await self.ask_nowait(message, timeout)

    @abc.abstractmethod
    def ask_nowait(self, message: Any, timeout: float | None = None) -> asyncio.Future:
        """Send ``message`` now and return a future of the reply (same outcomes as :meth:`ask`).

        The message leaves before this returns, so it keeps its place relative to the
        caller's next ``tell``; useful for forwarding without reordering.
        """

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ActorRef) and self.path == other.path and self.address == other.address

    def __hash__(self) -> int:
        return hash((self.address, self.path))

    def __repr__(self) -> str:
        return f"ActorRef({(self.address or '') + self.path})"


class LocalActorRef(ActorRef):
    """A reference to an actor in this process."""

    __slots__ = ("_cell",)

    def __init__(self, system: "ActorSystem", path: str, cell: "Cell | None" = None) -> None:
        super().__init__(system, path)
        self._cell = cell

    @property
    def address(self) -> str | None:
        return self._system.address

    def _live_cell(self) -> "Cell | None":
        cell = self._cell
        if cell is None or cell.terminated:
            cell = self._system._cells.get(self.path)
            self._cell = cell
        return cell

    def tell(self, message: Any, sender: ActorRef | None = None) -> None:
        # The hot path of the whole runtime: kept flat on purpose (see benchmarks/).
        system = self._system
        sending = current_cell.get()
        if sender is None and sending is not None:
            sender = sending.ref
        if system._plain:
            env = (message, sender, None, None, None)
        else:
            if system.strict:
                message = system._codec.roundtrip(message)
            if system.events.enabled:
                env = (message, sender, None, *system._trace_send(message, self.path, sending, False))
            else:
                env = (message, sender, None, None, None)
            if system._interposition is not None and self._interpose(env, "tell"):
                return
        cell = self._cell
        if cell is None or cell.terminated:
            cell = self._live_cell()
            if cell is None:
                system._dead_letter(env, self.path, "no such actor")
                return
        mailbox = cell.mailbox
        if len(mailbox) >= cell.capacity:
            system._dead_letter(env, self.path, f"mailbox full ({cell.capacity} messages)")
            return
        mailbox.append(env)
        waiter = cell._waiter
        if waiter is not None:
            cell._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def ask_nowait(self, message: Any, timeout: float | None = None) -> asyncio.Future:
        system = self._system
        sending = current_cell.get()
        if system.strict:
            message = system._codec.roundtrip(message)
        future = asyncio.get_running_loop().create_future()
        sender = sending.ref if sending is not None else None
        if system.events.enabled:
            env = (message, sender, future, *system._trace_send(message, self.path, sending, True))
        else:
            env = (message, sender, future, None, None)
        if system._interposition is None or not self._interpose(env, "ask"):
            self._deliver(env)
        return arm_timeout(system, future, timeout, self.path, message)

    def _deliver(self, env: Envelope) -> None:
        cell = self._live_cell()
        if cell is None:
            self._system._dead_letter(env, self.path, "no such actor")
        else:
            cell.enqueue(env)

    def _interpose(self, env: Envelope, kind: str) -> bool:
        system = self._system
        sender = env[SENDER]
        send = Send(sender.path if sender is not None else None, self.path, system.address,
                    type(env[MESSAGE]).__qualname__, kind, env[MESSAGE])
        return system._interposition.intercept(send, lambda: self._deliver(env), lambda reason: refuse(system, env, self.path, reason))


def refuse(system: "ActorSystem", env: Envelope, path: str, reason: str) -> None:
    """Fail a send as a lost connection would: an ask (or the reply to one) with
    ConnectionLost, a tell to dead letters."""
    reply = env[REPLY]
    if reply is not None:
        if not reply.done():
            reply.set_exception(ConnectionLost(f"{type(env[MESSAGE]).__qualname__} to {path} not delivered: {reason}"))
    else:
        system._dead_letter(env, path, reason)


def arm_timeout(system: "ActorSystem", future: asyncio.Future, timeout: float | None, path: str, message: Any) -> asyncio.Future:
    """Fail an ask's future with :class:`AskTimeout` after ``timeout`` on the system clock."""
    if future.done():
        return future
    delay = system.default_ask_timeout if timeout is None else timeout

    def expire() -> None:
        if not future.done():
            future.set_exception(AskTimeout(
                f"no reply from {path} to {type(message).__qualname__} within {delay:g}s"
            ))

    handle = system.clock.call_later(delay, expire)
    future.add_done_callback(lambda _: handle.cancel())
    return future
