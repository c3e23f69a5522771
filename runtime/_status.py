"""PySpark's ``StatusTracker``, answered from the listener log."""

from __future__ import annotations

from typing import NamedTuple

from sparklet.runtime._listener import JobEnd, JobStart, ListenerBus, StageCompleted, StageSubmitted, TaskEnd, TaskStart

__all__ = ["StatusTracker", "SparkJobInfo", "SparkStageInfo"]


class SparkJobInfo(NamedTuple):
    jobId: int
    stageIds: list[int]
    status: str  # RUNNING, SUCCEEDED, FAILED (cancelled jobs are FAILED, as in Spark)


class SparkStageInfo(NamedTuple):
    stageId: int
    currentAttemptId: int
    name: str
    numTasks: int
    numActiveTasks: int
    numCompletedTasks: int
    numFailedTasks: int


class StatusTracker:
    """Low-level status reporting APIs for monitoring job and stage progress."""

    def __init__(self, bus: ListenerBus) -> None:
        self._bus = bus

    def getJobIdsForGroup(self, jobGroup: str | None = None) -> list[int]:
        """All job ids in the group (``None``: jobs without a group)."""
        return [e.job_id for e in self._bus.events(JobStart) if e.properties.get("spark.jobGroup.id") == jobGroup]

    def getActiveJobsIds(self) -> list[int]:
        ended = {e.job_id for e in self._bus.events(JobEnd)}
        return [e.job_id for e in self._bus.events(JobStart) if e.job_id not in ended]

    def getActiveStageIds(self) -> list[int]:
        done = {(e.stage_id, e.attempt) for e in self._bus.events(StageCompleted)}
        return sorted({e.stage_id for e in self._bus.events(StageSubmitted) if (e.stage_id, e.attempt) not in done})

    def getJobInfo(self, jobId: int) -> SparkJobInfo | None:
        starts = self._bus.events(JobStart, job_id=jobId)
        if not starts:
            return None
        ends = self._bus.events(JobEnd, job_id=jobId)
        status = "RUNNING" if not ends else ("SUCCEEDED" if ends[-1].status == "succeeded" else "FAILED")
        return SparkJobInfo(jobId, list(starts[-1].stage_ids), status)

    def getStageInfo(self, stageId: int) -> SparkStageInfo | None:
        submitted = self._bus.events(StageSubmitted, stage_id=stageId)
        if not submitted:
            return None
        last = submitted[-1]
        started = self._bus.events(TaskStart, stage_id=stageId, stage_attempt=last.attempt)
        ended = self._bus.events(TaskEnd, stage_id=stageId, stage_attempt=last.attempt)
        completed = sum(e.status == "success" for e in ended)
        failed = sum(e.status == "failed" for e in ended)
        return SparkStageInfo(stageId, last.attempt, last.name, last.num_tasks, len(started) - len(ended), completed, failed)
