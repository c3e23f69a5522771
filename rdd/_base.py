"""The RDD abstraction: partitions, dependencies, compute, lineage.

An RDD is a description, not data: a list of partitions, the dependencies on its parents,
and ``compute(split, task_context)`` that yields the records of one partition. The driver
keeps the graph; a stage's tasks ship it (pickled once per stage as the *task binary*)
together with one partition object each (pickled per task, so a ``parallelize`` slice
travels only with the task that needs it). As in Spark, ``_partitions`` is transient:
partition objects carry whatever computing their lineage needs (a union partition wraps
its parent's partition, and so on).

Dependencies are narrow (one-to-one, range, or any ``NarrowDependency`` whose
``get_parents`` names parent partitions) or shuffle. A shuffle dependency cuts the graph
into stages; the shuffle issue fills in its machinery, the stage model already uses it.

Every RDD declares how deterministic its output is (``Determinism``): re-running a
determinate partition gives the same records in the same order; unordered, the same
multiset; indeterminate, possibly different records (a round-robin ``repartition``, a
``sample`` without a fixed seed). Recovery uses this to know what a re-run may change.

The context contract (what an RDD needs from a context) is :class:`ContextLike`.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import threading
from typing import TYPE_CHECKING, Any, Callable, Coroutine, Iterable, Iterator, Protocol, Sequence

if TYPE_CHECKING:
    from sparklet.rdd._storage import StorageLevel

__all__ = [
    "Determinism", "Partition", "Dependency", "NarrowDependency", "OneToOneDependency", "RangeDependency",
    "ShuffleDependency", "TaskContext", "ContextLike", "RDDBase", "ActionInLoopError",
]


class Determinism(enum.Enum):
    DETERMINATE = "determinate"
    UNORDERED = "unordered"
    INDETERMINATE = "indeterminate"

    def combine(self, other: "Determinism") -> "Determinism":
        order = [Determinism.DETERMINATE, Determinism.UNORDERED, Determinism.INDETERMINATE]
        return max(self, other, key=order.index)


@dataclasses.dataclass(frozen=True)
class Partition:
    """One slice of an RDD. Subclasses add what computing it needs."""

    index: int


class Dependency:
    def __init__(self, rdd: "RDDBase") -> None:
        self.rdd = rdd


class NarrowDependency(Dependency, abc.ABC):
    """Each child partition depends on a few parent partitions."""

    @abc.abstractmethod
    def get_parents(self, partition_id: int) -> list[int]:
        """The parent partitions child partition ``partition_id`` reads."""


class OneToOneDependency(NarrowDependency):
    def get_parents(self, partition_id: int) -> list[int]:
        return [partition_id]


class RangeDependency(NarrowDependency):
    """Child partitions ``[out_start, out_start + length)`` are parent partitions
    ``[in_start, in_start + length)`` (how a union sees each parent)."""

    def __init__(self, rdd: "RDDBase", in_start: int, out_start: int, length: int) -> None:
        super().__init__(rdd)
        self.in_start, self.out_start, self.length = in_start, out_start, length

    def get_parents(self, partition_id: int) -> list[int]:
        if self.out_start <= partition_id < self.out_start + self.length:
            return [partition_id - self.out_start + self.in_start]
        return []


class ShuffleDependency(Dependency):
    """The parent's records are redistributed by ``partitioner`` (and combined by
    ``aggregator``, map side too when ``map_side_combine``). A stage boundary.

    ``key_ordering``, when set, is a key function: each reduce partition is read sorted by
    ``key_ordering(key)``, ascending unless ``ascending`` is false."""

    def __init__(self, rdd: "RDDBase", partitioner: Any, aggregator: Any = None, map_side_combine: bool = False,
                 key_ordering: Callable[[Any], Any] | None = None, ascending: bool = True) -> None:
        super().__init__(rdd)
        self.partitioner = partitioner
        self.aggregator = aggregator
        self.map_side_combine = map_side_combine
        self.key_ordering = key_ordering
        self.ascending = ascending
        self.shuffle_id = rdd.ctx._new_shuffle_id()


class TaskContext:
    """What a running task knows about itself (PySpark's ``TaskContext``).

    ``TaskContext.get()`` inside a task returns it; on the driver it returns ``None``.
    ``env`` is the executor's environment (block manager, broadcasts, accumulators).
    """

    _local = threading.local()

    def __init__(self, stage_id: int, stage_attempt: int, partition_id: int, attempt_number: int,
                 task_attempt_id: int, local_properties: dict[str, str] | None = None, env: Any = None,
                 cpus: int = 1) -> None:
        self._stage_id = stage_id
        self._stage_attempt = stage_attempt
        self._partition_id = partition_id
        self._attempt_number = attempt_number
        self._task_attempt_id = task_attempt_id
        self._local_properties = dict(local_properties or {})
        self._cpus = cpus
        self.env = env
        self.metrics: dict[str, int] = {"records_read": 0, "records_written": 0}
        self.killed = False  # set when the task is being killed; long computations may poll it
        # accumulator id -> (param, partial value) added by this attempt (see runtime/_shared.py)
        self._accum_updates: dict[int, tuple[Any, Any]] = {}

    @classmethod
    def get(cls) -> "TaskContext | None":
        return getattr(cls._local, "current", None)

    @classmethod
    def _set(cls, context: "TaskContext | None") -> None:
        cls._local.current = context

    def stageId(self) -> int:
        return self._stage_id

    def stageAttemptNumber(self) -> int:
        return self._stage_attempt

    def partitionId(self) -> int:
        return self._partition_id

    def attemptNumber(self) -> int:
        return self._attempt_number

    def taskAttemptId(self) -> int:
        return self._task_attempt_id

    def getLocalProperty(self, key: str) -> str | None:
        return self._local_properties.get(key)

    def cpus(self) -> int:
        return self._cpus

    def resources(self) -> dict:
        return {}

    def __repr__(self) -> str:
        return (f"TaskContext(stage={self._stage_id}.{self._stage_attempt}, partition={self._partition_id}, "
                f"attempt={self._attempt_number})")


class ActionInLoopError(RuntimeError):
    """A blocking action was called from inside a running event loop."""


class ContextLike(Protocol):
    """What RDDs need from a context (``sparklet.Context`` and the test-only serial one)."""

    defaultParallelism: int

    def _new_rdd_id(self) -> int: ...
    def _new_shuffle_id(self) -> int: ...

    async def run_job_async(self, rdd: "RDDBase", func: Callable[[TaskContext, Iterator], Any],
                            partitions: Sequence[int] | None = None) -> list[Any]:
        """Run ``func`` on each listed partition (default: all) of ``rdd``; results in
        partition order. Cancelling the awaiting task cancels the job."""
        ...

    def _block(self, coroutine: Coroutine) -> Any:
        """Run an action's coroutine to completion from synchronous code."""
        ...

    async def _run_on_driver(self, fn: Callable, *args: Any) -> Any:
        """Run user code that the driver must run (merging results) off the event loop."""
        ...



class RDDBase:
    """Partitions, dependencies, compute, persistence and lineage. Operations live in the
    mixins that make up :class:`sparklet.rdd.RDD`."""

    def __init__(self, ctx: ContextLike, deps: Sequence[Dependency] = ()) -> None:
        self.ctx = ctx
        self.id = ctx._new_rdd_id()
        self._deps = list(deps)
        self._partitions: list[Partition] | None = None
        self._name: str | None = None
        self.partitioner: Any = None
        from sparklet.rdd._storage import StorageLevel

        self._storage_level: StorageLevel = StorageLevel.NONE
        self._checkpoint_requested = False
        self._checkpointed: "RDDBase | None" = None  # the checkpoint RDD that replaced our lineage

    # -- what a subclass provides ---------------------------------------------------------
    def _get_partitions(self) -> list[Partition]:
        raise NotImplementedError(f"{type(self).__name__} must define _get_partitions")

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        raise NotImplementedError(f"{type(self).__name__} must define compute")

    def _get_preferred_locations(self, split: Partition) -> list[str]:
        return []

    @property
    def determinism(self) -> Determinism:
        """Default: the least deterministic of the parents' (a source is determinate)."""
        result = Determinism.DETERMINATE
        for dep in self.dependencies:
            parent = dep.rdd.determinism
            if isinstance(dep, ShuffleDependency) and parent is Determinism.DETERMINATE and dep.aggregator is None:
                parent = Determinism.UNORDERED  # fetch order varies
            result = result.combine(parent)
        return result

    # -- the graph ---------------------------------------------------------------------------
    @property
    def partitions(self) -> list[Partition]:
        if self._checkpointed is not None:
            return self._checkpointed.partitions
        if self._partitions is None:
            parts = self._get_partitions()
            for i, part in enumerate(parts):
                if part.index != i:
                    raise AssertionError(f"{type(self).__name__}: partition {i} has index {part.index}")
            self._partitions = parts
        return self._partitions

    @property
    def dependencies(self) -> list[Dependency]:
        if self._checkpointed is not None:
            return [OneToOneDependency(self._checkpointed)]
        return self._deps

    def getNumPartitions(self) -> int:
        """Returns the number of partitions in RDD.

        >>> sc.parallelize([2, 3, 4], 2).getNumPartitions()
        2
        """
        return len(self.partitions)

    def preferred_locations(self, split: Partition) -> list[str]:
        if self._checkpointed is not None:
            return self._checkpointed.preferred_locations(split)
        return self._get_preferred_locations(split)

    def iterator(self, split: Partition, context: TaskContext) -> Iterator:
        """The records of ``split``: from the cache if persisted, from the checkpoint if
        checkpointed, else computed from the parents."""
        if self._storage_level.is_valid and context.env is not None:
            return context.env.get_or_compute(self, split, context)
        return self.compute_or_read_checkpoint(split, context)

    def compute_or_read_checkpoint(self, split: Partition, context: TaskContext) -> Iterator:
        """The records of ``split`` without looking in the cache: read from the checkpoint if
        checkpointed, else computed. What an environment's ``get_or_compute`` calls on a miss."""
        if self._checkpointed is not None:
            return iter(self._checkpointed.iterator(split, context))
        return iter(self.compute(split, context))

    # -- naming -------------------------------------------------------------------------------
    def name(self) -> str | None:
        """Return the name of this RDD."""
        return self._name

    def setName(self, name: str) -> "RDDBase":
        """Assign a name to this RDD.

        >>> rdd1 = sc.parallelize([1, 2])
        >>> rdd1.setName('RDD1').name()
        'RDD1'
        """
        self._name = name
        return self

    # -- pickling: the graph travels, the context and the partition list do not --------------------
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["ctx"] = None
        state["_partitions"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)

    def _require_driver(self, what: str) -> ContextLike:
        if self.ctx is None:
            raise RuntimeError(
                f"{what} was called on an RDD inside a task. RDD transformations and actions can only be "
                "invoked by the driver, not inside of other transformations (see SPARK-5063)."
            )
        return self.ctx

    def __repr__(self) -> str:
        label = f"{self._name} " if self._name else ""
        return f"{label}{type(self).__name__}[{self.id}]"
