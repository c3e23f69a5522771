"""The Context: where a program meets the runtime.

Two ways to live:

* **Blocking** (``with Context() as sc:`` or plain ``sc = Context()``): created outside a
  running event loop, the context starts its own loop in one thread (uvloop when
  present) and hosts the driver's actors there. Actions block the calling thread until
  their job ends; Ctrl-C cancels the job.
* **Embedded** (``async with Context() as sc:``): created inside a running loop, the
  context runs on that loop, with no second loop and no extra thread for the actors.
  Actions are awaited through their ``...Async`` twins; cancelling the awaiting task
  cancels the job. A blocking action called here raises :class:`ActionInLoopError`
  naming its twin.

Masters: ``local[N]`` / ``local[*]`` (default): N executor processes with
``executor.cores`` task slots each, connected to the driver by the actor transport;
``inproc[N]``: N executors as actors in the driver's loop, running tasks in worker
threads (for embedding, tests and debugging); ``sim[N]``: ``inproc[N]`` on a
:class:`~sparklet.actors.SimulatedLoop` seeded by ``sim.seed`` (virtual time, seeded
interleavings, task code inline on the loop): a run replays exactly from its seed.
The simulated context always runs its loop in its own thread, even when created inside
a running loop, and the caller's blocking calls enter the simulation through
:meth:`SimulatedLoop.submit`, one at a time, at quiescent points.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import itertools
import os
import random
import re
import threading
import time
import uuid
import weakref
from typing import Any, Callable, Coroutine, Iterator, Sequence

from sparklet.actors import ActorSystem, Local, SimulatedLoop, simenv
from sparklet.rdd._base import ActionInLoopError, RDDBase, TaskContext
from sparklet.runtime._conf import Conf
from sparklet.runtime._faults import FaultPlan
from sparklet.runtime._jobs import JobManagerRestarted
from sparklet.runtime._driver import build_driver
from sparklet.runtime._event_log import EventLogWriter
from sparklet.runtime._observe import Observability
from sparklet.runtime._msgfaults import install_in_driver as install_message_faults
from sparklet.runtime._listener import FaultPlanRecorded, ListenerBus, SchedulerEvent
from sparklet.runtime._messages import (
    AwaitJob, CancelAllJobs, CancelJob, CancelJobGroup, DestroyBroadcast, GetRddStorage, ListExecutors, PutBroadcast,
    SubmitJob, UnpersistBroadcast, UnpersistRdd,
)
from sparklet.runtime._pickling import dumps_closure, loads
from sparklet.runtime._progress import ConsoleProgressBar
from sparklet.runtime._shared import Accumulator, AccumulatorParam, AccumulatorRegistry, Broadcast
from sparklet.runtime._submit import submitted_defaults

__all__ = ["ContextCore", "parse_master"]

_MASTER = re.compile(r"^(local|inproc|sim)(?:\[(\*|\d+)\])?$")

# PySpark's local properties are per thread; ours follow the thread *and* the asyncio task.
_local_properties: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("sparklet_local_properties", default={})


def parse_master(master: str) -> tuple[str, int]:
    """``("local" | "inproc" | "sim", executors)`` from ``local``, ``local[4]``, ``local[*]``,
    ``inproc[2]``, ``sim[2]``."""
    match = _MASTER.match(master.strip()) if isinstance(master, str) else None
    if match is None:
        raise ValueError(f"master must be local, local[N], local[*], inproc, inproc[N], inproc[*], sim or sim[N]; "
                         f"got {master!r}")
    kind, count = match.groups()
    if count is None:
        return kind, 1
    n = os.cpu_count() or 1 if count == "*" else int(count)
    if n < 1:
        raise ValueError(f"master {master!r} asks for {n} executors; at least 1 is needed")
    return kind, n


class ContextCore:
    """Lifecycle, job submission and the thread/loop plumbing behind :class:`sparklet.Context`."""

    # Running contexts, oldest first, for getOrCreate (PySpark keeps one active SparkContext).
    _running: list["ContextCore"] = []
    _running_lock = threading.Lock()

    def __init__(self, master: str | None = None, appName: str | None = None, conf: dict | Conf | None = None, *,
                 faults: FaultPlan | None = None, ui: bool | int | None = None) -> None:
        # What code does not say comes from `sparklet submit` (SPARKLET_* variables), then defaults.
        submitted = submitted_defaults()
        self.master = master if master is not None else submitted.master or "local[*]"
        self.appName = appName if appName is not None else submitted.app_name or "sparklet"
        self.kind, self.executor_count = parse_master(self.master)
        self.conf = conf if isinstance(conf, Conf) else Conf({**submitted.conf, **(conf or {})})
        if faults is not None and not isinstance(faults, FaultPlan):
            raise TypeError(f"faults must be a FaultPlan, got {faults!r}")
        self.fault_plan = faults
        # Spark standalone's shape (app-<yyyyMMddHHmmss>-<n>): sorts by start time.
        self.applicationId = f"app-{time.strftime('%Y%m%d%H%M%S')}-{uuid.uuid4().hex[:8]}"
        self._event_log = self._new_event_log() if self.conf["eventLog.enabled"] else None
        self.checkpoint_dir: str | None = None
        # sim[N]: the in-process master on a seeded simulated loop (see actors/_sim.py).
        self.simulated = self.kind == "sim"
        self.sim_seed: int = self.conf["sim.seed"]
        self.listener_bus = ListenerBus(inline=self.simulated)
        self._progress = ConsoleProgressBar(enabled=self.conf["ui.showConsoleProgress"])
        self.listener_bus.add_internal(self._progress.on_event)
        self._observe = Observability(self, ui)  # trace dir and live UI; before any event is posted
        if faults:
            recorded = simenv.EPOCH if self.simulated else time.time()  # virtual time 0 in a simulation
            self.listener_bus.post(FaultPlanRecorded(recorded, faults.seed, tuple(faults.describe())))
        self._accumulators = AccumulatorRegistry()
        self._rdd_ids = itertools.count()
        self._shuffle_ids = itertools.count()
        self._job_ids = itertools.count()
        self._broadcast_ids = itertools.count()
        # Live broadcasts by id, while the user (or a closure) holds them: their values are the
        # source a restarted block manager master rebuilds its broadcast store from.
        self._live_broadcasts: weakref.WeakValueDictionary[int, Broadcast] = weakref.WeakValueDictionary()
        self._persistent: dict[int, RDDBase] = {}
        self._user_pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="sparklet-driver-user")
        self._system: ActorSystem | None = None
        self._driver: Any = None
        self._thread: threading.Thread | None = None
        self._background: set[asyncio.Task] = set()  # owned; awaited or cancelled in _shutdown
        self._stopped = False
        self._saved_random_state: Any = None
        # A simulation never embeds: it always runs its own loop, in its own thread.
        running = None if self.simulated else asyncio._get_running_loop()
        if running is None:
            self._start_own_loop()
        else:
            self._loop = running
            self._embedded = True
            self._starting: asyncio.Task | None = self._loop.create_task(self._start(), name="sparklet context start")
        with ContextCore._running_lock:
            ContextCore._running.append(self)

    # -- lifecycle ------------------------------------------------------------------------------------
    def _start_own_loop(self) -> None:
        self._embedded = False
        ready = threading.Event()
        holder: dict[str, Any] = {}

        def run() -> None:
            if self.simulated:
                loop: asyncio.AbstractEventLoop = SimulatedLoop(self.sim_seed)
            else:
                try:
                    import uvloop
                    loop = uvloop.new_event_loop()
                except ImportError:
                    loop = asyncio.new_event_loop()
            holder["loop"] = loop
            asyncio.set_event_loop(loop)
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"sparklet-driver-{self.appName}", daemon=True)
        self._thread.start()
        ready.wait()
        self._loop = holder["loop"]
        self._starting = None
        if self.simulated:
            # User code (closures run inline on the loop) draws from Python's global
            # generator too: seed it, and give the caller's state back at stop().
            self._saved_random_state = random.getstate()
            random.seed(self.sim_seed)
        try:
            self._submit(self._start()).result()
        except BaseException:
            self._stop_own_loop()
            self._release_threads()
            self._restore_random_state()
            raise

    async def _start(self) -> None:
        system = ActorSystem(f"sparklet-{self.appName}", tracing=self._observe.tracing, trace_dir=self._observe.trace_dir)
        await system.start()
        self._system = system
        try:
            if self._event_log is not None:
                await self._run_on_driver(self._event_log.open)
                self.listener_bus.add_listener(self._event_log.on_event)
            if self.kind == "local":
                await system.listen("tcp://127.0.0.1:0")
            install_message_faults(self)  # before any executor starts: message faults apply from the first message
            self._driver = await build_driver(self)
            await self._observe.start()
        except BaseException:
            if self._event_log is not None:
                self._event_log.abandon()
            await self._observe.stop()
            await system.shutdown()
            raise

    def _new_event_log(self) -> EventLogWriter:
        from sparklet import __version__

        return EventLogWriter(self.conf["eventLog.dir"], app_id=self.applicationId, app_name=self.appName,
                              master=self.master, start_time=time.time(), conf=self.conf.items(), version=__version__)

    async def _ready(self) -> None:
        if self._stopped:
            raise RuntimeError("this Context has been stopped; create a new one")
        if self._starting is not None:
            await asyncio.shield(self._starting)

    def stop(self) -> None:
        """Shut down the context: cancel running jobs, stop the executors (and their
        processes), and release every thread and socket. Idempotent."""
        if self._stopped:
            return
        if self._embedded:
            raise ActionInLoopError("stop() blocks; inside a running event loop use `await sc.stopAsync()`")
        try:
            self._submit(self._shutdown()).result()
        finally:
            self._stop_own_loop()
            self._release_threads()
            self._restore_random_state()

    async def stopAsync(self) -> None:
        """Awaitable twin of stop()."""
        if self._stopped:
            return
        if asyncio.get_running_loop() is not self._loop:
            return await asyncio.get_running_loop().run_in_executor(None, self.stop)
        await self._shutdown()
        await self._loop.run_in_executor(None, self._release_threads)

    async def _shutdown(self) -> None:
        self._stopped = True
        with ContextCore._running_lock:
            if self in ContextCore._running:
                ContextCore._running.remove(self)
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
        if self._starting is not None:
            await asyncio.gather(self._starting, return_exceptions=True)
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self._observe.stop()
        if self._system is not None:
            await self._system.shutdown()

    def _stop_own_loop(self) -> None:
        if self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._thread = None

    def _submit(self, coroutine: Coroutine) -> concurrent.futures.Future:
        """Run ``coroutine`` on the context's loop from another thread. A simulation lets it
        in at a quiescent point and moves virtual time only while such work is pending."""
        if self.simulated:
            return self._loop.submit(coroutine)
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop)

    def _restore_random_state(self) -> None:
        if self._saved_random_state is not None:
            random.setstate(self._saved_random_state)
            self._saved_random_state = None

    def _wait_until(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` holds or ``timeout`` seconds pass (virtual seconds
        under a simulation, where time moves only while someone waits); whether it held."""
        async def poll() -> bool:
            deadline = self._loop.time() + timeout
            while not predicate():
                if self._loop.time() >= deadline:
                    return False
                await asyncio.sleep(0.05)
            return True
        return self._block(poll())

    def _release_threads(self) -> None:
        self._user_pool.shutdown(wait=True)
        self.listener_bus.close()
        if self._event_log is not None:
            self._event_log.close()  # after the bus delivered its last event
        self._observe.close()

    def __enter__(self) -> "ContextCore":
        if self._embedded:
            raise ActionInLoopError("`with Context()` blocks; inside a running event loop use `async with Context()`")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    async def __aenter__(self) -> "ContextCore":
        await self._ready()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.stopAsync()

    def __reduce__(self) -> tuple:
        raise RuntimeError(
            "It appears that you are attempting to reference the Context from a broadcast variable, action, or "
            "transformation. The Context can only be used on the driver, not in code that runs on executors "
            "(see SPARK-5063)."
        )

    # -- the RDD contract (rdd/_base.py ContextLike) --------------------------------------------------------
    @property
    def defaultParallelism(self) -> int:
        """Default level of parallelism: the total number of task slots."""
        return self.executor_count * self.conf["executor.cores"]

    @property
    def defaultMinPartitions(self) -> int:
        return min(self.defaultParallelism, 2)

    def _new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    def _new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)

    def _local_properties(self) -> dict[str, str]:
        return dict(_local_properties.get())

    async def run_job_async(self, rdd: RDDBase, func: Callable[[TaskContext, Iterator], Any],
                            partitions: Sequence[int] | None = None) -> list[Any]:
        """Run ``func`` over the given partitions of ``rdd``; results in partition order.
        Cancelling the awaiting task cancels the job."""
        return await self._on_our_loop(self._run_job(rdd, func, partitions, self._local_properties()))

    async def _on_our_loop(self, coroutine: Coroutine) -> Any:
        """Await ``coroutine`` on the context's loop, from whichever loop we are awaited on
        (the driver's actors live on one loop; cancelling the caller cancels it there too)."""
        if asyncio.get_running_loop() is self._loop:
            return await coroutine
        return await asyncio.wrap_future(self._submit(coroutine))

    async def _run_job(self, rdd: RDDBase, func: Callable, partitions: Sequence[int] | None, properties: dict) -> list[Any]:
        await self._ready()
        parts = tuple(range(len(rdd.partitions))) if partitions is None else tuple(partitions)
        for p in parts:
            if not 0 <= p < len(rdd.partitions):
                raise ValueError(f"partition {p} does not exist in {rdd!r} ({len(rdd.partitions)} partitions)")
        if not parts:
            return []
        job_id = next(self._job_ids)
        reply = self._driver.jobs.ask_nowait(SubmitJob(job_id, Local(rdd), Local(func), parts, properties), timeout=1e9)
        while True:
            try:
                outcome = await reply
                break
            except JobManagerRestarted:  # it rebuilt its registry: wait for the job there again
                reply = self._driver.jobs.ask_nowait(AwaitJob(job_id), timeout=1e9)
            except asyncio.CancelledError:
                self._driver.jobs.tell(CancelJob(job_id, "the awaiting task was cancelled"))
                raise
        results = await self._run_on_driver(lambda: [loads(data) for data in outcome.value])
        await self._checkpoint_after_job(rdd)
        return results

    async def _checkpoint_after_job(self, rdd: RDDBase) -> None:
        pending, seen, stack = [], set(), [rdd]
        while stack:
            node = stack.pop()
            if node.id in seen:
                continue
            seen.add(node.id)
            if node._checkpoint_requested and node._checkpointed is None:
                pending.append(node)
            stack.extend(dep.rdd for dep in node.dependencies)
        for node in pending:
            await node._do_checkpoint()

    def _block(self, coroutine: Coroutine) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            twin = coroutine.__qualname__.rsplit(".", 1)[-1]
            coroutine.close()
            raise ActionInLoopError(
                f"{twin.removesuffix('Async')}() blocks; inside a running event loop use `await rdd.{twin}()`"
            )
        future = self._submit(coroutine)
        try:
            return future.result()
        except KeyboardInterrupt:
            future.cancel()
            raise

    async def _run_on_driver(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._user_pool, fn, *args)

    def _on_loop(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn`` on the context's loop (actor refs are not thread-safe)."""
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._loop.call_soon_threadsafe(fn, *args)
        else:
            fn(*args)

    def _ask(self, ref_name: str, message: Any, timeout: float = 30.0) -> Any:
        """Ask a driver actor from synchronous code."""
        async def ask() -> Any:
            await self._ready()
            return await getattr(self._driver, ref_name).ask(message, timeout=timeout)
        return self._block(ask())

    # -- persistence, checkpoints, shared variables -----------------------------------------------------------
    def _persist(self, rdd: RDDBase, level: Any) -> None:
        self._persistent[rdd.id] = rdd

    async def _unpersist_async(self, rdd: RDDBase, blocking: bool) -> None:
        self._persistent.pop(rdd.id, None)

        async def unpersist() -> None:
            await self._ready()
            if blocking:
                await self._driver.blocks.ask(UnpersistRdd(rdd.id), timeout=60)
            else:
                self._driver.blocks.tell(UnpersistRdd(rdd.id))

        await self._on_our_loop(unpersist())

    def _request_checkpoint(self, rdd: RDDBase) -> None:
        if self.checkpoint_dir is None:
            raise RuntimeError("Checkpoint directory has not been set in the SparkContext")

    def setCheckpointDir(self, dirName: str) -> None:
        """Set the directory under which RDDs are going to be checkpointed."""
        path = os.path.join(dirName, str(uuid.uuid4()))
        os.makedirs(path, exist_ok=True)
        self.checkpoint_dir = path

    def getCheckpointDir(self) -> str | None:
        return self.checkpoint_dir

    def getPersistentRDDs(self) -> dict[int, RDDBase]:
        return dict(self._persistent)

    def broadcast(self, value: Any) -> Broadcast:
        """Broadcast a read-only variable to the executors; it is sent to each executor once."""
        data = dumps_closure(value, "the broadcast value")
        bid = next(self._broadcast_ids)
        self._on_loop(self._tell_when_ready, "blocks", PutBroadcast(bid, data))
        broadcast = Broadcast(self, bid, value, self._release_broadcast)
        self._live_broadcasts[bid] = broadcast
        return broadcast

    def _live_broadcast_values(self) -> dict[int, Any]:
        """Each live broadcast's value (a restarted block manager master pickles them again)."""
        return {bid: b._value for bid, b in list(self._live_broadcasts.items()) if not b._destroyed}

    def _release_broadcast(self, bid: int, destroy: bool, blocking: bool) -> None:
        if destroy:
            self._live_broadcasts.pop(bid, None)
        self._on_loop(self._tell_when_ready, "blocks", DestroyBroadcast(bid) if destroy else UnpersistBroadcast(bid))

    def _tell_when_ready(self, ref_name: str, message: Any) -> None:
        async def tell() -> None:
            await self._ready()
            getattr(self._driver, ref_name).tell(message)
        if self._starting is None or self._starting.done():
            getattr(self._driver, ref_name).tell(message)
        else:
            self._system_task(tell())

    def _system_task(self, coroutine: Coroutine) -> None:
        task = self._loop.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def accumulator(self, value: Any, accum_param: AccumulatorParam | None = None) -> Accumulator:
        """Create an Accumulator with the given initial value, using a given AccumulatorParam
        helper object to define how to add values of the data type if provided."""
        return self._accumulators.new(value, accum_param)

    # -- jobs, groups, properties ------------------------------------------------------------------------------
    def setLocalProperty(self, key: str, value: str | None) -> None:
        """Set a local property that affects jobs submitted from this thread (or task)."""
        props = dict(_local_properties.get())
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
        _local_properties.set(props)

    def getLocalProperty(self, key: str) -> str | None:
        return _local_properties.get().get(key)

    def setJobGroup(self, groupId: str, description: str, interruptOnCancel: bool = False) -> None:
        """Assign a group ID to all the jobs started by this thread (or task) until changed."""
        self.setLocalProperty("spark.jobGroup.id", groupId)
        self.setLocalProperty("spark.job.description", description)
        self.setLocalProperty("spark.job.interruptOnCancel", str(interruptOnCancel).lower())

    def setJobDescription(self, value: str) -> None:
        self.setLocalProperty("spark.job.description", value)

    def cancelJobGroup(self, groupId: str) -> None:
        """Cancel active jobs for the specified group."""
        self._on_loop(self._tell_when_ready, "jobs", CancelJobGroup(groupId, f"part of cancelled job group {groupId}"))

    def cancelAllJobs(self) -> None:
        """Cancel all jobs that have been scheduled or are running."""
        self._on_loop(self._tell_when_ready, "jobs", CancelAllJobs("as part of cancellation of all jobs"))

    # -- looking at what happened -----------------------------------------------------------------------------
    def listener_events(self, kind: type | tuple[type, ...] | None = None, **match: Any) -> list[SchedulerEvent]:
        """Scheduler events so far (job/stage/task start and end, executors), oldest first."""
        return self.listener_bus.events(kind, **match)

    def addListener(self, callback: Callable[[SchedulerEvent], Any]) -> None:
        """Call ``callback(event)`` for every later scheduler event, in order, on one thread."""
        self.listener_bus.add_listener(callback)

    def executors(self) -> list[dict]:
        """The live executors: id, host, pid, cores, running tasks."""
        return self._ask("tasks", ListExecutors())

    def storage_status(self, rdd: RDDBase) -> Any:
        """Which partitions of a cached RDD are cached where, in memory or on disk."""
        return self._ask("blocks", GetRddStorage(rdd.id)).value

    @property
    def uiWebUrl(self) -> str | None:
        """The live UI's address (``http://127.0.0.1:PORT/``), or None when it is off."""
        return self._observe.ui.url if self._observe.ui is not None else None

    @property
    def trace_dir(self) -> str | None:
        """The trace directory (conf ``trace.dir``) this application writes, or None."""
        return self._observe.trace_dir

    @property
    def actor_system(self) -> ActorSystem:
        assert self._system is not None
        return self._system

    @property
    def version(self) -> str:
        from sparklet import __version__
        return __version__

    def __repr__(self) -> str:
        return f"<Context master={self.master} appName={self.appName}>"

