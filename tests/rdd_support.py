"""A serial, in-process context for the RDD tests (the ``ContextLike`` contract).

``run_job_async`` computes each partition in the calling thread, one after the other, but
first round-trips what the real engine ships through ``cloudpickle``: the task binary
``(rdd, func)`` once per job (as once per stage) and each partition object once per task,
and the task's result on the way back. So an RDD that would not pickle, or that needs
driver-only state inside a task, fails here as it would on an executor.

After each job, RDDs of the job's lineage that asked to be checkpointed are checkpointed
(Spark's rule: the first marked RDD on each path from the job's RDD).

Shuffles: ``SerialEnv.shuffle_read`` is the reference semantics of the runtime contract
(see ``rdd/_shuffled.py``). Before a job runs, the context registers the driver's
``ShuffleDependency`` objects of the job's lineage; the first read of a shuffle runs its map
side, once, as a map stage would: the dependency pickled once, each parent partition
pickled per map task and computed under its own ``TaskContext``. Map outputs are kept for
the env's lifetime (as Spark keeps shuffle files), so later jobs skip the map side.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any, Callable, Coroutine, Iterator, Sequence

import cloudpickle

from sparklet.rdd import _sources
from sparklet.rdd._base import ActionInLoopError, RDDBase, ShuffleDependency, TaskContext


class SerialEnv:
    """Stands in for the executor's block manager: computed partitions of persisted RDDs are
    kept in a dict keyed by ``(rdd id, partition index)``. Also the reference shuffle (see
    the module notes): map outputs are kept per shuffle id."""

    def __init__(self) -> None:
        self.blocks: dict[tuple[int, int], list] = {}
        self.computed: list[tuple[int, int]] = []  # cache misses, in order
        # shuffle id -> the driver's dependency (registered before each job)
        self.shuffle_id_to_dependency: dict[int, ShuffleDependency] = {}
        # shuffle id -> per reduce partition, per map partition, the records written
        self.shuffle_id_to_outputs: dict[int, list[list[list]]] = {}
        self.map_tasks: list[tuple[int, int]] = []  # (shuffle id, map partition) per map task run
        self._map_task_ids = itertools.count(1 << 20)

    def register_shuffles(self, rdd: RDDBase) -> None:
        """Remember the driver's shuffle dependencies of ``rdd``'s lineage."""
        seen: set[int] = set()
        stack = [rdd]
        while stack:
            r = stack.pop()
            if id(r) in seen:
                continue
            seen.add(id(r))
            for dep in r.dependencies:
                if isinstance(dep, ShuffleDependency):
                    self.shuffle_id_to_dependency.setdefault(dep.shuffle_id, dep)
                stack.append(dep.rdd)

    def shuffle_read(self, dep: ShuffleDependency, reduce_id: int, context: TaskContext) -> Iterator:
        """The records of reduce partition ``reduce_id``: combined when ``dep.aggregator`` is
        set, sorted by ``dep.key_ordering`` when set (the contract's reference semantics)."""
        outputs = self.shuffle_id_to_outputs.get(dep.shuffle_id)
        if outputs is None:
            outputs = self._run_map_side(self.shuffle_id_to_dependency.get(dep.shuffle_id, dep), context)
            self.shuffle_id_to_outputs[dep.shuffle_id] = outputs
        if not 0 <= reduce_id < len(outputs):
            raise ValueError(f"reduce partition {reduce_id} out of range for shuffle {dep.shuffle_id}")
        records = [record for map_output in outputs[reduce_id] for record in map_output]
        aggregator = dep.aggregator
        if aggregator is not None:
            combined: dict = {}
            if dep.map_side_combine:
                for k, c in records:
                    combined[k] = aggregator.mergeCombiners(combined[k], c) if k in combined else c
            else:
                for k, v in records:
                    combined[k] = aggregator.mergeValue(combined[k], v) if k in combined else aggregator.createCombiner(v)
            records = list(combined.items())
        if dep.key_ordering is not None:
            ordering = dep.key_ordering
            records.sort(key=lambda kv: ordering(kv[0]), reverse=not getattr(dep, "ascending", True))
        return iter(records)

    def route(self, dep: ShuffleDependency, records: Any) -> list[list]:
        """One map task's output: ``records`` per reduce partition, combined per key with
        createCombiner/mergeValue when ``dep.map_side_combine``."""
        n = dep.partitioner.numPartitions
        buckets: list[list] = [[] for _ in range(n)]
        combining = dep.aggregator is not None and dep.map_side_combine
        combiners: list[dict] = [{} for _ in range(n)]
        for k, v in records:
            p = dep.partitioner(k)
            if not (isinstance(p, int) and 0 <= p < n):
                raise ValueError(f"partitioner {dep.partitioner!r} sent key {k!r} to {p!r}, not in [0, {n})")
            if combining:
                m = combiners[p]
                m[k] = dep.aggregator.mergeValue(m[k], v) if k in m else dep.aggregator.createCombiner(v)
            else:
                buckets[p].append((k, v))
        if combining:
            buckets = [list(m.items()) for m in combiners]
        return buckets

    def _run_map_side(self, dep: ShuffleDependency, reduce_context: TaskContext) -> list[list[list]]:
        """Every map task of ``dep``'s shuffle, shipped as the engine ships a map stage."""
        splits = dep.rdd.partitions
        task_dep = cloudpickle.loads(cloudpickle.dumps(dep))
        n = dep.partitioner.numPartitions
        outputs: list[list[list]] = [[] for _ in range(n)]
        for split in splits:
            task_split = cloudpickle.loads(cloudpickle.dumps(split))
            # map stages get negative ids here, so they never collide with the jobs' stage ids
            context = TaskContext(-1 - dep.shuffle_id, 0, split.index, 0, next(self._map_task_ids),
                                  getattr(reduce_context, "_local_properties", None), env=self)
            TaskContext._set(context)
            try:
                buckets = self.route(task_dep, task_dep.rdd.iterator(task_split, context))
            finally:
                TaskContext._set(reduce_context)  # back to the reduce task that asked
            self.map_tasks.append((dep.shuffle_id, split.index))
            for p, bucket in enumerate(cloudpickle.loads(cloudpickle.dumps(buckets))):
                outputs[p].append(bucket)
        return outputs

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
        self.env.register_shuffles(rdd)
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
