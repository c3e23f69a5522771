"""Clocks: the real one, and a manual one that tests advance by hand.

Everything in the actor kernel that waits on time (actor timers, ask timeouts, restart
backoff in supervision) goes through the system's clock, so a test can make a ten-second
backoff happen instantly and deterministically with :meth:`ManualClock.advance`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from typing import Callable, Protocol

__all__ = ["Clock", "RealClock", "ManualClock", "TimerHandle"]


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def now(self) -> float: ...
    def call_later(self, delay: float, callback: Callable[[], None]) -> TimerHandle: ...
    async def sleep(self, delay: float) -> None: ...


class RealClock:
    """The running loop's monotonic clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    def call_later(self, delay: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(max(0.0, delay), callback)

    async def sleep(self, delay: float) -> None:
        await asyncio.sleep(max(0.0, delay))


class _ManualHandle:
    __slots__ = ("when", "seq", "callback", "cancelled")

    def __init__(self, when: float, seq: int, callback: Callable[[], None]) -> None:
        self.when, self.seq, self.callback, self.cancelled = when, seq, callback, False

    def cancel(self) -> None:
        self.cancelled = True

    def __lt__(self, other: "_ManualHandle") -> bool:
        return (self.when, self.seq) < (other.when, other.seq)


class ManualClock:
    """A clock that moves only when told to. Callbacks due at the same time run in the
    order they were scheduled."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._heap: list[_ManualHandle] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    def call_later(self, delay: float, callback: Callable[[], None]) -> _ManualHandle:
        handle = _ManualHandle(self._now + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._heap, handle)
        return handle

    async def sleep(self, delay: float) -> None:
        future = asyncio.get_running_loop().create_future()
        handle = self.call_later(delay, lambda: future.done() or future.set_result(None))
        try:
            await future
        finally:
            handle.cancel()

    def pending(self) -> int:
        return sum(1 for h in self._heap if not h.cancelled)

    def next_deadline(self) -> float | None:
        live = [h.when for h in self._heap if not h.cancelled]
        return min(live) if live else None

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due callbacks in order and letting the loop run
        between them so that what they trigger happens before the next one fires."""
        if seconds < 0:
            raise ValueError(f"cannot move a clock backwards (seconds={seconds!r})")
        target = self._now + seconds
        while self._heap and self._heap[0].when <= target:
            handle = heapq.heappop(self._heap)
            if handle.cancelled:
                continue
            self._now = max(self._now, handle.when)
            handle.callback()
            for _ in range(5):
                await asyncio.sleep(0)
        self._now = target
        for _ in range(5):
            await asyncio.sleep(0)
