"""Fault plans: faults addressed precisely, decided deterministically.

A :class:`FaultPlan` is a list of :class:`Fault` and a seed. Executors consult it at
fixed points (a task about to run; a task started or finished on that executor; a stage's
map output written), so a fault fires at the same logical point in every run. A fault
with ``probability < 1`` fires or not by a hash of ``(seed, fault index, where)``, never by
a shared random stream, so the same seed and plan give the same schedule however tasks
interleave. Every fault that fires is reported to the driver and shows up as a
``FaultInjected`` listener event (and in the actor events when tracing is on).

Kinds:

=====================  ==============================================================
``raise``              the task raises :class:`InjectedFault` (``message``)
``hang``               the task stalls for ``seconds`` (a kill still stops it)
``slow``               the task sleeps ``seconds`` first, then runs (a straggler)
``drop_status``        the task runs, but its status update never reaches the driver
``kill_executor``      the executor's process gets SIGKILL (in-process executors crash)
``silence_executor``   the executor stops sending heartbeats
``lose_block``         a cached block (``block``, e.g. ``rdd_3_0``) vanishes
``lose_shuffle_output``  a map output (``shuffle``, ``map_id``) vanishes from disk right
                       after it is first written (once: its re-run survives)
``crash_actor``        the driver crashes a runtime actor (``actor``, one of
                       :data:`ACTOR_ROLES`) by sending it ``Kill``: its supervisor
                       restarts it and it rebuilds its state (see ``docs/recovery.md``)
=====================  ==============================================================

Message and link faults (``drop_message``, ``delay_message``, ``duplicate_message``,
``reorder_messages``, ``cut_link``, ``swizzle_clog``) are applied by the interposer of
:mod:`sparklet.runtime._msgfaults` (see docs/message-faults.md); they are addressed by
``message`` (a message type name glob), ``sender`` / ``recipient`` (actor path globs or role
names such as ``executor:exec-1``, ``task-scheduler``, ``driver``), ``nth`` and ``count``.

Task faults are addressed by ``stage``, ``partition`` and ``attempt`` (``None``: any).
Executor faults and ``lose_block`` fire once per executor (a replacement process does not
fire them again) on ``executor`` (``None``: any) at ``before_task=N``
(before its Nth task starts, counting from 1), ``after_task=N`` (after its Nth task
ended) or ``after_stage_outputs=S`` (after it wrote a map output of stage S).

``crash_actor`` faults are injected by the driver (:mod:`sparklet.runtime._driver_faults`),
once each, at a point of the scheduler's own story: ``after_task_ends=N`` (right after the
Nth ``TaskEnd`` of stage ``stage``, or of any stage when ``stage`` is None) or
``at_stage_submitted=S`` (when attempt ``attempt`` of stage S is submitted; None: any
attempt). ``task-set-manager`` is addressed by ``stage`` and ``attempt`` (its actor is
``.../task-scheduler/stage-<stage>.<attempt>``); ``block-manager`` by ``executor``.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any, Iterable

__all__ = ["Fault", "FaultPlan", "InjectedFault", "TASK_KINDS", "EXECUTOR_KINDS", "DRIVER_KINDS", "ACTOR_ROLES",
           "MESSAGE_KINDS", "LINK_KINDS"]

TASK_KINDS = frozenset({"raise", "hang", "slow"})
STATUS_KINDS = frozenset({"drop_status"})
EXECUTOR_KINDS = frozenset({"kill_executor", "silence_executor", "lose_block", "lose_shuffle_output"})
DRIVER_KINDS = frozenset({"crash_actor"})
# The runtime actors a crash_actor fault can crash, by role.
ACTOR_ROLES = ("dag-scheduler", "task-scheduler", "task-set-manager", "block-manager-master", "map-output-tracker",
               "job-manager", "block-manager")

# -- message and link faults (applied by runtime/_msgfaults.py) ----------------------------------------
MESSAGE_KINDS = frozenset({"drop_message", "delay_message", "duplicate_message", "reorder_messages"})
LINK_KINDS = frozenset({"cut_link", "swizzle_clog"})
_ANY_MESSAGE_DEFAULT = "injected fault"  # Fault.message's default: for link faults it means any type


def _check_message_fault(fault: "Fault") -> None:
    """Validate the fields of a message or link fault (or refuse them on other kinds)."""
    def bad(field: str, why: str) -> None:
        raise ValueError(f"Fault({fault.kind!r}): {field}={getattr(fault, field)!r} {why}")

    if fault.kind not in MESSAGE_KINDS | LINK_KINDS:
        for field in ("sender", "recipient", "nth", "count"):
            if getattr(fault, field) is not None:
                bad(field, "applies to message and link faults only")
        return
    for field in ("stage", "partition", "executor", "before_task", "after_task", "after_stage_outputs", "block",
                  "shuffle", "map_id"):
        if getattr(fault, field) is not None:
            bad(field, "does not apply: address a message fault with message, sender, recipient, nth, count")
    if fault.kind in MESSAGE_KINDS and fault.message == _ANY_MESSAGE_DEFAULT:
        raise ValueError(f"Fault({fault.kind!r}) needs message='<MessageType>' (a type name glob, e.g. "
                         "'StatusUpdate', 'reply:FetchSegments', '*')")
    for field in ("sender", "recipient"):
        if getattr(fault, field) is not None and not isinstance(getattr(fault, field), str):
            bad(field, "must be an actor path glob or a role name such as 'executor:exec-1' or 'task-scheduler'")
    if fault.nth is not None and (not isinstance(fault.nth, int) or fault.nth < 1):
        bad("nth", "counts matching messages from 1")
    if fault.count is not None and (not isinstance(fault.count, int) or fault.count < 1):
        bad("count", "must be an int >= 1")
    if fault.kind == "delay_message" and fault.seconds <= 0:
        bad("seconds", "must be positive for a delay")
    if fault.kind == "reorder_messages" and fault.count is not None and fault.count < 2:
        bad("count", "must be at least 2: that many messages are held and released out of order")
    if fault.kind == "cut_link":
        if fault.sender is None or fault.recipient is None:
            raise ValueError("Fault('cut_link') needs sender and recipient: the two ends of the link "
                             "(it fires on the nth matching message from sender to recipient)")
        if fault.seconds <= 0:
            bad("seconds", "must be positive: how long the link stays cut")
    if fault.kind == "swizzle_clog":
        if fault.seconds <= 0:
            bad("seconds", "must be positive: the spacing between clogging (then releasing) executors")
        if fault.sender is not None or fault.recipient is not None:
            bad("sender" if fault.sender is not None else "recipient",
                "does not apply: swizzle_clog picks its executors from the seed (count says how many)")


class InjectedFault(Exception):
    """Raised by a task because the fault plan said so."""


@dataclasses.dataclass(frozen=True)
class Fault:
    kind: str
    stage: int | None = None
    partition: int | None = None
    attempt: int | None = 0
    executor: str | None = None
    before_task: int | None = None
    after_task: int | None = None
    after_stage_outputs: int | None = None
    block: str | None = None
    shuffle: int | None = None
    map_id: int | None = None
    seconds: float = 0.0
    message: str = "injected fault"
    probability: float = 1.0
    # message and link faults
    sender: str | None = None
    recipient: str | None = None
    nth: int | None = None
    count: int | None = None
    # driver faults (crash_actor)
    actor: str | None = None
    after_task_ends: int | None = None
    at_stage_submitted: int | None = None

    def __post_init__(self) -> None:
        def bad(field: str, why: str) -> None:
            raise ValueError(f"Fault({self.kind!r}): {field}={getattr(self, field)!r} {why}")

        known = TASK_KINDS | STATUS_KINDS | EXECUTOR_KINDS | DRIVER_KINDS | MESSAGE_KINDS | LINK_KINDS
        if self.kind not in known:
            raise ValueError(f"unknown fault kind {self.kind!r}; known: {', '.join(sorted(known))}")
        if not 0.0 <= self.probability <= 1.0:
            bad("probability", "must be within [0, 1]")
        if self.seconds < 0:
            bad("seconds", "must not be negative")
        _check_message_fault(self)
        if self.kind in ("hang", "slow") and self.seconds <= 0:
            bad("seconds", f"must be positive for a {self.kind} fault")
        points = [p for p in ("before_task", "after_task", "after_stage_outputs") if getattr(self, p) is not None]
        driver_points = [p for p in ("after_task_ends", "at_stage_submitted") if getattr(self, p) is not None]
        if self.kind in DRIVER_KINDS:
            self._check_crash_actor(bad, points, driver_points)
            return
        if self.actor is not None:
            bad("actor", "applies to crash_actor faults only")
        if driver_points:
            bad(driver_points[0], "applies to crash_actor faults only")
        if self.kind == "lose_shuffle_output":
            if points:
                bad(points[0], "does not apply: a lost shuffle output vanishes right after it is first written")
        elif self.kind in EXECUTOR_KINDS:
            if len(points) != 1:
                raise ValueError(f"Fault({self.kind!r}) needs exactly one of before_task, after_task, "
                                 f"after_stage_outputs; got {points or 'none'}")
            for p in ("before_task", "after_task"):
                if getattr(self, p) is not None and getattr(self, p) < 1:
                    bad(p, "counts tasks from 1")
        elif points:
            bad(points[0], "applies to executor faults only; address a task fault with stage, partition, attempt")
        if self.kind == "lose_block" and not self.block:
            bad("block", "must name the block to lose, e.g. 'rdd_3_0'")
        if self.kind == "lose_shuffle_output" and (self.shuffle is None or self.map_id is None):
            bad("shuffle", "and map_id must name the map output to lose")

    def _check_crash_actor(self, bad: Any, points: list[str], driver_points: list[str]) -> None:
        if self.actor not in ACTOR_ROLES:
            bad("actor", f"must name the actor to crash, one of {', '.join(ACTOR_ROLES)}")
        if points:
            bad(points[0], "applies to executor faults; a crash_actor fault fires at after_task_ends=N or "
                           "at_stage_submitted=S")
        if len(driver_points) != 1:
            raise ValueError(f"Fault('crash_actor') needs exactly one of after_task_ends, at_stage_submitted; "
                             f"got {driver_points or 'none'}")
        if self.after_task_ends is not None and self.after_task_ends < 1:
            bad("after_task_ends", "counts task ends from 1")
        if self.actor == "block-manager" and not self.executor:
            bad("executor", "must name the executor whose block manager crashes, e.g. 'exec-0'")
        if self.actor == "task-set-manager" and self.stage is None and self.at_stage_submitted is None:
            bad("stage", "must name the stage whose task set manager crashes")
        if self.actor == "task-set-manager" and self.attempt is None:
            bad("attempt", "must name the stage attempt whose task set manager crashes")

    def describe(self) -> str:
        fields = {k: v for k, v in dataclasses.asdict(self).items()
                  if k != "kind" and v != Fault.__dataclass_fields__[k].default}
        return f"{self.kind}(" + ", ".join(f"{k}={v!r}" for k, v in fields.items()) + ")"


class FaultPlan:
    """Faults plus a seed; the same seed and plan give the same fault schedule."""

    def __init__(self, faults: Iterable[Fault] = (), seed: int = 0) -> None:
        self.faults = tuple(faults)
        self.seed = int(seed)
        for fault in self.faults:
            if not isinstance(fault, Fault):
                raise TypeError(f"a FaultPlan holds Fault objects, got {fault!r}")

    def _fires(self, index: int, where: tuple) -> bool:
        probability = self.faults[index].probability
        if probability >= 1.0:
            return True
        digest = hashlib.blake2b(repr((self.seed, index, where)).encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64 < probability

    def task_faults(self, stage: int, partition: int, attempt: int) -> list[tuple[int, Fault]]:
        """The task faults that fire for this task attempt, with their index in the plan."""
        found = []
        for index, fault in enumerate(self.faults):
            if fault.kind not in TASK_KINDS:
                continue
            if ((fault.stage is None or fault.stage == stage) and (fault.partition is None or fault.partition == partition)
                    and (fault.attempt is None or fault.attempt == attempt)
                    and self._fires(index, (stage, partition, attempt))):
                found.append((index, fault))
        return found

    def status_faults(self, stage: int, partition: int, attempt: int) -> list[tuple[int, Fault]]:
        """``drop_status`` faults for this task attempt: its status update is never sent."""
        return [(index, fault) for index, fault in enumerate(self.faults)
                if fault.kind in STATUS_KINDS
                and (fault.stage is None or fault.stage == stage) and (fault.partition is None or fault.partition == partition)
                and (fault.attempt is None or fault.attempt == attempt) and self._fires(index, ("status", stage, partition, attempt))]

    def executor_faults(self, executor_id: str, point: str, value: int) -> list[tuple[int, Fault]]:
        """Executor and block faults due at ``point`` (before_task, after_task,
        after_stage_outputs) with that value, on this executor."""
        found = []
        for index, fault in enumerate(self.faults):
            if fault.kind not in EXECUTOR_KINDS or getattr(fault, point) != value:
                continue
            if (fault.executor is None or fault.executor == executor_id) and self._fires(index, (executor_id, point, value)):
                found.append((index, fault))
        return found

    def driver_faults(self) -> list[tuple[int, Fault]]:
        """The faults the driver injects (``crash_actor``), with their index in the plan."""
        return [(index, fault) for index, fault in enumerate(self.faults) if fault.kind in DRIVER_KINDS]

    def fires(self, index: int, where: tuple) -> bool:
        """Whether fault ``index`` fires at ``where`` (its probability, decided by a hash)."""
        return self._fires(index, where)

    def lost_outputs(self, shuffle_id: int, map_id: int) -> list[tuple[int, Fault]]:
        """``lose_shuffle_output`` faults for this map output (they fire once, when it is
        first written)."""
        return [(index, fault) for index, fault in enumerate(self.faults)
                if fault.kind == "lose_shuffle_output" and fault.shuffle == shuffle_id and fault.map_id == map_id
                and self._fires(index, (shuffle_id, map_id))]

    # -- message and link faults -------------------------------------------------------------------
    def message_faults(self) -> list[tuple[int, Fault]]:
        """The message and link faults, with their index in the plan (applied by an interposer)."""
        return [(index, fault) for index, fault in enumerate(self.faults) if fault.kind in MESSAGE_KINDS | LINK_KINDS]

    def describe(self) -> list[str]:
        return [fault.describe() for fault in self.faults]

    def __bool__(self) -> bool:
        return bool(self.faults)

    def __repr__(self) -> str:
        return f"FaultPlan(seed={self.seed}, faults=[{', '.join(self.describe())}])"

    @classmethod
    def from_dicts(cls, faults: Iterable[dict[str, Any]], seed: int = 0) -> "FaultPlan":
        """A plan from plain dicts (a scenario file's ``[[faults]]`` tables)."""
        return cls([Fault(**entry) for entry in faults], seed)
