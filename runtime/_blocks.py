"""Block ids, block statuses and the per-executor BlockManager.

Theory
------
**What it owns.** One executor's cached blocks: the partitions of persisted RDDs
(``rdd_<rdd>_<partition>``), replicas other executors sent, and later broadcast pieces and
shuffle outputs. It decides where each block lives (:class:`MemoryStore`, :class:`DiskStore`
or nowhere) from the block's :class:`StorageLevel`, and reports every change of place to
the driver through ``on_block_status`` so that the driver's
:class:`~sparklet.runtime._block_master.BlockManagerMasterCore` knows where blocks are.

**A block's life** is the table :data:`BLOCK_TRANSITIONS`: ``new -> memory | disk``;
``memory -> dropping`` when evicted with a level that uses disk, ``dropping -> disk`` once
written; any state ``-> gone`` when removed, evicted without disk, or when writing it to
disk failed. ``dropping`` exists because eviction happens under the lock while the disk
write must not: in between, the evicted entry still serves reads, so no reader ever sees
a stored block as missing and computes it twice.

**Invariants** (checked by :meth:`BlockManager.validate_state`):

* a block is in exactly one place: ``memory`` iff the memory store holds it, ``disk``
  iff the disk store holds it, ``dropping`` iff neither does and its info holds the
  evicted entry; ``gone`` blocks are forgotten at once;
* reports reach ``on_block_status`` in the order the changes happened (queued under the
  lock, delivered by one thread at a time);
* at most one thread computes a block at a time (a per-block lock, kept only while some
  thread holds or waits for it);
* a task's pinned block is never evicted (``MemoryStore`` pins).

**Locking.** ``_lock`` guards the block table and is held only for bookkeeping (memory
store puts with precomputed sizes, renames, unlinks): never while computing a partition,
pickling, unpickling, estimating a size or writing a file. Lock order: a per-block lock,
then ``_lock``, then a store's lock. ``on_block_status`` and ``replicate`` are called
with no lock but the report lock held, from whatever thread made the change.

**Failure.** A failing computation stores nothing and the next waiter computes afresh. A
block whose disk write fails when dropped from memory is reported ``none``; the driver
recomputes it from lineage. ``close()`` forgets everything without reporting (the driver
learns of the executor's loss separately).

Review checklist: one place per block and no leftovers —
``test_blocks_manager.py::test_random_operations_keep_state_valid``; compute once under
concurrency — ``test_concurrent_get_or_compute_computes_once``; reports in order —
``test_status_reported_for_every_change``; pinned never evicted —
``test_blocks_stores.py::test_pinned_block_is_not_evicted``.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import enum
import functools
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterator, NamedTuple

from sparklet.actors import SparkletInternalError, StateMachine
from sparklet.runtime._stores import (
    DiskStore, DiskStoreStatistics, MemoryEntry, MemoryStore, MemoryStoreStatistics, deserialize_values,
    estimate_size, serialize_values,
)

if TYPE_CHECKING:
    from sparklet.rdd._storage import StorageLevel

__all__ = [
    "rdd_block_id", "broadcast_block_id", "shuffle_block_id", "parse_block_id", "ParsedBlockId", "BLOCK_ID_KIND_TO_FIELDS",
    "BlockStatus", "STORAGE_KINDS", "BlockState", "BLOCK_TRANSITIONS", "BlockManagerStatistics", "BlockManager",
]


# -- block ids ---------------------------------------------------------------------------------------

# kind -> names of its numbers, in the order the id spells them.
BLOCK_ID_KIND_TO_FIELDS: dict[str, tuple[str, ...]] = {
    "rdd": ("rdd_id", "partition"),
    "broadcast": ("broadcast_id",),
    "shuffle": ("shuffle_id", "map_id", "reduce_id"),
}
_BLOCK_ID = re.compile(r"([a-z]+)((?:_\d+)+)\Z")


class ParsedBlockId(NamedTuple):
    kind: str
    numbers: tuple[int, ...]


def _number(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    return value


def rdd_block_id(rdd_id: int, partition: int) -> str:
    """>>> rdd_block_id(3, 1)
    'rdd_3_1'"""
    return f"rdd_{_number('rdd_id', rdd_id)}_{_number('partition', partition)}"


def broadcast_block_id(broadcast_id: int) -> str:
    """>>> broadcast_block_id(2)
    'broadcast_2'"""
    return f"broadcast_{_number('broadcast_id', broadcast_id)}"


def shuffle_block_id(shuffle_id: int, map_id: int, reduce_id: int) -> str:
    """The name reserved for shuffle blocks: ``shuffle_<shuffle>_<map>_<reduce>``."""
    return f"shuffle_{_number('shuffle_id', shuffle_id)}_{_number('map_id', map_id)}_{_number('reduce_id', reduce_id)}"


def parse_block_id(block_id: str) -> ParsedBlockId:
    """>>> parse_block_id("rdd_3_1")
    ParsedBlockId(kind='rdd', numbers=(3, 1))"""
    match = _BLOCK_ID.match(block_id) if isinstance(block_id, str) else None
    if match is None:
        raise ValueError(f"not a block id: {block_id!r} (expected <kind>_<n>[_<n>...])")
    kind = match.group(1)
    numbers = tuple(int(n) for n in match.group(2)[1:].split("_"))
    fields = BLOCK_ID_KIND_TO_FIELDS.get(kind)
    if fields is None:
        raise ValueError(f"not a block id: {block_id!r} (unknown kind {kind!r}; known: {sorted(BLOCK_ID_KIND_TO_FIELDS)})")
    if len(numbers) != len(fields):
        raise ValueError(f"not a block id: {block_id!r} ({kind} ids have {len(fields)} numbers: {', '.join(fields)})")
    return ParsedBlockId(kind, numbers)


# -- statuses ------------------------------------------------------------------------------------------

STORAGE_KINDS = ("memory", "disk", "none")


@dataclasses.dataclass(frozen=True)
class BlockStatus:
    """Where one executor keeps one block now; ``storage="none"``: no longer there."""

    block_id: str
    executor_id: str
    storage: str  # one of STORAGE_KINDS
    memory_size: int = 0
    disk_size: int = 0

    def __post_init__(self) -> None:
        if self.storage not in STORAGE_KINDS:
            raise ValueError(f"storage must be one of {STORAGE_KINDS}, got {self.storage!r}")
        if self.memory_size < 0 or self.disk_size < 0:
            raise ValueError(f"sizes must be non-negative, got memory_size={self.memory_size}, disk_size={self.disk_size}")


class BlockState(enum.Enum):
    NEW = "new"
    MEMORY = "memory"
    DROPPING = "dropping"  # evicted from memory, being written to disk; still readable
    DISK = "disk"
    GONE = "gone"


BLOCK_TRANSITIONS: dict[BlockState, frozenset[BlockState]] = {
    BlockState.NEW: frozenset({BlockState.MEMORY, BlockState.DISK}),
    BlockState.MEMORY: frozenset({BlockState.DROPPING, BlockState.GONE}),
    BlockState.DROPPING: frozenset({BlockState.DISK, BlockState.GONE}),
    BlockState.DISK: frozenset({BlockState.GONE}),
    BlockState.GONE: frozenset(),
}


class _BlockInfo:
    __slots__ = ("level", "machine", "dropping")

    def __init__(self, block_id: str, level: "StorageLevel") -> None:
        self.level = level
        self.machine: StateMachine[BlockState] = StateMachine(f"block {block_id}", BlockState.NEW, BLOCK_TRANSITIONS)
        # Invariant: not None iff machine.state is DROPPING.
        self.dropping: MemoryEntry | None = None


class _BlockLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0


class _PinnedIterator:
    """Iterates a pinned in-memory block; the pin goes when the iterator is exhausted,
    closed or collected."""

    __slots__ = ("_it", "_release")

    def __init__(self, values: list, release: Callable[[], None]) -> None:
        self._it = iter(values)
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> "_PinnedIterator":
        return self

    def __next__(self) -> Any:
        try:
            return next(self._it)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        release, self._release = self._release, None
        if release is not None:
            release()

    def __del__(self) -> None:
        self.close()


@dataclasses.dataclass(frozen=True)
class BlockManagerStatistics:
    executor_id: str
    blocks_in_memory: int
    blocks_on_disk: int
    blocks_dropping: int
    hits: int             # get_or_compute served from memory or disk
    misses: int           # get_or_compute that computed
    dropped_to_disk: int  # evicted from memory and written to disk
    lost: int             # evicted from memory with nowhere to go, or failed to reach disk
    replicated: int       # replicate() calls
    memory: MemoryStoreStatistics
    disk: DiskStoreStatistics

    def as_dict(self) -> dict[str, Any]:
        """Plain nested dicts (for a msgpack message or a heartbeat's metrics)."""
        return dataclasses.asdict(self)


# -- the manager ------------------------------------------------------------------------------------------

class BlockManager:
    """One executor's blocks in memory and on disk; thread-safe."""

    def __init__(self, executor_id: str, *, memory_bytes: int, directory: str,
                 on_block_status: Callable[[BlockStatus], None],
                 replicate: Callable[[str, bytes, "StorageLevel"], None] | None = None) -> None:
        if not callable(on_block_status):
            raise TypeError(f"on_block_status must be callable, got {on_block_status!r}")
        if replicate is not None and not callable(replicate):
            raise TypeError(f"replicate must be callable or None, got {replicate!r}")
        self.executor_id = executor_id
        self._memory = MemoryStore(memory_bytes)
        self._disk = DiskStore(directory)
        self._on_block_status = on_block_status
        self._replicate = replicate
        self._lock = threading.Lock()
        # Invariant: no GONE or NEW entries; MEMORY iff in the memory store, DISK iff in the
        # disk store, DROPPING iff in neither (info.dropping holds the evicted entry).
        self.block_id_to_info: dict[str, _BlockInfo] = {}
        # Invariant: exactly the blocks some thread holds or waits for; users > 0.
        self.block_id_to_lock: dict[str, _BlockLock] = {}
        # Invariant: statuses in the order their changes happened (appended under _lock).
        self._reports: collections.deque[BlockStatus] = collections.deque()
        self._report_lock = threading.RLock()
        self._closed = False
        self._hits = self._misses = self._dropped_to_disk = self._lost = self._replicated = 0

    # -- the task path -----------------------------------------------------------------------------
    def get_or_compute(self, rdd: Any, split: Any, context: Any) -> Iterator:
        """The records of ``rdd``'s partition ``split``: from this executor's blocks if
        there (a hit), else computed (``rdd.compute_or_read_checkpoint``), stored per
        ``rdd._storage_level`` and reported. A second task asking for a block being
        computed waits for the first."""
        block_id = rdd_block_id(rdd.id, split.index)
        level = rdd._storage_level
        found = self._read(block_id, "iter")
        if found is not None:
            self._count_hit()
            return found
        with self._block_locked(block_id):
            found = self._read(block_id, "iter")
            if found is not None:
                self._count_hit()
                return found
            with self._lock:
                self._misses += 1
            # not rdd.iterator: that would come back here
            values = list(rdd.compute_or_read_checkpoint(split, context))
            if not level.is_valid:
                return iter(values)
            _, pinned = self._store(block_id, level, values=values, pin=True, replicate=True)
        if pinned is not None:
            return _PinnedIterator(values, functools.partial(self._memory.unpin, pinned))
        return iter(values)

    # -- remote reads and replicas ---------------------------------------------------------------------
    def put_bytes(self, block_id: str, data: bytes, level: "StorageLevel") -> bool:
        """Store a block arriving from elsewhere (a replica) per ``level``; never
        replicates further. False if already here, not stored, or closed."""
        if not level.is_valid:
            raise ValueError(f"level must use memory or disk, got {level!r}")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"data must be bytes, got {type(data).__name__}")
        parse_block_id(block_id)
        with self._block_locked(block_id):
            with self._lock:
                if block_id in self.block_id_to_info:
                    return False
            stored, _ = self._store(block_id, level, data=bytes(data))
            return stored

    def get_bytes(self, block_id: str) -> bytes | None:
        """The serialized records of a local block (to serve a remote read), or None."""
        return self._read(block_id, "bytes")

    def get_values(self, block_id: str) -> list | None:
        """The records of a local block (a new list), or None."""
        return self._read(block_id, "values")

    def contains(self, block_id: str) -> bool:
        with self._lock:
            return block_id in self.block_id_to_info

    # -- removal ------------------------------------------------------------------------------------
    def remove_block(self, block_id: str) -> bool:
        """Forget a block and report it ``none``. A block being computed meanwhile is
        stored when its computation ends (as with Spark's non-blocking unpersist)."""
        with self._lock:
            removed = self._remove_locked(block_id)
        self._flush_reports()
        return removed

    def remove_rdd(self, rdd_id: int) -> int:
        """Remove every block of an RDD; returns how many there were."""
        prefix = f"rdd_{_number('rdd_id', rdd_id)}_"
        with self._lock:
            block_ids = [b for b in self.block_id_to_info if b.startswith(prefix)]
            for block_id in block_ids:
                self._remove_locked(block_id)
        self._flush_reports()
        return len(block_ids)

    def close(self) -> None:
        """Drop every block and remove the disk files, without reporting. Idempotent;
        afterwards computations are not stored and reads miss."""
        with self._lock:
            self._closed = True
            for info in self.block_id_to_info.values():
                info.dropping = None
            self.block_id_to_info.clear()
            self._memory.clear()
            self._disk.clear()
        with self._report_lock, self._lock:
            self._reports.clear()

    # -- introspection ---------------------------------------------------------------------------------
    def block_status(self, block_id: str) -> BlockStatus:
        with self._lock:
            return self._status_locked(block_id)

    def statuses(self) -> list[BlockStatus]:
        """Every local block's status (what to report when re-registering)."""
        with self._lock:
            return [self._status_locked(b) for b in sorted(self.block_id_to_info)]

    def statistics(self) -> BlockManagerStatistics:
        with self._lock:
            states = collections.Counter(info.machine.state for info in self.block_id_to_info.values())
            return BlockManagerStatistics(
                executor_id=self.executor_id, blocks_in_memory=states[BlockState.MEMORY],
                blocks_on_disk=states[BlockState.DISK], blocks_dropping=states[BlockState.DROPPING],
                hits=self._hits, misses=self._misses, dropped_to_disk=self._dropped_to_disk, lost=self._lost,
                replicated=self._replicated, memory=self._memory.statistics(), disk=self._disk.statistics(),
            )

    def validate_state(self) -> None:
        with self._lock:
            in_memory = set(self._memory.block_ids())
            on_disk = set(self._disk.block_id_to_size)
            for block_id, info in self.block_id_to_info.items():
                state = info.machine.state
                _check(state in (BlockState.MEMORY, BlockState.DISK, BlockState.DROPPING), f"{block_id} kept in state {state}")
                _check((block_id in in_memory) == (state is BlockState.MEMORY), f"{block_id} is {state} but memory says {block_id in in_memory}")
                _check((block_id in on_disk) == (state is BlockState.DISK), f"{block_id} is {state} but disk says {block_id in on_disk}")
                _check((info.dropping is not None) == (state is BlockState.DROPPING), f"{block_id} is {state}, dropping={info.dropping}")
            _check(in_memory <= set(self.block_id_to_info), f"memory holds unknown blocks {in_memory - set(self.block_id_to_info)}")
            _check(on_disk <= set(self.block_id_to_info), f"disk holds unknown blocks {on_disk - set(self.block_id_to_info)}")
            for block_id, block_lock in self.block_id_to_lock.items():
                _check(block_lock.users > 0, f"lock of {block_id} kept with no users")
        self._memory.validate_state()
        self._disk.validate_state()

    def __repr__(self) -> str:
        return f"BlockManager({self.executor_id!r}, {len(self.block_id_to_info)} blocks)"

    # -- internals -----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _block_locked(self, block_id: str) -> Iterator[None]:
        with self._lock:
            block_lock = self.block_id_to_lock.get(block_id)
            if block_lock is None:
                block_lock = self.block_id_to_lock[block_id] = _BlockLock()
            block_lock.users += 1
        try:
            with block_lock.lock:
                yield
        finally:
            with self._lock:
                block_lock.users -= 1
                if block_lock.users == 0:
                    del self.block_id_to_lock[block_id]

    def _count_hit(self) -> None:
        with self._lock:
            self._hits += 1

    def _read(self, block_id: str, form: str) -> Any:
        """A local block as ``"iter"`` (an iterator; pinned while in memory deserialized),
        ``"values"`` (a new list) or ``"bytes"``; None if not here."""
        with self._lock:
            info = self.block_id_to_info.get(block_id)
            if info is None:
                return None
            state = info.machine.state
            if state is BlockState.MEMORY:
                entry = self._memory.get(block_id, pin=True)
                if entry is None:
                    raise SparkletInternalError(f"{block_id} is in memory by the block table but not in the store. Please report it.")
            else:
                entry = info.dropping  # None when on disk
        if entry is None:
            data = self._disk.get(block_id)
            if data is None:  # removed meanwhile
                return None
            if form == "bytes":
                return data
            values = deserialize_values(data)
            return iter(values) if form == "iter" else values
        if state is not BlockState.MEMORY:  # dropping: the entry left the store, nothing to pin
            return _convert(entry, form)
        if form == "iter" and entry.deserialized:
            return _PinnedIterator(entry.value, functools.partial(self._memory.unpin, entry))  # type: ignore[arg-type]
        try:
            return _convert(entry, form)
        finally:
            self._memory.unpin(entry)

    def _store(self, block_id: str, level: "StorageLevel", *, values: list | None = None, data: bytes | None = None,
               pin: bool = False, replicate: bool = False) -> tuple[bool, MemoryEntry | None]:
        """Place a block absent from here (the caller holds its block lock) per ``level``.
        Returns whether it was stored and, with ``pin``, its memory entry pinned if it is
        kept deserialized in memory (the caller unpins it)."""
        stored, pinned = False, None
        try:
            if level.useMemory and not self._closed:
                if level.deserialized:
                    if values is None:
                        values = deserialize_values(data)  # type: ignore[arg-type]
                    put = functools.partial(self._memory.put_values, block_id, values, size=estimate_size(values))
                else:
                    if data is None:
                        data = serialize_values(values)  # type: ignore[arg-type]
                    put = functools.partial(self._memory.put_bytes, block_id, data)
                drops: list[tuple[str, MemoryEntry]] = []
                with self._lock:
                    if not self._closed:
                        result = put()
                        drops = self._evicted_locked(result.evicted)
                        if result.stored:
                            self._place_locked(block_id, level, BlockState.MEMORY, "stored in memory")
                            stored = True
                            if pin and level.deserialized:
                                pinned = self._memory.pin(block_id)
                self._drop_to_disk(drops)
            if not stored and level.useDisk and not self._closed:
                if data is None:
                    data = serialize_values(values)  # type: ignore[arg-type]
                staged = self._disk.stage(block_id, data)
                with self._lock:
                    if not self._closed:
                        self._disk.commit(staged)
                        self._place_locked(block_id, level, BlockState.DISK, "stored on disk")
                        stored = True
                if not stored:
                    self._disk.discard(staged)
        finally:
            self._flush_reports()
        if stored and replicate and level.replication > 1 and self._replicate is not None:
            if data is None:
                data = serialize_values(values)  # type: ignore[arg-type]
            with self._lock:
                self._replicated += 1
            try:
                self._replicate(block_id, data, level)
            except BaseException:
                if pinned is not None:
                    self._memory.unpin(pinned)
                raise
        return stored, pinned

    def _place_locked(self, block_id: str, level: "StorageLevel", state: BlockState, cause: str) -> None:
        if block_id in self.block_id_to_info:
            raise SparkletInternalError(f"{block_id} stored twice on {self.executor_id}. Please report it.")
        info = self.block_id_to_info[block_id] = _BlockInfo(block_id, level)
        info.machine.move(state, cause)
        self._reports.append(self._status_locked(block_id))

    def _evicted_locked(self, evicted: tuple[MemoryEntry, ...]) -> list[tuple[str, MemoryEntry]]:
        """Move evicted blocks on: to ``dropping`` if their level uses disk (returned, for
        the caller to write outside the lock), else ``gone``."""
        drops = []
        for entry in evicted:
            info = self.block_id_to_info[entry.block_id]
            if info.level.useDisk:
                info.machine.move(BlockState.DROPPING, "evicted from memory")
                info.dropping = entry
                drops.append((entry.block_id, entry))
            else:
                info.machine.move(BlockState.GONE, "evicted from memory")
                del self.block_id_to_info[entry.block_id]
                self._lost += 1
                self._reports.append(BlockStatus(entry.block_id, self.executor_id, "none"))
        return drops

    def _drop_to_disk(self, drops: list[tuple[str, MemoryEntry]]) -> None:
        for block_id, entry in drops:
            staged = None
            try:
                staged = self._disk.stage(block_id, entry.data())
            except Exception:  # unpicklable records, or the disk failed: the block is lost
                pass
            with self._lock:
                info = self.block_id_to_info.get(block_id)
                if info is None or info.dropping is not entry or self._closed:  # removed meanwhile
                    if staged is not None:
                        self._disk.discard(staged)
                    continue
                info.dropping = None
                if staged is not None:
                    self._disk.commit(staged)
                    info.machine.move(BlockState.DISK, "dropped from memory")
                    self._dropped_to_disk += 1
                else:
                    info.machine.move(BlockState.GONE, "failed to drop to disk")
                    del self.block_id_to_info[block_id]
                    self._lost += 1
                self._reports.append(self._status_locked(block_id))

    def _remove_locked(self, block_id: str) -> bool:
        info = self.block_id_to_info.pop(block_id, None)
        if info is None:
            return False
        state = info.machine.state
        if state is BlockState.MEMORY:
            self._memory.remove(block_id)
        elif state is BlockState.DISK:
            self._disk.remove(block_id)
        info.dropping = None  # a dropper in flight discards its write
        info.machine.move(BlockState.GONE, "removed")
        self._reports.append(BlockStatus(block_id, self.executor_id, "none"))
        return True

    def _status_locked(self, block_id: str) -> BlockStatus:
        info = self.block_id_to_info.get(block_id)
        if info is None:
            return BlockStatus(block_id, self.executor_id, "none")
        state = info.machine.state
        if state is BlockState.MEMORY:
            return BlockStatus(block_id, self.executor_id, "memory", memory_size=self._memory.size(block_id) or 0)
        if state is BlockState.DROPPING:  # still in memory as far as anyone reading can tell
            return BlockStatus(block_id, self.executor_id, "memory", memory_size=info.dropping.size)  # type: ignore[union-attr]
        return BlockStatus(block_id, self.executor_id, "disk", disk_size=self._disk.size(block_id) or 0)

    def _flush_reports(self) -> None:
        """Deliver queued statuses in order, one deliverer at a time."""
        with self._report_lock:
            while True:
                with self._lock:
                    if not self._reports:
                        return
                    status = self._reports.popleft()
                self._on_block_status(status)


def _convert(entry: MemoryEntry, form: str) -> Any:
    if form == "bytes":
        return entry.data()
    if form == "values":
        return list(entry.value) if entry.deserialized else entry.values()  # type: ignore[arg-type]
    return iter(entry.values())


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SparkletInternalError(f"block manager state broken: {what}. Please report it.")
