"""The job manager: the driver's registry of running jobs and their waiters.

Every action becomes a ``SubmitJob`` here. The job manager keeps who is waiting for
which job (a deferred reply), passes the job to the DAG scheduler, and answers the
waiter when the scheduler reports the job's end: the results, the user's own exception
(with the stage failure told in a note), or :class:`JobCancelledError`.

It also keeps the *job registry* a restarted DAG scheduler recovers from (``RecoverJobs``):
each running job's RDD, function, partitions and properties, the results received so far
and the ids of its stages, and the next stage id the scheduler may use. The DAG scheduler
reports results and stage ids after every event (``JobRecordUpdates``).

When the job manager itself crashes, its waiters' asks fail with
:class:`JobManagerRestarted` (the caller, the context, asks again with ``AwaitJob``) and the
restarted job manager rebuilds the registry from the DAG scheduler (``ExportJobs``), which
has every running job. An outcome that arrives before its caller asks again is kept until
it does.
"""

from __future__ import annotations

import collections

from sparklet.actors import simenv as time  # time() and monotonic() follow a simulation's virtual clock
from typing import Any

from sparklet.actors import Actor, ActorRef, DeferredReply, Local, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._messages import (
    AwaitJob, CancelAllJobs, CancelJob, CancelJobGroup, ExportJobs, JobRecordUpdates, RecoverJobs, RunningJobsConfirmed,
    SchedulerActions, SchedulerEvent, SubmitJob,
)
from sparklet.runtime._sched_events import (
    JOB_GROUP_PROPERTY, AllJobsCancelled, JobCancelled, JobFailed, JobGroupCancelled, JobSubmitted, JobSucceeded,
)

__all__ = ["JobManager", "JobCancelledError", "JobFailedError", "JobManagerRestarted"]

RECOVERY_ASK_TIMEOUT = 10.0
UNCLAIMED_KEPT = 1024  # outcomes kept for callers that have not asked again yet after a restart


class JobCancelledError(RuntimeError):
    """The job was cancelled (by ``cancelJobGroup``, ``cancelAllJobs`` or its caller)."""


class JobFailedError(RuntimeError):
    """A job failed for a reason other than an exception in user code."""


class JobManagerRestarted(RuntimeError):
    """The job manager restarted while a caller waited: ask again with ``AwaitJob(job_id)``."""

    def __init__(self, job_id: int, reason: str) -> None:
        super().__init__(f"the job manager restarted while job {job_id} ran ({reason}); ask again with AwaitJob")
        self.job_id = job_id


class JobManager(Actor):
    def __init__(self, dag_path: str, listener_bus: Any = None) -> None:
        super().__init__()
        self._dag_path = dag_path
        self._bus = listener_bus
        # Invariant: exactly the jobs submitted (or recovered) and not yet answered, with their waiter if any.
        self._waiting: dict[int, tuple[DeferredReply | None, dict]] = {}
        # Invariant: keys are jobs in _waiting: what a restarted DAG scheduler needs to take each over.
        self._records: dict[int, dict[str, Any]] = {}
        self._next_stage_id = 0
        # Outcomes of recovered jobs whose caller has not asked again yet (bounded, oldest first).
        self._unclaimed: collections.OrderedDict[int, Any] = collections.OrderedDict()
        # Jobs a caller waits for that the rebuilt registry did not list: their outcome may be
        # on its way (the job ended just before the registry was rebuilt), or they are lost.
        self._unconfirmed: set[int] = set()

    def pre_start(self) -> None:
        self.dag: ActorRef = self.context.system.ref_for(None, self._dag_path)

    def pre_restart(self, reason: BaseException, message: Any) -> None:
        for job_id, (reply, _) in self._waiting.items():
            if reply is not None:
                reply.set_exception(JobManagerRestarted(job_id, f"{type(reason).__name__}: {reason}"))
        self._waiting.clear()

    async def post_restart(self, reason: BaseException) -> None:
        self.pre_start()
        try:
            self._next_stage_id, records = (await self.dag.ask(ExportJobs(), timeout=RECOVERY_ASK_TIMEOUT)).value
            found = f"{len(records)} running jobs {sorted(r['job_id'] for r in records)} from the DAG scheduler"
        except Exception as exc:
            records = []
            found = f"no jobs (the DAG scheduler did not answer: {exc!r}); waiting callers' jobs are lost"
        for record in records:
            self._records[record["job_id"]] = record
            self._waiting[record["job_id"]] = (None, record["properties"])
        if self._bus is not None:
            self._bus.post(listen.ActorRecovered(
                time.time(), self.context.path, self.context.parent.path if self.context.parent else "",
                self.context.restart_count + 1, f"{type(reason).__name__}: {reason}", found))

    @handler(SubmitJob)
    def submit(self, msg: SubmitJob) -> None:
        reply = self.context.defer_reply()
        assert reply is not None, "SubmitJob is always asked"
        self._waiting[msg.job_id] = (reply, msg.properties)
        event = JobSubmitted(msg.job_id, msg.rdd.value, msg.func.value, msg.partitions, msg.properties, time.time())
        self._records[msg.job_id] = {"job_id": msg.job_id, "rdd": event.rdd, "func": event.func,
                                     "partitions": msg.partitions, "properties": msg.properties,
                                     "submitted_at": event.submitted_at, "results": {}, "stage_ids": set()}
        self.dag.tell(SchedulerEvent(Local(event)))

    @handler(AwaitJob)
    def await_job(self, msg: AwaitJob) -> None:
        reply = self.context.defer_reply()
        assert reply is not None, "AwaitJob is always asked"
        if msg.job_id in self._unclaimed:
            _answer(reply, self._unclaimed.pop(msg.job_id))
        elif msg.job_id in self._waiting:
            self._waiting[msg.job_id] = (reply, self._waiting[msg.job_id][1])
        else:
            # Ask the DAG scheduler which jobs run now; its answer comes back as a message to
            # ourselves, so it is handled after any outcome the scheduler sent before answering.
            self._waiting[msg.job_id] = (reply, {})
            self._unconfirmed.add(msg.job_id)
            me = self.context.self_ref
            asked = self.dag.ask_nowait(ExportJobs(), timeout=RECOVERY_ASK_TIMEOUT)
            asked.add_done_callback(lambda f: me.tell(RunningJobsConfirmed(
                None if f.cancelled() or f.exception() is not None else tuple(r["job_id"] for r in f.result().value[1]))))

    @handler(RunningJobsConfirmed)
    def confirmed(self, msg: RunningJobsConfirmed) -> None:
        for job_id in sorted(self._unconfirmed):
            if msg.job_ids is not None and job_id in msg.job_ids:
                continue  # still running: its outcome will come
            self._unconfirmed.discard(job_id)
            entry = self._waiting.pop(job_id, None)
            if entry is not None and entry[0] is not None:
                entry[0].set_exception(JobFailedError(
                    f"job {job_id} was lost: the job manager restarted and the DAG scheduler does not know it"))

    @handler(CancelJob)
    def cancel(self, msg: CancelJob) -> None:
        if msg.job_id in self._waiting:
            self.dag.tell(SchedulerEvent(Local(JobCancelled(msg.job_id, msg.reason))))

    @handler(CancelJobGroup)
    def cancel_group(self, msg: CancelJobGroup) -> None:
        self.dag.tell(SchedulerEvent(Local(JobGroupCancelled(msg.group_id, msg.reason))))

    @handler(CancelAllJobs)
    def cancel_all(self, msg: CancelAllJobs) -> None:
        self.dag.tell(SchedulerEvent(Local(AllJobsCancelled(msg.reason))))

    @handler(SchedulerActions)
    def job_ended(self, msg: SchedulerActions) -> None:
        for action in msg.actions.value:
            entry = self._waiting.pop(action.job_id, None)
            self._records.pop(action.job_id, None)
            self._unconfirmed.discard(action.job_id)
            if entry is None:
                if self.context.restart_count:  # it ended as we restarted: its caller asks again soon
                    self._keep_unclaimed(action)
                continue
            reply, _ = entry
            if reply is None:  # recovered after a restart; its caller has not asked again yet
                self._keep_unclaimed(action)
            else:
                _answer(reply, action)

    def _keep_unclaimed(self, action: Any) -> None:
        self._unclaimed[action.job_id] = action
        while len(self._unclaimed) > UNCLAIMED_KEPT:
            self._unclaimed.popitem(last=False)

    # -- the job registry -----------------------------------------------------------------------
    @handler(JobRecordUpdates)
    def record(self, msg: JobRecordUpdates) -> None:
        for kind, *args in msg.updates.value:
            if kind == "next_stage_id":
                self._next_stage_id = max(self._next_stage_id, args[0])
                continue
            record = self._records.get(args[0])
            if record is None:
                continue  # the job ended meanwhile
            if kind == "result":
                record["results"][args[1]] = args[2]
            elif kind == "stages":
                record["stage_ids"].update(args[1])

    @handler(RecoverJobs)
    def recover(self, msg: RecoverJobs) -> Local:
        return Local((self._next_stage_id, [dict(r, results=dict(r["results"]), stage_ids=set(r["stage_ids"]))
                                            for r in self._records.values()]))

    def post_stop(self) -> None:
        for reply, _ in self._waiting.values():
            if reply is not None:
                reply.set_exception(JobCancelledError("the context was stopped while the job ran"))
        self._waiting.clear()

    def jobs_in_group(self, group_id: str) -> list[int]:
        return [job for job, (_, props) in self._waiting.items() if props.get(JOB_GROUP_PROPERTY) == group_id]


def _answer(reply: DeferredReply, action: Any) -> None:
    if isinstance(action, JobSucceeded):
        reply.set_result(Local(action.results))
    elif isinstance(action, JobFailed):
        reply.set_exception(_job_error(action))


def _job_error(failure: JobFailed) -> BaseException:
    if failure.cancelled:
        return JobCancelledError(failure.error)
    exc: Any = failure.exception
    if isinstance(exc, BaseException):
        exc.add_note(failure.error)
        remote = getattr(exc, "remote_traceback", None)
        if remote:
            exc.add_note(f"Traceback in the task (most recent call last):\n{remote}")
        return exc
    return JobFailedError(failure.error)
