"""The trace directory: everything one application leaves behind for its viewers.

Layout (conf ``trace.dir``; setting it turns ``tracing`` on)::

    <dir>/app.json                  app name, id, master, start/end, conf, supervision tree
    <dir>/listener.jsonl            the scheduler's listener events, one JSON object a line
    <dir>/<system>-<pid>.jsonl      actor events of one process (the driver, each executor)

Each process writes its own actor-events file from its own writer thread (see
:class:`sparklet.actors.EventLog`), so an executor killed with SIGKILL leaves its events up
to its death and nothing has to be gathered over the network. The driver's listener
events and ``app.json`` are written here, by one thread: posting an event only puts it on
a queue (the scheduler posts from the event loop, which must never wait on a disk).
``app.json`` is written twice: at start (so a crashed application is still readable) and
at stop, with the end time and the final supervision tree.

:func:`read_trace_dir` is the other side: it loads a directory into a :class:`TraceData`
for the exporters, the report and ``sparklet trace show``.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
import queue
import threading
from typing import Any

from sparklet.runtime._listener import SchedulerEvent

__all__ = ["TraceData", "TraceDirError", "TraceDirWriter", "listener_event_to_dict", "read_trace_dir"]

APP_FILE = "app.json"
LISTENER_FILE = "listener.jsonl"
_STOP = object()


class TraceDirError(ValueError):
    """A trace directory that is missing or unreadable; the message names the path."""


def listener_event_to_dict(event: SchedulerEvent) -> dict[str, Any]:
    """``{"event": "TaskEnd", "time": ..., <fields>}``: a listener event as plain JSON data."""
    fields = dataclasses.asdict(event)
    return {"event": type(event).__name__, **fields}


class TraceDirWriter:
    """Writes ``listener.jsonl`` and ``app.json`` of one application from its own thread."""

    def __init__(self, directory: str, app: dict[str, Any]) -> None:
        self.directory = os.fspath(directory)
        self._app = dict(app)
        self._items: queue.SimpleQueue = queue.SimpleQueue()
        self._items.put(("app", dict(self._app)))
        self._thread: threading.Thread | None = threading.Thread(
            target=self._write, name="sparklet-trace-dir", daemon=True)
        self._thread.start()

    def on_event(self, event: SchedulerEvent) -> None:
        """The listener bus's internal callback: cheap, never touches the disk."""
        self._items.put(event)

    def close(self, **app_updates: Any) -> None:
        """Write the final ``app.json`` (with ``app_updates``), flush and join. Idempotent.
        Call it off the event loop: it waits for the disk."""
        if self._thread is None:
            return
        self._app.update(app_updates)
        self._items.put(("app", dict(self._app)))
        self._items.put(_STOP)
        self._thread.join()
        self._thread = None

    def _write(self) -> None:
        os.makedirs(self.directory, exist_ok=True)
        with open(os.path.join(self.directory, LISTENER_FILE), "a", encoding="utf-8") as out:
            while True:
                batch = [self._items.get()]
                while batch[-1] is not _STOP:  # drain what is queued: one write serves many
                    try:
                        batch.append(self._items.get_nowait())
                    except queue.Empty:
                        break
                lines = []
                for item in batch:
                    if isinstance(item, tuple) and item[0] == "app":
                        self._write_app(item[1])
                    elif isinstance(item, SchedulerEvent):
                        lines.append(json.dumps(listener_event_to_dict(item), default=repr, separators=(",", ":")))
                if lines:
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                if batch[-1] is _STOP:
                    return

    def _write_app(self, app: dict[str, Any]) -> None:
        path = os.path.join(self.directory, APP_FILE)
        with open(path + ".tmp", "w", encoding="utf-8") as out:
            json.dump(app, out, default=repr, indent=1)
        os.replace(path + ".tmp", path)  # readers never see half a file


@dataclasses.dataclass
class TraceData:
    """One application's trace, loaded: app metadata, listener events, actor events."""

    directory: str | None
    app: dict[str, Any]
    listener: list[dict[str, Any]]
    actor_events: list[dict[str, Any]]  # all processes, sorted by time
    files: list[str] = dataclasses.field(default_factory=list)
    bad_lines: int = 0  # torn last lines of killed processes, skipped


def _read_jsonl(path: str) -> tuple[list[dict[str, Any]], int]:
    records, bad = [], 0
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                bad += 1  # a process killed mid-write leaves a torn last line
                continue
            if isinstance(record, dict):
                records.append(record)
            else:
                bad += 1
    return records, bad


def read_trace_dir(directory: str | os.PathLike) -> TraceData:
    """Load a trace directory. Raises :class:`TraceDirError` naming what is missing."""
    directory = os.fspath(directory)
    if not os.path.isdir(directory):
        raise TraceDirError(f"trace directory {directory!r} does not exist (set conf trace.dir to write one)")
    app_path = os.path.join(directory, APP_FILE)
    listener_path = os.path.join(directory, LISTENER_FILE)
    if not os.path.exists(app_path) and not os.path.exists(listener_path):
        raise TraceDirError(f"{directory!r} is not a sparklet trace directory: it has no {APP_FILE} or {LISTENER_FILE}")
    app: dict[str, Any] = {}
    if os.path.exists(app_path):
        try:
            with open(app_path, encoding="utf-8") as source:
                app = json.load(source)
        except ValueError as exc:
            raise TraceDirError(f"{app_path}: not valid JSON ({exc})") from None
    listener, bad = _read_jsonl(listener_path) if os.path.exists(listener_path) else ([], 0)
    actor_events: list[dict[str, Any]] = []
    files = sorted(p for p in glob.glob(os.path.join(directory, "*.jsonl")) if os.path.basename(p) != LISTENER_FILE)
    for path in files:
        records, torn = _read_jsonl(path)
        bad += torn
        actor_events.extend(r for r in records if "ts" in r and "kind" in r)
    actor_events.sort(key=lambda e: e["ts"])  # stable: one process's order is kept on ties
    return TraceData(directory, app, listener, actor_events, files, bad)
