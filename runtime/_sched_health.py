"""Executors excluded on failure, application-wide, without I/O (Spark's ``HealthTracker``).

What it owns. For each executor, the task failures it had in task sets that went on to
succeed (Spark counts only those: a set that failed says nothing about where it ran),
each remembered until ``timeout`` after it happened; the executors excluded now and
until when. An executor with ``max_failed_tasks_per_executor`` remembered failures is
excluded for ``timeout`` seconds: the task scheduler offers none of its cores, and the
listener hears ``ExecutorExcluded`` (then ``ExecutorUnexcluded`` when it is back).

Exclusion within one task set (one task on one executor, or one executor for the whole
stage) is the set's own business: ``TaskSetManagerCore`` with an :class:`ExcludeOnFailure`.

Invariants (``validate_state``; ``tests/test_sched_health.py`` calls it after every step):
* every remembered failure expires within ``timeout`` from now (expired ones are dropped
  at the next count), in order;
* an excluded executor's exclusion ends within ``timeout`` from now; an executor that is
  removed is forgotten (a replacement starts with a clean record).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from sparklet.actors import SparkletInternalError

__all__ = ["ExcludeOnFailure", "HealthTracker", "ExecutorExcludedInfo", "ExecutorUnexcludedInfo"]


@dataclasses.dataclass(frozen=True)
class ExcludeOnFailure:
    """Spark's ``spark.excludeOnFailure.*`` (node-level limits aside: one host here)."""

    max_task_attempts_per_executor: int = 1   # task.maxTaskAttemptsPerExecutor
    max_failed_tasks_per_executor_in_stage: int = 2  # stage.maxFailedTasksPerExecutor
    max_failed_tasks_per_executor: int = 2    # application.maxFailedTasksPerExecutor
    timeout: float = 3600.0                   # timeout

    def __post_init__(self) -> None:
        for field in ("max_task_attempts_per_executor", "max_failed_tasks_per_executor_in_stage",
                      "max_failed_tasks_per_executor"):
            value = getattr(self, field)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"ExcludeOnFailure.{field} must be a positive integer, got {value!r}")
        if not self.timeout > 0:
            raise ValueError(f"ExcludeOnFailure.timeout must be positive seconds, got {self.timeout!r}")


@dataclasses.dataclass(frozen=True)
class ExecutorExcludedInfo:
    """For the listener: ``executor_id`` gets no tasks until ``until`` (clock time)."""

    executor_id: str
    task_failures: int
    until: float


@dataclasses.dataclass(frozen=True)
class ExecutorUnexcludedInfo:
    executor_id: str


class HealthTracker:
    def __init__(self, conf: ExcludeOnFailure, *, clock: Callable[[], float]) -> None:
        self.conf = conf
        self._clock = clock
        # Invariant: executor -> expiry times of its remembered failures, oldest first.
        self.failures: dict[str, list[float]] = {}
        # Invariant: excluded executor -> when its exclusion ends.
        self.excluded_until: dict[str, float] = {}

    def is_excluded(self, executor_id: str) -> bool:
        return executor_id in self.excluded_until

    def task_set_succeeded(self, failures_by_executor: dict[str, int]) -> list[ExecutorExcludedInfo]:
        """A task set finished with every task done: count where its tasks failed."""
        now = self._clock()
        self._expire_failures(now)
        newly = []
        for executor_id, count in sorted(failures_by_executor.items()):
            if count <= 0:
                continue
            remembered = self.failures.setdefault(executor_id, [])
            remembered.extend([now + self.conf.timeout] * count)
            if len(remembered) >= self.conf.max_failed_tasks_per_executor and executor_id not in self.excluded_until:
                until = now + self.conf.timeout
                self.excluded_until[executor_id] = until
                newly.append(ExecutorExcludedInfo(executor_id, len(remembered), until))
        return newly

    def expire(self) -> list[ExecutorUnexcludedInfo]:
        """Exclusions whose time is up end (offer their cores again)."""
        now = self._clock()
        self._expire_failures(now)
        ended = sorted(e for e, until in self.excluded_until.items() if until <= now)
        for executor_id in ended:
            del self.excluded_until[executor_id]
        return [ExecutorUnexcludedInfo(e) for e in ended]

    def next_expiry(self) -> float | None:
        return min(self.excluded_until.values(), default=None)

    def executor_removed(self, executor_id: str) -> list[ExecutorUnexcludedInfo]:
        self.failures.pop(executor_id, None)
        if self.excluded_until.pop(executor_id, None) is not None:
            return [ExecutorUnexcludedInfo(executor_id)]
        return []

    def _expire_failures(self, now: float) -> None:
        for executor_id in list(self.failures):
            kept = [t for t in self.failures[executor_id] if t > now]
            if kept:
                self.failures[executor_id] = kept
            else:
                del self.failures[executor_id]

    def validate_state(self) -> None:
        now = self._clock()
        horizon = now + self.conf.timeout
        for executor_id, times in self.failures.items():
            if not times or times != sorted(times) or times[-1] > horizon:
                raise SparkletInternalError(f"HealthTracker: failures of {executor_id} {times} out of order or beyond "
                                            f"{horizon}. Please report it.")
        for executor_id, until in self.excluded_until.items():
            if until > horizon:
                raise SparkletInternalError(f"HealthTracker: {executor_id} excluded until {until}, past {horizon}. "
                                            "Please report it.")
