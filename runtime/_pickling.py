"""Serialization of closures, data and errors, with errors that name the culprit.

Closures (task binaries, broadcast values) go through cloudpickle, which can pickle
lambdas and functions defined in ``__main__``. Data (task results, partitions) goes
through the standard pickle first, which is several times faster for plain data, and
falls back to cloudpickle for what it cannot handle.

When a closure cannot be pickled, PySpark says ``PicklingError: Could not serialize
object: TypeError: cannot pickle '_thread.lock' object`` and leaves you to guess which
object. We say the same and then name it: the path from the function to the offending
value (``map() function -> closure variable 'lock' (a _thread.lock)``).
"""

from __future__ import annotations

import pickle
import traceback
import types
from typing import Any

import cloudpickle

__all__ = ["dumps_closure", "dumps_data", "loads", "describe_error", "rebuild_error"]

_PROTOCOL = pickle.HIGHEST_PROTOCOL


def dumps_closure(obj: Any, what: str) -> bytes:
    """cloudpickle ``obj``; on failure raise ``pickle.PicklingError`` naming the culprit."""
    try:
        return cloudpickle.dumps(obj, protocol=_PROTOCOL)
    except Exception as exc:
        culprit = find_unpicklable(obj, what)
        detail = f" The object that could not be serialized: {culprit}." if culprit else ""
        raise pickle.PicklingError(f"Could not serialize object: {type(exc).__name__}: {exc}.{detail}") from exc


def dumps_data(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=_PROTOCOL)
    except Exception:
        return dumps_closure(obj, "the result")


def loads(data: bytes) -> Any:
    return pickle.loads(data)


def _picklable(obj: Any) -> bool:
    try:
        cloudpickle.dumps(obj, protocol=_PROTOCOL)
        return True
    except Exception:
        return False


def _children(obj: Any) -> list[tuple[str, Any]]:
    """The parts of ``obj`` cloudpickle would pickle, with a human label for each."""
    if isinstance(obj, types.FunctionType):
        parts: list[tuple[str, Any]] = []
        code = obj.__code__
        for name, cell in zip(code.co_freevars, obj.__closure__ or ()):
            try:
                parts.append((f"closure variable {name!r}", cell.cell_contents))
            except ValueError:
                continue
        for name in code.co_names:
            if name in obj.__globals__:
                parts.append((f"global {name!r}", obj.__globals__[name]))
        for i, default in enumerate(obj.__defaults__ or ()):
            parts.append((f"default argument {i}", default))
        return parts
    if isinstance(obj, types.MethodType):
        return [("bound instance", obj.__self__), ("method", obj.__func__)]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [(f"item {i}", item) for i, item in enumerate(obj)]
    if isinstance(obj, dict):
        return [(f"key {k!r}", v) for k, v in obj.items()]
    state = getattr(obj, "__dict__", None)
    if isinstance(state, dict):
        return [(f"attribute {k!r}", v) for k, v in state.items()]
    return []


def find_unpicklable(obj: Any, label: str, depth: int = 0, seen: set[int] | None = None) -> str | None:
    """The path to the innermost part of ``obj`` that cannot be pickled, or None."""
    seen = seen if seen is not None else set()
    if id(obj) in seen or depth > 12:
        return None
    seen.add(id(obj))
    for child_label, child in _children(obj):
        if isinstance(child, types.ModuleType) or _picklable(child):
            continue
        deeper = find_unpicklable(child, child_label, depth + 1, seen)
        return f"{label} -> {deeper}" if deeper else f"{label} -> {child_label} (a {type(child).__module__}.{type(child).__qualname__})"
    return None


def describe_error(exc: BaseException) -> tuple:
    """An exception as it travels: (type name, message, traceback text, pickled or None)."""
    text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    try:
        pickled: bytes | None = cloudpickle.dumps(exc, protocol=_PROTOCOL)
    except Exception:
        pickled = None
    return (f"{type(exc).__module__}.{type(exc).__qualname__}", str(exc), text, pickled)


class TaskError(Exception):
    """An exception raised in a task whose type could not be rebuilt on the driver."""

    def __init__(self, type_name: str, message: str, remote_traceback: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name = type_name
        self.remote_traceback = remote_traceback


def rebuild_error(error: tuple) -> BaseException:
    """The original exception (type and message) from :func:`describe_error`'s tuple,
    with the remote traceback attached as a note."""
    type_name, message, remote_traceback, pickled = error
    exc: Any = None
    if pickled is not None:
        try:
            exc = pickle.loads(pickled)
        except Exception:
            exc = None
    if not isinstance(exc, BaseException):
        exc = TaskError(type_name, message, remote_traceback)
    exc.remote_traceback = remote_traceback
    return exc
