"""PySpark's samplers (``pyspark/rddsampler.py``): Bernoulli sampling without replacement,
Poisson sampling with replacement, range sampling for ``randomSplit``.

Each partition seeds its own ``random.Random(seed ^ split)`` and mixes it with ten draws,
exactly as PySpark, so a seeded sample picks the same elements as PySpark's. Unlike
PySpark's, the sampler keeps no per-task state on the instance: an executor shares one
deserialized task binary among the threads running a stage's tasks.
"""

from __future__ import annotations

import math
import random
import sys
from typing import Iterable, Iterator, TypeVar

__all__ = ["RDDSampler", "RDDRangeSampler"]

T = TypeVar("T")


class RDDSamplerBase:
    def __init__(self, withReplacement: bool, seed: int | None = None) -> None:
        self.seeded = seed is not None
        self._seed = seed if seed is not None else random.randint(0, sys.maxsize)
        self._withReplacement = withReplacement

    def _generator(self, split: int) -> random.Random:
        rng = random.Random(self._seed ^ split)
        for _ in range(10):  # mixing, because the initial seeds are close to each other
            rng.randint(0, 1)
        return rng

    @staticmethod
    def _poisson(rng: random.Random, mean: float) -> int:
        # Knuth's algorithm, as PySpark
        if mean < 20.0:
            lda = math.exp(-mean)
            p = rng.random()
            k = 0
            while p > lda:
                k += 1
                p *= rng.random()
        else:
            p = rng.expovariate(mean)
            k = 0
            while p < 1.0:
                k += 1
                p += rng.expovariate(mean)
        return k


class RDDSampler(RDDSamplerBase):
    def __init__(self, withReplacement: bool, fraction: float, seed: int | None = None) -> None:
        super().__init__(withReplacement, seed)
        self._fraction = fraction

    def func(self, split: int, iterator: Iterable[T]) -> Iterator[T]:
        rng = self._generator(split)
        if self._withReplacement:
            for obj in iterator:
                # the number of occurrences of each element is Poisson(fraction)
                for _ in range(self._poisson(rng, self._fraction)):
                    yield obj
        else:
            for obj in iterator:
                if rng.random() < self._fraction:
                    yield obj


class RDDRangeSampler(RDDSamplerBase):
    def __init__(self, lowerBound: float, upperBound: float, seed: int | None = None) -> None:
        super().__init__(False, seed)
        self._lowerBound = lowerBound
        self._upperBound = upperBound

    def func(self, split: int, iterator: Iterable[T]) -> Iterator[T]:
        rng = self._generator(split)
        for obj in iterator:
            if self._lowerBound <= rng.random() < self._upperBound:
                yield obj
