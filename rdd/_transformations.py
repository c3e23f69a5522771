"""Narrow transformations (PySpark's names, argument orders, defaults and results).

Each element-wise operation is a ``mapPartitionsWithIndex`` and so pipelines with its
neighbours (see :class:`~sparklet.rdd._narrow.PipelinedRDD`).
"""

from __future__ import annotations

import random
import shlex
import threading
from subprocess import PIPE, Popen
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

from sparklet.rdd._base import Determinism
from sparklet.rdd._sampler import RDDRangeSampler, RDDSampler

if TYPE_CHECKING:
    from sparklet.rdd._rdd import RDD

__all__ = ["TransformationsMixin"]


def _narrow() -> Any:
    from sparklet.rdd import _narrow as module  # the narrow RDD classes subclass RDD

    return module


class TransformationsMixin:
    def mapPartitionsWithIndex(self, f: Callable[[int, Iterable], Iterable],
                               preservesPartitioning: bool = False) -> "RDD":
        """Return a new RDD by applying a function to each partition of this RDD, while
        tracking the index of the original partition.

        >>> rdd = sc.parallelize([1, 2, 3, 4], 4)
        >>> def f(splitIndex, iterator): yield splitIndex
        >>> rdd.mapPartitionsWithIndex(f).sum()
        6
        """
        return _narrow().PipelinedRDD(self, f, preservesPartitioning)

    def mapPartitions(self, f: Callable[[Iterable], Iterable], preservesPartitioning: bool = False) -> "RDD":
        """Return a new RDD by applying a function to each partition of this RDD.

        >>> rdd = sc.parallelize([1, 2, 3, 4], 2)
        >>> def f(iterator): yield sum(iterator)
        >>> rdd.mapPartitions(f).collect()
        [3, 7]
        """

        def func(_: int, iterator: Iterable) -> Iterable:
            return f(iterator)

        return self.mapPartitionsWithIndex(func, preservesPartitioning)

    def map(self, f: Callable[[Any], Any], preservesPartitioning: bool = False) -> "RDD":
        """Return a new RDD by applying a function to each element of this RDD.

        >>> rdd = sc.parallelize(["b", "a", "c"])
        >>> sorted(rdd.map(lambda x: (x, 1)).collect())
        [('a', 1), ('b', 1), ('c', 1)]
        """
        return _narrow().PipelinedRDD(self, None, preservesPartitioning, record_step=("map", f))

    def flatMap(self, f: Callable[[Any], Iterable], preservesPartitioning: bool = False) -> "RDD":
        """Return a new RDD by first applying a function to all elements of this RDD, and then
        flattening the results.

        >>> rdd = sc.parallelize([2, 3, 4])
        >>> sorted(rdd.flatMap(lambda x: range(1, x)).collect())
        [1, 1, 1, 2, 2, 3]
        >>> sorted(rdd.flatMap(lambda x: [(x, x), (x, x)]).collect())
        [(2, 2), (2, 2), (3, 3), (3, 3), (4, 4), (4, 4)]
        """
        return _narrow().PipelinedRDD(self, None, preservesPartitioning, record_step=("flatMap", f))

    def filter(self, f: Callable[[Any], bool]) -> "RDD":
        """Return a new RDD containing only the elements that satisfy a predicate.

        >>> rdd = sc.parallelize([1, 2, 3, 4, 5])
        >>> rdd.filter(lambda x: x % 2 == 0).collect()
        [2, 4]
        """
        return _narrow().PipelinedRDD(self, None, True, record_step=("filter", f))

    def mapValues(self, f: Callable[[Any], Any]) -> "RDD":
        """Pass each value in the key-value pair RDD through a map function without changing
        the keys; this also retains the original RDD's partitioning.

        >>> rdd = sc.parallelize([("a", ["apple", "banana", "lemon"]), ("b", ["grapes"])])
        >>> rdd.mapValues(len).collect()
        [('a', 3), ('b', 1)]
        """

        def map_values_fn(kv: Any) -> tuple:
            return kv[0], f(kv[1])

        return self.map(map_values_fn, preservesPartitioning=True)

    def flatMapValues(self, f: Callable[[Any], Iterable]) -> "RDD":
        """Pass each value in the key-value pair RDD through a flatMap function without
        changing the keys; this also retains the original RDD's partitioning.

        >>> rdd = sc.parallelize([("a", ["x", "y", "z"]), ("b", ["p", "r"])])
        >>> rdd.flatMapValues(lambda x: x).collect()
        [('a', 'x'), ('a', 'y'), ('a', 'z'), ('b', 'p'), ('b', 'r')]
        """

        def flat_map_fn(kv: Any) -> Iterable:
            return ((kv[0], x) for x in f(kv[1]))

        return self.flatMap(flat_map_fn, preservesPartitioning=True)

    def keys(self) -> "RDD":
        """Return an RDD with the keys of each tuple.

        >>> sc.parallelize([(1, 2), (3, 4)]).keys().collect()
        [1, 3]
        """
        return self.map(lambda x: x[0])

    def values(self) -> "RDD":
        """Return an RDD with the values of each tuple.

        >>> sc.parallelize([(1, 2), (3, 4)]).values().collect()
        [2, 4]
        """
        return self.map(lambda x: x[1])

    def keyBy(self, f: Callable[[Any], Any]) -> "RDD":
        """Creates tuples of the elements in this RDD by applying ``f``.

        >>> sc.parallelize(range(0, 3)).keyBy(lambda x: x * x).collect()
        [(0, 0), (1, 1), (4, 2)]
        """
        return self.map(lambda x: (f(x), x))

    def glom(self) -> "RDD":
        """Return an RDD created by coalescing all elements within each partition into a list.

        >>> sc.parallelize([1, 2, 3, 4], 2).glom().collect()
        [[1, 2], [3, 4]]
        """

        def func(_: int, iterator: Iterable) -> Iterable:
            yield list(iterator)

        return _narrow().PipelinedRDD(self, func, order_sensitive=True)  # a list's order is part of it

    def union(self, other: "RDD") -> "RDD":
        """Return the union of this RDD and another one.

        >>> rdd = sc.parallelize([1, 1, 2, 3])
        >>> rdd.union(rdd).collect()
        [1, 1, 2, 3, 1, 1, 2, 3]
        """
        ctx = self._require_driver("union")  # type: ignore[attr-defined]
        return _narrow().make_union(ctx, [self, other])

    def __add__(self, other: "RDD") -> "RDD":
        """Return the union of this RDD and another one.

        >>> rdd = sc.parallelize([1, 1, 2, 3])
        >>> (rdd + rdd).collect()
        [1, 1, 2, 3, 1, 1, 2, 3]
        """
        from sparklet.rdd._rdd import RDD

        if not isinstance(other, RDD):
            raise TypeError(f"can only add an RDD to an RDD, not {type(other).__name__}")
        return self.union(other)

    def zip(self, other: "RDD") -> "RDD":
        """Zips this RDD with another one, returning key-value pairs with the first element in
        each RDD, second element in each RDD, etc. Assumes that the two RDDs have the same
        number of partitions and the same number of elements in each partition.

        >>> rdd1 = sc.parallelize(range(0, 5))
        >>> rdd2 = sc.parallelize(range(1000, 1005))
        >>> rdd1.zip(rdd2).collect()
        [(0, 1000), (1, 1001), (2, 1002), (3, 1003), (4, 1004)]
        """
        self._require_driver("zip")  # type: ignore[attr-defined]
        if self.getNumPartitions() != other.getNumPartitions():  # type: ignore[attr-defined]
            raise ValueError("Can only zip with RDD which has the same number of partitions")
        return _narrow().ZippedPartitionsRDD(self, other)

    def zipWithIndex(self) -> "RDD":
        """Zips this RDD with its element indices: the first item in the first partition gets
        index 0, the last item in the last partition the largest index. Runs a job to count
        the partitions first when there are more than one.

        >>> sc.parallelize(["a", "b", "c", "d"], 3).zipWithIndex().collect()
        [('a', 0), ('b', 1), ('c', 2), ('d', 3)]
        """
        return self._sync(self.zipWithIndexAsync())  # type: ignore[attr-defined]

    async def zipWithIndexAsync(self) -> "RDD":
        """Awaitable twin of :meth:`zipWithIndex`; cancelling the awaiting task cancels the
        counting job.

        >>> import asyncio
        >>> asyncio.run(sc.parallelize("xyz", 2).zipWithIndexAsync()).collect()
        [('x', 0), ('y', 1), ('z', 2)]
        """
        starts = [0]
        if self.getNumPartitions() > 1:  # type: ignore[attr-defined]
            nums = await self._run_job(lambda _, it: sum(1 for _ in it))  # type: ignore[attr-defined]
            for i in range(len(nums) - 1):
                starts.append(starts[-1] + nums[i])

        def func(k: int, it: Iterable) -> Iterable:
            for i, v in enumerate(it, starts[k]):
                yield v, i

        return _narrow().PipelinedRDD(self, func, order_sensitive=True)

    def zipWithUniqueId(self) -> "RDD":
        """Zips this RDD with generated unique ids: items in the kth partition get ids k, n+k,
        2*n+k, ..., where n is the number of partitions. Runs no job.

        >>> sc.parallelize(["a", "b", "c", "d", "e"], 3).zipWithUniqueId().collect()
        [('a', 0), ('b', 1), ('c', 4), ('d', 2), ('e', 5)]
        """
        n = self.getNumPartitions()  # type: ignore[attr-defined]

        def func(k: int, it: Iterable) -> Iterable:
            for i, v in enumerate(it):
                yield v, i * n + k

        return _narrow().PipelinedRDD(self, func, order_sensitive=True)

    def cartesian(self, other: "RDD") -> "RDD":
        """Return the Cartesian product of this RDD and another one, that is, the RDD of all
        pairs of elements ``(a, b)`` where ``a`` is in ``self`` and ``b`` is in ``other``.

        >>> rdd = sc.parallelize([1, 2])
        >>> sorted(rdd.cartesian(rdd).collect())
        [(1, 1), (1, 2), (2, 1), (2, 2)]
        """
        self._require_driver("cartesian")  # type: ignore[attr-defined]
        return _narrow().CartesianRDD(self, other)

    def sample(self, withReplacement: bool, fraction: float, seed: int | None = None) -> "RDD":
        """Return a sampled subset of this RDD: without replacement each element is kept with
        probability ``fraction``; with replacement it appears Poisson(``fraction``) times.

        >>> rdd = sc.parallelize(range(100), 4)
        >>> 6 <= rdd.sample(False, 0.1, 81).count() <= 14
        True
        >>> rdd.sample(False, 0.1, 81).collect() == rdd.sample(False, 0.1, 81).collect()
        True
        """
        if not fraction >= 0:
            raise ValueError("Fraction must be nonnegative.")
        sampler = RDDSampler(withReplacement, fraction, seed)
        return _narrow().PipelinedRDD(self, sampler.func, True, order_sensitive=True,
                                      determinism=_seeded(seed))

    def randomSplit(self, weights: Sequence[float], seed: int | None = None) -> "list[RDD]":
        """Randomly splits this RDD with the provided weights (normalized if they don't sum
        to 1); every element lands in exactly one split.

        >>> rdd = sc.parallelize(range(500), 1)
        >>> rdd1, rdd2 = rdd.randomSplit([2, 3], 17)
        >>> len(rdd1.collect() + rdd2.collect())
        500
        >>> 150 < rdd1.count() < 250
        True
        """
        if not all(w >= 0 for w in weights):
            raise ValueError("Weights must be nonnegative")
        s = float(sum(weights))
        if not s > 0:
            raise ValueError("Sum of weights must be positive")
        cweights = [0.0]
        for w in weights:
            cweights.append(cweights[-1] + w / s)
        determinism = _seeded(seed)
        if seed is None:
            seed = random.randint(0, 2 ** 32 - 1)
        return [_narrow().PipelinedRDD(self, RDDRangeSampler(lb, ub, seed).func, True, order_sensitive=True,
                                       determinism=determinism)
                for lb, ub in zip(cweights, cweights[1:])]

    def coalesce(self, numPartitions: int, shuffle: bool = False) -> "RDD":
        """Return a new RDD that is reduced into ``numPartitions`` partitions, grouping
        neighbouring partitions (no shuffle). With ``shuffle=True`` the records are dealt
        round-robin to exactly ``numPartitions`` partitions through a shuffle, repeatably
        (see :func:`~sparklet.rdd._shuffled.canonical_round_robin`).

        >>> sc.parallelize([1, 2, 3, 4, 5], 3).glom().collect()
        [[1], [2, 3], [4, 5]]
        >>> sc.parallelize([1, 2, 3, 4, 5], 3).coalesce(1).glom().collect()
        [[1, 2, 3, 4, 5]]
        >>> sorted(len(p) for p in sc.parallelize([1, 2, 3, 4, 5], 1).coalesce(2, shuffle=True).glom().collect())
        [2, 3]
        """
        if not numPartitions > 0:
            raise ValueError("Number of partitions must be positive.")
        self._require_driver("coalesce")  # type: ignore[attr-defined]
        if shuffle:
            from sparklet.rdd._shuffled import repartition

            return repartition(self, numPartitions)  # type: ignore[arg-type]
        return _narrow().CoalescedRDD(self, numPartitions)

    def pipe(self, command: str, env: dict[str, str] | None = None, checkCode: bool = False) -> "RDD":
        """Return an RDD created by piping elements to a forked external process, one per
        partition. As in PySpark, the process gets exactly ``env`` as its environment.

        >>> sc.parallelize(['1', '2', '', '3']).pipe('cat').collect()
        ['1', '2', '', '3']
        >>> sc.parallelize([1], 1).pipe('false', checkCode=True).collect()
        Traceback (most recent call last):
            ...
        RuntimeError: Pipe function `false' exited with error code 1...
        """
        if env is None:
            env = dict()

        def func(_: int, iterator: Iterable) -> Iterable:
            return _pipe_partition(command, env, checkCode, iterator)

        # the command may well depend on the order of its input
        return _narrow().PipelinedRDD(self, func, order_sensitive=True)


def _seeded(seed: int | None) -> Determinism:
    return Determinism.DETERMINATE if seed is not None else Determinism.INDETERMINATE


def _pipe_partition(command: str, env: dict[str, str], checkCode: bool, iterator: Iterable) -> Iterator[str]:
    """Feed ``iterator`` to ``command`` from a writer thread, yield its output lines. Closing
    the generator early kills the process and joins the thread: nothing is left behind."""
    proc = Popen(shlex.split(command), env=env, stdin=PIPE, stdout=PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    errors: list[BaseException] = []

    def write(out: Any) -> None:
        try:
            for obj in iterator:
                out.write((str(obj).rstrip("\n") + "\n").encode("utf-8"))
        except (BrokenPipeError, ValueError):  # the process stopped reading, or we closed the pipe
            pass
        except BaseException as exc:  # the parent's computation failed: fail the task with it
            errors.append(exc)
        finally:
            try:
                out.close()
            except OSError:
                pass

    writer = threading.Thread(target=write, args=(proc.stdin,), name=f"stdin writer for {command}", daemon=True)
    writer.start()
    finished = False
    try:
        for line in iter(proc.stdout.readline, b""):
            yield line.rstrip(b"\n").decode("utf-8")
        proc.wait()
        writer.join()
        if errors:
            raise errors[0]
        if checkCode and proc.returncode:
            raise RuntimeError("Pipe function `%s' exited with error code %d" % (command, proc.returncode))
        finished = True
    finally:
        if not finished:
            proc.kill()
        proc.stdout.close()
        writer.join()
        proc.wait()
