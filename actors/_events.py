"""Structured events for tracing: a bounded in-memory ring, optionally mirrored to JSON lines.

Every send, handler start and end, spawn, stop, restart, escalation, dead letter and
``Terminated`` is one event: a dict with at least ``ts`` (wall-clock seconds), ``pid``,
``system``, ``kind`` and ``actor`` (the path the event is about). Causality:

* a ``send`` event has ``id`` (the message's trace id) and ``cause`` (the trace id of the
  message its sender was handling, if any);
* the ``receive`` and ``handled`` events of that message carry the same ``id``, so a
  receive links to its send, across processes too (trace ids travel in the frame);
* a reply's ``send`` event carries ``reply_to``: the trace id of the request.

Trace ids are 64-bit integers drawn as a random per-system base plus a counter, so ids
from different processes do not collide in practice and cost no allocation. Under a
simulation (:mod:`sparklet.actors.simenv`) the base comes from the simulation's seed and
``ts`` is virtual time, so a replay records the same events with the same ids.

Cost when tracing is off: call sites test ``log.enabled`` (one attribute load) and skip
everything else, including the trace-id counter. ``benchmarks/`` measures it.

The JSON-lines file is written by one thread owned by the log (disk I/O must never run on
the event loop); :meth:`EventLog.close` flushes and joins it. With ``directory`` (a trace
directory) the file is ``<directory>/<system>-<pid>.jsonl``: one file per process, so every
process of an application (a SIGKILLed one up to its death) leaves its own events, and
processes spawned by :func:`~sparklet.actors.spawn_in_process` write beside it.
"""

from __future__ import annotations

import collections
import itertools
import json
import os
import queue
import threading
from typing import Any, Iterator

from sparklet.actors import _simenv

__all__ = ["EventLog"]

_STOP = object()


class EventLog:
    """A bounded ring of events, with an optional JSON-lines mirror."""

    def __init__(self, *, system: str, enabled: bool = False, capacity: int = 100_000, path: str | os.PathLike | None = None,
                 directory: str | os.PathLike | None = None) -> None:
        if capacity <= 0:
            raise ValueError(f"event capacity must be positive, got {capacity!r}")
        if path is not None and directory is not None:
            raise ValueError("give an events file (path) or a trace directory (directory), not both")
        self.directory = os.fspath(directory) if directory is not None else None
        if self.directory is not None:
            os.makedirs(self.directory, exist_ok=True)
            path = os.path.join(self.directory, f"{system}-{os.getpid()}.jsonl")
        # Invariant: len(_ring) <= capacity; older events are dropped first and counted.
        self._ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=capacity)
        self._enabled = enabled or path is not None
        self.on_change: Any = None  # called when tracing is switched on or off
        self.system = system
        self.pid = os.getpid()
        self.dropped = 0
        self._ids = itertools.count(1)
        self._id_base = _simenv.new_random().getrandbits(30) << 33
        self._path = os.fspath(path) if path is not None else None
        self._lines: queue.SimpleQueue | None = None
        self._writer: threading.Thread | None = None
        if self._path is not None:
            self._lines = queue.SimpleQueue()
            self._writer = threading.Thread(target=self._write_lines, name=f"sparklet-events-{system}", daemon=True)
            self._writer.start()

    @property
    def enabled(self) -> bool:
        return self._enabled

    @enabled.setter
    def enabled(self, value: bool) -> None:
        self._enabled = bool(value)
        if self.on_change is not None:
            self.on_change()

    def next_id(self) -> int:
        return self._id_base + next(self._ids)

    def record(self, kind: str, actor: str | None, **fields: Any) -> dict[str, Any]:
        event = {"ts": _simenv.time(), "pid": self.pid, "system": self.system, "kind": kind, "actor": actor}
        event.update(fields)
        if len(self._ring) == self._ring.maxlen:
            self.dropped += 1
        self._ring.append(event)
        if self._lines is not None:
            self._lines.put(event)
        return event

    def add(self, event: dict[str, Any]) -> None:
        """Store an event recorded elsewhere (another process) as it is."""
        if len(self._ring) == self._ring.maxlen:
            self.dropped += 1
        self._ring.append(event)
        if self._lines is not None:
            self._lines.put(event)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._ring))

    def __len__(self) -> int:
        return len(self._ring)

    def select(self, kind: str | None = None, actor: str | None = None, msg: str | None = None) -> list[dict[str, Any]]:
        """Events matching every given criterion, oldest first."""
        return [
            e for e in list(self._ring)
            if (kind is None or e["kind"] == kind)
            and (actor is None or e.get("actor") == actor)
            and (msg is None or e.get("msg") == msg)
        ]

    def clear(self) -> None:
        self._ring.clear()

    def statistics(self) -> dict[str, Any]:
        return {"enabled": self.enabled, "events": len(self._ring), "capacity": self._ring.maxlen,
                "dropped": self.dropped, "file": self._path}

    def close(self) -> None:
        """Flush the JSON-lines file and join its writer thread. Idempotent."""
        if self._writer is not None and self._lines is not None:
            self._lines.put(_STOP)
            self._writer.join()
            self._writer = None

    def _write_lines(self) -> None:
        assert self._lines is not None and self._path is not None
        with open(self._path, "a", encoding="utf-8") as out:
            while True:
                item = self._lines.get()
                batch = [item]
                # Drain what is already queued so one write serves many events.
                while item is not _STOP:
                    try:
                        item = self._lines.get_nowait()
                    except queue.Empty:
                        break
                    batch.append(item)
                lines = [json.dumps(e, default=repr, separators=(",", ":")) for e in batch if e is not _STOP]
                if lines:
                    out.write("\n".join(lines) + "\n")
                    out.flush()
                if batch[-1] is _STOP:
                    return
