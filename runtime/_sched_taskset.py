"""One task set: the tasks of one stage attempt (Spark's ``TaskSetManager``), without I/O.

What it owns: each task's state (one ``TASK_TRANSITIONS`` table), its attempts (bounded
history) and counted failures; the pending lists delay scheduling draws from (by
executor, by host, without preference, all); the locality level it currently allows and
when it last launched at it. :class:`~sparklet.runtime._tasksets.TaskSchedulerCore` owns
the executors and task ids and drives these sets; the theory of both (scheduling,
failure and recovery, review checklist) opens ``_tasksets.py``.

Invariants (``validate_state``, called by the scheduler's):
* a task is RUNNING exactly while one attempt of it runs; PENDING while neither running
  nor done; FAILED, KILLED or LOST only once done or given up (else it went back to
  PENDING); a pending task of a live set is on the ``all`` list;
* fewer than ``max_failures`` counted failures per task unless the set gave up;
* every task done makes the set a zombie; a zombie launches nothing;
* the current locality index points into ``levels``, which end with ANY.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Any, Callable

from sparklet.actors import SparkletInternalError, StateMachine
from sparklet.runtime._sched_events import SubmitTasks, TaskLocality, TaskSetFailed, parse_location

__all__ = ["TaskState", "TASK_TRANSITIONS", "TaskAttempt", "ExecutorInfo", "TaskSetManagerCore"]

HISTORY = 16
L = TaskLocality


class TaskState(enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    KILLED = "killed"
    LOST = "lost"  # its executor was lost


_T = TaskState
TASK_TRANSITIONS = {
    # PENDING -> SUCCEEDED: another attempt of the stage computed the partition.
    _T.PENDING: frozenset({_T.RUNNING, _T.SUCCEEDED}),
    _T.RUNNING: frozenset({_T.SUCCEEDED, _T.FAILED, _T.KILLED, _T.LOST}),
    _T.SUCCEEDED: frozenset(),
    # back to PENDING to be retried; FAILED stays when the set gives up.
    _T.FAILED: frozenset({_T.PENDING}),
    _T.KILLED: frozenset({_T.PENDING}),
    _T.LOST: frozenset({_T.PENDING}),
}
_END_STATE = {"success": _T.SUCCEEDED, "failed": _T.FAILED, "fetch_failed": _T.FAILED, "killed": _T.KILLED,
              "executor_lost": _T.LOST}


@dataclasses.dataclass
class TaskAttempt:
    """One launch of a task (Spark's ``TaskInfo``)."""

    task_id: int
    attempt_number: int
    executor_id: str
    host: str
    locality: TaskLocality
    launched_at: float
    finished_at: float | None = None
    status: str | None = None
    reason: str = ""


@dataclasses.dataclass
class ExecutorInfo:
    executor_id: str
    host: str
    cores: int
    # Invariant: the ids of the tasks running here; never more than cores.
    running: set[int] = dataclasses.field(default_factory=set)


class _PendingTasks:
    """Indices waiting to run, by where they would rather run. Lists are popped from the
    end and cleaned lazily: an entry whose task is running or done is skipped then."""

    def __init__(self) -> None:
        self.for_executor: dict[str, list[int]] = {}
        self.for_host: dict[str, list[int]] = {}
        self.no_prefs: list[int] = []
        self.all: list[int] = []


class TaskSetManagerCore:
    """The tasks of one stage attempt."""

    def __init__(self, task_set: SubmitTasks, *, clock: Callable[[], float], max_failures: int,
                 locality_wait: float, executors: dict[str, ExecutorInfo]) -> None:
        self.task_set = task_set
        self.stage_id, self.stage_attempt, self.priority = task_set.stage_id, task_set.stage_attempt, task_set.priority
        self.name = f"{self.stage_id}.{self.stage_attempt}"
        self.tasks = task_set.tasks
        # barrier: tasks launch together (no locality wait), a failure ends the set (the DAG
        # core re-runs the stage), and attempt k of the stage is attempt k of every task.
        self.barrier = task_set.barrier
        if self.barrier:
            locality_wait = 0.0
        for i, spec in enumerate(self.tasks):
            if spec.index != i:
                raise ValueError(f"SubmitTasks for stage {self.name}: task {i} has index {spec.index}, expected {i}")
        self._clock = clock
        self.max_failures = max_failures
        self._executors = executors  # the scheduler's, read only
        n = len(self.tasks)
        self.partition_to_index = {spec.partition: i for i, spec in enumerate(self.tasks)}
        self.task_fsms = [StateMachine(f"task {i} in stage {self.name}", TaskState.PENDING, TASK_TRANSITIONS, HISTORY)
                          for i in range(n)]
        # Invariant: bounded per task; the last attempts, oldest first.
        self.attempts: list[collections.deque[TaskAttempt]] = [collections.deque(maxlen=HISTORY) for _ in range(n)]
        self.next_attempt_number = [task_set.stage_attempt if self.barrier else 0] * n
        # Invariant: one description per counted failure; fewer than max_failures unless zombie.
        self.failure_reasons: list[list[str]] = [[] for _ in range(n)]
        # Invariant: tasks whose output is no longer needed from this set (Spark's ``successful``).
        self.successful: set[int] = set()
        # Invariant: running task id -> its task index; at most one per index.
        self.running: dict[int, int] = {}
        self.attempt_by_task_id: dict[int, TaskAttempt] = {}
        # Invariant: a zombie launches nothing; it is unregistered once nothing runs.
        self.is_zombie = n == 0
        self.last_exception: Any = None
        self.pending = _PendingTasks()
        for i in reversed(range(n)):
            self._add_pending(i)
        self.locality_wait = locality_wait
        self.levels = self._compute_valid_levels()
        # Invariant: 0 <= current_level_index < len(levels).
        self.current_level_index = 0
        self.last_reset_time = clock()

    def __repr__(self) -> str:
        return f"TaskSet {self.name}{' (zombie)' if self.is_zombie else ''}"

    # -- pending lists -----------------------------------------------------------------------------
    def _add_pending(self, index: int) -> None:
        locations = self.tasks[index].preferred_locations
        for location in locations:
            host, executor_id = parse_location(location)
            if executor_id is not None:
                self.pending.for_executor.setdefault(executor_id, []).append(index)
            if host:
                self.pending.for_host.setdefault(host, []).append(index)
        if not locations:
            self.pending.no_prefs.append(index)
        self.pending.all.append(index)

    def _launchable(self, index: int) -> bool:
        return self.task_fsms[index].state is TaskState.PENDING and index not in self.successful

    def _pop_launchable(self, indices: list[int] | None) -> int | None:
        while indices:
            index = indices.pop()
            if self._launchable(index):
                return index
        return None

    def _has_launchable(self, indices: list[int]) -> bool:
        while indices:
            if self._launchable(indices[-1]):
                return True
            indices.pop()
        return False

    def _more_tasks_in(self, by_place: dict[str, list[int]]) -> bool:
        empty = []
        found = False
        for place, indices in by_place.items():
            if self._has_launchable(indices):
                found = True
                break
            empty.append(place)
        for place in empty:
            del by_place[place]
        return found

    # -- locality ------------------------------------------------------------------------------------
    def _compute_valid_levels(self) -> list[TaskLocality]:
        hosts = {info.host for info in self._executors.values()}
        levels = []
        if any(e in self._executors for e, indices in self.pending.for_executor.items() if indices):
            levels.append(L.PROCESS_LOCAL)
        if any(h in hosts for h, indices in self.pending.for_host.items() if indices):
            levels.append(L.NODE_LOCAL)
        if self.pending.no_prefs:
            levels.append(L.NO_PREF)
        levels.append(L.ANY)
        return levels

    def _wait(self, level: TaskLocality) -> float:
        return self.locality_wait if level in (L.PROCESS_LOCAL, L.NODE_LOCAL) else 0.0

    def _level_index(self, locality: TaskLocality) -> int:
        index = 0
        while locality > self.levels[index]:
            index += 1
        return index

    def recompute_locality(self) -> None:
        """Executors came or went: the levels worth waiting at may have changed."""
        previous = self.levels[self.current_level_index]
        self.levels = self._compute_valid_levels()
        self.current_level_index = self._level_index(previous)

    def allowed_locality(self, now: float) -> TaskLocality:
        """Spark's getAllowedLocalityLevel: skip levels with nothing left to launch, relax
        past a level once its wait has passed since the last reset."""
        while self.current_level_index < len(self.levels) - 1:
            level = self.levels[self.current_level_index]
            if level is L.PROCESS_LOCAL:
                more = self._more_tasks_in(self.pending.for_executor)
            elif level is L.NODE_LOCAL:
                more = self._more_tasks_in(self.pending.for_host)
            else:
                more = self._has_launchable(self.pending.no_prefs)
            wait = self._wait(level)
            if not more:
                self.last_reset_time = now
                self.current_level_index += 1
            elif now - self.last_reset_time >= wait:
                self.last_reset_time += wait
                self.current_level_index += 1
            else:
                return level
        return self.levels[self.current_level_index]

    def locality_deadline(self) -> float | None:
        """When the current level's wait runs out, if waiting is what holds tasks back."""
        if self.is_zombie or self.current_level_index >= len(self.levels) - 1:
            return None
        if not any(self._launchable(i) for i in self.pending.all):
            return None
        return self.last_reset_time + self._wait(self.levels[self.current_level_index])

    # -- launching ---------------------------------------------------------------------------------------
    def resource_offer(self, executor_id: str, host: str, max_locality: TaskLocality,
                       now: float) -> tuple[int, TaskLocality] | None:
        """The task to run on one free core of ``executor_id``, if any may run there now."""
        if self.is_zombie:
            return None
        allowed = max_locality
        if max_locality is not L.NO_PREF:
            allowed = min(self.allowed_locality(now), max_locality)
        found = self._dequeue(executor_id, host, allowed)
        if found is not None and found[1] is not L.NO_PREF:
            self.current_level_index = self._level_index(found[1])
            self.last_reset_time = now
        return found

    def _dequeue(self, executor_id: str, host: str, max_locality: TaskLocality) -> tuple[int, TaskLocality] | None:
        index = self._pop_launchable(self.pending.for_executor.get(executor_id))
        if index is not None:
            return index, L.PROCESS_LOCAL
        if max_locality >= L.NODE_LOCAL:
            index = self._pop_launchable(self.pending.for_host.get(host))
            if index is not None:
                return index, L.NODE_LOCAL
        if max_locality >= L.NO_PREF:
            index = self._pop_launchable(self.pending.no_prefs)
            if index is not None:
                return index, L.NO_PREF
        if max_locality >= L.ANY:
            index = self._pop_launchable(self.pending.all)
            if index is not None:
                return index, L.ANY
        return None

    def can_launch_all(self, free_slots: int) -> bool:
        """barrier: whether every task can launch now (none ever launched, enough free slots)."""
        return (not self.is_zombie and free_slots >= len(self.tasks)
                and all(fsm.state is TaskState.PENDING for fsm in self.task_fsms) and not self.successful)

    def launch(self, index: int, task_id: int, executor_id: str, host: str, locality: TaskLocality,
               now: float) -> TaskAttempt:
        self._move(index, TaskState.RUNNING, self.task_set.cause, f"TID {task_id} on {executor_id}", now)
        attempt = TaskAttempt(task_id, self.next_attempt_number[index], executor_id, host, locality, now)
        self.next_attempt_number[index] += 1
        self.attempts[index].append(attempt)
        self.running[task_id] = index
        self.attempt_by_task_id[task_id] = attempt
        return attempt

    # -- outcomes ----------------------------------------------------------------------------------------
    def task_ended(self, task_id: int, status: str, reason: str, exception: Any, cause: Any,
                   now: float) -> TaskSetFailed | None:
        """Record the end of a running attempt; re-queue, or give up (returned)."""
        index = self.running.pop(task_id)
        attempt = self.attempt_by_task_id.pop(task_id)
        attempt.finished_at, attempt.status, attempt.reason = now, status, reason
        self._move(index, _END_STATE[status], cause, f"TID {task_id} {status}", now)
        if status == "success":
            self._mark_successful(index)
            return None
        where = f"({attempt.host} executor {attempt.executor_id})"
        description = (f"Lost task {index}.{attempt.attempt_number} (partition {self.tasks[index].partition}) in "
                       f"stage {self.name} (TID {task_id}) {where}: {reason or status}")
        if status == "fetch_failed":
            self._mark_successful(index)  # not to be retried here: the DAG core resubmits the stage
            self.is_zombie = True
        elif self.barrier:
            self.is_zombie = True  # barrier: never retried alone; the DAG core re-runs the whole stage
        elif status == "failed":
            self.last_exception = exception
            if not self.is_zombie:
                self.failure_reasons[index].append(description)
                failures = self.failure_reasons[index]
                if len(failures) >= self.max_failures:
                    self.is_zombie = True
                    listing = "\n".join(f"  {k}. {r}" for k, r in enumerate(failures, 1))
                    return TaskSetFailed(
                        self.stage_id, self.stage_attempt,
                        f"Task {index} in stage {self.name} failed {len(failures)} times, most recent failure: "
                        f"{description}\nAll {len(failures)} failures of task {index}:\n{listing}",
                        exception, cause=cause)
        if index not in self.successful:
            self._move(index, TaskState.PENDING, cause, "re-queued", now)
            self._add_pending(index)
        return None

    def _move(self, index: int, new: TaskState, cause: Any, why: str, now: float) -> None:
        fsm = self.task_fsms[index]
        fsm.move(new, (cause, why))
        old, _, recorded, _ = fsm.history[-1]
        fsm.history[-1] = (old, new, recorded, now)  # the injected clock, not monotonic()

    def _mark_successful(self, index: int) -> None:
        self.successful.add(index)
        if len(self.successful) == len(self.tasks):
            self.is_zombie = True

    def mark_partition_completed(self, partition: int, cause: Any = None) -> None:
        """Another attempt of the stage computed ``partition``."""
        index = self.partition_to_index.get(partition)
        if index is None or index in self.successful:
            return
        if self.task_fsms[index].state is TaskState.PENDING:
            self._move(index, TaskState.SUCCEEDED, cause, "completed by another attempt", self._clock())
        self._mark_successful(index)

    @property
    def is_finished(self) -> bool:
        return self.is_zombie and not self.running

    def validate_state(self) -> None:
        def fail(message: str) -> None:
            raise SparkletInternalError(f"{self!r}: {message}. Please report it.")

        running_indices = list(self.running.values())
        if len(set(running_indices)) != len(running_indices):
            fail(f"a task runs twice: {sorted(running_indices)}")
        if self.running.keys() != self.attempt_by_task_id.keys():
            fail("running tasks and their attempts disagree")
        launchable = set(self.pending.all)
        for i, fsm in enumerate(self.task_fsms):
            state = fsm.state
            if (state is TaskState.RUNNING) != (i in running_indices):
                fail(f"task {i} is {state.value} but {'' if i in running_indices else 'not '}running")
            if state is TaskState.SUCCEEDED and i not in self.successful:
                fail(f"task {i} succeeded but is not marked successful")
            if state in (TaskState.FAILED, TaskState.KILLED, TaskState.LOST) and not (i in self.successful or self.is_zombie):
                fail(f"task {i} is {state.value} yet neither done nor retried")
            if state is TaskState.PENDING and i not in self.successful and not self.is_zombie and i not in launchable:
                fail(f"pending task {i} is on no pending list")
            if len(self.failure_reasons[i]) > self.max_failures or (
                    len(self.failure_reasons[i]) == self.max_failures and not self.is_zombie):
                fail(f"task {i} failed {len(self.failure_reasons[i])} times and the set did not give up")
        if len(self.successful) == len(self.tasks) and not self.is_zombie:
            fail("every task is done but the set is not a zombie")
        if not 0 <= self.current_level_index < len(self.levels) or self.levels[-1] is not L.ANY:
            fail(f"locality index {self.current_level_index} out of {self.levels}")
