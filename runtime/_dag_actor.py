"""The DAGScheduler actor: the I/O shell around :class:`~sparklet.runtime._dag.DAGSchedulerCore`.

Events in, actions out. It pickles each stage's task binary once (in a worker thread, so
a large closure never stalls the loop), merges accumulator updates, posts listener
events, and hands task sets to the ``TaskScheduler`` and job outcomes to the job manager.
"""

from __future__ import annotations

from sparklet.actors import simenv as time  # time() and monotonic() follow a simulation's virtual clock
from typing import Any

from sparklet.actors import Actor, ActorRef, Local, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._dag import DAGSchedulerCore
from sparklet.runtime._messages import SchedulerActions, SchedulerEvent
from sparklet.runtime._pickling import dumps_closure, loads
from sparklet.runtime._sched_events import (
    CancelTasks, JobEndedInfo, JobFailed, JobStartedInfo, JobSucceeded, MarkPartitionCompleted, MergeAccumulators,
    StageCompletedInfo, StageSubmittedInfo, SubmitTasks, TaskSetFailed,
)

__all__ = ["DAGScheduler"]


class DAGScheduler(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        self.core = DAGSchedulerCore(
            clock=time.time,  # its listener events share wall-clock time with the task scheduler's
            max_consecutive_stage_attempts=shared.conf["stage.maxConsecutiveAttempts"],
            cache_locations=shared.cache_locations,
        )
        shared.map_outputs = self.core.map_outputs  # the map output tracker's read-only view

    def pre_start(self) -> None:
        # By path: a sibling started later (or restarted) is found when a message goes out.
        self._tasks: ActorRef = self.context.system.ref_for(None, self._shared.paths["tasks"])
        self._jobs: ActorRef = self.context.system.ref_for(None, self._shared.paths["jobs"])

    @handler(SchedulerEvent)
    async def on_event(self, msg: SchedulerEvent) -> None:
        pending = self.core.handle(msg.event.value)
        while pending:
            feedback: list = []
            for action in pending:
                feedback += await self._carry_out(action)
            pending = [a for event in feedback for a in self.core.handle(event)]

    async def _carry_out(self, action: Any) -> list:
        """Do what an action says; return events that go straight back into the core."""
        bus = self._shared.listener_bus
        if isinstance(action, SubmitTasks):
            what = "the function of a task" if not action.is_shuffle_map else "the shuffle dependency"
            try:
                binary = await self._shared.run_on_driver(dumps_closure, (action.rdd, action.func_or_shuffle_dep), what)
            except Exception as exc:
                return [TaskSetFailed(action.stage_id, action.stage_attempt, f"Task not serializable: {exc}", exc)]
            self._tasks.tell(SchedulerActions(Local([(action, binary)])))
        elif isinstance(action, (CancelTasks, MarkPartitionCompleted)):
            self._tasks.tell(SchedulerActions(Local([(action, None)])))
        elif isinstance(action, (JobSucceeded, JobFailed)):
            self._jobs.tell(SchedulerActions(Local([action])))
        elif isinstance(action, MergeAccumulators):
            for packed in action.updates:
                self._shared.accumulators.merge(loads(packed))
        elif isinstance(action, JobStartedInfo):
            bus.post(listen.JobStart(action.time, action.job_id, action.stage_ids, action.properties))
        elif isinstance(action, JobEndedInfo):
            bus.post(listen.JobEnd(action.time, action.job_id, action.status, action.error))
        elif isinstance(action, StageSubmittedInfo):
            bus.post(listen.StageSubmitted(action.time, action.stage_id, action.attempt, action.name,
                                           action.num_tasks, action.partitions_to_run, action.parent_ids))
        elif isinstance(action, StageCompletedInfo):
            bus.post(listen.StageCompleted(action.time, action.stage_id, action.attempt, action.status, action.failure_reason))
        return []
