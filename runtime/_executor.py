"""The executor: runs tasks in worker threads, keeps a block manager, reports back.

One actor per executor, the same code in both masters: under ``local[N]`` it lives in
its own process (hosted by :class:`~sparklet.actors.ProcessActor`), under ``inproc[N]``
in the driver's loop. Tasks never run on the event loop: each runs in one of the
executor's ``cores`` worker threads, so the actor keeps answering heartbeats, kills and
block requests while user code computes.

A stage's task binary ``(rdd, func)`` arrives once per executor (``StageBinary``) and is
kept as bytes; each ``RunTask`` carries only its partition. Every task deserializes its
own copy of the binary, as PySpark's workers do: user closures may mutate what they
captured (``aggregate``'s zero value is the classic case), and tasks must not see each
other's changes. A task's result, accumulator updates and metrics go back in one
``StatusUpdate``; a failure carries the exception type, message, traceback and, when it
pickles, the exception itself.

Killing a task sets its context's ``killed`` flag and raises :class:`TaskKilled` in its
thread at the next bytecode boundary (a task inside a long C call finishes that call
first); its outcome is reported as ``killed`` and its result discarded.

On a :class:`~sparklet.actors.SimulatedLoop` (the ``sim[N]`` master) there are no worker
threads: ``run_in_executor`` runs a task inline on the loop, and where a task would wait
for the loop from its thread (fetching shuffle data, a broadcast, map statuses) it runs
the loop nested instead (``SimulatedLoop.run_nested``). A kill then only sets the flag.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import ctypes
import inspect
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from typing import Any

from sparklet.actors import Actor, ActorRef, SimulatedLoop, SparkletError, handler
from sparklet.rdd import BarrierTaskContext, StorageLevel, TaskContext
from sparklet.runtime._barrier import RequestToSync
from sparklet.runtime._blocks import BlockManager, BlockStatus
from sparklet.runtime._messages import (
    BlockStatusUpdated, DropStageBinary, FetchSegments, GetBroadcast, GetExecutorInfo, GetPeers, Heartbeat,
    CrashBlockManager, CrashExecutor, FaultFired, InterruptTask, PutBlock, RegisterExecutor, RemoveBroadcast, RemoveRdd,
    ReRegisterExecutor, ReportBlocks, RunTask, SendHeartbeat, StageBinary, StatusUpdate,
)
from sparklet.runtime._pickling import describe_error, dumps_data, loads
from sparklet.runtime._faults import Fault, FaultPlan, InjectedFault
from sparklet.runtime._msgfaults import SetClogged, install_in_executor
from sparklet.runtime._shuffle_io import ExecutorShuffle, FetchFailed
from sparklet.runtime._task_threads import TaskKilled, wait_interruptibly

__all__ = ["Executor", "TaskKilled", "ExecutorEnv"]


BARRIER_ASK_TIMEOUT = 400 * 86400.0  # above barrier.sync.timeout's default (a year): the coordinator decides


_KILLED_BEFORE_START = object()  # a running slot's thread field when the kill beat the start
_INLINE = object()  # a running slot's thread field for a task run inline by a simulated loop


class ResultTooLarge(Exception):
    """A task's result could not be sent to the driver (over the transport's frame limit)."""


class ExecutorEnv:
    """What a running task reaches through ``TaskContext.env``."""

    def __init__(self, executor: "Executor") -> None:
        self._executor = executor
        self.block_manager: BlockManager = executor.block_manager
        self.executor_id = executor.executor_id
        self._broadcasts: dict[int, Any] = {}
        self._broadcast_lock = threading.Lock()

    def get_or_compute(self, rdd: Any, split: Any, context: TaskContext) -> Any:
        return self.block_manager.get_or_compute(rdd, split, context)

    def shuffle_read(self, dep: Any, reduce_id: int, context: TaskContext) -> Any:
        """The records of reduce partition ``reduce_id`` of ``dep``'s shuffle (aggregated and
        ordered as the dependency asks)."""
        return self._executor.shuffle.read(dep, reduce_id, context)

    def broadcast_value(self, bid: int) -> Any:
        """The broadcast's value, fetched from the driver once per executor (from a task thread)."""
        with self._broadcast_lock:
            if bid in self._broadcasts:
                return self._broadcasts[bid]
            data = self._executor.call_from_thread(self._executor.driver_blocks.ask(GetBroadcast(bid), timeout=60))
            value = loads(data)
            self._broadcasts[bid] = value
            return value

    def drop_broadcast(self, bid: int) -> None:
        with self._broadcast_lock:
            self._broadcasts.pop(bid, None)


class Executor(Actor):
    def __init__(self, executor_id: str, driver_address: str | None, *, cores: int = 1, memory: int = 256 << 20,
                 local_dir: str | None = None, heartbeat_interval: float = 1.0,
                 shuffle_memory: int = 256 << 20, max_in_flight: int = 48 << 20,
                 scheduler_path: str = "/user/sparklet/scheduler/task-scheduler",
                 blocks_path: str = "/user/sparklet/block-manager-master",
                 map_outputs_path: str = "/user/sparklet/map-output-tracker",
                 barrier_path: str = "/user/sparklet/barrier-coordinator",
                 fault_plan: FaultPlan | None = None, fetch_timeout: float = 120.0) -> None:
        super().__init__()
        self.executor_id = executor_id
        self._driver_address = driver_address
        self._cores = cores
        self._memory = memory
        self._local_dir = local_dir
        self._heartbeat_interval = heartbeat_interval
        self._scheduler_path = scheduler_path
        self._blocks_path = blocks_path
        self._map_outputs_path = map_outputs_path
        self._barrier_path = barrier_path
        self._shuffle_memory = shuffle_memory
        self._max_in_flight = max_in_flight
        self._binaries: dict[str, bytes] = {}
        # task id -> [thread ident or None, TaskContext or None]; Invariant: only running tasks
        self._running: dict[int, list] = {}
        self._running_lock = threading.Lock()
        self._completed = 0
        self._plan = fault_plan if fault_plan else None
        self._started_tasks = 0
        self._ended_tasks = 0
        self._silenced = False
        self._dying: Any = None  # the report awaited before a planned SIGKILL
        self._fired_faults: set[int] = set()
        self._highest_task_id = -1
        self.fetch_timeout = fetch_timeout  # seconds a shuffle fetch may wait for its reply
        self._message_faults: Any = None

    async def pre_start(self) -> None:
        system = self.context.system
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._inline = isinstance(self._loop, SimulatedLoop)  # tasks run inline, waits run the loop nested
        self.scheduler: ActorRef = system.ref_for(self._driver_address, self._scheduler_path)
        self.driver_blocks: ActorRef = system.ref_for(self._driver_address, self._blocks_path)
        self.map_output_tracker: ActorRef = system.ref_for(self._driver_address, self._map_outputs_path)
        self.barrier_coordinator: ActorRef = system.ref_for(self._driver_address, self._barrier_path)
        self._directory = tempfile.mkdtemp(prefix=f"sparklet-{self.executor_id}-", dir=self._local_dir)
        self.block_manager = BlockManager(self.executor_id, memory_bytes=self._memory, directory=self._directory,
                                          on_block_status=self._block_status_from_any_thread,
                                          replicate=self._replicate_from_task_thread)
        self.shuffle_directory = os.path.join(self._directory, "shuffle")
        os.makedirs(self.shuffle_directory, exist_ok=True)
        # Each running task gets an equal share of the executor's shuffle memory.
        self.shuffle = ExecutorShuffle(self, memory_budget=max(16 << 10, self._shuffle_memory // self._cores),
                                       max_in_flight=self._max_in_flight)
        self.env = ExecutorEnv(self)
        self._pool = concurrent.futures.ThreadPoolExecutor(self._cores, thread_name_prefix=f"sparklet-task-{self.executor_id}")
        # Disk work (removing blocks) and waiting for the task pool go here, never on the loop.
        self._io = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=f"sparklet-io-{self.executor_id}")
        fired = await self.scheduler.ask(RegisterExecutor(self.executor_id, self.ref, socket.gethostname(), self._cores,
                                                          os.getpid(), self._memory), timeout=30)
        self._fired_faults = set(fired)  # planned faults an earlier incarnation of this executor fired
        self._message_faults = install_in_executor(system, self._plan, self.executor_id, self._driver_address,
                                                   self._report_message_fault, self._report_message_fault_and_wait)
        self.timers.start_periodic("heartbeat", SendHeartbeat(), self._heartbeat_interval)

    async def post_stop(self) -> None:
        with self._running_lock:
            running = list(self._running)
        for task_id in running:
            self._interrupt(task_id)
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self._loop.run_in_executor(self._io, self._pool.shutdown, True)
        await self._loop.run_in_executor(self._io, self._close_storage)
        self._io.shutdown(wait=True)

    def _close_storage(self) -> None:
        self.shuffle.close()
        self.block_manager.close()
        shutil.rmtree(self._directory, ignore_errors=True)

    def call_from_thread(self, awaitable: Any) -> Any:
        """Await ``awaitable`` on the executor's loop from a task thread."""
        if self._inline:
            return self._loop.run_nested(awaitable)
        async def run() -> Any:
            return await awaitable
        coroutine = run()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop is closed: a task thread outliving its context
            coroutine.close()
            if asyncio.iscoroutine(awaitable):
                awaitable.close()  # never started: no "never awaited" noise, the error says it
            raise
        return wait_interruptibly(future)

    def ask_from_thread(self, ref: ActorRef, message: Any, timeout: float = 120.0) -> Any:
        """Send an ask from a task thread; returns a concurrent future of the reply."""
        if self._inline:
            return self._loop.blocking(ref.ask_nowait(message, timeout=timeout))
        async def ask() -> Any:
            return await ref.ask(message, timeout=timeout)
        coroutine = ask()
        try:
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        except RuntimeError:  # the loop is closed: a task thread outliving its context
            coroutine.close()
            raise
        future.add_done_callback(lambda f: f.cancelled() and self._close_if_unstarted(coroutine))
        return future

    def _close_if_unstarted(self, coroutine: Any) -> None:
        """A thread may cancel an ask's future (a fetch batch no longer wanted) before the
        loop started its coroutine: close it then, on the loop (never from the thread, where
        it could be running), so it is not reported as never awaited."""
        def close() -> None:
            if inspect.getcoroutinestate(coroutine) == inspect.CORO_CREATED:
                coroutine.close()
        try:
            self._loop.call_soon_threadsafe(close)
        except RuntimeError:  # the loop is closed: nothing runs it any more
            coroutine.close()

    def _block_status_from_any_thread(self, status: BlockStatus) -> None:
        message = BlockStatusUpdated(self.executor_id, status.block_id, status.storage, status.memory_size, status.disk_size)
        if threading.get_ident() == self._loop_thread:
            self.driver_blocks.tell(message)
        else:
            self._loop.call_soon_threadsafe(self.driver_blocks.tell, message)

    # -- tasks ----------------------------------------------------------------------------------
    @handler(StageBinary)
    def stage_binary(self, msg: StageBinary) -> None:
        self._binaries[msg.key] = msg.data

    @handler(DropStageBinary)
    def drop_binary(self, msg: DropStageBinary) -> None:
        self._binaries.pop(msg.key, None)

    @handler(RunTask)
    def launch(self, msg: RunTask) -> None:
        binary = self._binaries.get(msg.binary_key)
        self._highest_task_id = max(self._highest_task_id, msg.task_id)
        self._started_tasks += 1
        if self._plan is not None:
            self._executor_faults("before_task", self._started_tasks, f"before its task #{self._started_tasks}")
        with self._running_lock:
            self._running[msg.task_id] = [None, None]
        # The task's thread runs in this actor's context, so what it sends (shuffle fetches,
        # broadcast requests, fault reports) is sent by this executor, as if from its handler.
        context = contextvars.copy_context()
        future = self._loop.run_in_executor(self._pool, context.run, self._run_task, msg, binary)
        future.add_done_callback(lambda f: self._task_done(msg, f))

    def _run_task(self, msg: RunTask, binary: bytes | None) -> tuple:
        started = time.perf_counter()
        with self._running_lock:
            slot = self._running.get(msg.task_id)
            if slot is None or slot[0] is _KILLED_BEFORE_START:
                raise TaskKilled(f"task {msg.task_id} was killed before it started")
            slot[0] = _INLINE if self._inline else threading.get_ident()
        context: TaskContext | None = None
        try:
            if binary is None:
                raise RuntimeError(f"executor {self.executor_id} has no task binary {msg.binary_key}")
            rdd, func = loads(binary)
            partition = loads(msg.partition)
            deserialized = time.perf_counter()
            if msg.barrier_addresses:  # barrier: its context syncs with the stage attempt's other tasks
                context = BarrierTaskContext(msg.stage_id, msg.stage_attempt, msg.partition_index, msg.attempt_number,
                                             msg.task_id, msg.properties, env=self.env, cpus=1,
                                             addresses=msg.barrier_addresses, sync=self._barrier_sync(msg))
            else:
                context = TaskContext(msg.stage_id, msg.stage_attempt, msg.partition_index, msg.attempt_number,
                                      msg.task_id, msg.properties, env=self.env, cpus=1)
            context._map_output_epoch = msg.map_output_epoch
            slot[1] = context
            if self._plan is not None:
                self._task_faults(msg, context)
            TaskContext._set(context)
            try:
                if msg.shuffle_map:
                    result = self.shuffle.write(rdd, func, partition, context)  # func is the ShuffleDependency
                else:
                    result = func(context, rdd.iterator(partition, context))
            finally:
                TaskContext._set(None)
            computed = time.perf_counter()
            data = dumps_data(result)
            updates = dumps_data(context._accum_updates) if context._accum_updates else None
            metrics = {
                "executor_deserialize_time": deserialized - started,
                "executor_run_time": computed - deserialized,
                "result_serialization_time": time.perf_counter() - computed,
                "result_size": len(data),
                "records_read": context.metrics.get("records_read", 0),
                "records_written": len(result) if isinstance(result, list) else 1,
            }
            metrics.update((k, v) for k, v in context.metrics.items() if k.startswith("shuffle_"))
            return data, updates, metrics
        finally:
            with self._running_lock:
                slot[0] = None  # no async kill may land after this point

    def _barrier_sync(self, msg: RunTask) -> Any:
        """barrier: the task thread's way to the coordinator: ``sync(method, message, epoch)``
        returns a concurrent future of the ``(ok, messages, error)`` reply. The coordinator
        enforces ``barrier.sync.timeout``; the ask only guards against a lost driver."""
        num_tasks = len(msg.barrier_addresses)

        def sync(method: str, message: str, epoch: int) -> Any:
            request = RequestToSync(msg.stage_id, msg.stage_attempt, num_tasks, msg.partition_index, msg.task_id,
                                    epoch, method, message)
            return self.ask_from_thread(self.barrier_coordinator, request, timeout=BARRIER_ASK_TIMEOUT)
        return sync

    # -- planned faults ---------------------------------------------------------------------------------
    def _report_fault(self, index: int, fault: Fault, where: str) -> None:
        message = FaultFired(self.executor_id, index, fault.describe(), where)
        if threading.get_ident() == self._loop_thread:
            self.scheduler.tell(message)
        else:
            self._loop.call_soon_threadsafe(self.scheduler.tell, message)

    def _task_faults(self, msg: RunTask, context: TaskContext) -> None:
        """In the task's thread, before it computes."""
        assert self._plan is not None
        for index, fault in self._plan.task_faults(msg.stage_id, msg.partition_index, msg.attempt_number):
            where = f"task {msg.task_id} (stage {msg.stage_id}, partition {msg.partition_index}, attempt {msg.attempt_number})"
            self._report_fault(index, fault, where)
            if fault.kind == "raise":
                raise InjectedFault(f"{fault.message} [{fault.describe()} at {where}]")
            if self._inline:
                self._loop.run_nested(self._stall(fault.seconds, context))
                continue
            deadline = time.monotonic() + fault.seconds  # hang or slow: short sleeps, so a kill lands
            while time.monotonic() < deadline and not context.killed:
                time.sleep(0.02)

    async def _stall(self, seconds: float, context: TaskContext) -> None:
        """A hang or slow fault in a simulation: virtual seconds, cut short by a kill."""
        deadline = self._loop.time() + seconds
        while self._loop.time() < deadline and not context.killed:
            await asyncio.sleep(min(0.02, deadline - self._loop.time()))

    def _executor_faults(self, point: str, value: int, where: str) -> None:
        """On the loop thread, at one of the executor's fault points."""
        assert self._plan is not None
        for index, fault in self._plan.executor_faults(self.executor_id, point, value):
            if index in self._fired_faults:
                continue  # an executor fault fires once per executor, across its restarts
            self._fired_faults.add(index)
            if fault.kind == "kill_executor" and self._driver_address is not None:
                # Our own process dies the hard way, once the driver has the report (a
                # SIGKILL right after a tell could lose the frame with the process).
                report = FaultFired(self.executor_id, index, fault.describe(), f"executor {self.executor_id} {where}")
                self._dying = self.scheduler.ask_nowait(report, timeout=10)
                self._dying.add_done_callback(lambda _: os.kill(os.getpid(), signal.SIGKILL))
                continue
            self._report_fault(index, fault, f"executor {self.executor_id} {where}")
            if fault.kind == "kill_executor":
                self.ref.tell(CrashExecutor(f"planned kill {fault.describe()}"))
            elif fault.kind == "silence_executor":
                self._silenced = True
                self.timers.cancel("heartbeat")
            elif fault.kind == "lose_block":
                self.block_manager.remove_block(fault.block)


    def _lose_shuffle_outputs(self, msg: RunTask) -> None:
        """``lose_shuffle_output`` fires once: right after that output is first written
        (the map stage's first attempt), on the executor that holds it."""
        assert self._plan is not None
        for shuffle_id, map_id in self.shuffle.written_by(msg.task_id):
            for index, fault in self._plan.lost_outputs(shuffle_id, map_id):
                if self.shuffle.lose(shuffle_id, map_id):
                    self._report_fault(index, fault, f"executor {self.executor_id} after writing map output {map_id} "
                                                     f"of shuffle {shuffle_id}")

    def _withhold_status(self, msg: RunTask) -> bool:
        """A planned ``drop_status``: this task's status update is never sent."""
        assert self._plan is not None
        for index, fault in self._plan.status_faults(msg.stage_id, msg.partition_index, msg.attempt_number):
            self._report_fault(index, fault, f"task {msg.task_id} (stage {msg.stage_id}, partition "
                                             f"{msg.partition_index}, attempt {msg.attempt_number})")
            return True
        return False

    def _report_message_fault(self, index: int, fault: Fault, executor_id: str, where: str) -> None:
        self.scheduler.tell(FaultFired(executor_id, index, fault.describe(), f"{where} (in {self.executor_id}'s process)"))

    def _report_message_fault_and_wait(self, index: int, fault: Fault, executor_id: str, where: str) -> Any:
        report = FaultFired(executor_id, index, fault.describe(), f"{where} (in {self.executor_id}'s process)")
        return self.scheduler.ask_nowait(report, timeout=10)

    @handler(SetClogged)
    def set_clogged(self, msg: SetClogged) -> None:
        if self._message_faults is not None:
            self._message_faults.set_clogged(msg.clogged, msg.release_order)

    @handler(CrashExecutor)
    def crash(self, msg: CrashExecutor) -> None:
        raise InjectedFault(f"executor {self.executor_id}: {msg.reason}")

    def _task_done(self, msg: RunTask, future: asyncio.Future) -> None:
        with self._running_lock:
            slot = self._running.get(msg.task_id)
        killed = slot is None or slot[0] is _KILLED_BEFORE_START or (slot[1] is not None and slot[1].killed)
        if not future.cancelled():
            future.exception()  # retrieved here, so a killed task's TaskKilled is not logged as never retrieved
        self._completed += 1
        exc = None if future.cancelled() else future.exception()  # retrieved even when killed: no stray log
        if future.cancelled() or killed:
            update = StatusUpdate(self.executor_id, msg.task_id, "killed", None, None, None, {})
        elif isinstance(exc, FetchFailed):
            update = StatusUpdate(self.executor_id, msg.task_id, "fetch_failed", None, describe_error(exc), None, {},
                                  (exc.shuffle_id, exc.map_id, exc.executor_id))
        elif exc is not None:
            state = "killed" if isinstance(exc, TaskKilled) else "failed"
            update = StatusUpdate(self.executor_id, msg.task_id, state, None, describe_error(exc), None, {})
        else:
            data, updates, metrics = future.result()
            update = StatusUpdate(self.executor_id, msg.task_id, "success", data, None, updates, metrics)
        with self._running_lock:
            self._running.pop(msg.task_id, None)  # from now on a heartbeat may say it is not running
        if self._plan is not None and self._withhold_status(msg):
            return
        try:
            self.scheduler.tell(update)
        except SparkletError as exc:  # e.g. a result over the transport's frame limit: say so, never go silent
            size = len(update.result or b"")
            error = ResultTooLarge(f"task {msg.task_id} (partition {msg.partition_index} of stage {msg.stage_id}) "
                                   f"produced a result of {size} bytes that cannot reach the driver ({exc}); "
                                   "aggregate before collecting, or write the data with saveAsTextFile")
            self.scheduler.tell(StatusUpdate(self.executor_id, msg.task_id, "failed", None, describe_error(error), None, {}))
        self._ended_tasks += 1
        if self._plan is not None:
            self._executor_faults("after_task", self._ended_tasks, f"after its task #{self._ended_tasks}")
            if msg.shuffle_map and update.state == "success":
                self._executor_faults("after_stage_outputs", msg.stage_id, f"after writing a map output of stage {msg.stage_id}")
                if msg.stage_attempt == 0:
                    self._lose_shuffle_outputs(msg)

    @handler(InterruptTask)
    def kill(self, msg: InterruptTask) -> None:
        self._interrupt(msg.task_id)

    def _interrupt(self, task_id: int) -> None:
        with self._running_lock:
            slot = self._running.get(task_id)
            if slot is None:
                return
            if slot[1] is not None:
                slot[1].killed = True
            if slot[0] is None:
                slot[0] = _KILLED_BEFORE_START  # it sees this when it starts; its status still goes out
                return
            if slot[0] is _KILLED_BEFORE_START or slot[0] is _INLINE:
                return  # inline (simulated) tasks cannot be interrupted: the flag says it
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(slot[0]), ctypes.py_object(TaskKilled))

    # -- blocks, broadcasts, heartbeats -------------------------------------------------------------
    def _replicate_from_task_thread(self, block_id: str, data: bytes, level: Any) -> None:
        """A ``_2`` level: copies to ``replication - 1`` other executors (called by the block
        manager in the task's thread, after the local copy is stored)."""
        async def replicate() -> None:
            peers = await self.driver_blocks.ask(GetPeers(self.executor_id, level.replication - 1), timeout=30)
            for peer in peers:
                peer.tell(PutBlock(block_id, data, (level.useDisk, level.useMemory, level.useOffHeap, level.deserialized)))
        self.call_from_thread(replicate())

    @handler(FetchSegments)
    async def fetch_segments(self, msg: FetchSegments) -> tuple:
        return await self._loop.run_in_executor(self._io, self.shuffle.serve, msg.shuffle_id, msg.reduce_id, msg.map_ids)

    @handler(PutBlock)
    async def put_block(self, msg: PutBlock) -> None:
        level = StorageLevel(*msg.level, 1)  # a replica is not replicated again
        await self._loop.run_in_executor(self._io, self.block_manager.put_bytes, msg.block_id, msg.data, level)


    @handler(RemoveRdd)
    async def remove_rdd(self, msg: RemoveRdd) -> int:
        return await self._loop.run_in_executor(self._io, self.block_manager.remove_rdd, msg.rdd_id)

    @handler(RemoveBroadcast)
    def remove_broadcast(self, msg: RemoveBroadcast) -> None:
        self.env.drop_broadcast(msg.broadcast_id)

    @handler(SendHeartbeat)
    def heartbeat(self, msg: SendHeartbeat) -> None:
        if self._silenced:
            return
        with self._running_lock:
            running = tuple(self._running)
        self.scheduler.tell(Heartbeat(self.executor_id, running, self._highest_task_id, {"completed_tasks": self._completed}))

    # -- recovery (docs/recovery.md) -----------------------------------------------------------------
    @handler(ReportBlocks)
    def report_blocks(self, msg: ReportBlocks) -> tuple:
        """Re-register with a restarted block manager master: who we are and every block we hold."""
        return (socket.gethostname(), self._memory,
                tuple((s.block_id, s.storage, s.memory_size, s.disk_size) for s in self.block_manager.statuses()))

    @handler(ReRegisterExecutor)
    async def re_register(self, msg: ReRegisterExecutor) -> None:
        """The task scheduler restarted: its predecessor's tasks are nobody's now, so stop
        them, and register with the new one."""
        with self._running_lock:
            running = list(self._running)
        for task_id in running:
            self._interrupt(task_id)
        fired = await self.scheduler.ask(RegisterExecutor(self.executor_id, self.ref, socket.gethostname(), self._cores,
                                                          os.getpid(), self._memory), timeout=30)
        self._fired_faults |= set(fired)
        # Registering again made the block manager master forget our blocks (as for a new
        # executor): they are still here, so report them again.
        for status in self.block_manager.statuses():
            self._block_status_from_any_thread(status)

    @handler(CrashBlockManager)
    async def crash_block_manager(self, msg: CrashBlockManager) -> None:
        """The block manager failed (a planned crash): replace it, as a supervisor would. Its
        blocks, in memory and on disk, are gone with it; the master is told each is gone, and
        they are recomputed from lineage when next needed. Tasks still holding the old one
        miss its reads and do not store (it is closed)."""
        crashed = self.block_manager
        lost = crashed.statuses()
        await self._loop.run_in_executor(self._io, crashed.close)
        self.block_manager = BlockManager(self.executor_id, memory_bytes=self._memory, directory=self._directory,
                                          on_block_status=self._block_status_from_any_thread,
                                          replicate=self._replicate_from_task_thread)
        self.env.block_manager = self.block_manager
        for status in lost:
            self._block_status_from_any_thread(BlockStatus(status.block_id, self.executor_id, "none"))

    @handler(GetExecutorInfo)
    def info(self, msg: GetExecutorInfo) -> dict:
        with self._running_lock:
            running = len(self._running)
        return {"executor_id": self.executor_id, "pid": os.getpid(), "cores": self._cores, "running_tasks": running,
                "completed_tasks": self._completed, "blocks": self.block_manager.statistics().as_dict()}
