"""The job manager: the driver's registry of running jobs and their waiters.

Every action becomes a ``SubmitJob`` here. The job manager keeps who is waiting for
which job (a deferred reply), passes the job to the DAG scheduler, and answers the
waiter when the scheduler reports the job's end: the results, the user's own exception
(with the stage failure told in a note), or :class:`JobCancelledError`. It owns the job
registry so that a restarted scheduler does not lose who is waiting.
"""

from __future__ import annotations

from sparklet.actors import simenv as time  # time() and monotonic() follow a simulation's virtual clock
from typing import Any

from sparklet.actors import Actor, ActorRef, DeferredReply, Local, handler
from sparklet.runtime._messages import CancelAllJobs, CancelJob, CancelJobGroup, SchedulerActions, SchedulerEvent, SubmitJob
from sparklet.runtime._sched_events import (
    JOB_GROUP_PROPERTY, AllJobsCancelled, JobCancelled, JobFailed, JobGroupCancelled, JobSubmitted, JobSucceeded,
)

__all__ = ["JobManager", "JobCancelledError", "JobFailedError"]


class JobCancelledError(RuntimeError):
    """The job was cancelled (by ``cancelJobGroup``, ``cancelAllJobs`` or its caller)."""


class JobFailedError(RuntimeError):
    """A job failed for a reason other than an exception in user code."""


class JobManager(Actor):
    def __init__(self, dag_path: str) -> None:
        super().__init__()
        self._dag_path = dag_path
        # Invariant: exactly the jobs submitted and not yet answered.
        self._waiting: dict[int, tuple[DeferredReply, dict]] = {}

    def pre_start(self) -> None:
        self.dag: ActorRef = self.context.system.ref_for(None, self._dag_path)

    @handler(SubmitJob)
    def submit(self, msg: SubmitJob) -> None:
        reply = self.context.defer_reply()
        assert reply is not None, "SubmitJob is always asked"
        self._waiting[msg.job_id] = (reply, msg.properties)
        event = JobSubmitted(msg.job_id, msg.rdd.value, msg.func.value, msg.partitions, msg.properties, time.time())
        self.dag.tell(SchedulerEvent(Local(event)))

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
            if entry is None:
                continue
            reply, _ = entry
            if isinstance(action, JobSucceeded):
                reply.set_result(Local(action.results))
            elif isinstance(action, JobFailed):
                reply.set_exception(_job_error(action))

    def post_stop(self) -> None:
        for reply, _ in self._waiting.values():
            reply.set_exception(JobCancelledError("the context was stopped while the job ran"))
        self._waiting.clear()

    def jobs_in_group(self, group_id: str) -> list[int]:
        return [job for job, (_, props) in self._waiting.items() if props.get(JOB_GROUP_PROPERTY) == group_id]


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
