"""One task set: the tasks of one stage attempt (Spark's ``TaskSetManager``), without I/O.

What it owns: each task's state (one ``TASK_TRANSITIONS`` table), its attempts (bounded
history) and counted failures; the pending lists delay scheduling draws from (by
executor, by host, without preference, all); the locality level it currently allows and
when it last launched at it; the live executors' hosts as last told. It lives in its own
``TaskSetManager`` actor (``_task_set_actor.py``), a child of the task scheduler, whose
cross-set core (:class:`~sparklet.runtime._tasksets.TaskSchedulerCore`) owns executors,
cores and task ids and offers this set free cores (``resource_offers``) with task ids
reserved for it. Status updates reach it by task id (``task_ended``); it answers with the
``TaskEnded`` (and ``TaskSetFailed``) events for the DAG core. The theory of the
scheduler as a whole opens ``_tasksets.py``.

Invariants (``validate_state``, called after every step of the scheduler tests):
* a task is RUNNING while an attempt of it runs and none succeeded (at most two run:
  the task and its speculative copy; the loser runs on, SUCCEEDED, until its kill lands);
  PENDING while neither running nor done; FAILED, KILLED or LOST only once done or given up (else it went back to
  PENDING); a pending task of a live set is on the ``all`` list;
* fewer than ``max_failures`` counted failures per task unless the set gave up;
* every task done makes the set a zombie; a zombie launches nothing;
* launches use only offered cores and the reserved ids, in order;
* speculation: a task has at most two attempts running; a speculatable task has exactly
  one; a copy never runs beside the attempt it copies;
* excludeOnFailure: no task launches where it is excluded (its own failures there, or
  its executor failed too many tasks of this set); a pending task excluded on every
  live executor aborts the set;
* the current locality index points into ``levels``, which end with ANY.

Review checklist: retries and failures ``tests/test_sched_tasksets.py``; offers with
reserved ids ``test_set_core_launches_onto_offered_slots_with_reserved_ids``; speculation
``tests/test_sched_speculation.py``; exclusion ``tests/test_sched_health.py``; all of it
under random sequences in ``tests/test_sched_property.py``.
"""

from __future__ import annotations

import collections
import dataclasses
import enum
from typing import Any, Callable

from sparklet.actors import SparkletInternalError, StateMachine
from sparklet.runtime._sched_events import (
    TASK_END_STATUSES, KillTask, LaunchTask, SubmitTasks, TaskEnded, TaskLocality, TaskSetFailed,
)
from sparklet.runtime._sched_health import ExcludeOnFailure
from sparklet.runtime._sched_locality import DelayScheduling, _PendingTasks

__all__ = ["TaskState", "TASK_TRANSITIONS", "ATTEMPT_TRANSITIONS", "TaskAttempt", "ExecutorInfo", "Slot",
           "Speculation", "TaskSetManagerCore"]

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


# One attempt's own states: an attempt runs once and ends once.
ATTEMPT_TRANSITIONS = {
    _T.RUNNING: frozenset({_T.SUCCEEDED, _T.FAILED, _T.KILLED, _T.LOST}),
    _T.SUCCEEDED: frozenset(), _T.FAILED: frozenset(), _T.KILLED: frozenset(), _T.LOST: frozenset(),
}


@dataclasses.dataclass
class TaskAttempt:
    """One launch of a task (Spark's ``TaskInfo``); ``state`` moves by ``ATTEMPT_TRANSITIONS``."""

    task_id: int
    attempt_number: int
    executor_id: str
    host: str
    locality: TaskLocality
    launched_at: float
    speculative: bool = False
    state: TaskState = TaskState.RUNNING
    finished_at: float | None = None
    status: str | None = None
    reason: str = ""
    kill_reason: str | None = None  # why we asked for it to be killed, if we did

    def end(self, state: TaskState, now: float, status: str, reason: str) -> None:
        if state not in ATTEMPT_TRANSITIONS[self.state]:
            raise SparkletInternalError(f"TID {self.task_id}: attempt {self.state.value} -> {state.value}. Please report it.")
        self.state, self.finished_at, self.status, self.reason = state, now, status, reason


@dataclasses.dataclass
class ExecutorInfo:
    executor_id: str
    host: str
    cores: int
    # Invariant: the ids of the tasks running here; never more than cores.
    running: set[int] = dataclasses.field(default_factory=set)
    # Which registration of this id (a restarted executor registers again under its id).
    incarnation: int = 0


@dataclasses.dataclass(frozen=True)
class Slot:
    """Free cores of one executor, offered to a task set (Spark's ``WorkerOffer``)."""

    executor_id: str
    host: str
    free: int
    incarnation: int = 0


@dataclasses.dataclass(frozen=True)
class Speculation:
    """Spark's ``spark.speculation.*``: once ``quantile`` of a set's tasks succeeded, a task
    running longer than ``multiplier`` times their median run time (and at least
    ``min_task_runtime`` seconds) gets a copy on another executor; the first to finish wins."""

    multiplier: float = 1.5
    quantile: float = 0.75
    min_task_runtime: float = 0.1

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile <= 1.0:
            raise ValueError(f"speculation.quantile must be within (0, 1], got {self.quantile!r}")
        if self.multiplier < 1.0:
            raise ValueError(f"speculation.multiplier must be >= 1, got {self.multiplier!r}")
        if self.min_task_runtime < 0:
            raise ValueError(f"speculation.minTaskRuntime must be >= 0 seconds, got {self.min_task_runtime!r}")


class TaskSetManagerCore(DelayScheduling):
    """The tasks of one stage attempt."""

    def __init__(self, task_set: SubmitTasks, *, clock: Callable[[], float], max_failures: int,
                 locality_wait: float, executor_hosts: dict[str, str] | None = None,
                 speculation: Speculation | None = None, exclude: ExcludeOnFailure | None = None) -> None:
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
        # The live executors (id -> host) as the task scheduler last said (``executors_changed``).
        self.executor_hosts: dict[str, str] = dict(executor_hosts or {})
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
        self.speculation = speculation
        # Invariant: run times of successful attempts (seconds), for the speculation median.
        self.successful_durations: list[float] = []
        # Invariant: indices waiting for a speculative copy: not successful, one copy running.
        self.speculatable: set[int] = set()
        # Invariant: how many attempts of each task run (at most 2: the task and its copy).
        self.copies_running = [0] * n
        self.exclude = exclude
        # Invariant (excludeOnFailure): executor -> task index -> failures of that task there.
        self.failed_on_executor: dict[str, dict[int, int]] = {}
        # Invariant: executors where max_failed_tasks_per_executor_in_stage tasks failed: excluded for this set.
        self.excluded_executors: set[str] = set()
        # The set gave up, failed to fetch or was cancelled: its failures say nothing of executors.
        self.aborted = False
        # Invariant: running task id -> its task index.
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

    def _launchable(self, index: int) -> bool:
        return self.task_fsms[index].state is TaskState.PENDING and index not in self.successful

    # -- excludeOnFailure within this set (Spark's TaskSetExcludelist) ------------------------------
    def _executor_excluded(self, executor_id: str) -> bool:
        return executor_id in self.excluded_executors

    def _excluded_here(self, index: int, executor_id: str) -> bool:
        if self.exclude is None:
            return False
        return executor_id in self.excluded_executors or self.failed_on_executor.get(executor_id, {}).get(
            index, 0) >= self.exclude.max_task_attempts_per_executor

    def _note_failure_for_exclusion(self, index: int, executor_id: str) -> None:
        failed = self.failed_on_executor.setdefault(executor_id, {})
        failed[index] = failed.get(index, 0) + 1
        if len(failed) >= self.exclude.max_failed_tasks_per_executor_in_stage:
            self.excluded_executors.add(executor_id)

    def _task_that_cannot_run_anywhere(self) -> int | None:
        """A pending task every live executor is excluded for (Spark's getCompletelyExcludedTaskIfAny)."""
        if not self.executor_hosts:
            return None  # no executor at all: wait for one
        for index, fsm in enumerate(self.task_fsms):
            if fsm.state is TaskState.PENDING and index not in self.successful and all(
                    self._excluded_here(index, e) for e in self.executor_hosts):
                return index
        return None

    def failures_by_executor(self) -> dict[str, int]:
        """How many different tasks failed on each executor, for the application-wide
        health tracker: only once every task succeeded and the set was never aborted."""
        if self.aborted or len(self.successful) < len(self.tasks) or not self.is_finished:
            return {}
        return {executor_id: len(failed) for executor_id, failed in self.failed_on_executor.items()}

    def __repr__(self) -> str:
        return f"TaskSet {self.name}{' (zombie)' if self.is_zombie else ''}"

    # -- launching ---------------------------------------------------------------------------------------
    def resource_offers(self, slots: "list[Slot] | tuple[Slot, ...]", first_task_id: int, *,
                        cause: Any = None) -> list[LaunchTask]:
        """Launch onto the offered free cores (the per-set half of TaskSchedulerImpl's
        ``resourceOffers``): level by level, round after round over the executors while
        something launches. Task ids are ``first_task_id``, ``first_task_id + 1``, ... in
        launch order (the task scheduler reserved them)."""
        if self.is_zombie:
            return []
        if self.barrier and not self.can_launch_all(sum(slot.free for slot in slots)):
            return []  # barrier: all tasks at once or none (the offer's cores go to other sets)
        now = self._clock()
        free = {slot.executor_id: slot.free for slot in slots}
        launched: list[LaunchTask] = []
        for max_locality in list(self.levels):
            while True:
                launched_now = False
                for slot in slots:
                    if free[slot.executor_id] < 1:
                        continue
                    found = self.resource_offer(slot.executor_id, slot.host, max_locality, now)
                    if found is None:
                        continue
                    index, locality = found
                    task_id = first_task_id + len(launched)
                    attempt = self.launch(index, task_id, slot.executor_id, slot.host, locality, now)
                    launched.append(LaunchTask(task_id, slot.executor_id, self.stage_id, self.stage_attempt,
                                               self.tasks[index].partition, index, attempt.attempt_number, locality,
                                               cause=cause))
                    free[slot.executor_id] -= 1
                    launched_now = True
                if not launched_now:
                    break
        if self.speculatable:
            for slot in slots:
                while free[slot.executor_id] > 0:
                    index = self._dequeue_speculative(slot.executor_id)
                    if index is None:
                        break
                    task_id = first_task_id + len(launched)
                    attempt = self.launch(index, task_id, slot.executor_id, slot.host, L.ANY, now, speculative=True)
                    launched.append(LaunchTask(task_id, slot.executor_id, self.stage_id, self.stage_attempt,
                                               self.tasks[index].partition, index, attempt.attempt_number, L.ANY,
                                               True, cause=cause))
                    free[slot.executor_id] -= 1
        return launched

    def _dequeue_speculative(self, executor_id: str) -> int | None:
        """A task waiting for a copy that has no attempt running on ``executor_id``."""
        for index in sorted(self.speculatable):
            if index in self.successful or self.copies_running[index] != 1:
                self.speculatable.discard(index)  # done, or its only attempt ended: no copy needed
                continue
            if not self._excluded_here(index, executor_id) and all(
                    self.attempt_by_task_id[t].executor_id != executor_id for t, i in self.running.items() if i == index):
                return index
        return None

    def check_speculatable_tasks(self, now: float) -> bool:
        """Spark's ``checkSpeculatableTasks``: mark tasks running far longer than the median
        of the successful ones for a copy. True when it found any (offer cores then)."""
        spec = self.speculation
        n = len(self.tasks)
        if spec is None or self.is_zombie or n == 1:
            return False
        if len(self.successful_durations) < max(int(spec.quantile * n), 1):
            return False
        durations = sorted(self.successful_durations)
        median = durations[len(durations) // 2]
        threshold = max(spec.multiplier * median, spec.min_task_runtime)
        found = False
        for task_id, index in self.running.items():
            if index in self.successful or index in self.speculatable or self.copies_running[index] != 1:
                continue
            if now - self.attempt_by_task_id[task_id].launched_at > threshold:
                self.speculatable.add(index)
                found = True
        return found

    def can_launch_all(self, free_slots: int) -> bool:
        """barrier: whether every task can launch now (none ever launched, enough free slots)."""
        return (not self.is_zombie and free_slots >= len(self.tasks)
                and all(fsm.state is TaskState.PENDING for fsm in self.task_fsms) and not self.successful)

    def launch(self, index: int, task_id: int, executor_id: str, host: str, locality: TaskLocality,
               now: float, speculative: bool = False) -> TaskAttempt:
        if speculative:
            self.speculatable.discard(index)  # the task stays RUNNING: now with two attempts
        else:
            self._move(index, TaskState.RUNNING, self.task_set.cause, f"TID {task_id} on {executor_id}", now)
        attempt = TaskAttempt(task_id, self.next_attempt_number[index], executor_id, host, locality, now, speculative)
        self.copies_running[index] += 1
        self.next_attempt_number[index] += 1
        self.attempts[index].append(attempt)
        self.running[task_id] = index
        self.attempt_by_task_id[task_id] = attempt
        return attempt

    # -- outcomes ----------------------------------------------------------------------------------------
    def task_ended(self, task_id: int, status: str, reason: str = "", *, result: Any = None,
                   accum_updates: Any = (), metrics: dict | None = None, map_status: Any = None,
                   fetch_failed_shuffle_id: int | None = None, fetch_failed_map_id: int | None = None,
                   fetch_failed_executor_id: str | None = None, cause: Any = None) -> list:
        """A running attempt ended: the ``TaskEnded`` for the DAG core, then a
        ``TaskSetFailed`` if this was a task's last allowed failure, or ``KillTask`` for the
        task's other attempt if this one succeeded. An id that is not running here (a
        duplicate report) is ignored."""
        if status not in TASK_END_STATUSES:
            raise ValueError(f"task_ended: status must be one of {sorted(TASK_END_STATUSES)}, got {status!r}")
        if task_id not in self.running:
            return []
        index = self.running[task_id]
        attempt = self.attempt_by_task_id[task_id]
        ended = TaskEnded(self.stage_id, self.stage_attempt, self.tasks[index].partition, task_id, attempt.executor_id,
                          status, result, tuple(accum_updates), dict(metrics or {}), reason, map_status,
                          fetch_failed_shuffle_id, fetch_failed_map_id, fetch_failed_executor_id,
                          attempt.attempt_number, cause=cause)
        return [ended, *self._record_end(task_id, status, reason, result if status == "failed" else None, cause,
                                         self._clock())]

    def _record_end(self, task_id: int, status: str, reason: str, exception: Any, cause: Any,
                    now: float) -> list:
        """Record the end of a running attempt: a success kills the task's other attempt;
        the last attempt's failure re-queues the task or gives up (``TaskSetFailed``)."""
        index = self.running.pop(task_id)
        attempt = self.attempt_by_task_id.pop(task_id)
        attempt.end(_END_STATE[status], now, status, reason)
        self.copies_running[index] -= 1
        last_copy = self.copies_running[index] == 0
        self.speculatable.discard(index)  # it had one copy running, now none: a retry, not a copy
        if status == "success":
            if self.task_fsms[index].state is TaskState.RUNNING:
                self._move(index, TaskState.SUCCEEDED, cause, f"TID {task_id} success", now)
                self.successful_durations.append(now - attempt.launched_at)
            self._mark_successful(index)
            return self._kill_other_attempts(index, attempt, cause)
        if last_copy and self.task_fsms[index].state is TaskState.RUNNING:
            self._move(index, _END_STATE[status], cause, f"TID {task_id} {status}", now)
        where = f"({attempt.host} executor {attempt.executor_id})"
        description = (f"Lost task {index}.{attempt.attempt_number} (partition {self.tasks[index].partition}) in "
                       f"stage {self.name} (TID {task_id}) {where}: {reason or status}")
        if status == "fetch_failed":
            self._mark_successful(index)  # not to be retried here: the DAG core resubmits the stage
            self.is_zombie = self.aborted = True
        elif self.barrier:
            self.is_zombie = True  # barrier: never retried alone; the DAG core re-runs the whole stage
        elif status == "failed":
            self.last_exception = exception
            if self.exclude is not None:
                self._note_failure_for_exclusion(index, attempt.executor_id)
            if not self.is_zombie and index not in self.successful:
                self.failure_reasons[index].append(description)
                failures = self.failure_reasons[index]
                if len(failures) >= self.max_failures:
                    self.is_zombie = self.aborted = True
                    listing = "\n".join(f"  {k}. {r}" for k, r in enumerate(failures, 1))
                    return [TaskSetFailed(
                        self.stage_id, self.stage_attempt,
                        f"Task {index} in stage {self.name} failed {len(failures)} times, most recent failure: "
                        f"{description}\nAll {len(failures)} failures of task {index}:\n{listing}",
                        exception, cause=cause)]
        if index not in self.successful and last_copy:
            self._move(index, TaskState.PENDING, cause, "re-queued", now)
            self._add_pending(index)
        if status == "failed" and self.exclude is not None and not self.is_zombie:
            stuck = self._task_that_cannot_run_anywhere()
            if stuck is not None:
                self.is_zombie = self.aborted = True
                return [TaskSetFailed(
                    self.stage_id, self.stage_attempt,
                    f"Aborting TaskSet {self.name} because task {stuck} (partition {self.tasks[stuck].partition}) "
                    f"cannot run anywhere due to node and executor excludeOnFailure. Most recent failure:\n"
                    f"{description}\n\nExcludeOnFailure behavior can be configured via spark.excludeOnFailure.*.",
                    exception, cause=cause)]
        return []

    def _kill_other_attempts(self, index: int, winner: TaskAttempt, cause: Any) -> list[KillTask]:
        kills = []
        for task_id, other in sorted(self.running.items()):
            attempt = self.attempt_by_task_id[task_id]
            if other == index and attempt.kill_reason is None:
                attempt.kill_reason = (f"another attempt succeeded: TID {winner.task_id} (attempt "
                                       f"{winner.attempt_number}) on executor {winner.executor_id}")
                kills.append(KillTask(task_id, attempt.executor_id, self.stage_id, self.stage_attempt,
                                      attempt.kill_reason, cause=cause))
        return kills

    def cancel(self, reason: str, cause: Any = None) -> list[KillTask]:
        """Become a zombie and kill every running attempt not being killed already (the
        stage was cancelled)."""
        self.is_zombie = self.aborted = True
        kills = []
        for task_id in sorted(self.running):
            attempt = self.attempt_by_task_id[task_id]
            if attempt.kill_reason is not None:
                continue  # being killed already (its copy won): keep the first reason
            attempt.kill_reason = f"Stage cancelled: {reason}"
            kills.append(KillTask(task_id, attempt.executor_id, self.stage_id, self.stage_attempt, attempt.kill_reason,
                                  cause=cause))
        return kills

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

        copies = collections.Counter(self.running.values())
        if copies != collections.Counter({i: c for i, c in enumerate(self.copies_running) if c}):
            fail(f"copies running {self.copies_running} disagree with running tasks {sorted(self.running.items())}")
        if any(c > (2 if self.speculation else 1) for c in copies.values()):
            fail(f"a task runs too many times: {sorted(copies.items())}")
        if self.running.keys() != self.attempt_by_task_id.keys():
            fail("running tasks and their attempts disagree")
        if any(a.state is not TaskState.RUNNING for a in self.attempt_by_task_id.values()):
            fail("an ended attempt is still running")
        if any(self.copies_running[i] != 1 for i in self.speculatable - self.successful):
            fail(f"speculatable tasks {sorted(self.speculatable)} without exactly one running copy")
        launchable = set(self.pending.all)
        for i, fsm in enumerate(self.task_fsms):
            state = fsm.state
            if state is TaskState.RUNNING and not copies[i]:
                fail(f"task {i} is running but no attempt of it runs")
            if copies[i] and state not in (TaskState.RUNNING, TaskState.SUCCEEDED):
                fail(f"task {i} is {state.value} but {copies[i]} attempts of it run")
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
