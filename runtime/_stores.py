"""The two places a block lives on one executor: memory and disk.

Both stores are thread-safe and small: tasks put and read blocks from worker threads
while the executor's actor reads statistics and serves remote reads. Each store guards
its index with one lock, held only for bookkeeping: pickling, unpickling, estimating
sizes and writing files happen outside it.

A block's records travel and rest as one *serialized* form: the pickled list of records
(:func:`serialize_values`, ``pickle.HIGHEST_PROTOCOL`` with a cloudpickle fallback for
lambdas and local classes). The memory store can also keep the list itself
(*deserialized*), accounted by :func:`estimate_size`.

:class:`MemoryStore` keeps blocks in least-recently-used order. Putting a block that does
not fit evicts the least recently used unpinned blocks, but only when that frees enough
room; otherwise (pinned blocks in the way, or a block larger than the whole capacity) the
put is refused and nothing is evicted. Evicted entries are handed back to the caller (the
:class:`~sparklet.runtime._blocks.BlockManager`), which drops them to disk or reports
them lost.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import pickle
import re
import struct
import sys
import threading
import types
import uuid
from typing import Any

import cloudpickle

from sparklet.actors import SparkletInternalError

__all__ = [
    "serialize_values", "deserialize_values", "estimate_size", "MemoryEntry", "PutResult",
    "MemoryStoreStatistics", "MemoryStore", "StagedWrite", "DiskStoreStatistics", "DiskStore",
]


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise SparkletInternalError(f"store state broken: {what}. Please report it.")


# -- the serialized form -------------------------------------------------------------------------------

def serialize_values(values: list) -> bytes:
    """The records of a block as bytes: plain pickle, or cloudpickle for what pickle
    cannot carry (lambdas, classes defined in ``__main__`` or in a function)."""
    try:
        return pickle.dumps(values, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        return cloudpickle.dumps(values, pickle.HIGHEST_PROTOCOL)


def deserialize_values(data: bytes) -> list:
    """Inverse of :func:`serialize_values` (cloudpickle output loads with plain pickle)."""
    return pickle.loads(data)


# -- size estimate of deserialized blocks ---------------------------------------------------------------

_SAMPLE = 64          # records measured per block; the rest are extrapolated
_NODE_BUDGET = 256    # objects walked per measured record
_LIST_HEADER = sys.getsizeof([])
_POINTER = struct.calcsize("P")
_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None), memoryview, range)
_SHARED = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType, types.CodeType)


def _deep_size(obj: Any, seen: set[int]) -> int:
    """``sys.getsizeof`` of ``obj`` and what it holds (containers, instance dicts), each
    object once (``seen``), at most ``_NODE_BUDGET`` objects. Code, classes and modules
    are shared by everybody and count nothing."""
    total = 0
    stack = [obj]
    budget = _NODE_BUDGET
    while stack and budget > 0:
        item = stack.pop()
        if id(item) in seen or isinstance(item, _SHARED):
            continue
        seen.add(id(item))
        budget -= 1
        try:
            total += sys.getsizeof(item)
        except TypeError:  # an extension object without __sizeof__
            total += 64
        if isinstance(item, _LEAVES):
            continue
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset, collections.deque)):
            stack.extend(item)
        else:
            attrs = getattr(item, "__dict__", None)
            if isinstance(attrs, dict):
                stack.append(attrs)
    return total


def estimate_size(values: list) -> int:
    """Estimated bytes held by a list of records, cheap for big lists.

    The list's header and one pointer per record (not ``sys.getsizeof(values)``, which
    includes over-allocation and so differs between equal lists) plus the deep size of at
    most ``_SAMPLE`` records taken at evenly spaced indices, scaled to the whole list.
    Objects shared among the sampled records count once, so records that share keys
    (interned strings, small ints) are not overcounted; a big object shared by all
    records is, by the scaling. Like Spark's ``SizeEstimator``, an estimate: good enough
    to keep a memory budget, not an exact measure.
    """
    n = len(values)
    total = _LIST_HEADER + _POINTER * n
    if n == 0:
        return total
    if n <= _SAMPLE:
        indices: Any = range(n)
    else:
        step = n / _SAMPLE
        indices = [int(i * step) for i in range(_SAMPLE)]
    seen: set[int] = set()
    sampled = sum(_deep_size(values[i], seen) for i in indices)
    return total + sampled * n // len(indices)


# -- memory ---------------------------------------------------------------------------------------------

class MemoryEntry:
    """One block in the memory store. Treat as read-only outside the store; it is the
    token :meth:`MemoryStore.unpin` takes."""

    __slots__ = ("block_id", "value", "size", "deserialized", "pins")

    def __init__(self, block_id: str, value: list | bytes, size: int, deserialized: bool) -> None:
        self.block_id = block_id
        self.value = value  # a list of records if deserialized, else their serialized bytes
        self.size = size
        self.deserialized = deserialized
        # Invariant: pins >= 0; a pinned entry is never evicted.
        self.pins = 0

    def values(self) -> list:
        """The records (unpickled if serialized: call outside any lock)."""
        return self.value if self.deserialized else deserialize_values(self.value)  # type: ignore[return-value,arg-type]

    def data(self) -> bytes:
        """The serialized records (pickled if deserialized: call outside any lock)."""
        return serialize_values(self.value) if self.deserialized else self.value  # type: ignore[return-value,arg-type]

    def __repr__(self) -> str:
        form = "deserialized" if self.deserialized else "serialized"
        return f"MemoryEntry({self.block_id!r}, {self.size} bytes, {form}, pins={self.pins})"


@dataclasses.dataclass(frozen=True)
class PutResult:
    """What a put did: whether the block is now stored, and the entries evicted for it
    (least recently used first; empty when the put was refused)."""

    stored: bool
    evicted: tuple[MemoryEntry, ...] = ()


@dataclasses.dataclass(frozen=True)
class MemoryStoreStatistics:
    capacity: int
    used: int
    blocks: int
    pinned: int
    evictions: int
    refused: int
    hits: int
    misses: int


class MemoryStore:
    """Blocks in memory within ``capacity_bytes``, evicted least recently used first."""

    def __init__(self, capacity_bytes: int) -> None:
        if not isinstance(capacity_bytes, int) or capacity_bytes < 0:
            raise ValueError(f"capacity_bytes must be a non-negative integer, got {capacity_bytes!r}")
        self._capacity = capacity_bytes
        self._lock = threading.RLock()  # reentrant: an abandoned reader's unpin may run from a collector
        # Invariant: ordered least to most recently used; key == entry.block_id.
        self._entries: collections.OrderedDict[str, MemoryEntry] = collections.OrderedDict()
        # Invariant: used == sum of entry sizes <= capacity.
        self._used = 0
        self._evictions = self._refused = self._hits = self._misses = 0

    # -- put ------------------------------------------------------------------------------------
    def put_values(self, block_id: str, values: list, *, size: int | None = None) -> PutResult:
        """Keep ``values`` (a list) deserialized; ``size`` defaults to
        :func:`estimate_size`, computed before taking the lock."""
        if not isinstance(values, list):
            raise TypeError(f"put_values takes a list of records, got {type(values).__name__}")
        if size is None:
            size = estimate_size(values)
        return self._put(MemoryEntry(block_id, values, size, deserialized=True))

    def put_bytes(self, block_id: str, data: bytes) -> PutResult:
        """Keep serialized records; their size is ``len(data)``."""
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"put_bytes takes bytes, got {type(data).__name__}")
        return self._put(MemoryEntry(block_id, bytes(data), len(data), deserialized=False))

    def _put(self, entry: MemoryEntry) -> PutResult:
        if entry.size < 0:
            raise ValueError(f"size of block {entry.block_id!r} must be non-negative, got {entry.size}")
        with self._lock:
            if entry.block_id in self._entries:
                raise ValueError(f"block {entry.block_id!r} is already in memory; remove it first")
            if entry.size > self._capacity:
                self._refused += 1
                return PutResult(stored=False)
            needed = self._used + entry.size - self._capacity
            victims: list[MemoryEntry] = []
            if needed > 0:
                freed = 0
                for candidate in self._entries.values():  # least recently used first
                    if candidate.pins:
                        continue
                    victims.append(candidate)
                    freed += candidate.size
                    if freed >= needed:
                        break
                if freed < needed:  # pinned blocks in the way: evict nothing
                    self._refused += 1
                    return PutResult(stored=False)
                for victim in victims:
                    del self._entries[victim.block_id]
                    self._used -= victim.size
                self._evictions += len(victims)
            self._entries[entry.block_id] = entry
            self._used += entry.size
            return PutResult(stored=True, evicted=tuple(victims))

    # -- read -----------------------------------------------------------------------------------
    def get(self, block_id: str, *, pin: bool = False) -> MemoryEntry | None:
        """The entry (now the most recently used), or ``None``; counts a hit or a miss.
        With ``pin`` the entry cannot be evicted until :meth:`unpin` is given it."""
        with self._lock:
            entry = self._entries.get(block_id)
            if entry is None:
                self._misses += 1
                return None
            self._hits += 1
            self._entries.move_to_end(block_id)
            if pin:
                entry.pins += 1
            return entry

    def pin(self, block_id: str) -> MemoryEntry | None:
        """Pin without counting a read (the writer of a block reading it back)."""
        with self._lock:
            entry = self._entries.get(block_id)
            if entry is not None:
                entry.pins += 1
            return entry

    def unpin(self, entry: MemoryEntry) -> None:
        """Release one pin taken by :meth:`get` or :meth:`pin`. The entry may have been
        removed meanwhile; a pin on it then means nothing."""
        with self._lock:
            if entry.pins <= 0:
                raise SparkletInternalError(f"unpin of {entry!r} that is not pinned. Please report it.")
            entry.pins -= 1

    def get_values(self, block_id: str) -> list | None:
        """The records of a block (a new list), or ``None``."""
        entry = self.get(block_id, pin=True)
        if entry is None:
            return None
        try:
            return list(entry.value) if entry.deserialized else entry.values()  # type: ignore[arg-type]
        finally:
            self.unpin(entry)

    def get_bytes(self, block_id: str) -> bytes | None:
        """The serialized records of a block, or ``None``."""
        entry = self.get(block_id, pin=True)
        if entry is None:
            return None
        try:
            return entry.data()
        finally:
            self.unpin(entry)

    def contains(self, block_id: str) -> bool:
        with self._lock:
            return block_id in self._entries

    def size(self, block_id: str) -> int | None:
        with self._lock:
            entry = self._entries.get(block_id)
            return None if entry is None else entry.size

    def block_ids(self) -> list[str]:
        """Stored block ids, least recently used first."""
        with self._lock:
            return list(self._entries)

    # -- remove ---------------------------------------------------------------------------------
    def remove(self, block_id: str) -> MemoryEntry | None:
        """Drop a block (pinned or not: its readers keep their reference)."""
        with self._lock:
            entry = self._entries.pop(block_id, None)
            if entry is not None:
                self._used -= entry.size
            return entry

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._used = 0

    # -- introspection --------------------------------------------------------------------------
    def statistics(self) -> MemoryStoreStatistics:
        with self._lock:
            return MemoryStoreStatistics(
                capacity=self._capacity, used=self._used, blocks=len(self._entries),
                pinned=sum(1 for e in self._entries.values() if e.pins), evictions=self._evictions,
                refused=self._refused, hits=self._hits, misses=self._misses,
            )

    def validate_state(self) -> None:
        with self._lock:
            for key, entry in self._entries.items():
                _check(key == entry.block_id, f"entry {entry!r} filed under {key!r}")
                _check(entry.pins >= 0 and entry.size >= 0, f"bad entry {entry!r}")
            used = sum(e.size for e in self._entries.values())
            _check(used == self._used, f"used is {self._used}, entries hold {used}")
            _check(self._used <= self._capacity, f"used {self._used} exceeds capacity {self._capacity}")


# -- disk -----------------------------------------------------------------------------------------------

_SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")
_TMP_SUFFIX = ".tmp"
_TMP_NAME = re.compile(r"\.[A-Za-z0-9][A-Za-z0-9_.\-]*\.[0-9a-f]{32}\.tmp\Z")



def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


@dataclasses.dataclass(frozen=True)
class StagedWrite:
    """A block written to a temporary file by :meth:`DiskStore.stage`, not yet committed."""

    block_id: str
    tmp_path: str
    size: int


@dataclasses.dataclass(frozen=True)
class DiskStoreStatistics:
    directory: str
    used: int
    blocks: int
    writes: int
    reads: int


class DiskStore:
    """One file per block in ``directory``, written atomically (a temporary file renamed
    into place), so a reader sees the whole block or none of it."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self._directory = os.fspath(directory)
        self._created = not os.path.isdir(self._directory)
        os.makedirs(self._directory, exist_ok=True)
        self._lock = threading.Lock()
        # Invariant: block_id_to_size[b] == size of the file ``directory/b``, which exists.
        self.block_id_to_size: dict[str, int] = {}
        self._writes = self._reads = 0

    @property
    def directory(self) -> str:
        return self._directory

    def _path(self, block_id: str) -> str:
        if not isinstance(block_id, str) or not _SAFE_NAME.match(block_id) or block_id.endswith(_TMP_SUFFIX):
            raise ValueError(f"block_id must be a plain file name ([A-Za-z0-9_.-]), got {block_id!r}")
        return os.path.join(self._directory, block_id)

    def put(self, block_id: str, data: bytes) -> int:
        """Write (or overwrite) a block; returns its size on disk."""
        return self.commit(self.stage(block_id, data))

    def stage(self, block_id: str, data: bytes) -> "StagedWrite":
        """Write a block's bytes to a temporary file, not yet visible: :meth:`commit`
        renames it into place (cheap, so a caller may do it under its own lock),
        :meth:`discard` throws it away."""
        self._path(block_id)  # validates the name
        tmp = os.path.join(self._directory, f".{block_id}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
        try:
            with open(tmp, "wb") as f:
                f.write(data)
        except BaseException:
            _unlink_quietly(tmp)
            raise
        return StagedWrite(block_id, tmp, len(data))

    def commit(self, staged: "StagedWrite") -> int:
        path = self._path(staged.block_id)
        with self._lock:  # rename and index together: the last writer wins in both
            try:
                os.replace(staged.tmp_path, path)
            except BaseException:
                _unlink_quietly(staged.tmp_path)
                raise
            self.block_id_to_size[staged.block_id] = staged.size
            self._writes += 1
        return staged.size

    def discard(self, staged: "StagedWrite") -> None:
        _unlink_quietly(staged.tmp_path)

    def get(self, block_id: str) -> bytes | None:
        path = self._path(block_id)
        with self._lock:
            if block_id not in self.block_id_to_size:
                return None
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:  # removed meanwhile
            return None
        with self._lock:
            self._reads += 1
        return data

    def contains(self, block_id: str) -> bool:
        with self._lock:
            return block_id in self.block_id_to_size

    def size(self, block_id: str) -> int | None:
        with self._lock:
            return self.block_id_to_size.get(block_id)

    def remove(self, block_id: str) -> bool:
        path = self._path(block_id)
        with self._lock:
            if self.block_id_to_size.pop(block_id, None) is None:
                return False
            try:
                os.unlink(path)
            except FileNotFoundError:  # pragma: no cover - someone else's hands in our directory
                pass
            return True

    def clear(self) -> None:
        """Remove every block file and leftover temporary file of this store (files it did
        not write are left alone); the directory too if this store created it."""
        with self._lock:
            names = set(self.block_id_to_size)
            self.block_id_to_size.clear()
            try:
                names.update(n for n in os.listdir(self._directory) if _TMP_NAME.match(n))
            except FileNotFoundError:
                return
            for name in names:
                try:
                    os.unlink(os.path.join(self._directory, name))
                except FileNotFoundError:
                    pass
            if self._created:
                try:
                    os.rmdir(self._directory)
                except OSError:  # something else lives there: leave it
                    pass

    def statistics(self) -> DiskStoreStatistics:
        with self._lock:
            return DiskStoreStatistics(directory=self._directory, used=sum(self.block_id_to_size.values()),
                                       blocks=len(self.block_id_to_size), writes=self._writes, reads=self._reads)

    def validate_state(self) -> None:
        with self._lock:
            for block_id, size in self.block_id_to_size.items():
                path = os.path.join(self._directory, block_id)
                _check(os.path.isfile(path), f"block {block_id!r} indexed but {path} is missing")
                _check(os.path.getsize(path) == size, f"block {block_id!r}: index says {size}, file has {os.path.getsize(path)}")
