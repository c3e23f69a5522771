"""sparklet: a Spark-like data-parallel runtime for Python, built from asyncio actors.

The public face of the library. ``Context`` and the RDD API (PySpark's names) come from
:mod:`sparklet.runtime` and :mod:`sparklet.rdd`; the actor kernel lives in
:mod:`sparklet.actors`, OTP-style supervision in :mod:`sparklet.supervision`.
"""

from sparklet.actors import (
    Actor,
    ActorRef,
    ActorSystem,
    ProcessActor,
    Props,
    Terminated,
    handler,
    message,
    spawn_in_process,
)
from sparklet.supervision import Backoff, ChildSpec, Directive, Supervisor, SupervisorFlags
from sparklet.rdd import RDD, BarrierTaskContext, BarrierTaskInfo, HashPartitioner, Partitioner, StatCounter, StorageLevel, TaskContext, portable_hash
from sparklet.runtime import Accumulator, AccumulatorParam, Broadcast, Context, StatusTracker, export_perfetto, write_report

__version__ = "0.1.0.dev0"

__all__ = [
    "Accumulator", "AccumulatorParam", "BarrierTaskContext", "BarrierTaskInfo", "Broadcast", "Context", "HashPartitioner", "Partitioner", "RDD",
    "StatCounter", "StatusTracker", "StorageLevel", "TaskContext", "portable_hash",
    "Actor", "ActorRef", "ActorSystem", "Backoff", "ChildSpec", "Directive", "ProcessActor", "Props",
    "Supervisor", "SupervisorFlags", "Terminated", "__version__", "handler", "message", "spawn_in_process",
    "export_perfetto", "write_report",
]
