"""The engine's messages: facts in the past tense, commands in the imperative.

Messages between the driver and executors cross processes: their fields are msgpack
values, with pickled data (task binaries, partitions, results, errors) as ``bytes``
packed once. Messages among the driver's own actors may carry RDD graphs and functions
as :class:`~sparklet.actors.Local` values, which never leave the process.
"""

from __future__ import annotations

from sparklet.actors import ActorRef, Local, message

# -- driver -> executor ---------------------------------------------------------------------


@message(tag="sparklet.StageBinary")
class StageBinary:
    """The pickled ``(rdd, func)`` of a stage attempt, sent once per executor."""

    key: str
    data: bytes


@message(tag="sparklet.RunTask")
class RunTask:
    task_id: int
    binary_key: str
    stage_id: int
    stage_attempt: int
    partition_index: int
    attempt_number: int
    partition: bytes  # the pickled Partition object
    properties: dict
    shuffle_map: bool  # a shuffle map task: the binary holds (rdd, dependency)
    map_output_epoch: int  # executors drop cached map output locations older than this
    # barrier: where every task of the stage attempt runs, by partition (empty: not a barrier task)
    barrier_addresses: tuple = ()


@message(tag="sparklet.GetMapStatuses")
class GetMapStatuses:
    """Where the map outputs of a shuffle are: (epoch, per map: (executor id, ref, sizes) or None)."""

    shuffle_id: int


@message(tag="sparklet.FetchSegments")
class FetchSegments:
    """The bytes of reduce partition ``reduce_id`` of these map outputs (held by the asked executor)."""

    shuffle_id: int
    reduce_id: int
    map_ids: tuple


@message(tag="sparklet.InterruptTask")
class InterruptTask:
    task_id: int
    reason: str


@message(tag="sparklet.DropStageBinary")
class DropStageBinary:
    key: str


@message(tag="sparklet.RemoveRdd")
class RemoveRdd:
    rdd_id: int


@message(tag="sparklet.RemoveBroadcast")
class RemoveBroadcast:
    broadcast_id: int


@message(tag="sparklet.PutBlock")
class PutBlock:
    """A replica of a cached block, for the receiving executor to keep (replication 1)."""

    block_id: str
    data: bytes
    level: tuple  # StorageLevel fields (useDisk, useMemory, useOffHeap, deserialized)


@message(tag="sparklet.GetPeers")
class GetPeers:
    """Executors other than ``executor_id`` to hold replicas, at most ``count``."""

    executor_id: str
    count: int


@message(tag="sparklet.FaultFired")
class FaultFired:
    """An executor injected a fault of the plan (``index`` into the plan's faults)."""

    executor_id: str
    index: int
    fault: str
    where: str


@message(tag="sparklet.CrashExecutor")
class CrashExecutor:
    """Make this executor fail (a planned kill of an in-process executor)."""

    reason: str


@message(tag="sparklet.CrashBlockManager")
class CrashBlockManager:
    """Make this executor's block manager fail (a planned ``crash_actor`` fault): the
    executor replaces it, as a supervisor would, and reports what it lost."""

    reason: str


@message(tag="sparklet.ReportBlocks")
class ReportBlocks:
    """Asked of each executor by a restarted block manager master: ``(host, memory,
    ((block id, storage, memory size, disk size), ...))``, its registration and blocks."""


@message(tag="sparklet.ReRegisterExecutor")
class ReRegisterExecutor:
    """Told to each executor by a restarted task scheduler: register again (the tasks it
    runs belong to the crashed scheduler's task sets: it interrupts them)."""

    reason: str


@message(tag="sparklet.GetExecutorInfo")
class GetExecutorInfo:
    pass


# -- executor -> driver -------------------------------------------------------------------------


@message(tag="sparklet.RegisterExecutor")
class RegisterExecutor:
    executor_id: str
    ref: ActorRef
    host: str
    cores: int
    pid: int
    memory: int


@message(tag="sparklet.StatusUpdate")
class StatusUpdate:
    """A task finished: ``state`` is ``success``, ``failed`` or ``killed``."""

    executor_id: str
    task_id: int
    state: str
    result: bytes | None        # pickled result (success)
    error: tuple | None         # (type name, message, traceback text, pickled exception or None)
    accum_updates: bytes | None  # pickled {accumulator id: partial value}
    metrics: dict
    fetch_failed: tuple | None = None  # (shuffle id, map id or None, executor id or None) for "fetch_failed"


@message(tag="sparklet.Heartbeat")
class Heartbeat:
    """``running_task_ids`` and ``highest_task_id`` (the last task it received): a task at or
    below that id which is neither running nor reported lost its status update."""

    executor_id: str
    running_task_ids: tuple
    highest_task_id: int
    metrics: dict


@message(tag="sparklet.BlockStatusUpdated")
class BlockStatusUpdated:
    executor_id: str
    block_id: str
    storage: str
    memory_size: int
    disk_size: int


@message(tag="sparklet.GetBroadcast")
class GetBroadcast:
    broadcast_id: int


# -- among the driver's actors (process-local payloads) -------------------------------------------


@message(tag="sparklet.SubmitJob")
class SubmitJob:
    job_id: int
    rdd: Local
    func: Local
    partitions: tuple
    properties: dict


@message(tag="sparklet.CancelJob")
class CancelJob:
    job_id: int
    reason: str


@message(tag="sparklet.CancelJobGroup")
class CancelJobGroup:
    group_id: str
    reason: str


@message(tag="sparklet.CancelAllJobs")
class CancelAllJobs:
    reason: str


@message(tag="sparklet.SchedulerEvent")
class SchedulerEvent:
    """An event for a scheduler core (its dataclass travels as a Local)."""

    event: Local


@message(tag="sparklet.SchedulerActions")
class SchedulerActions:
    """Actions a scheduler core produced that another actor carries out."""

    actions: Local


@message(tag="sparklet.ExecutorGone")
class ExecutorGone:
    executor_id: str
    reason: str


@message(tag="sparklet.ExpireDeadExecutors")
class ExpireDeadExecutors:
    pass


@message(tag="sparklet.ReviveOffers")
class ReviveOffers:
    pass


@message(tag="sparklet.SendHeartbeat")
class SendHeartbeat:
    pass


@message(tag="sparklet.PutBroadcast")
class PutBroadcast:
    broadcast_id: int
    data: bytes


@message(tag="sparklet.DestroyBroadcast")
class DestroyBroadcast:
    broadcast_id: int


@message(tag="sparklet.UnpersistBroadcast")
class UnpersistBroadcast:
    broadcast_id: int


@message(tag="sparklet.UnpersistRdd")
class UnpersistRdd:
    rdd_id: int


@message(tag="sparklet.GetRddStorage")
class GetRddStorage:
    rdd_id: int


@message(tag="sparklet.ListExecutors")
class ListExecutors:
    pass


@message(tag="sparklet.AwaitExecutors")
class AwaitExecutors:
    """Answered once at least ``count`` executors are registered."""

    count: int


# -- recovery: state kept twice, in actors that fail independently (see docs/recovery.md) ----------


@message(tag="sparklet.UpdateMapOutputs")
class UpdateMapOutputs:
    """Changes the DAG scheduler made to its map output replica, in order, for the map
    output tracker to replay (``ops``: a Local list of ``MapOutputRegistry`` journal entries)."""

    ops: Local


@message(tag="sparklet.SnapshotMapOutputs")
class SnapshotMapOutputs:
    """Asked of the map output tracker by a restarted DAG scheduler: a copy of its registry."""


@message(tag="sparklet.SyncMapOutputs")
class SyncMapOutputs:
    """Told to the DAG scheduler by a restarted map output tracker: send me your replica
    (it answers with ``LoadMapOutputs``, in order with its ``UpdateMapOutputs``)."""


@message(tag="sparklet.LoadMapOutputs")
class LoadMapOutputs:
    registry: Local


@message(tag="sparklet.JobRecordUpdates")
class JobRecordUpdates:
    """What the DAG scheduler tells the job manager to keep in its job registry: a Local
    list of ``("result", job id, output index, result)``, ``("stages", job id, stage ids)``
    and ``("next_stage_id", n)``."""

    updates: Local


@message(tag="sparklet.RecoverJobs")
class RecoverJobs:
    """Asked of the job manager by a restarted DAG scheduler: ``Local((next stage id, records))``."""


@message(tag="sparklet.ExportJobs")
class ExportJobs:
    """Asked of the DAG scheduler by a restarted job manager: ``Local((next stage id, records))``."""


@message(tag="sparklet.AwaitJob")
class AwaitJob:
    """Asked of a restarted job manager by a caller whose wait was cut by the restart."""

    job_id: int


@message(tag="sparklet.RunningJobsConfirmed")
class RunningJobsConfirmed:
    """The job manager's note to itself: the jobs the DAG scheduler runs now (None: it did
    not answer). Parked waiters of other jobs whose outcome has not arrived are answered."""

    job_ids: tuple | None
