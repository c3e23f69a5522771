"""The trace directory (conf trace.dir): what each process writes, reading it back, the
model behind the report, and the `sparklet trace` command."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from sparklet import Context
from sparklet.actors import Actor, ActorSystem, EventLog, handler, message, spawn_in_process, tree_snapshot
from sparklet.runtime import Conf, Fault, FaultPlan
from sparklet.runtime._cli_trace import render_summary
from sparklet.runtime._trace_dir import TraceDirError, read_trace_dir
from sparklet.runtime._trace_model import build_model, quantiles

from trace_support import read_jsonl, walkthrough

QUIET = {"ui.showConsoleProgress": False}


# -- a real application with a SIGKILLed executor ------------------------------------------------
def test_every_process_writes_its_own_events_file_and_the_killed_executor_keeps_its_events(tmp_path_factory):
    trace_dir, _ = walkthrough(tmp_path_factory)
    listener = read_jsonl(trace_dir / "listener.jsonl")
    registered = [e for e in listener if e["event"] == "ExecutorRegistered"]
    assert sorted(e["executor_id"] for e in registered) == ["exec-0", "exec-1", "exec-1"]  # exec-1 was restarted
    app = json.loads((trace_dir / "app.json").read_text())
    files = {p.name for p in trace_dir.glob("*.jsonl")} - {"listener.jsonl"}
    expected = {f"sparklet-trace-walkthrough-{app['driver_pid']}.jsonl"}
    expected |= {f"sparklet-trace-walkthrough-{e['executor_id']}-{e['pid']}.jsonl" for e in registered}
    assert files == expected
    killed = [e for e in listener if e["event"] == "ExecutorRemoved" and "connection lost" in e["reason"]]
    assert [e["executor_id"] for e in killed] == ["exec-1"]
    killed_pid = [e["pid"] for e in registered if e["executor_id"] == "exec-1"][0]
    events = read_jsonl(trace_dir / f"sparklet-trace-walkthrough-exec-1-{killed_pid}.jsonl")
    assert {e["pid"] for e in events} == {killed_pid}
    assert any(e["kind"] == "handled" and e["msg"] == "RunTask" for e in events)  # its work up to its death
    assert not any(e["kind"] == "stop" and e["actor"] == "/user/exec-1" for e in events)  # it never got to stop
    # A trace id crosses processes: the driver's RunTask sends are received in the executors.
    driver = read_jsonl(trace_dir / f"sparklet-trace-walkthrough-{app['driver_pid']}.jsonl")
    sent = {e["id"] for e in driver if e["kind"] == "send" and e["msg"] == "RunTask"}
    assert sent & {e["id"] for e in events if e["kind"] == "receive"}


def test_app_json_has_the_metadata_and_the_final_supervision_tree(tmp_path_factory):
    trace_dir, _ = walkthrough(tmp_path_factory)
    app = json.loads((trace_dir / "app.json").read_text())
    assert app["app_name"] == "trace-walkthrough" and app["master"] == "local[2]"
    assert app["start"] < app["end"] and app["conf"]["trace.dir"] == str(trace_dir)
    assert len(app["fault_plan"]) == 2

    def find(node, path):
        if node["path"] == path:
            return node
        return next((hit for child in node["children"] if (hit := find(child, path))), None)

    assert find(app["tree"], "/user/sparklet/executors/exec-1")["restarts"] == 1
    assert find(app["tree"], "/user/sparklet/executors/exec-0")["restarts"] == 0


def test_the_model_counts_what_the_listener_saw(tmp_path_factory):
    trace_dir, _ = walkthrough(tmp_path_factory)
    trace = read_trace_dir(trace_dir)
    model = build_model(trace.app, trace.listener, trace.actor_events)
    task_ends = [e for e in trace.listener if e["event"] == "TaskEnd"]
    counts = model["counts"]
    assert (counts["jobs"], counts["succeeded_jobs"], counts["tasks"]) == (3, 3, len(task_ends))
    assert counts["failed_tasks"] == sum(e["status"] != "success" for e in task_ends) >= 2
    assert counts["restarts"] == 1 and counts["faults"] == 3 and counts["processes"] == 4
    job1 = model["jobs"][1]
    assert job1["skipped_stage_ids"] and all(i in job1["stage_ids"] for i in job1["skipped_stage_ids"])
    assert sum(j["tasks"] for j in model["jobs"]) == len(task_ends)
    stage0 = next(s for s in model["stages"] if s["stage_id"] == 0)
    assert stage0["failed_tasks"] >= 1 and stage0["succeeded_tasks"] >= 4
    mn, p25, median, p75, mx = stage0["summary"]["duration"]
    assert 0 <= mn <= p25 <= median <= p75 <= mx
    assert stage0["shuffle_write_bytes"] > 0 and stage0["summary"]["shuffle_write_records"][4] > 0
    summary = render_summary(model)
    assert "jobs: 3 (3 succeeded, 0 failed)" in summary and "restarts: 1" in summary
    assert "kill_executor(executor='exec-1', after_stage_outputs=0)" in summary


# -- the driver's side in one process ----------------------------------------------------------------
def test_trace_dir_implies_tracing_and_inproc_executors_share_the_driver_file(tmp_path):
    trace_dir = tmp_path / "t"
    with Context("inproc[2]", "inproc-trace", {**QUIET, "trace.dir": str(trace_dir)},
                 faults=FaultPlan([Fault("raise", stage=0, partition=0, attempt=0)])) as sc:
        assert sc.actor_system.events.enabled and sc.trace_dir == str(trace_dir)
        assert sc.parallelize(range(10), 2).sum() == 45
    files = sorted(p.name for p in trace_dir.iterdir())
    assert files == ["app.json", "listener.jsonl", f"sparklet-inproc-trace-{os.getpid()}.jsonl"]
    trace = read_trace_dir(trace_dir)
    assert [e["event"] for e in trace.listener][:1] == ["FaultPlanRecorded"]  # posted before the system starts
    assert any(e["kind"] == "handled" and e["actor"].endswith("exec-0") for e in trace.actor_events)
    assert trace.app["end"] is not None and trace.app["tree"]["name"] == "/"


def test_the_old_eventlog_file_key_is_gone_and_bad_ui_values_are_refused():
    with pytest.raises(KeyError, match="eventLog.file"):
        Conf({"eventLog.file": "x.jsonl"})
    with pytest.raises(ValueError, match="ui.port"):
        Conf({"ui.port": 70000})
    with pytest.raises(TypeError, match="ui must be"):
        Context("inproc[1]", "bad", QUIET, ui="yes")


def test_an_unusable_trace_dir_fails_at_context_creation_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ValueError, match="trace.dir: cannot create .*file/trace"):
        Context("inproc[1]", "bad-dir", {**QUIET, "trace.dir": str(blocker / "trace")})


# -- the kernel pieces ------------------------------------------------------------------------------
def test_event_log_in_a_directory_names_its_file_by_system_and_pid(tmp_path):
    log = EventLog(system="sys-a", directory=tmp_path / "d")
    log.record("spawn", "/user/x")
    log.close()
    assert [p.name for p in (tmp_path / "d").iterdir()] == [f"sys-a-{os.getpid()}.jsonl"]
    assert log.statistics()["file"] == str(tmp_path / "d" / f"sys-a-{os.getpid()}.jsonl")
    with pytest.raises(ValueError, match="not both"):
        EventLog(system="x", path=tmp_path / "e.jsonl", directory=tmp_path)


@message
class Square:
    x: int


class Squarer(Actor):
    @handler(Square)
    def square(self, msg):
        if msg.x < 0:
            raise ValueError("negative")
        return msg.x * msg.x


async def test_a_spawned_process_writes_its_events_beside_its_parents(tmp_path):
    async with ActorSystem("parent", trace_dir=str(tmp_path)) as system:
        worker = await spawn_in_process(system, Squarer, "squarer")
        assert await worker.ref.ask(Square(7)) == 49
        child_pid = worker.pid
        await worker.terminate()
        worker.close_stdin()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"parent-{os.getpid()}.jsonl", f"parent-squarer-{child_pid}.jsonl"])
    child = read_jsonl(tmp_path / f"parent-squarer-{child_pid}.jsonl")
    assert any(e["kind"] == "handled" and e["msg"] == "Square" for e in child)


async def test_tree_snapshot_shows_states_and_restarts():
    system = ActorSystem("snap", strict=True)
    await system.start()
    ref = await system.spawn(Squarer, "sq")
    with pytest.raises(ValueError):
        await ref.ask(Square(-1))
    assert await ref.ask(Square(3)) == 9  # answered by the restarted instance
    snapshot = tree_snapshot(system)
    user = next(c for c in snapshot["children"] if c["name"] == "user")
    (sq,) = [c for c in user["children"] if c["name"] == "sq"]
    assert (sq["path"], sq["actor_class"], sq["restarts"], sq["children"]) == ("/user/sq", "Squarer", 1, [])
    json.dumps(snapshot)  # plain data
    await system.shutdown()
    assert tree_snapshot(system) is None


# -- reading ---------------------------------------------------------------------------------------
def test_reading_names_what_is_wrong_and_skips_torn_lines(tmp_path):
    with pytest.raises(TraceDirError, match="does not exist"):
        read_trace_dir(tmp_path / "missing")
    with pytest.raises(TraceDirError, match="not a sparklet trace directory"):
        read_trace_dir(tmp_path)
    (tmp_path / "listener.jsonl").write_text('{"event":"JobStart","time":1.0,"job_id":0,"stage_ids":[0],"properties":{}}\n')
    (tmp_path / "x-1.jsonl").write_text('{"ts":2.0,"pid":1,"kind":"spawn","actor":"/"}\n{"ts":3.0,"pid":1,"ki')
    trace = read_trace_dir(tmp_path)
    assert (len(trace.listener), len(trace.actor_events), trace.bad_lines, trace.app) == (1, 1, 1, {})
    (tmp_path / "app.json").write_text("{not json")
    with pytest.raises(TraceDirError, match="app.json: not valid JSON"):
        read_trace_dir(tmp_path)


# -- the model on hand-made events -----------------------------------------------------------------
def test_quantiles_are_nearest_rank():
    assert quantiles([]) is None
    assert quantiles([5.0]) == [5.0] * 5
    assert quantiles(range(101)) == [0, 25, 50, 75, 100]


def _task(kind, task_id, stage, time, **extra):
    event = {"event": kind, "time": time, "task_id": task_id, "stage_id": stage, "stage_attempt": 0, "partition": task_id,
             "attempt": 0, "executor_id": "exec-0"}
    if kind == "TaskStart":
        event.update(locality="any")
    else:
        event.update(status=extra.get("status", "success"), reason=None, metrics=extra.get("metrics", {}))
    return event


def test_a_stage_that_ran_in_an_earlier_job_is_skipped_in_the_next_and_scheduler_delay_is_what_is_left():
    metrics = {"executor_deserialize_time": 0.1, "executor_run_time": 0.5, "result_serialization_time": 0.1,
               "shuffle_bytes_written": 100, "shuffle_records_written": 4}
    listener = [
        {"event": "JobStart", "time": 0.0, "job_id": 0, "stage_ids": [0, 1], "properties": {"spark.job.description": "first"}},
        {"event": "StageSubmitted", "time": 0.0, "stage_id": 0, "attempt": 0, "name": "map", "num_tasks": 1, "partitions": [0], "parent_ids": []},
        _task("TaskStart", 0, 0, 0.0), _task("TaskEnd", 0, 0, 1.0, metrics=metrics),
        {"event": "StageCompleted", "time": 1.0, "stage_id": 0, "attempt": 0, "status": "succeeded", "failure_reason": None},
        {"event": "StageSubmitted", "time": 1.0, "stage_id": 1, "attempt": 0, "name": "reduce", "num_tasks": 1, "partitions": [0], "parent_ids": [0]},
        _task("TaskStart", 1, 1, 1.0), _task("TaskEnd", 1, 1, 1.5, status="failed"),
        {"event": "StageCompleted", "time": 1.5, "stage_id": 1, "attempt": 0, "status": "failed", "failure_reason": "boom"},
        {"event": "JobEnd", "time": 1.5, "job_id": 0, "status": "failed", "error": "boom"},
        {"event": "JobStart", "time": 2.0, "job_id": 1, "stage_ids": [0, 2], "properties": {}},
        {"event": "StageSubmitted", "time": 2.0, "stage_id": 2, "attempt": 0, "name": "count", "num_tasks": 1, "partitions": [0], "parent_ids": [0]},
        _task("TaskStart", 2, 2, 2.0),
    ]
    model = build_model({"app_name": "hand"}, listener, [])
    job0, job1 = model["jobs"]
    assert (job0["status"], job0["description"], job0["skipped_stage_ids"], job0["tasks"], job0["failed_tasks"]) == ("failed", "first", [], 2, 1)
    assert (job1["status"], job1["skipped_stage_ids"], job1["tasks"]) == ("running", [0], 0)
    (task0,) = [t for t in model["tasks"] if t["task_id"] == 0]
    assert task0["scheduler_delay"] == pytest.approx(0.3) and task0["shuffle_write_records"] == 4
    assert [t["status"] for t in model["tasks"]] == ["success", "failed", "running"]
    stage0 = model["stages"][0]
    assert stage0["summary"]["compute_time"] == [0.5] * 5 and stage0["job_ids"] == [0, 1]
    assert model["stages"][1]["summary"]["duration"] is None  # no successful task
    assert model["counts"]["running_tasks"] == 1


# -- the command -----------------------------------------------------------------------------------------
def _cli(*args):
    return subprocess.run([sys.executable, "-m", "sparklet.runtime.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=60)


def test_sparklet_trace_show_export_and_report(tmp_path_factory, tmp_path):
    trace_dir, _ = walkthrough(tmp_path_factory)
    shown = _cli("trace", "show", trace_dir)
    assert shown.returncode == 0, shown.stderr
    assert "jobs: 3 (3 succeeded, 0 failed)" in shown.stdout and "restarts: 1" in shown.stdout
    exported = _cli("trace", "export", trace_dir, "-o", tmp_path / "t.json")
    assert exported.returncode == 0 and "ui.perfetto.dev" in exported.stdout
    assert json.loads((tmp_path / "t.json").read_text())["traceEvents"]
    reported = _cli("trace", "report", trace_dir, "-o", tmp_path / "r.html")
    assert reported.returncode == 0 and (tmp_path / "r.html").read_text().startswith("<!doctype html>")
    missing = _cli("trace", "show", tmp_path / "nowhere")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    unwritable = _cli("trace", "report", trace_dir, "-o", tmp_path / "no" / "such" / "dir.html")
    assert unwritable.returncode == 2 and "No such file or directory" in unwritable.stderr
    helped = _cli("trace", "--help")
    assert helped.returncode == 0 and all(word in helped.stdout for word in ("export", "report", "show"))
