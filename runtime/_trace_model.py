"""What happened in one application, as plain data: the model behind the HTML report,
the live UI's JSON API and ``sparklet trace show``.

:func:`build_model` is a pure function of the app metadata, the listener events (dicts,
as written to ``listener.jsonl``) and the actor events; it is run off the event loop
(the live UI computes it in its own thread). The model is JSON-ready::

    app        name, id, master, start, end, duration
    jobs       job_id, status, start, end, duration, stage_ids, skipped_stage_ids, tasks, error
    stages     stage_id, attempts, name, status, parents, job_ids, tasks, failed_tasks, summary
    tasks      task_id, stage, partition, attempt, executor, status, start, duration and metrics
    executors  executor_id, pid, host, cores, added, removed, reason
    faults     FaultInjected events;  restarts: actor restarts (all processes)
    timeline   job / stage / executor / fault events for the event timeline
    messages   actor events (sends, handler runs, failures, restarts...) for the sequence view
    tree       the supervision tree snapshot (from app.json, or live)
    counts     jobs, stages, tasks, failed_tasks, restarts, faults, executors, messages

Spark UI's task summary metrics: ``summary[metric] = [min, p25, median, p75, max]`` over a
stage's successful tasks, where scheduler delay is the task's driver-side duration minus
the executor's deserialization, compute and result-serialization times.
"""

from __future__ import annotations

from typing import Any, Iterable

__all__ = ["SUMMARY_METRICS", "build_model", "quantiles"]

# (key in the model, label, unit) in Spark UI's order.
SUMMARY_METRICS = [
    ("duration", "Duration", "s"),
    ("scheduler_delay", "Scheduler delay", "s"),
    ("deserialize_time", "Task deserialization time", "s"),
    ("compute_time", "Compute time", "s"),
    ("result_serialization_time", "Result serialization time", "s"),
    ("result_size", "Result size", "bytes"),
    ("shuffle_read_bytes", "Shuffle read bytes", "bytes"),
    ("shuffle_read_records", "Shuffle read records", "records"),
    ("shuffle_write_bytes", "Shuffle write bytes", "bytes"),
    ("shuffle_write_records", "Shuffle write records", "records"),
]

# Actor event kinds kept for the sequence view and shown as incidents.
INCIDENT_KINDS = {"failure", "restart", "restart_failed", "escalate", "dead_letter", "peer_lost", "directive",
                  "restart_scheduled", "max_intensity", "child_start_failed", "fault"}
MESSAGE_KINDS = INCIDENT_KINDS | {"send", "receive", "handled", "resume", "unhandled", "stop", "spawn", "terminated",
                                  "child_started", "child_exited", "child_terminated"}
MAX_MESSAGES = 50_000  # the newest are kept: a report must stay openable


def quantiles(values: Iterable[float]) -> list[float] | None:
    """``[min, p25, median, p75, max]`` (nearest rank, as Spark UI shows them), None if empty."""
    ordered = sorted(values)
    if not ordered:
        return None
    last = len(ordered) - 1
    return [ordered[round(q * last)] for q in (0.0, 0.25, 0.5, 0.75, 1.0)]


def _task_row(start: dict[str, Any] | None, end: dict[str, Any]) -> dict[str, Any]:
    metrics = end.get("metrics") or {}
    begun = start["time"] if start else end["time"]
    duration = max(0.0, end["time"] - begun)
    deserialize = float(metrics.get("executor_deserialize_time", 0.0))
    compute = float(metrics.get("executor_run_time", 0.0))
    serialize = float(metrics.get("result_serialization_time", 0.0))
    return {
        "task_id": end["task_id"], "stage_id": end["stage_id"], "stage_attempt": end["stage_attempt"],
        "partition": end["partition"], "attempt": end["attempt"], "executor_id": end["executor_id"],
        "status": end["status"], "reason": end.get("reason"), "speculative": end.get("speculative", False),
        "locality": start.get("locality") if start else None,
        "start": begun, "end": end["time"], "duration": duration,
        "scheduler_delay": max(0.0, duration - deserialize - compute - serialize),
        "deserialize_time": deserialize, "compute_time": compute, "result_serialization_time": serialize,
        "result_size": int(metrics.get("result_size", 0)),
        "shuffle_read_bytes": int(metrics.get("shuffle_bytes_read", 0)),
        "shuffle_read_records": int(metrics.get("shuffle_records_read", 0)),
        "shuffle_write_bytes": int(metrics.get("shuffle_bytes_written", 0)),
        "shuffle_write_records": int(metrics.get("shuffle_records_written", 0)),
        "records_read": int(metrics.get("records_read", 0)),
    }


def _stage_rows(listener: list[dict[str, Any]], tasks: list[dict[str, Any]], jobs: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    stages: dict[int, dict[str, Any]] = {}

    def stage(stage_id: int) -> dict[str, Any]:
        return stages.setdefault(stage_id, {
            "stage_id": stage_id, "name": f"stage {stage_id}", "status": "pending", "parents": [], "job_ids": [],
            "attempts": [], "num_tasks": 0, "submitted": None, "completed": None, "failure_reason": None,
        })

    for job in jobs.values():
        for stage_id in job["stage_ids"]:
            stage(stage_id)["job_ids"].append(job["job_id"])
    for event in listener:
        kind = event["event"]
        if kind == "StageSubmitted":
            row = stage(event["stage_id"])
            row.update(name=event["name"], num_tasks=event["num_tasks"], parents=list(event["parent_ids"]), status="active")
            row["attempts"].append({"attempt": event["attempt"], "submitted": event["time"], "completed": None,
                                    "status": "active", "num_tasks": event["num_tasks"]})
            row["submitted"] = row["submitted"] if row["submitted"] is not None else event["time"]
        elif kind == "StageCompleted":
            row = stage(event["stage_id"])
            if event["status"] == "skipped" and row["attempts"]:
                continue  # skipped in a later job, after it ran for an earlier one
            row.update(status=event["status"], completed=event["time"], failure_reason=event.get("failure_reason"))
            for attempt in row["attempts"]:
                if attempt["attempt"] == event["attempt"]:
                    attempt.update(completed=event["time"], status=event["status"])
    by_stage: dict[int, list[dict[str, Any]]] = {}
    for task in tasks:
        by_stage.setdefault(task["stage_id"], []).append(task)
    for row in stages.values():
        mine = by_stage.get(row["stage_id"], [])
        done = [t for t in mine if t["status"] == "success"]
        row["tasks"] = len(mine)
        row["succeeded_tasks"] = len(done)
        row["failed_tasks"] = len(mine) - len(done)
        row["skipped"] = row["status"] == "skipped"
        row["duration"] = (row["completed"] - row["submitted"]) if row["completed"] and row["submitted"] else None
        row["summary"] = {key: quantiles(t[key] for t in done) for key, _, _ in SUMMARY_METRICS}
        for key in ("shuffle_read_bytes", "shuffle_read_records", "shuffle_write_bytes", "shuffle_write_records", "result_size"):
            row[key] = sum(t[key] for t in done)
    return sorted(stages.values(), key=lambda r: r["stage_id"])


def _with_string_ids(event: dict[str, Any]) -> dict[str, Any]:
    # Trace ids are 64-bit: past 2**53 a browser's numbers would merge neighbouring ids.
    if any(isinstance(event.get(k), int) for k in ("id", "cause", "reply_to")):
        event = dict(event)
        for key in ("id", "cause", "reply_to"):
            if isinstance(event.get(key), int):
                event[key] = str(event[key])
    return event


def build_model(app: dict[str, Any], listener: list[dict[str, Any]], actor_events: list[dict[str, Any]],
                tree: Any = None) -> dict[str, Any]:
    """The report's data (see the module docstring) from a trace's three parts."""
    jobs: dict[int, dict[str, Any]] = {}
    starts: dict[int, dict[str, Any]] = {}
    tasks: list[dict[str, Any]] = []
    executors: dict[str, dict[str, Any]] = {}
    faults: list[dict[str, Any]] = []
    timeline: list[dict[str, Any]] = []
    for event in listener:
        kind = event.get("event")
        if kind == "JobStart":
            jobs[event["job_id"]] = {"job_id": event["job_id"], "status": "running", "start": event["time"], "end": None,
                                     "duration": None, "stage_ids": list(event["stage_ids"]), "error": None,
                                     "description": (event.get("properties") or {}).get("spark.job.description")}
            timeline.append({"time": event["time"], "kind": "job_start", "label": f"job {event['job_id']} started"})
        elif kind == "JobEnd" and event["job_id"] in jobs:
            job = jobs[event["job_id"]]
            job.update(status=event["status"], end=event["time"], duration=event["time"] - job["start"], error=event.get("error"))
            timeline.append({"time": event["time"], "kind": "job_end", "label": f"job {event['job_id']} {event['status']}"})
        elif kind == "TaskStart":
            starts[event["task_id"]] = event
        elif kind == "TaskEnd":
            tasks.append(_task_row(starts.pop(event["task_id"], None), event))
        elif kind == "ExecutorRegistered":
            executors[f"{event['executor_id']}@{event['pid']}"] = {
                "executor_id": event["executor_id"], "pid": event["pid"], "host": event["host"], "cores": event["cores"],
                "added": event["time"], "removed": None, "reason": None}
            timeline.append({"time": event["time"], "kind": "executor_added", "label": f"{event['executor_id']} added (pid {event['pid']})"})
        elif kind == "ExecutorRemoved":
            for row in executors.values():
                if row["executor_id"] == event["executor_id"] and row["removed"] is None:
                    row.update(removed=event["time"], reason=event["reason"])
            timeline.append({"time": event["time"], "kind": "executor_removed", "label": f"{event['executor_id']} removed: {event['reason']}"})
        elif kind == "FaultInjected":
            faults.append({"time": event["time"], "executor_id": event["executor_id"], "fault": event["fault"], "where": event["where"]})
            timeline.append({"time": event["time"], "kind": "fault", "label": f"fault {event['fault']} at {event['where']}"})
    running = [{"task_id": s["task_id"], "stage_id": s["stage_id"], "stage_attempt": s["stage_attempt"], "partition": s["partition"],
                "attempt": s["attempt"], "executor_id": s["executor_id"], "status": "running", "start": s["time"]}
               for s in starts.values()]
    stages = _stage_rows(listener, tasks, jobs)
    submitted_at: dict[int, list[float]] = {}
    for event in listener:
        if event.get("event") == "StageSubmitted":
            submitted_at.setdefault(event["stage_id"], []).append(event["time"])
    for job in jobs.values():
        # As in Spark's UI: a stage of this job that no attempt ran for during it was skipped
        # (its outputs were already there).
        start, end = job["start"], job["end"] if job["end"] is not None else float("inf")
        ran = {i for i in job["stage_ids"] if any(start <= t <= end for t in submitted_at.get(i, ()))}
        job["skipped_stage_ids"] = [i for i in job["stage_ids"] if i not in ran]
        mine = [t for t in tasks if t["stage_id"] in ran and start <= t["start"] <= end]
        job["tasks"] = len(mine)
        job["failed_tasks"] = sum(t["status"] != "success" for t in mine)
    for stage in stages:
        if stage["submitted"] is not None:
            timeline.append({"time": stage["submitted"], "kind": "stage_submitted", "label": f"stage {stage['stage_id']} submitted"})
    restarts = [{"time": e["ts"], "pid": e.get("pid"), "system": e.get("system"), "actor": e.get("actor"),
                 "restarts": e.get("restarts"), "reason": e.get("reason")}
                for e in actor_events if e.get("kind") == "restart"]
    for restart in restarts:
        timeline.append({"time": restart["time"], "kind": "restart", "label": f"{restart['actor']} restarted ({restart['system']})"})
    incidents = [e for e in actor_events if e.get("kind") in INCIDENT_KINDS]
    messages = [_with_string_ids(e) for e in actor_events if e.get("kind") in MESSAGE_KINDS]
    dropped_messages = max(0, len(messages) - MAX_MESSAGES)
    if dropped_messages:
        first_kept = len(messages) - MAX_MESSAGES  # older events are dropped, but never an incident
        messages = [e for n, e in enumerate(messages) if n >= first_kept or e["kind"] in INCIDENT_KINDS]
    times = [e["time"] for e in listener if "time" in e] + [e["ts"] for e in actor_events[:1] + actor_events[-1:]]
    start = app.get("start") or (min(times) if times else None)
    end = app.get("end") or (max(times) if times else None)
    timeline.sort(key=lambda e: e["time"])
    job_rows = sorted(jobs.values(), key=lambda j: j["job_id"])
    return {
        "app": {**{k: v for k, v in app.items() if k != "tree"}, "start": start, "end": end,
                "duration": (end - start) if start is not None and end is not None else None},
        "jobs": job_rows,
        "stages": stages,
        "tasks": sorted(tasks, key=lambda t: t["task_id"]) + running,
        "executors": sorted(executors.values(), key=lambda e: e["added"]),
        "faults": faults,
        "restarts": restarts,
        "timeline": timeline,
        "messages": messages,
        "tree": tree if tree is not None else app.get("tree"),
        "summary_metrics": [list(m) for m in SUMMARY_METRICS],
        "counts": {
            "jobs": len(job_rows), "succeeded_jobs": sum(j["status"] == "succeeded" for j in job_rows),
            "failed_jobs": sum(j["status"] == "failed" for j in job_rows),
            "stages": len(stages), "skipped_stages": sum(s["skipped"] for s in stages),
            "tasks": len(tasks), "failed_tasks": sum(t["status"] != "success" for t in tasks), "running_tasks": len(running),
            "restarts": len(restarts), "faults": len(faults), "executors": len(executors),
            "incidents": len(incidents), "messages": len(messages), "dropped_messages": dropped_messages,
            "processes": len({e.get("pid") for e in actor_events}),
        },
    }
