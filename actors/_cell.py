"""The cell: the machinery behind one actor (Akka's ActorCell).

A cell owns the actor's mailbox, its current instance, its children and its task. The
task runs every piece of the actor's own code: construction, hooks and handlers, one at a
time. Other actors steer a cell by posting *commands* to its system queue, which the task
takes before ordinary messages: stop, halt (first half of a restart), start (second
half), resume, and child-failed (the parent deciding about one of its children).

Invariants:
* Only the cell's task runs the actor's code; a command from another task waits on a
  future the cell's task resolves (``Cell.task`` is the only owner of the instance).
* ``mailbox`` keeps its order across restarts; the message that failed is not retried.
* A cell is in ``system._cells`` and in its parent's ``children`` exactly while it is not
  terminated; when it terminates, its mailbox goes to dead letters, every pending ask
  fails with :class:`ActorStopped` naming it, and every watcher gets ``Terminated``.
* Children stop before their parent, in reverse start order.

States and legal moves are the table ``TRANSITIONS`` below; tests check every move.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import enum
import inspect
import logging
from typing import TYPE_CHECKING, Any

from sparklet.actors._actor import ActorContext, ChildFailure, Ignore, Kill, Props, Terminated, Timers, UnhandledMessage, _constructing
from sparklet.actors._errors import ActorKilled, ActorNameTaken, ActorStartFailed, ActorStopped, InvalidActorDefinition
from sparklet.actors._fsm import StateMachine
from sparklet.actors._ref import MESSAGE, REPLY, Envelope, LocalActorRef, current_cell

if TYPE_CHECKING:
    from sparklet.actors._system import ActorSystem

log = logging.getLogger("sparklet.actors")

__all__ = ["Cell", "ActorState", "TRANSITIONS"]


class ActorState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    SUSPENDED = "suspended"    # its handler failed; waiting for its parent's decision
    RESTARTING = "restarting"  # old instance gone, new one not (yet) started
    STOPPING = "stopping"
    STOPPED = "stopped"


S = ActorState
TRANSITIONS = {
    S.STARTING: frozenset({S.RUNNING, S.STOPPING, S.STOPPED}),
    S.RUNNING: frozenset({S.SUSPENDED, S.RESTARTING, S.STOPPING, S.STOPPED}),
    S.SUSPENDED: frozenset({S.RUNNING, S.RESTARTING, S.STOPPING, S.STOPPED}),
    S.RESTARTING: frozenset({S.RUNNING, S.STOPPING, S.STOPPED}),
    S.STOPPING: frozenset({S.STOPPED}),
    S.STOPPED: frozenset(),
}

_BATCH = 512  # messages handled before yielding to the loop, so one busy actor cannot starve others


async def _call(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class _OrderedSet(dict):
    """A set that iterates in insertion order (a dict of keys): watchers are told and
    deferred replies failed in the same order in every run, so a simulation replays them
    (a plain set of objects iterates by their addresses)."""

    def add(self, item: Any) -> None:
        self[item] = None

    def discard(self, item: Any) -> None:
        self.pop(item, None)


def _fail_reply(env: Envelope, exc: BaseException) -> None:
    reply = env[REPLY]
    if reply is not None and not reply.done():
        reply.set_exception(exc)


class Cell:
    def __init__(self, system: "ActorSystem", props: Props, name: str, parent: "Cell | None", shutdown: float | None = 5.0) -> None:
        self.system = system
        self.props = props
        self.name = name
        self.parent = parent
        self.path = "/" if parent is None else parent.path.rstrip("/") + "/" + name
        self.ref = LocalActorRef(system, self.path, self)
        self.shutdown = shutdown  # seconds its post_stop may take when its parent stops it
        self.capacity = props.mailbox_capacity or system.mailbox_capacity
        self.mailbox: collections.deque[Envelope] = collections.deque()
        self.sysq: collections.deque[_Command] = collections.deque()
        self.fsm = StateMachine(f"actor {self.path}", S.STARTING, TRANSITIONS)
        self.instance: Any = None
        self.current: Envelope | None = None
        self.reply_deferred = False  # the current ask is answered later (defer_reply)
        self.children: dict[str, Cell] = {}  # insertion order is start order
        self.watchers = _OrderedSet()
        self.timers = Timers(self)
        self.context = ActorContext(self)
        self.restart_count = 0
        self.terminated = False
        self.task: asyncio.Task | None = None
        self._waiter: asyncio.Future | None = None
        self._stop_reason: str | None = None
        self._deferred: list[ChildFailure] = []
        self.deferred_replies = _OrderedSet()  # DeferredReply handles not yet completed
        self._auto_names = 0
        self.stopped: asyncio.Future = asyncio.get_running_loop().create_future()

    @property
    def state(self) -> ActorState:
        return self.fsm.state

    # -- delivery ---------------------------------------------------------------------
    def enqueue(self, env: Envelope) -> None:
        if len(self.mailbox) >= self.capacity:
            self.system._dead_letter(env, self.path, f"mailbox full ({self.capacity} messages)")
            return
        self.mailbox.append(env)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def post(self, command: "_Command") -> None:
        self.sysq.append(command)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    # -- children ---------------------------------------------------------------------
    async def spawn_child(self, props: Props, name: str | None, shutdown: float | None = 5.0, watch: bool = False) -> LocalActorRef:
        if self.terminated or self.state in (S.STOPPING, S.STOPPED):
            raise ActorStopped(f"{self.path} is stopping and cannot start children")
        if name is None:
            self._auto_names += 1
            name = f"${self._auto_names}"
        elif not isinstance(name, str) or not name or "/" in name or name.startswith("$"):
            raise ValueError(f"invalid actor name {name!r}: use a non-empty string without '/' that does not start with '$'")
        if name in self.children:
            raise ActorNameTaken(f"{self.path.rstrip('/')}/{name} is already alive")
        child = Cell(self.system, props, name, self, shutdown)
        self.children[name] = child
        self.system._cells[child.path] = child
        if watch:
            self.system._watch(child.ref, self.ref)
        started = asyncio.get_running_loop().create_future()
        child.task = asyncio.get_running_loop().create_task(child._run(started), name=f"actor {child.path}")
        await started
        return child.ref

    # -- the task ---------------------------------------------------------------------
    async def _run(self, started: asyncio.Future) -> None:
        current_cell.set(self)
        reason = "killed"
        try:
            try:
                await self._create_instance(None)
            except Ignore as exc:
                reason = "ignored"
                started.set_exception(exc)
                return
            except Exception as exc:
                reason = f"error: {type(exc).__name__}: {exc}"
                failed = ActorStartFailed(f"{self.path} ({self.props.label}) failed to start: {type(exc).__name__}: {exc}")
                failed.__cause__ = exc
                started.set_exception(failed)
                return
            self.fsm.move(S.RUNNING, "started")
            if self.system.events.enabled:
                self.system.events.record("spawn", self.path, actor_class=self.props.label)
            started.set_result(None)
            reason = await self._loop()
        except asyncio.CancelledError:
            reason = "killed"
        finally:
            if not started.done():
                started.set_exception(ActorStopped(f"{self.path} was stopped while starting ({reason})"))
            await self._finalize(reason)

    async def _loop(self) -> str:
        mailbox, sysq, fsm = self.mailbox, self.sysq, self.fsm
        system = self.system
        events = system.events
        loop = asyncio.get_running_loop()
        while True:
            if sysq:
                outcome = await sysq.popleft().run(self)
                if outcome is not None:
                    return outcome
                continue
            if fsm.state is S.RUNNING and mailbox:
                # Hot loop. Per batch, not per message: the instance and its handler table
                # (they change only through a restart, i.e. via sysq, outside this loop)
                # and whether tracing is on.
                instance = self.instance
                table = type(instance)._handler_table
                tracing = events.enabled
                popleft = mailbox.popleft
                budget = _BATCH
                while mailbox and not sysq:
                    env = popleft()
                    self.current = env
                    msg = env[0]
                    entry = table.get(type(msg))
                    if tracing:
                        events.record("receive", self.path, msg=type(msg).__qualname__, id=env[3], cause=env[4])
                    try:
                        if entry is None:
                            result = await _call(self._dispatch_fallback(instance, msg))
                        elif entry[1]:
                            result = await entry[0](instance, msg)
                        else:
                            result = entry[0](instance, msg)
                    except Exception as exc:
                        self.current = None
                        if self.reply_deferred:
                            self.reply_deferred = False
                        else:
                            _fail_reply(env, exc)
                        if tracing:
                            events.record("handled", self.path, msg=type(msg).__qualname__, id=env[3], outcome="error", error=repr(exc))
                        if isinstance(exc, UnhandledMessage):
                            system._unhandled(env, self.path, exc)
                            continue
                        self._fail(exc, msg)
                        break
                    self.current = None
                    if env[2] is not None:
                        if self.reply_deferred:
                            self.reply_deferred = False
                        else:
                            system._reply(env, result, self)
                    if tracing:
                        events.record("handled", self.path, msg=type(msg).__qualname__, id=env[3], outcome="ok")
                    if self._stop_reason is not None:
                        return await self._stop_sequence(self._stop_reason)
                    budget -= 1
                    if not budget:
                        await asyncio.sleep(0)  # one busy actor must not starve the others
                        break
                continue
            self._waiter = waiter = loop.create_future()
            await waiter

    def _dispatch_fallback(self, instance: Any, msg: Any) -> Any:
        if type(msg) is Kill:  # off the hot path: Kill is never in a handler table
            raise ActorKilled(f"{self.path} killed: {msg.reason}")
        table = type(instance)._handler_table
        for klass in type(msg).__mro__[1:]:
            entry = table.get(klass)
            if entry is not None:
                return entry[0](instance, msg)
        return instance.on_receive(msg)

    # -- failure and restart ------------------------------------------------------------
    def _fail(self, exc: BaseException, msg: Any) -> None:
        self.fsm.move(S.SUSPENDED, exc)
        events = self.system.events
        if events.enabled:
            events.record("failure", self.path, msg=type(msg).__qualname__, error=f"{type(exc).__name__}: {exc}")
        failure = ChildFailure(self.ref, exc, msg, self.restart_count)
        if self.parent is None:
            log.error("the root guardian failed: %r", exc)
        else:
            self.parent.post(_ChildFailed(failure))

    async def _create_instance(self, restart_reason: BaseException | None) -> None:
        token = _constructing.set(self)
        try:
            instance = self.props.create()
        finally:
            _constructing.reset(token)
        if getattr(instance, "_sparklet_cell", None) is not self:
            raise InvalidActorDefinition(
                f"{type(instance).__qualname__}.__init__ did not call super().__init__()"
                if hasattr(type(instance), "_handler_table") else
                f"Props for {self.path} did not create an Actor (got {type(instance).__qualname__})"
            )
        self.instance = instance
        try:
            if restart_reason is None:
                await _call(instance.pre_start())
            else:
                await _call(instance.post_restart(restart_reason))
        except BaseException:
            self.instance = None
            raise

    async def _halt(self, reason: BaseException | None) -> None:
        if self.fsm.state is S.RESTARTING:
            return  # halted already: a previous restart's start failed and is being retried
        self.fsm.move(S.RESTARTING, reason)
        self.timers.cancel_all()
        instance, self.instance = self.instance, None
        if instance is not None:
            try:
                await _call(instance.pre_restart(reason, None))
            except Exception:
                log.exception("pre_restart of %s raised; restarting anyway", self.path)
        await self._stop_children(instance)

    async def _start(self, reason: BaseException | None) -> None:
        await self._create_instance(reason if reason is not None else _ManualRestart())
        self.restart_count += 1
        self.fsm.move(S.RUNNING, "restarted")
        if self.system.events.enabled:
            self.system.events.record("restart", self.path, restarts=self.restart_count, reason=repr(reason))
        failures, self._deferred = self._deferred, []
        for failure in failures:
            self.post(_ChildFailed(failure))

    # -- called from other tasks ----------------------------------------------------------
    async def halt_instance(self, reason: BaseException | None) -> None:
        await self._command(_Halt(reason))

    async def start_instance(self, reason: BaseException | None) -> None:
        await self._command(_Start(reason))

    def resume(self) -> None:
        self.post(_Resume())

    async def _command(self, command: "_Command") -> None:
        if self.terminated:
            raise ActorStopped(f"{self.path} has stopped")
        command.done = asyncio.get_running_loop().create_future()
        self.post(command)
        await command.done

    def request_stop(self, reason: str) -> None:
        """Stop after the current message (used from the actor's own task)."""
        if self._stop_reason is None:
            self._stop_reason = reason

    async def stop(self, reason: str = "shutdown", timeout: float | None = 5.0) -> None:
        """Stop this actor and wait until it has terminated; kill it after ``timeout``."""
        if self.terminated:
            return
        if current_cell.get() is self:
            self.request_stop(reason)
            return
        if timeout is not None and timeout <= 0:
            self.kill()
        else:
            self.post(_Stop(reason))
            try:
                await asyncio.wait_for(asyncio.shield(self.stopped), timeout)
                return
            except asyncio.TimeoutError:
                log.warning("%s did not stop within %ss; killing it", self.path, timeout)
                self.kill()
        await asyncio.shield(self.stopped)

    def kill(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def _stop_sequence(self, reason: str) -> str:
        if self.fsm.state is not S.STOPPING:
            self.fsm.move(S.STOPPING, reason)
        self.timers.cancel_all()
        await self._stop_children(self.instance)
        if self.instance is not None:
            try:
                await _call(self.instance.post_stop())
            except Exception:
                log.exception("post_stop of %s raised", self.path)
        return reason

    async def _stop_children(self, instance: Any) -> None:
        order = list(reversed(self.children.values()))
        chosen = instance.children_stop_order() if instance is not None else None
        if chosen:
            first = [self.children[r.name] for r in chosen if r.name in self.children and self.children[r.name].ref == r]
            order = first + [c for c in order if c not in first]
        for child in order:
            await child.stop("shutdown", child.shutdown)

    async def _finalize(self, reason: str) -> None:
        system = self.system
        self.terminated = True
        if self.fsm.state is not S.STOPPED:
            self.fsm.move(S.STOPPED, reason)
        self.timers.cancel_all()
        if system._cells.get(self.path) is self:
            del system._cells[self.path]
        if self.parent is not None and self.parent.children.get(self.name) is self:
            del self.parent.children[self.name]
        # Killed with children still alive: they go first, as in an orderly stop.
        for child in reversed(list(self.children.values())):
            child.kill()
        for child in list(self.children.values()):
            await asyncio.shield(child.stopped)
        stopped = ActorStopped(f"{self.path} stopped ({reason})")
        if self.current is not None:
            if not self.reply_deferred:
                _fail_reply(self.current, stopped)
            self.current = None
        for deferred in list(self.deferred_replies):
            deferred.set_exception(stopped)
        while self.mailbox:
            env = self.mailbox.popleft()
            if type(env[MESSAGE]) is Terminated:
                continue  # news of a death, arriving at a watcher that is dying too: nobody misses it
            _fail_reply(env, ActorStopped(f"{self.path} stopped ({reason}) before handling {type(env[MESSAGE]).__qualname__}"))
            system._dead_letter(env, self.path, f"stopped ({reason})")
        while self.sysq:
            command = self.sysq.popleft()
            if command.done is not None and not command.done.done():
                command.done.set_exception(stopped)
        if system.events.enabled:
            system.events.record("stop", self.path, reason=reason)
        terminated = Terminated(self.ref, reason)
        for watcher in list(self.watchers):
            watcher.tell(terminated)
        self.watchers.clear()
        system._cell_terminated(self)
        if not self.stopped.done():
            self.stopped.set_result(reason)


class _ManualRestart(Exception):
    """The reason given to ``post_restart`` when a restart was asked for without one."""

    def __init__(self) -> None:
        super().__init__("restart requested")


class _Command(abc.ABC):
    done: asyncio.Future | None = None

    @abc.abstractmethod
    async def run(self, cell: Cell) -> str | None:
        """Carry the command out in the cell's own task; a returned reason ends the task."""


class _Stop(_Command):
    def __init__(self, reason: str) -> None:
        self.reason = reason

    async def run(self, cell: Cell) -> str | None:
        return await cell._stop_sequence(self.reason)


class _Halt(_Command):
    def __init__(self, reason: BaseException | None) -> None:
        self.reason = reason

    async def run(self, cell: Cell) -> str | None:
        assert self.done is not None
        try:
            await cell._halt(self.reason)
        except Exception as exc:
            self.done.set_exception(exc)
        else:
            self.done.set_result(None)
        return None


class _Start(_Command):
    def __init__(self, reason: BaseException | None) -> None:
        self.reason = reason

    async def run(self, cell: Cell) -> str | None:
        assert self.done is not None
        try:
            await cell._start(self.reason)
        except Exception as exc:
            if cell.system.events.enabled:
                cell.system.events.record("restart_failed", cell.path, error=f"{type(exc).__name__}: {exc}")
            self.done.set_exception(exc)
        else:
            self.done.set_result(None)
        return None


class _Resume(_Command):
    async def run(self, cell: Cell) -> str | None:
        if cell.fsm.state is S.SUSPENDED:
            cell.fsm.move(S.RUNNING, "resumed")
            if cell.system.events.enabled:
                cell.system.events.record("resume", cell.path)
        return None


class _ChildFailed(_Command):
    def __init__(self, failure: ChildFailure) -> None:
        self.failure = failure

    async def run(self, cell: Cell) -> str | None:
        child = cell.children.get(self.failure.child.name)
        if child is None or child.ref != self.failure.child or child.terminated:
            return None  # that child is gone already (its parent restarted or stopped it)
        if cell.fsm.state is not S.RUNNING or cell.instance is None:
            cell._deferred.append(self.failure)  # decided once this actor runs again
            return None
        try:
            await cell.instance.handle_child_failure(self.failure)
        except Exception as exc:
            if cell.system.events.enabled:
                cell.system.events.record("escalate", cell.path, child=child.path, error=f"{type(exc).__name__}: {exc}")
            cell._fail(exc, self.failure)
        return None
