"""The DAGScheduler actor: the I/O shell around :class:`~sparklet.runtime._dag.DAGSchedulerCore`.

Events in, actions out. It pickles each stage's task binary once (in a worker thread, so
a large closure never stalls the loop), merges accumulator updates, posts listener
events, and hands task sets to the ``TaskScheduler`` and job outcomes to the job manager.

What it must not lose when it crashes lives in other actors, kept up to date after every
event: the map outputs in the map output tracker (the core's replica journals each change,
sent as ``UpdateMapOutputs``), and each running job's results and stage ids in the job
manager (``JobRecordUpdates``). Restarted, it loads both back, continues stage ids above
every id its previous incarnation used (late results of old task sets are then ignored),
cancels the old task sets, and recovers each job (:mod:`sparklet.runtime._dag_recovery`).
"""

from __future__ import annotations

from sparklet.actors import simenv as time  # time() and monotonic() follow a simulation's virtual clock
from typing import Any

from sparklet.actors import Actor, ActorRef, Local, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._dag import DAGSchedulerCore
from sparklet.runtime._dag_recovery import adopt_map_outputs, export_jobs
from sparklet.runtime._messages import (
    ExportJobs, JobRecordUpdates, ListExecutors, LoadMapOutputs, RecoverJobs, SchedulerActions, SchedulerEvent, SnapshotMapOutputs,
    SyncMapOutputs, UpdateMapOutputs,
)
from sparklet.runtime._pickling import dumps_closure, loads
from sparklet.runtime._sched_events import (
    CancelTasks, ExecutorAdded, JobEndedInfo, JobFailed, JobRecovered, JobRecoveredInfo, JobStartedInfo, JobSubmitted, JobSucceeded,
    MarkPartitionCompleted, MergeAccumulators, StageCompletedInfo, StageSubmittedInfo, SubmitTasks, TaskSetFailed,
)

__all__ = ["DAGScheduler"]

RECOVERY_ASK_TIMEOUT = 10.0  # seconds a restarted scheduler waits for the tracker and the job manager


class DAGScheduler(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        self.core = DAGSchedulerCore(
            clock=time.time,  # its listener events share wall-clock time with the task scheduler's
            max_consecutive_stage_attempts=shared.conf["stage.maxConsecutiveAttempts"],
            cache_locations=shared.cache_locations,
        )
        self.core.map_outputs.journal = []
        self.core.results_journal = []
        shared.map_outputs = self.core.map_outputs  # the task scheduler reads the epoch from it
        self._job_updates: list[tuple] = []
        self._reported_next_stage_id = 0
        # Jobs taken over after a restart: their JobSubmitted may still be in the mailbox.
        self._recovered: set[int] = set()

    def pre_start(self) -> None:
        # By path: a sibling started later (or restarted) is found when a message goes out.
        system = self.context.system
        self._tasks: ActorRef = system.ref_for(None, self._shared.paths["tasks"])
        self._jobs: ActorRef = system.ref_for(None, self._shared.paths["jobs"])
        self._tracker: ActorRef = system.ref_for(None, self._shared.paths["map_outputs"])

    async def post_restart(self, reason: BaseException) -> None:
        self.pre_start()
        await self._recover(reason)

    @handler(SchedulerEvent)
    async def on_event(self, msg: SchedulerEvent) -> None:
        event = msg.event.value
        if isinstance(event, JobSubmitted) and (event.job_id in self.core.job_id_to_job or event.job_id in self._recovered):
            return  # recovered from the job manager's record already
        await self._handle(event)

    async def _handle(self, event: Any) -> None:
        try:
            pending = self.core.handle(event)
            while pending:
                feedback: list = []
                for action in pending:
                    feedback += await self._carry_out(action)
                pending = [a for event in feedback for a in self.core.handle(event)]
        finally:
            self._flush()

    def _flush(self) -> None:
        """Send what changed to the actors that keep it for a restart."""
        ops = self.core.map_outputs.journal
        if ops:
            self.core.map_outputs.journal = []
            self._tracker.tell(UpdateMapOutputs(Local(ops)))
        updates, self._job_updates = self._job_updates, []
        if self.core.results_journal:
            updates += [("result", *entry) for entry in self.core.results_journal]
            self.core.results_journal = []
        if self.core.graph.next_stage_id > self._reported_next_stage_id:
            self._reported_next_stage_id = self.core.graph.next_stage_id
            updates.append(("next_stage_id", self._reported_next_stage_id))
        if updates:
            self._jobs.tell(JobRecordUpdates(Local(updates)))

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
            self._job_updates.append(("stages", action.job_id, action.stage_ids))
            bus.post(listen.JobStart(action.time, action.job_id, action.stage_ids, action.properties))
        elif isinstance(action, JobRecoveredInfo):
            self._job_updates.append(("stages", action.job_id, action.stage_ids))
            bus.post(listen.JobRecovered(action.time, action.job_id, action.stage_ids, action.results_kept,
                                         action.results_missing, action.missing_map_outputs, action.reason))
        elif isinstance(action, JobEndedInfo):
            summaries = self._shared.job_summaries
            summary = summaries.finish(action.job_id) if summaries is not None else None
            bus.post(listen.JobEnd(action.time, action.job_id, action.status, action.error, summary))
        elif isinstance(action, StageSubmittedInfo):
            bus.post(listen.StageSubmitted(action.time, action.stage_id, action.attempt, action.name,
                                           action.num_tasks, action.partitions_to_run, action.parent_ids,
                                           action.reason, action.shuffle_id, action.rdd_id))
        elif isinstance(action, StageCompletedInfo):
            bus.post(listen.StageCompleted(action.time, action.stage_id, action.attempt, action.status, action.failure_reason))
        return []

    # -- recovery ------------------------------------------------------------------------------------
    @handler(ExportJobs)
    def export(self, msg: ExportJobs) -> Local:
        return Local((self.core.graph.next_stage_id, export_jobs(self.core)))

    @handler(SyncMapOutputs)
    def sync_map_outputs(self, msg: SyncMapOutputs) -> None:
        # A tell, in order with every UpdateMapOutputs sent before it: the tracker drops
        # those (the snapshot has them) and applies the ones after.
        self._tracker.tell(LoadMapOutputs(Local(self.core.map_outputs.snapshot())))

    async def _recover(self, reason: BaseException) -> None:
        found = []
        try:
            registry = (await self._tracker.ask(SnapshotMapOutputs(), timeout=RECOVERY_ASK_TIMEOUT)).value
            adopt_map_outputs(self.core, registry)
            self._shared.map_outputs = registry
            stats = registry.statistics()
            found.append(f"{stats['outputs']} map outputs of {stats['shuffles']} shuffles (epoch {stats['epoch']}) "
                         f"from the map output tracker")
        except Exception as exc:  # the tracker is down too: every map output is recomputed
            found.append(f"no map outputs (the map output tracker did not answer: {exc!r})")
        try:
            next_stage_id, records = (await self._jobs.ask(RecoverJobs(), timeout=RECOVERY_ASK_TIMEOUT)).value
        except Exception as exc:
            next_stage_id, records = 0, []
            found.append(f"no jobs (the job manager did not answer: {exc!r})")
        try:  # the live executors and their hosts (for locality), as the task scheduler knows them
            for executor in await self._tasks.ask(ListExecutors(), timeout=RECOVERY_ASK_TIMEOUT):
                await self._handle(ExecutorAdded(executor["executor_id"], executor["host"], executor["cores"]))
        except Exception as exc:
            found.append(f"no executors (the task scheduler did not answer: {exc!r}); they are added as they register")
        self.core.graph.next_stage_id = max(self.core.graph.next_stage_id, next_stage_id)
        self._reported_next_stage_id = self.core.graph.next_stage_id
        old_stage_ids = sorted({i for record in records for i in record["stage_ids"]})
        if old_stage_ids:  # their task sets belong to the dead incarnation: stop them
            why = "the DAG scheduler restarted"
            self._tasks.tell(SchedulerActions(Local([(CancelTasks(i, None, why), None) for i in old_stage_ids])))
        found.append(f"{len(records)} running jobs {sorted(r['job_id'] for r in records)} from the job manager; "
                     f"old task sets of stages {old_stage_ids} cancelled; new stage ids from {next_stage_id}")
        self._shared.listener_bus.post(listen.ActorRecovered(
            time.time(), self.context.path, self.context.parent.path if self.context.parent else "",
            self.context.restart_count + 1, f"{type(reason).__name__}: {reason}", "; ".join(found)))
        for record in sorted(records, key=lambda r: r["job_id"]):
            self._recovered.add(record["job_id"])
            await self._handle(JobRecovered(
                record["job_id"], record["rdd"], record["func"], tuple(record["partitions"]), record["properties"],
                record["submitted_at"], tuple(sorted(record["results"].items())),
                f"the DAG scheduler restarted ({type(reason).__name__}: {reason})"))
