"""Shared variables, with PySpark's API: broadcasts and accumulators.

**Broadcast.** ``sc.broadcast(v)`` pickles ``v`` once on the driver. A task that uses
``b.value`` gets it from its executor, which fetches it from the driver the first time
and keeps it for every later task: shipped once per executor, not per task.
``unpersist()`` drops the executors' copies (they fetch again if needed); ``destroy()``
drops it everywhere, and any later use is an error.

**Accumulator.** Tasks only add; the driver reads. In a task, additions go to the
running task attempt (its :class:`TaskContext`), not to the accumulator object: the task
binary is deserialized once per stage and shared by the executor's concurrent tasks. The
updates travel back with the task's result, and the driver merges them once per
successfully computed partition: a retried, killed or duplicated attempt is not counted
again (the DAG scheduler decides which completion counts).
"""

from __future__ import annotations

import threading
import weakref
from typing import Any, Callable, Generic, TypeVar

from sparklet.rdd import TaskContext

__all__ = [
    "Accumulator", "AccumulatorParam", "AddingAccumulatorParam", "Broadcast",
    "INT_ACCUMULATOR_PARAM", "FLOAT_ACCUMULATOR_PARAM", "COMPLEX_ACCUMULATOR_PARAM",
]

T = TypeVar("T")


class AccumulatorParam(Generic[T]):
    """Helper object that defines how to accumulate values of a given type."""

    def zero(self, value: T) -> T:
        """Provide a "zero value" for the type, compatible in dimensions with the provided ``value``."""
        raise NotImplementedError

    def addInPlace(self, value1: T, value2: T) -> T:
        """Add two values of the accumulator's data type, returning a new value;
        for efficiency, can also update ``value1`` in place and return it."""
        raise NotImplementedError


class AddingAccumulatorParam(AccumulatorParam[T]):
    """An AccumulatorParam that uses the + operators to add values."""

    def __init__(self, zero_value: T) -> None:
        self.zero_value = zero_value

    def zero(self, value: T) -> T:
        return self.zero_value

    def addInPlace(self, value1: T, value2: T) -> T:
        value1 += value2  # type: ignore[operator]
        return value1


INT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0)
FLOAT_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0)
COMPLEX_ACCUMULATOR_PARAM = AddingAccumulatorParam(0.0j)


def _deserialize_accumulator(aid: int, zero_value: Any, accum_param: AccumulatorParam) -> "Accumulator":
    accumulator = Accumulator(aid, zero_value, accum_param)
    accumulator._deserialized = True
    return accumulator


class Accumulator(Generic[T]):
    """A shared variable that tasks can only add to; only the driver reads its value.

    >>> a = sc.accumulator(0)
    >>> sc.parallelize([1, 2, 3, 4], 2).foreach(lambda x: a.add(x))
    >>> a.value
    10
    """

    def __init__(self, aid: int, value: T, accum_param: AccumulatorParam[T]) -> None:
        self.aid = aid
        self.accum_param = accum_param
        self._value = value
        self._deserialized = False

    def __reduce__(self) -> tuple:
        return _deserialize_accumulator, (self.aid, self.accum_param.zero(self._value), self.accum_param)

    @property
    def value(self) -> T:
        """Get the accumulator's value; only usable in driver program."""
        if self._deserialized:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        return self._value

    @value.setter
    def value(self, value: T) -> None:
        if self._deserialized:
            raise RuntimeError("Accumulator.value cannot be accessed inside tasks")
        self._value = value

    def add(self, term: T) -> None:
        """Adds a term to this accumulator's value."""
        if not self._deserialized:
            self._value = self.accum_param.addInPlace(self._value, term)
            return
        context = TaskContext.get()
        if context is None:
            raise RuntimeError("an accumulator arrived outside a task; add to it from tasks or on the driver")
        updates = context._accum_updates
        current = updates[self.aid][1] if self.aid in updates else self.accum_param.zero(self._value)
        updates[self.aid] = (self.accum_param, self.accum_param.addInPlace(current, term))

    def __iadd__(self, term: T) -> "Accumulator[T]":
        self.add(term)
        return self

    def _merge(self, partial: T) -> None:
        self._value = self.accum_param.addInPlace(self._value, partial)

    def __str__(self) -> str:
        return str(self._value)

    def __repr__(self) -> str:
        return f"Accumulator<id={self.aid}, value={self._value}>"


def _broadcast_from_id(bid: int) -> "Broadcast":
    return Broadcast(None, bid, None, None)


class Broadcast(Generic[T]):
    """A read-only variable cached on each executor rather than shipped with each task.

    >>> b = sc.broadcast([1, 2, 3, 4, 5])
    >>> b.value
    [1, 2, 3, 4, 5]
    >>> sc.parallelize([0, 0]).flatMap(lambda x: b.value).collect()
    [1, 2, 3, 4, 5, 1, 2, 3, 4, 5]
    >>> b.unpersist()
    """

    def __init__(self, ctx: Any, bid: int, value: T | None, on_release: Callable[[int, bool, bool], Any] | None) -> None:
        self._ctx = ctx
        self.id = bid
        self._value = value
        self._on_release = on_release
        self._destroyed = False

    @property
    def value(self) -> T:
        """The broadcast value (fetched once per executor inside tasks)."""
        if self._destroyed:
            raise RuntimeError("Attempted to use broadcast variable after it was destroyed")
        if self._ctx is not None:
            return self._value  # type: ignore[return-value]
        context = TaskContext.get()
        if context is None or context.env is None:
            raise RuntimeError(f"broadcast {self.id} is used outside a task on an executor")
        return context.env.broadcast_value(self.id)

    def unpersist(self, blocking: bool = False) -> None:
        """Delete cached copies of this broadcast on the executors; they fetch it again if used."""
        self._require_driver("unpersist")
        self._on_release(self.id, False, blocking)  # type: ignore[misc]

    def destroy(self, blocking: bool = False) -> None:
        """Destroy all data and metadata related to this broadcast variable."""
        self._require_driver("destroy")
        self._destroyed = True
        self._value = None
        self._on_release(self.id, True, blocking)  # type: ignore[misc]

    def _require_driver(self, what: str) -> None:
        if self._ctx is None:
            raise RuntimeError(f"Broadcast.{what}() can only be called in driver")

    def __reduce__(self) -> tuple:
        if self._destroyed:
            raise RuntimeError("Attempted to use broadcast variable after it was destroyed")
        return _broadcast_from_id, (self.id,)


class AccumulatorRegistry:
    """The driver's accumulators by id (weakly held: an unreachable one is dropped)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._by_id: "weakref.WeakValueDictionary[int, Accumulator]" = weakref.WeakValueDictionary()

    def new(self, value: Any, accum_param: AccumulatorParam | None) -> Accumulator:
        if accum_param is None:
            if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
                raise TypeError(f"No default accumulator param for type {type(value)}")
            accum_param = {int: INT_ACCUMULATOR_PARAM, float: FLOAT_ACCUMULATOR_PARAM,
                           complex: COMPLEX_ACCUMULATOR_PARAM}[type(value)]
        with self._lock:
            aid = self._next
            self._next += 1
        accumulator = Accumulator(aid, value, accum_param)
        self._by_id[aid] = accumulator
        return accumulator

    def merge(self, updates: dict[int, tuple[AccumulatorParam, Any]]) -> None:
        for aid, (_, partial) in updates.items():
            accumulator = self._by_id.get(aid)
            if accumulator is not None:
                accumulator._merge(partial)
