"""Estimated memory of what a writer or reader holds, measured by sampling.

Nothing here runs per record. The writer and reader consume records in *stretches*
between checks; at a check they measure a few sampled records or map entries with
:func:`sizeof` (``sys.getsizeof`` of the object and, down to a small depth, of what it
holds, containers measured on a sample of their elements and scaled), multiply by how
many they hold, and decide with :class:`MemoryMeter` whether to spill and how long the
next stretch may be.

The next stretch is half of the room left, in records, at a conservative rate (bytes a
record can add: the sampled size of a held record or entry plus the container slot).
So between checks the held estimate grows by at most half the room left: it approaches
the budget geometrically and, while records look like the sampled ones, never passes it
by more than one record. That is the bound the tests check (``peak_memory <=
memory_budget + one record``); a record much larger than those sampled before it can
overshoot, as with any sampling estimator (Spark's ``SizeEstimator`` too).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["sizeof", "sample_size", "MemoryMeter", "POINTER"]

POINTER = 8
_getsizeof = sys.getsizeof
_SEQUENCES = (tuple, list)
_SETS = (set, frozenset)
_SAMPLE = 8


def sizeof(obj: Any, depth: int = 3) -> int:
    """Estimated bytes of ``obj`` and what it holds. Shared singletons (``None``,
    booleans, small ints) count nothing; other objects count every time they are met."""
    t = type(obj)
    if t is str or t is bytes or t is float:
        return _getsizeof(obj)
    if t is int:
        return 0 if -5 <= obj <= 256 else _getsizeof(obj)
    if obj is None or t is bool:
        return 0
    if t in _SEQUENCES:
        size = _getsizeof(obj)
        n = len(obj)
        if n == 0:
            return size
        if depth <= 0:
            return size + 32 * n
        if n <= _SAMPLE:
            return size + sum([sizeof(x, depth - 1) for x in obj])
        step = n / _SAMPLE
        return size + sum([sizeof(obj[int(i * step)], depth - 1) for i in range(_SAMPLE)]) * n // _SAMPLE
    if t is dict:
        size = _getsizeof(obj)
        n = len(obj)
        if n == 0 or depth <= 0:
            return size + 64 * n
        taken = 0
        inner = 0
        for key, value in obj.items():
            inner += sizeof(key, depth - 1) + sizeof(value, depth - 1)
            taken += 1
            if taken == _SAMPLE:
                break
        return size + inner * n // taken
    if t in _SETS:
        size = _getsizeof(obj)
        n = len(obj)
        if n == 0 or depth <= 0:
            return size + 32 * n
        taken = 0
        inner = 0
        for item in obj:
            inner += sizeof(item, depth - 1)
            taken += 1
            if taken == _SAMPLE:
                break
        return size + inner * n // taken
    try:
        size = _getsizeof(obj)
    except TypeError:  # an extension object without __sizeof__
        size = 64
    if depth > 0:
        attrs = getattr(obj, "__dict__", None)
        if type(attrs) is dict:
            size += sizeof(attrs, depth - 1)
        else:
            for slot in getattr(t, "__slots__", ()):
                size += sizeof(getattr(obj, slot, None), depth - 1)
    return size


def sample_size(items: list, count: int = _SAMPLE) -> tuple[int, int]:
    """Total :func:`sizeof` of up to ``count`` evenly spaced items, and how many."""
    n = len(items)
    if n == 0:
        return 0, 0
    if n <= count:
        return sum([sizeof(x) for x in items]), n
    step = n / count
    return sum([sizeof(items[int(i * step)]) for i in range(count)]), count


class MemoryMeter:
    """The spill decision: how far the held estimate is from ``budget``, the peak seen,
    and the length of the next stretch."""

    FIRST_STRETCH = 32  # records before the first check, to learn their size

    def __init__(self, budget: int) -> None:
        self.budget = budget
        # Invariant: peak >= every estimate passed to observe().
        self.peak = 0
        # Invariant: per_record > 0; bytes a held record is estimated to take, updated at each check.
        self.per_record = 64

    def learn(self, sampled_bytes: int, sampled: int, overhead: int) -> None:
        """Record a sample: ``sampled_bytes`` over ``sampled`` items, plus ``overhead``
        bytes each for the slot that holds them. Smoothed with the previous rate, but
        never below the new sample's, so growth is not underestimated."""
        if sampled:
            rate = sampled_bytes // sampled + overhead
            self.per_record = max(rate, (rate + self.per_record) // 2, 1)

    def observe(self, estimate: int) -> bool:
        """Note the held estimate; True when it is time to spill."""
        if estimate > self.peak:
            self.peak = estimate
        return estimate >= self.budget

    def stretch(self, estimate: int) -> int:
        """Records to take before the next check: half the room left, at least one."""
        room = self.budget - estimate
        if room <= 0:
            return 1
        return max(1, room // (2 * self.per_record))

    def note(self, estimate: int) -> None:
        """A held amount outside the stretch logic (a merge's open batches)."""
        if estimate > self.peak:
            self.peak = estimate
