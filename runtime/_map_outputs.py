"""The map output tracker: the authoritative record of where each shuffle's map outputs are.

It owns a :class:`~sparklet.runtime._sched_mapoutputs.MapOutputRegistry` and answers
executors (``GetMapStatuses``) from it, with each executor's current reference and the
registry's *epoch*: it grows whenever an output is lost, every task carries the epoch it
was launched under, and an executor drops cached locations older than that.

The DAG scheduler decides every change (it needs the registry synchronously to decide
which map tasks are missing), applies it to its own replica and sends the journal of
changes here after each event (``UpdateMapOutputs``): the two copies go through the same
changes in the same order. A restarted DAG scheduler starts from a snapshot of this copy
(``SnapshotMapOutputs``). A restarted tracker asks the DAG scheduler for its replica
(``SyncMapOutputs``; the answer, ``LoadMapOutputs``, arrives in order with the updates):
until it arrives, it drops updates (the replica includes them) and holds executors'
questions, answering them once loaded.
"""

from __future__ import annotations

from sparklet.actors import simenv as time  # follows a simulation's virtual clock
from typing import Any

from sparklet.actors import Actor, DeferredReply, Local, handler
from sparklet.runtime import _listener as listen
from sparklet.runtime._messages import GetMapStatuses, LoadMapOutputs, SnapshotMapOutputs, SyncMapOutputs, UpdateMapOutputs
from sparklet.runtime._sched_mapoutputs import MapOutputRegistry

__all__ = ["MapOutputTracker"]


class MapOutputTracker(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared
        self.registry = MapOutputRegistry()
        # Invariant: True unless a restarted tracker still waits for the DAG scheduler's replica.
        self._loaded = True
        # Executors' questions held until the replica is loaded.
        self._held: list[tuple[GetMapStatuses, DeferredReply]] = []
        self._restart_reason: BaseException | None = None

    def post_restart(self, reason: BaseException) -> None:
        self._loaded = False
        self._restart_reason = reason
        self.context.system.ref_for(None, self._shared.paths["dag"]).tell(SyncMapOutputs())

    @handler(UpdateMapOutputs)
    def update(self, msg: UpdateMapOutputs) -> None:
        if not self._loaded:
            return  # the replica on its way includes these
        for op in msg.ops.value:
            self.registry.apply(op)

    @handler(LoadMapOutputs)
    def load(self, msg: LoadMapOutputs) -> None:
        self.registry = msg.registry.value
        self._loaded = True
        held, self._held = self._held, []
        for question, reply in held:
            reply.set_result(self._statuses(question.shuffle_id))
        stats = self.registry.statistics()
        reason = self._restart_reason
        self._shared.listener_bus.post(listen.ActorRecovered(
            time.time(), self.context.path, self.context.parent.path if self.context.parent else "",
            self.context.restart_count, f"{type(reason).__name__}: {reason}",
            f"{stats['outputs']} map outputs of {stats['shuffles']} shuffles (epoch {stats['epoch']}) from the DAG "
            f"scheduler's replica; {len(held)} executor questions answered after loading"))

    @handler(SnapshotMapOutputs)
    def snapshot(self, msg: SnapshotMapOutputs) -> Local:
        return Local(self.registry.snapshot())

    @handler(GetMapStatuses)
    def statuses(self, msg: GetMapStatuses) -> tuple | None:
        if not self._loaded:
            reply = self.context.defer_reply()
            assert reply is not None, "GetMapStatuses is always asked"
            self._held.append((msg, reply))
            return None
        return self._statuses(msg.shuffle_id)

    def _statuses(self, shuffle_id: int) -> tuple:
        registry = self.registry
        if not registry.contains_shuffle(shuffle_id):
            return (registry.epoch, ())
        refs = self._shared.executor_refs
        located = []
        for status in registry.statuses(shuffle_id):
            ref = refs.get(status.executor_id) if status is not None else None
            located.append(None if ref is None else (status.executor_id, ref, tuple(status.sizes)))
        return (registry.epoch, tuple(located))
