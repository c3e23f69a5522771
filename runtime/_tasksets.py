"""Task sets and the task scheduler's core, without I/O (Spark's ``TaskSetManager`` and
``TaskSchedulerImpl``).

What it owns. The live executors and their free cores; one :class:`TaskSetManagerCore`
per submitted stage attempt, holding the state of each of its tasks, their attempts and
failures, and the pending lists that delay scheduling works from; the task ids of running
attempts. It decides which task runs where (``resource_offers``), retries failed tasks,
and gives up on a task set when one task failed ``max_failures`` times. It reports every
outcome to the DAG core as ``TaskEnded`` and never decides what a result means.
:class:`TaskSetManagerCore` lives in ``_sched_taskset.py`` (to keep files small) and is
re-exported here.

Scheduling. Task sets are served FIFO: by ``priority`` (the job id), then stage id. A
task set offers its tasks level by level: PROCESS_LOCAL (the executor caching the
input), NODE_LOCAL (its host), NO_PREF, ANY. Delay scheduling follows Spark's
``getAllowedLocalityLevel``: a task set waits ``locality_wait`` seconds of ``clock`` at a
level that still has tasks before relaxing to the next, and launching a task at a level
restarts the wait there (Spark's ``spark.locality.wait.legacyResetOnTaskLaunch``; a
task without preferences launches at NO_PREF and leaves the wait alone).
``next_locality_deadline()`` says when relaxing would next allow more: the actor offers
again then (and whenever a core frees, which the methods here do themselves).

Invariants (``validate_state``; every task scheduler test calls it after every step):
* an executor runs at most ``cores`` tasks; every running task is on a live executor and
  in exactly one task set; ``task_id_to_manager`` holds exactly the running tasks;
* a task is RUNNING exactly while one attempt of it runs, PENDING exactly while it is
  neither running nor done, and a pending task of a live set is on its ``all`` list;
* a task set is registered until it is a zombie with nothing running; a stage has at most
  one non-zombie task set;
* a task has failed fewer than ``max_failures`` times unless its set gave up.

Failure and recovery.
* A task's failure (its user code raised) re-queues it until it has failed
  ``max_failures`` times; then ``TaskSetFailed`` names every one of its failures and
  carries the last exception, and the set becomes a zombie.
* An executor's loss fails its running tasks with status ``executor_lost``; they are
  re-queued without counting as failures (the loss was not the task's doing).
* A killed task is not a failure. A fetch failure is not retried here: the set becomes a
  zombie and the DAG core resubmits the stage (Spark).
* A zombie set (a newer attempt of its stage was submitted, it was cancelled, or it is
  done) launches nothing; results of its running tasks are still forwarded.

Speculation (``speculation=True``) is not implemented; it would add a periodic
``check_speculatable_tasks()`` that queues extra copies of slow tasks, which is why
running attempts are kept per task id rather than one per task.

Review checklist (``tests/test_sched_tasksets.py``):
* max failures and their reasons: ``test_max_failures_aborts_with_every_reason``
* executor loss does not count: ``test_executor_loss_is_not_a_task_failure``
* delay scheduling: ``test_delay_scheduling_relaxes_levels_with_the_clock``, ``test_node_local_then_any``
* FIFO across jobs: ``test_fifo_across_jobs``
* zombies: ``test_newer_attempt_makes_older_set_a_zombie``
* kill: ``test_cancel_kills_running_tasks_and_kills_are_not_failures``
* fetch failures are not retried here: ``test_fetch_failure_makes_the_set_a_zombie_without_retry``
* the invariants above: ``validate_state`` after every step of every test (``Harness.step``
  here, ``Cluster.check`` in ``test_sched_property.py``), registries empty at the end
  (``assert_idle``), under random sequences in ``test_random_event_sequences_keep_invariants_and_every_job_ends``
"""

from __future__ import annotations

import collections
from typing import Any, Callable, Iterable

from sparklet.actors import SparkletInternalError
from sparklet.runtime._sched_events import (
    TASK_END_STATUSES, CancelTasks, ExecutorAdded, ExecutorLost, KillTask, LaunchTask, MarkPartitionCompleted,
    SubmitTasks, TaskEnded, TaskLocality,
)
from sparklet.runtime._sched_taskset import (
    TASK_TRANSITIONS, ExecutorInfo, TaskAttempt, TaskSetManagerCore, TaskState,
)

__all__ = ["TaskState", "TASK_TRANSITIONS", "TaskAttempt", "ExecutorInfo", "TaskSetManagerCore", "TaskSchedulerCore"]

class TaskSchedulerCore:
    def __init__(self, *, clock: Callable[[], float], max_failures: int = 4, locality_wait: float = 3.0,
                 speculation: bool = False, history: int = 256) -> None:
        if not isinstance(max_failures, int) or max_failures < 1:
            raise ValueError(f"max_failures must be a positive integer, got {max_failures!r}")
        if locality_wait < 0:
            raise ValueError(f"locality_wait must be >= 0 seconds, got {locality_wait!r}")
        if speculation:
            raise ValueError("speculation=True: speculative execution is not implemented yet")
        self._clock = clock
        self.max_failures = max_failures
        self.locality_wait = locality_wait
        # Invariant: live executors, in registration order (the order offers are made in).
        self.executors: dict[str, ExecutorInfo] = {}
        # Invariant: (stage id, attempt) -> its task set, until it is a zombie with nothing running.
        self.task_sets: dict[tuple[int, int], TaskSetManagerCore] = {}
        # Invariant: exactly the running tasks, with their set and executor.
        self.task_id_to_manager: dict[int, TaskSetManagerCore] = {}
        self.task_id_to_executor: dict[int, str] = {}
        self.next_task_id = 0
        # Bounded story: (time, cause, what).
        self.log: collections.deque[tuple[float, Any, str]] = collections.deque(maxlen=history)

    def _note(self, cause: Any, what: str) -> None:
        self.log.append((self._clock(), cause, what))

    # -- commands from the DAG core -------------------------------------------------------------------
    def handle(self, command: Any) -> list:
        """Carry out a DAG core action meant for the task scheduler."""
        if isinstance(command, SubmitTasks):
            return self.submit_tasks(command)
        if isinstance(command, CancelTasks):
            return self.cancel_tasks(command.stage_id, command.stage_attempt, command.reason, cause=command.cause)
        if isinstance(command, MarkPartitionCompleted):
            return self.mark_partition_completed(command.stage_id, command.partition, cause=command.cause)
        raise TypeError(f"TaskSchedulerCore.handle takes SubmitTasks, CancelTasks or MarkPartitionCompleted, got {command!r}")

    def submit_tasks(self, task_set: SubmitTasks) -> list:
        key = (task_set.stage_id, task_set.stage_attempt)
        if key in self.task_sets:
            raise ValueError(f"SubmitTasks: stage {key[0]} attempt {key[1]} was already submitted")
        for other in self._sets_of(task_set.stage_id):
            other.is_zombie = True  # a stage has one live attempt: the newest
            self._remove_if_finished(other)
        manager = TaskSetManagerCore(task_set, clock=self._clock, max_failures=self.max_failures,
                                     locality_wait=self.locality_wait, executors=self.executors)
        self.task_sets[key] = manager
        self._note(task_set.cause, f"submitted {manager!r} with {len(task_set.tasks)} tasks")
        self._remove_if_finished(manager)
        return self.resource_offers(cause=task_set.cause)

    def cancel_tasks(self, stage_id: int, stage_attempt: int | None = None, reason: str = "", *,
                     cause: Any = None) -> list:
        """Make the stage's task sets (one attempt's, or all) zombies and kill their running tasks."""
        actions: list = []
        for manager in self._sets_of(stage_id):
            if stage_attempt is not None and manager.stage_attempt != stage_attempt:
                continue
            manager.is_zombie = True
            for task_id in sorted(manager.running):
                actions.append(KillTask(task_id, self.task_id_to_executor[task_id], stage_id, manager.stage_attempt,
                                        f"Stage cancelled: {reason}", cause=cause))
            self._remove_if_finished(manager)
        self._note(cause, f"cancelled stage {stage_id} attempt {stage_attempt}: {len(actions)} kills")
        return actions

    def mark_partition_completed(self, stage_id: int, partition: int, *, cause: Any = None) -> list:
        for manager in self._sets_of(stage_id):
            if not manager.is_zombie:
                manager.mark_partition_completed(partition, cause)
                self._remove_if_finished(manager)
        return []

    # -- executors ---------------------------------------------------------------------------------------
    def executor_added(self, executor_id: str, host: str, cores: int, *, cause: Any = None) -> list:
        if executor_id in self.executors:
            raise ValueError(f"executor_added: executor {executor_id!r} is already registered")
        if not isinstance(cores, int) or cores < 1:
            raise ValueError(f"executor_added: cores must be a positive integer, got {cores!r}")
        self.executors[executor_id] = ExecutorInfo(executor_id, host, cores)
        for manager in self.task_sets.values():
            manager.recompute_locality()
        self._note(cause, f"executor {executor_id} added on {host} with {cores} cores")
        return [ExecutorAdded(executor_id, host, cores, cause=cause), *self.resource_offers(cause=cause)]

    def executor_lost(self, executor_id: str, reason: str, *, cause: Any = None) -> list:
        info = self.executors.pop(executor_id, None)
        if info is None:
            self._note(cause, f"loss of unknown executor {executor_id} ignored")
            return []
        actions: list = []
        for task_id in sorted(info.running):
            actions.extend(self._task_finished(task_id, "executor_lost", f"Executor {executor_id} lost: {reason}",
                                               cause=cause))
        for manager in self.task_sets.values():
            manager.recompute_locality()
        self._note(cause, f"executor {executor_id} lost: {reason}")
        actions.append(ExecutorLost(executor_id, reason, cause=cause))
        actions.extend(self.resource_offers(cause=cause))
        return actions

    # -- tasks ----------------------------------------------------------------------------------------------
    def task_ended(self, task_id: int, status: str, reason: str = "", *, result: Any = None,
                   accum_updates: Iterable = (), metrics: dict | None = None, map_status: Any = None,
                   fetch_failed_shuffle_id: int | None = None, fetch_failed_map_id: int | None = None,
                   fetch_failed_executor_id: str | None = None, cause: Any = None) -> list:
        """An executor reported a task's end: the ``TaskEnded`` for the DAG core, maybe a
        ``TaskSetFailed``, then launches onto the freed core. Unknown or already ended
        task ids (a duplicate report, or a task of a lost executor) are ignored."""
        if status not in TASK_END_STATUSES:
            raise ValueError(f"task_ended: status must be one of {sorted(TASK_END_STATUSES)}, got {status!r}")
        if task_id not in self.task_id_to_manager:
            self._note(cause, f"ignored {status} of TID {task_id}: not running")
            return []
        actions = self._task_finished(task_id, status, reason, result=result, accum_updates=tuple(accum_updates),
                                      metrics=metrics, map_status=map_status, shuffle_id=fetch_failed_shuffle_id,
                                      map_id=fetch_failed_map_id, map_executor=fetch_failed_executor_id, cause=cause)
        return actions + self.resource_offers(cause=cause)

    def _task_finished(self, task_id: int, status: str, reason: str, *, result: Any = None, accum_updates: tuple = (),
                       metrics: dict | None = None, map_status: Any = None, shuffle_id: int | None = None,
                       map_id: int | None = None, map_executor: str | None = None, cause: Any = None) -> list:
        manager = self.task_id_to_manager.pop(task_id)
        executor_id = self.task_id_to_executor.pop(task_id)
        info = self.executors.get(executor_id)
        if info is not None:
            info.running.discard(task_id)
        index = manager.running[task_id]
        attempt = manager.attempt_by_task_id[task_id]
        ended = TaskEnded(manager.stage_id, manager.stage_attempt, manager.tasks[index].partition, task_id, executor_id,
                          status, result, accum_updates, dict(metrics or {}), reason, map_status, shuffle_id, map_id,
                          map_executor, attempt.attempt_number, cause=cause)
        gave_up = manager.task_ended(task_id, status, reason, result if status == "failed" else None, cause,
                                     self._clock())
        self._remove_if_finished(manager)
        return [ended] if gave_up is None else [ended, gave_up]

    def resource_offers(self, *, cause: Any = None) -> list[LaunchTask]:
        """Fill free cores: task sets in FIFO order, each offered every executor level by
        level, round after round while it launches something (TaskSchedulerImpl)."""
        now = self._clock()
        free = {e: info.cores - len(info.running) for e, info in self.executors.items()}
        launched: list[LaunchTask] = []
        live = sorted((m for m in self.task_sets.values() if not m.is_zombie),
                      key=lambda m: (m.priority, m.stage_id, m.stage_attempt))
        for manager in live:
            if manager.barrier and not manager.can_launch_all(sum(free.values())):  # barrier: all at once or none
                continue
            for max_locality in list(manager.levels):
                while True:
                    launched_now = False
                    for executor_id, info in self.executors.items():
                        if free[executor_id] < 1:
                            continue
                        found = manager.resource_offer(executor_id, info.host, max_locality, now)
                        if found is None:
                            continue
                        launched.append(self._launch(manager, found[0], info, found[1], now, cause))
                        free[executor_id] -= 1
                        launched_now = True
                    if not launched_now:
                        break
        return launched

    def _launch(self, manager: TaskSetManagerCore, index: int, info: ExecutorInfo, locality: TaskLocality,
                now: float, cause: Any) -> LaunchTask:
        task_id = self.next_task_id
        self.next_task_id += 1
        attempt = manager.launch(index, task_id, info.executor_id, info.host, locality, now)
        info.running.add(task_id)
        self.task_id_to_manager[task_id] = manager
        self.task_id_to_executor[task_id] = info.executor_id
        return LaunchTask(task_id, info.executor_id, manager.stage_id, manager.stage_attempt,
                          manager.tasks[index].partition, index, attempt.attempt_number, locality, cause=cause)

    def next_locality_deadline(self) -> float | None:
        """The earliest time a waiting task set may relax its locality: offer again then."""
        deadlines = [d for d in (m.locality_deadline() for m in self.task_sets.values()) if d is not None]
        return min(deadlines) if deadlines else None

    # -- bookkeeping -------------------------------------------------------------------------------------------
    def _sets_of(self, stage_id: int) -> list[TaskSetManagerCore]:
        return [m for (s, _), m in sorted(self.task_sets.items()) if s == stage_id]

    def _remove_if_finished(self, manager: TaskSetManagerCore) -> None:
        key = (manager.stage_id, manager.stage_attempt)
        if manager.is_finished and self.task_sets.get(key) is manager:
            del self.task_sets[key]
            self._note(None, f"{manager!r} finished")

    def statistics(self) -> dict[str, int]:
        return {"executors": len(self.executors), "task_sets": len(self.task_sets),
                "running": len(self.task_id_to_manager),
                "free_cores": sum(i.cores - len(i.running) for i in self.executors.values())}

    def validate_state(self) -> None:
        def fail(message: str) -> None:
            raise SparkletInternalError(f"TaskSchedulerCore: {message}. Please report it.")

        on_executors: dict[int, str] = {}
        for executor_id, info in self.executors.items():
            if len(info.running) > info.cores:
                fail(f"executor {executor_id} runs {len(info.running)} tasks on {info.cores} cores")
            for task_id in info.running:
                on_executors[task_id] = executor_id
        if on_executors != self.task_id_to_executor:
            fail(f"running tasks by executor {sorted(on_executors)} != tracked {sorted(self.task_id_to_executor)}")
        in_sets: dict[int, TaskSetManagerCore] = {}
        live_stages: set[int] = set()
        for key, manager in self.task_sets.items():
            if key != (manager.stage_id, manager.stage_attempt):
                fail(f"{manager!r} registered as {key}")
            if manager.is_finished:
                fail(f"finished {manager!r} is still registered")
            if not manager.is_zombie:
                if manager.stage_id in live_stages:
                    fail(f"stage {manager.stage_id} has two live task sets")
                live_stages.add(manager.stage_id)
            manager.validate_state()
            for task_id in manager.running:
                in_sets[task_id] = manager
        if in_sets.keys() != self.task_id_to_manager.keys() or any(
                self.task_id_to_manager[t] is not m for t, m in in_sets.items()):
            fail("running tasks of task sets disagree with task_id_to_manager")
        if self.task_id_to_manager.keys() != self.task_id_to_executor.keys():
            fail("task_id_to_manager and task_id_to_executor disagree")
