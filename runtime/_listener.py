"""Scheduler events for users and tests, in the spirit of SparkListener.

The schedulers post :class:`JobStart`, :class:`StageSubmitted`, :class:`TaskStart`,
:class:`TaskEnd`, :class:`StageCompleted`, :class:`JobEnd`, :class:`ExecutorRegistered`,
:class:`ExecutorRemoved`, :class:`ExecutorExcluded` and :class:`ExecutorUnexcluded` to the context's :class:`ListenerBus`. Posting appends to an
ordered, bounded log at once (the scheduler posts a job's last events before it answers
the job), so the whole story of an action can be read as soon as it returns:
``sc.listener_events()``. Callbacks added with ``sc.addListener(fn)`` run on the bus's
own single thread, in order, never on the event loop; under the simulated master
(``sim[N]``) they run inline, on the posting thread, so they take part in the replay.
"""

from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import logging
import threading
from typing import Any, Callable

from sparklet.actors import simenv

__all__ = [
    "SchedulerEvent", "JobStart", "JobEnd", "StageSubmitted", "StageCompleted", "TaskStart", "TaskEnd",
    "ExecutorRegistered", "ExecutorRemoved", "FaultInjected", "FaultPlanRecorded", "ListenerBus",
    "ActorRecovered", "JobRecovered",
]

log = logging.getLogger("sparklet.listener")


@dataclasses.dataclass(frozen=True)
class SchedulerEvent:
    time: float


@dataclasses.dataclass(frozen=True)
class JobStart(SchedulerEvent):
    job_id: int
    stage_ids: tuple[int, ...]
    properties: dict


@dataclasses.dataclass(frozen=True)
class JobEnd(SchedulerEvent):
    job_id: int
    status: str  # "succeeded" | "failed" | "cancelled"
    error: str | None = None
    summary: Any = None  # a JobSummary: tasks run more than once, stages resubmitted and why


@dataclasses.dataclass(frozen=True)
class StageSubmitted(SchedulerEvent):
    stage_id: int
    attempt: int
    name: str
    num_tasks: int
    partitions: tuple[int, ...]
    parent_ids: tuple[int, ...]
    reason: str | None = None  # why this attempt re-runs work (fetch failure, lost outputs, restart); None: first run
    shuffle_id: int | None = None  # a map stage's shuffle
    rdd_id: int | None = None


@dataclasses.dataclass(frozen=True)
class StageCompleted(SchedulerEvent):
    stage_id: int
    attempt: int
    status: str  # "succeeded" | "failed" | "skipped"
    failure_reason: str | None = None


@dataclasses.dataclass(frozen=True)
class TaskStart(SchedulerEvent):
    task_id: int
    stage_id: int
    stage_attempt: int
    partition: int
    attempt: int
    executor_id: str
    locality: str
    speculative: bool = False


@dataclasses.dataclass(frozen=True)
class TaskEnd(SchedulerEvent):
    task_id: int
    stage_id: int
    stage_attempt: int
    partition: int
    attempt: int
    executor_id: str
    status: str  # "success" | "failed" | "killed" | "fetch_failed" | "executor_lost"
    reason: str | None
    metrics: dict
    speculative: bool = False


@dataclasses.dataclass(frozen=True)
class FaultPlanRecorded(SchedulerEvent):
    seed: int
    faults: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class FaultInjected(SchedulerEvent):
    executor_id: str
    index: int  # into the plan's faults
    fault: str
    where: str


@dataclasses.dataclass(frozen=True)
class ActorRecovered(SchedulerEvent):
    """A driver actor crashed, its supervisor restarted it, and it rebuilt its state."""

    actor: str  # its path
    supervisor: str  # the path of the supervisor that restarted it
    restarts: int
    reason: str  # why it crashed
    rebuilt: str  # what it rebuilt its state from, and what it found


@dataclasses.dataclass(frozen=True)
class JobRecovered(SchedulerEvent):
    """A restarted DAG scheduler took over a running job: the results it kept and the
    work it recomputes (result partitions, and map outputs per shuffle)."""

    job_id: int
    stage_ids: tuple[int, ...]
    results_kept: tuple[int, ...]
    results_missing: tuple[int, ...]
    missing_map_outputs: tuple[tuple[int, tuple[int, ...]], ...]
    reason: str


@dataclasses.dataclass(frozen=True)
class ExecutorRegistered(SchedulerEvent):
    executor_id: str
    host: str
    cores: int
    pid: int


@dataclasses.dataclass(frozen=True)
class ExecutorRemoved(SchedulerEvent):
    executor_id: str
    reason: str


@dataclasses.dataclass(frozen=True)
class ExecutorExcluded(SchedulerEvent):
    """The executor kept failing tasks (excludeOnFailure): no task goes there until ``until`` (epoch seconds)."""

    executor_id: str
    task_failures: int
    until: float


@dataclasses.dataclass(frozen=True)
class ExecutorUnexcluded(SchedulerEvent):
    executor_id: str


class ListenerBus:
    """An ordered, bounded log of scheduler events plus user callbacks on one thread."""

    def __init__(self, capacity: int = 200_000, *, inline: bool = False) -> None:
        # Invariant: events appear in the order they were posted; at most `capacity` kept.
        self._log: collections.deque[SchedulerEvent] = collections.deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[SchedulerEvent], Any]] = []
        self._internal: list[Callable[[SchedulerEvent], Any]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._inline = inline  # call listeners on the posting thread (a simulation has no threads)

    def post(self, event: SchedulerEvent) -> None:
        with self._lock:
            self._log.append(event)
            listeners = list(self._listeners)
        for callback in self._internal:
            callback(event)  # our own (progress bar): cheap, on the posting thread
        if listeners and self._inline:
            self._dispatch(listeners, event)
        elif listeners:
            if self._pool is None:
                self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sparklet-listener-bus")
            self._pool.submit(self._dispatch, listeners, event)

    @staticmethod
    def _dispatch(listeners: list[Callable], event: SchedulerEvent) -> None:
        for callback in listeners:
            try:
                callback(event)
            except Exception:
                log.exception("listener %r raised on %s", callback, type(event).__name__)

    def add_listener(self, callback: Callable[[SchedulerEvent], Any]) -> None:
        with self._lock:
            self._listeners.append(callback)

    def remove_listener(self, callback: Callable[[SchedulerEvent], Any]) -> None:
        with self._lock:
            self._listeners.remove(callback)

    def add_internal(self, callback: Callable[[SchedulerEvent], Any]) -> None:
        self._internal.append(callback)

    def remove_internal(self, callback: Callable[[SchedulerEvent], Any]) -> None:
        if callback in self._internal:
            self._internal.remove(callback)

    def events(self, kind: type | tuple[type, ...] | None = None, **match: Any) -> list[SchedulerEvent]:
        """Events so far, oldest first, optionally of a type and matching field values."""
        with self._lock:
            events = list(self._log)
        return [e for e in events
                if (kind is None or isinstance(e, kind))
                and all(getattr(e, k, None) == v for k, v in match.items())]

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None


def now() -> float:
    return simenv.time()
