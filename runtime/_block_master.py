"""The driver's view of every executor's blocks: a sans-I/O core.

Theory
------
**What it owns.** Which executors hold which blocks, where (memory or disk) and how big:
the registered executors (with host and memory budget) and, per block, its locations.
The driver's block-manager actor wraps this class: it feeds in registrations, the
``BlockStatus`` reports executors send, and executor losses, and turns the answers into
messages (whom to tell to drop an RDD; which blocks the DAG scheduler lost). This class
does no I/O and takes no locks; everything runs on the actor's loop, and unit tests drive
it synchronously.

**Invariants** (checked by :meth:`BlockManagerMasterCore.validate_state`, which the tests
call after every step):

* every location's executor is registered, and the executor's block set lists exactly
  the blocks located on it;
* no block is kept with an empty location map, no RDD with an empty block set, no
  location with storage ``none``;
* every stored status is filed under its own block id and executor id;
* each executor's ``memory_used`` / ``disk_used`` is the sum of its locations' sizes,
  and every size is non-negative.

**Failure and recovery.** Reports are facts from an executor about itself, applied in
arrival order: ``memory``/``disk`` sets the location, ``none`` removes it. A report from
an executor that is not (or no longer) registered is ignored: it raced the executor's
loss, and the executor re-registers and re-reports if it is in fact alive. When an
executor is lost every location on it goes; :meth:`executor_lost` names the blocks that
lost one, and those with no location left are gone (an RDD partition is then recomputed
from lineage when next needed). Re-registering a known executor id (a restarted
executor) first forgets its old blocks the same way. ``remove_rdd`` forgets the RDD's
blocks at once and returns the executors to tell; their later ``none`` reports are
no-ops.

Review checklist: invariants after every step —
``test_blocks_master.py::test_random_steps_keep_state_valid``; loss drops locations and
names the blocks — ``test_executor_lost_names_blocks_that_lost_a_location``; late reports
from a lost executor ignored — ``test_report_from_unknown_executor_is_ignored``; sizes and
storage tab — ``test_rdd_storage_info_sums_replicas``.
"""

from __future__ import annotations

import dataclasses

from sparklet.actors import SparkletInternalError
from sparklet.runtime._blocks import BlockStatus, parse_block_id

__all__ = ["ExecutorStorageStatus", "RDDStorageInfo", "BlockManagerMasterCore"]


@dataclasses.dataclass(frozen=True)
class ExecutorStorageStatus:
    """One registered executor's storage (Spark UI's executors tab, "Storage Memory")."""

    executor_id: str
    host: str
    max_memory: int
    memory_used: int
    disk_used: int
    blocks: int


@dataclasses.dataclass(frozen=True)
class RDDStorageInfo:
    """A cached RDD's storage (Spark UI's storage tab). Sizes add up every replica;
    ``partitions`` maps each cached partition to its ``(executor_id, storage)`` pairs."""

    rdd_id: int
    num_partitions_cached: int
    memory_size: int
    disk_size: int
    partitions: dict[int, list[tuple[str, str]]]


class _ExecutorInfo:
    __slots__ = ("executor_id", "host", "max_memory", "block_ids", "memory_used", "disk_used")

    def __init__(self, executor_id: str, host: str, max_memory: int) -> None:
        self.executor_id = executor_id
        self.host = host
        self.max_memory = max_memory
        # Invariant: exactly the blocks whose locations include this executor.
        self.block_ids: set[str] = set()
        # Invariant: sums of memory_size / disk_size over this executor's locations.
        self.memory_used = 0
        self.disk_used = 0


def _rdd_partition(block_id: str) -> tuple[int, int] | None:
    try:
        kind, numbers = parse_block_id(block_id)
    except ValueError:
        return None
    return (numbers[0], numbers[1]) if kind == "rdd" else None


class BlockManagerMasterCore:
    """Where every block is, across executors. Plain and synchronous: see the module's theory."""

    def __init__(self) -> None:
        # Invariant: every location below names a key of this map.
        self.executor_id_to_info: dict[str, _ExecutorInfo] = {}
        # Invariant: no empty inner map; inner[e].block_id == key, .executor_id == e, .storage != "none".
        self.block_id_to_locations: dict[str, dict[str, BlockStatus]] = {}
        # Invariant: rdd_id -> {partition -> block id} for exactly the located rdd blocks; no empty inner map.
        self.rdd_id_to_partitions: dict[int, dict[int, str]] = {}
        self.ignored_updates = 0  # reports from executors not registered

    # -- executors -------------------------------------------------------------------------------
    def register_executor(self, executor_id: str, host: str, max_memory: int) -> list[str]:
        """Register an executor's block manager. A known id (a restarted executor) first
        loses its old blocks; returns those that lost a location, as :meth:`executor_lost`."""
        if not isinstance(executor_id, str) or not executor_id:
            raise ValueError(f"executor_id must be a non-empty string, got {executor_id!r}")
        if not isinstance(max_memory, int) or max_memory < 0:
            raise ValueError(f"max_memory must be a non-negative integer, got {max_memory!r}")
        lost = self.executor_lost(executor_id)
        self.executor_id_to_info[executor_id] = _ExecutorInfo(executor_id, host, max_memory)
        return lost

    def executor_lost(self, executor_id: str) -> list[str]:
        """Forget an executor and every location on it; returns the ids of the blocks
        that lost a location (sorted). Unknown executors: nothing to do."""
        info = self.executor_id_to_info.pop(executor_id, None)
        if info is None:
            return []
        lost = sorted(info.block_ids)
        for block_id in lost:
            self._drop_location(block_id, executor_id, info=None)
        return lost

    def executors(self) -> list[ExecutorStorageStatus]:
        return [
            ExecutorStorageStatus(e.executor_id, e.host, e.max_memory, e.memory_used, e.disk_used, len(e.block_ids))
            for e in sorted(self.executor_id_to_info.values(), key=lambda e: e.executor_id)
        ]

    # -- reports ---------------------------------------------------------------------------------
    def update_block(self, status: BlockStatus) -> None:
        """Apply an executor's report: ``memory``/``disk`` sets its location of the
        block, ``none`` removes it. Reports from unregistered executors are ignored."""
        if not isinstance(status, BlockStatus):
            raise TypeError(f"update_block takes a BlockStatus, got {type(status).__name__}")
        info = self.executor_id_to_info.get(status.executor_id)
        if info is None:
            self.ignored_updates += 1
            return
        block_id = status.block_id
        if status.storage == "none":
            if block_id in info.block_ids:
                self._drop_location(block_id, status.executor_id, info)
            return
        locations = self.block_id_to_locations.setdefault(block_id, {})
        old = locations.get(status.executor_id)
        if old is not None:
            info.memory_used -= old.memory_size
            info.disk_used -= old.disk_size
        locations[status.executor_id] = status
        info.block_ids.add(block_id)
        info.memory_used += status.memory_size
        info.disk_used += status.disk_size
        rdd_partition = _rdd_partition(block_id)
        if rdd_partition is not None:
            self.rdd_id_to_partitions.setdefault(rdd_partition[0], {})[rdd_partition[1]] = block_id

    def _drop_location(self, block_id: str, executor_id: str, info: _ExecutorInfo | None) -> None:
        locations = self.block_id_to_locations[block_id]
        old = locations.pop(executor_id)
        if info is not None:
            info.block_ids.discard(block_id)
            info.memory_used -= old.memory_size
            info.disk_used -= old.disk_size
        if not locations:
            self._forget_block(block_id)

    def _forget_block(self, block_id: str) -> None:
        del self.block_id_to_locations[block_id]
        rdd_partition = _rdd_partition(block_id)
        if rdd_partition is not None:
            partitions = self.rdd_id_to_partitions[rdd_partition[0]]
            del partitions[rdd_partition[1]]
            if not partitions:
                del self.rdd_id_to_partitions[rdd_partition[0]]

    # -- queries ---------------------------------------------------------------------------------
    def locations(self, block_id: str) -> list[str]:
        """Executors holding the block, those with it in memory first, then by id."""
        locations = self.block_id_to_locations.get(block_id, {})
        return [s.executor_id for s in sorted(locations.values(), key=lambda s: (s.storage != "memory", s.executor_id))]

    def cache_locations(self, rdd_id: int) -> dict[int, list[str]]:
        """For each cached partition of the RDD, the executors holding it (preferred
        locations for the DAG scheduler)."""
        partitions = self.rdd_id_to_partitions.get(rdd_id, {})
        return {p: self.locations(partitions[p]) for p in sorted(partitions)}

    def rdd_storage_info(self, rdd_id: int) -> RDDStorageInfo:
        partitions = self.rdd_id_to_partitions.get(rdd_id, {})
        memory_size = disk_size = 0
        placed: dict[int, list[tuple[str, str]]] = {}
        for partition in sorted(partitions):
            locations = self.block_id_to_locations[partitions[partition]]
            placed[partition] = [(e, locations[e].storage) for e in sorted(locations)]
            memory_size += sum(s.memory_size for s in locations.values())
            disk_size += sum(s.disk_size for s in locations.values())
        return RDDStorageInfo(rdd_id, len(placed), memory_size, disk_size, placed)

    def blocks_on(self, executor_id: str) -> list[str]:
        info = self.executor_id_to_info.get(executor_id)
        return sorted(info.block_ids) if info is not None else []

    # -- removal ---------------------------------------------------------------------------------
    def remove_block(self, block_id: str) -> list[str]:
        """Forget a block everywhere (a destroyed broadcast); returns the executors to tell."""
        locations = self.block_id_to_locations.get(block_id)
        if locations is None:
            return []
        holders = sorted(locations)
        for executor_id in holders:
            self._drop_location(block_id, executor_id, self.executor_id_to_info[executor_id])
        return holders

    def remove_rdd(self, rdd_id: int) -> list[str]:
        """Forget every block of an RDD; returns the executors that held one (to tell them)."""
        partitions = self.rdd_id_to_partitions.get(rdd_id, {})
        holders: set[str] = set()
        for block_id in list(partitions.values()):
            holders.update(self.remove_block(block_id))
        return sorted(holders)

    # -- invariants ------------------------------------------------------------------------------
    def validate_state(self) -> None:
        executor_to_blocks: dict[str, set[str]] = {e: set() for e in self.executor_id_to_info}
        memory_used = dict.fromkeys(self.executor_id_to_info, 0)
        disk_used = dict.fromkeys(self.executor_id_to_info, 0)
        rdd_blocks: dict[int, dict[int, str]] = {}
        for block_id, locations in self.block_id_to_locations.items():
            _check(bool(locations), f"block {block_id} kept with no location")
            for executor_id, status in locations.items():
                _check(executor_id in self.executor_id_to_info, f"block {block_id} located on unregistered executor {executor_id}")
                _check(status.block_id == block_id and status.executor_id == executor_id,
                       f"status {status} filed under ({block_id}, {executor_id})")
                _check(status.storage in ("memory", "disk"), f"status {status} kept")
                _check(status.memory_size >= 0 and status.disk_size >= 0, f"negative size in {status}")
                executor_to_blocks[executor_id].add(block_id)
                memory_used[executor_id] += status.memory_size
                disk_used[executor_id] += status.disk_size
            rdd_partition = _rdd_partition(block_id)
            if rdd_partition is not None:
                rdd_blocks.setdefault(rdd_partition[0], {})[rdd_partition[1]] = block_id
        for executor_id, info in self.executor_id_to_info.items():
            _check(info.block_ids == executor_to_blocks[executor_id],
                   f"executor {executor_id} lists {sorted(info.block_ids)}, located {sorted(executor_to_blocks[executor_id])}")
            _check(info.memory_used == memory_used[executor_id] and info.disk_used == disk_used[executor_id],
                   f"executor {executor_id} sizes {info.memory_used}/{info.disk_used}, "
                   f"locations sum {memory_used[executor_id]}/{disk_used[executor_id]}")
            _check(info.max_memory >= 0, f"executor {executor_id} max_memory {info.max_memory}")
        _check(rdd_blocks == self.rdd_id_to_partitions,
               f"rdd index {self.rdd_id_to_partitions} but located rdd blocks {rdd_blocks}")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SparkletInternalError(f"block master state broken: {what}. Please report it.")
