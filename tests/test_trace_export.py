"""The Perfetto / chrome://tracing export, checked against the Trace Event Format's rules."""

from __future__ import annotations

import collections
import json

import pytest

from sparklet import export_perfetto
from sparklet.runtime._trace_dir import read_trace_dir
from sparklet.runtime._trace_export import build_trace_events, validate_trace

from trace_support import walkthrough


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    trace_dir, _ = walkthrough(tmp_path_factory)
    path = export_perfetto(trace_dir, tmp_path_factory.mktemp("export") / "trace.json")
    with open(path, encoding="utf-8") as source:
        return read_trace_dir(trace_dir), json.load(source)


def test_the_export_follows_the_format_rules(exported):
    _, data = exported
    assert validate_trace(data) == []
    assert data["displayTimeUnit"] == "ms" and data["otherData"]["app_name"] == "trace-walkthrough"
    events = data["traceEvents"]
    assert all(isinstance(e["pid"], int) and isinstance(e.get("tid", 0), int) for e in events)
    flows = collections.Counter((e["ph"], e["id"]) for e in events if e["ph"] in ("s", "f"))
    starts = {i for (ph, i) in flows if ph == "s"}
    assert starts == {i for (ph, i) in flows if ph == "f"} and set(flows.values()) == {1}


def test_one_process_per_os_process_and_one_track_per_actor(exported):
    trace, data = exported
    events = data["traceEvents"]
    processes = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert set(processes) == {e["pid"] for e in trace.actor_events}  # driver, exec-0, both exec-1 processes
    assert len(processes) == 4
    threads = {(e["pid"], e["args"]["name"]) for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    driver = trace.app["driver_pid"]
    assert (driver, "/user/sparklet/scheduler/task-scheduler") in threads
    assert (driver, "jobs") in threads and (driver, "stages") in threads
    executor_pids = [e["pid"] for e in trace.listener if e["event"] == "ExecutorRegistered"]
    for pid in executor_pids:
        assert any(p == pid and name.startswith("/user/exec-") for p, name in threads)


def test_handlers_are_slices_messages_are_flows_and_tasks_run_on_their_executor(exported):
    trace, data = exported
    events = data["traceEvents"]
    handled = [e for e in trace.actor_events if e["kind"] == "handled"]
    slices = [e for e in events if e["ph"] == "X" and e.get("cat") == "handler"]
    assert len(slices) == len(handled)
    by_track = {(e["pid"], e["tid"]) for e in events if e["ph"] == "f"}
    assert by_track  # flows end on tracks that have slices
    cross = [(s, f) for s in events if s["ph"] == "s" for f in events if f["ph"] == "f" and f["id"] == s["id"] and f["pid"] != s["pid"]]
    assert {s["name"] for s, _ in cross} >= {"RunTask", "StatusUpdate"}  # across processes, both ways
    task_ends = [e for e in trace.listener if e["event"] == "TaskEnd"]
    tasks = [e for e in events if e["ph"] == "X" and e.get("cat") == "task"]
    assert len(tasks) == len(task_ends)
    registered = {(e["executor_id"], e["pid"]) for e in trace.listener if e["event"] == "ExecutorRegistered"}
    assert {(t["args"]["executor"], t["pid"]) for t in tasks} <= registered
    # A task running on exec-1 when it was killed ends executor_lost (whether one was running
    # at that instant is timing); none ends so on the executor that lived.
    lost = [t for t in tasks if t["args"]["status"] == "executor_lost"]
    assert all(t["args"]["executor"] == "exec-1" for t in lost)
    assert any(t["args"]["executor"] == "exec-1" for t in tasks)


def test_faults_failures_restarts_and_jobs_are_marked(exported):
    _, data = exported
    events = data["traceEvents"]
    instants = collections.Counter(e["cat"] for e in events if e["ph"] == "i")
    assert instants["FaultInjected"] == 3 and instants["failure"] == 1 and instants["restart"] == 1
    assert instants["ExecutorRemoved"] >= 1
    (restart,) = [e for e in events if e["ph"] == "i" and e["cat"] == "restart"]
    assert restart["name"] == "restart: /user/sparklet/executors/exec-1"
    jobs = [e for e in events if e["ph"] in ("b", "e") and e["cat"] == "job"]
    assert len(jobs) == 6 and {e["id"] for e in jobs} == {"job-0", "job-1", "job-2"}


def _meta():
    return [{"ph": "M", "name": "thread_name", "pid": 1, "tid": 1, "args": {"name": "a"}}]


@pytest.mark.parametrize("bad, problem", [
    ([{"ph": "X", "name": "a", "ts": 5, "dur": 1, "pid": 1, "tid": 1}, {"ph": "X", "name": "b", "ts": 4, "dur": 1, "pid": 1, "tid": 1}],
     "goes backwards"),
    ([{"ph": "X", "name": "a", "ts": 0, "dur": 10, "pid": 1, "tid": 1}, {"ph": "X", "name": "b", "ts": 5, "dur": 10, "pid": 1, "tid": 1}],
     "overlaps its enclosing slice"),
    ([{"ph": "s", "name": "m", "ts": 1, "pid": 1, "tid": 1, "id": 7}], "1 starts and 0 finishes"),
    ([{"ph": "s", "name": "m", "ts": 5, "pid": 1, "tid": 1, "id": 7}, {"ph": "f", "name": "m", "ts": 6, "pid": 1, "tid": 2, "id": 7},
      {"ph": "f", "name": "m", "ts": 7, "pid": 1, "tid": 2, "id": 7}], "1 starts and 2 finishes"),
    ([{"ph": "X", "name": "a", "ts": 0, "pid": 1, "tid": 1}], "missing dur"),
    ([{"ph": "b", "name": "job", "cat": "job", "ts": 0, "pid": 1, "id": "j"}], "never ended"),
    ([{"ph": "Q", "ts": 0, "pid": 1}], "unknown phase"),
])
def test_the_validator_catches_what_viewers_reject(bad, problem):
    problems = validate_trace({"traceEvents": _meta() + bad})
    assert any(problem in p for p in problems), problems


def test_a_trace_without_actor_events_still_exports(tmp_path):
    (tmp_path / "listener.jsonl").write_text(
        '{"event":"JobStart","time":10.0,"job_id":0,"stage_ids":[0],"properties":{}}\n'
        '{"event":"JobEnd","time":10.5,"job_id":0,"status":"succeeded","error":null}\n')
    data = build_trace_events(read_trace_dir(tmp_path))
    assert validate_trace(data) == []
    assert [e["ph"] for e in data["traceEvents"] if e.get("cat") == "job"] == ["b", "e"]
