"""Interposition: a seam in message delivery, for fault injection and tests.

``system.interpose(interposer)`` puts an object between every sender in a system and the
delivery of what it sends: tells and asks to local actors, tells and asks to actors in
other processes (decided in the *sending* system, before the frame is queued), and the
replies to asks. For each message the interposer's ``decide(send)`` returns one
decision:

=====================  ================================================================
``DELIVER``            deliver now, as if nobody were there
``DROP``               never deliver it (an ask then times out, as a lost message would)
``Delay(seconds)``     deliver after ``seconds`` on the system's clock
``Duplicate(copies)``  deliver ``copies`` times (a reply only completes its ask once)
``Hold(gate)``         keep it until ``system.release(gate)``; held messages are
                       released in send order, or in a given permutation (reorder)
``Refuse(reason)``     fail it as a lost connection would: an ask (or the ask a reply
                       answers) fails at once with :class:`ConnectionLost`, a tell
                       becomes a dead letter
=====================  ================================================================

``send`` is a :class:`Send`: sender path (``None`` from outside any actor), recipient
path, the recipient system's address (``None``: this system, not listening), the
message's type name, whether it is a ``tell``, an ``ask`` or a ``reply`` (a reply's type
name is ``reply:<AskedType>``), and the message itself.

Not interposed: death-watch traffic between processes (``WATCH``, remote ``Terminated``),
replies that carry an error, and everything while no interposer is installed: then the
cost on the send path is the one flag test that tracing and strict mode already share.

Invariants: a held or delayed message is delivered at most once per copy, through the
same delivery path it would have taken (its place in the mailbox is decided when it is
released); ``uninstall`` (``system.interpose(None)``) cancels every pending delay and
releases every gate, so nothing stays held past an interposer's life (a system that shuts
down refuses them instead: a held ask fails rather than hang; the interposer's optional
``close()`` is called either way).
Review checklist: tests/test_interpose.py (one test per decision, local and remote).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

if TYPE_CHECKING:
    from sparklet.actors._system import ActorSystem

log = logging.getLogger("sparklet.actors")

__all__ = ["Send", "Interposer", "Deliver", "Drop", "Delay", "Duplicate", "Hold", "Refuse", "DELIVER", "DROP", "Interposition"]


@dataclasses.dataclass(frozen=True, slots=True)
class Send:
    """One message about to be delivered, as an interposer sees it."""

    sender: str | None  # the sending actor's path; None from outside any actor
    recipient: str  # the recipient's path ("" for the reply to an ask made outside any actor)
    address: str | None  # the recipient system's address; None: this system, which does not listen
    message_type: str  # type(message).__qualname__, or "reply:<AskedType>" for a reply
    kind: str  # "tell", "ask" or "reply"
    message: Any


@dataclasses.dataclass(frozen=True, slots=True)
class Deliver:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Drop:
    pass


@dataclasses.dataclass(frozen=True, slots=True)
class Delay:
    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"Delay(seconds={self.seconds!r}): must not be negative")


@dataclasses.dataclass(frozen=True, slots=True)
class Duplicate:
    copies: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.copies, int) or self.copies < 1:
            raise ValueError(f"Duplicate(copies={self.copies!r}): must be an int >= 1")


@dataclasses.dataclass(frozen=True, slots=True)
class Hold:
    gate: str


@dataclasses.dataclass(frozen=True, slots=True)
class Refuse:
    reason: str


DELIVER = Deliver()
DROP = Drop()
Decision = Deliver | Drop | Delay | Duplicate | Hold | Refuse


class Interposer(Protocol):
    def decide(self, send: Send) -> Decision:
        """What happens to ``send``. Runs on the sending path: keep it quick, never block."""


class Interposition:
    """The system's side of an installed interposer: applies its decisions."""

    def __init__(self, system: "ActorSystem", interposer: Interposer) -> None:
        if not callable(getattr(interposer, "decide", None)):
            raise TypeError(f"an interposer needs a decide(send) method, got {interposer!r}")
        self._system = system
        self.interposer = interposer
        # gate -> (deliver, refuse) of each held message, in send order
        self._gates: dict[str, list[tuple[Callable[[], None], Callable[[], None]]]] = {}
        # pending Delay handle -> (deliver, refuse); Invariant: empty after uninstall
        self._timers: dict[Any, tuple[Callable[[], None], Callable[[], None]]] = {}
        self.counts = {"deliver": 0, "drop": 0, "delay": 0, "duplicate": 0, "hold": 0, "refuse": 0, "released": 0}

    def intercept(self, send: Send, deliver: Callable[[], None], refuse: Callable[[str], None]) -> bool:
        """Apply the interposer's decision. False: deliver as usual (the caller does it);
        True: taken care of here (``deliver`` is called later, repeatedly, or never)."""
        decision = self.interposer.decide(send)
        kind = type(decision)
        if kind is Deliver:
            self.counts["deliver"] += 1
            return False
        events = self._system.events
        if events.enabled:
            events.record("interposed", send.sender, to=(send.address or "") + send.recipient, msg=send.message_type,
                          decision=repr(decision), send_kind=send.kind)
        if kind is Drop:
            self.counts["drop"] += 1
            self._system._dead_letter_dropped(send)
        elif kind is Delay:
            self.counts["delay"] += 1
            handle: Any = None

            def later() -> None:
                self._timers.pop(handle, None)
                self._safely(deliver, send)

            handle = self._system.clock.call_later(decision.seconds, later)
            self._timers[handle] = (lambda: self._safely(deliver, send), self._shutting_down(refuse))
        elif kind is Duplicate:
            self.counts["duplicate"] += 1
            for _ in range(decision.copies):
                self._safely(deliver, send)
        elif kind is Hold:
            self.counts["hold"] += 1
            self._gates.setdefault(decision.gate, []).append((lambda: self._safely(deliver, send), self._shutting_down(refuse)))
        elif kind is Refuse:
            self.counts["refuse"] += 1
            refuse(decision.reason)
        else:
            raise TypeError(f"interposer {self.interposer!r} returned {decision!r} for {send.message_type}; "
                            "expected DELIVER, DROP, Delay, Duplicate, Hold or Refuse")
        return True

    def _safely(self, deliver: Callable[[], None], send: Send) -> None:
        try:
            deliver()
        except Exception as exc:  # e.g. the transport closed meanwhile: like any late send, it is lost
            log.warning("late delivery of %s to %s failed: %r", send.message_type, send.recipient, exc)

    @staticmethod
    def _shutting_down(refuse: Callable[[str], None]) -> Callable[[], None]:
        return lambda: refuse("the actor system shut down while the interposer held it")

    def held(self, gate: str | None = None) -> int:
        """How many messages wait behind ``gate`` (all gates when None)."""
        if gate is not None:
            return len(self._gates.get(gate, ()))
        return sum(len(held) for held in self._gates.values())

    def release(self, gate: str, order: Sequence[int] | None = None) -> int:
        """Deliver what ``gate`` holds: in send order, or in ``order`` (a permutation of
        ``range(held(gate))``). Returns how many were released."""
        held = self._gates.pop(gate, [])
        if order is not None:
            if sorted(order) != list(range(len(held))):
                self._gates[gate] = held
                raise ValueError(f"release({gate!r}): order must be a permutation of range({len(held)}), got {list(order)}")
            held = [held[i] for i in order]
        self.counts["released"] += len(held)
        for deliver, _ in held:
            deliver()
        return len(held)

    def gates(self) -> list[str]:
        return [gate for gate, held in self._gates.items() if held]

    def uninstall(self, deliver: bool = True) -> None:
        """Close the interposer (its optional ``close()``), cancel pending delays and empty
        every gate: what they kept is delivered now, or, when the system is shutting down
        (``deliver=False``), refused (held asks fail at once rather than hang)."""
        close = getattr(self.interposer, "close", None)
        if callable(close):
            close()
        timers, self._timers = self._timers, {}
        for handle, (late, refused) in timers.items():
            handle.cancel()
            (late if deliver else refused)()
        for gate in list(self._gates):
            if deliver:
                self.release(gate)
            else:
                for _, refused in self._gates.pop(gate):
                    refused()

    def statistics(self) -> dict[str, Any]:
        return {**self.counts, "held": self.held(), "delayed": len(self._timers)}
