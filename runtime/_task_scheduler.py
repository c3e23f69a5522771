"""The TaskScheduler actor: the I/O shell around the task scheduler's cross-set core.

``TaskScheduler`` wraps :class:`~sparklet.runtime._tasksets.TaskSchedulerCore` (executors,
free cores, FIFO order between task sets, task ids) and is the executors' counterpart:
registration, status updates, heartbeats and death watch. Each stage attempt's tasks are
a child actor, ``stage-<stage id>.<attempt>`` (:class:`~sparklet.runtime._task_set_actor.TaskSetManager`),
spawned on ``SubmitTasks``. Free cores are offered to one set at a time in FIFO order
(``OfferCores``; a status update carries an offer of the core it freed when FIFO order
gives that core back to the same set, so the common case is one exchange per task); status updates
are routed to the owning set by task id; every set answers with a ``TaskSetReport`` whose
DAG events this actor forwards in order. Nothing here waits for a set: the scheduler
keeps answering executors while sets work, and a set that fails is stopped, its tasks
killed, and the DAG scheduler told ``TaskSetLost`` (it submits a new attempt).

An executor is lost when its reference terminates (its process died: the connection
closed) or when it has been silent for ``network.timeout`` seconds; its running tasks are
reported lost to their sets and run again elsewhere.
"""

from __future__ import annotations

import logging
from sparklet.actors import simenv as time  # time() and monotonic() follow a simulation's virtual clock
from typing import Any

from sparklet.actors import (
    Actor, ActorRef, ChildFailure, DeferredReply, Local, Props, RecycleProcess, Terminated, handler, message,
)
from sparklet.runtime import _listener as listen
from sparklet.runtime._messages import (
    AwaitExecutors, DropStageBinary, ExecutorGone, ExpireDeadExecutors, FaultFired, Heartbeat, InterruptTask,
    ListExecutors, ReRegisterExecutor, RegisterExecutor, ReviveOffers, SchedulerActions, SchedulerEvent, StatusUpdate,
)
from sparklet.runtime._sched_events import CancelTasks, LaunchTask, MarkPartitionCompleted, SubmitTasks, TaskSetLost
from sparklet.runtime._task_set_actor import (
    CancelTaskSet, CompletePartition, ExecutorsChanged, OfferCores, ReportTaskLost, ReportTaskStatus, SupersedeTaskSet,
    TaskNotSent, TaskSetCrashed, TaskSetManager, TaskSetReport, exclude_on_failure, task_set_name,
)
from sparklet.runtime._sched_health import ExecutorExcludedInfo, ExecutorUnexcludedInfo, HealthTracker
from sparklet.runtime._tasksets import Offer, TaskLost, TaskSchedulerCore

__all__ = ["TaskNotSent", "TaskScheduler"]

log = logging.getLogger(__name__)


@message(tag="sparklet.ExpireExclusions")
class ExpireExclusions:
    """(to itself) An executor's exclusion on failure may have run out."""


class _Executor:
    __slots__ = ("executor_id", "ref", "host", "cores", "pid", "last_seen")

    def __init__(self, msg: RegisterExecutor, now: float) -> None:
        self.executor_id, self.ref, self.host, self.cores, self.pid = msg.executor_id, msg.ref, msg.host, msg.cores, msg.pid
        self.last_seen = now


class TaskScheduler(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        conf = shared.conf
        exclude = exclude_on_failure(conf)
        health = HealthTracker(exclude, clock=time.monotonic) if exclude is not None else None
        self.core = TaskSchedulerCore(clock=time.monotonic, health=health)
        self._timeout = conf["network.timeout"]
        # Invariant: exactly the executors registered with the core.
        self._executors: dict[str, _Executor] = {}
        self._ref_to_executor: dict[ActorRef, str] = {}
        # Invariant: the actor of every registered task set that has not crashed.
        self._set_refs: dict[tuple[int, int], ActorRef] = {}
        # Invariant: exactly the tasks the core books as running.
        self._launches: dict[int, LaunchTask] = {}
        self._waiting_for_executors: list[tuple[int, DeferredReply]] = []
        # executor id -> indices of planned faults that fired on it (in any of its incarnations):
        # a fault addresses the executor, so a replacement process does not fire it again.
        self._fired_faults: dict[str, set[int]] = {}
        # executor id -> {task id launched there but not yet received: first seen so (monotonic)}
        self._unreceived: dict[str, dict[int, float]] = {}

    def pre_start(self) -> None:
        self._dag: ActorRef = self.context.system.ref_for(None, self._shared.paths["dag"])
        self._blocks: ActorRef = self.context.system.ref_for(None, self._shared.paths["blocks"])
        self.timers.start_periodic("expire", ExpireDeadExecutors(), max(0.5, self._timeout / 4))

    # -- recovery after a crash (added by the recovery work; see docs/recovery.md) ---------------
    def post_restart(self, reason: BaseException) -> None:
        self.pre_start()
        # Task ids of this incarnation start above any an earlier one used: a late status
        # update of a crashed incarnation's task can never be taken for one of ours.
        self.core.next_task_id = (self.context.restart_count + 1) << 40
        executors = dict(self._shared.executor_refs)
        for ref in executors.values():
            ref.tell(ReRegisterExecutor(f"the task scheduler restarted ({type(reason).__name__}: {reason})"))
        self._shared.listener_bus.post(listen.ActorRecovered(
            time.time(), self.context.path, self.context.parent.path if self.context.parent else "",
            self.context.restart_count + 1, f"{type(reason).__name__}: {reason}",
            f"executors {sorted(executors)} asked to register again; task ids from {self.core.next_task_id}"))
    # -- end of the recovery addition ---------------------------------------------------------------

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
        self._executors_changed(self.core.executor_added(msg.executor_id, msg.host, msg.cores))
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
        info = self.core.executors.get(msg.executor_id)
        lost = sorted(task_id for task_id in (info.running if info is not None else ())
                      if task_id <= msg.highest_task_id and task_id not in running)
        for task_id in lost:
            entry = self.core.task_ended(task_id)
            reason = f"the status update of task {task_id} never arrived from executor {msg.executor_id}"
            self._task_lost(TaskLost(entry.key, task_id, msg.executor_id, reason))
        # The other way round: a task we launched there that the executor has still not
        # received (id > highest) after network.timeout lost its RunTask on the way.
        now = time.monotonic()
        unreceived = [t for t in (info.running if info is not None else ()) if t > msg.highest_task_id]
        since = self._unreceived.setdefault(msg.executor_id, {})
        for task_id in [t for t in since if t not in unreceived]:
            del since[task_id]
        launch_lost = []
        for task_id in unreceived:
            if now - since.setdefault(task_id, now) > self._timeout:
                launch_lost.append(task_id)
        for task_id in sorted(launch_lost):
            del since[task_id]
            entry = self.core.task_ended(task_id)
            reason = (f"task {task_id} never reached executor {msg.executor_id} (its launch was lost; "
                      f"network.timeout is {self._timeout}s)")
            self._task_lost(TaskLost(entry.key, task_id, msg.executor_id, reason))
        if lost or launch_lost:
            self._pump()

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
        self._unreceived.pop(executor_id, None)
        self._ref_to_executor.pop(executor.ref, None)
        if self._shared.executor_refs.get(executor_id) == executor.ref:
            del self._shared.executor_refs[executor_id]
        self.context.unwatch(executor.ref)
        self._blocks.tell(ExecutorGone(executor_id, reason))
        self._shared.listener_bus.post(listen.ExecutorRemoved(time.time(), executor_id, reason))
        self._executors_changed(self.core.executor_lost(executor_id, reason), lost=(executor.ref,))

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
                 "running_tasks": len(self.core.executors[e.executor_id].running), "address": e.ref.address}
                for e in self._executors.values()]

    # -- task sets -----------------------------------------------------------------------------------
    @handler(SchedulerActions)
    async def from_dag(self, msg: SchedulerActions) -> None:
        for action, binary in msg.actions.value:
            if isinstance(action, SubmitTasks):
                await self._submit(action, binary)
            elif isinstance(action, CancelTasks):
                for entry in self.core.sets_of(action.stage_id):
                    ref = self._set_refs.get(entry.key)
                    if ref is not None and action.stage_attempt in (None, entry.stage_attempt):
                        self.core.set_state(entry.key, is_zombie=True, is_finished=False)
                        ref.tell(CancelTaskSet(action.reason))
            elif isinstance(action, MarkPartitionCompleted):
                for entry in self.core.sets_of(action.stage_id):
                    ref = self._set_refs.get(entry.key)
                    if ref is not None and not entry.is_zombie:
                        ref.tell(CompletePartition(action.partition))
        self._pump()

    async def _submit(self, task_set: SubmitTasks, binary: bytes) -> None:
        key = (task_set.stage_id, task_set.stage_attempt)
        for old in self.core.add_task_set(*key, task_set.priority, cause=task_set.cause):
            ref = self._set_refs.get(old)
            if ref is not None:
                ref.tell(SupersedeTaskSet())
        if not task_set.tasks:
            self.core.set_state(key, is_zombie=True, is_finished=True)
            return
        props = Props.of(TaskSetManager, task_set, binary, self._shared, self.core.executor_hosts())
        self._set_refs[key] = await self.context.spawn(props, task_set_name(*key))

    @handler(ReviveOffers)
    def revive(self, msg: ReviveOffers) -> None:
        self.core.revive()
        self._pump()

    @handler(StatusUpdate)
    def status_update(self, msg: StatusUpdate) -> None:
        entry = self.core.task_ended(msg.task_id)
        if entry is None:
            return  # already accounted for (its executor was declared lost, or a duplicate)
        launch = self._launches.pop(msg.task_id)
        ref = self._set_refs.get(entry.key)
        if ref is None:  # its set crashed: the task was killed, its outcome is void
            self._post_void_end(launch, msg.state, dict(msg.metrics))
            self._pump()
            return
        offer = self.core.offer_to_first(entry.key)
        ref.tell(ReportTaskStatus(Local(msg), Local(offer), Local(self._refs_for(offer) if offer else None)))
        self._pump()

    @handler(TaskSetReport)
    async def task_set_report(self, msg: TaskSetReport) -> None:
        key = (msg.stage_id, msg.stage_attempt)
        offer = msg.offer.value
        if key not in self.core.task_sets:  # a last word from a set that finished: book nothing
            for launch in msg.launches.value:  # (a finished set launches nothing; never book it if it did)
                self._kill_stray(launch, f"task set {task_set_name(*key)} is gone")
            for event in msg.events.value:
                self._dag.tell(SchedulerEvent(Local(event)))
            return
        if offer is not None:
            launches = msg.launches.value
            lost = self.core.offer_answered(offer, launches)
            for launch in launches:
                self._launches[launch.task_id] = launch
            for task_id in msg.unsent:
                self.core.task_ended(task_id)
                self._launches.pop(task_id, None)
            for task_lost in lost:
                self._launches.pop(task_lost.task_id, None)
                self._tell_set(task_lost.key, ReportTaskLost(Local(task_lost)))
        for event in msg.events.value:
            self._dag.tell(SchedulerEvent(Local(event)))
        if self.core.set_state(key, is_zombie=msg.is_zombie, is_finished=msg.is_finished):
            self._post_health(self.core.task_set_succeeded(msg.failures_by_executor))
            ref = self._set_refs.pop(key, None)
            if ref is not None:
                await self.context.stop(ref, reason="normal")
        self._pump()

    async def handle_child_failure(self, failure: ChildFailure) -> None:
        """A task set's actor failed: its state is gone, so it is not restarted. It is
        stopped, and the rest (kill its tasks, tell the DAG) waits in the mailbox behind
        every message it sent before failing."""
        key = next((k for k, ref in self._set_refs.items() if ref == failure.child), None)
        await self.context.stop(failure.child, timeout=0)
        if key is not None:
            reason = f"{type(failure.error).__name__}: {failure.error}"
            self.ref.tell(TaskSetCrashed(key[0], key[1], reason))

    @handler(TaskSetCrashed)
    def task_set_crashed(self, msg: TaskSetCrashed) -> None:
        key = (msg.stage_id, msg.stage_attempt)
        if self._set_refs.pop(key, None) is None:
            return
        why = f"task set {task_set_name(*key)} crashed ({msg.reason})"
        log.warning("%s: killing its tasks, the DAG scheduler resubmits the stage", why)
        for task_id, executor_id in self.core.set_crashed(key):
            executor = self._executors.get(executor_id)
            if executor is not None:
                executor.ref.tell(InterruptTask(task_id, f"Killed: {why}"))
        for executor in self._executors.values():
            executor.ref.tell(DropStageBinary(f"{key[0]}.{key[1]}"))
        self._dag.tell(SchedulerEvent(Local(TaskSetLost(msg.stage_id, msg.stage_attempt, msg.reason))))
        self._pump()

    def _kill_stray(self, launch: LaunchTask, why: str) -> None:
        log.error("killing task %d: %s. Please report it.", launch.task_id, why)
        executor = self._executors.get(launch.executor_id)
        if executor is not None:
            executor.ref.tell(InterruptTask(launch.task_id, f"Killed: {why}"))

    # -- routing ------------------------------------------------------------------------------------------
    def _tell_set(self, key: tuple[int, int], msg: Any) -> None:
        ref = self._set_refs.get(key)
        if ref is not None:
            ref.tell(msg)

    def _pump(self) -> None:
        offer = self.core.next_offer()
        if offer is not None:
            self._send_offer(offer)

    def _send_offer(self, offer: Offer) -> None:
        self._set_refs[offer.key].tell(OfferCores(Local(offer), Local(self._refs_for(offer))))

    def _refs_for(self, offer: Offer) -> dict[str, ActorRef]:
        return {slot.executor_id: self._executors[slot.executor_id].ref for slot in offer.slots}

    def _executors_changed(self, actions: list, lost: tuple = ()) -> None:
        """After an executor came or went: tell every set, report the lost tasks to theirs,
        then the DAG."""
        for action in actions:
            if isinstance(action, TaskLost):
                self._task_lost(action)
        hosts = self.core.executor_hosts()
        for ref in self._set_refs.values():
            ref.tell(ExecutorsChanged(hosts, lost))
        for action in actions:
            if isinstance(action, (ExecutorExcludedInfo, ExecutorUnexcludedInfo)):
                self._post_health([action])
            elif not isinstance(action, TaskLost):
                self._dag.tell(SchedulerEvent(Local(action)))
        self._pump()

    # -- excludeOnFailure ---------------------------------------------------------------------------------
    @handler(ExpireExclusions)
    def expire_exclusions(self, msg: ExpireExclusions) -> None:
        self._post_health(self.core.expire_exclusions())
        self._pump()

    def _post_health(self, infos: list) -> None:
        bus = self._shared.listener_bus
        wall_offset = time.time() - time.monotonic()
        for info in infos:
            if isinstance(info, ExecutorExcludedInfo):
                log.warning("executor %s excluded after %d task failures", info.executor_id, info.task_failures)
                bus.post(listen.ExecutorExcluded(time.time(), info.executor_id, info.task_failures,
                                                 info.until + wall_offset))
            else:
                bus.post(listen.ExecutorUnexcluded(time.time(), info.executor_id))
        expiry = self.core.next_exclusion_expiry()
        if expiry is None:
            self.timers.cancel("exclusions")
        else:
            self.timers.start_single("exclusions", ExpireExclusions(), max(0.0, expiry - time.monotonic()))

    def _task_lost(self, lost: TaskLost) -> None:
        launch = self._launches.pop(lost.task_id, None)
        if lost.key in self._set_refs:
            self._tell_set(lost.key, ReportTaskLost(Local(lost)))
        elif launch is not None:
            self._post_void_end(launch, "executor_lost", {})

    def _post_void_end(self, launch: LaunchTask, status: str, metrics: dict) -> None:
        self._shared.listener_bus.post(listen.TaskEnd(
            time.time(), launch.task_id, launch.stage_id, launch.stage_attempt, launch.partition,
            launch.attempt_number, launch.executor_id, status,
            f"ignored: task set {task_set_name(launch.stage_id, launch.stage_attempt)} crashed", metrics))
