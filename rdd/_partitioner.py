"""Partitioners and PySpark's ``portable_hash``.

``portable_hash`` is PySpark's algorithm: ``None`` hashes to 0, tuples combine their items'
portable hashes the CPython 2.7 way, everything else uses ``hash``. PySpark needs
``PYTHONHASHSEED`` set (Spark starts its Python workers with ``PYTHONHASHSEED=0``) because
``hash`` of ``str`` and ``bytes`` is salted. Here ``str`` and ``bytes`` are hashed with
SipHash-1-3 under the zero key, the function CPython 3.11+ itself uses when
``PYTHONHASHSEED=0``: the result is what PySpark computes on its workers, whatever this
process's seed. When the interpreter already hashes that way (it runs with
``PYTHONHASHSEED=0``), the builtin ``hash`` is used for speed. The other builtin types whose
hash is salted are emulated too: naive ``date``/``datetime``/``time`` and ``frozenset``s.
Objects with their own ``__hash__`` over salted values (a frozen dataclass with a ``str``
field) cannot be: they partition consistently only among processes that share a seed,
which is why executors should run with ``PYTHONHASHSEED=0`` as Spark's do.

Unhashable values raise ``TypeError`` (from ``hash``) as in PySpark.
"""

from __future__ import annotations

import datetime
import sys
from typing import Any, Callable, Hashable

__all__ = ["portable_hash", "Partitioner", "HashPartitioner"]

_MASK64 = 0xFFFFFFFFFFFFFFFF


def _rotl(x: int, b: int) -> int:
    return ((x << b) | (x >> (64 - b))) & _MASK64


def _siphash13(data: bytes) -> int:
    """CPython's SipHash-1-3 with the zero key (``Python/pyhash.c``), as a signed 64-bit int."""
    v0 = 0x736F6D6570736575
    v1 = 0x646F72616E646F6D
    v2 = 0x6C7967656E657261
    v3 = 0x7465646279746573
    size = len(data)
    tail_start = size - size % 8

    def rounds(v0: int, v1: int, v2: int, v3: int, n: int) -> tuple[int, int, int, int]:
        for _ in range(n):
            v0 = (v0 + v1) & _MASK64
            v2 = (v2 + v3) & _MASK64
            v1 = _rotl(v1, 13) ^ v0
            v3 = _rotl(v3, 16) ^ v2
            v0 = _rotl(v0, 32)
            v2 = (v2 + v1) & _MASK64
            v0 = (v0 + v3) & _MASK64
            v1 = _rotl(v1, 17) ^ v2
            v3 = _rotl(v3, 21) ^ v0
            v2 = _rotl(v2, 32)
        return v0, v1, v2, v3

    for offset in range(0, tail_start, 8):
        m = int.from_bytes(data[offset:offset + 8], "little")
        v3 ^= m
        v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 1)
        v0 ^= m
    b = ((size << 56) | int.from_bytes(data[tail_start:], "little")) & _MASK64
    v3 ^= b
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 1)
    v0 ^= b
    v2 ^= 0xFF
    v0, v1, v2, v3 = rounds(v0, v1, v2, v3, 3)
    h = v0 ^ v1 ^ v2 ^ v3
    return h - (1 << 64) if h >= (1 << 63) else h


def _hash_bytes(data: bytes) -> int:
    """CPython's ``_Py_HashBytes`` with ``PYTHONHASHSEED=0``."""
    if not data:
        return 0
    h = _siphash13(data)
    return -2 if h == -1 else h


def _str_payload(s: str) -> bytes:
    """The bytes CPython hashes for ``s``: its PEP 393 representation (1, 2 or 4 bytes per
    code point, little-endian on the platforms we run on)."""
    widest = max(map(ord, s), default=0)
    if widest < 0x100:
        return s.encode("latin-1")
    if widest < 0x10000:
        return s.encode("utf-16-le", "surrogatepass")
    return s.encode("utf-32-le", "surrogatepass")


def _portable_str_hash(s: str) -> int:
    return _hash_bytes(_str_payload(s))


def _signed(h: int) -> int:
    h &= _MASK64
    return h - (1 << 64) if h >= (1 << 63) else h


def _tuple_hash(t: tuple) -> int:
    """CPython 3.8+'s tuple hash (xxHash-based) over seed-0 item hashes."""
    acc = 2870177450012600261
    for item in t:
        lane = _seed0_hash(item) & _MASK64
        acc = (acc + lane * 14029467366897019727) & _MASK64
        acc = ((acc << 31) | (acc >> 33)) & _MASK64
        acc = (acc * 11400714785074694791) & _MASK64
    acc = (acc + (len(t) ^ (2870177450012600261 ^ 3527539))) & _MASK64
    return 1546275796 if acc == _MASK64 else _signed(acc)


def _shuffle_bits(h: int) -> int:
    h &= _MASK64
    return (((h ^ 89869747) ^ ((h << 16) & _MASK64)) * 3644798167) & _MASK64


def _frozenset_hash(s: frozenset) -> int:
    """CPython's frozenset hash (an xor of the items' shuffled hashes: independent of the
    table layout) over seed-0 item hashes."""
    h = 0
    for item in s:
        h ^= _shuffle_bits(_seed0_hash(item))
    h ^= ((len(s) + 1) * 1927868237) & _MASK64
    h ^= (h >> 11) ^ (h >> 25)
    h = (h * 69069 + 907133923) & _MASK64
    return 590923713 if h == _MASK64 else _signed(h)


def _seed0_hash(x: Any) -> int:
    """``hash(x)`` as CPython computes it with ``PYTHONHASHSEED=0``, for the builtin types
    whose hash is salted (str, bytes, naive date/datetime/time, and tuples and frozensets of
    them); other values hash as they do here."""
    if isinstance(x, str):
        return _portable_str_hash(x)
    if type(x) is bytes:
        return _hash_bytes(x)
    if isinstance(x, tuple):
        return _tuple_hash(x)
    if isinstance(x, frozenset):
        return _frozenset_hash(x)
    if isinstance(x, (datetime.date, datetime.time)):
        data = _datetime_payload(x)
        if data is not None:
            return _hash_bytes(data)
    return hash(x)


def _datetime_payload(x: Any) -> bytes | None:
    """The bytes CPython's ``_datetime`` hashes for a naive date, datetime or time."""
    if type(x) is datetime.date:
        return bytes([x.year >> 8, x.year & 0xFF, x.month, x.day])
    if type(x) is datetime.datetime and x.utcoffset() is None:
        us = x.microsecond
        return bytes([x.year >> 8, x.year & 0xFF, x.month, x.day, x.hour, x.minute, x.second,
                      us >> 16, (us >> 8) & 0xFF, us & 0xFF])
    if type(x) is datetime.time and x.utcoffset() is None:
        us = x.microsecond
        return bytes([x.hour, x.minute, x.second, us >> 16, (us >> 8) & 0xFF, us & 0xFF])
    return None


def _builtin_is_portable() -> bool:
    """Does this interpreter's ``hash`` of str/bytes already equal the zero-key SipHash-1-3?"""
    if sys.byteorder != "little":
        return False
    probes = ["sparklet", "portable_hash \u00e9", "\u4e2d\u6587", "\U0001f600 x"]
    try:
        return (all(hash(p) == _portable_str_hash(p) for p in probes)
                and hash(b"sparklet bytes") == _hash_bytes(b"sparklet bytes"))
    except Exception:  # pragma: no cover - defensive: fall back to the pure-Python path
        return False


_BUILTIN_IS_PORTABLE = _builtin_is_portable()


def portable_hash(x: Hashable) -> int:
    """Return a hash code for ``x`` that is the same in every process, whatever its
    ``PYTHONHASHSEED`` (PySpark's algorithm; strings hash as CPython does with seed 0).

    >>> portable_hash(None)
    0
    >>> portable_hash((None, 1)) & 0xffffffff
    219750521
    >>> portable_hash(42)
    42
    >>> portable_hash([1])
    Traceback (most recent call last):
        ...
    TypeError: unhashable type: 'list'
    """
    if x is None:
        return 0
    if isinstance(x, tuple):
        h = 0x345678
        for i in x:
            h ^= portable_hash(i)
            h *= 1000003
            h &= sys.maxsize
        h ^= len(x)
        if h == -1:
            h = -2
        return int(h)
    if _BUILTIN_IS_PORTABLE:
        return hash(x)
    if isinstance(x, bytearray):
        hash(x)  # unhashable: raise as PySpark does
    return _seed0_hash(x)


class Partitioner:
    """Which partition a key goes to: ``partitionFunc(key) % numPartitions`` (PySpark's
    ``Partitioner``). Two partitioners are equal when they are of the same class, have the
    same number of partitions and the same function.

    >>> p = Partitioner(4, lambda k: k)
    >>> p(6), p.getPartition(7), p.numPartitions
    (2, 3, 4)
    """

    def __init__(self, numPartitions: int, partitionFunc: Callable[[Any], int]) -> None:
        if isinstance(numPartitions, bool) or not isinstance(numPartitions, int) or numPartitions < 1:
            raise ValueError(f"numPartitions must be a positive integer, got {numPartitions!r}")
        self.numPartitions = numPartitions
        self.partitionFunc = partitionFunc

    def getPartition(self, key: Any) -> int:
        """The partition index of ``key``, in ``[0, numPartitions)``.

        >>> HashPartitioner(3).getPartition("a") in (0, 1, 2)
        True
        """
        return self.partitionFunc(key) % self.numPartitions

    def __call__(self, key: Any) -> int:
        return self.partitionFunc(key) % self.numPartitions

    def __eq__(self, other: object) -> bool:
        return (type(other) is type(self) and self.numPartitions == other.numPartitions  # type: ignore[attr-defined]
                and self.partitionFunc == other.partitionFunc)  # type: ignore[attr-defined]

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.numPartitions))

    def __repr__(self) -> str:
        func = getattr(self.partitionFunc, "__qualname__", repr(self.partitionFunc))
        return f"{type(self).__name__}({self.numPartitions}, {func})"


class HashPartitioner(Partitioner):
    """Partitions by ``portable_hash(key) % numPartitions``; equal to any other
    ``HashPartitioner`` with the same number of partitions.

    >>> HashPartitioner(2) == HashPartitioner(2), HashPartitioner(2) == HashPartitioner(3)
    (True, False)
    >>> [HashPartitioner(3)(k) for k in (0, 1, 5, None)]
    [0, 1, 2, 0]
    """

    def __init__(self, numPartitions: int) -> None:
        super().__init__(numPartitions, portable_hash)

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.numPartitions == other.numPartitions  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash(("HashPartitioner", self.numPartitions))

    def __repr__(self) -> str:
        return f"HashPartitioner({self.numPartitions})"
