"""Where each shuffle's map outputs live: the driver's half of Spark's MapOutputTracker.

What it owns: for every registered shuffle, one slot per map partition holding the
:class:`MapStatus` of the output that is there now (or None), plus an epoch that grows
whenever an output is lost, so that a reader can tell its cached view is stale.

Kept twice, as a replicated state machine: the authoritative copy lives in the
``MapOutputTracker`` actor (which answers executors), and the DAG core keeps a replica it
reads synchronously to decide which map tasks are missing. Every change the DAG makes is
also appended to ``journal`` (when the owner set it to a list); the DAG actor sends the
journal to the tracker after each event, which replays it with :meth:`apply`, so both
copies go through the same changes in the same order. A restarted DAG starts from a
:meth:`snapshot` of the tracker's copy; a restarted tracker loads the DAG's replica.
The registry also remembers, per shuffle, the map partitions whose accumulator updates
were merged, so a map task re-run after a restart does not count them twice.

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
        # Invariant: shuffle -> map partitions whose accumulator updates were merged (once each).
        self.accumulated: dict[int, set[int]] = {}
        # Changes made since the owner last drained it, in order (None: not journalled).
        self.journal: list[tuple] | None = None

    def _log(self, *op: object) -> None:
        if self.journal is not None:
            self.journal.append(op)

    def apply(self, op: tuple) -> None:
        """Replay one journalled change (the tracker's copy follows the DAG's this way)."""
        name, *args = op
        getattr(self, name)(*args)

    def snapshot(self) -> "MapOutputRegistry":
        """An independent copy (without a journal)."""
        copy = MapOutputRegistry()
        copy.shuffle_id_to_statuses = {s: list(v) for s, v in self.shuffle_id_to_statuses.items()}
        copy.ever_registered = {s: set(v) for s, v in self.ever_registered.items()}
        copy.accumulated = {s: set(v) for s, v in self.accumulated.items()}
        copy.epoch = self.epoch
        return copy

    def mark_accumulated(self, shuffle_id: int, map_index: int) -> bool:
        """Record that ``map_index``'s accumulator updates were merged; False if they were already."""
        done = self.accumulated.setdefault(shuffle_id, set())
        if map_index in done:
            return False
        done.add(map_index)
        self._log("mark_accumulated", shuffle_id, map_index)
        return True

    # -- shuffles -------------------------------------------------------------------------------
    def register_shuffle(self, shuffle_id: int, num_maps: int) -> None:
        if shuffle_id in self.shuffle_id_to_statuses:
            raise ValueError(f"shuffle {shuffle_id} is already registered")
        self.shuffle_id_to_statuses[shuffle_id] = [None] * num_maps
        self.ever_registered[shuffle_id] = set()
        self._log("register_shuffle", shuffle_id, num_maps)

    def contains_shuffle(self, shuffle_id: int) -> bool:
        return shuffle_id in self.shuffle_id_to_statuses

    def unregister_shuffle(self, shuffle_id: int) -> None:
        """Forget a shuffle entirely (its RDD was garbage collected)."""
        self.shuffle_id_to_statuses.pop(shuffle_id, None)
        self.ever_registered.pop(shuffle_id, None)
        self.accumulated.pop(shuffle_id, None)
        self._log("unregister_shuffle", shuffle_id)

    # -- outputs ------------------------------------------------------------------------------------
    def register_map_output(self, shuffle_id: int, map_index: int, status: MapStatus) -> None:
        if not isinstance(status, MapStatus):
            raise TypeError(f"map output of shuffle {shuffle_id} map {map_index} must be a MapStatus, got {status!r}")
        self.shuffle_id_to_statuses[shuffle_id][map_index] = status
        self.ever_registered[shuffle_id].add(map_index)
        self._log("register_map_output", shuffle_id, map_index, status)

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
        self._log("unregister_map_output", shuffle_id, map_index, executor_id)
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
            self._log("remove_outputs_on_executor", executor_id)
        return removed

    def unregister_all_map_outputs(self, shuffle_id: int) -> None:
        """Clear every output of a shuffle and start a new generation of it: nothing of
        the new generation has been read yet (an indeterminate stage's full re-run)."""
        statuses = self.shuffle_id_to_statuses[shuffle_id]
        self.shuffle_id_to_statuses[shuffle_id] = [None] * len(statuses)
        self.ever_registered[shuffle_id] = set()
        self.epoch += 1
        self._log("unregister_all_map_outputs", shuffle_id)

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
        if not self.accumulated.keys() <= self.shuffle_id_to_statuses.keys():
            raise SparkletInternalError("map outputs: accumulator records for unregistered shuffles. Please report it.")
        if self.shuffle_id_to_statuses.keys() != self.ever_registered.keys():
            raise SparkletInternalError("map outputs: shuffle registries disagree. Please report it.")
        for shuffle_id, statuses in self.shuffle_id_to_statuses.items():
            filled = {i for i, status in enumerate(statuses) if status is not None}
            if not filled <= self.ever_registered[shuffle_id]:
                raise SparkletInternalError(f"map outputs: shuffle {shuffle_id} has outputs {sorted(filled)} "
                                            f"not recorded as registered. Please report it.")
            if any(not (0 <= i < len(statuses)) for i in self.ever_registered[shuffle_id]):
                raise SparkletInternalError(f"map outputs: shuffle {shuffle_id} records a map index out of range")
