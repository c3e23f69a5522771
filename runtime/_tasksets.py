"""The task scheduler's cross-set core, without I/O (the shared half of Spark's
``TaskSchedulerImpl``).

What it owns. The live executors, their cores and the tasks running on each; which
task sets exist (one per stage attempt, each its own ``TaskSetManager`` actor around a
:class:`~sparklet.runtime._sched_taskset.TaskSetManagerCore`), their FIFO order and
whether they may still launch; task ids, and which set and executor own each running
one; the offer in flight. It never looks inside a task set: pending lists, locality,
attempts and failures are the set's (``_sched_taskset.py``), and outcomes are reported to
the DAG core by the set. :class:`~sparklet.runtime._sched_inline.InlineTaskScheduler`
wires both halves with plain calls (for tests); the ``TaskScheduler`` actor wires them
with messages.

Offers. Free cores are offered to task sets in FIFO order: by ``priority`` (the job id),
then stage id, then attempt. An offer reserves the cores free now and a block of task
ids; the set answers with what it launched (``offer_answered``) and the reservation
ends. ``next_offer()`` makes the rounds: one set at a time, the rest of the cores to the
next set. Something that frees cores or adds work (a task ended, an executor or a set
came, a locality wait ran out) marks the scheduler dirty: a new round starts once the
current one ends. Besides the round, ``offer_to_first(key)`` offers the cores free now
to the set whose task just ended when FIFO order would give them to it anyway (it is
the first set that may launch): the common case is then one exchange per task. Reserved
cores are not free, so a core is never offered twice.

Delay scheduling is the set's (Spark's ``getAllowedLocalityLevel``); the set says when
relaxing would next allow more, and whoever drives it offers again then.

Invariants (``validate_state``; every task scheduler test calls it after every step):
* an executor runs at most ``cores`` tasks; every running task is on a live executor (or
  was on one just lost and is being reported) and in exactly one set's ``running``;
  ``task_id_to_set`` and ``task_id_to_executor`` hold exactly the running tasks;
* a stage has at most one set that may launch (not a zombie): the newest attempt;
* every offer in flight is for a registered set that has not crashed (it may have become
  a zombie since: it then launches nothing), reserves cores that were free and task ids
  below ``next_task_id``; ``reserved`` is the sum of their cores; at most one belongs to
  the round;
* a set stays registered until it is a zombie with nothing running (or it crashed and
  its last task was accounted for);
* an executor excluded on failure (``HealthTracker``) is in no offer made since.

Failure and recovery.
* A task's end frees its core whatever the set makes of it (retry, give up: the set's).
* An executor's loss ends its running tasks with ``executor_lost`` (the router reports
  them to their sets, which re-queue them without counting a failure).
* A set that crashed (its actor failed) launches nothing more: its running tasks are
  killed and their reports only free cores; the DAG core is told ``TaskSetLost`` and
  submits a new attempt of the stage for the partitions still missing.
* An answer to an offer withdrawn meanwhile (the set crashed) still books its launches,
  which are then killed; a launch onto an executor lost meanwhile (or onto an earlier
  incarnation of it) is reported lost at once.

Review checklist (``tests/test_sched_tasksets.py``, ``tests/test_sched_crossset.py``):
* max failures and their reasons: ``test_max_failures_aborts_with_every_reason``
* executor loss does not count: ``test_executor_loss_is_not_a_task_failure``
* delay scheduling: ``test_delay_scheduling_relaxes_levels_with_the_clock``, ``test_node_local_then_any``
* FIFO across jobs: ``test_fifo_across_jobs``, ``test_offers_go_to_sets_in_fifo_order_one_at_a_time``
* zombies: ``test_newer_attempt_makes_older_set_a_zombie``
* kill: ``test_cancel_kills_running_tasks_and_kills_are_not_failures``
* fetch failures are not retried here: ``test_fetch_failure_makes_the_set_a_zombie_without_retry``
* crashed sets and stale answers: ``test_crashed_set_is_withdrawn_and_its_tasks_killed``,
  ``test_answer_after_executor_loss_reports_launches_lost``
* the invariants above: ``validate_state`` after every step of every test (``Harness.step``,
  ``Cluster.check`` in ``test_sched_property.py``), registries empty at the end
  (``assert_idle``), under random sequences in ``test_random_event_sequences_keep_invariants_and_every_job_ends``
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable

from sparklet.actors import SparkletInternalError
from sparklet.runtime._sched_events import ExecutorAdded, ExecutorLost, LaunchTask
from sparklet.runtime._sched_health import HealthTracker
from sparklet.runtime._sched_taskset import (
    TASK_TRANSITIONS, ExecutorInfo, Slot, TaskAttempt, TaskSetManagerCore, TaskState,
)

__all__ = ["TaskState", "TASK_TRANSITIONS", "TaskAttempt", "ExecutorInfo", "Slot", "TaskSetManagerCore",
           "TaskSetEntry", "Offer", "TaskLost", "TaskSchedulerCore"]

TaskSetKey = tuple[int, int]  # (stage id, stage attempt)


@dataclasses.dataclass
class TaskSetEntry:
    """What the scheduler knows of one task set."""

    stage_id: int
    stage_attempt: int
    priority: int
    # Invariant: a zombie is offered nothing; every set of a stage but the newest is one.
    is_zombie: bool = False
    # Its actor failed: its tasks are being killed; it is gone once they are accounted for.
    crashed: bool = False
    # Invariant: the running task ids of this set, as the scheduler booked them.
    running: set[int] = dataclasses.field(default_factory=set)

    @property
    def key(self) -> TaskSetKey:
        return self.stage_id, self.stage_attempt

    @property
    def order(self) -> tuple[int, int, int]:
        return self.priority, self.stage_id, self.stage_attempt


@dataclasses.dataclass(frozen=True)
class Offer:
    """Free cores offered to one task set, with the task ids reserved for its launches."""

    offer_id: int
    key: TaskSetKey
    slots: tuple[Slot, ...]
    first_task_id: int

    @property
    def cores(self) -> int:
        return sum(slot.free for slot in self.slots)


@dataclasses.dataclass(frozen=True)
class TaskLost:
    """A running task's executor is gone: report ``executor_lost`` to its set."""

    key: TaskSetKey
    task_id: int
    executor_id: str
    reason: str


class TaskSchedulerCore:
    def __init__(self, *, clock: Callable[[], float], health: HealthTracker | None = None, history: int = 256) -> None:
        self._clock = clock
        # excludeOnFailure across the application: excluded executors are offered nothing.
        self.health = health
        # Invariant: live executors, in registration order (the order offers list them in).
        self.executors: dict[str, ExecutorInfo] = {}
        self._incarnations = 0
        # Invariant: registered task sets, until finished (see the module's invariants).
        self.task_sets: dict[TaskSetKey, TaskSetEntry] = {}
        # Invariant: exactly the running tasks, with their set and executor.
        self.task_id_to_set: dict[int, TaskSetKey] = {}
        self.task_id_to_executor: dict[int, str] = {}
        # Invariant: above every id booked or reserved by an offer in flight.
        self.next_task_id = 0
        # Invariant: offers not answered yet; the cores they reserve (per executor) are not free.
        self.offers_in_flight: dict[int, Offer] = {}
        self.reserved: collections.Counter[str] = collections.Counter()
        # Invariant: at most one offer of the round in flight; sets still to be offered in this round.
        self.round_offer: Offer | None = None
        self._next_offer_id = 0
        self._round: list[TaskSetKey] = []
        self.dirty = False
        # Bounded story: (time, cause, what).
        self.log: collections.deque[tuple[float, Any, str]] = collections.deque(maxlen=history)

    def _note(self, cause: Any, what: str) -> None:
        self.log.append((self._clock(), cause, what))

    # -- executors ----------------------------------------------------------------------------------
    def executor_hosts(self) -> dict[str, str]:
        return {e: info.host for e, info in self.executors.items()}

    def executor_added(self, executor_id: str, host: str, cores: int, *, cause: Any = None) -> list:
        """Returns the ``ExecutorAdded`` for the DAG core; the router tells every set the new hosts."""
        if executor_id in self.executors:
            raise ValueError(f"executor_added: executor {executor_id!r} is already registered")
        if not isinstance(cores, int) or cores < 1:
            raise ValueError(f"executor_added: cores must be a positive integer, got {cores!r}")
        self._incarnations += 1
        self.executors[executor_id] = ExecutorInfo(executor_id, host, cores, incarnation=self._incarnations)
        self.dirty = True
        self._note(cause, f"executor {executor_id} added on {host} with {cores} cores")
        return [ExecutorAdded(executor_id, host, cores, cause=cause)]

    def executor_lost(self, executor_id: str, reason: str, *, cause: Any = None) -> list:
        """``TaskLost`` for each task it ran (report them to their sets first), then the
        ``ExecutorLost`` for the DAG core. An unknown executor: nothing."""
        info = self.executors.pop(executor_id, None)
        if info is None:
            self._note(cause, f"loss of unknown executor {executor_id} ignored")
            return []
        actions: list = self.health.executor_removed(executor_id) if self.health is not None else []
        for task_id in sorted(info.running):
            key = self._forget_task(task_id).key
            actions.append(TaskLost(key, task_id, executor_id, f"Executor {executor_id} lost: {reason}"))
        self._note(cause, f"executor {executor_id} lost: {reason}")
        actions.append(ExecutorLost(executor_id, reason, cause=cause))
        return actions

    # -- task sets ------------------------------------------------------------------------------------
    def add_task_set(self, stage_id: int, stage_attempt: int, priority: int, *, cause: Any = None) -> list[TaskSetKey]:
        """Register a set; returns the keys of older sets of its stage, now zombies (a
        stage has one live attempt: the newest)."""
        key = (stage_id, stage_attempt)
        if key in self.task_sets:
            raise ValueError(f"SubmitTasks: stage {stage_id} attempt {stage_attempt} was already submitted")
        superseded = []
        for other in self.sets_of(stage_id):
            if not other.is_zombie:
                other.is_zombie = True
                superseded.append(other.key)
        self.task_sets[key] = TaskSetEntry(stage_id, stage_attempt, priority)
        self.dirty = True
        self._note(cause, f"task set {stage_id}.{stage_attempt} registered")
        return superseded

    def set_state(self, key: TaskSetKey, *, is_zombie: bool, is_finished: bool) -> bool:
        """What the set said of itself after handling something. Returns True when the set
        is finished and has been unregistered (its actor may stop)."""
        entry = self.task_sets.get(key)
        if entry is None:
            return False
        if is_zombie:
            entry.is_zombie = True
        if is_finished and not entry.running:
            self._unregister(entry)
            return True
        return False

    def set_crashed(self, key: TaskSetKey, *, cause: Any = None) -> list[tuple[int, str]]:
        """The set's actor failed. Returns its running ``(task id, executor id)`` to kill."""
        entry = self.task_sets.get(key)
        if entry is None or entry.crashed:
            return []
        entry.crashed = entry.is_zombie = True
        self._withdraw_offers(key)
        self._note(cause, f"task set {key[0]}.{key[1]} crashed with {len(entry.running)} tasks running")
        running = [(task_id, self.task_id_to_executor[task_id]) for task_id in sorted(entry.running)]
        if not entry.running:
            self._unregister(entry)
        return running

    def sets_of(self, stage_id: int) -> list[TaskSetEntry]:
        return [entry for key, entry in sorted(self.task_sets.items()) if key[0] == stage_id]

    def _withdraw_offers(self, key: TaskSetKey) -> None:
        """The set will not answer (crashed), or launches nothing (finished): free its cores."""
        for offer in [o for o in self.offers_in_flight.values() if o.key == key]:
            self._close_offer(offer)
            self.dirty = True

    def _close_offer(self, offer: Offer) -> None:
        if self.offers_in_flight.pop(offer.offer_id, None) is None:
            return
        self.reserved.subtract({slot.executor_id: slot.free for slot in offer.slots})
        self.reserved += collections.Counter()  # drop zero counts
        if self.round_offer is offer:
            self.round_offer = None

    def _unregister(self, entry: TaskSetEntry) -> None:
        del self.task_sets[entry.key]
        self._withdraw_offers(entry.key)
        self._round = [k for k in self._round if k != entry.key]
        self._note(None, f"task set {entry.stage_id}.{entry.stage_attempt} unregistered")

    # -- offers ------------------------------------------------------------------------------------------
    def revive(self) -> None:
        """Offer again (a locality wait ran out, or a set has new work)."""
        self.dirty = True

    def free_slots(self) -> tuple[Slot, ...]:
        health = self.health
        reserved = self.reserved
        slots = []
        for e, info in self.executors.items():
            free = info.cores - len(info.running) - reserved[e]
            if free > 0 and (health is None or not health.is_excluded(e)):
                slots.append(Slot(e, info.host, free, info.incarnation))
        return tuple(slots)

    def _make_offer(self, key: TaskSetKey, slots: tuple[Slot, ...]) -> Offer:
        self._next_offer_id += 1
        offer = Offer(self._next_offer_id, key, slots, self.next_task_id)
        self.next_task_id += offer.cores  # reserved; handed back if the offer is the latest (see offer_answered)
        self.offers_in_flight[offer.offer_id] = offer
        self.reserved.update({slot.executor_id: slot.free for slot in slots})
        return offer

    def offer_to_first(self, key: TaskSetKey) -> Offer | None:
        """An offer of the free cores to ``key`` at once, beside any offer in flight, if
        FIFO order would give them to it anyway (it is the first set that may launch):
        a task's end and its set's next launch are then one exchange."""
        entry = self.task_sets.get(key)
        if entry is None or entry.is_zombie:
            return None
        first = min((e for e in self.task_sets.values() if not e.is_zombie), key=lambda e: e.order)
        if first is not entry:
            return None
        slots = self.free_slots()
        return self._make_offer(key, slots) if slots else None

    def next_offer(self) -> Offer | None:
        """The next offer of the round, or None (one in flight, no free core, or nobody left to offer)."""
        if self.round_offer is not None:
            return None
        while True:
            if not self._round:
                if not self.dirty:
                    return None
                self.dirty = False
                live = sorted((e for e in self.task_sets.values() if not e.is_zombie), key=lambda e: e.order)
                self._round = [e.key for e in live]
                if not self._round:
                    return None
            slots = self.free_slots()
            if not slots:
                self._round.clear()  # a freed core marks the scheduler dirty again
                return None
            key = self._round.pop(0)
            entry = self.task_sets.get(key)
            if entry is None or entry.is_zombie:
                continue
            self.round_offer = self._make_offer(key, slots)
            return self.round_offer

    def offer_answered(self, offer: Offer, launches: list[LaunchTask] | tuple, *, cause: Any = None) -> list[TaskLost]:
        """Book what the set launched on ``offer``. Returns launches onto executors gone
        meanwhile (report them lost to the set). An answer to a withdrawn offer books its
        launches too: the caller kills them (their set crashed)."""
        if offer.offer_id in self.offers_in_flight:
            if offer is not self.round_offer and len(launches) < offer.cores:
                self.dirty = True  # a direct offer left cores unused: a round may place them elsewhere
            self._close_offer(offer)
            if self.next_task_id == offer.first_task_id + offer.cores:
                self.next_task_id = offer.first_task_id + len(launches)  # the latest reservation: ids unused go back
        if not launches:
            return []
        slots = {slot.executor_id: slot for slot in offer.slots}
        used: collections.Counter[str] = collections.Counter(launch.executor_id for launch in launches)
        for k, launch in enumerate(launches):
            if launch.task_id != offer.first_task_id + k or (launch.stage_id, launch.stage_attempt) != offer.key:
                raise SparkletInternalError(f"offer {offer.offer_id} to {offer.key}: launch {launch} breaks the "
                                            f"reserved ids from {offer.first_task_id}. Please report it.")
        for executor_id, count in used.items():
            if executor_id not in slots or count > slots[executor_id].free:
                raise SparkletInternalError(f"offer {offer.offer_id} to {offer.key}: {count} launches on {executor_id}, "
                                            f"offered {slots.get(executor_id)}. Please report it.")
        entry = self.task_sets.get(offer.key)
        if entry is None:
            raise SparkletInternalError(f"offer {offer.offer_id}: {len(launches)} launches by unregistered set "
                                        f"{offer.key}. Please report it.")
        lost: list[TaskLost] = []
        for launch in launches:
            info = self.executors.get(launch.executor_id)
            if info is None or info.incarnation != slots[launch.executor_id].incarnation:
                lost.append(TaskLost(offer.key, launch.task_id, launch.executor_id,
                                     f"Executor {launch.executor_id} lost before task {launch.task_id} reached it"))
                continue
            info.running.add(launch.task_id)
            entry.running.add(launch.task_id)
            self.task_id_to_set[launch.task_id] = offer.key
            self.task_id_to_executor[launch.task_id] = launch.executor_id
        self._note(cause, f"offer {offer.offer_id} to {offer.key}: {len(launches)} launched")
        return lost

    # -- excludeOnFailure ---------------------------------------------------------------------------------
    def task_set_succeeded(self, failures_by_executor: dict[str, int], *, cause: Any = None) -> list:
        """A set finished with every task done: ``ExecutorExcludedInfo`` for executors its
        failures (with earlier ones) put past the application's limit."""
        if self.health is None or not failures_by_executor:
            return []
        excluded = self.health.task_set_succeeded(failures_by_executor)
        for info in excluded:
            self._note(cause, f"executor {info.executor_id} excluded after {info.task_failures} task failures")
        return excluded

    def expire_exclusions(self, *, cause: Any = None) -> list:
        """``ExecutorUnexcludedInfo`` for exclusions whose time is up; their cores are offered again."""
        if self.health is None:
            return []
        ended = self.health.expire()
        if ended:
            self.dirty = True
        return ended

    def next_exclusion_expiry(self) -> float | None:
        return self.health.next_expiry() if self.health is not None else None

    # -- tasks ----------------------------------------------------------------------------------------------
    def task_ended(self, task_id: int, *, cause: Any = None) -> TaskSetEntry | None:
        """A running task ended (any status): its core is free. Returns its set's entry
        (None for an unknown or already ended task: a duplicate, or a lost executor's)."""
        if task_id not in self.task_id_to_set:
            self._note(cause, f"ignored the end of TID {task_id}: not running")
            return None
        executor_id = self.task_id_to_executor[task_id]
        info = self.executors.get(executor_id)
        if info is not None:
            info.running.discard(task_id)
        entry = self._forget_task(task_id)
        self.dirty = True
        return entry

    def _forget_task(self, task_id: int) -> TaskSetEntry:
        key = self.task_id_to_set.pop(task_id)
        del self.task_id_to_executor[task_id]
        entry = self.task_sets[key]
        entry.running.discard(task_id)
        if entry.crashed and not entry.running:
            self._unregister(entry)  # its last task is accounted for
        return entry

    # -- checking ---------------------------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        return {"executors": len(self.executors), "task_sets": len(self.task_sets),
                "running": len(self.task_id_to_set),
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
        in_sets: dict[int, TaskSetKey] = {}
        live_stages: set[int] = set()
        for key, entry in self.task_sets.items():
            if key != entry.key:
                fail(f"task set {entry.key} registered as {key}")
            if entry.crashed and not entry.running:
                fail(f"crashed task set {key} with nothing running is still registered")
            if not entry.is_zombie:
                if entry.stage_id in live_stages:
                    fail(f"stage {entry.stage_id} has two live task sets")
                live_stages.add(entry.stage_id)
            for task_id in entry.running:
                in_sets[task_id] = key
        if in_sets != self.task_id_to_set:
            fail("running tasks of task sets disagree with task_id_to_set")
        if self.task_id_to_set.keys() != self.task_id_to_executor.keys():
            fail("task_id_to_set and task_id_to_executor disagree")
        reserved: collections.Counter[str] = collections.Counter()
        for offer_id, offer in self.offers_in_flight.items():
            entry = self.task_sets.get(offer.key)
            if offer_id != offer.offer_id or entry is None or entry.crashed:
                fail(f"offer {offer.offer_id} in flight to {offer.key}, which is gone")
            if offer.first_task_id + offer.cores > self.next_task_id:
                fail(f"offer {offer.offer_id} reserved ids up to {offer.first_task_id + offer.cores}, next is {self.next_task_id}")
            reserved.update({slot.executor_id: slot.free for slot in offer.slots})
        if reserved != self.reserved:
            fail(f"reserved cores {dict(self.reserved)} != those of the offers in flight {dict(reserved)}")
        for executor_id, count in reserved.items():
            info = self.executors.get(executor_id)
            if info is not None and len(info.running) + count > info.cores:
                fail(f"offers reserve {count} cores of {executor_id}, which runs {len(info.running)} of {info.cores}")
        if self.round_offer is not None and self.round_offer.offer_id not in self.offers_in_flight:
            fail(f"the round's offer {self.round_offer.offer_id} is not in flight")
        if any(k not in self.task_sets for k in self._round):
            fail(f"round {self._round} names unregistered sets")
        if self.health is not None:
            self.health.validate_state()
