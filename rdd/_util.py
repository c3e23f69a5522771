"""Small helpers shared by the RDD modules: user-function wrapping, creation sites, ids."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable, TypeVar

from sparklet.actors import SparkletInternalError

P = TypeVar("P")

__all__ = ["counted", "fail_on_stopiteration", "map_records", "filter_records", "flat_map_records", "creation_site", "RDDId",
           "expect_partition", "expect_lineage"]

_STOP_MESSAGE = "Caught StopIteration thrown from user's code; failing the task"


# The per-record paths (map, filter, flatMap) are generators rather than ``map(wrapped_f,
# it)``: a StopIteration raised by the user's function is caught around the loop, so it
# fails the task exactly as fail_on_stopiteration does, without a wrapper call per record
# (the wrapper more than doubled the cost of ``lambda x: x + 1``; see benchmarks/).
def map_records(f: Callable, iterator: Any) -> Any:
    try:
        for x in iterator:
            yield f(x)
    except StopIteration as exc:
        raise RuntimeError(_STOP_MESSAGE, exc) from exc


def filter_records(f: Callable, iterator: Any) -> Any:
    try:
        for x in iterator:
            if f(x):
                yield x
    except StopIteration as exc:
        raise RuntimeError(_STOP_MESSAGE, exc) from exc


def counted(records: Any, context: Any) -> Any:
    """``records``, adding how many were read to the task's ``records_read`` metric: at once
    when the source knows its length, else as they go (for readers whose per-record work
    dwarfs the count)."""
    if context is None:
        return records
    if hasattr(records, "__len__"):
        context.metrics["records_read"] = context.metrics.get("records_read", 0) + len(records)
        return records
    return _count_as_read(records, context)


def _count_as_read(records: Any, context: Any) -> Any:
    n = 0
    try:
        for record in records:
            n += 1
            yield record
    finally:
        context.metrics["records_read"] = context.metrics.get("records_read", 0) + n


def flat_map_records(f: Callable, iterator: Any) -> Any:
    try:
        for x in iterator:
            yield from f(x)
    except StopIteration as exc:
        raise RuntimeError(_STOP_MESSAGE, exc) from exc

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the sparklet package
_ENGINE_PATHS = (  # where sparklet's own frames live (not tests/, examples/, benchmarks/)
    *(os.path.join(_PACKAGE_DIR, d) + os.sep for d in ("actors", "supervision", "runtime", "rdd", "shuffle")),
    os.path.join(_PACKAGE_DIR, "__init__.py"),
)


def fail_on_stopiteration(f: Callable) -> Callable:
    """Wrap a user function so that a ``StopIteration`` it raises fails the task instead of
    silently ending the iteration that called it (PySpark's ``fail_on_stopiteration``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except StopIteration as exc:
            raise RuntimeError(_STOP_MESSAGE, exc) from exc

    wrapper.__wrapped__ = f  # type: ignore[attr-defined]
    return wrapper


def creation_site() -> str:
    """Spark's call site: ``"<api> at <user file>:<line>"``, where ``<api>`` is the sparklet
    function the user called (``map``, ``parallelize``, ...)."""
    frame = sys._getframe(1)
    api = None
    while frame is not None:
        if frame.f_code.co_filename.startswith(_ENGINE_PATHS):
            api = frame.f_code.co_name
        else:
            break
        frame = frame.f_back
    if frame is None:
        return f"{api or '<unknown>'} at <unknown>"
    return f"{api or '<unknown>'} at {os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class RDDId(int):
    """A unique ID for an RDD within its context: an ``int`` (what the engine uses) that can
    also be called, as PySpark's ``RDD.id()`` is.

    >>> rdd = sc.parallelize([1, 2])
    >>> rdd.id() == rdd.id
    True
    >>> isinstance(rdd.id(), int)
    True
    """

    __slots__ = ()

    def __call__(self) -> int:
        return int(self)

    def __reduce__(self) -> tuple:
        return (RDDId, (int(self),))


def expect_partition(rdd: Any, split: Any, cls: type[P]) -> P:
    """``split`` as the partition class ``rdd`` computes; anything else is an engine bug."""
    if not isinstance(split, cls):
        raise SparkletInternalError(
            f"{type(rdd).__name__}[{int(rdd.id)}] was asked to compute {split!r}, not a {cls.__name__}")
    return split


def expect_lineage(rdd: Any, parent: P | None) -> P:
    """A parent reference that a checkpoint may have dropped; computing through it then is an
    engine bug (a checkpointed RDD is read from its checkpoint)."""
    if parent is None:
        raise SparkletInternalError(
            f"{type(rdd).__name__}[{int(rdd.id)}] was computed from its lineage after a checkpoint dropped it")
    return parent
