"""An executor's half of the shuffle: writing map outputs, serving them, fetching them.

**Map side.** A shuffle map task runs its RDD partition through a
:class:`~sparklet.shuffle.ShuffleWriter` (partitioned by the dependency's partitioner,
combined map side when asked, spilling past the memory budget) into one data file per
map task. The executor keeps the :class:`~sparklet.shuffle.MapOutput` and reports its
per-reduce sizes to the driver as the task's result (a ``MapStatus``).

**Serving.** ``FetchSegments`` asks an executor for the segments of some map outputs for
one reduce partition; they are read from disk in the executor's I/O thread.

**Reduce side.** ``shuffle_read`` learns where the map outputs are from the driver's
map output tracker (cached per executor until a task brings a newer epoch), reads its own
executor's segments from disk and fetches the others, several executors at once but never
more than ``reducer.maxSizeInFlight`` bytes requested and not yet consumed, and feeds them
to a :class:`~sparklet.shuffle.ShuffleReader` (aggregation, ordering, external merge).
A fetch that fails for any reason (executor gone, output missing, connection reset) raises
:class:`FetchFailed` naming the shuffle, map and executor, so the DAG scheduler re-runs
just that map output's task and then this stage.
"""

from __future__ import annotations

import collections
import threading
from typing import TYPE_CHECKING, Any, Iterator

from sparklet.rdd._combine import combining_feed
from sparklet.runtime._messages import FetchSegments, GetMapStatuses
from sparklet.runtime._task_threads import TaskKilled, wait_interruptibly
from sparklet import shuffle

if TYPE_CHECKING:
    from sparklet.runtime._executor import Executor

__all__ = ["ExecutorShuffle", "FetchFailed"]

_FETCH_BATCH = 16 << 20  # one request's reply stays well under the transport's frame limit


class FetchFailed(Exception):
    """A reduce task could not read a map output: the map side must run again."""

    def __init__(self, shuffle_id: int, map_id: int | None, executor_id: str | None, reason: str) -> None:
        where = f"map output {map_id} of shuffle {shuffle_id}" if map_id is not None else f"shuffle {shuffle_id}"
        super().__init__(f"could not fetch {where} from {executor_id or 'anywhere'}: {reason}")
        self.shuffle_id, self.map_id, self.executor_id = shuffle_id, map_id, executor_id


class ExecutorShuffle:
    def __init__(self, executor: "Executor", *, memory_budget: int, max_in_flight: int) -> None:
        self._executor = executor
        self.memory_budget = memory_budget
        self.max_in_flight = max_in_flight
        self._lock = threading.Lock()
        # Invariant: the outputs this executor holds now; a re-run of a map task replaces its entry.
        self._outputs: dict[tuple[int, int], Any] = {}  # (shuffle, map) -> shuffle.MapOutput
        # task attempt id -> (shuffle id, map id) it wrote; read (and dropped) when the task is reported
        self._written_by: dict[int, tuple[int, int]] = {}
        # shuffle id -> (epoch, statuses); dropped when a task brings a newer epoch
        self._statuses: dict[int, tuple[int, tuple]] = {}

    # -- map side -------------------------------------------------------------------------------------
    def write(self, rdd: Any, dep: Any, partition: Any, context: Any) -> tuple[int, ...]:
        writer = shuffle.ShuffleWriter(
            shuffle_id=dep.shuffle_id, map_id=partition.index, num_partitions=dep.partitioner.numPartitions,
            partition_of=dep.partitioner, aggregator=dep.aggregator, map_side_combine=dep.map_side_combine,
            memory_budget=self.memory_budget, directory=self._executor.shuffle_directory,
        )
        try:
            if dep.map_side_combine:  # the pipeline's record loop and the combine as one loop
                output = writer.write_combining(combining_feed(rdd, partition, context, dep.aggregator))
            else:
                output = writer.write(rdd.iterator(partition, context))
        except BaseException:
            writer.abort()
            raise
        context.metrics.update(shuffle_records_written=output.records, shuffle_bytes_written=output.bytes_written,
                               shuffle_spills=output.spills, shuffle_peak_memory=output.peak_memory)
        with self._lock:
            old = self._outputs.get((dep.shuffle_id, partition.index))
            self._outputs[(dep.shuffle_id, partition.index)] = output
            self._written_by[context.taskAttemptId()] = (dep.shuffle_id, partition.index)
        if old is not None and old.path != output.path:
            shuffle.remove_map_output(old)
        return output.sizes

    def serve(self, shuffle_id: int, reduce_id: int, map_ids: tuple) -> tuple:
        """The segments of ``map_ids`` for ``reduce_id`` (runs in the executor's I/O thread)."""
        segments = []
        for map_id in map_ids:
            with self._lock:
                output = self._outputs.get((shuffle_id, map_id))
            if output is None:
                raise KeyError(f"executor {self._executor.executor_id} holds no output of map {map_id} of shuffle {shuffle_id}")
            start, end = output.offsets[reduce_id], output.offsets[reduce_id + 1]
            segments.append(shuffle.read_segment(output.path, start, end - start))
        return tuple(segments)

    def written_by(self, task_id: int) -> list[tuple[int, int]]:
        with self._lock:
            written = self._written_by.pop(task_id, None)
        return [written] if written is not None else []

    def lose(self, shuffle_id: int, map_id: int) -> bool:
        """Drop a map output as if its file were lost (a planned fault)."""
        with self._lock:
            output = self._outputs.pop((shuffle_id, map_id), None)
        if output is not None:
            shuffle.remove_map_output(output)
        return output is not None

    def close(self) -> None:
        with self._lock:
            outputs, self._outputs = list(self._outputs.values()), {}
        for output in outputs:
            shuffle.remove_map_output(output)

    # -- reduce side --------------------------------------------------------------------------------------
    def read(self, dep: Any, reduce_id: int, context: Any) -> Iterator:
        statuses = self._map_statuses(dep.shuffle_id, getattr(context, "_map_output_epoch", 0))
        reader = shuffle.ShuffleReader(aggregator=dep.aggregator, map_side_combined=dep.map_side_combine,
                               key_ordering=dep.key_ordering, ascending=getattr(dep, "ascending", True),
                               memory_budget=self.memory_budget, directory=self._executor.shuffle_directory)
        return reader.read(self._segments(dep.shuffle_id, reduce_id, statuses, context))

    def _map_statuses(self, shuffle_id: int, epoch: int) -> tuple:
        with self._lock:
            cached = self._statuses.get(shuffle_id)
            if cached is not None and cached[0] >= epoch:
                return cached[1]
        try:
            known_epoch, statuses = self._executor.call_from_thread(
                self._executor.map_output_tracker.ask(GetMapStatuses(shuffle_id), timeout=60))
        except TaskKilled:
            raise
        except Exception as exc:
            raise FetchFailed(shuffle_id, None, None, f"the map output tracker did not answer: {exc!r}") from exc
        with self._lock:
            self._statuses[shuffle_id] = (known_epoch, statuses)
        return statuses

    def _segments(self, shuffle_id: int, reduce_id: int, statuses: tuple, context: Any) -> Iterator[bytes]:
        me = self._executor.executor_id
        local: list[int] = []
        remote: dict[str, tuple[Any, list[tuple[int, int]]]] = {}
        for map_id, status in enumerate(statuses):
            if status is None:
                self._forget(shuffle_id)
                raise FetchFailed(shuffle_id, map_id, None, "the map output is missing (not computed, or lost)")
            executor_id, ref, sizes = status
            if sizes[reduce_id] == 0:
                continue
            if executor_id == me:
                local.append(map_id)
            else:
                remote.setdefault(executor_id, (ref, []))[1].append((map_id, sizes[reduce_id]))
        fetched = 0
        for map_id in local:
            try:
                segment = self.serve(shuffle_id, reduce_id, (map_id,))[0]
            except Exception as exc:
                self._forget(shuffle_id)
                raise FetchFailed(shuffle_id, map_id, me, f"{exc}") from exc
            fetched += len(segment)
            yield segment
        requests = collections.deque()
        for executor_id, (ref, maps) in remote.items():
            batch, batch_bytes = [], 0
            for map_id, size in maps:
                if batch and batch_bytes + size > _FETCH_BATCH:
                    requests.append((executor_id, ref, batch, batch_bytes))
                    batch, batch_bytes = [], 0
                batch.append(map_id)
                batch_bytes += size
            requests.append((executor_id, ref, batch, batch_bytes))
        in_flight: collections.deque = collections.deque()
        in_flight_bytes = 0
        while requests or in_flight:
            while requests and (not in_flight or in_flight_bytes + requests[0][3] <= self.max_in_flight):
                executor_id, ref, map_ids, size = requests.popleft()
                future = self._executor.ask_from_thread(ref, FetchSegments(shuffle_id, reduce_id, tuple(map_ids)),
                                                        timeout=self._executor.fetch_timeout)
                in_flight.append((executor_id, map_ids, size, future))
                in_flight_bytes += size
            executor_id, map_ids, size, future = in_flight.popleft()
            try:
                segments = wait_interruptibly(future)
            except TaskKilled:
                raise  # the asks in flight end by themselves (answer or timeout)
            except Exception as exc:
                for *_, pending in in_flight:
                    pending.cancel()
                self._forget(shuffle_id)
                raise FetchFailed(shuffle_id, map_ids[0], executor_id, f"{type(exc).__name__}: {exc}") from exc
            in_flight_bytes -= size
            for segment in segments:
                fetched += len(segment)
                yield segment
        context.metrics["shuffle_bytes_read"] = context.metrics.get("shuffle_bytes_read", 0) + fetched

    def _forget(self, shuffle_id: int) -> None:
        with self._lock:
            self._statuses.pop(shuffle_id, None)

