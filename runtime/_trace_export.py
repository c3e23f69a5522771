"""Export a trace directory as Chrome Trace Event JSON: opens in ui.perfetto.dev and chrome://tracing.

The mapping (the format: "Trace Event Format", Google, the JSON object form)::

    each OS process (driver, executors)  a process (pid), named by its actor system ("M" process_name)
    each actor in it                     a thread track (tid), named by its path ("M" thread_name)
    each handler execution               a complete slice ("X"): receive -> handled, named by message type
    each message                         a flow arrow ("s" at the send, "f" at the receive, bound to the
                                         enclosing slices), flow ids numbered here, each used once
    a send outside any handler           a zero-length slice where it was sent (outside any actor: on the
                                         process's "(outside actors)" track), so its flow starts on a slice
    each task run                        a slice on its executor's "tasks" track (one track per task slot),
                                         in the executor's process, from the listener's TaskStart/TaskEnd
    jobs and stages                      async slices ("b"/"e") on the driver's jobs and stages tracks
    faults, failures, restarts,          instant events ("i"), on the actor's track (thread scope) or,
    escalations, executor loss           for listener facts, on the executor's tasks track

Timestamps are microseconds since the application started. Events are sorted by
timestamp (metadata first), so timestamps never go backwards on any track; slices on one
track nest (an actor handles one message at a time; task slots are assigned so that a
slot's tasks never overlap). :func:`validate_trace` checks these rules; the tests run it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from sparklet.runtime._trace_dir import TraceData, read_trace_dir

__all__ = ["build_trace_events", "export_perfetto", "validate_trace"]

_INSTANT_KINDS = {"failure": "failure", "restart": "restart", "restart_failed": "restart failed",
                  "escalate": "escalation", "restart_scheduled": "restart scheduled", "max_intensity": "max restart intensity",
                  "dead_letter": "dead letter", "peer_lost": "peer lost", "directive": "supervisor directive",
                  "child_start_failed": "child start failed"}
_OUTSIDE = "(outside actors)"


class _Tracks:
    """pid/tid assignment: one process per OS process, one thread track per actor path."""

    def __init__(self) -> None:
        self.tids: dict[tuple[int, str], int] = {}
        self.process_names: dict[int, str] = {}
        self.metadata: list[dict[str, Any]] = []

    def process(self, pid: int, name: str) -> int:
        if pid not in self.process_names:
            self.process_names[pid] = name
            self.metadata.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "ts": 0, "args": {"name": f"{name} (pid {pid})"}})
            self.metadata.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "ts": 0, "args": {"sort_index": len(self.process_names)}})
        return pid

    def tid(self, pid: int, track: str) -> int:
        key = (pid, track)
        if key not in self.tids:
            tid = len([k for k in self.tids if k[0] == pid]) + 1
            self.tids[key] = tid
            self.metadata.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "ts": 0, "args": {"name": track}})
            self.metadata.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "ts": 0, "args": {"sort_index": tid}})
        return self.tids[key]


def build_trace_events(trace: TraceData) -> dict[str, Any]:
    """The Chrome Trace Event JSON object (``{"traceEvents": [...], ...}``) for ``trace``."""
    times = [e["ts"] for e in trace.actor_events[:1]] + [e["time"] for e in trace.listener[:1]]
    t0 = min([trace.app["start"]] if trace.app.get("start") else times or [0.0])

    def us(t: float) -> float:
        return round(max(0.0, t - t0) * 1e6, 3)

    tracks = _Tracks()
    out: list[dict[str, Any]] = []
    driver_pid = trace.app.get("driver_pid")
    for event in trace.actor_events:
        tracks.process(event["pid"], event.get("system", "?"))
    if driver_pid is None:
        driver_pid = trace.actor_events[0]["pid"] if trace.actor_events else 1
    tracks.process(driver_pid, trace.app.get("app_name") and f"sparklet-{trace.app['app_name']}" or "driver")

    # Handler slices: receive -> handled of one message on one actor.
    open_receives: dict[tuple[int, str, Any], dict[str, Any]] = {}
    receive_slices: dict[Any, tuple[int, int, float]] = {}  # trace id -> (pid, tid, ts) of its receive
    for event in trace.actor_events:
        kind, pid, actor = event["kind"], event["pid"], event.get("actor") or _OUTSIDE
        if kind == "receive":
            open_receives[(pid, actor, event.get("id"))] = event
        elif kind == "handled":
            start = open_receives.pop((pid, actor, event.get("id")), None)
            if start is None:
                continue
            tid = tracks.tid(pid, actor)
            out.append({"ph": "X", "name": event.get("msg") or "?", "cat": "handler", "pid": pid, "tid": tid,
                        "ts": us(start["ts"]), "dur": round(max(0.0, event["ts"] - start["ts"]) * 1e6, 3),
                        "args": {"trace_id": str(event.get("id")), "outcome": event.get("outcome"),
                                 **({"error": event["error"]} if event.get("error") else {})}})
            if event.get("id") is not None:
                receive_slices[event["id"]] = (pid, tid, us(start["ts"]))

    # Flow arrows: each send whose receive became a slice.
    flow_ids = 0
    handling: set[tuple[int, str]] = set()  # actors inside a handler at this point of the walk
    for event in trace.actor_events:
        pid, actor = event["pid"], event.get("actor") or _OUTSIDE
        if event["kind"] == "receive":
            handling.add((pid, actor))
        elif event["kind"] == "handled":
            handling.discard((pid, actor))
        if event["kind"] != "send" or event.get("id") not in receive_slices:
            continue
        tid, ts = tracks.tid(pid, actor), us(event["ts"])
        if (pid, actor) not in handling:  # a flow starts from a slice: give it one
            out.append({"ph": "X", "name": f"send {event.get('msg')}", "cat": "send", "pid": pid, "tid": tid, "ts": ts, "dur": 0})
        flow_ids += 1
        to_pid, to_tid, to_ts = receive_slices[event["id"]]
        name = event.get("msg") or "message"
        out.append({"ph": "s", "id": flow_ids, "name": name, "cat": "message", "pid": pid, "tid": tid, "ts": ts})
        out.append({"ph": "f", "bp": "e", "id": flow_ids, "name": name, "cat": "message", "pid": to_pid, "tid": to_tid, "ts": max(ts, to_ts)})

    # Instants for failures, restarts, escalations...
    for event in trace.actor_events:
        label = _INSTANT_KINDS.get(event["kind"])
        if label is None:
            continue
        pid, actor = event["pid"], event.get("actor") or _OUTSIDE
        args = {k: v for k, v in event.items() if k not in ("ts", "pid", "kind")}
        out.append({"ph": "i", "s": "t", "name": f"{label}: {actor}", "cat": event["kind"], "pid": pid,
                    "tid": tracks.tid(pid, actor), "ts": us(event["ts"]), "args": args})

    out.extend(_scheduler_events(trace, tracks, us, driver_pid))
    out.sort(key=lambda e: e["ts"])  # stable: per-track order is kept on ties
    return {
        "traceEvents": tracks.metadata + out,
        "displayTimeUnit": "ms",
        "otherData": {"app_name": trace.app.get("app_name"), "app_id": trace.app.get("app_id"),
                      "master": trace.app.get("master"), "start_unix_seconds": t0, "exporter": "sparklet"},
    }


def _scheduler_events(trace: TraceData, tracks: _Tracks, us: Any, driver_pid: int) -> list[dict[str, Any]]:
    """Task slices on executor tracks, jobs and stages as async slices, listener instants."""
    out: list[dict[str, Any]] = []
    executor_pids: dict[str, list[tuple[float, int]]] = {}  # executor id -> [(registered at, pid)]
    for event in trace.listener:
        if event.get("event") == "ExecutorRegistered":
            executor_pids.setdefault(event["executor_id"], []).append((event["time"], event["pid"]))

    def executor_pid(executor_id: str, at: float) -> int:
        candidates = [pid for t, pid in executor_pids.get(executor_id, []) if t <= at + 1e-3]
        pid = candidates[-1] if candidates else driver_pid
        if pid not in tracks.process_names:
            tracks.process(pid, executor_id)
        return pid

    slots: dict[int, list[float]] = {}  # pid -> end time of each slot's last task
    starts: dict[int, dict[str, Any]] = {}
    for event in trace.listener:
        kind = event.get("event")
        if kind == "TaskStart":
            starts[event["task_id"]] = event
        elif kind == "TaskEnd":
            start = starts.pop(event["task_id"], None)
            begun = start["time"] if start else event["time"]
            pid = executor_pid(event["executor_id"], begun)
            ends = slots.setdefault(pid, [])
            slot = next((i for i, end in enumerate(ends) if end <= begun), None)
            if slot is None:
                slot = len(ends)
                ends.append(0.0)
            ends[slot] = event["time"]
            prefix = f"{event['executor_id']} " if pid == driver_pid else ""
            tid = tracks.tid(pid, f"{prefix}tasks (slot {slot})")
            out.append({"ph": "X", "name": f"task {event['task_id']} (stage {event['stage_id']}.{event['stage_attempt']} p{event['partition']})",
                        "cat": "task", "pid": pid, "tid": tid, "ts": us(begun), "dur": round(max(0.0, event["time"] - begun) * 1e6, 3),
                        "args": {"status": event["status"], "reason": event.get("reason"), "attempt": event["attempt"],
                                 "executor": event["executor_id"], **(event.get("metrics") or {})}})
        elif kind in ("FaultInjected", "ExecutorRemoved"):
            pid = executor_pid(event["executor_id"], event["time"])
            name = f"fault {event['fault']}" if kind == "FaultInjected" else f"executor {event['executor_id']} removed"
            out.append({"ph": "i", "s": "p", "name": name, "cat": kind, "pid": pid, "tid": 0, "ts": us(event["time"]),
                        "args": {k: v for k, v in event.items() if k not in ("event", "time")}})
    jobs_tid, stages_tid = tracks.tid(driver_pid, "jobs"), tracks.tid(driver_pid, "stages")
    open_stages: dict[tuple[int, int], dict[str, Any]] = {}
    for event in trace.listener:
        kind = event.get("event")
        if kind == "JobStart":
            out.append({"ph": "b", "cat": "job", "name": f"job {event['job_id']}", "id": f"job-{event['job_id']}",
                        "pid": driver_pid, "tid": jobs_tid, "ts": us(event["time"]), "args": {"stages": event["stage_ids"]}})
        elif kind == "JobEnd":
            out.append({"ph": "e", "cat": "job", "name": f"job {event['job_id']}", "id": f"job-{event['job_id']}",
                        "pid": driver_pid, "tid": jobs_tid, "ts": us(event["time"]), "args": {"status": event["status"]}})
        elif kind == "StageSubmitted":
            key = (event["stage_id"], event["attempt"])
            open_stages[key] = event
            out.append({"ph": "b", "cat": "stage", "name": f"stage {key[0]}.{key[1]}", "id": f"stage-{key[0]}-{key[1]}",
                        "pid": driver_pid, "tid": stages_tid, "ts": us(event["time"]), "args": {"name": event["name"], "tasks": event["num_tasks"]}})
        elif kind == "StageCompleted" and (event["stage_id"], event["attempt"]) in open_stages:
            key = (event["stage_id"], event["attempt"])
            del open_stages[key]
            out.append({"ph": "e", "cat": "stage", "name": f"stage {key[0]}.{key[1]}", "id": f"stage-{key[0]}-{key[1]}",
                        "pid": driver_pid, "tid": stages_tid, "ts": us(event["time"]), "args": {"status": event["status"]}})
    return out


def export_perfetto(trace_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> str:
    """Write the application traced in ``trace_dir`` (conf ``trace.dir``) as Chrome Trace
    Event JSON and return its path (default: ``<trace_dir>/trace.json``). Open it in
    https://ui.perfetto.dev (Open trace file) or chrome://tracing (Load)."""
    trace = read_trace_dir(trace_dir)
    data = build_trace_events(trace)
    out = os.fspath(out_path) if out_path is not None else os.path.join(os.fspath(trace_dir), "trace.json")
    with open(out, "w", encoding="utf-8") as target:
        json.dump(data, target, default=repr, separators=(",", ":"))
    return out


_REQUIRED = {"X": ("name", "ts", "dur", "pid", "tid"), "i": ("name", "ts", "pid", "tid", "s"), "M": ("name", "pid", "args"),
             "s": ("name", "ts", "pid", "tid", "id"), "f": ("name", "ts", "pid", "tid", "id"),
             "b": ("name", "ts", "pid", "id", "cat"), "e": ("name", "ts", "pid", "id", "cat")}


def validate_trace(data: dict[str, Any]) -> list[str]:
    """The rules a viewer relies on, checked: each problem is one line (empty: valid).

    Required fields per phase; numbers where numbers go; every flow id starts once ("s")
    and finishes once ("f") no earlier; async begin/end pairs match; timestamps never go
    backwards on one track; complete slices on one track nest (no partial overlap).
    """
    problems: list[str] = []
    events = data.get("traceEvents")
    if not isinstance(events, list):
        return ["traceEvents is missing or not a list"]
    last_ts: dict[tuple[Any, Any], float] = {}
    flows: dict[Any, dict[str, list[float]]] = {}
    asyncs: dict[tuple[str, Any], int] = {}
    stacks: dict[tuple[Any, Any], list[float]] = {}
    for n, event in enumerate(events):
        phase = event.get("ph")
        if phase not in _REQUIRED:
            problems.append(f"event {n}: unknown phase {phase!r}")
            continue
        missing = [f for f in _REQUIRED[phase] if f not in event]
        if missing:
            problems.append(f"event {n} ({phase}): missing {', '.join(missing)}")
            continue
        if phase == "M":
            continue
        if not isinstance(event["ts"], (int, float)) or event["ts"] < 0:
            problems.append(f"event {n}: ts {event['ts']!r} is not a non-negative number")
            continue
        track = (event["pid"], event.get("tid"))
        if event["ts"] < last_ts.get(track, 0.0):
            problems.append(f"event {n}: ts {event['ts']} goes backwards on track {track}")
        last_ts[track] = event["ts"]
        if phase == "X":
            if not isinstance(event["dur"], (int, float)) or event["dur"] < 0:
                problems.append(f"event {n}: dur {event['dur']!r} is not a non-negative number")
                continue
            stack = stacks.setdefault(track, [])
            while stack and stack[-1] <= event["ts"]:
                stack.pop()
            end = event["ts"] + event["dur"]
            if stack and end > stack[-1] + 1e-3:
                problems.append(f"event {n}: slice {event['name']!r} overlaps its enclosing slice on track {track}")
            stack.append(end)
        elif phase in ("s", "f"):
            flows.setdefault(event["id"], {"s": [], "f": []})[phase].append(event["ts"])
        elif phase in ("b", "e"):
            key = (event["cat"], event["id"])
            asyncs[key] = asyncs.get(key, 0) + (1 if phase == "b" else -1)
            if asyncs[key] < 0:
                problems.append(f"event {n}: async end {key} without a begin")
    for flow_id, ends in flows.items():
        if len(ends["s"]) != 1 or len(ends["f"]) != 1:
            problems.append(f"flow {flow_id}: {len(ends['s'])} starts and {len(ends['f'])} finishes (want 1 and 1)")
        elif ends["f"][0] < ends["s"][0]:
            problems.append(f"flow {flow_id}: finishes before it starts")
    problems.extend(f"async {key}: begun but never ended" for key, count in asyncs.items() if count > 0)
    return problems
