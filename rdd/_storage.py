"""Storage levels, with PySpark's names, fields and reprs."""

from __future__ import annotations

__all__ = ["StorageLevel"]


class StorageLevel:
    """Flags for controlling the storage of an RDD: whether to use memory, disk or both,
    whether to keep the data deserialized, and on how many executors to replicate it.

    >>> StorageLevel.MEMORY_AND_DISK_2
    StorageLevel(True, True, False, False, 2)
    >>> str(StorageLevel.MEMORY_ONLY)
    'Memory Serialized 1x Replicated'
    """

    def __init__(self, useDisk: bool, useMemory: bool, useOffHeap: bool, deserialized: bool, replication: int = 1) -> None:
        if not isinstance(replication, int) or replication < 1:
            raise ValueError(f"replication must be a positive integer, got {replication!r}")
        self.useDisk = useDisk
        self.useMemory = useMemory
        self.useOffHeap = useOffHeap
        self.deserialized = deserialized
        self.replication = replication

    @property
    def is_valid(self) -> bool:
        return self.useMemory or self.useDisk

    def __repr__(self) -> str:
        return (f"StorageLevel({self.useDisk}, {self.useMemory}, {self.useOffHeap}, "
                f"{self.deserialized}, {self.replication})")

    def __str__(self) -> str:
        result = ""
        result += "Disk " if self.useDisk else ""
        result += "Memory " if self.useMemory else ""
        result += "OffHeap " if self.useOffHeap else ""
        result += "Deserialized " if self.deserialized else "Serialized "
        result += f"{self.replication}x Replicated"
        return result

    def _key(self) -> tuple:
        return (self.useDisk, self.useMemory, self.useOffHeap, self.deserialized, self.replication)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StorageLevel) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


StorageLevel.NONE = StorageLevel(False, False, False, False)  # not persisted (not a PySpark name)
StorageLevel.DISK_ONLY = StorageLevel(True, False, False, False)
StorageLevel.DISK_ONLY_2 = StorageLevel(True, False, False, False, 2)
StorageLevel.DISK_ONLY_3 = StorageLevel(True, False, False, False, 3)
StorageLevel.MEMORY_ONLY = StorageLevel(False, True, False, False)
StorageLevel.MEMORY_ONLY_2 = StorageLevel(False, True, False, False, 2)
StorageLevel.MEMORY_AND_DISK = StorageLevel(True, True, False, False)
StorageLevel.MEMORY_AND_DISK_2 = StorageLevel(True, True, False, False, 2)
StorageLevel.OFF_HEAP = StorageLevel(True, True, True, False, 1)
StorageLevel.MEMORY_AND_DISK_DESER = StorageLevel(True, True, False, True)
