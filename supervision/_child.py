"""One supervised child as the supervisor sees it: its spec, its state, its counters.

The child's state is the supervisor's view, not the kernel's: ``running`` (an actor was
started for the spec and has not been seen to exit), ``restarting`` (halted or gone, with
a pending restart that will start it), ``stopped`` (no actor: terminated, ignored, or an
exit that its restart type does not restart). Legal moves are the table below; anything
else raises :class:`~sparklet.actors.InvalidTransition` with the child's recent history.
"""

from __future__ import annotations

import enum
import random
from typing import TYPE_CHECKING

from sparklet.actors import ActorRef, StateMachine
from sparklet.supervision._backoff import BackoffState

if TYPE_CHECKING:
    from sparklet.supervision._spec import ChildSpec

__all__ = ["ChildState", "CHILD_TRANSITIONS", "Child", "RestartJob"]


class ChildState(enum.Enum):
    STARTING = "starting"      # only while its first start runs; never seen from outside
    RUNNING = "running"
    RESTARTING = "restarting"
    STOPPED = "stopped"


C = ChildState
CHILD_TRANSITIONS = {
    C.STARTING: frozenset({C.RUNNING, C.STOPPED}),          # started / ignored
    C.RUNNING: frozenset({C.RESTARTING, C.STOPPED}),        # restart decided / exited, terminated
    C.RESTARTING: frozenset({C.RUNNING, C.STOPPED}),        # started / ignored, terminated, gave up
    C.STOPPED: frozenset({C.RUNNING, C.RESTARTING}),        # restart_child / a group restart
}


class Child:
    """A supervisor's record of one child spec."""

    __slots__ = ("spec", "fsm", "ref", "restarts", "starts", "backoff", "job")

    def __init__(self, spec: "ChildSpec", rng: random.Random) -> None:
        self.spec = spec
        self.fsm = StateMachine(f"child {spec.id!r}", C.STARTING, CHILD_TRANSITIONS)
        # Invariant: ref is the reference of the last actor started for this spec; it is
        # None until the first start, and it is kept while stopped (refs are path values).
        self.ref: ActorRef | None = None
        self.starts = 0       # successful starts of an actor for this spec
        self.restarts = 0     # starts after the first: max(0, starts - 1)
        self.backoff = BackoffState(spec.backoff, rng) if spec.backoff is not None else None
        # Invariant: job is set exactly while the state is RESTARTING.
        self.job: "RestartJob | None" = None

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def state(self) -> ChildState:
        return self.fsm.state

    def move(self, new: ChildState, cause: object) -> None:
        self.fsm.move(new, cause)

    def on_started(self, ref: ActorRef, now: float) -> None:
        self.ref = ref
        self.starts += 1
        self.restarts = max(0, self.starts - 1)
        if self.backoff is not None:
            self.backoff.started(now)


class RestartJob:
    """A restart that is decided but not finished: the children still to start, in start
    order, and when. One job per triggering failure; a later job that takes over some of
    its children removes them from it."""

    __slots__ = ("key", "trigger", "pending", "due", "reason", "retrying")

    def __init__(self, key: str, trigger: str, pending: list[Child], due: float, reason: BaseException | None) -> None:
        self.key = key
        self.trigger = trigger                # id of the child whose exit caused it
        self.pending = pending                # Invariant: in start order, all RESTARTING, job is self
        self.due = due
        self.reason = reason
        self.retrying = False                 # a start failed: the next attempt counts as a restart

    def __repr__(self) -> str:
        return f"RestartJob({self.key}, trigger={self.trigger!r}, pending={[c.id for c in self.pending]}, due={self.due})"
