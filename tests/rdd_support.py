"""A serial, in-process context for the RDD tests (the ``ContextLike`` contract).

``run_job_async`` computes each partition in the calling thread, one after the other, but
first round-trips what the real engine ships through ``cloudpickle``: the task binary
``(rdd, func)`` once per job (as once per stage) and each partition object once per task,
and the task's result on the way back. So an RDD that would not pickle, or that needs
driver-only state inside a task, fails here as it would on an executor.

After each job, RDDs of the job's lineage that asked to be checkpointed are checkpointed
(Spark's rule: the first marked RDD on each path from the job's RDD).
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable, Coroutine, Iterator, Sequence

import cloudpickle

from sparklet.rdd import _sources
from sparklet.rdd._base import ActionInLoopError, RDDBase, TaskContext


class SerialEnv:
    """Stands in for the executor's block manager: computed partitions of persisted RDDs are
    kept in a dict keyed by ``(rdd id, partition index)``."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[int, int], list] = {}
        self.computed: list[tuple[int, int]] = []  # cache misses, in order

    def get_or_compute(self, rdd: RDDBase, split: Any, context: TaskContext) -> Iterator:
        key = (int(rdd.id), split.index)
        if key not in self.blocks:
            self.computed.append(key)
            self.blocks[key] = list(rdd.compute_or_read_checkpoint(split, context))
        return iter(self.blocks[key])

    def drop_rdd(self, rdd_id: int) -> None:
        for key in [k for k in self.blocks if k[0] == rdd_id]:
            del self.blocks[key]


class SerialContext:
    """The ContextLike contract, serially. ``jobs`` records ``(rdd id, partitions)`` per job."""

    def __init__(self, default_parallelism: int = 4, checkpoint_dir: str | None = None) -> None:
        self.defaultParallelism = default_parallelism
        self.checkpoint_dir = checkpoint_dir
        self.env = SerialEnv()
        self.jobs: list[tuple[int, list[int]]] = []
        self.persisted: dict[int, Any] = {}
        self.unpersisted: list[tuple[int, bool]] = []
        self.checkpoint_requests: list[RDDBase] = []
        self.driver_calls = 0
        self.properties: dict[str, str] = {}
        self._rdd_ids = itertools.count()
        self._shuffle_ids = itertools.count()
        self._task_ids = itertools.count()

    # -- the contract -----------------------------------------------------------------------
    def _new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    def _new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)

    def _local_properties(self) -> dict[str, str]:
        return dict(self.properties)

    def _persist(self, rdd: RDDBase, level: Any) -> None:
        self.persisted[int(rdd.id)] = level

    async def _unpersist_async(self, rdd: RDDBase, blocking: bool) -> None:
        self.unpersisted.append((int(rdd.id), blocking))
        self.persisted.pop(int(rdd.id), None)
        self.env.drop_rdd(int(rdd.id))

    def _request_checkpoint(self, rdd: RDDBase) -> None:
        self.checkpoint_requests.append(rdd)

    async def _run_on_driver(self, fn: Callable, *args: Any) -> Any:
        self.driver_calls += 1
        return fn(*args)

    def _block(self, coroutine: Coroutine) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coroutine)
        coroutine.close()
        raise ActionInLoopError(
            f"a blocking action was called inside a running event loop; await {coroutine.__qualname__}() instead")

    async def run_job_async(self, rdd: RDDBase, func: Callable[[TaskContext, Iterator], Any],
                            partitions: Sequence[int] | None = None) -> list[Any]:
        parts = rdd.partitions
        ids = list(range(len(parts))) if partitions is None else list(partitions)
        for p in ids:
            if not 0 <= p < len(parts):
                raise ValueError(f"partition {p} out of range for {rdd!r} with {len(parts)} partitions")
        self.jobs.append((int(rdd.id), ids))
        stage_id = len(self.jobs) - 1
        binary = cloudpickle.dumps((rdd, func))
        task_rdd, task_func = cloudpickle.loads(binary)
        results = []
        for p in ids:
            split = cloudpickle.loads(cloudpickle.dumps(parts[p]))
            context = TaskContext(stage_id, 0, p, 0, next(self._task_ids), self._local_properties(), env=self.env)
            TaskContext._set(context)
            try:
                result = task_func(context, task_rdd.iterator(split, context))
            finally:
                TaskContext._set(None)
            results.append(cloudpickle.loads(cloudpickle.dumps(result)))
            await asyncio.sleep(0)  # a cancellation point between tasks
        await self._checkpoint_after_job(rdd)
        return results

    async def _checkpoint_after_job(self, rdd: RDDBase) -> None:
        requested = {id(r) for r in self.checkpoint_requests}
        if not requested:
            return
        seen: set[int] = set()
        stack = [rdd]
        while stack:
            r = stack.pop()
            if id(r) in seen:
                continue
            seen.add(id(r))
            if id(r) in requested and getattr(r, "_checkpoint_pending", lambda: False)():
                await r._do_checkpoint()  # type: ignore[attr-defined]
                continue
            stack.extend(dep.rdd for dep in r.dependencies)

    # -- the Context's source methods, for the doctests -----------------------------------------
    def setCheckpointDir(self, dirName: str | None) -> None:
        self.checkpoint_dir = dirName

    def parallelize(self, c: Any, numSlices: int | None = None) -> Any:
        return _sources.parallelize(self, c, numSlices)

    def range(self, start: int, end: int | None = None, step: int = 1, numSlices: int | None = None) -> Any:
        return _sources.range(self, start, end, step, numSlices)

    def emptyRDD(self) -> Any:
        return _sources.emptyRDD(self)

    def textFile(self, name: str, minPartitions: int | None = None, use_unicode: bool = True) -> Any:
        return _sources.textFile(self, name, minPartitions, use_unicode)

    def wholeTextFiles(self, path: str, minPartitions: int | None = None, use_unicode: bool = True) -> Any:
        return _sources.wholeTextFiles(self, path, minPartitions, use_unicode)

    def pickleFile(self, name: str, minPartitions: int | None = None) -> Any:
        return _sources.pickleFile(self, name, minPartitions)

    def union(self, rdds: Sequence[Any]) -> Any:
        return _sources.union(self, rdds)


def pyspark_slices(data: Any, n: int) -> list[list]:
    """PySpark's ``parallelize`` slicing, written independently of the implementation: the
    reference the tests compare partitions with."""
    if isinstance(data, range):
        size = len(data)
        if size == 0:
            return [[] for _ in range(n)]
        step = data[1] - data[0] if size > 1 else 1
        start = data[0]
        starts = [start + int(i * size / n) * step for i in range(n + 1)]
        return [list(range(starts[i], starts[i + 1], step)) for i in range(n)]
    data = list(data)
    batch_size = max(1, min(len(data) // n, 1024))
    batches = [data[i:i + batch_size] for i in range(0, len(data), batch_size)]
    out = []
    for i in range(n):
        chosen = batches[(i * len(batches)) // n:((i + 1) * len(batches)) // n]
        out.append([x for b in chosen for x in b])
    return out
