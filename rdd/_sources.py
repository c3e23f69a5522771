"""Source RDDs and the constructors the Context calls (PySpark's ``SparkContext`` methods with
the context as first argument): ``parallelize``, ``range``, ``emptyRDD``, ``textFile``,
``wholeTextFiles``, ``pickleFile``, ``union``.

``parallelize`` slices exactly as PySpark: a ``range`` is cut lazily at
``start + int(split * size / numSlices) * step`` (a partition carries three numbers); any
other iterable is turned into a list, cut into pickling batches of
``max(1, min(len // numSlices, 1024))`` records (PySpark's ``BatchedSerializer``) and the
batches are sliced by position as the JVM's ``ParallelCollectionRDD`` does,
``[(i * n) // numSlices, ((i + 1) * n) // numSlices)``. When ``len < 2 * numSlices`` a batch is
one record and that is plain positional slicing of the records. A partition object carries
its slice; the RDD itself pickles without the data.
"""

from __future__ import annotations

import builtins
import dataclasses
import os
from typing import Any, Iterable, Sequence

from sparklet.actors import SparkletInternalError
from sparklet.rdd import _files
from sparklet.rdd._base import Partition, RDDBase, TaskContext
from sparklet.rdd._rdd import RDD
from sparklet.rdd._util import counted, expect_partition

__all__ = [
    "parallelize", "range", "emptyRDD", "textFile", "wholeTextFiles", "pickleFile", "union",
    "ParallelCollectionRDD", "EmptyRDD", "TextFileRDD", "WholeTextFilesRDD", "PickleFileRDD", "CheckpointRDD",
]

_MAX_BATCH = 1024  # PySpark's default: SparkContext._batchSize or 1024


@dataclasses.dataclass(frozen=True, eq=False)
class SlicePartition(Partition):
    values: tuple


@dataclasses.dataclass(frozen=True, eq=False)
class RangePartition(Partition):
    start: int
    stop: int
    step: int


class ParallelCollectionRDD(RDD):
    """A local collection cut into partitions (see the module notes)."""

    def __init__(self, ctx: Any, data: list | builtins.range, numSlices: int) -> None:
        super().__init__(ctx)
        self._data: list | builtins.range | None = data
        self._num_slices = numSlices

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_data"] = None  # the slices travel with their partitions only
        return state

    def _get_partitions(self) -> list[Partition]:
        data, n = self._data, self._num_slices
        if data is None:
            raise SparkletInternalError(f"{self!r}: its partitions are computed on the driver, not from a task")
        if isinstance(data, builtins.range):
            size = len(data)
            if size == 0:
                return [SlicePartition(i, ()) for i in builtins.range(n)]
            step = data[1] - data[0] if size > 1 else 1
            start0 = data[0]

            def get_start(split: int) -> int:
                return start0 + int(split * size / n) * step

            return [RangePartition(i, get_start(i), get_start(i + 1), step) for i in builtins.range(n)]
        length = len(data)
        batch = max(1, min(length // n, _MAX_BATCH))
        num_batches = -(-length // batch)
        parts = []
        for i in builtins.range(n):
            lo = ((i * num_batches) // n) * batch
            hi = min((((i + 1) * num_batches) // n) * batch, length)
            parts.append(SlicePartition(i, tuple(data[lo:hi])))
        return parts

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        if isinstance(split, RangePartition):
            return counted(builtins.range(split.start, split.stop, split.step), context)
        split = expect_partition(self, split, SlicePartition)
        return counted(split.values, context)


class EmptyRDD(RDD):
    """An RDD that has no partitions or elements."""

    def _get_partitions(self) -> list[Partition]:
        return []

    def compute(self, split: Partition, context: TaskContext) -> Iterable:  # pragma: no cover - no partitions
        return ()


def _num_slices(ctx: Any, numSlices: int | None) -> int:
    n = int(numSlices) if numSlices is not None else ctx.defaultParallelism
    if n < 1:
        raise ValueError(f"Positive number of partitions required (numSlices={numSlices!r})")
    return n


def parallelize(ctx: Any, c: Iterable, numSlices: int | None = None) -> RDD:
    """Distribute a local Python collection to form an RDD; ``range`` is recommended for
    ranges (its partitions are computed lazily).

    >>> sc.parallelize([0, 2, 3, 4, 6], 5).glom().collect()
    [[0], [2], [3], [4], [6]]
    >>> sc.parallelize(range(0, 6, 2), 5).glom().collect()
    [[], [0], [], [2], [4]]
    >>> sc.parallelize(["a", "b", "c"], 2).glom().collect()
    [['a'], ['b', 'c']]
    """
    n = _num_slices(ctx, numSlices)
    data = c if isinstance(c, builtins.range) else list(c)
    return ParallelCollectionRDD(ctx, data, n)


def range(ctx: Any, start: int, end: int | None = None, step: int = 1, numSlices: int | None = None) -> RDD:
    """An RDD of the ints from ``start`` to ``end`` (exclusive) by ``step``; with one argument,
    that argument is ``end`` and ``start`` is 0.

    >>> sc.range(5).collect()
    [0, 1, 2, 3, 4]
    >>> sc.range(2, 4).collect()
    [2, 3]
    >>> sc.range(1, 7, 2).collect()
    [1, 3, 5]
    >>> sc.range(5, 0, -1).collect()
    [5, 4, 3, 2, 1]
    >>> sc.range(5, numSlices=10).getNumPartitions()
    10
    """
    if end is None:
        end = start
        start = 0
    return parallelize(ctx, builtins.range(start, end, step), numSlices)


def emptyRDD(ctx: Any) -> RDD:
    """Create an RDD that has no partitions or elements.

    >>> sc.emptyRDD().count()
    0
    >>> sc.emptyRDD().getNumPartitions()
    0
    """
    return EmptyRDD(ctx)


def union(ctx: Any, rdds: Sequence[RDDBase]) -> RDD:
    """Build the union of a list of RDDs (partitioner-aware when they all share one).

    >>> sc.union([sc.parallelize([1, 2], 1), sc.parallelize([3], 1)]).glom().collect()
    [[1, 2], [3]]
    """
    from sparklet.rdd._narrow import make_union

    rdds = list(rdds)
    if not rdds:
        raise IndexError("union() needs at least one RDD, got an empty list")
    return make_union(ctx, rdds)


# -- files ------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True, eq=False)
class FileSplitPartition(Partition):
    split: _files.FileSplit


class TextFileRDD(RDD):
    """The lines of text files, split by byte ranges (Hadoop's ``TextInputFormat``)."""

    def __init__(self, ctx: Any, name: str, minPartitions: int, use_unicode: bool) -> None:
        super().__init__(ctx)
        self._path, self._min_partitions, self._use_unicode = name, minPartitions, use_unicode

    def _get_partitions(self) -> list[Partition]:
        splits = _files.file_splits(_files.list_input_files(self._path), self._min_partitions)
        return [FileSplitPartition(i, s) for i, s in enumerate(splits)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, FileSplitPartition)
        return counted(_files.read_lines(split.split, self._use_unicode), context)


def textFile(ctx: Any, name: str, minPartitions: int | None = None, use_unicode: bool = True) -> RDD:
    """Read text files (a file, a directory, a glob, or comma-separated paths) as an RDD of
    lines. ``.gz`` files are read whole; others are split by byte ranges.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     with open(os.path.join(d, "a.txt"), "w") as f:
    ...         _ = f.write("x\\ny\\nz\\n")
    ...     sc.textFile(d, 3).collect()
    ['x', 'y', 'z']
    """
    minPartitions = minPartitions or min(ctx.defaultParallelism, 2)
    return TextFileRDD(ctx, name, minPartitions, use_unicode)


@dataclasses.dataclass(frozen=True, eq=False)
class WholeFilesPartition(Partition):
    paths: tuple


class WholeTextFilesRDD(RDD):
    """``(file: URI, content)`` per file; files are packed into partitions of at most
    ``ceil(total bytes / minPartitions)`` bytes, in path order (a single-node
    ``CombineFileInputFormat``)."""

    def __init__(self, ctx: Any, path: str, minPartitions: int, use_unicode: bool) -> None:
        super().__init__(ctx)
        self._path, self._min_partitions, self._use_unicode = path, minPartitions, use_unicode

    def _get_partitions(self) -> list[Partition]:
        files = [(p, os.path.getsize(p)) for p in _files.list_input_files(self._path)]
        total = sum(size for _, size in files)
        max_split = -(-total // max(self._min_partitions, 1))
        groups: list[tuple[list[str], int]] = []
        current: list[str] = []
        size = 0
        for path, n in files:
            current.append(path)
            size += n
            if size >= max_split:
                groups.append((current, size))
                current, size = [], 0
        if current:
            groups.append((current, size))
        groups = [g for g in groups if g[1] > 0]  # empty splits are dropped
        return [WholeFilesPartition(i, tuple(paths)) for i, (paths, _) in enumerate(groups)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, WholeFilesPartition)
        use_unicode = self._use_unicode
        for path in split.paths:
            data = _files.read_whole_file(path)
            yield (_files.file_uri(path), data.decode("utf-8", "replace") if use_unicode else data)


def wholeTextFiles(ctx: Any, path: str, minPartitions: int | None = None, use_unicode: bool = True) -> RDD:
    """Read a directory of text files: one ``(path, content)`` record per file, the path as a
    ``file:`` URI.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name, text in [("1.txt", "123"), ("2.txt", "xyz")]:
    ...         with open(os.path.join(d, name), "w") as f:
    ...             _ = f.write(text)
    ...     collected = sorted(sc.wholeTextFiles(d).collect())
    >>> [(p.startswith("file:/"), os.path.basename(p), text) for p, text in collected]
    [(True, '1.txt', '123'), (True, '2.txt', 'xyz')]
    """
    minPartitions = minPartitions or min(ctx.defaultParallelism, 2)
    return WholeTextFilesRDD(ctx, path, minPartitions, use_unicode)


class PickleFileRDD(RDD):
    """The records of files written by ``saveAsPickleFile``, split by byte ranges."""

    def __init__(self, ctx: Any, name: str, minPartitions: int) -> None:
        super().__init__(ctx)
        self._path, self._min_partitions = name, minPartitions

    def _get_partitions(self) -> list[Partition]:
        splits = _files.file_splits(_files.list_input_files(self._path), self._min_partitions, splittable=True)
        return [FileSplitPartition(i, s) for i, s in enumerate(splits)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, FileSplitPartition)
        s = split.split
        return counted(_files.read_frames(s.path, s.start, s.start + s.length), context)


def pickleFile(ctx: Any, name: str, minPartitions: int | None = None) -> RDD:
    """Load an RDD previously saved using :meth:`RDD.saveAsPickleFile`.

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     path = os.path.join(d, "pickled")
    ...     sc.parallelize(range(10)).saveAsPickleFile(path, 3)
    ...     sorted(sc.pickleFile(path, 3).collect())
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    minPartitions = minPartitions or min(ctx.defaultParallelism, 2)
    return PickleFileRDD(ctx, name, minPartitions)


@dataclasses.dataclass(frozen=True, eq=False)
class CheckpointPartition(Partition):
    path: str


class CheckpointRDD(RDD):
    """Reads the files an RDD was checkpointed to (Spark's ``ReliableCheckpointRDD``)."""

    def __init__(self, ctx: Any, directory: str, num_partitions: int) -> None:
        super().__init__(ctx)
        self.directory = directory
        self._expected = num_partitions

    def _get_partitions(self) -> list[Partition]:
        names = sorted(n for n in os.listdir(self.directory) if n.startswith("part-"))
        if len(names) != self._expected:
            raise RuntimeError(
                f"Checkpoint RDD has a different number of partitions ({len(names)}) from the original "
                f"RDD ({self._expected}) in {_files.file_uri(self.directory)}")
        return [CheckpointPartition(i, os.path.join(self.directory, n)) for i, n in enumerate(names)]

    def compute(self, split: Partition, context: TaskContext) -> Iterable:
        split = expect_partition(self, split, CheckpointPartition)
        return counted(_files.read_frames(split.path), context)
