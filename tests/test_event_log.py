"""Spark event logs: the translator (sans-I/O) and the file a real context writes.

The History Server itself reads these logs in tests/test_history_server.py."""

from __future__ import annotations

import json
import os

import pytest

from sparklet import Context
from sparklet.runtime import _listener as listen
from sparklet.runtime._event_log import EventLogWriter, event_log_directory
from sparklet.runtime._faults import Fault, FaultPlan
from sparklet.runtime._spark_events import SparkEventTranslator

QUIET = {"ui.showConsoleProgress": False}


def translator() -> SparkEventTranslator:
    return SparkEventTranslator(app_name="t", app_id="app-1", master="inproc[1]", start_time=100.0,
                                conf=[("task.maxFailures", 4)], version="0")


def feed(tr: SparkEventTranslator, events: list) -> list[dict]:
    out = []
    for event in events:
        out += tr.on_event(event)
        tr.validate_state()
    return out


def shuffle_job(job_id: int, map_stage: int, result_stage: int, t: float, map_runs: bool = True) -> list:
    """The events of a two-stage job; ``map_runs=False``: the map stage is skipped."""
    events: list = [listen.JobStart(t, job_id, (map_stage, result_stage), {"spark.job.description": "demo"})]
    task = 100 * job_id
    if map_runs:
        events += [listen.StageSubmitted(t, map_stage, 0, "map", 2, (0, 1), ()),
                   listen.TaskStart(t, task, map_stage, 0, 1, 0, "exec-0", "NO_PREF"),
                   listen.TaskEnd(t + 1, task, map_stage, 0, 1, 0, "exec-0", "success", None,
                                  {"executor_run_time": 0.5, "shuffle_bytes_written": 42, "shuffle_records_written": 3}),
                   listen.TaskStart(t, task + 1, map_stage, 0, 0, 0, "exec-0", "NO_PREF"),
                   listen.TaskEnd(t + 1, task + 1, map_stage, 0, 0, 0, "exec-0", "success", None, {}),
                   listen.StageCompleted(t + 1, map_stage, 0, "succeeded")]
    events += [listen.StageSubmitted(t + 1, result_stage, 0, "collect", 1, (0,), (map_stage,)),
               listen.TaskStart(t + 1, task + 2, result_stage, 0, 0, 0, "exec-0", "PROCESS_LOCAL"),
               listen.TaskEnd(t + 2, task + 2, result_stage, 0, 0, 0, "exec-0", "failed", "ValueError: bad record", {}),
               listen.TaskStart(t + 2, task + 3, result_stage, 0, 0, 1, "exec-0", "PROCESS_LOCAL"),
               listen.TaskEnd(t + 3, task + 3, result_stage, 0, 0, 1, "exec-0", "success", None, {"result_size": 7}),
               listen.StageCompleted(t + 3, result_stage, 0, "succeeded")]
    if not map_runs:
        events.append(listen.StageCompleted(t + 3, map_stage, 0, "skipped"))
    events.append(listen.JobEnd(t + 3, job_id, "succeeded"))
    return events


def test_translator_writes_spark_events_in_order_with_stage_infos_and_metrics():
    tr = translator()
    start = tr.start()
    assert [e["Event"] for e in start] == [
        "SparkListenerLogStart", "SparkListenerEnvironmentUpdate", "SparkListenerApplicationStart"]
    assert start[2]["App ID"] == "app-1" and start[2]["Timestamp"] == 100_000
    assert start[1]["Spark Properties"]["spark.task.maxFailures"] == "4"
    out = feed(tr, [listen.ExecutorRegistered(100.0, "exec-0", "hostA", 2, 123)] + shuffle_job(0, 0, 1, 101.0))
    names = [e["Event"] for e in out]
    assert names[:3] == ["SparkListenerExecutorAdded", "SparkListenerJobStart", "SparkListenerStageSubmitted"]
    assert names[-1] == "SparkListenerJobEnd" and out[-1]["Job Result"] == {"Result": "JobSucceeded"}
    job = out[1]
    # The job start waited for its stages' names and task counts (Spark posts them with it).
    assert [(s["Stage ID"], s["Stage Name"], s["Number of Tasks"]) for s in job["Stage Infos"]] == [
        (0, "map", 2), (1, "collect", 1)]
    assert job["Properties"] == {"spark.job.description": "demo"}
    ends = [e for e in out if e["Event"] == "SparkListenerTaskEnd"]
    assert [e["Task Type"] for e in ends] == ["ShuffleMapTask", "ShuffleMapTask", "ResultTask", "ResultTask"]
    first = ends[0]
    assert first["Task Info"]["Index"] == 1 and first["Task Info"]["Host"] == "hostA"
    assert first["Task Info"]["Launch Time"] == 101_000 and first["Task Info"]["Finish Time"] == 102_000
    assert first["Task Metrics"]["Executor Run Time"] == 500
    assert first["Task Metrics"]["Shuffle Write Metrics"]["Shuffle Bytes Written"] == 42
    failed = ends[2]
    assert failed["Task Info"]["Failed"] is True
    assert failed["Task End Reason"]["Reason"] == "ExceptionFailure"
    assert failed["Task End Reason"]["Class Name"] == "ValueError"
    assert failed["Task End Reason"]["Description"] == "bad record"
    completed = [e for e in out if e["Event"] == "SparkListenerStageCompleted"]
    assert [c["Stage Info"]["Completion Time"] for c in completed] == [102_000, 104_000]
    end = tr.finish(200.0)
    assert end == [{"Event": "SparkListenerApplicationEnd", "Timestamp": 200_000}]


def test_a_skipped_stage_is_announced_with_its_job_and_never_completed():
    tr = translator()
    feed(tr, shuffle_job(0, 0, 1, 10.0))
    # Second job: a new map stage (2) for the same shuffle never runs: its outputs exist.
    second = shuffle_job(1, 2, 3, 20.0, map_runs=False)
    out = feed(tr, second[:1])
    assert out == [], "the job start is held until its result stage is submitted"
    out += feed(tr, second[1:])
    names = [e["Event"] for e in out]
    assert names[0] == "SparkListenerJobStart" and names[-1] == "SparkListenerJobEnd"
    infos = {s["Stage ID"]: s for s in out[0]["Stage Infos"]}
    assert infos[3]["Stage Name"] == "collect" and "skipped" in infos[2]["Stage Name"]
    completed = [e["Stage Info"]["Stage ID"] for e in out if e["Event"] == "SparkListenerStageCompleted"]
    assert completed == [3], "Spark has no 'skipped' completion; the History Server derives it"
    # The order of everything held back is kept.
    assert names == ["SparkListenerJobStart", "SparkListenerStageSubmitted", "SparkListenerTaskStart",
                     "SparkListenerTaskEnd", "SparkListenerTaskStart", "SparkListenerTaskEnd",
                     "SparkListenerStageCompleted", "SparkListenerJobEnd"]


def test_a_job_start_waits_for_its_map_stages_until_the_result_stage_is_submitted():
    tr = translator()
    events = shuffle_job(0, 0, 1, 10.0)
    held = feed(tr, events[:6])  # job start, the map stage and its tasks
    assert held == []
    released = feed(tr, events[6:7])  # the map stage completes: still held
    assert released == []
    released = feed(tr, events[7:8])  # the result stage is submitted: all of it goes out, in order
    assert [e["Event"] for e in released] == [
        "SparkListenerJobStart", "SparkListenerStageSubmitted", "SparkListenerTaskStart", "SparkListenerTaskEnd",
        "SparkListenerTaskStart", "SparkListenerTaskEnd", "SparkListenerStageCompleted", "SparkListenerStageSubmitted"]
    assert feed(tr, events[8:9])[0]["Event"] == "SparkListenerTaskStart"  # nothing held any more


def test_a_stage_seen_in_an_earlier_job_is_known_at_once_and_marked_completed():
    tr = translator()
    feed(tr, shuffle_job(0, 0, 1, 10.0))
    out = feed(tr, [listen.JobStart(30.0, 1, (0, 4), {})])
    assert out == []  # stage 4 not known yet
    out = feed(tr, [listen.StageSubmitted(30.0, 4, 0, "count", 2, (0, 1), (0,))])
    infos = {s["Stage ID"]: s for s in out[0]["Stage Infos"]}
    assert infos[0]["Completion Time"] == 11_000 and "Completion Time" not in infos[4]


def test_failures_map_to_spark_end_reasons_and_finish_releases_everything():
    tr = translator()
    events = [listen.JobStart(1.0, 0, (0,), {}),
              listen.TaskEnd(2.0, 9, 0, 0, 3, 0, "exec-1", "executor_lost", "executor exec-1 terminated", {}),
              listen.JobEnd(3.0, 0, "failed", "Job aborted: boom")]
    out = feed(tr, events[:2])
    assert out == []
    out = tr.finish(4.0)
    names = [e["Event"] for e in out]
    assert names == ["SparkListenerJobStart", "SparkListenerTaskEnd", "SparkListenerApplicationEnd"]
    lost = out[1]
    assert lost["Task End Reason"] == {"Reason": "ExecutorLostFailure", "Executor ID": "exec-1",
                                       "Exit Caused By App": False, "Loss Reason": "executor exec-1 terminated"}
    assert lost["Task Info"]["Failed"] is True and lost["Task Info"]["Index"] == 3
    tr2 = translator()
    out = feed(tr2, events)
    assert out[-1]["Job Result"] == {"Result": "JobFailed", "Exception": {"Message": "Job aborted: boom", "Stack Trace": []}}
    killed = tr2.on_event(listen.TaskEnd(5.0, 10, 0, 0, 1, 0, "exec-1", "killed", "killed", {}))[0]
    assert killed["Task End Reason"]["Reason"] == "TaskKilled" and killed["Task Info"]["Killed"] is True


def test_event_log_directory_takes_paths_and_file_uris_only():
    assert event_log_directory("/tmp/x") == "/tmp/x"
    assert event_log_directory("file:///tmp/x") == "/tmp/x"
    assert event_log_directory("file:/tmp/x") == "/tmp/x"
    with pytest.raises(ValueError, match="eventLog.dir must be a local directory"):
        event_log_directory("hdfs://namenode/logs")


def read_log(path: str) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_context_writes_its_event_log_and_renames_it_when_it_stops(tmp_path, master):
    conf = {**QUIET, "eventLog.enabled": True, "eventLog.dir": str(tmp_path)}
    with Context(master, "logged app", conf=conf) as sc:
        pairs = sc.parallelize(range(60), 3).map(lambda x: (x % 4, x)).reduceByKey(lambda a, b: a + b)
        assert sorted(pairs.collect()) == [(k, sum(range(k, 60, 4))) for k in range(4)]
        assert pairs.count() == 4
        in_progress = os.listdir(tmp_path)
        assert in_progress == [sc.applicationId + ".inprogress"]
        ours = sc.listener_events()
    assert os.listdir(tmp_path) == [sc.applicationId]
    events = read_log(str(tmp_path / sc.applicationId))
    names = [e["Event"] for e in events]
    assert names[:3] == ["SparkListenerLogStart", "SparkListenerEnvironmentUpdate", "SparkListenerApplicationStart"]
    assert names[-1] == "SparkListenerApplicationEnd"
    assert events[2]["App Name"] == "logged app" and events[2]["App ID"] == sc.applicationId
    # Every job, stage attempt and task of ours is there, once.
    assert names.count("SparkListenerJobStart") == names.count("SparkListenerJobEnd") == 2
    assert names.count("SparkListenerTaskEnd") == len([e for e in ours if isinstance(e, listen.TaskEnd)])
    assert names.count("SparkListenerStageSubmitted") == len([e for e in ours if isinstance(e, listen.StageSubmitted)])
    assert names.count("SparkListenerExecutorAdded") == 2
    jobs = [e for e in events if e["Event"] == "SparkListenerJobStart"]
    assert all(len(j["Stage Infos"]) == len(j["Stage IDs"]) == 2 for j in jobs)
    written = sum(e["Task Metrics"]["Shuffle Write Metrics"]["Shuffle Bytes Written"]
                  for e in events if e["Event"] == "SparkListenerTaskEnd")
    assert written > 0


async def test_an_embedded_context_writes_its_event_log_off_the_loop(tmp_path):
    conf = {**QUIET, "eventLog.enabled": True, "eventLog.dir": f"file://{tmp_path}"}
    async with Context("inproc[2]", "embedded", conf=conf) as sc:
        assert await sc.parallelize(range(10), 2).sumAsync() == 45
        app_id = sc.applicationId
    names = [e["Event"] for e in read_log(str(tmp_path / app_id))]
    assert names.count("SparkListenerTaskEnd") == 2 and names[-1] == "SparkListenerApplicationEnd"


def test_a_killed_executor_shows_as_removed_and_its_tasks_as_lost(tmp_path):
    conf = {**QUIET, "eventLog.enabled": True, "eventLog.dir": str(tmp_path)}
    plan = FaultPlan([Fault("kill_executor", executor="exec-0", after_stage_outputs=0)])
    with Context("local[2]", "faulty", conf=conf, faults=plan) as sc:
        words = sc.parallelize([f"w{i % 7}" for i in range(200)], 4)
        counts = dict(words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b).collect())
        assert sum(counts.values()) == 200
        app_id = sc.applicationId
        ours = [e for e in sc.listener_events(listen.TaskEnd) if e.status != "success"]
    events = read_log(str(tmp_path / app_id))
    removed = [e for e in events if e["Event"] == "SparkListenerExecutorRemoved"]
    assert removed[0]["Executor ID"] == "exec-0" and "exec-0" in removed[0]["Removed Reason"]
    unsuccessful = [e for e in events if e["Event"] == "SparkListenerTaskEnd" and e["Task End Reason"]["Reason"] != "Success"]
    assert [(e["Task Info"]["Task ID"], e["Task Info"]["Failed"]) for e in unsuccessful] == [(e.task_id, True) for e in ours]


def test_a_bad_event_log_directory_fails_the_context_with_its_name(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    conf = {**QUIET, "eventLog.enabled": True, "eventLog.dir": str(blocker / "logs")}
    with pytest.raises(OSError, match="cannot write the event log in eventLog.dir="):
        Context("inproc[1]", "bad", conf=conf)


def test_the_writer_closes_once_and_abandon_leaves_the_log_in_progress(tmp_path):
    writer = EventLogWriter(str(tmp_path), app_id="app-x", app_name="x", master="inproc[1]", start_time=1.0)
    writer.open()
    writer.on_event(listen.ExecutorRegistered(2.0, "exec-0", "h", 1, 1))
    assert writer.close(3.0) == str(tmp_path / "app-x")
    assert writer.close(4.0) == str(tmp_path / "app-x")
    assert [e["Event"] for e in read_log(str(tmp_path / "app-x"))][-2:] == [
        "SparkListenerExecutorAdded", "SparkListenerApplicationEnd"]
    other = EventLogWriter(str(tmp_path), app_id="app-y", app_name="y", master="inproc[1]", start_time=1.0)
    other.open()
    other.abandon()
    assert (tmp_path / "app-y.inprogress").exists()
    again = EventLogWriter(str(tmp_path), app_id="app-x", app_name="x", master="inproc[1]", start_time=1.0)
    with pytest.raises(OSError, match="already exists"):
        again.open()
