"""sparklet.runtime: the Context, the driver's schedulers, executors and block managers."""

from sparklet.runtime._conf import Conf
from sparklet.runtime._context import parse_master
from sparklet.runtime._context_api import Context
from sparklet.runtime._faults import Fault, FaultPlan, InjectedFault
from sparklet.runtime._job_summary import JobSummary
from sparklet.runtime._jobs import JobCancelledError, JobFailedError
from sparklet.runtime._report import write_report
from sparklet.runtime._trace_export import export_perfetto
from sparklet.runtime._listener import (
    ActorRecovered, JobRecovered, ExecutorExcluded, ExecutorRegistered, ExecutorRemoved, ExecutorUnexcluded, FaultInjected, FaultPlanRecorded, JobEnd, JobStart, SchedulerEvent,
    StageCompleted, StageSubmitted, TaskEnd, TaskStart,
)
from sparklet.runtime._shared import Accumulator, AccumulatorParam, Broadcast
from sparklet.runtime._status import SparkJobInfo, SparkStageInfo, StatusTracker

__all__ = [
    "ActorRecovered", "JobRecovered", "Accumulator", "AccumulatorParam", "Broadcast", "Conf", "Context", "ExecutorExcluded", "ExecutorRegistered", "ExecutorRemoved",
    "ExecutorUnexcluded",
    "Fault", "FaultInjected", "FaultPlan", "FaultPlanRecorded", "InjectedFault",
    "JobCancelledError", "JobEnd", "JobSummary", "JobFailedError", "JobStart", "SchedulerEvent", "SparkJobInfo", "SparkStageInfo",
    "StageCompleted", "StageSubmitted", "StatusTracker", "TaskEnd", "TaskStart", "parse_master",
    "export_perfetto", "write_report",
]
