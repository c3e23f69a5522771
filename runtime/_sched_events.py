"""The closed set of messages into and out of the scheduler cores (Spark's
``DAGSchedulerEvent.scala`` plus the commands the cores give).

Events are facts in the past tense (``JobSubmitted``, ``TaskEnded``); actions are
commands (``SubmitTasks``, ``LaunchTask``) or listener notifications (``...Info``). All
are frozen dataclasses. Every one carries ``cause``: the id of the outside stimulus that
led to it (dask's ``stimulus_id``). A core copies the cause of the event it is handling
onto every action it returns, so a trace can follow one stimulus through both cores.

Routing (see :mod:`sparklet.runtime._dag` for the loop):

* into :class:`DAGSchedulerCore.handle`: ``JobSubmitted``, ``JobCancelled``,
  ``JobGroupCancelled``, ``AllJobsCancelled`` (from the context), and ``TaskEnded``,
  ``TaskSetFailed``, ``TaskSetLost``, ``ExecutorAdded``, ``ExecutorLost`` (returned by the
  task scheduler, which is their only source);
* out of the DAG core: ``SubmitTasks``, ``CancelTasks``, ``MarkPartitionCompleted`` (to the
  task scheduler core), ``JobSucceeded``, ``JobFailed`` (to the job's waiter),
  ``MergeAccumulators`` (to the accumulator registry), ``*Info`` (to the listener bus);
* out of the task scheduler core: ``LaunchTask``, ``KillTask`` (to executors) and the DAG
  events above.

Task locations (``TaskSpec.preferred_locations``) are strings in Spark's ``TaskLocation``
form: ``"executor_<host>_<executor id>"`` for a block cached on one executor (process
local there, node local on its host), a bare ``"<host>"`` otherwise.
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

__all__ = [
    "JOB_GROUP_PROPERTY", "TASK_END_STATUSES", "TaskLocality", "TaskSpec", "MapStatus", "executor_location", "parse_location",
    # events
    "JobSubmitted", "TaskEnded", "ExecutorAdded", "ExecutorLost", "JobCancelled", "JobGroupCancelled",
    "AllJobsCancelled", "TaskSetFailed", "TaskSetLost", "JobRecovered", "DAG_EVENTS",
    # actions
    "SubmitTasks", "CancelTasks", "MarkPartitionCompleted", "JobSucceeded", "JobFailed", "MergeAccumulators",
    "StageSubmittedInfo", "StageCompletedInfo", "JobStartedInfo", "JobEndedInfo", "LaunchTask", "KillTask",
    "JobRecoveredInfo",
]

JOB_GROUP_PROPERTY = "spark.jobGroup.id"
TASK_END_STATUSES = frozenset({"success", "failed", "killed", "fetch_failed", "executor_lost"})

_frozen = dataclasses.dataclass(frozen=True)


def _cause() -> Any:
    return dataclasses.field(default=None, kw_only=True)


class TaskLocality(enum.IntEnum):
    """How close a task runs to its data; ordered, nearer first (Spark's ``TaskLocality``
    without RACK_LOCAL, which needs a topology we do not have)."""

    PROCESS_LOCAL = 0  # on the executor that caches the input
    NODE_LOCAL = 1     # on the host that holds it
    NO_PREF = 2        # the task has no preference
    ANY = 3


def executor_location(host: str, executor_id: str) -> str:
    """The location string of a block cached on ``executor_id`` at ``host``."""
    return f"executor_{host}_{executor_id}"


def parse_location(location: str) -> tuple[str, str | None]:
    """``(host, executor_id or None)`` of a location string."""
    if location.startswith("executor_"):
        host, _, executor_id = location[len("executor_"):].partition("_")
        return host, executor_id
    return location, None


@_frozen
class TaskSpec:
    """One task of a task set: the partition it computes, its position ``index`` in the
    task set (0..n-1, what ``LaunchTask.index`` refers to) and where it would rather run."""

    partition: int
    index: int
    preferred_locations: tuple[str, ...] = ()


@_frozen
class MapStatus:
    """Where one map task left its shuffle output, and the bytes per reduce partition."""

    executor_id: str
    sizes: tuple[int, ...] = ()
    map_task_id: int | None = None


# -- events --------------------------------------------------------------------------------------


@_frozen
class JobSubmitted:
    job_id: int
    rdd: Any
    func: Any
    partitions: tuple[int, ...]
    properties: dict = dataclasses.field(default_factory=dict)
    submitted_at: float = 0.0
    cause: int | None = _cause()


@_frozen
class TaskEnded:
    """A task attempt finished (sent by the task scheduler core, also for zombie task sets).

    ``result``: the task's return value on success, the exception a user function raised
    when ``status == "failed"``. ``map_status`` is set on a shuffle map task's success; the
    ``fetch_failed_*`` fields name the map output a ``"fetch_failed"`` task could not read
    (``map_id`` None: which map is unknown). ``attempt_number``: of this partition's task
    within its task set (for listeners)."""

    stage_id: int
    stage_attempt: int
    partition: int
    task_id: int
    executor_id: str
    status: str
    result: Any = None
    accum_updates: tuple = ()
    metrics: dict = dataclasses.field(default_factory=dict)
    reason: str = ""
    map_status: MapStatus | None = None
    fetch_failed_shuffle_id: int | None = None
    fetch_failed_map_id: int | None = None
    fetch_failed_executor_id: str | None = None
    attempt_number: int = 0
    cause: int | None = _cause()

    def __post_init__(self) -> None:
        if self.status not in TASK_END_STATUSES:
            raise ValueError(f"TaskEnded.status must be one of {sorted(TASK_END_STATUSES)}, got {self.status!r}")
        if self.status == "fetch_failed" and self.fetch_failed_shuffle_id is None:
            raise ValueError("TaskEnded with status 'fetch_failed' needs fetch_failed_shuffle_id, got None")


@_frozen
class ExecutorAdded:
    executor_id: str
    host: str
    cores: int = 1  # its task slots (the DAG core counts them for barrier stages)
    cause: int | None = _cause()


@_frozen
class ExecutorLost:
    executor_id: str
    reason: str
    cause: int | None = _cause()


@_frozen
class JobCancelled:
    job_id: int
    reason: str = ""
    cause: int | None = _cause()


@_frozen
class JobGroupCancelled:
    group_id: str
    reason: str = ""
    cause: int | None = _cause()


@_frozen
class AllJobsCancelled:
    reason: str = ""
    cause: int | None = _cause()


@_frozen
class TaskSetFailed:
    """The task scheduler gave up on a task set (a task failed ``max_failures`` times, or
    the actor could not serialize the task binary). ``exception``: the last user exception."""

    stage_id: int
    stage_attempt: int
    reason: str
    exception: Any = None
    cause: int | None = _cause()


@_frozen
class TaskSetLost:
    """The task set of a stage attempt crashed (its ``TaskSetManager`` actor failed): its
    running tasks were killed; the DAG core submits a new attempt for what is missing."""

    stage_id: int
    stage_attempt: int
    reason: str
    cause: int | None = _cause()


@_frozen
class JobRecovered:
    """A restarted DAG scheduler takes over a job its previous incarnation was running,
    from the job manager's record: ``results`` are the (output index, result) pairs that
    had already arrived (their accumulator updates were merged then)."""

    job_id: int
    rdd: Any
    func: Any
    partitions: tuple[int, ...]
    properties: dict
    submitted_at: float
    results: tuple[tuple[int, Any], ...]
    reason: str = "the DAG scheduler restarted"
    cause: int | None = _cause()


DAG_EVENTS = (JobSubmitted, TaskEnded, ExecutorAdded, ExecutorLost, JobCancelled, JobGroupCancelled,
              AllJobsCancelled, TaskSetFailed, TaskSetLost, JobRecovered)

# -- actions of the DAG core ------------------------------------------------------------------------


@_frozen
class SubmitTasks:
    """Run these tasks of one stage attempt. The actor pickles ``(rdd, func_or_shuffle_dep)``
    once as the task binary. Lower ``priority`` runs first (FIFO: the job id)."""

    job_id: int
    stage_id: int
    stage_attempt: int
    rdd: Any
    func_or_shuffle_dep: Any
    tasks: tuple[TaskSpec, ...]
    is_shuffle_map: bool
    properties: dict
    priority: int
    barrier: bool = False  # barrier: launch all tasks at once or none, never retry one alone
    cause: int | None = _cause()


@_frozen
class CancelTasks:
    """Kill the running tasks of a stage attempt (``stage_attempt`` None: of every attempt)
    and launch no more of them."""

    stage_id: int
    stage_attempt: int | None
    reason: str
    cause: int | None = _cause()


@_frozen
class MarkPartitionCompleted:
    """Another attempt of the stage computed ``partition``: the live task set need not."""

    stage_id: int
    partition: int
    cause: int | None = _cause()


@_frozen
class JobSucceeded:
    job_id: int
    results: list
    cause: int | None = _cause()


@_frozen
class JobFailed:
    """``exception``: the user's exception when a task's code failed, else None.
    ``cancelled``: the job was cancelled rather than failed."""

    job_id: int
    error: str
    exception: Any = None
    cancelled: bool = False
    cause: int | None = _cause()


@_frozen
class MergeAccumulators:
    """Accumulator updates of the first successful run of (stage, partition)."""

    job_id: int
    updates: tuple
    stage_id: int
    partition: int
    cause: int | None = _cause()


@_frozen
class StageSubmittedInfo:
    stage_id: int
    attempt: int
    name: str
    num_tasks: int
    partitions_to_run: tuple[int, ...]
    parent_ids: tuple[int, ...]
    job_ids: tuple[int, ...]
    time: float
    reason: str | None = None  # why this attempt runs, when it re-runs work (None: first run)
    shuffle_id: int | None = None  # a map stage's shuffle
    rdd_id: int | None = None
    cause: int | None = _cause()


@_frozen
class JobRecoveredInfo:
    """A job was recovered after a restart: which results were kept, which are recomputed,
    and which map outputs of its shuffles were missing (to be recomputed)."""

    job_id: int
    stage_ids: tuple[int, ...]
    results_kept: tuple[int, ...]
    results_missing: tuple[int, ...]
    missing_map_outputs: tuple[tuple[int, tuple[int, ...]], ...]  # (shuffle id, map partitions)
    reason: str
    time: float
    cause: int | None = _cause()


@_frozen
class StageCompletedInfo:
    """``status``: "succeeded", "failed" or "skipped" (never run for a job that ended)."""

    stage_id: int
    attempt: int
    status: str
    failure_reason: str | None
    time: float
    cause: int | None = _cause()


@_frozen
class JobStartedInfo:
    job_id: int
    stage_ids: tuple[int, ...]
    properties: dict
    time: float
    cause: int | None = _cause()


@_frozen
class JobEndedInfo:
    """``status``: "succeeded", "failed" or "cancelled"."""

    job_id: int
    status: str
    error: str | None
    time: float
    cause: int | None = _cause()


# -- actions of the task scheduler core -------------------------------------------------------------


@_frozen
class LaunchTask:
    """``speculative``: a copy of a task that still runs elsewhere (speculation)."""

    task_id: int
    executor_id: str
    stage_id: int
    stage_attempt: int
    partition: int
    index: int
    attempt_number: int
    locality: TaskLocality
    speculative: bool = False
    cause: int | None = _cause()


@_frozen
class KillTask:
    task_id: int
    executor_id: str
    stage_id: int
    stage_attempt: int
    reason: str
    cause: int | None = _cause()
