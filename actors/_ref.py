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

from sparklet.actors._errors import AskTimeout

if TYPE_CHECKING:
    from sparklet.actors._cell import Cell
    from sparklet.actors._system import ActorSystem

__all__ = ["ActorRef", "LocalActorRef", "Envelope", "current_cell"]

# The cell whose task is running: set once at the start of each cell's task, so any
# tell or ask made while that actor handles a message knows its sender and its cause.
current_cell: ContextVar["Cell | None"] = ContextVar("sparklet_current_cell", default=None)


class Envelope:
    """A message in flight, with who sent it, where the reply goes, and its trace ids."""

    __slots__ = ("message", "sender", "reply", "trace_id", "cause_id")

    def __init__(self, message: Any, sender: "ActorRef | None", reply: Any, trace_id: int | None, cause_id: int | None) -> None:
        self.message = message
        self.sender = sender
        # reply: None for a tell; for an ask, an object with done(), set_result(v) and
        # set_exception(e): a local asyncio.Future, or the remote layer's reply handle.
        self.reply = reply
        self.trace_id = trace_id
        self.cause_id = cause_id


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

    @abc.abstractmethod
    async def ask(self, message: Any, timeout: float | None = None) -> Any:
        """Send ``message`` and await the handler's return value.

        Raises :class:`AskTimeout` (naming this actor and the message type) when no reply
        comes within ``timeout`` seconds (default: the system's ``default_ask_timeout``),
        :class:`ActorStopped` if the actor stops first, and the handler's exception if it
        raised. Cancelling the awaiting task abandons the reply.
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
        system = self._system
        sending = current_cell.get()
        if sender is None and sending is not None:
            sender = sending.ref
        if system.strict:
            message = system._codec.roundtrip(message)
        env = Envelope(message, sender, None, None, None)
        if system.events.enabled:
            system._trace_send(env, self.path, sending)
        cell = self._live_cell()
        if cell is None:
            system._dead_letter(env, self.path, "no such actor")
        else:
            cell.enqueue(env)

    async def ask(self, message: Any, timeout: float | None = None) -> Any:
        system = self._system
        sending = current_cell.get()
        if system.strict:
            message = system._codec.roundtrip(message)
        future = asyncio.get_running_loop().create_future()
        env = Envelope(message, sending.ref if sending is not None else None, future, None, None)
        if system.events.enabled:
            system._trace_send(env, self.path, sending)
        cell = self._live_cell()
        if cell is None:
            system._dead_letter(env, self.path, "no such actor")
        else:
            cell.enqueue(env)
        return await await_reply(system, future, timeout, self.path, message)


async def await_reply(system: "ActorSystem", future: asyncio.Future, timeout: float | None, path: str, message: Any) -> Any:
    """Await an ask's future, failing it with :class:`AskTimeout` on the system clock."""
    if future.done():
        return future.result()
    delay = system.default_ask_timeout if timeout is None else timeout

    def expire() -> None:
        if not future.done():
            future.set_exception(AskTimeout(
                f"no reply from {path} to {type(message).__qualname__} within {delay:g}s"
            ))

    handle = system.clock.call_later(delay, expire)
    try:
        return await future
    finally:
        handle.cancel()
