"""OTP's restart intensity as a sliding window, sans I/O.

A supervisor may restart its children at most ``intensity`` times within any ``period``
seconds; the restart that would make it ``intensity + 1`` is refused and the supervisor
gives up (OTP's ``reached_max_restart_intensity``). Restarts are kept while
``now - t <= period``, as ``supervisor.erl``'s ``add_restart`` does.

>>> w = RestartIntensity(2, 5.0)
>>> [w.add(t) for t in (0.0, 1.0, 2.0)]
[True, True, False]
>>> w = RestartIntensity(2, 5.0)
>>> [w.add(t) for t in (0.0, 1.0, 6.5)]   # the restart at 0.0 has left the window
[True, True, True]
"""

from __future__ import annotations

import collections

__all__ = ["RestartIntensity"]


class RestartIntensity:
    __slots__ = ("intensity", "period", "restarts")

    def __init__(self, intensity: int, period: float) -> None:
        self.intensity = intensity
        self.period = period
        # Invariant: times ascend, all fit in one period (last - first <= period) and, while
        # the supervisor runs, len(restarts) <= intensity (one more means it gave up).
        self.restarts: collections.deque[float] = collections.deque()

    def add(self, now: float) -> bool:
        """Record a restart at ``now``; False if that exceeds the intensity."""
        self.restarts.append(now)
        self._expire(now)
        return len(self.restarts) <= self.intensity

    def count(self, now: float) -> int:
        """Restarts still inside the window at ``now``."""
        self._expire(now)
        return len(self.restarts)

    def clear(self) -> None:
        self.restarts.clear()

    def _expire(self, now: float) -> None:
        while self.restarts and now - self.restarts[0] > self.period:
            self.restarts.popleft()

    def problems(self, now: float) -> list[str]:
        """Broken invariants, for ``Supervisor.validate_state``."""
        out = []
        times = list(self.restarts)
        if times != sorted(times):
            out.append(f"restart times are not ascending: {times}")
        if len(times) > self.intensity:
            out.append(f"{len(times)} restarts kept, intensity is {self.intensity}")
        if times and times[-1] - times[0] > self.period:
            out.append(f"restarts at {times[0]} and {times[-1]} do not fit in one {self.period}s window")
        if times and times[-1] > now:
            out.append(f"restart at {times[-1]} is in the future (now={now})")
        return out
