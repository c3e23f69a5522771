"""The TaskScheduler actor: the I/O shell around the task scheduler's sans-I/O core.

``TaskScheduler`` wraps :class:`~sparklet.runtime._tasksets.TaskSchedulerCore` and is
the executors' counterpart: registration, status updates, heartbeats and death watch.
It sends a stage's binary to an executor once, before that executor's first task of
the stage, and each task with only its pickled partition. An executor is lost when its
reference terminates (its process died: the connection closed) or when it has been
silent for ``network.timeout`` seconds; its running tasks are resubmitted elsewhere.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

from sparklet.actors import Actor, ActorRef, DeferredReply, Local, RecycleProcess, Terminated, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._messages import (
    ExecutorGone, ExpireDeadExecutors, FaultFired, Heartbeat, InterruptTask, ListExecutors, RegisterExecutor, ReviveOffers,
    RunTask, SchedulerActions, SchedulerEvent, StageBinary, StatusUpdate, AwaitExecutors, DropStageBinary,
)
from sparklet.runtime._pickling import loads, rebuild_error
from sparklet.runtime._sched_events import KillTask, LaunchTask, MapStatus, SubmitTasks, TaskEnded
from sparklet.runtime._tasksets import TaskSchedulerCore

__all__ = ["TaskNotSent", "TaskScheduler"]


class TaskNotSent(Exception):
    """A task (its binary or its partition) could not be sent to an executor."""


class _Executor:
    __slots__ = ("executor_id", "ref", "host", "cores", "pid", "last_seen", "binaries", "running")

    def __init__(self, msg: RegisterExecutor, now: float) -> None:
        self.executor_id, self.ref, self.host, self.cores, self.pid = msg.executor_id, msg.ref, msg.host, msg.cores, msg.pid
        self.last_seen = now
        self.binaries: set[str] = set()
        self.running = 0


class TaskScheduler(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        conf = shared.conf
        self.core = TaskSchedulerCore(clock=time.monotonic, max_failures=conf["task.maxFailures"],
                                      locality_wait=conf["locality.wait"])
        self._timeout = conf["network.timeout"]
        # Invariant: exactly the executors registered with the core.
        self._executors: dict[str, _Executor] = {}
        self._ref_to_executor: dict[ActorRef, str] = {}
        # "stage.attempt" -> (rdd, binary, properties, is shuffle map) for live task sets
        self._task_sets: dict[str, tuple[Any, bytes, dict, bool]] = {}
        self._launched: dict[int, LaunchTask] = {}
        self._waiting_for_executors: list[tuple[int, DeferredReply]] = []
        # executor id -> indices of planned faults that fired on it (in any of its incarnations):
        # a fault addresses the executor, so a replacement process does not fire it again.
        self._fired_faults: dict[str, set[int]] = {}

    def pre_start(self) -> None:
        self._dag: ActorRef = self.context.system.ref_for(None, self._shared.paths["dag"])
        self._blocks: ActorRef = self.context.system.ref_for(None, self._shared.paths["blocks"])
        self.timers.start_periodic("expire", ExpireDeadExecutors(), max(0.5, self._timeout / 4))

    # -- executors -------------------------------------------------------------------------------
    @handler(RegisterExecutor)
    def register(self, msg: RegisterExecutor) -> tuple:
        old = self._executors.get(msg.executor_id)
        if old is not None:
            self._lose(msg.executor_id, "re-registered (the executor restarted)")
        self._executors[msg.executor_id] = _Executor(msg, time.monotonic())
        self._shared.executor_refs[msg.executor_id] = msg.ref
        self._ref_to_executor[msg.ref] = msg.executor_id
        self.context.watch(msg.ref)
        self._blocks.tell(msg)
        self._shared.listener_bus.post(listen.ExecutorRegistered(time.time(), msg.executor_id, msg.host, msg.cores, msg.pid))
        self._route(self.core.executor_added(msg.executor_id, msg.host, msg.cores))
        self._answer_waiters()
        return tuple(sorted(self._fired_faults.get(msg.executor_id, ())))

    @handler(AwaitExecutors)
    def await_executors(self, msg: AwaitExecutors) -> None:
        reply = self.context.defer_reply()
        self._waiting_for_executors.append((msg.count, reply))
        self._answer_waiters()

    def _answer_waiters(self) -> None:
        still = []
        for count, reply in self._waiting_for_executors:
            if len(self._executors) >= count:
                reply.set_result(len(self._executors))
            else:
                still.append((count, reply))
        self._waiting_for_executors = still

    @handler(Terminated)
    def executor_terminated(self, msg: Terminated) -> None:
        executor_id = self._ref_to_executor.get(msg.actor)
        if executor_id is not None and executor_id in self._executors and self._executors[executor_id].ref == msg.actor:
            self._lose(executor_id, f"executor {executor_id} terminated ({msg.reason})")

    @handler(Heartbeat)
    def heartbeat(self, msg: Heartbeat) -> None:
        executor = self._executors.get(msg.executor_id)
        if executor is None:
            return
        executor.last_seen = time.monotonic()
        # The connection is ordered: every status the executor sent before this heartbeat has
        # been handled. A task it received (id <= highest) that it no longer runs and that we
        # still think is running lost its status update: it runs again (not counted as a failure).
        running = set(msg.running_task_ids)
        lost = [task_id for task_id, launch in self._launched.items()
                if launch.executor_id == msg.executor_id and task_id <= msg.highest_task_id and task_id not in running]
        for task_id in lost:
            launch = self._launched.pop(task_id)
            executor.running -= 1
            reason = f"the status update of task {task_id} never arrived from executor {msg.executor_id}"
            self._shared.listener_bus.post(listen.TaskEnd(
                time.time(), task_id, launch.stage_id, launch.stage_attempt, launch.partition, launch.attempt_number,
                msg.executor_id, "executor_lost", reason, {}))
            self._route(self.core.task_ended(task_id, "executor_lost", reason))

    @handler(ExpireDeadExecutors)
    def expire(self, msg: ExpireDeadExecutors) -> None:
        now = time.monotonic()
        for executor in list(self._executors.values()):
            if now - executor.last_seen > self._timeout:
                reason = f"no heartbeat for {now - executor.last_seen:.1f}s (network.timeout is {self._timeout}s)"
                self._lose(executor.executor_id, reason)
                if self._shared.recycle_silent_executors:
                    # Silent but maybe alive (stopped, wedged): make sure it is gone, and
                    # let its supervisor start a fresh one.
                    path = f"{self._shared.paths['executors']}/{executor.executor_id}"
                    self.context.system.ref_for(None, path).tell(RecycleProcess(reason))

    def _lose(self, executor_id: str, reason: str) -> None:
        executor = self._executors.pop(executor_id, None)
        if executor is None:
            return
        self._ref_to_executor.pop(executor.ref, None)
        if self._shared.executor_refs.get(executor_id) == executor.ref:
            del self._shared.executor_refs[executor_id]
        self.context.unwatch(executor.ref)
        self._blocks.tell(ExecutorGone(executor_id, reason))
        self._shared.listener_bus.post(listen.ExecutorRemoved(time.time(), executor_id, reason))
        self._route(self.core.executor_lost(executor_id, reason))

    @handler(FaultFired)
    def fault_fired(self, msg: FaultFired) -> None:
        self._fired_faults.setdefault(msg.executor_id, set()).add(msg.index)
        self._shared.listener_bus.post(listen.FaultInjected(time.time(), msg.executor_id, msg.index, msg.fault, msg.where))
        events = self.context.system.events
        if events.enabled:
            events.record("fault", self.context.path, executor=msg.executor_id, fault=msg.fault, where=msg.where)

    @handler(ListExecutors)
    def list_executors(self, msg: ListExecutors) -> list:
        return [{"executor_id": e.executor_id, "host": e.host, "pid": e.pid, "cores": e.cores,
                 "running_tasks": e.running, "address": e.ref.address} for e in self._executors.values()]

    # -- task sets -----------------------------------------------------------------------------------
    @handler(SchedulerActions)
    def from_dag(self, msg: SchedulerActions) -> None:
        for action, binary in msg.actions.value:
            if isinstance(action, SubmitTasks):
                self._task_sets[f"{action.stage_id}.{action.stage_attempt}"] = (action.rdd, binary, action.properties,
                                                                                action.is_shuffle_map)
            self._route(self.core.handle(action))

    @handler(ReviveOffers)
    def revive(self, msg: ReviveOffers) -> None:
        self._route(self.core.resource_offers())

    @handler(StatusUpdate)
    def status_update(self, msg: StatusUpdate) -> None:
        launch = self._launched.pop(msg.task_id, None)
        if launch is None:
            return  # already accounted for (its executor was declared lost)
        executor = self._executors.get(msg.executor_id)
        if executor is not None:
            executor.running -= 1
        result: Any = msg.result
        reason = ""
        map_status = None
        fetch: dict[str, Any] = {}
        if msg.state == "failed":
            result = rebuild_error(msg.error)
            reason = f"{msg.error[0]}: {msg.error[1]}"
        elif msg.state == "killed":
            reason = "killed"
        elif msg.state == "fetch_failed":
            reason = f"FetchFailed: {msg.error[1]}"
            shuffle_id, map_id, holder = msg.fetch_failed
            fetch = {"fetch_failed_shuffle_id": shuffle_id, "fetch_failed_map_id": map_id,
                     "fetch_failed_executor_id": holder}
            result = None
        elif self._is_shuffle_map(launch):
            map_status = MapStatus(msg.executor_id, tuple(loads(msg.result)), msg.task_id)
            result = None
        self._shared.listener_bus.post(listen.TaskEnd(
            time.time(), msg.task_id, launch.stage_id, launch.stage_attempt, launch.partition, launch.attempt_number,
            msg.executor_id, msg.state, reason or None, dict(msg.metrics)))
        updates = (msg.accum_updates,) if msg.accum_updates is not None else ()
        self._route(self.core.task_ended(msg.task_id, msg.state, reason, result=result, accum_updates=updates,
                                         metrics=dict(msg.metrics), map_status=map_status, **fetch))

    def _is_shuffle_map(self, launch: LaunchTask) -> bool:
        entry = self._task_sets.get(f"{launch.stage_id}.{launch.stage_attempt}")
        return entry is not None and entry[3]

    def _route(self, actions: list) -> None:
        """Carry out the task scheduler core's actions."""
        to_dag = []
        for action in actions:
            if isinstance(action, LaunchTask):
                self._launch(action)
            elif isinstance(action, KillTask):
                executor = self._executors.get(action.executor_id)
                if executor is not None:
                    executor.ref.tell(InterruptTask(action.task_id, action.reason))
            else:
                if isinstance(action, TaskEnded) and action.task_id in self._launched and action.status == "executor_lost":
                    lost = self._launched.pop(action.task_id)
                    self._shared.listener_bus.post(listen.TaskEnd(
                        time.time(), action.task_id, lost.stage_id, lost.stage_attempt, lost.partition,
                        lost.attempt_number, lost.executor_id, "executor_lost", action.reason, {}))
                to_dag.append(action)
        for event in to_dag:
            self._dag.tell(SchedulerEvent(Local(event)))
        self._forget_finished_task_sets()
        deadline = self.core.next_locality_deadline()
        if deadline is not None:
            self.timers.start_single("revive", ReviveOffers(), max(0.0, deadline - time.monotonic()))

    def _launch(self, launch: LaunchTask) -> None:
        executor = self._executors[launch.executor_id]
        key = f"{launch.stage_id}.{launch.stage_attempt}"
        rdd, binary, properties, shuffle_map = self._task_sets[key]
        try:
            if key not in executor.binaries:
                executor.ref.tell(StageBinary(key, binary))
                executor.binaries.add(key)
            partition = pickle.dumps(rdd.partitions[launch.partition], protocol=pickle.HIGHEST_PROTOCOL)
            executor.ref.tell(RunTask(launch.task_id, key, launch.stage_id, launch.stage_attempt, launch.partition,
                                      launch.attempt_number, partition, properties, shuffle_map,
                                      self._shared.map_output_epoch(), self._barrier_addresses(launch)))
        except Exception as exc:  # cannot ship it (too large for a frame, unpicklable partition): the task fails
            error = TaskNotSent(f"task {launch.task_id} (partition {launch.partition} of stage {launch.stage_id}) "
                                f"could not be sent to executor {launch.executor_id}: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._route(self.core.task_ended(launch.task_id, "failed", str(error), result=error))
            return
        executor.running += 1
        self._launched[launch.task_id] = launch
        self._shared.listener_bus.post(listen.TaskStart(
            time.time(), launch.task_id, launch.stage_id, launch.stage_attempt, launch.partition,
            launch.attempt_number, launch.executor_id, launch.locality.name))

    def _barrier_addresses(self, launch: LaunchTask) -> tuple[str, ...]:
        """barrier: where each task of the launch's set runs, by task index (the core
        launched them all at once, so every one has an attempt); () for other sets."""
        manager = self.core.task_sets.get((launch.stage_id, launch.stage_attempt))
        if manager is None or not manager.barrier:
            return ()
        executors = [attempts[-1].executor_id if attempts else "" for attempts in manager.attempts]
        return tuple((e.ref.address or e.host) if (e := self._executors.get(x)) is not None else x for x in executors)

    def _forget_finished_task_sets(self) -> None:
        live = {f"{m.stage_id}.{m.stage_attempt}" for m in self.core.task_sets.values()}
        for key in [k for k in self._task_sets if k not in live]:
            del self._task_sets[key]
            for executor in self._executors.values():
                if key in executor.binaries:
                    executor.binaries.discard(key)
                    executor.ref.tell(DropStageBinary(key))
