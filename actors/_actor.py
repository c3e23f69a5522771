"""The Actor base class, its Props, its context and its timers.

An actor handles one message at a time. Handlers are chosen by the message's type::

    class Counter(Actor):
        def __init__(self, start=0):
            super().__init__()
            self.count = start

        @handler(Increment)
        def increment(self, msg):
            self.count += msg.by

        @handler(GetCount)
        async def get(self, msg):
            return self.count          # the reply to an ask

Handlers and lifecycle hooks may be plain or ``async`` functions. The lifecycle follows
Akka: ``pre_start`` before the first message; on a restart ``pre_restart(reason,
message)`` on the failed instance (default: ``post_stop``), then a new instance is made
and gets ``post_restart(reason)`` (default: ``pre_start``); ``post_stop`` after the last.
``pre_start`` may raise :class:`Ignore` to decline starting (OTP's ``ignore``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from sparklet.actors._codec import message
from sparklet.actors._errors import ActorStopped, InvalidActorDefinition
from sparklet.actors._ref import ActorRef

if TYPE_CHECKING:
    from sparklet.actors._cell import Cell
    from sparklet.actors._system import ActorSystem

__all__ = ["Actor", "handler", "Props", "ActorContext", "DeferredReply", "Timers", "ChildFailure", "Ignore", "Kill", "Terminated"]

# Set by the cell while it constructs an instance, so Actor.__init__ can bind to it
# without the user passing anything through their own constructor.
_constructing: ContextVar["Cell | None"] = ContextVar("sparklet_constructing", default=None)


@message(tag="sparklet.Kill")
class Kill:
    """Makes the receiving actor fail with :class:`~sparklet.actors.ActorKilled` when it
    takes this message from its mailbox, as Akka's ``Kill``: its supervisor then decides
    (restart, stop, escalate) exactly as for any other failure. Messages before it in the
    mailbox are handled first; the mailbox survives a restart. Works across processes.
    Fault injection uses it to crash a runtime actor at a chosen point."""

    reason: str = "killed"


@message(tag="sparklet.Terminated")
class Terminated:
    """Delivered to every watcher when the watched actor has stopped.

    ``reason`` is ``"normal"`` (it stopped itself or was stopped), ``"shutdown"`` (its
    parent or the system stopped it), ``"killed"`` (stopped without its ``post_stop``),
    ``"error: <Type>: <text>"`` (it failed and was not restarted), ``"not found"``
    (there was no such actor when the watch was set) or ``"connection lost: ..."`` (its
    process became unreachable).
    """

    actor: ActorRef
    reason: str

    @property
    def abnormal(self) -> bool:
        return self.reason not in ("normal", "shutdown")


class Ignore(Exception):
    """Raise from ``pre_start`` to decline starting (OTP's ``ignore``)."""


@dataclasses.dataclass(frozen=True)
class ChildFailure:
    """A child's handler (or restart) raised. Given to the parent's ``handle_child_failure``."""

    child: ActorRef
    error: BaseException
    message: Any
    restart_count: int


def handler(*message_types: type) -> Callable[[Callable], Callable]:
    """Mark a method as the handler of the given message types."""
    if not message_types or not all(isinstance(t, type) for t in message_types):
        raise InvalidActorDefinition(f"@handler takes one or more message types, got {message_types!r}")

    def mark(fn: Callable) -> Callable:
        fn.__sparklet_handles__ = message_types  # type: ignore[attr-defined]
        return fn

    return mark


class Actor:
    """Base class of every actor. Subclasses must call ``super().__init__()``."""

    # Built per subclass: message type -> (function, is coroutine function).
    _handler_table: ClassVar[dict[type, tuple[Callable, bool]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        names: dict[type, str] = {}
        for klass in reversed(cls.__mro__):
            for name, attr in vars(klass).items():
                for message_type in getattr(attr, "__sparklet_handles__", ()):
                    names[message_type] = name
        if Kill in names:
            raise InvalidActorDefinition(f"{cls.__qualname__} handles Kill; Kill always fails the actor (that is its point)")
        table = {}
        for message_type, name in names.items():
            fn = getattr(cls, name)  # an override without @handler still handles the type
            table[message_type] = (fn, inspect.iscoroutinefunction(fn))
        cls._handler_table = table

    def __init__(self) -> None:
        cell = _constructing.get()
        if cell is None:
            raise InvalidActorDefinition(
                f"{type(self).__qualname__} is an Actor: create it with system.spawn() or "
                "context.spawn(), not by calling the class"
            )
        self._sparklet_cell = cell

    # -- what an actor knows about itself ----------------------------------------------
    @property
    def context(self) -> "ActorContext":
        return self._sparklet_cell.context

    @property
    def ref(self) -> ActorRef:
        """This actor's own reference (Akka's ``self``)."""
        return self._sparklet_cell.ref

    @property
    def sender(self) -> ActorRef | None:
        """The sender of the message being handled, or ``None`` if it came from outside any actor."""
        env = self._sparklet_cell.current
        return env[1] if env is not None else None

    @property
    def timers(self) -> "Timers":
        return self._sparklet_cell.timers

    # -- lifecycle hooks (plain or async) ----------------------------------------------
    def pre_start(self) -> Any:
        """Called before the first message of this instance."""

    def post_stop(self) -> Any:
        """Called after the last message, when the actor stops (not when it is killed)."""

    def pre_restart(self, reason: BaseException, message: Any) -> Any:
        """Called on the failed instance before it is replaced. Default: ``post_stop()``.
        The actor's children are stopped after this hook in any case."""
        return self.post_stop()

    def post_restart(self, reason: BaseException) -> Any:
        """Called on the new instance after a restart. Default: ``pre_start()``."""
        return self.pre_start()

    def on_receive(self, message: Any) -> Any:
        """Called for a message no ``@handler`` takes. Default: the message is recorded as
        unhandled and an ``ask`` fails with :class:`UnhandledMessage`."""
        raise UnhandledMessage(
            f"{self._sparklet_cell.path} ({type(self).__qualname__}) has no handler for "
            f"{type(message).__module__}.{type(message).__qualname__}"
        )

    def children_stop_order(self) -> list[ActorRef] | None:
        """The order in which this actor's children stop when it stops or restarts.
        Default ``None``: reverse start order. (A supervisor answers with the reverse of
        its spec order, which a respawned child keeps.)"""
        return None

    async def handle_child_failure(self, failure: ChildFailure) -> None:
        """Decide what happens to a failed child. Default (Akka's): restart it in place.

        Raise to escalate: this actor then fails with that exception and its own parent
        decides. :mod:`sparklet.supervision` overrides this with OTP's strategies.
        """
        await self.context.restart_child(failure.child, failure.error)


class DeferredReply:
    """The reply to an ask, to be given later (see :meth:`ActorContext.defer_reply`)."""

    def __init__(self, cell: "Cell", env: Any) -> None:
        self._cell = cell
        self._env = env
        self._reply = env[2]
        cell.deferred_replies.add(self)  # failed by the cell if it stops first

    def done(self) -> bool:
        return self._reply.done()

    def set_result(self, value: Any) -> None:
        self._cell.deferred_replies.discard(self)
        self._cell.system._reply(self._env, value, self._cell)

    def set_exception(self, exc: BaseException) -> None:
        self._cell.deferred_replies.discard(self)
        if not self._reply.done():
            self._reply.set_exception(exc)

    def complete_from(self, future: "asyncio.Future") -> None:
        """Give the outcome of ``future`` (which must be done) as the reply."""
        if future.cancelled():
            self.set_exception(ActorStopped(f"{self._cell.path}: the reply was cancelled"))
        elif future.exception() is not None:
            self.set_exception(future.exception())
        else:
            self.set_result(future.result())


class UnhandledMessage(InvalidActorDefinition):
    """An actor received a message type it has no handler for."""


@dataclasses.dataclass(frozen=True)
class Props:
    """How to create (and re-create, on restart) an actor: a class and its arguments.

    ``factory`` may be given instead of a class: any callable returning an Actor instance.
    """

    actor_class: type | None = None
    args: tuple = ()
    kwargs: dict = dataclasses.field(default_factory=dict)
    factory: Callable[[], Actor] | None = None
    mailbox_capacity: int | None = None

    def __post_init__(self) -> None:
        if (self.actor_class is None) == (self.factory is None):
            raise InvalidActorDefinition("Props needs exactly one of actor_class or factory")
        if self.actor_class is not None and not (isinstance(self.actor_class, type) and issubclass(self.actor_class, Actor)):
            raise InvalidActorDefinition(f"Props.actor_class must be an Actor subclass, got {self.actor_class!r}")
        if self.factory is not None and not callable(self.factory):
            raise InvalidActorDefinition(f"Props.factory must be callable, got {self.factory!r}")
        if self.mailbox_capacity is not None and self.mailbox_capacity <= 0:
            raise InvalidActorDefinition(f"Props.mailbox_capacity must be positive, got {self.mailbox_capacity!r}")

    @classmethod
    def of(cls, actor_class: type, *args: Any, **kwargs: Any) -> "Props":
        return cls(actor_class=actor_class, args=args, kwargs=kwargs)

    def create(self) -> Actor:
        if self.factory is not None:
            return self.factory()
        assert self.actor_class is not None
        return self.actor_class(*self.args, **self.kwargs)

    @property
    def label(self) -> str:
        target = self.actor_class or self.factory
        return getattr(target, "__qualname__", repr(target))


def as_props(target: "Props | type") -> Props:
    if isinstance(target, Props):
        return target
    if isinstance(target, type) and issubclass(target, Actor):
        return Props(actor_class=target)
    raise InvalidActorDefinition(f"expected Props or an Actor subclass, got {target!r}")


class Timers:
    """Akka's TimerScheduler: keyed single and periodic self-messages, all cancelled when
    the actor stops or restarts. Starting a key that is active replaces it."""

    def __init__(self, cell: "Cell") -> None:
        self._cell = cell
        self._handles: dict[Any, Any] = {}

    def start_single(self, key: Any, msg: Any, delay: float) -> None:
        self.cancel(key)
        clock = self._cell.system.clock

        def fire() -> None:
            self._handles.pop(key, None)
            self._cell.ref.tell(msg)

        self._handles[key] = clock.call_later(delay, fire)

    def start_periodic(self, key: Any, msg: Any, interval: float) -> None:
        if interval <= 0:
            raise ValueError(f"timer interval must be positive, got {interval!r}")
        self.cancel(key)
        clock = self._cell.system.clock

        def fire() -> None:
            self._handles[key] = clock.call_later(interval, fire)
            self._cell.ref.tell(msg)

        self._handles[key] = clock.call_later(interval, fire)

    def is_active(self, key: Any) -> bool:
        return key in self._handles

    def cancel(self, key: Any) -> None:
        handle = self._handles.pop(key, None)
        if handle is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()


class ActorContext:
    """What an actor may do to the world: spawn and stop children, watch, restart."""

    def __init__(self, cell: "Cell") -> None:
        self._cell = cell

    @property
    def system(self) -> "ActorSystem":
        return self._cell.system

    @property
    def self_ref(self) -> ActorRef:
        return self._cell.ref

    @property
    def parent(self) -> ActorRef | None:
        return self._cell.parent.ref if self._cell.parent is not None else None

    @property
    def path(self) -> str:
        return self._cell.path

    @property
    def children(self) -> list[ActorRef]:
        """Live children, in start order."""
        return [c.ref for c in self._cell.children.values()]

    def child(self, name: str) -> ActorRef | None:
        cell = self._cell.children.get(name)
        return cell.ref if cell is not None else None

    @property
    def restart_count(self) -> int:
        return self._cell.restart_count

    async def spawn(self, props: Props | type, name: str | None = None, *, shutdown: float | None = 5.0, watch: bool = False) -> ActorRef:
        """Start a child and wait for its ``pre_start``.

        ``shutdown`` is how long the child's ``post_stop`` may take when this actor stops
        it or stops itself (``0``: killed at once, OTP's ``brutal_kill``; ``None``: no
        limit). ``watch=True`` watches the child from before it starts, so even a child
        that stops at once is reported with its real reason. Raises
        :class:`ActorStartFailed` if ``pre_start`` raised (its ``__cause__`` is the original
        error) and :class:`Ignore` if the child declined to start.
        """
        return await self._cell.spawn_child(as_props(props), name, shutdown, watch)

    def stop_self(self, reason: str = "normal") -> None:
        """Stop this actor after the current message."""
        self._cell.request_stop(reason)

    async def stop(self, child: ActorRef, *, timeout: float | None = 5.0, reason: str = "shutdown") -> None:
        """Stop a child: its ``post_stop`` may take ``timeout`` seconds, then it is killed.
        ``timeout=0`` kills at once (OTP's ``brutal_kill``); ``None`` waits forever."""
        await self._own_child(child).stop(reason, timeout)

    async def restart_child(self, child: ActorRef, reason: BaseException | None = None) -> None:
        """Replace a child's instance in place: same reference, same mailbox; the message
        that failed is not handled again. Raises what the new instance's start raised."""
        cell = self._own_child(child)
        await cell.halt_instance(reason)
        await cell.start_instance(reason)

    async def halt_instance(self, child: ActorRef, reason: BaseException | None = None) -> None:
        """First half of a restart: the instance gets ``pre_restart`` and is dropped, its
        children stop, its mailbox keeps filling. :meth:`start_instance` completes it."""
        await self._own_child(child).halt_instance(reason)

    async def start_instance(self, child: ActorRef, reason: BaseException | None = None) -> None:
        """Second half of a restart: a new instance, ``post_restart``, then the mailbox."""
        await self._own_child(child).start_instance(reason)

    def resume_child(self, child: ActorRef) -> None:
        """Let a failed child go on with the next message, keeping its state (Akka's resume)."""
        self._own_child(child).resume()

    def child_state(self, child: ActorRef) -> str:
        """The child's lifecycle state name (``running``, ``suspended``, ...), or ``stopped``."""
        cell = self._cell.children.get(child.name)
        return cell.state.value if cell is not None and cell.ref == child else "stopped"

    def defer_reply(self) -> "DeferredReply | None":
        """Answer the current ask later, without holding up the mailbox.

        Returns a :class:`DeferredReply` to complete from any later handler or callback
        (the handler's own return value is then ignored), or ``None`` if the current
        message was a ``tell``. An actor that stops first fails the asker.
        """
        cell = self._cell
        env = cell.current
        if env is None or env[2] is None or cell.reply_deferred:
            return None
        cell.reply_deferred = True
        return DeferredReply(cell, env)

    def watch(self, target: ActorRef) -> None:
        """Deliver ``Terminated(target, reason)`` to this actor when ``target`` stops
        (at once if it is already gone)."""
        self._cell.system._watch(target, self._cell.ref)

    def unwatch(self, target: ActorRef) -> None:
        self._cell.system._unwatch(target, self._cell.ref)

    def _own_child(self, child: ActorRef) -> "Cell":
        cell = self._cell.children.get(child.name)
        if cell is None or cell.ref != child:
            from sparklet.actors._errors import ActorNotFound

            raise ActorNotFound(f"{child.path} is not a live child of {self._cell.path}")
        return cell
