"""Barrier execution mode (Spark's Project Hydrogen): ``rdd.barrier().mapPartitions(f)``.

A *barrier stage* runs all of its tasks together or not at all, and its tasks may wait
for one another: :meth:`BarrierTaskContext.barrier` blocks until every task of the stage
attempt has called it, :meth:`BarrierTaskContext.allGather` also hands each task every
task's message, ordered by partition. A failure of any task fails the whole stage
attempt, which runs again from scratch (the engine's side: ``runtime/_barrier.py`` and
``runtime/_dag_barrier.py``).

An RDD is a barrier RDD when :class:`RDDBarrier` made it, or when it reaches one through
narrow dependencies (a shuffle ends the barrier): so ``rdd.barrier().mapPartitions(f)
.map(g)`` is one barrier stage, as in Spark. A barrier RDD is never folded into the
pipeline of a later ``map``: it stays in the lineage, so that later RDD can see it.

This module is the user's half and does no I/O: the executor hands each barrier task a
``sync`` callable that asks the driver's ``BarrierCoordinator`` and returns a
``concurrent.futures.Future`` of the reply.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any, Callable, Iterable

from sparklet.rdd._base import RDDBase, ShuffleDependency, TaskContext
from sparklet.rdd._narrow import PipelinedRDD

__all__ = ["RDDBarrier", "BarrierPipelinedRDD", "BarrierTaskContext", "BarrierTaskInfo", "BarrierSyncError",
           "is_barrier"]

_WAIT_SLICE = 0.1  # seconds: a kill lands on a task thread between two waits


class BarrierSyncError(RuntimeError):
    """A ``barrier()`` or ``allGather()`` call could not complete (timeout, mismatched
    calls across tasks, or the stage attempt ended meanwhile)."""


def is_barrier(rdd: RDDBase) -> bool:
    """Whether ``rdd`` is a barrier RDD or reaches one through narrow dependencies
    (Spark's ``RDD.isBarrier``). Iterative: lineage can be deep."""
    seen = {id(rdd)}
    stack = [rdd]
    while stack:
        current = stack.pop()
        if getattr(current, "_from_barrier", False):
            return True
        for dep in current.dependencies:
            if not isinstance(dep, ShuffleDependency) and id(dep.rdd) not in seen:
                seen.add(id(dep.rdd))
                stack.append(dep.rdd)
    return False


class BarrierPipelinedRDD(PipelinedRDD):
    """The result of :meth:`RDDBarrier.mapPartitions`: a pipelined step marked barrier."""

    _from_barrier = True

    def _is_pipelinable(self) -> bool:
        return False  # later steps must keep this RDD in their lineage to know they are barrier


class RDDBarrier:
    """Wraps an RDD under a barrier stage, which forces Spark to launch tasks of this stage
    together. :class:`RDDBarrier` instances are created by :meth:`RDD.barrier`.

    >>> rdd = sc.parallelize(range(4), 2)
    >>> type(rdd.barrier()).__name__
    'RDDBarrier'
    """

    def __init__(self, rdd: RDDBase) -> None:
        self.rdd = rdd

    def mapPartitions(self, f: Callable[[Iterable], Iterable], preservesPartitioning: bool = False) -> RDDBase:
        """Returns a new RDD by applying a function to each partition of the wrapped RDD,
        where tasks are launched together in a barrier stage. The interface is the same as
        :meth:`RDD.mapPartitions`.

        >>> def f(iterator):
        ...     BarrierTaskContext.get().barrier()
        ...     yield sum(iterator)
        >>> sc.parallelize([1, 2, 3, 4], 2).barrier().mapPartitions(f).collect()
        [3, 7]
        """

        def func(_: int, iterator: Iterable) -> Iterable:
            return f(iterator)

        return BarrierPipelinedRDD(self.rdd, func, preservesPartitioning)

    def mapPartitionsWithIndex(self, f: Callable[[int, Iterable], Iterable],
                               preservesPartitioning: bool = False) -> RDDBase:
        """Returns a new RDD by applying a function to each partition of the wrapped RDD,
        while tracking the index of the original partition. And all tasks are launched
        together in a barrier stage. The interface is the same as
        :meth:`RDD.mapPartitionsWithIndex`.

        >>> def f(index, iterator):
        ...     yield BarrierTaskContext.get().allGather(str(index))
        >>> sc.parallelize(range(3), 3).barrier().mapPartitionsWithIndex(f).collect()
        [['0', '1', '2'], ['0', '1', '2'], ['0', '1', '2']]
        """
        return BarrierPipelinedRDD(self.rdd, f, preservesPartitioning)


class BarrierTaskInfo:
    """Carries all task infos of a barrier task: ``address`` is where its executor listens
    (its host when the executor lives in the driver's process).

    >>> BarrierTaskInfo("127.0.0.1:40123").address
    '127.0.0.1:40123'
    """

    def __init__(self, address: str) -> None:
        self.address = address

    def __repr__(self) -> str:
        return f"BarrierTaskInfo({self.address!r})"


class BarrierTaskContext(TaskContext):
    """A :class:`TaskContext` with extra contextual info and tooling for tasks in a barrier
    stage. Use :meth:`BarrierTaskContext.get` to obtain the barrier context for a running
    barrier task.

    >>> def f(iterator):
    ...     context = BarrierTaskContext.get()
    ...     yield (context.partitionId(), len(context.getTaskInfos()))
    >>> sc.parallelize(range(2), 2).barrier().mapPartitions(f).collect()
    [(0, 2), (1, 2)]
    """

    def __init__(self, *args: Any, addresses: tuple[str, ...] = (),
                 sync: Callable[[str, str, int], concurrent.futures.Future] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._addresses = tuple(addresses)
        self._sync = sync
        # Invariant: how many barrier()/allGather() calls of this task completed; every
        # task of the attempt makes the same calls, so this names the call on the coordinator.
        self._barrier_epoch = 0

    @classmethod
    def get(cls) -> "BarrierTaskContext":  # type: ignore[override]
        """The currently active :class:`BarrierTaskContext`; raises ``RuntimeError`` outside
        a barrier stage (and on the driver).

        >>> BarrierTaskContext.get()
        Traceback (most recent call last):
            ...
        RuntimeError: It is not in a barrier stage
        """
        context = TaskContext.get()
        if not isinstance(context, BarrierTaskContext):
            raise RuntimeError("It is not in a barrier stage")
        return context

    def barrier(self) -> None:
        """Sets a global barrier and waits until all tasks in this stage hit this barrier.
        Similar to ``MPI_Barrier`` in MPI, this blocks until all tasks in the same stage
        attempt have reached this routine. Every task must make the same number of
        ``barrier()`` and ``allGather()`` calls, in the same order, in all code branches;
        otherwise the call fails (``barrier.sync.timeout``, or mismatched calls).

        >>> def f(iterator):
        ...     BarrierTaskContext.get().barrier()
        ...     return iterator
        >>> sc.parallelize(range(4), 2).barrier().mapPartitions(f).count()
        4
        """
        self._call("barrier", "")

    def allGather(self, message: str = "") -> list[str]:
        """Blocks until all tasks in the same stage have reached this routine. Each task
        passes in a message and returns with a list of all the messages passed in by each
        of those tasks, ordered by partition id.

        >>> def f(index, iterator):
        ...     yield BarrierTaskContext.get().allGather(f"p{index}")
        >>> sc.parallelize(range(2), 2).barrier().mapPartitionsWithIndex(f).collect()[0]
        ['p0', 'p1']
        """
        if not isinstance(message, str):
            raise TypeError(f"Argument `message` should be a str, got {type(message).__name__}")
        return self._call("allGather", message)

    def getTaskInfos(self) -> list[BarrierTaskInfo]:
        """Returns :class:`BarrierTaskInfo` for all tasks in this barrier stage, ordered by
        partition id.

        >>> def f(iterator):
        ...     yield [type(info).__name__ for info in BarrierTaskContext.get().getTaskInfos()]
        >>> sc.parallelize(range(2), 2).barrier().mapPartitions(f).collect()[0]
        ['BarrierTaskInfo', 'BarrierTaskInfo']
        """
        return [BarrierTaskInfo(address) for address in self._addresses]

    def _call(self, method: str, message: str) -> Any:
        if self._sync is None:
            raise RuntimeError(f"Not supported to call {method}() before initialize BarrierTaskContext.")
        future = self._sync(method, message, self._barrier_epoch)
        while not future.done():  # wait in slices: a kill (an exception raised in this thread) lands between them
            if self.killed:
                future.cancel()
                raise BarrierSyncError(f"task {self._task_attempt_id} was killed while in {method}()")
            concurrent.futures.wait([future], timeout=_WAIT_SLICE)
        try:
            ok, messages, error = future.result()
        except Exception as exc:  # the coordinator is unreachable (stopped, connection lost)
            raise BarrierSyncError(f"{method}() of task {self._task_attempt_id} (partition {self._partition_id}) "
                                   f"failed: {type(exc).__name__}: {exc}") from exc
        if not ok:
            raise BarrierSyncError(error)
        self._barrier_epoch += 1
        return list(messages)

    def __repr__(self) -> str:
        return (f"BarrierTaskContext(stage={self._stage_id}.{self._stage_attempt}, partition={self._partition_id}, "
                f"tasks={len(self._addresses)})")
