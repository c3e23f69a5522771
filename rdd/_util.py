"""Small helpers shared by the RDD modules: user-function wrapping, creation sites, ids."""

from __future__ import annotations

import os
import sys
from itertools import chain
from typing import Any, Callable, TypeVar

from sparklet.actors import SparkletInternalError

P = TypeVar("P")

__all__ = ["counted", "identity", "fused_loop", "record_steps_func", "fail_on_stopiteration", "creation_site", "RDDId",
           "expect_partition", "expect_lineage"]

_STOP_MESSAGE = "Caught StopIteration thrown from user's code; failing the task"


_FUSED: dict[tuple[str, ...], Callable] = {}


def identity(x: Any) -> Any:
    """``x`` itself: ``reduceByKey``'s ``createCombiner``, one shared function so the fused
    combine (``rdd/_combine.py``) can recognize it and store the value as it is.

    >>> identity(3)
    3
    """
    return x


def fused_loop(kinds: tuple[str, ...]) -> Callable:
    """One generator running a chain of record steps (``map``, ``filter``, ``flatMap``).

    A chain of narrow steps costs one generator frame per record instead of one per step:
    ``flatMap(str.split).map(lambda w: (w, 1))`` compiles to

        def fused(iterator, f0, f1):
            for x0 in iterator:
                for x1 in f0(x0):
                    yield f1(x1)

    The source is generated from ``kinds`` alone (our own templates, never user text) and
    cached per shape. A StopIteration escaping a user function fails the task exactly as
    the step-by-step generators do.
    """
    loop = _FUSED.get(kinds)
    if loop is not None:
        return loop
    names = [f"f{i}" for i in range(len(kinds))]
    body = ["    try:", "        for x0 in iterator:"]
    indent, current = "            ", "x0"
    for i, kind in enumerate(kinds):
        nxt = f"x{i + 1}"
        if kind == "map":
            body.append(f"{indent}{nxt} = f{i}({current})")
        elif kind == "filter":
            body.append(f"{indent}if not f{i}({current}):")
            body.append(f"{indent}    continue")
            nxt = current
        elif kind == "flatMap":
            body.append(f"{indent}for {nxt} in f{i}({current}):")
            indent += "    "
        else:
            raise ValueError(f"unknown record step {kind!r}")
        current = nxt
    body.append(f"{indent}yield {current}")
    body.append("    except StopIteration as exc:")
    body.append("        raise RuntimeError(_STOP_MESSAGE, exc) from exc")
    source = f"def fused(iterator, {', '.join(names)}):\n" + "\n".join(body) + "\n"
    namespace: dict[str, Any] = {"_STOP_MESSAGE": _STOP_MESSAGE}
    exec(compile(source, f"<sparklet fused {'+'.join(kinds)}>", "exec"), namespace)
    loop = _FUSED[kinds] = namespace["fused"]
    return loop


class _SourceEnd:
    """The last item of a C pipeline's source: reached only when the source ran out."""

    __slots__ = ("reached",)

    def __init__(self) -> None:
        self.reached = False

    def __iter__(self) -> "_SourceEnd":
        return self

    def __next__(self) -> Any:
        self.reached = True
        raise StopIteration


class _PipelineEnd:
    """The last item of a C pipeline: a pipeline that ended before its source did was ended
    by a ``StopIteration`` from a user function (``map``, ``filter`` and ``chain`` take it
    for their input's end): that fails the task, as in the generator loop."""

    __slots__ = ("_source_end",)

    def __init__(self, source_end: _SourceEnd) -> None:
        self._source_end = source_end

    def __iter__(self) -> "_PipelineEnd":
        return self

    def __next__(self) -> Any:
        if not self._source_end.reached:
            raise RuntimeError(_STOP_MESSAGE)
        raise StopIteration


def record_steps_func(steps: tuple[tuple[str, Callable], ...]) -> Callable[[int, Any], Any]:
    """The ``func(split, iterator)`` of a chain of record steps.

    The chain runs as builtin iterators, no Python frame per record:
    ``flatMap(f).map(g)`` is ``map(g, chain.from_iterable(map(f, source)))``, between a
    :class:`_SourceEnd` after the source and a :class:`_PipelineEnd` after the chain, which
    tell a ``StopIteration`` escaping ``f`` or ``g`` (the builtins would end quietly) from
    the source's end. Steps that are not all callables fall back to :func:`fused_loop`
    (``filter(None, ...)`` would mean something else).
    """
    kinds = tuple(kind for kind, _ in steps)
    functions = tuple(f for _, f in steps)
    if not all(callable(f) for f in functions) or not set(kinds) <= {"map", "filter", "flatMap"}:
        def run_fused(split: int, iterator: Any) -> Any:
            return fused_loop(kinds)(iterator, *functions)

        return run_fused

    def run_steps(split: int, iterator: Any) -> Any:
        source_end = _SourceEnd()
        records: Any = chain(iterator, source_end)
        for kind, f in steps:
            if kind == "map":
                records = map(f, records)
            elif kind == "filter":
                records = filter(f, records)
            else:
                records = chain.from_iterable(map(f, records))
        return chain(records, _PipelineEnd(source_end))

    return run_steps


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


def fail_on_stopiteration(f: Callable) -> Callable:
    """Wrap a user function so that a ``StopIteration`` it raises fails the task instead of
    silently ending the iteration that called it (PySpark's ``fail_on_stopiteration``)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return f(*args, **kwargs)
        except StopIteration as exc:
            raise RuntimeError(_STOP_MESSAGE, exc) from exc

    wrapper.__wrapped__ = f  # type: ignore[attr-defined]
    wrapper.sparklet_guarded = f  # type: ignore[attr-defined]  # ours alone: see rdd/_combine._unwrapped
    return wrapper


_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # the sparklet package
_ENGINE_PATHS = (  # where sparklet's own frames live (not tests/, examples/, benchmarks/)
    *(os.path.join(_PACKAGE_DIR, d) + os.sep for d in ("actors", "supervision", "runtime", "rdd", "shuffle")),
    os.path.join(_PACKAGE_DIR, "__init__.py"),
)


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
