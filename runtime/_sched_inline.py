"""Both halves of the task scheduler wired with plain calls, without I/O.

:class:`InlineTaskScheduler` routes exactly as the ``TaskScheduler`` actor does with
messages (``_task_scheduler.py``), with each set's :class:`TaskSetManagerCore` called
directly instead of living in its own actor. The scheduler tests and the hypothesis
cluster drive it synchronously; its methods return the actions of both halves in the
order the actor would send them (to the DAG core: ``TaskEnded``, ``TaskSetFailed``,
``ExecutorAdded``, ``ExecutorLost``, ``TaskSetLost``; to executors: ``LaunchTask``, ``KillTask``).
"""

from __future__ import annotations

from typing import Any, Callable, Iterable

from sparklet.actors import SparkletInternalError
from sparklet.runtime._sched_events import (
    TASK_END_STATUSES, CancelTasks, KillTask, MarkPartitionCompleted, SubmitTasks, TaskSetLost,
)
from sparklet.runtime._sched_health import ExcludeOnFailure, HealthTracker
from sparklet.runtime._sched_taskset import Speculation
from sparklet.runtime._tasksets import Offer, TaskLost, TaskSchedulerCore, TaskSetManagerCore

__all__ = ["InlineTaskScheduler"]


class InlineTaskScheduler:
    def __init__(self, *, clock: Callable[[], float], max_failures: int = 4, locality_wait: float = 3.0,
                 speculation: Speculation | None = None, exclude: ExcludeOnFailure | None = None) -> None:
        if not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"max_failures must be a positive integer, got {max_failures!r}")
        if locality_wait < 0:
            raise ValueError(f"locality_wait must be >= 0 seconds, got {locality_wait!r}")
        if speculation is not None and not isinstance(speculation, Speculation):
            raise TypeError(f"speculation must be a Speculation or None, got {speculation!r}")
        self.speculation = speculation
        self._clock = clock
        self.max_failures = max_failures
        self.locality_wait = locality_wait
        self.exclude = exclude
        self.core = TaskSchedulerCore(clock=clock, health=HealthTracker(exclude, clock=clock) if exclude else None)
        # ExecutorExcludedInfo of finished sets, for the test to read (the actor posts them to the listener).
        self.health_events: list = []
        # Invariant: exactly the sets registered with the core that have not crashed.
        self.task_sets: dict[tuple[int, int], TaskSetManagerCore] = {}

    # -- what tests look at ----------------------------------------------------------------------------
    @property
    def executors(self) -> dict:
        return self.core.executors

    @property
    def task_id_to_manager(self) -> dict[int, TaskSetManagerCore]:
        return {t: self.task_sets[k] for t, k in self.core.task_id_to_set.items() if k in self.task_sets}

    @property
    def task_id_to_executor(self) -> dict[int, str]:
        return self.core.task_id_to_executor

    # -- commands from the DAG core -------------------------------------------------------------------
    def handle(self, command: Any) -> list:
        if isinstance(command, SubmitTasks):
            return self.submit_tasks(command)
        if isinstance(command, CancelTasks):
            return self.cancel_tasks(command.stage_id, command.stage_attempt, command.reason, cause=command.cause)
        if isinstance(command, MarkPartitionCompleted):
            return self.mark_partition_completed(command.stage_id, command.partition, cause=command.cause)
        raise TypeError(f"InlineTaskScheduler.handle takes SubmitTasks, CancelTasks or MarkPartitionCompleted, got {command!r}")

    def submit_tasks(self, task_set: SubmitTasks) -> list:
        key = (task_set.stage_id, task_set.stage_attempt)
        superseded = self.core.add_task_set(*key, task_set.priority, cause=task_set.cause)
        for old in superseded:
            self.task_sets[old].is_zombie = True
            self._after(old)
        self.task_sets[key] = TaskSetManagerCore(task_set, clock=self._clock, max_failures=self.max_failures,
                                                 locality_wait=self.locality_wait,
                                                 executor_hosts=self.core.executor_hosts(), speculation=self.speculation,
                                                 exclude=self.exclude)
        self._after(key)
        return self.resource_offers(cause=task_set.cause)

    def cancel_tasks(self, stage_id: int, stage_attempt: int | None = None, reason: str = "", *,
                     cause: Any = None) -> list:
        actions: list = []
        for entry in self.core.sets_of(stage_id):
            if (stage_attempt is None or entry.stage_attempt == stage_attempt) and entry.key in self.task_sets:
                actions += self.task_sets[entry.key].cancel(reason, cause)
                self._after(entry.key)
        return actions

    def mark_partition_completed(self, stage_id: int, partition: int, *, cause: Any = None) -> list:
        for entry in self.core.sets_of(stage_id):
            if not entry.is_zombie and entry.key in self.task_sets:
                self.task_sets[entry.key].mark_partition_completed(partition, cause)
                self._after(entry.key)
        return []

    # -- executors -----------------------------------------------------------------------------------------
    def executor_added(self, executor_id: str, host: str, cores: int, *, cause: Any = None) -> list:
        actions = self.core.executor_added(executor_id, host, cores, cause=cause)
        self._executors_changed()
        return actions + self.resource_offers(cause=cause)

    def executor_lost(self, executor_id: str, reason: str, *, cause: Any = None) -> list:
        actions: list = []
        changed = False
        for action in self.core.executor_lost(executor_id, reason, cause=cause):
            if isinstance(action, TaskLost):
                actions += self._report_lost(action, cause)
            else:
                if not changed:
                    self._executors_changed()
                    changed = True
                actions.append(action)
        return actions + (self.resource_offers(cause=cause) if actions else [])

    def _executors_changed(self) -> None:
        hosts = self.core.executor_hosts()
        for manager in self.task_sets.values():
            manager.executors_changed(hosts)

    # -- tasks ------------------------------------------------------------------------------------------------
    def task_ended(self, task_id: int, status: str, reason: str = "", *, result: Any = None,
                   accum_updates: Iterable = (), metrics: dict | None = None, map_status: Any = None,
                   fetch_failed_shuffle_id: int | None = None, fetch_failed_map_id: int | None = None,
                   fetch_failed_executor_id: str | None = None, cause: Any = None) -> list:
        if status not in TASK_END_STATUSES:
            raise ValueError(f"task_ended: status must be one of {sorted(TASK_END_STATUSES)}, got {status!r}")
        entry = self.core.task_ended(task_id, cause=cause)
        if entry is None:
            return []  # unknown: a duplicate report, or a lost executor's
        if entry.key not in self.task_sets:
            return self.resource_offers(cause=cause)  # its set crashed: only its core mattered
        actions = self.task_sets[entry.key].task_ended(
            task_id, status, reason, result=result, accum_updates=tuple(accum_updates), metrics=metrics,
            map_status=map_status, fetch_failed_shuffle_id=fetch_failed_shuffle_id,
            fetch_failed_map_id=fetch_failed_map_id, fetch_failed_executor_id=fetch_failed_executor_id, cause=cause)
        self._after(entry.key)
        offer = self.core.offer_to_first(entry.key)  # as the actor: the freed core back to its set, if FIFO agrees
        if offer is not None:
            actions += self._answer(offer, cause)
        return actions + self.resource_offers(cause=cause)

    def _report_lost(self, lost: TaskLost, cause: Any) -> list:
        manager = self.task_sets.get(lost.key)
        if manager is None:
            return []
        actions = manager.task_ended(lost.task_id, "executor_lost", lost.reason, cause=cause)
        self._after(lost.key)
        return actions

    def resource_offers(self, *, cause: Any = None) -> list:
        """Offer free cores to the sets in FIFO order until none is left or nobody launches."""
        self.core.revive()
        actions: list = []
        while (offer := self.core.next_offer()) is not None:
            actions += self._answer(offer, cause)
        return actions

    def _answer(self, offer: Offer, cause: Any) -> list:
        manager = self.task_sets[offer.key]
        launches = manager.resource_offers(offer.slots, offer.first_task_id, cause=cause)
        actions: list = list(launches)
        for lost in self.core.offer_answered(offer, launches, cause=cause):
            actions += self._report_lost(lost, cause)
        self._after(offer.key)
        return actions

    def crash_task_set(self, stage_id: int, stage_attempt: int, reason: str, *, cause: Any = None) -> list:
        """The set's actor failed: kill its running tasks, tell the DAG core, offer its cores."""
        key = (stage_id, stage_attempt)
        if self.task_sets.pop(key, None) is None:
            return []
        kills = [KillTask(task_id, executor_id, stage_id, stage_attempt, f"Task set {stage_id}.{stage_attempt} crashed: {reason}",
                          cause=cause) for task_id, executor_id in self.core.set_crashed(key, cause=cause)]
        return [*kills, TaskSetLost(stage_id, stage_attempt, reason, cause=cause), *self.resource_offers(cause=cause)]

    def check_speculatable_tasks(self, *, cause: Any = None) -> list:
        """The periodic speculation check (each set actor runs it on a timer): offer cores
        when a set found slow tasks to copy."""
        found = [manager.check_speculatable_tasks(self._clock()) for manager in list(self.task_sets.values())]
        return self.resource_offers(cause=cause) if any(found) else []

    def next_locality_deadline(self) -> float | None:
        deadlines = [d for d in (m.locality_deadline() for m in self.task_sets.values()) if d is not None]
        return min(deadlines) if deadlines else None

    def _after(self, key: tuple[int, int]) -> None:
        manager = self.task_sets[key]
        if self.core.set_state(key, is_zombie=manager.is_zombie, is_finished=manager.is_finished):
            del self.task_sets[key]
            self.health_events += self.core.task_set_succeeded(manager.failures_by_executor())

    def expire_exclusions(self) -> list:
        """Exclusions whose time is up end (``ExecutorUnexcludedInfo``), and their cores are offered."""
        ended = self.core.expire_exclusions()
        return [*ended, *self.resource_offers()] if ended else []

    # -- checking -----------------------------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        return self.core.statistics()

    def validate_state(self) -> None:
        self.core.validate_state()
        for key, manager in self.task_sets.items():
            entry = self.core.task_sets.get(key)
            if entry is None or entry.crashed:
                raise SparkletInternalError(f"InlineTaskScheduler: {manager!r} is not registered. Please report it.")
            if set(manager.running) != entry.running:
                raise SparkletInternalError(f"InlineTaskScheduler: {manager!r} runs {sorted(manager.running)}, the "
                                            f"scheduler booked {sorted(entry.running)}. Please report it.")
            if manager.is_finished:
                raise SparkletInternalError(f"InlineTaskScheduler: finished {manager!r} is still registered. Please report it.")
            manager.validate_state()
        for key in self.core.task_sets:
            if key not in self.task_sets and not self.core.task_sets[key].crashed:
                raise SparkletInternalError(f"InlineTaskScheduler: set {key} has no manager. Please report it.")
