"""The barrier coordinator: ``barrier()`` and ``allGather()`` across a barrier stage's tasks
(Spark's ``BarrierCoordinator``).

What it owns. For each barrier stage attempt that has made a sync call and not ended, the
call in progress: its number (``epoch``: a task's first call is 0, its next 1, ...), its
kind (``barrier`` or ``allGather``) and the tasks waiting in it with their messages. When
the last of the attempt's tasks arrives, every waiter gets the messages ordered by
partition id and the epoch moves on. It also remembers the attempts that ended (bounded),
so that a straggler's call fails at once instead of waiting for a timeout.

Driving it. :class:`BarrierSyncCore` is sans-I/O: ``request``, ``timed_out`` and
``attempt_ended`` return actions (``SyncReply`` to a waiter, ``StartSyncTimer``,
``CancelSyncTimer``). :class:`BarrierCoordinator` is the driver actor around it: tasks ask
it with :class:`RequestToSync` from their executor's task threads (the reply is deferred
until the call completes); a timer per attempt enforces ``barrier.sync.timeout``; it learns
that a stage attempt ended from the listener bus's ``StageCompleted`` events, as Spark's
does, and fails that attempt's waiters then.

Invariants (``validate_state``; the unit tests call it after every step):
* an attempt in progress has ``0 <= len(waiting) < num_tasks`` and a timer running exactly
  while someone waits;
* every waiter of an attempt sits in its current epoch with its current kind;
* an attempt is never both in progress and ended.

Failure. A sync call fails (``ok`` false, with a message naming the stage attempt and the
epoch) when: the tasks do not all arrive within the timeout (the attempt's every waiter
fails: the stage attempt is doomed, and the DAG scheduler runs it again); tasks mix
``barrier()`` and ``allGather()`` in one call; a task disagrees about the number of tasks;
a call comes from an epoch that already finished (a task not killed in time); the attempt
already ended. Replies are ``(ok, messages, error)`` tuples, never exceptions, so they
cross processes as plain values.

Review checklist (``tests/test_barrier_units.py``):
* all-arrive release in partition order: ``test_all_gather_releases_everyone_in_partition_order``
* epochs advance, stale epochs fail: ``test_epochs_advance_and_a_stale_epoch_fails``
* timeout fails every waiter: ``test_timeout_fails_every_waiter_and_ends_the_attempt``
* mixed kinds fail: ``test_mixing_barrier_and_all_gather_fails_the_call``
* an ended attempt releases its waiters: ``test_attempt_end_releases_waiters_and_late_calls_fail``
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from sparklet.actors import Actor, SparkletInternalError, handler, message
from sparklet.runtime import _listener as listen

__all__ = ["RequestToSync", "StageAttemptEnded", "BarrierSyncTimedOut", "SyncReply", "StartSyncTimer",
           "CancelSyncTimer", "BarrierSyncCore", "BarrierCoordinator", "SYNC_METHODS"]

SYNC_METHODS = frozenset({"barrier", "allGather"})
ENDED_ATTEMPTS_KEPT = 1024


# -- messages ---------------------------------------------------------------------------------------

@message(tag="sparklet.RequestToSync")
class RequestToSync:
    """A barrier task's ``barrier()`` / ``allGather(message)`` call number ``epoch``."""

    stage_id: int
    stage_attempt: int
    num_tasks: int
    partition: int
    task_id: int
    epoch: int
    method: str
    message: str = ""


@message(tag="sparklet.StageAttemptEnded")
class StageAttemptEnded:
    stage_id: int
    stage_attempt: int
    reason: str


@message(tag="sparklet.BarrierSyncTimedOut")
class BarrierSyncTimedOut:
    stage_id: int
    stage_attempt: int
    epoch: int


# -- actions of the core ------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class SyncReply:
    requester: Any
    ok: bool
    messages: tuple[str, ...] = ()
    error: str = ""


@dataclasses.dataclass(frozen=True)
class StartSyncTimer:
    key: tuple[int, int]
    epoch: int
    delay: float


@dataclasses.dataclass(frozen=True)
class CancelSyncTimer:
    key: tuple[int, int]


def barrier_id(key: tuple[int, int]) -> str:
    return f"Stage {key[0]} (Attempt {key[1]})"


class _AttemptSync:
    def __init__(self, num_tasks: int) -> None:
        self.num_tasks = num_tasks
        self.epoch = 0
        self.method: str | None = None
        # Invariant: partition -> (requester, message, task id) of the tasks waiting in `epoch`.
        self.waiting: dict[int, tuple[Any, str, int]] = {}


class BarrierSyncCore:
    def __init__(self, *, timeout: float) -> None:
        if timeout < 0:
            raise ValueError(f"barrier.sync.timeout must be >= 0 seconds, got {timeout!r}")
        self.timeout = timeout
        # Invariant: (stage, attempt) -> the sync state of an attempt in progress.
        self.attempts: dict[tuple[int, int], _AttemptSync] = {}
        # Invariant: bounded, oldest first; (stage, attempt) -> why it ended; disjoint from attempts.
        self.ended: collections.OrderedDict[tuple[int, int], str] = collections.OrderedDict()
        # Invariant: the attempts whose timer runs: exactly those with waiters.
        self.timers: set[tuple[int, int]] = set()

    def request(self, req: RequestToSync, requester: Any) -> list:
        key = (req.stage_id, req.stage_attempt)
        who = f"task {req.task_id} (partition {req.partition})"
        if req.method not in SYNC_METHODS:
            return [SyncReply(requester, False, error=f"unknown barrier sync method {req.method!r} from {who}")]
        if key in self.ended:
            return [SyncReply(requester, False, error=f"{barrier_id(key)} has already ended ({self.ended[key]}); "
                                                     f"the {req.method}() call of {who} cannot complete")]
        state = self.attempts.get(key)
        if state is None:
            if req.num_tasks < 1:
                return [SyncReply(requester, False, error=f"{who} says its stage has {req.num_tasks} tasks")]
            state = self.attempts[key] = _AttemptSync(req.num_tasks)
        if req.num_tasks != state.num_tasks:
            return [SyncReply(requester, False, error=f"Number of tasks of {barrier_id(key)} is {req.num_tasks} from "
                                                     f"{who}, previously it was {state.num_tasks}.")]
        if req.epoch != state.epoch:
            return [SyncReply(requester, False, error=(
                f"The request to sync of {barrier_id(key)} with barrier epoch {req.epoch} does not match the current "
                f"epoch {state.epoch}: that call has already finished. Maybe {who} is not properly killed."))]
        if req.partition in state.waiting:
            return [SyncReply(requester, False, error=f"{who} of {barrier_id(key)} is already waiting in barrier "
                                                     f"epoch {state.epoch} (a second copy of the task?)")]
        actions: list = []
        if not state.waiting:
            state.method = req.method
            self.timers.add(key)
            actions.append(StartSyncTimer(key, state.epoch, self.timeout))
        elif req.method != state.method:
            reason = (f"Different barrier sync types found for the sync {barrier_id(key)} epoch {state.epoch}: "
                      f"{state.method}, {req.method} (from {who}). Please use the same barrier sync type: every "
                      f"task must call barrier() and allGather() in the same order.")
            return actions + [SyncReply(requester, False, error=reason)] + self._end(key, reason)
        state.waiting[req.partition] = (requester, req.message, req.task_id)
        if len(state.waiting) < state.num_tasks:
            return actions
        messages = tuple(state.waiting[p][1] for p in sorted(state.waiting))
        actions += [SyncReply(state.waiting[p][0], True, messages) for p in sorted(state.waiting)]
        state.waiting.clear()
        state.epoch += 1
        self.timers.discard(key)
        actions.append(CancelSyncTimer(key))
        return actions

    def timed_out(self, stage_id: int, stage_attempt: int, epoch: int) -> list:
        key = (stage_id, stage_attempt)
        state = self.attempts.get(key)
        if state is None or state.epoch != epoch or not state.waiting:
            return []  # that call completed (or the attempt ended) before the timer fired
        arrived = sorted(state.waiting)
        reason = (f"The coordinator didn't get all barrier sync requests for barrier epoch {epoch} from "
                  f"{barrier_id(key)} within {self.timeout:g} second(s) (barrier.sync.timeout): {len(arrived)} of "
                  f"{state.num_tasks} tasks arrived (partitions {arrived}).")
        return self._end(key, reason)

    def attempt_ended(self, stage_id: int, stage_attempt: int, reason: str) -> list:
        key = (stage_id, stage_attempt)
        if key in self.ended:
            return []
        return self._end(key, f"{barrier_id(key)} has finished: {reason}")

    def _end(self, key: tuple[int, int], reason: str) -> list:
        """Fail every waiter of the attempt; later calls from it fail at once."""
        state = self.attempts.pop(key, None)
        actions: list = []
        if state is not None:
            actions += [SyncReply(requester, False, error=reason) for requester, _, _ in state.waiting.values()]
        if key in self.timers:
            self.timers.discard(key)
            actions.append(CancelSyncTimer(key))
        self.ended[key] = reason
        while len(self.ended) > ENDED_ATTEMPTS_KEPT:
            self.ended.popitem(last=False)
        return actions

    def fail_everyone(self, reason: str) -> list:
        """The coordinator is stopping: every waiter fails."""
        actions: list = []
        for key in list(self.attempts):
            actions += self._end(key, reason)
        return actions

    def validate_state(self) -> None:
        def fail(what: str) -> None:
            raise SparkletInternalError(f"BarrierSyncCore: {what}. Please report it.")

        if self.attempts.keys() & self.ended.keys():
            fail(f"attempts both in progress and ended: {sorted(self.attempts.keys() & self.ended.keys())}")
        with_waiters = {key for key, state in self.attempts.items() if state.waiting}
        if with_waiters != self.timers:
            fail(f"timers run for {sorted(self.timers)} but attempts {sorted(with_waiters)} have waiters")
        for key, state in self.attempts.items():
            if not 0 <= len(state.waiting) < state.num_tasks:
                fail(f"{barrier_id(key)} has {len(state.waiting)} waiters of {state.num_tasks} tasks")
            if state.waiting and state.method not in SYNC_METHODS:
                fail(f"{barrier_id(key)} has waiters but no sync kind")
        if len(self.ended) > ENDED_ATTEMPTS_KEPT:
            fail(f"{len(self.ended)} ended attempts kept")


# -- the actor ------------------------------------------------------------------------------------------

class BarrierCoordinator(Actor):
    """The driver's actor around :class:`BarrierSyncCore`."""

    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._bus = shared.listener_bus
        self.core = BarrierSyncCore(timeout=shared.conf["barrier.sync.timeout"])

    def pre_start(self) -> None:
        self._bus.add_internal(self._on_listener_event)

    def post_stop(self) -> None:
        self._bus.remove_internal(self._on_listener_event)
        self._carry_out(self.core.fail_everyone("the barrier coordinator stopped"))

    def _on_listener_event(self, event: Any) -> None:
        # Called on the posting thread: the DAG scheduler's, on this loop.
        if isinstance(event, listen.StageCompleted) and event.status != "skipped":
            why = event.status + (f": {event.failure_reason}" if event.failure_reason else "")
            self.ref.tell(StageAttemptEnded(event.stage_id, event.attempt, why))

    @handler(RequestToSync)
    def sync(self, msg: RequestToSync) -> None:
        reply = self.context.defer_reply()
        if reply is None:
            return  # a tell: nobody to answer
        self._carry_out(self.core.request(msg, reply))

    @handler(BarrierSyncTimedOut)
    def timed_out(self, msg: BarrierSyncTimedOut) -> None:
        self._carry_out(self.core.timed_out(msg.stage_id, msg.stage_attempt, msg.epoch))

    @handler(StageAttemptEnded)
    def attempt_ended(self, msg: StageAttemptEnded) -> None:
        self._carry_out(self.core.attempt_ended(msg.stage_id, msg.stage_attempt, msg.reason))

    def _carry_out(self, actions: list) -> None:
        for action in actions:
            if isinstance(action, SyncReply):
                if not action.requester.done():
                    action.requester.set_result((action.ok, action.messages, action.error))
            elif isinstance(action, StartSyncTimer):
                stage_id, attempt = action.key
                self.timers.start_single(("sync", action.key), BarrierSyncTimedOut(stage_id, attempt, action.epoch),
                                         action.delay)
            elif isinstance(action, CancelSyncTimer):
                self.timers.cancel(("sync", action.key))
