"""Where each shuffle's map outputs live: the driver's half of Spark's MapOutputTracker.

What it owns: for every registered shuffle, one slot per map partition holding the
:class:`MapStatus` of the output that is there now (or None), plus an epoch that grows
whenever an output is lost, so that a reader can tell its cached view is stale.

Owned by :class:`DAGSchedulerCore` for now, behind this small class so that it can move
into its own actor (the shuffle issue's MapOutputTracker) without touching the DAG logic:
the DAG only calls the methods below.

Invariants (checked by :meth:`validate_state`):
* each shuffle has exactly ``num_maps`` slots; every status names an executor;
* ``ever_registered[s]`` contains every map index whose slot is filled: a map index that
  had an output and lost it is remembered, which is how the DAG knows that re-running an
  indeterminate map stage changes data somebody may already have read.

Failure and recovery: losing an executor (or a fetch failure naming it) clears every
slot on it; the DAG re-runs those map tasks. Nothing here fails.

Review checklist:
* outputs on a lost executor are cleared: ``test_executor_loss_unregisters_map_outputs_and_next_job_reruns_only_them``
* a fetch failure clears exactly the named output (and the executor's):
  ``test_fetch_failure_resubmits_only_missing_map_tasks_then_reduce``
* registries survive jobs but are consistent: every DAG test's ``check`` calls ``validate_state``.
"""

from __future__ import annotations

from sparklet.actors import SparkletInternalError
from sparklet.runtime._sched_events import MapStatus

__all__ = ["MapOutputRegistry"]


class MapOutputRegistry:
    def __init__(self) -> None:
        # Invariant: len(shuffle_id_to_statuses[s]) is the shuffle's number of map partitions.
        self.shuffle_id_to_statuses: dict[int, list[MapStatus | None]] = {}
        # Invariant: ever_registered[s] contains every index whose status is not None.
        self.ever_registered: dict[int, set[int]] = {}
        # Invariant: only grows; bumped whenever an output is lost.
        self.epoch = 0

    # -- shuffles -------------------------------------------------------------------------------
    def register_shuffle(self, shuffle_id: int, num_maps: int) -> None:
        if shuffle_id in self.shuffle_id_to_statuses:
            raise ValueError(f"shuffle {shuffle_id} is already registered")
        self.shuffle_id_to_statuses[shuffle_id] = [None] * num_maps
        self.ever_registered[shuffle_id] = set()

    def contains_shuffle(self, shuffle_id: int) -> bool:
        return shuffle_id in self.shuffle_id_to_statuses

    def unregister_shuffle(self, shuffle_id: int) -> None:
        """Forget a shuffle entirely (its RDD was garbage collected)."""
        self.shuffle_id_to_statuses.pop(shuffle_id, None)
        self.ever_registered.pop(shuffle_id, None)

    # -- outputs ------------------------------------------------------------------------------------
    def register_map_output(self, shuffle_id: int, map_index: int, status: MapStatus) -> None:
        if not isinstance(status, MapStatus):
            raise TypeError(f"map output of shuffle {shuffle_id} map {map_index} must be a MapStatus, got {status!r}")
        self.shuffle_id_to_statuses[shuffle_id][map_index] = status
        self.ever_registered[shuffle_id].add(map_index)

    def unregister_map_output(self, shuffle_id: int, map_index: int, executor_id: str | None) -> bool:
        """Clear one output if it is (still) on ``executor_id`` (None: wherever it is)."""
        statuses = self.shuffle_id_to_statuses.get(shuffle_id)
        if statuses is None or not 0 <= map_index < len(statuses):
            return False
        status = statuses[map_index]
        if status is None or (executor_id is not None and status.executor_id != executor_id):
            return False
        statuses[map_index] = None
        self.epoch += 1
        return True

    def remove_outputs_on_executor(self, executor_id: str) -> list[tuple[int, int]]:
        """Clear every output on ``executor_id``; returns the (shuffle, map) pairs cleared."""
        removed = []
        for shuffle_id, statuses in self.shuffle_id_to_statuses.items():
            for index, status in enumerate(statuses):
                if status is not None and status.executor_id == executor_id:
                    statuses[index] = None
                    removed.append((shuffle_id, index))
        if removed:
            self.epoch += 1
        return removed

    def unregister_all_map_outputs(self, shuffle_id: int) -> None:
        """Clear every output of a shuffle and start a new generation of it: nothing of
        the new generation has been read yet (an indeterminate stage's full re-run)."""
        statuses = self.shuffle_id_to_statuses[shuffle_id]
        self.shuffle_id_to_statuses[shuffle_id] = [None] * len(statuses)
        self.ever_registered[shuffle_id] = set()
        self.epoch += 1

    # -- queries ---------------------------------------------------------------------------------
    def num_available_outputs(self, shuffle_id: int) -> int:
        return sum(status is not None for status in self.shuffle_id_to_statuses[shuffle_id])

    def find_missing_partitions(self, shuffle_id: int) -> list[int]:
        return [i for i, status in enumerate(self.shuffle_id_to_statuses[shuffle_id]) if status is None]

    def statuses(self, shuffle_id: int) -> tuple[MapStatus | None, ...]:
        return tuple(self.shuffle_id_to_statuses[shuffle_id])

    def was_lost(self, shuffle_id: int, map_indices: list[int]) -> bool:
        """Whether any of these (missing) map outputs existed before in this generation."""
        return bool(self.ever_registered[shuffle_id].intersection(map_indices))

    def statistics(self) -> dict[str, int]:
        return {
            "shuffles": len(self.shuffle_id_to_statuses),
            "outputs": sum(self.num_available_outputs(s) for s in self.shuffle_id_to_statuses),
            "epoch": self.epoch,
        }

    def validate_state(self) -> None:
        if self.shuffle_id_to_statuses.keys() != self.ever_registered.keys():
            raise SparkletInternalError("map outputs: shuffle registries disagree. Please report it.")
        for shuffle_id, statuses in self.shuffle_id_to_statuses.items():
            filled = {i for i, status in enumerate(statuses) if status is not None}
            if not filled <= self.ever_registered[shuffle_id]:
                raise SparkletInternalError(f"map outputs: shuffle {shuffle_id} has outputs {sorted(filled)} "
                                            f"not recorded as registered. Please report it.")
            if any(not (0 <= i < len(statuses)) for i in self.ever_registered[shuffle_id]):
                raise SparkletInternalError(f"map outputs: shuffle {shuffle_id} records a map index out of range")
