"""Our scheduler events as Spark listener events (JSON objects), so Spark's History Server
can open a sparklet application's event log.

:class:`SparkEventTranslator` is sans-I/O: scheduler events in (``runtime/_listener.py``),
Spark listener events out, as dicts in Spark's ``JsonProtocol`` shape (field names such
as ``"Stage Infos"``, ``"Task Metrics"``, times in epoch milliseconds).
:mod:`sparklet.runtime._event_log` writes them to a file.

Spark posts ``SparkListenerJobStart`` with the ``StageInfo`` of every stage the job needs
(names, task counts), including stages that never run (the History Server marks those
*skipped* when the job ends). Our ``JobStart`` carries only the stage ids, and a stage's
name and task count are known once it is submitted. So the translator holds a job start
back, together with everything posted after it (order is kept), until its result stage
is submitted (the stages it needed to run were submitted before: the ones still unknown
are skipped), every one of its stages is known, or the job has ended. A stage that never
ran and was never seen gets a placeholder name and no tasks. Our ``StageCompleted(status="skipped")`` has no Spark
counterpart and is dropped: the History Server derives skipped stages itself.

Invariants (``validate_state``):

* held events are in posting order, and the first held event is a ``JobStart`` waiting
  for stage information (nothing is held for any other reason);
* every task attempt that started and has not ended is known by its task id, with the
  stage attempt it belongs to;
* the index of a task is its partition's position in its stage attempt's partitions.
"""

from __future__ import annotations

import collections
import getpass
import os
import platform
import sys
from typing import Any, Iterable

from sparklet.runtime import _listener as listen

__all__ = ["SparkEventTranslator", "SPARK_COMPAT_VERSION"]

# The event-log format version we write (Spark keeps its JSON backwards compatible, so
# any History Server at least this new reads it).
SPARK_COMPAT_VERSION = "3.5.0"

_LOCALITIES = {"PROCESS_LOCAL", "NODE_LOCAL", "NO_PREF", "RACK_LOCAL", "ANY"}
_STORAGE_NONE = {"Use Disk": False, "Use Memory": False, "Use Off Heap": False, "Deserialized": False, "Replication": 1}


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def _strings(mapping: dict) -> dict[str, str]:
    return {str(k): str(v) for k, v in mapping.items() if v is not None}


class SparkEventTranslator:
    """Scheduler events in, Spark listener events (dicts) out, in order."""

    def __init__(self, *, app_name: str, app_id: str, master: str, start_time: float,
                 conf: Iterable[tuple[str, Any]] = (), version: str = "") -> None:
        self.app_name = app_name
        self.app_id = app_id
        self.master = master
        self.start_time = start_time
        self.conf = dict(conf)
        self.version = version
        self._held: collections.deque[listen.SchedulerEvent] = collections.deque()
        self._ended_jobs: set[int] = set()
        # stage id -> what Spark's StageInfo needs, from its first submission.
        self._stages: dict[int, dict[str, Any]] = {}
        # (stage id, attempt) -> (submission time, partitions of that attempt)
        self._attempts: dict[tuple[int, int], tuple[float, tuple[int, ...]]] = {}
        self._completed: dict[int, float] = {}  # stage id -> completion time of its last success
        self._result_stages: set[int] = set()
        self._hosts: dict[str, str] = {}
        self._running: dict[int, dict[str, Any]] = {}  # task id -> its Spark TaskInfo so far

    # -- the application ---------------------------------------------------------------------------
    def start(self) -> list[dict]:
        """The log's first events: log start, environment, application start."""
        spark_properties = {"spark.master": self.master, "spark.app.name": self.app_name, "spark.app.id": self.app_id,
                            "spark.eventLog.enabled": "true"}
        spark_properties.update((f"spark.{k}", str(v)) for k, v in self.conf.items() if v is not None)
        return [
            {"Event": "SparkListenerLogStart", "Spark Version": SPARK_COMPAT_VERSION},
            {"Event": "SparkListenerEnvironmentUpdate",
             "JVM Information": {"Java Home": "", "Java Version": "", "Scala Version": "",
                                 "Python Version": sys.version.split()[0],
                                 "sparklet Version": self.version},
             "Spark Properties": spark_properties,
             "Hadoop Properties": {},
             "System Properties": {"os.name": platform.system(), "user.dir": os.getcwd(),
                                   "python.executable": sys.executable},
             "Metrics Properties": {},
             "Classpath Entries": {}},
            {"Event": "SparkListenerApplicationStart", "App Name": self.app_name, "App ID": self.app_id,
             "Timestamp": _ms(self.start_time), "User": _user()},
        ]

    def finish(self, end_time: float) -> list[dict]:
        """Whatever is still held (stages never seen get placeholders), then the end."""
        out = self._release(force=True)
        out.append({"Event": "SparkListenerApplicationEnd", "Timestamp": _ms(end_time)})
        return out

    # -- scheduler events --------------------------------------------------------------------------
    def on_event(self, event: listen.SchedulerEvent) -> list[dict]:
        if isinstance(event, listen.StageSubmitted):
            self._stages.setdefault(event.stage_id, {
                "name": event.name, "num_tasks": event.num_tasks, "parents": list(event.parent_ids)})
        elif isinstance(event, listen.JobEnd):
            self._ended_jobs.add(event.job_id)
        elif isinstance(event, listen.JobStart) and event.stage_ids:
            self._result_stages.add(max(event.stage_ids))  # created last, after its parents
        if self._held or (isinstance(event, listen.JobStart) and not self._stages_known(event)):
            self._held.append(event)
            return self._release(force=False)
        return self._translate(event)

    def _stages_known(self, job: listen.JobStart) -> bool:
        """Known enough to write: every stage seen, or the job's result stage submitted
        (its parents that had to run were submitted before it: the others are skipped),
        or the job over."""
        return (job.job_id in self._ended_jobs or all(s in self._stages for s in job.stage_ids)
                or max(job.stage_ids) in self._stages)

    def _release(self, force: bool) -> list[dict]:
        out: list[dict] = []
        while self._held:
            head = self._held[0]
            if isinstance(head, listen.JobStart) and not force and not self._stages_known(head):
                break
            self._held.popleft()
            out.extend(self._translate(head))
        return out

    def _translate(self, event: listen.SchedulerEvent) -> list[dict]:
        if isinstance(event, listen.ExecutorRegistered):
            self._hosts[event.executor_id] = event.host
            return [{"Event": "SparkListenerExecutorAdded", "Timestamp": _ms(event.time),
                     "Executor ID": event.executor_id,
                     "Executor Info": {"Host": event.host, "Total Cores": event.cores,
                                       "Log Urls": {}, "Attributes": {"pid": str(event.pid)}, "Resources": {},
                                       "Resource Profile Id": 0}}]
        if isinstance(event, listen.ExecutorRemoved):
            return [{"Event": "SparkListenerExecutorRemoved", "Timestamp": _ms(event.time),
                     "Executor ID": event.executor_id, "Removed Reason": event.reason}]
        if isinstance(event, listen.JobStart):
            return [{"Event": "SparkListenerJobStart", "Job ID": event.job_id, "Submission Time": _ms(event.time),
                     "Stage Infos": [self._stage_info(s, 0) for s in event.stage_ids],
                     "Stage IDs": list(event.stage_ids), "Properties": _strings(event.properties)}]
        if isinstance(event, listen.JobEnd):
            result: dict[str, Any] = {"Result": "JobSucceeded"}
            if event.status != "succeeded":
                result = {"Result": "JobFailed",
                          "Exception": {"Message": event.error or f"job {event.status}", "Stack Trace": []}}
            return [{"Event": "SparkListenerJobEnd", "Job ID": event.job_id, "Completion Time": _ms(event.time),
                     "Job Result": result}]
        if isinstance(event, listen.StageSubmitted):
            self._attempts[(event.stage_id, event.attempt)] = (event.time, tuple(event.partitions))
            info = self._stage_info(event.stage_id, event.attempt, num_tasks=event.num_tasks)
            info["Submission Time"] = _ms(event.time)
            info.pop("Completion Time", None)
            return [{"Event": "SparkListenerStageSubmitted", "Stage Info": info, "Properties": {}}]
        if isinstance(event, listen.StageCompleted):
            if event.status == "skipped":
                return []
            submitted, partitions = self._attempts.pop((event.stage_id, event.attempt), (event.time, ()))
            info = self._stage_info(event.stage_id, event.attempt, num_tasks=len(partitions))
            info["Submission Time"] = _ms(submitted)
            info["Completion Time"] = _ms(event.time)
            if event.status == "succeeded":
                self._completed[event.stage_id] = event.time
            else:
                info["Failure Reason"] = event.failure_reason or event.status
            return [{"Event": "SparkListenerStageCompleted", "Stage Info": info}]
        if isinstance(event, listen.TaskStart):
            partitions = self._attempts.get((event.stage_id, event.stage_attempt), (0.0, ()))[1]
            index = partitions.index(event.partition) if event.partition in partitions else event.partition
            locality = event.locality if event.locality in _LOCALITIES else "ANY"
            task_info = {"Task ID": event.task_id, "Index": index, "Attempt": event.attempt,
                         "Partition ID": event.partition, "Launch Time": _ms(event.time),
                         "Executor ID": event.executor_id, "Host": self._hosts.get(event.executor_id, "localhost"),
                         "Locality": locality, "Speculative": event.speculative, "Getting Result Time": 0,
                         "Finish Time": 0, "Failed": False, "Killed": False, "Accumulables": []}
            self._running[event.task_id] = task_info
            return [{"Event": "SparkListenerTaskStart", "Stage ID": event.stage_id,
                     "Stage Attempt ID": event.stage_attempt, "Task Info": dict(task_info)}]
        if isinstance(event, listen.TaskEnd):
            return [self._task_end(event)]
        return []  # faults and plans have no Spark counterpart

    def _task_end(self, event: listen.TaskEnd) -> dict:
        task_info = self._running.pop(event.task_id, None)
        if task_info is None:  # ended without a start we saw (lost before it was reported)
            task_info = {"Task ID": event.task_id, "Index": event.partition, "Attempt": event.attempt,
                         "Partition ID": event.partition, "Launch Time": _ms(event.time),
                         "Executor ID": event.executor_id, "Host": self._hosts.get(event.executor_id, "localhost"),
                         "Locality": "ANY", "Speculative": event.speculative, "Getting Result Time": 0,
                         "Accumulables": []}
        task_info.update({"Finish Time": _ms(event.time), "Failed": event.status not in ("success", "killed"),
                          "Killed": event.status == "killed"})
        return {"Event": "SparkListenerTaskEnd", "Stage ID": event.stage_id, "Stage Attempt ID": event.stage_attempt,
                "Task Type": "ResultTask" if event.stage_id in self._result_stages else "ShuffleMapTask",
                "Task End Reason": _end_reason(event), "Task Info": task_info,
                "Task Executor Metrics": {}, "Task Metrics": task_metrics(event.metrics, task_info["Host"])}

    def _stage_info(self, stage_id: int, attempt: int, num_tasks: int | None = None) -> dict:
        known = self._stages.get(stage_id)
        name = known["name"] if known else f"stage {stage_id} (skipped: its outputs were already there)"
        info = {"Stage ID": stage_id, "Stage Attempt ID": attempt, "Stage Name": name,
                "Number of Tasks": num_tasks if num_tasks is not None else (known["num_tasks"] if known else 0),
                "RDD Info": [], "Parent IDs": known["parents"] if known else [], "Details": name,
                "Accumulables": [], "Resource Profile Id": 0}
        if stage_id in self._completed:
            info["Completion Time"] = _ms(self._completed[stage_id])
        return info

    def validate_state(self) -> None:
        if self._held:
            head = self._held[0]
            assert isinstance(head, listen.JobStart) and not self._stages_known(head), f"held without reason: {head}"
        for task_id, info in self._running.items():
            assert info["Task ID"] == task_id, (task_id, info)


def task_metrics(metrics: dict, host: str) -> dict:
    """Spark's ``TaskMetrics`` JSON from an executor's metrics (seconds -> ms, bytes)."""
    get = metrics.get
    out: dict[str, Any] = {
        "Host Name": host,
        "Executor Deserialize Time": _ms(get("executor_deserialize_time", 0.0)),
        "Executor Deserialize CPU Time": 0,
        "Executor Run Time": _ms(get("executor_run_time", 0.0)),
        "Executor CPU Time": 0,
        "Peak Execution Memory": int(get("shuffle_peak_memory", 0)),
        "Result Size": int(get("result_size", 0)),
        "JVM GC Time": 0,
        "Result Serialization Time": _ms(get("result_serialization_time", 0.0)),
        "Memory Bytes Spilled": 0,
        "Disk Bytes Spilled": int(get("shuffle_bytes_spilled", 0)),
        "Shuffle Read Metrics": {
            "Remote Blocks Fetched": int(get("shuffle_remote_blocks_fetched", 0)),
            "Local Blocks Fetched": int(get("shuffle_local_blocks_fetched", 0)),
            "Fetch Wait Time": _ms(get("shuffle_fetch_wait_time", 0.0)),
            "Remote Bytes Read": int(get("shuffle_bytes_read", 0)),
            "Remote Bytes Read To Disk": 0,
            "Local Bytes Read": int(get("shuffle_local_bytes_read", 0)),
            "Total Records Read": int(get("shuffle_records_read", 0)),
            "Remote Requests Duration": 0,
        },
        "Shuffle Write Metrics": {
            "Shuffle Bytes Written": int(get("shuffle_bytes_written", 0)),
            "Shuffle Write Time": int(get("shuffle_write_time", 0.0) * 1e9),  # Spark: nanoseconds
            "Shuffle Records Written": int(get("shuffle_records_written", 0)),
        },
        "Input Metrics": {"Bytes Read": int(get("input_bytes_read", 0)), "Records Read": int(get("records_read", 0))},
        "Output Metrics": {"Bytes Written": 0, "Records Written": 0},
        "Updated Blocks": [],
    }
    return out


def _end_reason(event: listen.TaskEnd) -> dict:
    reason = event.reason or ""
    if event.status == "success":
        return {"Reason": "Success"}
    if event.status == "killed":
        return {"Reason": "TaskKilled", "Kill Reason": reason or "killed", "Accumulator Updates": []}
    if event.status == "executor_lost":
        return {"Reason": "ExecutorLostFailure", "Executor ID": event.executor_id, "Exit Caused By App": False,
                "Loss Reason": reason}
    if event.status == "fetch_failed":
        return {"Reason": "FetchFailed", "Block Manager Address": None,
                "Shuffle ID": int(event.metrics.get("fetch_failed_shuffle_id", -1)),
                "Map ID": int(event.metrics.get("fetch_failed_map_id", -1)), "Map Index": -1, "Reduce ID": event.partition,
                "Message": reason}
    class_name, _, description = reason.partition(": ")
    return {"Reason": "ExceptionFailure", "Class Name": class_name or "Exception", "Description": description or reason,
            "Stack Trace": [], "Full Stack Trace": reason, "Accumulator Updates": []}


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers): Spark shows what it is given
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"
