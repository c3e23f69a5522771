"""The driver's fault injector: ``crash_actor`` faults, fired at points of the scheduler's story.

Executors inject task and executor faults themselves (:mod:`sparklet.runtime._executor`).
A ``crash_actor`` fault targets one of the driver's runtime actors (or an executor's block
manager), so the driver injects it: this injector listens to the listener bus (an
internal listener, called on the posting thread, which is the driver's loop) and, at the
planned point, sends :class:`~sparklet.actors.Kill` to the target. The target fails with
``ActorKilled`` when it takes the message from its mailbox, so its supervisor acts exactly
as on any crash. Points are counted on the bus, in the order the schedulers post:

* ``after_task_ends=N``: right after the Nth ``TaskEnd`` (of ``stage``, or of any stage);
* ``at_stage_submitted=S``: when attempt ``attempt`` of stage S is submitted.

Each fault fires at most once per context (``probability`` decides by a hash of the seed
and the point, as for every fault). A fired fault is a ``FaultInjected`` listener event
(``executor_id`` is ``"driver"``, or the executor whose block manager crashes) and, with
tracing on, a ``fault`` actor event.

An executor's block manager is a component of its executor actor, not an actor: the
driver sends the executor :class:`~sparklet.runtime._messages.CrashBlockManager`, and the
executor replaces its block manager as a supervisor would (see ``docs/recovery.md``).
"""

from __future__ import annotations

from sparklet.actors import simenv as time  # follows a simulation's virtual clock
from typing import Any

from sparklet.actors import ActorSystem, Kill
from sparklet.runtime import _listener as listen
from sparklet.runtime._faults import Fault, FaultPlan
from sparklet.runtime._messages import CrashBlockManager

__all__ = ["DriverFaultInjector", "actor_path"]


def actor_path(paths: dict[str, str], fault: Fault, stage_attempt: tuple[int, int] | None = None) -> str:
    """The path of the actor a ``crash_actor`` fault addresses."""
    role = fault.actor
    if role == "task-set-manager":
        stage, attempt = stage_attempt if stage_attempt is not None else (fault.stage, fault.attempt)
        return f"{paths['tasks']}/stage-{stage}.{attempt}"
    if role == "block-manager":
        return f"{paths['executors']}/{fault.executor}"
    return paths[{"dag-scheduler": "dag", "task-scheduler": "tasks", "block-manager-master": "blocks",
                  "map-output-tracker": "map_outputs", "job-manager": "jobs"}[role]]


class DriverFaultInjector:
    def __init__(self, plan: FaultPlan | None, system: ActorSystem, shared: Any) -> None:
        self._plan = plan
        self._system = system
        self._shared = shared
        self._faults = plan.driver_faults() if plan else []
        # Invariant: indices of faults that fired (each fires at most once).
        self.fired: set[int] = set()
        self._task_ends = 0
        self._task_ends_by_stage: dict[int, int] = {}
        # task-set-manager faults due at a submission: fired at the attempt's first TaskStart,
        # once its actor exists (a Kill sent earlier would be a dead letter).
        self._due_at_first_task: dict[tuple[int, int], list[tuple[int, Fault, str]]] = {}

    def __bool__(self) -> bool:
        return bool(self._faults)

    def on_event(self, event: Any) -> None:
        if isinstance(event, listen.TaskEnd):
            self._task_ends += 1
            count = self._task_ends_by_stage[event.stage_id] = self._task_ends_by_stage.get(event.stage_id, 0) + 1
            for index, fault in self._faults:
                if fault.after_task_ends is None or index in self.fired:
                    continue
                seen = self._task_ends if fault.stage is None else (count if fault.stage == event.stage_id else 0)
                if seen == fault.after_task_ends:
                    where = (f"after task end #{seen}" + (f" of stage {fault.stage}" if fault.stage is not None else "")
                             + f" (task {event.task_id}, stage {event.stage_id})")
                    self._fire(index, fault, where, ("task_ends", fault.stage, seen), None)
        elif isinstance(event, listen.StageSubmitted):
            for index, fault in self._faults:
                if (fault.at_stage_submitted == event.stage_id and index not in self.fired
                        and (fault.attempt is None or fault.attempt == event.attempt)):
                    where = f"when stage {event.stage_id} attempt {event.attempt} was submitted"
                    if fault.actor == "task-set-manager":
                        where += " (at its first task start, once its task set manager exists)"
                        self._due_at_first_task.setdefault((event.stage_id, event.attempt), []).append((index, fault, where))
                    else:
                        self._fire(index, fault, where, ("stage_submitted", event.stage_id, event.attempt),
                                   (event.stage_id, event.attempt))
        elif isinstance(event, listen.TaskStart) and self._due_at_first_task:
            key = (event.stage_id, event.stage_attempt)
            for index, fault, where in self._due_at_first_task.pop(key, ()):
                self._fire(index, fault, where, ("stage_submitted", *key), key)

    def _fire(self, index: int, fault: Fault, where: str, point: tuple, stage_attempt: tuple[int, int] | None) -> None:
        assert self._plan is not None
        if not self._plan.fires(index, point):
            return
        self.fired.add(index)
        if fault.actor == "task-set-manager" and fault.stage is not None:
            stage_attempt = None  # addressed explicitly
        path = actor_path(self._shared.paths, fault, stage_attempt)
        reason = f"crash_actor fault {fault.describe()} {where}"
        if fault.actor == "block-manager":
            ref = self._shared.executor_refs.get(fault.executor)
            if ref is None:
                where += f": executor {fault.executor} is not registered, nothing crashed"
            else:
                ref.tell(CrashBlockManager(reason))
                where += f": CrashBlockManager sent to executor {fault.executor}"
            who = fault.executor
        else:
            self._system.ref_for(None, path).tell(Kill(reason))
            where += f": Kill sent to {path}"
            who = "driver"
        self._shared.listener_bus.post(listen.FaultInjected(time.time(), who, index, fault.describe(), where))
        events = self._system.events
        if events.enabled:
            events.record("fault", path, executor=who, fault=fault.describe(), where=where)
