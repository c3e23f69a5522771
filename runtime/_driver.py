"""The driver's actors and the supervision tree that holds them.

::

    /user/sparklet                       Supervisor one_for_one
    ├── block-manager-master             block locations, broadcasts
    ├── map-output-tracker               where shuffle map outputs are (authoritative)
    ├── scheduler                        Supervisor rest_for_one
    │   ├── task-scheduler               executors' registry, heartbeats, task sets
    │   └── dag-scheduler                jobs, stages, attempts (a replica of the map outputs)
    ├── job-manager                      the job registry and the waiters
    └── executors                        Supervisor one_for_one, with backoff
        ├── exec-0                       ProcessActor(Executor) under local[N]: a restart
        └── exec-1 ...                   starts a new process; Executor under inproc[N]

Children start in that order, so the schedulers exist before any executor registers.

Why ``rest_for_one`` with the task scheduler first: a crashed DAG scheduler restarts
alone. The task sets it submitted keep running meanwhile, executors stay registered, and
the restarted DAG scheduler rebuilds its view from the job manager (running jobs, results
received so far) and the map output tracker (map outputs), cancels its predecessor's task
sets and resubmits only what is missing. A crashed task scheduler takes its task sets
with it, so the DAG scheduler started after it restarts too and resubmits everything its
jobs still miss. (``one_for_all``, the previous choice, restarted the task scheduler on a
DAG crash too, killing running task sets for nothing.) State that must survive a crash is
kept in two actors that fail independently, each rebuilding from the other; see
``docs/recovery.md``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable

from sparklet.actors import ActorRef, ProcessActor, Props
from sparklet.runtime._barrier import BarrierCoordinator
from sparklet.runtime._driver_blocks import BlockManagerMaster
from sparklet.runtime._driver_faults import DriverFaultInjector
from sparklet.runtime._executor import Executor
from sparklet.runtime._job_summary import JobSummaries
from sparklet.runtime._jobs import JobManager
from sparklet.runtime._map_outputs import MapOutputTracker
from sparklet.runtime._messages import AwaitExecutors
from sparklet.runtime._dag_actor import DAGScheduler
from sparklet.runtime._task_scheduler import TaskScheduler
from sparklet.supervision import Backoff, ChildSpec, Supervisor, SupervisorFlags

__all__ = ["build_driver", "DriverHandles", "DriverShared", "PATHS"]

ROOT = "/user/sparklet"
PATHS = {
    "blocks": f"{ROOT}/block-manager-master",
    "dag": f"{ROOT}/scheduler/dag-scheduler",
    "tasks": f"{ROOT}/scheduler/task-scheduler",
    "jobs": f"{ROOT}/job-manager",
    "map_outputs": f"{ROOT}/map-output-tracker",
    "executors": f"{ROOT}/executors",
    "barrier": f"{ROOT}/barrier-coordinator",
}


class DriverShared:
    """Process-local things the driver's actors share: configuration, the listener bus,
    the accumulator registry, a way to run user code off the loop, and a read-only view
    of where cached blocks are (the DAG scheduler's preferred locations)."""

    def __init__(self, ctx: Any) -> None:
        self.conf = ctx.conf
        self.listener_bus = ctx.listener_bus
        self.accumulators = ctx._accumulators
        self.run_on_driver: Callable = ctx._run_on_driver
        self.paths = PATHS
        self.recycle_silent_executors = ctx.kind == "local"  # executors in processes can be replaced
        self.block_locations: Callable[[int], dict[int, list[str]]] = lambda rdd_id: {}
        self.map_outputs: Any = None  # the DAG core's replica of the map outputs (set by the DAG scheduler)
        self.executor_refs: dict[str, ActorRef] = {}  # kept by the task scheduler
        self.live_broadcasts: Callable[[], dict[int, Any]] = ctx._live_broadcast_values
        self.job_summaries: Any = None  # a JobSummaries (the DAG scheduler attaches one to each JobEnd)

    def map_output_epoch(self) -> int:
        return self.map_outputs.epoch if self.map_outputs is not None else 0

    def cache_locations(self, rdd_id: int) -> dict[int, list[str]]:
        return self.block_locations(rdd_id)


@dataclasses.dataclass(frozen=True)
class DriverHandles:
    root: ActorRef
    jobs: ActorRef
    dag: ActorRef
    tasks: ActorRef
    blocks: ActorRef


def _executor_spec(ctx: Any, index: int) -> ChildSpec:
    conf = ctx.conf
    executor_id = f"exec-{index}"
    executor = Props.of(Executor, executor_id, ctx._system.address, cores=conf["executor.cores"],
                        memory=conf["executor.memory"], local_dir=conf["local.dir"],
                        heartbeat_interval=conf["executor.heartbeatInterval"],
                        shuffle_memory=conf["shuffle.memory"], max_in_flight=conf["reducer.maxSizeInFlight"],
                        fault_plan=ctx.fault_plan, fetch_timeout=conf["shuffle.fetchTimeout"])
    if ctx.kind == "local":
        # PYTHONHASHSEED=0 as Spark sets it, so hash-based partitioning agrees across executors.
        env = dict(os.environ, PYTHONHASHSEED="0")
        start = Props.of(ProcessActor, executor, executor_id, startup_timeout=conf["executor.startupTimeout"], env=env)
    else:
        start = executor
    return ChildSpec(executor_id, start, restart="permanent", shutdown=10.0, backoff=Backoff(0.2, 5.0))


async def build_driver(ctx: Any) -> DriverHandles:
    system = ctx._system
    shared = DriverShared(ctx)
    n = ctx.executor_count
    scheduler = Supervisor.props(SupervisorFlags("rest_for_one", intensity=3, period=30), [
        ChildSpec("task-scheduler", Props.of(TaskScheduler, shared)),
        ChildSpec("dag-scheduler", Props.of(DAGScheduler, shared)),
    ])
    executors = Supervisor.props(SupervisorFlags("one_for_one", intensity=3 * n, period=60),
                                 [_executor_spec(ctx, i) for i in range(n)])
    root = Supervisor.props(SupervisorFlags("one_for_one", intensity=10, period=60), [
        ChildSpec("block-manager-master", Props.of(BlockManagerMaster, shared)),
        ChildSpec("map-output-tracker", Props.of(MapOutputTracker, shared)),
        ChildSpec("scheduler", scheduler, type="supervisor"),
        ChildSpec("job-manager", Props.of(JobManager, PATHS["dag"], ctx.listener_bus)),
        ChildSpec("barrier-coordinator", Props.of(BarrierCoordinator, shared)),
        ChildSpec("executors", executors, type="supervisor", shutdown=30.0),
    ])
    shared.job_summaries = JobSummaries()
    ctx.listener_bus.add_internal(shared.job_summaries.on_event)
    injector = DriverFaultInjector(ctx.fault_plan, system, shared)
    if injector:
        ctx.listener_bus.add_internal(injector.on_event)
    root_ref = await system.spawn(root, "sparklet", shutdown=60.0)
    handles = DriverHandles(root_ref, *(system.ref_for(None, PATHS[k]) for k in ("jobs", "dag", "tasks", "blocks")))
    await handles.tasks.ask(AwaitExecutors(n), timeout=ctx.conf["executor.startupTimeout"])
    return handles
