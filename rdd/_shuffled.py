"""RDDs that read a shuffle: ``ShuffledRDD``, ``CoGroupedRDD``, and the map side of
``coalesce(shuffle=True)``.

**The contract with the runtime.** A shuffled RDD has one :class:`ShuffleDependency` per
shuffled parent and computes reduce partition ``i`` with
``context.env.shuffle_read(dep, i, context)``: an iterator of ``(key, value)`` records,
already combined (one ``(key, combiner)`` per key) when ``dep.aggregator`` is set, already
sorted by ``dep.key_ordering(key)`` (descending when ``dep.ascending`` is false) when that is
set. The map side (the runtime's) sends each record ``(k, v)`` of the parent to reduce
partition ``dep.partitioner(k)``, combining values per key first when
``dep.map_side_combine``. A parent record that is not a pair fails the task with Python's
own unpacking error, as PySpark's ``for k, v in iterator`` does. The reference semantics
are ``SerialEnv.shuffle_read`` in ``tests/rdd_support.py``.

**Aggregators.** ``dep.aggregator`` is any object with ``createCombiner``, ``mergeValue`` and
``mergeCombiners`` (PySpark's ``Aggregator``); :class:`Combiners` is this package's.

**Co-partitioning.** A ``CoGroupedRDD`` reads an input whose partitioner equals its own
through a one-to-one dependency (Spark's rule): only the other inputs are shuffled.

**Determinism** (Spark's ``getOutputDeterministicLevel``). Reduce tasks fetch map outputs
in no fixed order, so a shuffle's output is ``UNORDERED`` even over a determinate parent,
unless it is both aggregated and ordered (unique keys in a fixed order: ``DETERMINATE``);
over an ``INDETERMINATE`` parent it is ``INDETERMINATE``. ``coalesce(shuffle=True)`` deals
records round-robin as PySpark does, which alone would make a re-run of a map task send
different records to each reduce partition (``INDETERMINATE``); here each map task first
puts its records in a canonical order (by their pickled bytes), then deals from a start
seeded by its partition index, so a re-run over the same multiset sends exactly the same
records to each reduce partition and the result is ``UNORDERED``.
"""

from __future__ import annotations

import dataclasses
import pickle
import random
import zlib
from typing import Any, Callable, Iterable, Iterator, Sequence

import cloudpickle

from sparklet.actors import SparkletInternalError
from sparklet.rdd._base import (
    Determinism, Dependency, OneToOneDependency, Partition, RDDBase, ShuffleDependency, TaskContext,
)
from sparklet.rdd._partitioner import HashPartitioner
from sparklet.rdd._rdd import RDD
from sparklet.rdd._util import expect_lineage, expect_partition, fail_on_stopiteration

__all__ = [
    "Combiners", "ResultIterable", "ShuffledRDD", "CoGroupedRDD", "CanonicalRoundRobinRDD",
    "combine_values_by_key", "combine_combiners_by_key", "shuffle_output_determinism", "canonical_round_robin",
    "repartition",
]


@dataclasses.dataclass(frozen=True)
class Combiners:
    """The three functions of a combine-by-key (PySpark's ``Aggregator``): what a
    ``ShuffleDependency`` carries as its ``aggregator``. User functions that raise
    ``StopIteration`` fail the task instead of silently ending a loop."""

    createCombiner: Callable[[Any], Any]
    mergeValue: Callable[[Any, Any], Any]
    mergeCombiners: Callable[[Any, Any], Any]

    @classmethod
    def of(cls, createCombiner: Callable, mergeValue: Callable, mergeCombiners: Callable) -> "Combiners":
        return cls(fail_on_stopiteration(createCombiner), fail_on_stopiteration(mergeValue),
                   fail_on_stopiteration(mergeCombiners))


def combine_values_by_key(aggregator: Any, records: Iterable) -> Iterator[tuple]:
    """``(key, value)`` records to one ``(key, combiner)`` per key, in first-seen order."""
    create, merge = aggregator.createCombiner, aggregator.mergeValue
    combiners: dict = {}
    for k, v in records:
        if k in combiners:
            combiners[k] = merge(combiners[k], v)
        else:
            combiners[k] = create(v)
    return iter(combiners.items())


def combine_combiners_by_key(aggregator: Any, records: Iterable) -> Iterator[tuple]:
    """``(key, combiner)`` records to one ``(key, combiner)`` per key, in first-seen order."""
    merge = aggregator.mergeCombiners
    combiners: dict = {}
    for k, c in records:
        if k in combiners:
            combiners[k] = merge(combiners[k], c)
        else:
            combiners[k] = c
    return iter(combiners.items())


class ResultIterable:
    """The values of one key after a ``groupByKey`` or ``cogroup`` (PySpark's class): a
    sized iterable over a list, which unlike an iterator pickles.

    >>> r = ResultIterable([1, 2])
    >>> len(r), list(r), bool(ResultIterable([]))
    (2, [1, 2], False)
    """

    def __init__(self, data: Sequence) -> None:
        self.data = data
        self.index = 0
        self.maxindex = len(data)

    def __iter__(self) -> Iterator:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        return f"ResultIterable({list(self.data)!r})"


def shuffle_output_determinism(dep: ShuffleDependency) -> Determinism:
    """What reading ``dep`` gives (Spark's rule, see the module notes)."""
    parent = dep.rdd.determinism
    if parent is Determinism.INDETERMINATE:
        return Determinism.INDETERMINATE
    if dep.aggregator is not None and dep.key_ordering is not None:
        return Determinism.DETERMINATE
    return Determinism.UNORDERED


def _dependency_determinism(dep: Dependency) -> Determinism:
    if isinstance(dep, ShuffleDependency):
        return shuffle_output_determinism(dep)
    return dep.rdd.determinism


def _shuffle_read(rdd: RDDBase, dep: ShuffleDependency, index: int, context: TaskContext) -> Iterator:
    env = context.env if context is not None else None
    if env is None or not hasattr(env, "shuffle_read"):
        raise SparkletInternalError(
            f"{type(rdd).__name__}[{int(rdd.id)}] was computed without an environment that reads shuffles "
            f"(task context {context!r})")
    return env.shuffle_read(dep, index, context)


# -- ShuffledRDD ---------------------------------------------------------------------------------

class ShuffledRDD(RDD):
    """The parent's records redistributed by ``partitioner``: one partition per reduce
    partition, each read from the shuffle (Spark's ``ShuffledRDD``). The partitioner holds
    for the result."""

    def __init__(self, prev: RDD, partitioner: Any, aggregator: Any = None, map_side_combine: bool = False,
                 key_ordering: Callable[[Any], Any] | None = None, ascending: bool = True) -> None:
        ctx = prev._require_driver("a transformation")
        if map_side_combine and aggregator is None:
            raise SparkletInternalError("a map-side combine needs an aggregator")
        super().__init__(ctx, [ShuffleDependency(prev, partitioner, aggregator, map_side_combine, key_ordering,
                                                 ascending)])
        self.partitioner = partitioner

    @property
    def shuffle_dependency(self) -> ShuffleDependency:
        dep = self._deps[0] if self._deps else None
        if not isinstance(dep, ShuffleDependency):
            raise SparkletInternalError(f"{self!r} has no shuffle dependency (was it checkpointed?)")
        return dep

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(self.partitioner.numPartitions)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        return _shuffle_read(self, self.shuffle_dependency, split.index, context)

    @property
    def determinism(self) -> Determinism:
        if self._checkpointed is not None:
            return Determinism.DETERMINATE
        return shuffle_output_determinism(self.shuffle_dependency)

    def _clear_lineage(self) -> None:
        pass  # the dependency list, the only reference to the parent, is dropped by the checkpoint


# -- CoGroupedRDD --------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class CoGroupPartition(Partition):
    narrow_splits: tuple  # per input: its partition ``index`` when read one-to-one, else None


class CoGroupedRDD(RDD):
    """``(key, (values of input 0, values of input 1, ...))`` with each list a
    :class:`ResultIterable`, one record per key present in any input (Spark's
    ``CoGroupedRDD``). Inputs already partitioned by ``partitioner`` are read one-to-one,
    the others through a shuffle without map-side combining."""

    def __init__(self, rdds: Sequence[RDD], partitioner: Any) -> None:
        if not rdds:
            raise SparkletInternalError("a cogroup needs at least one input")
        ctx = rdds[0]._require_driver("a transformation")
        deps: list[Dependency] = []
        for rdd in rdds:
            if rdd.partitioner == partitioner and rdd.getNumPartitions() == partitioner.numPartitions:
                deps.append(OneToOneDependency(rdd))
            else:
                deps.append(ShuffleDependency(rdd, partitioner))
        super().__init__(ctx, deps)
        self.partitioner = partitioner

    def _get_partitions(self) -> list[Partition]:
        parts: list[Partition] = []
        for i in range(self.partitioner.numPartitions):
            narrow = tuple(None if isinstance(dep, ShuffleDependency) else dep.rdd.partitions[i] for dep in self._deps)
            parts.append(CoGroupPartition(i, narrow))
        return parts

    def compute(self, split: Partition, context: TaskContext) -> Iterator:
        split = expect_partition(self, split, CoGroupPartition)
        deps = self._deps
        if not deps:
            raise SparkletInternalError(f"{self!r} was computed from its lineage after a checkpoint dropped it")
        width = len(deps)
        groups: dict = {}
        for n, dep in enumerate(deps):
            if isinstance(dep, ShuffleDependency):
                records: Iterable = _shuffle_read(self, dep, split.index, context)
            else:
                records = dep.rdd.iterator(split.narrow_splits[n], context)
            for k, v in records:
                bufs = groups.get(k)
                if bufs is None:
                    bufs = groups[k] = [[] for _ in range(width)]
                bufs[n].append(v)
        return ((k, tuple(ResultIterable(b) for b in bufs)) for k, bufs in groups.items())

    @property
    def determinism(self) -> Determinism:
        if self._checkpointed is not None:
            return Determinism.DETERMINATE
        result = Determinism.DETERMINATE
        for dep in self._deps:
            result = result.combine(_dependency_determinism(dep))
        return result

    def _clear_lineage(self) -> None:
        pass  # the dependencies, the only references to the parents, are dropped by the checkpoint


# -- coalesce(shuffle=True) ----------------------------------------------------------------------

def _canonical_bytes(record: Any) -> bytes:
    try:
        return pickle.dumps(record, protocol=5)
    except Exception:  # lambdas, local classes: what the engine would pickle them with
        return cloudpickle.dumps(record, protocol=5)


def canonical_round_robin(index: int, num_partitions: int, records: Iterable) -> Iterator[tuple]:
    """The map side of ``coalesce(shuffle=True)`` for parent partition ``index``: the records
    in canonical order (by ``(crc32, bytes)`` of their pickles, so independent of the order
    they came in), each keyed by its target partition, dealt round-robin from a start seeded
    by ``index`` (Spark's ``distributePartition``, made repeatable).

    >>> list(canonical_round_robin(0, 2, ["a", "b", "c"])) == list(canonical_round_robin(0, 2, ["c", "a", "b"]))
    True
    """
    keyed = []
    for record in records:
        data = _canonical_bytes(record)
        keyed.append((zlib.crc32(data), data, record))
    keyed.sort(key=lambda entry: (entry[0], entry[1]))
    position = random.Random(index).randrange(num_partitions)
    for _, _, record in keyed:
        yield position, record
        position = (position + 1) % num_partitions


class CanonicalRoundRobinRDD(RDD):
    """Each parent record keyed by its target partition (:func:`canonical_round_robin`).
    The output is determinate whenever the parent's multiset per partition is, that is
    unless the parent is indeterminate."""

    def __init__(self, prev: RDD, num_partitions: int) -> None:
        ctx = prev._require_driver("coalesce")
        super().__init__(ctx, [OneToOneDependency(prev)])
        self._prev: RDDBase | None = prev
        self._num_partitions = num_partitions

    def _get_partitions(self) -> list[Partition]:
        return list(expect_lineage(self, self._prev).partitions)

    def compute(self, split: Partition, context: TaskContext) -> Iterator:
        records = expect_lineage(self, self._prev).iterator(split, context)
        return canonical_round_robin(split.index, self._num_partitions, records)

    @property
    def determinism(self) -> Determinism:
        if self._checkpointed is None and super().determinism is Determinism.INDETERMINATE:
            return Determinism.INDETERMINATE
        return Determinism.DETERMINATE

    def _clear_lineage(self) -> None:
        self._prev = None


def repartition(rdd: RDD, numPartitions: int) -> RDD:
    """``coalesce(numPartitions, shuffle=True)``: deal, shuffle by target partition, drop
    the target keys (Spark's plan, with the repeatable deal above)."""
    keyed = CanonicalRoundRobinRDD(rdd, numPartitions)
    return ShuffledRDD(keyed, HashPartitioner(numPartitions)).values()
