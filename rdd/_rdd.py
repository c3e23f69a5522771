"""The public ``RDD`` class: :class:`~sparklet.rdd._base.RDDBase` plus the operation mixins.

Every action is written once, as an ``...Async`` coroutine; the blocking method runs that
coroutine through ``ctx._block`` (which refuses to run inside an event loop and names the
twin to await instead). User functions that must run on the driver (the final merge of a
``reduce``) go through ``ctx._run_on_driver``, off the event loop.

This module also holds what every RDD has regardless of its operations: naming, the
creation site, persistence, and the lineage printout (``toDebugString``, Spark's format).
"""

from __future__ import annotations

import re
from typing import Any, Callable, Coroutine, Iterator, Sequence

from sparklet.rdd._actions import ActionsMixin
from sparklet.rdd._aggregations import AggregationsMixin
from sparklet.rdd._base import ContextLike, Dependency, RDDBase, ShuffleDependency, TaskContext
from sparklet.rdd._checkpoint import CheckpointMixin
from sparklet.rdd._numeric import NumericMixin
from sparklet.rdd._output import OutputMixin
from sparklet.rdd._pairs import PairsMixin
from sparklet.rdd._storage import StorageLevel
from sparklet.rdd._transformations import TransformationsMixin
from sparklet.rdd._util import RDDId, creation_site

__all__ = ["RDD"]


class RDD(TransformationsMixin, PairsMixin, ActionsMixin, AggregationsMixin, NumericMixin, OutputMixin,
          CheckpointMixin, RDDBase):
    """A Resilient Distributed Dataset (RDD), the basic abstraction in Spark: an immutable,
    partitioned collection of elements that can be operated on in parallel.

    >>> rdd = sc.parallelize(range(6), 2).map(lambda x: x * 10)
    >>> rdd.collect()
    [0, 10, 20, 30, 40, 50]
    """

    def __init__(self, ctx: ContextLike, deps: Sequence[Dependency] = ()) -> None:
        super().__init__(ctx, deps)
        self.id = RDDId(self.id)
        self._creation_site = creation_site()
        self._checkpoint_in_progress = False

    # -- running actions ----------------------------------------------------------------------
    def _sync(self, coroutine: Coroutine) -> Any:
        """Run an action's coroutine from blocking code (the blocking half of each action)."""
        if self.ctx is None:
            coroutine.close()
        return self._require_driver(coroutine.__qualname__.rsplit(".", 1)[-1].removesuffix("Async"))._block(coroutine)

    async def _run_job(self, func: Callable[[TaskContext, Iterator], Any],
                       partitions: Sequence[int] | None = None, rdd: "RDD | None" = None) -> list:
        ctx = self._require_driver("an action")
        return await ctx.run_job_async(self if rdd is None else rdd, func, partitions)

    async def _on_driver(self, fn: Callable, *args: Any) -> Any:
        return await self._require_driver("an action")._run_on_driver(fn, *args)

    # -- identity -------------------------------------------------------------------------------
    @property
    def context(self) -> ContextLike:
        """The context that this RDD was created on.

        >>> sc.parallelize([1]).context is sc
        True
        """
        return self.ctx

    def name(self) -> str | None:
        """Return the name of this RDD (``None`` until :meth:`setName`).

        >>> rdd = sc.range(5)
        >>> rdd.name() is None
        True
        >>> rdd.setName('numbers').name()
        'numbers'
        """
        return self._name

    def __repr__(self) -> str:
        label = f"{self._name} " if self._name else ""
        return f"{label}{type(self).__name__}[{int(self.id)}] at {self._creation_site}"

    # -- barrier execution mode (rdd/_barrier.py) ----------------------------------------------------
    def barrier(self) -> Any:
        """Marks the current stage as a barrier stage, where Spark must launch all tasks
        together; returns an :class:`RDDBarrier` offering ``mapPartitions``.

        >>> sc.parallelize(range(4), 2).barrier().mapPartitions(lambda it: [sum(it)]).collect()
        [1, 5]
        """
        from sparklet.rdd._barrier import RDDBarrier
        return RDDBarrier(self)

    def isBarrier(self) -> bool:
        """Whether this RDD is in a barrier stage (made by :meth:`barrier`, or reaching
        such an RDD through narrow dependencies).

        >>> rdd = sc.parallelize(range(4), 2)
        >>> rdd.isBarrier(), rdd.barrier().mapPartitions(iter).map(str).isBarrier()
        (False, True)
        """
        from sparklet.rdd._barrier import is_barrier
        return is_barrier(self)

    _is_barrier = isBarrier  # PySpark's private name

    # -- persistence ------------------------------------------------------------------------------
    @property
    def is_cached(self) -> bool:
        """Whether a storage level is set (PySpark's attribute).

        >>> rdd = sc.range(3)
        >>> rdd.is_cached
        False
        >>> rdd.cache().is_cached
        True
        """
        return self._storage_level != StorageLevel.NONE

    def cache(self) -> "RDD":
        """Persist this RDD with the default storage level (``MEMORY_ONLY``).

        >>> rdd = sc.range(5)
        >>> rdd.cache() is rdd
        True
        >>> str(rdd.getStorageLevel())
        'Memory Serialized 1x Replicated'
        """
        return self.persist(StorageLevel.MEMORY_ONLY)

    def persist(self, storageLevel: StorageLevel = StorageLevel.MEMORY_ONLY) -> "RDD":
        """Set this RDD's storage level to persist its values across operations after the first
        time it is computed. This can only be used to assign a new storage level if the RDD does
        not have a storage level set yet.

        >>> rdd = sc.parallelize(["b", "a", "c"])
        >>> rdd.persist().is_cached
        True
        >>> rdd.persist(StorageLevel.DISK_ONLY)
        Traceback (most recent call last):
            ...
        ValueError: Cannot change storage level of an RDD after it was already assigned a level
        """
        from sparklet.rdd._storage import StorageLevel as _Level

        if not isinstance(storageLevel, _Level):
            raise TypeError(f"storageLevel must be a StorageLevel, got {storageLevel!r}")
        ctx = self._require_driver("persist")
        if self._storage_level != StorageLevel.NONE:
            if storageLevel != self._storage_level:
                raise ValueError("Cannot change storage level of an RDD after it was already assigned a level")
            return self
        if storageLevel == StorageLevel.NONE:
            return self
        self._storage_level = storageLevel
        ctx._persist(self, storageLevel)
        return self

    def unpersist(self, blocking: bool = False) -> "RDD":
        """Mark the RDD as non-persistent, and remove all blocks for it from memory and disk.

        >>> rdd = sc.range(5).cache()
        >>> rdd.unpersist().is_cached
        False
        """
        return self._sync(self.unpersistAsync(blocking))

    async def unpersistAsync(self, blocking: bool = False) -> "RDD":
        """Awaitable twin of :meth:`unpersist`; cancelling the awaiting task cancels the removal.

        >>> import asyncio
        >>> asyncio.run(sc.range(5).cache().unpersistAsync()).is_cached
        False
        """
        ctx = self._require_driver("unpersist")
        await ctx._unpersist_async(self, blocking)
        self._storage_level = StorageLevel.NONE
        return self

    def getStorageLevel(self) -> StorageLevel:
        """Get the RDD's current storage level.

        >>> rdd = sc.parallelize([1, 2])
        >>> rdd.getStorageLevel()
        StorageLevel(False, False, False, False, 1)
        >>> print(rdd.getStorageLevel())
        Serialized 1x Replicated
        """
        return self._storage_level

    # -- lineage ---------------------------------------------------------------------------------
    def toDebugString(self) -> bytes:
        """A description of this RDD and its recursive dependencies for debugging, in Spark's
        format: ``(partitions) RDD[id] at site [storage level]``, one line per RDD, indented
        at shuffle boundaries.

        >>> rdd = sc.parallelize([1, 2, 3], 2).map(lambda x: x)
        >>> print(rdd.toDebugString().decode())  # doctest: +ELLIPSIS
        (2) PipelinedRDD[...] at map at ... []
         |  ParallelCollectionRDD[...] at parallelize at ... []
        """
        return _debug_string(self).encode("utf-8")


def _debug_self(rdd: RDDBase) -> list[str]:
    level = rdd._storage_level
    persistence = str(level) if level != StorageLevel.NONE else ""
    return [f"{rdd!r} [{persistence}]"]


def _debug_children(rdd: RDDBase, prefix: str) -> list[str]:
    deps = rdd.dependencies
    lines: list[str] = []
    for i, dep in enumerate(deps):
        lines += _debug_string(dep.rdd, prefix, isinstance(dep, ShuffleDependency), i == len(deps) - 1)
    return lines


def _debug_string(rdd: RDDBase, prefix: str = "", is_shuffle: bool | None = None, is_last: bool = False) -> str | list:
    """Spark's ``RDD.toDebugString``, line for line."""
    if is_shuffle is None:  # the first RDD: no "+-"
        part = f"({len(rdd.partitions)})"
        offset = (len(part) - 1) // 2
        next_prefix = " " * offset + "|" + " " * (len(part) - offset)
        own = [f"{part} {d}" if i == 0 else f"{next_prefix} {d}" for i, d in enumerate(_debug_self(rdd))]
        return "\n".join(own + _debug_children(rdd, next_prefix))
    if is_shuffle:
        part = f"({len(rdd.partitions)})"
        offset = (len(part) - 1) // 2
        this_prefix = re.sub(r"\|\s+$", "", prefix)
        next_prefix = this_prefix + ("  " if is_last else "| ") + " " * offset + "|" + " " * (len(part) - offset)
        own = [f"{this_prefix}+-{part} {d}" if i == 0 else f"{next_prefix}{d}" for i, d in enumerate(_debug_self(rdd))]
        return own + _debug_children(rdd, next_prefix)
    return [prefix + d for d in _debug_self(rdd)] + _debug_children(rdd, prefix)
