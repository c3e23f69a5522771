"""The map output tracker: tells executors where a shuffle's map outputs are.

The authoritative record of map outputs is the DAG scheduler core's ``MapOutputRegistry``
(the DAG needs it, synchronously, to decide which map tasks are missing). This actor
answers executors from a read-only view of it, with each executor's current reference,
and the registry's *epoch*: it grows whenever an output is lost, every task carries the
epoch it was launched under, and an executor drops cached locations older than that.
"""

from __future__ import annotations

from typing import Any

from sparklet.actors import Actor, handler
from sparklet.runtime._messages import GetMapStatuses

__all__ = ["MapOutputTracker"]


class MapOutputTracker(Actor):
    def __init__(self, shared: Any) -> None:
        super().__init__()
        self._shared = shared

    @handler(GetMapStatuses)
    def statuses(self, msg: GetMapStatuses) -> tuple:
        registry = self._shared.map_outputs
        if registry is None or not registry.contains_shuffle(msg.shuffle_id):
            return (self._shared.map_output_epoch(), ())
        refs = self._shared.executor_refs
        located = []
        for status in registry.statuses(msg.shuffle_id):
            ref = refs.get(status.executor_id) if status is not None else None
            located.append(None if ref is None else (status.executor_id, ref, tuple(status.sizes)))
        return (registry.epoch, tuple(located))
