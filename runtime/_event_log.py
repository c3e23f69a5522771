"""Spark event logs: the application's listener events as JSON lines, in Spark's format.

With ``eventLog.enabled`` (``spark.eventLog.enabled``) a context writes
``<eventLog.dir>/<applicationId>.inprogress`` while it runs, one Spark listener event per
line (see :mod:`sparklet.runtime._spark_events`), and renames it to
``<eventLog.dir>/<applicationId>`` when it stops, as Spark's ``EventLoggingListener`` does.
Point Spark's History Server at the directory (``spark.history.fs.logDirectory``) to
browse sparklet applications with Spark's UI; an application that did not stop cleanly
stays ``.inprogress`` and is listed as incomplete.

Threads: the file is opened on the driver's user pool (never on the event loop), events
are written by the listener bus's own thread as they are posted, and the file is closed
after the bus has delivered its last event, by whoever stops the context (never the loop).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import IO, Any, Iterable

from sparklet.runtime._listener import SchedulerEvent
from sparklet.runtime._spark_events import SparkEventTranslator

__all__ = ["EventLogWriter", "event_log_directory"]

IN_PROGRESS = ".inprogress"


def event_log_directory(value: str) -> str:
    """A local directory from ``eventLog.dir`` (a path or a ``file:`` URI, as Spark takes)."""
    if value.startswith("file://"):
        return value[len("file://"):]
    if value.startswith("file:"):
        return value[len("file:"):]
    if "://" in value:
        raise ValueError(f"eventLog.dir must be a local directory or a file: URI, got {value!r}")
    return value


class EventLogWriter:
    """Writes one application's Spark event log; a listener on the context's bus."""

    def __init__(self, directory: str, *, app_id: str, app_name: str, master: str, start_time: float,
                 conf: Iterable[tuple[str, Any]] = (), version: str = "") -> None:
        self.directory = event_log_directory(directory)
        self.final_path = os.path.join(self.directory, app_id)
        self.path = self.final_path + IN_PROGRESS
        self._translator = SparkEventTranslator(app_name=app_name, app_id=app_id, master=master,
                                                start_time=start_time, conf=conf, version=version)
        self._lock = threading.Lock()  # the bus thread writes; the stopping thread closes
        self._file: IO[str] | None = None
        self._closed = False

    def open(self) -> None:
        """Create the directory and the ``.inprogress`` file; write the application start.
        Blocking: call it off the event loop."""
        try:
            os.makedirs(self.directory, exist_ok=True)
            if os.path.exists(self.final_path):
                raise FileExistsError(f"{self.final_path} already exists")
            handle = open(self.path, "x", encoding="utf-8")
        except OSError as exc:
            raise OSError(f"cannot write the event log in eventLog.dir={self.directory!r}: {exc}") from exc
        with self._lock:
            self._file = handle
            self._write(self._translator.start())

    def on_event(self, event: SchedulerEvent) -> None:
        """A listener-bus callback (the bus's thread)."""
        with self._lock:
            if self._file is not None and not self._closed:
                self._write(self._translator.on_event(event))

    def close(self, end_time: float | None = None) -> str:
        """Write the application end, close the file and drop ``.inprogress``. Call it after
        the bus has delivered every event. Returns the final path. Idempotent."""
        with self._lock:
            if self._file is None or self._closed:
                return self.final_path
            self._closed = True
            try:
                self._write(self._translator.finish(time.time() if end_time is None else end_time))
            finally:
                self._file.close()
        os.replace(self.path, self.final_path)
        return self.final_path

    def abandon(self) -> None:
        """Close without an application end (the context failed to start): the log stays
        ``.inprogress``, as Spark leaves the log of an application that died."""
        with self._lock:
            if self._file is not None and not self._closed:
                self._closed = True
                self._file.close()

    def _write(self, events: list[dict]) -> None:
        if events:
            assert self._file is not None
            self._file.write("".join(json.dumps(e, separators=(",", ":")) + "\n" for e in events))
            self._file.flush()  # a History Server reading the .inprogress file sees whole lines
