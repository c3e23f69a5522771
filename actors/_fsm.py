"""Legal state transitions in one table, with a short history for error messages.

Used by every stateful object in sparklet (actor cells here; tasks, stages and executors
in the engine). A move the table does not allow raises :class:`InvalidTransition`
carrying the object's recent history, which is the first thing one wants when it happens.
The same tables feed the state diagrams the viewers draw.
"""

from __future__ import annotations

import collections
import enum
from typing import Any, Generic, Mapping, TypeVar

from sparklet.actors import _simenv
from sparklet.actors._errors import SparkletInternalError

__all__ = ["InvalidTransition", "StateMachine"]

S = TypeVar("S", bound=enum.Enum)


class InvalidTransition(SparkletInternalError):
    """A state change the transition table does not allow: a bug in sparklet."""

    def __init__(self, what: str, old: enum.Enum, new: enum.Enum, history: list[tuple]) -> None:
        story = "; ".join(f"{o.value}->{n.value} ({cause})" for o, n, cause, _ in history) or "no history"
        super().__init__(f"{what}: illegal transition {old.value} -> {new.value}. Recent history: {story}. Please report it.")
        self.old, self.new, self.history = old, new, history


class StateMachine(Generic[S]):
    """The current state of one object plus its bounded transition history."""

    __slots__ = ("what", "state", "_table", "history")

    def __init__(self, what: str, initial: S, table: Mapping[S, frozenset[S]], history: int = 16) -> None:
        self.what = what
        self.state = initial
        self._table = table
        # Invariant: every (old, new) pair in history is allowed by the table.
        self.history: collections.deque[tuple[S, S, Any, float]] = collections.deque(maxlen=history)

    def move(self, new: S, cause: Any = None) -> S:
        old = self.state
        if new not in self._table.get(old, ()):
            raise InvalidTransition(self.what, old, new, list(self.history))
        self.history.append((old, new, cause, _simenv.monotonic()))  # virtual in a simulation
        self.state = new
        return old
