"""The map-side combine fused into the record loop: what a combining shuffle map task runs.

A ``reduceByKey`` map task used to pull ``(key, value)`` records out of the pipeline's
generator and merge each into the writer's dict through the aggregator's wrapped
functions: a generator resume, a wrapper frame and the user's call per record. Here the
writer is handed a *feed* instead (``feed(combiners, limit) -> exhausted``), which runs
the pipeline's record steps (``map``/``filter``/``flatMap``, see ``_util.fused_loop``) and
the combine in one generated loop, folding at least ``limit`` records (or the rest) into
``combiners`` before the writer measures memory and maybe spills.

Three shapes, chosen from the steps and the aggregator alone:

* **generated loop** (any steps, any aggregator): one Python function per shape, with
  ``operator.add`` as ``mergeValue`` inlined as ``+`` (``add(a, b)`` *is* ``a + b``), an
  identity ``createCombiner`` inlined as the value, and a last ``map`` by a function whose
  code is ``lambda x: (x, CONSTANT)`` inlined as the pair. A ``StopIteration`` escaping a
  user function fails the task as everywhere else.
* **counting in C**: ``flatMap(str.split)`` (or ``lambda line: line.split()``), then
  ``map(lambda w: (w, 1))``, then ``reduceByKey(add)``: this is ``Counter.update`` over
  the split lines, run by ``collections._count_elements`` (``counts[w] = counts.get(w, 0)
  + 1``), exactly what the Python loop computes for ``int`` counts. Lines that are not
  exactly ``str`` go through the generated loop instead (their own ``split`` may differ).
* otherwise nothing is fused and the records come from the RDD's iterator.

Memory: the writer's bound counts records between checks (see ``shuffle/_writer.py``);
the generated loop counts the records it folds and returns after the source record that
reached ``limit``, the counting path takes lines while their lengths (an upper bound on
their words) fit ``limit``. Either may pass ``limit`` by what one source record yields.
"""

from __future__ import annotations

import inspect
import operator
import types
from collections import abc
from itertools import chain
from typing import Any, Callable, Iterator

from sparklet.rdd._util import _STOP_MESSAGE, identity

try:
    from collections import _count_elements  # type: ignore[attr-defined]  # C in CPython
except ImportError:  # pragma: no cover - other interpreters: the generated loop does it
    _count_elements = None

__all__ = ["combining_feed", "records_feed", "pair_constant", "Feed"]

Feed = Callable[[dict, int], bool]
Steps = tuple[tuple[str, Callable], ...]
_MISSING = object()
_HITS_RATIO = 20  # as the writer's: guard with try/except while fewer than 1 record in 20 brings a new key


# What makes a function run differently from its bytecode alone: *args, **kwargs, being a
# generator or a coroutine (the other flags, like __future__ imports, do not matter here).
_KIND_FLAGS = (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS | inspect.CO_GENERATOR | inspect.CO_COROUTINE
               | inspect.CO_ITERABLE_COROUTINE | inspect.CO_ASYNC_GENERATOR)


def _template(f: Callable) -> tuple:
    code = f.__code__
    return code.co_code, code.co_names, code.co_argcount, code.co_flags & _KIND_FLAGS


def _matches(f: Any, template: tuple) -> bool:
    if type(f) is not types.FunctionType or f.__closure__ is not None:
        return False
    code = f.__code__
    return (code.co_kwonlyargcount == 0 and code.co_posonlyargcount == 0
            and (code.co_code, code.co_names, code.co_argcount, code.co_flags & _KIND_FLAGS) == template)


_PAIR = _template(lambda x: (x, 1))
_SPLIT_METHOD = _template(lambda line: line.split())


def pair_constant(f: Any) -> Any:
    """The constant ``C`` when ``f``'s code is exactly ``lambda x: (x, C)``, else ``_MISSING``.

    >>> pair_constant(lambda w: (w, 1))
    1
    >>> pair_constant(lambda w: (w, w)) is _MISSING
    True
    """
    if not _matches(f, _PAIR):
        return _MISSING
    return f.__code__.co_consts[1]  # the template's bytecode loads constant 1


def _splits_on_whitespace(f: Any) -> bool:
    """``f(line)`` is ``str.split(line)`` for an exact ``str``."""
    return f is str.split or _matches(f, _SPLIT_METHOD)


def _unwrapped(f: Callable) -> Callable:
    """The user's function under ``fail_on_stopiteration`` (the fused loop guards itself);
    only that wrapper is taken off (a user's ``functools.wraps`` decorator stays)."""
    return getattr(f, "sparklet_guarded", f)


# -- the generated loop ---------------------------------------------------------------------------

_GENERATED: dict[tuple, Callable] = {}


def _generate(kinds: tuple[str, ...], inline_pair: bool, merge_add: bool, create_identity: bool) -> Callable:
    """``fused(source, combiners, limit, mostly_hits, create, merge, constant, f0, f1, ...)``
    folds records into ``combiners`` and returns True when ``source`` is exhausted, False
    once ``limit`` records were folded (checked after each source record)."""
    key = (kinds, inline_pair, merge_add, create_identity)
    fused = _GENERATED.get(key)
    if fused is not None:
        return fused
    names = [f"f{i}" for i in range(len(kinds))]

    def loop(indent: str, hits: bool) -> list[str]:
        lines = [f"{indent}for x0 in source:"]
        inner, current = indent + "    ", "x0"
        for i, kind in enumerate(kinds):
            nxt = f"x{i + 1}"
            last = i == len(kinds) - 1
            if kind == "map" and last and inline_pair:
                lines.append(f"{inner}key = {current}")
                current = None
            elif kind == "map":
                lines.append(f"{inner}{nxt} = f{i}({current})")
                current = nxt
            elif kind == "filter":
                lines += [f"{inner}if not f{i}({current}):", f"{inner}    continue"]
            elif kind == "flatMap":
                lines.append(f"{inner}for {nxt} in f{i}({current}):")
                inner += "    "
                current = nxt
            else:
                raise ValueError(f"unknown record step {kind!r}")
        if current is not None:
            lines.append(f"{inner}key, value = {current}")
        value = "constant" if current is None else "value"
        created = value if create_identity else f"create({value})"
        merged = (lambda old: f"{old} + {value}") if merge_add else (lambda old: f"merge({old}, {value})")
        lines.append(f"{inner}n += 1")
        if hits:
            lines += [f"{inner}try:", f"{inner}    old = combiners[key]",
                      f"{inner}except KeyError:", f"{inner}    combiners[key] = {created}",
                      f"{inner}else:", f"{inner}    combiners[key] = {merged('old')}"]
        else:
            lines += [f"{inner}if key in combiners:", f"{inner}    combiners[key] = {merged('combiners[key]')}",
                      f"{inner}else:", f"{inner}    combiners[key] = {created}"]
        lines += [f"{indent}    if n >= limit:", f"{indent}        return False"]
        return lines

    body = ["    n = 0", "    try:", "        if mostly_hits:", *loop("            ", True),
            "        else:", *loop("            ", False),
            "    except StopIteration as exc:", "        raise RuntimeError(_STOP_MESSAGE, exc) from exc",
            "    return True"]
    params = ", ".join(["source", "combiners", "limit", "mostly_hits", "create", "merge", "constant", *names])
    source = f"def fused({params}):\n" + "\n".join(body) + "\n"
    namespace: dict[str, Any] = {"_STOP_MESSAGE": _STOP_MESSAGE}
    tag = "+".join(kinds) or "records"
    exec(compile(source, f"<sparklet fused combine {tag}>", "exec"), namespace)
    fused = _GENERATED[key] = namespace["fused"]
    return fused


class _LoopFeed:
    """Feeds by the generated loop; switches to the try/except merge once new keys are rare."""

    __slots__ = ("_fused", "_source", "_create", "_merge", "_constant", "_functions", "_mostly_hits")

    def __init__(self, source: Iterator, steps: Steps, aggregator: Any) -> None:
        kinds = tuple(kind for kind, _ in steps)
        functions = tuple(f for _, f in steps)
        constant = pair_constant(functions[-1]) if kinds and kinds[-1] == "map" else _MISSING
        create, merge = _unwrapped(aggregator.createCombiner), _unwrapped(aggregator.mergeValue)
        inline_pair = constant is not _MISSING
        self._fused = _generate(kinds, inline_pair, merge is operator.add, create is identity)
        self._source = source
        self._create, self._merge = create, merge
        self._constant = constant if inline_pair else None
        self._functions = functions
        self._mostly_hits = False

    def __call__(self, combiners: dict, limit: int) -> bool:
        keys_before = len(combiners)
        exhausted = self._fused(self._source, combiners, limit, self._mostly_hits, self._create, self._merge,
                                self._constant, *self._functions)
        self._mostly_hits = (len(combiners) - keys_before) * _HITS_RATIO < limit
        return exhausted


class _CountingFeed:
    """``flatMap(split) -> map((w, 1)) -> reduceByKey(add)`` as ``Counter.update`` (in C)."""

    __slots__ = ("_source", "_split", "_fallback")

    def __init__(self, source: Iterator, steps: Steps, aggregator: Any) -> None:
        self._source = source
        self._split = str.split
        self._fallback = _LoopFeed(iter(()), steps, aggregator)

    def __call__(self, combiners: dict, limit: int) -> bool:
        lines: list[str] = []
        room = limit
        exhausted = True
        for line in self._source:
            if type(line) is not str:  # a str subclass or anything else: its own split, its own errors
                _count_elements(combiners, chain.from_iterable(map(self._split, lines)))
                lines = []
                self._fallback._source = iter((line,))
                self._fallback(combiners, 1)
                room -= 1
            else:
                lines.append(line)
                room -= len(line) + 1  # str.split() gives at most (len + 1) // 2 words
            if room <= 0:
                exhausted = False
                break
        _count_elements(combiners, chain.from_iterable(map(self._split, lines)))
        return exhausted


def _counts_words(steps: Steps, aggregator: Any) -> bool:
    if _count_elements is None or len(steps) != 2:
        return False
    (first, split), (second, pair) = steps
    constant = pair_constant(pair) if second == "map" else _MISSING
    return (first == "flatMap" and _splits_on_whitespace(split) and type(constant) is int and constant == 1
            and _unwrapped(aggregator.createCombiner) is identity
            and _unwrapped(aggregator.mergeValue) is operator.add)


def records_feed(records: abc.Iterable, aggregator: Any) -> Feed:
    """A feed over ready ``(key, value)`` records (nothing to fuse)."""
    return _LoopFeed(iter(records), (), aggregator)


def combining_feed(rdd: Any, split: Any, context: Any, aggregator: Any) -> Feed:
    """The feed of a combining map task over ``rdd``'s partition ``split`` (see the module
    notes): its record steps fused with the combine when ``rdd`` has any and computes them
    (not read from a cache or a checkpoint), else its records as they come."""
    plan = getattr(rdd, "record_plan", None)
    planned = plan(split, context) if plan is not None else None
    if planned is None:
        return records_feed(rdd.iterator(split, context), aggregator)
    source, steps = planned
    if _counts_words(steps, aggregator):
        return _CountingFeed(source, steps, aggregator)
    return _LoopFeed(source, steps, aggregator)
