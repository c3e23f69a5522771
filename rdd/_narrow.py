"""RDDs of the narrow transformations.

``PipelinedRDD`` is PySpark's: a chain of ``map``/``filter``/``mapPartitions``/... over the
same parent is one RDD whose function is the composition of the chain, so a chain is one
``compute`` and nothing is materialized between its steps. A step is not folded into its
parent when the parent is persisted or marked for checkpointing (its records must be kept
at that point), exactly as PySpark's ``_is_pipelinable``.

The others are Spark's: ``UnionRDD`` (a range dependency per parent),
``PartitionerAwareUnionRDD`` (parents sharing a partitioner: partition ``i`` is every
parent's partition ``i``, and the partitioner is kept), ``ZippedPartitionsRDD``,
``CartesianRDD`` and ``CoalescedRDD``. Their partition objects carry the parents' partition
objects, so a task needs nothing but its own partition and the task binary.

The engine may run a stage's tasks on threads sharing one deserialized task binary:
``compute`` never mutates the RDD.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any, Callable, Iterable, Iterator, Sequence

from sparklet.rdd._base import (
    Determinism, NarrowDependency, OneToOneDependency, Partition, RangeDependency, RDDBase, TaskContext,
)
from sparklet.rdd._rdd import RDD
from sparklet.rdd._util import expect_lineage, expect_partition, record_steps_func

__all__ = [
    "PipelinedRDD", "UnionRDD", "PartitionerAwareUnionRDD", "ZippedPartitionsRDD", "CartesianRDD", "CoalescedRDD",
    "make_union",
]


def _chain(first: Callable | None, then: Callable) -> Callable:
    """``then`` after ``first`` (either may be the whole pipeline so far)."""
    if first is None:
        return then

    def pipeline_func(split: int, iterator: Iterator) -> Iterable:
        return then(split, first(split, iterator))

    return pipeline_func


class PipelinedRDD(RDD):
    """``func(split_index, parent_iterator)`` over the parent's partitions, composed with the
    parent's own function when the parent is a pipelinable ``PipelinedRDD``.

    ``determinism`` is this step's own (``INDETERMINATE`` for an unseeded sample);
    ``order_sensitive`` marks steps whose output depends on the order of their input
    (``zipWithIndex``, ``sample``): over an unordered parent they are indeterminate.
    """

    def __init__(self, prev: RDD, func: Callable[[int, Iterator], Iterable] | None, preservesPartitioning: bool = False,
                 *, determinism: Determinism = Determinism.DETERMINATE, order_sensitive: bool = False,
                 record_step: tuple[str, Callable] | None = None) -> None:
        ctx = prev._require_driver("a transformation")
        # A record step (map, filter, flatMap) joins the chain of record steps at the end of
        # the pipeline, and the whole chain runs as one fused loop (rdd/_util.fused_loop).
        # Invariant: _func == base (if any) followed by the fused record steps (if any).
        self._base_func: Callable[[int, Iterator], Iterable] | None = func
        self._record_steps: tuple[tuple[str, Callable], ...] = ()
        pipelined = isinstance(prev, PipelinedRDD) and prev._is_pipelinable()
        if record_step is not None:
            if pipelined:
                self._base_func = prev._base_func
                self._record_steps = prev._record_steps + (record_step,)
                self._prev: RDDBase | None = prev._prev
            else:
                self._base_func = None
                self._record_steps = (record_step,)
                self._prev = prev
            func = _chain(self._base_func, record_steps_func(self._record_steps))
        elif pipelined:
            func = _chain(prev._func, func)
            self._base_func = func
            self._prev = prev._prev
        else:
            self._prev = prev
        self._func: Callable[[int, Iterator], Iterable] | None = func
        if pipelined:
            determinism = determinism.combine(prev._own_determinism)
            order_sensitive = order_sensitive or prev._order_sensitive
        self._own_determinism = determinism
        self._order_sensitive = order_sensitive
        super().__init__(ctx, [OneToOneDependency(expect_lineage(prev, self._prev))])
        self.partitioner = prev.partitioner if preservesPartitioning else None

    def _is_pipelinable(self) -> bool:
        return not (self.is_cached or self._checkpoint_requested or self._checkpointed is not None)

    def _get_partitions(self) -> list[Partition]:
        return list(expect_lineage(self, self._prev).partitions)

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        func = expect_lineage(self, self._func)
        return func(split.index, expect_lineage(self, self._prev).iterator(split, context))

    def record_plan(self, split: Partition, context: TaskContext) -> tuple[Iterator, tuple] | None:
        """What :meth:`iterator` would run, split for a caller that runs the record steps
        itself (the fused map-side combine, ``rdd/_combine.py``): the input of the record
        steps and the steps. ``None`` when there are no record steps or the records come
        from the cache or a checkpoint (then use :meth:`iterator`)."""
        if not self._record_steps or self._checkpointed is not None \
                or (self._storage_level.is_valid and context.env is not None):
            return None
        source: Iterable = expect_lineage(self, self._prev).iterator(split, context)
        if self._base_func is not None:
            source = self._base_func(split.index, source)
        return iter(source), self._record_steps

    @property
    def determinism(self) -> Determinism:
        if self._checkpointed is not None:
            return Determinism.DETERMINATE
        parent = super().determinism
        if self._order_sensitive and parent is Determinism.UNORDERED:
            parent = Determinism.INDETERMINATE
        return parent.combine(self._own_determinism)

    def _clear_lineage(self) -> None:
        self._prev = None
        self._func = None


# -- union ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class UnionPartition(Partition):
    parent_index: int
    parent_split: Partition


class UnionRDD(RDD):
    """The partitions of each parent in turn (a ``RangeDependency`` per parent)."""

    def __init__(self, ctx: Any, rdds: Sequence[RDDBase]) -> None:
        super().__init__(ctx, [])
        self._rdds = list(rdds)

    @property
    def dependencies(self) -> list:
        if self._checkpointed is not None:
            return super().dependencies
        if not self._deps and self._rdds:
            pos = 0
            for rdd in self._rdds:
                n = len(rdd.partitions)
                self._deps.append(RangeDependency(rdd, 0, pos, n))
                pos += n
        return self._deps

    def _get_partitions(self) -> list[Partition]:
        parts: list[Partition] = []
        for k, rdd in enumerate(self._rdds):
            for split in rdd.partitions:
                parts.append(UnionPartition(len(parts), k, split))
        return parts

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, UnionPartition)
        return self._rdds[split.parent_index].iterator(split.parent_split, context)

    def _clear_lineage(self) -> None:
        self._rdds = []


@dataclasses.dataclass(frozen=True, eq=False)
class PartitionerAwareUnionPartition(Partition):
    parent_splits: tuple


class PartitionerAwareUnionRDD(RDD):
    """Parents that share a partitioner: partition ``i`` holds every parent's partition ``i``,
    so the partitioner still holds for the union."""

    def __init__(self, ctx: Any, rdds: Sequence[RDDBase]) -> None:
        super().__init__(ctx, [OneToOneDependency(rdd) for rdd in rdds])
        self._rdds = list(rdds)
        self.partitioner = rdds[0].partitioner

    def _get_partitions(self) -> list[Partition]:
        n = len(self._rdds[0].partitions)
        return [PartitionerAwareUnionPartition(i, tuple(rdd.partitions[i] for rdd in self._rdds)) for i in range(n)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, PartitionerAwareUnionPartition)
        return itertools.chain.from_iterable(
            rdd.iterator(s, context) for rdd, s in zip(self._rdds, split.parent_splits))

    def _clear_lineage(self) -> None:
        self._rdds = []


def make_union(ctx: Any, rdds: Sequence[RDDBase]) -> RDD:
    """Spark's ``SparkContext.union``: partitioner-aware when every parent has the same
    (non-``None``) partitioner, else a plain ``UnionRDD``."""
    partitioner = rdds[0].partitioner
    if partitioner is not None and all(rdd.partitioner == partitioner for rdd in rdds) \
            and len({len(rdd.partitions) for rdd in rdds}) == 1:
        return PartitionerAwareUnionRDD(ctx, rdds)
    return UnionRDD(ctx, rdds)


# -- zip ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class ZippedPartition(Partition):
    split1: Partition
    split2: Partition


class ZippedPartitionsRDD(RDD):
    """Pairs the i-th records of the i-th partitions of two RDDs."""

    def __init__(self, rdd1: RDD, rdd2: RDD) -> None:
        super().__init__(rdd1.ctx, [OneToOneDependency(rdd1), OneToOneDependency(rdd2)])
        self._rdd1: RDDBase | None = rdd1
        self._rdd2: RDDBase | None = rdd2

    def _get_partitions(self) -> list[Partition]:
        rdd1, rdd2 = expect_lineage(self, self._rdd1), expect_lineage(self, self._rdd2)
        return [ZippedPartition(i, a, b) for i, (a, b) in enumerate(zip(rdd1.partitions, rdd2.partitions))]

    def compute(self, split: Partition, context: TaskContext) -> Iterator:
        split = expect_partition(self, split, ZippedPartition)
        rdd1, rdd2 = expect_lineage(self, self._rdd1), expect_lineage(self, self._rdd2)
        return _zip_exactly(rdd1.iterator(split.split1, context), rdd2.iterator(split.split2, context))

    @property
    def determinism(self) -> Determinism:
        result = super().determinism
        if self._checkpointed is None and result is Determinism.UNORDERED:
            return Determinism.INDETERMINATE  # the pairs depend on the order of both sides
        return result

    def _clear_lineage(self) -> None:
        self._rdd1 = self._rdd2 = None


def _zip_exactly(left: Iterator, right: Iterator) -> Iterator[tuple]:
    missing = object()
    right = iter(right)
    for a in left:
        b = next(right, missing)
        if b is missing:
            raise ValueError("Can only zip RDDs with same number of elements in each partition")
        yield (a, b)
    if next(right, missing) is not missing:
        raise ValueError("Can only zip RDDs with same number of elements in each partition")


# -- cartesian ---------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class CartesianPartition(Partition):
    split1: Partition
    split2: Partition


class _CartesianDependency(NarrowDependency):
    def __init__(self, rdd: RDDBase, other_count: int, first: bool) -> None:
        super().__init__(rdd)
        self.other_count, self.first = other_count, first

    def get_parents(self, partition_id: int) -> list[int]:
        if self.first:
            return [partition_id // self.other_count]
        return [partition_id % self.other_count]


class CartesianRDD(RDD):
    """Every pair ``(a, b)``: partition ``i * n2 + j`` pairs partition ``i`` of the first RDD
    with partition ``j`` of the second."""

    def __init__(self, rdd1: RDD, rdd2: RDD) -> None:
        n2 = len(rdd2.partitions)
        super().__init__(rdd1.ctx, [_CartesianDependency(rdd1, n2, True), _CartesianDependency(rdd2, n2, False)])
        self._rdd1: RDDBase | None = rdd1
        self._rdd2: RDDBase | None = rdd2

    def _get_partitions(self) -> list[Partition]:
        rdd1, rdd2 = expect_lineage(self, self._rdd1), expect_lineage(self, self._rdd2)
        pairs = itertools.product(rdd1.partitions, rdd2.partitions)
        return [CartesianPartition(i, a, b) for i, (a, b) in enumerate(pairs)]

    def compute(self, split: Partition, context: TaskContext) -> Iterator:
        split = expect_partition(self, split, CartesianPartition)
        rdd2 = expect_lineage(self, self._rdd2)
        left = expect_lineage(self, self._rdd1).iterator(split.split1, context)

        def pairs() -> Iterator[tuple]:
            right: list | None = None
            for a in left:
                if right is None:  # computed once, and only if the left side has a record
                    right = list(rdd2.iterator(split.split2, context))
                for b in right:
                    yield (a, b)

        return pairs()

    def _clear_lineage(self) -> None:
        self._rdd1 = self._rdd2 = None


# -- coalesce ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class CoalescedPartition(Partition):
    parent_splits: tuple


class _CoalescedDependency(NarrowDependency):
    def __init__(self, rdd: RDDBase, child: "CoalescedRDD") -> None:
        super().__init__(rdd)
        self.child = child

    def get_parents(self, partition_id: int) -> list[int]:
        split = expect_partition(self.child, self.child.partitions[partition_id], CoalescedPartition)
        return [p.index for p in split.parent_splits]


class CoalescedRDD(RDD):
    """Fewer partitions without a shuffle: contiguous runs of parent partitions, grouped by
    position as Spark's ``DefaultPartitionCoalescer`` does when there is no locality."""

    def __init__(self, prev: RDD, numPartitions: int) -> None:
        super().__init__(prev.ctx, [])
        self._deps.append(_CoalescedDependency(prev, self))
        self._prev: RDDBase | None = prev
        self._max_partitions = numPartitions

    def _get_partitions(self) -> list[Partition]:
        parents = expect_lineage(self, self._prev).partitions
        n, m = len(parents), self._max_partitions
        if m >= n:
            groups = [(p,) for p in parents]
        else:
            groups = [tuple(parents[(i * n) // m:((i + 1) * n) // m]) for i in range(m)]
        return [CoalescedPartition(i, g) for i, g in enumerate(groups)]

    def compute(self, split: Partition, context: TaskContext) -> Iterator:
        split = expect_partition(self, split, CoalescedPartition)
        prev = expect_lineage(self, self._prev)
        return itertools.chain.from_iterable(prev.iterator(p, context) for p in split.parent_splits)

    def _clear_lineage(self) -> None:
        self._prev = None
