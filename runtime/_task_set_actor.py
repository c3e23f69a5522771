"""The TaskSetManager actor: one per stage attempt, the I/O shell around a
:class:`~sparklet.runtime._sched_taskset.TaskSetManagerCore`.

A child of the ``TaskScheduler`` actor, named ``stage-<stage id>.<attempt>``. It holds
what only its stage attempt needs: the RDD, the pickled task binary and the job's
properties; which executors already have the binary; the state of every task. It
launches onto the cores the task scheduler offers it (``OfferCores``), sending the
binary once per executor and then ``RunTask``; it decodes the status updates the
scheduler routes to it by task id, posts ``TaskStart``/``TaskEnd``, and answers every
message with one ``TaskSetReport``: the events for the DAG scheduler (which the task
scheduler forwards, in order), the launches it made, and whether it is a zombie or done.
It never sends to the DAG scheduler itself, so the DAG hears of a task set's events in
the order the task scheduler saw them.

Failure. If it fails (a bug, or a ``Kill`` injected by fault tests) its parent does not
restart it (its state is gone): it stops it, kills its running tasks, and tells the DAG
scheduler ``TaskSetLost``; the DAG submits a new attempt of the stage.
"""

from __future__ import annotations

import pickle
from typing import Any

from sparklet.actors import simenv as time  # follows a simulation's virtual clock
from sparklet.actors import Actor, ActorRef, Local, handler, message
from sparklet.runtime import _listener as listen
from sparklet.runtime._messages import DropStageBinary, InterruptTask, ReviveOffers, RunTask, StageBinary, StatusUpdate
from sparklet.runtime._pickling import loads, rebuild_error
from sparklet.runtime._sched_events import KillTask, MapStatus, SubmitTasks
from sparklet.runtime._sched_health import ExcludeOnFailure
from sparklet.runtime._sched_taskset import Speculation
from sparklet.runtime._tasksets import Offer, TaskLost, TaskSetManagerCore

__all__ = [
    "TaskNotSent", "TaskSetManager", "OfferCores", "ReportTaskStatus", "ReportTaskLost", "CancelTaskSet",
    "CompletePartition", "SupersedeTaskSet", "ExecutorsChanged", "TaskSetReport", "TaskSetCrashed", "task_set_name",
]


def task_set_name(stage_id: int, stage_attempt: int) -> str:
    return f"stage-{stage_id}.{stage_attempt}"


class TaskNotSent(Exception):
    """A task (its binary or its partition) could not be sent to an executor."""


# -- task scheduler -> task set ------------------------------------------------------------------------


@message(tag="sparklet.OfferCores")
class OfferCores:
    """Launch onto these free cores: ``offer`` is an :class:`Offer`, ``refs`` the offered
    executors' references by id."""

    offer: Local
    refs: Local


@message(tag="sparklet.ReportTaskStatus")
class ReportTaskStatus:
    """An executor's ``StatusUpdate`` for one of this set's tasks, with an offer of cores
    (``Local(None)`` when none) so a freed core is refilled in the same exchange."""

    update: Local
    offer: Local
    refs: Local


@message(tag="sparklet.ReportTaskLost")
class ReportTaskLost:
    """A task's executor is gone, or its status update never came: ``lost`` is a :class:`TaskLost`."""

    lost: Local


@message(tag="sparklet.CancelTaskSet")
class CancelTaskSet:
    reason: str


@message(tag="sparklet.CompletePartition")
class CompletePartition:
    """Another attempt of the stage computed ``partition``."""

    partition: int


@message(tag="sparklet.SupersedeTaskSet")
class SupersedeTaskSet:
    """A newer attempt of the stage was submitted: launch nothing more."""


@message(tag="sparklet.ExecutorsChanged")
class ExecutorsChanged:
    hosts: dict
    # Executors lost since the last notice: an in-process executor restarts in place under
    # the same reference, with no binaries, so "still registered" cannot tell it apart.
    lost: tuple = ()


@message(tag="sparklet.CheckSpeculation")
class CheckSpeculation:
    """Time to look for slow tasks to copy (every ``speculation.interval``)."""


@message(tag="sparklet.ReviveLocality")
class ReviveLocality:
    """This set's locality wait ran out: ask for an offer."""


# -- task set -> task scheduler --------------------------------------------------------------------------


@message(tag="sparklet.TaskSetReport")
class TaskSetReport:
    """What a set did with one message: ``events`` for the DAG core (in order), the
    ``LaunchTask``s it made on ``offer`` (``Local(None)``: none was made), its state."""

    stage_id: int
    stage_attempt: int
    offer: Local
    launches: Local
    unsent: tuple  # ids among the launches that never reached their executor (already failed)
    events: Local
    is_zombie: bool
    is_finished: bool
    failures_by_executor: dict  # once finished with every task done: different tasks failed per executor


@message(tag="sparklet.TaskSetCrashed")
class TaskSetCrashed:
    """(to the task scheduler itself) A set's actor failed; handled after every message it sent."""

    stage_id: int
    stage_attempt: int
    reason: str


def exclude_on_failure(conf: Any) -> ExcludeOnFailure | None:
    """The excludeOnFailure settings of a conf, or None when it is off."""
    if not conf["excludeOnFailure.enabled"]:
        return None
    return ExcludeOnFailure(conf["excludeOnFailure.task.maxTaskAttemptsPerExecutor"],
                            conf["excludeOnFailure.stage.maxFailedTasksPerExecutor"],
                            conf["excludeOnFailure.application.maxFailedTasksPerExecutor"],
                            conf["excludeOnFailure.timeout"])


class TaskSetManager(Actor):
    def __init__(self, task_set: SubmitTasks, binary: bytes, shared: Any, executor_hosts: dict) -> None:
        super().__init__()
        conf = shared.conf
        self._shared = shared
        self._task_set = task_set
        self._binary = binary
        self._key = f"{task_set.stage_id}.{task_set.stage_attempt}"
        speculation = Speculation(conf["speculation.multiplier"], conf["speculation.quantile"],
                                  conf["speculation.minTaskRuntime"]) if conf["speculation"] else None
        self._speculation_interval = conf["speculation.interval"]
        self.core = TaskSetManagerCore(task_set, clock=time.monotonic, max_failures=conf["task.maxFailures"],
                                       locality_wait=conf["locality.wait"], executor_hosts=executor_hosts,
                                       speculation=speculation, exclude=exclude_on_failure(conf))
        # Invariant: the executors (by reference) holding this set's binary.
        # A dict, not a set: its order (the order DropStageBinary goes out) must not depend on
        # hashes, or a simulation could not replay it.
        self._has_binary: dict[ActorRef, None] = {}
        self._bus = shared.listener_bus

    def pre_start(self) -> None:
        if self.core.speculation is not None:
            self.timers.start_periodic("speculation", CheckSpeculation(), self._speculation_interval)

    def post_stop(self) -> None:
        for ref in self._has_binary:
            ref.tell(DropStageBinary(self._key))
        self._has_binary.clear()

    # -- from the task scheduler ------------------------------------------------------------------------
    @handler(OfferCores)
    def offer_cores(self, msg: OfferCores) -> None:
        self._report(msg.offer.value, *self._launch_on(msg.offer.value, msg.refs.value))

    @handler(ReportTaskStatus)
    def task_status(self, msg: ReportTaskStatus) -> None:
        ended: list = []
        events = self._status(msg.update.value, ended)
        offer = msg.offer.value
        if offer is None:
            launches, unsent, more = [], (), []
        else:  # the next task before the listener events: the executor is waiting, the listener is not
            launches, unsent, more = self._launch_on(offer, msg.refs.value, ended)
        for event in ended:
            self._bus.post(event)
        self._report(offer, launches, unsent, events + more)

    @handler(ReportTaskLost)
    def task_lost(self, msg: ReportTaskLost) -> None:
        lost: TaskLost = msg.lost.value
        if lost.task_id not in self.core.running:
            return
        self._post_end(lost.task_id, lost.executor_id, "executor_lost", lost.reason, {})
        self._report(None, [], (), self.core.task_ended(lost.task_id, "executor_lost", lost.reason))

    @handler(CancelTaskSet)
    def cancel(self, msg: CancelTaskSet) -> None:
        for kill in self.core.cancel(msg.reason):
            self._kill(kill)
        self._report(None, [], (), [])

    def _kill(self, kill: KillTask) -> None:
        ref = self._shared.executor_refs.get(kill.executor_id)
        if ref is not None:
            ref.tell(InterruptTask(kill.task_id, kill.reason))

    @handler(CompletePartition)
    def complete_partition(self, msg: CompletePartition) -> None:
        self.core.mark_partition_completed(msg.partition)
        self._report(None, [], (), [])

    @handler(SupersedeTaskSet)
    def supersede(self, msg: SupersedeTaskSet) -> None:
        self.core.is_zombie = True
        self._report(None, [], (), [])

    @handler(ExecutorsChanged)
    def executors_changed(self, msg: ExecutorsChanged) -> None:
        live = set(self._shared.executor_refs.values()) - set(msg.lost)
        self._has_binary = {ref: None for ref in self._has_binary if ref in live}
        self.core.executors_changed(msg.hosts)
        self._arm_locality_timer()

    @handler(CheckSpeculation)
    def check_speculation(self, msg: CheckSpeculation) -> None:
        if self.core.check_speculatable_tasks(time.monotonic()):
            self.context.parent.tell(ReviveOffers())

    @handler(ReviveLocality)
    def revive(self, msg: ReviveLocality) -> None:
        self.context.parent.tell(ReviveOffers())

    # -- doing it -------------------------------------------------------------------------------------
    def _report(self, offer: Offer | None, launches: list, unsent: tuple, events: list) -> None:
        if any(isinstance(e, KillTask) for e in events):
            for kill in events:
                if isinstance(kill, KillTask):
                    self._kill(kill)
            events = [e for e in events if not isinstance(e, KillTask)]
        self.context.parent.tell(TaskSetReport(
            self.core.stage_id, self.core.stage_attempt, Local(offer), Local(launches), unsent, Local(events),
            self.core.is_zombie, self.core.is_finished, self.core.failures_by_executor()))
        self._arm_locality_timer()

    def _arm_locality_timer(self) -> None:
        deadline = self.core.locality_deadline()
        if deadline is None:
            self.timers.cancel("locality")
        else:
            self.timers.start_single("locality", ReviveLocality(), max(0.0, deadline - time.monotonic()))

    def _launch_on(self, offer: Offer, refs: dict[str, ActorRef], started: list | None = None) -> tuple[list, tuple, list]:
        """Launch onto the offer: ``(launches, ids of those not sent, events)``; ``TaskStart``
        events go on ``started`` when given (else straight to the listener). A task
        that cannot be sent (too large for a frame, an unpicklable partition) fails, and
        counts, at once; it is among the launches all the same (its id and core were used)."""
        launches = self.core.resource_offers(offer.slots, offer.first_task_id)
        task_set = self._task_set
        unsent: list[int] = []
        events: list = []
        epoch = self._shared.map_output_epoch()
        addresses = self._barrier_addresses(refs) if self.core.barrier and launches else ()
        for launch in launches:
            ref = refs[launch.executor_id]
            try:
                if ref not in self._has_binary:
                    ref.tell(StageBinary(self._key, self._binary))
                    self._has_binary[ref] = None
                partition = pickle.dumps(task_set.rdd.partitions[launch.partition], protocol=pickle.HIGHEST_PROTOCOL)
                ref.tell(RunTask(launch.task_id, self._key, launch.stage_id, launch.stage_attempt, launch.partition,
                                 launch.attempt_number, partition, task_set.properties, task_set.is_shuffle_map, epoch,
                                 addresses))
            except Exception as exc:
                error = TaskNotSent(f"task {launch.task_id} (partition {launch.partition} of stage {launch.stage_id}) "
                                    f"could not be sent to executor {launch.executor_id}: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
                unsent.append(launch.task_id)
                events += self.core.task_ended(launch.task_id, "failed", str(error), result=error)
                continue
            start = listen.TaskStart(time.time(), launch.task_id, launch.stage_id, launch.stage_attempt,
                                     launch.partition, launch.attempt_number, launch.executor_id,
                                     launch.locality.name, launch.speculative)
            if started is None:
                self._bus.post(start)
            else:
                started.append(start)  # posted by the caller, after the events it holds
        return launches, tuple(unsent), events

    def _barrier_addresses(self, refs: dict[str, ActorRef]) -> tuple[str, ...]:
        """barrier: where each task of the set runs, by task index (all launched at once, on
        this offer, so each has an attempt): what ``BarrierTaskInfo.address`` reports."""
        executors = [attempts[-1].executor_id if attempts else "" for attempts in self.core.attempts]
        hosts = self.core.executor_hosts
        return tuple((refs[e].address or hosts.get(e, e)) if e in refs else e for e in executors)

    def _status(self, msg: StatusUpdate, ended: list) -> list:
        """Decode an executor's status update into the core's ``task_ended``; its
        ``TaskEnd`` listener event goes on ``ended``, for the caller to post."""
        attempt = self.core.attempt_by_task_id.get(msg.task_id)
        if attempt is None:
            return []  # not running here (a duplicate)
        result: Any = msg.result
        reason = ""
        fields: dict[str, Any] = {}
        if msg.state == "failed":
            result = rebuild_error(msg.error)
            reason = f"{msg.error[0]}: {msg.error[1]}"
        elif msg.state == "killed":
            reason = attempt.kill_reason or "killed"
        elif msg.state == "fetch_failed":
            reason = f"FetchFailed: {msg.error[1]}"
            shuffle_id, map_id, holder = msg.fetch_failed
            fields = {"fetch_failed_shuffle_id": shuffle_id, "fetch_failed_map_id": map_id,
                      "fetch_failed_executor_id": holder}
            result = None
        elif self._task_set.is_shuffle_map:
            fields = {"map_status": MapStatus(msg.executor_id, tuple(loads(msg.result)), msg.task_id)}
            result = None
        ended.append(self._end_event(msg.task_id, msg.executor_id, msg.state, reason or None, dict(msg.metrics)))
        updates = (msg.accum_updates,) if msg.accum_updates is not None else ()
        return self.core.task_ended(msg.task_id, msg.state, reason, result=result, accum_updates=updates,
                                    metrics=dict(msg.metrics), **fields)

    def _post_end(self, task_id: int, executor_id: str, status: str, reason: str | None, metrics: dict) -> None:
        self._bus.post(self._end_event(task_id, executor_id, status, reason, metrics))

    def _end_event(self, task_id: int, executor_id: str, status: str, reason: str | None, metrics: dict) -> Any:
        attempt = self.core.attempt_by_task_id[task_id]
        index = self.core.running[task_id]
        return listen.TaskEnd(time.time(), task_id, self.core.stage_id, self.core.stage_attempt,
                              self.core.tasks[index].partition, attempt.attempt_number, executor_id, status, reason,
                              metrics, attempt.speculative)
