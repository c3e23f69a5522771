"""Restart back-off (Akka's BackoffSupervisor), sans I/O.

:class:`Backoff` is the policy a :class:`~sparklet.supervision.ChildSpec` may carry: the
delay before the n-th consecutive restart (n = 0, 1, 2, ...) is::

    min(max_delay, min_delay * multiplier ** n) * (1 + jitter * u),  u uniform in [-1, 1]

drawn from a ``random.Random`` the caller passes, so a seeded generator gives the same
delays every run. :class:`BackoffState` counts the consecutive restarts of one child and
forgets them once the child has run for ``reset_after`` seconds without failing. Neither
class reads a clock: the supervisor passes ``now`` from ``system.clock``, so tests drive
both synchronously, and through a :class:`~sparklet.actors.ManualClock` in the actor tests.

>>> import random
>>> b = Backoff(1.0, 8.0, jitter=0.0)
>>> [b.delay(n) for n in range(5)]
[1.0, 2.0, 4.0, 8.0, 8.0]
>>> state = BackoffState(b, random.Random(0))
>>> state.started(now=0.0); state.next_delay(now=0.5), state.next_delay(now=1.0)
(1.0, 2.0)
>>> state.started(now=10.0); state.next_delay(now=18.0)   # ran 8 s >= reset_after: reset
1.0
"""

from __future__ import annotations

import dataclasses
import math
import random as _random

__all__ = ["Backoff", "BackoffState"]


def _positive(name: str, value: object, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or math.isinf(value):
        raise ValueError(f"Backoff.{name} must be a finite number of seconds, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"Backoff.{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


@dataclasses.dataclass(frozen=True)
class Backoff:
    """Exponential restart back-off with jitter. ``reset_after`` (default: ``max_delay``)
    is how long a child must run without failing before the count starts over."""

    min_delay: float
    max_delay: float
    multiplier: float = 2.0
    jitter: float = 0.2
    reset_after: float | None = None

    def __post_init__(self) -> None:
        _positive("min_delay", self.min_delay, allow_zero=True)
        _positive("max_delay", self.max_delay)
        if self.max_delay < self.min_delay:
            raise ValueError(f"Backoff.max_delay ({self.max_delay!r}) must be >= min_delay ({self.min_delay!r})")
        if _positive("multiplier", self.multiplier) < 1.0:
            raise ValueError(f"Backoff.multiplier must be >= 1, got {self.multiplier!r}")
        if not 0.0 <= _positive("jitter", self.jitter, allow_zero=True) < 1.0:
            raise ValueError(f"Backoff.jitter must be in [0, 1), got {self.jitter!r}")
        if self.reset_after is not None:
            _positive("reset_after", self.reset_after)

    @property
    def stable_after(self) -> float:
        """Seconds of running without failure after which the restart count resets."""
        return self.max_delay if self.reset_after is None else self.reset_after

    def delay(self, attempt: int, rng: _random.Random | None = None) -> float:
        """The delay before restart number ``attempt`` (0-based) of a failure streak."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt!r}")
        # multiplier ** attempt overflows for huge attempts; the cap is reached long before.
        exponent = min(attempt, 1024)
        try:
            base = min(self.max_delay, self.min_delay * self.multiplier ** exponent)
        except OverflowError:
            base = self.max_delay
        if self.jitter and base:
            u = (rng or _random).uniform(-1.0, 1.0)
            base *= 1.0 + self.jitter * u
        return base


class BackoffState:
    """The consecutive-restart count of one child under a :class:`Backoff`.

    Call :meth:`started` when the child has started and :meth:`next_delay` when it must be
    restarted; the count resets when the child ran ``stable_after`` seconds in between.
    """

    __slots__ = ("policy", "rng", "attempt", "started_at")

    def __init__(self, policy: Backoff, rng: _random.Random | None = None) -> None:
        self.policy = policy
        self.rng = rng or _random.Random()
        # Invariant: attempt >= 0; it is the number of back-off delays handed out since the
        # child last ran stably.
        self.attempt = 0
        self.started_at: float | None = None  # None while the child is not running

    def started(self, now: float) -> None:
        self.started_at = now

    def next_delay(self, now: float) -> float:
        if self.started_at is not None and now - self.started_at >= self.policy.stable_after:
            self.attempt = 0
        self.started_at = None
        delay = self.policy.delay(self.attempt, self.rng)
        self.attempt += 1
        return delay

    def reset(self) -> None:
        self.attempt = 0
        self.started_at = None
