"""``sparklet.Context``: PySpark's SparkContext surface over :class:`ContextCore`."""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from sparklet import rdd as _rdd
from sparklet.rdd import RDD
from sparklet.runtime._context import ContextCore

__all__ = ["Context"]


class Context(ContextCore):
    """The entry point to sparklet: creates RDDs, broadcasts and accumulators, runs jobs.

    ``Context(master=None, appName=None, conf=None, *, faults=None, ui=None)``: what is not given comes
    from ``sparklet submit``'s options (``SPARKLET_MASTER``, ``SPARKLET_APP_NAME``,
    ``SPARKLET_CONF``; see runtime/_submit.py), else ``local[*]`` and ``"sparklet"``. Usable as
    ``with`` (blocking actions) and ``async with`` (inside a running loop, with the
    ``...Async`` actions). ``faults`` is a :class:`FaultPlan` to inject; ``ui=True`` (or a
    port) serves the live UI at ``sc.uiWebUrl`` (docs/observability.md).
    """

    @classmethod
    def getOrCreate(cls, conf: dict | None = None) -> "Context":
        """The running context created last, or a new one from the defaults: the options of
        ``sparklet submit`` (the ``SPARKLET_MASTER``, ``SPARKLET_APP_NAME`` and
        ``SPARKLET_CONF`` variables), then ``local[*]``. ``conf`` applies to a new context only.

        >>> Context.getOrCreate() is Context.getOrCreate()
        True
        """
        with ContextCore._running_lock:
            running = [c for c in ContextCore._running if isinstance(c, cls) and not c._stopped]
        return running[-1] if running else cls(conf=conf)

    def parallelize(self, c: Iterable, numSlices: int | None = None) -> RDD:
        """Distribute a local Python collection to form an RDD. Using range is recommended
        if the input represents a range for performance.

        >>> sc.parallelize([0, 2, 3, 4, 6], 5).glom().collect()
        [[0], [2], [3], [4], [6]]
        >>> sc.parallelize(range(0, 6, 2), 5).glom().collect()
        [[], [0], [], [2], [4]]
        """
        return _rdd.parallelize(self, c, numSlices)

    def range(self, start: int, end: int | None = None, step: int = 1, numSlices: int | None = None) -> RDD:
        """Create a new RDD of int containing elements from `start` to `end` (exclusive),
        increased by `step` every element.

        >>> sc.range(5).collect()
        [0, 1, 2, 3, 4]
        >>> sc.range(2, 4).collect()
        [2, 3]
        >>> sc.range(1, 7, 2).collect()
        [1, 3, 5]
        """
        return _rdd.range(self, start, end, step, numSlices)

    def emptyRDD(self) -> RDD:
        """Create an RDD that has no partitions or elements.

        >>> sc.emptyRDD().count()
        0
        """
        return _rdd.emptyRDD(self)

    def textFile(self, name: str, minPartitions: int | None = None, use_unicode: bool = True) -> RDD:
        """Read a text file (a file, a directory, a glob, or comma-separated paths; ``.gz``
        files too) and return it as an RDD of lines.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "sample-text.txt")
        >>> with open(path, "w") as f:
        ...     _ = f.write("Hello world!\\nsecond line")
        >>> sc.textFile(path).collect()
        ['Hello world!', 'second line']
        """
        return _rdd.textFile(self, name, minPartitions, use_unicode)

    def wholeTextFiles(self, path: str, minPartitions: int | None = None, use_unicode: bool = True) -> RDD:
        """Read a directory of text files; each file is one ``(path, content)`` record.

        >>> import os, tempfile
        >>> folder = tempfile.mkdtemp()
        >>> with open(os.path.join(folder, "1.txt"), "w") as f:
        ...     _ = f.write("1")
        >>> [content for _, content in sc.wholeTextFiles(folder).collect()]
        ['1']
        """
        return _rdd.wholeTextFiles(self, path, minPartitions, use_unicode)

    def pickleFile(self, name: str, minPartitions: int | None = None) -> RDD:
        """Load an RDD previously saved using :meth:`RDD.saveAsPickleFile`.

        >>> import os, tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "pickled")
        >>> sc.parallelize(range(10)).saveAsPickleFile(path, 5)
        >>> sorted(sc.pickleFile(path, 3).collect())
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
        """
        return _rdd.pickleFile(self, name, minPartitions)

    def union(self, rdds: Sequence[RDD]) -> RDD:
        """Build the union of a list of RDDs.

        >>> sorted(sc.union([sc.parallelize([1, 2]), sc.parallelize([3])]).collect())
        [1, 2, 3]
        """
        return _rdd.union(self, rdds)

    def statusTracker(self) -> Any:
        """Low-level status of jobs and stages, from the scheduler events."""
        from sparklet.runtime._status import StatusTracker

        return StatusTracker(self.listener_bus)
