"""PySpark's ``StatCounter``: count, mean, variance, min and max in one pass (Welford's
algorithm, with Chan et al.'s merge), ported from ``spark/util/StatCounter.scala``.

PySpark takes ``maximum``/``minimum``/``sqrt`` from numpy when it is installed, so min and
max come out as floats and NaN propagates; this port does the same without numpy.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Iterable

__all__ = ["StatCounter"]


def _maximum(a: Any, b: Any) -> float:
    if a != a or b != b:  # NaN propagates, as numpy.maximum
        return math.nan
    return float(a if a >= b else b)


def _minimum(a: Any, b: Any) -> float:
    if a != a or b != b:
        return math.nan
    return float(a if a <= b else b)


def _sqrt(x: float) -> float:
    return math.nan if x != x else math.sqrt(x)


class StatCounter:
    """Running statistics of a set of numbers.

    >>> s = StatCounter([1, 2, 3])
    >>> s
    (count: 3, mean: 2.0, stdev: 0.816496580927726, max: 3.0, min: 1.0)
    >>> s.merge(4).count(), s.sum(), s.sampleVariance()
    (4, 10.0, 1.6666666666666667)
    >>> s.mergeStats(StatCounter([10])).max()
    10.0
    """

    def __init__(self, values: Iterable[float] | None = None) -> None:
        self.n = 0  # running count of our values
        self.mu = 0.0  # running mean of our values
        self.m2 = 0.0  # running variance numerator (sum of (x - mean)^2)
        self.maxValue = float("-inf")
        self.minValue = float("inf")
        for v in values if values is not None else ():
            self.merge(v)

    def merge(self, value: float) -> "StatCounter":
        """Add a value into this StatCounter, updating the statistics.

        >>> StatCounter().merge(5).mean()
        5.0
        """
        delta = value - self.mu
        self.n += 1
        self.mu += delta / self.n
        self.m2 += delta * (value - self.mu)
        self.maxValue = _maximum(self.maxValue, value)
        self.minValue = _minimum(self.minValue, value)
        return self

    def mergeStats(self, other: "StatCounter") -> "StatCounter":
        """Merge another StatCounter into this one.

        >>> StatCounter([1, 2]).mergeStats(StatCounter([3])).mean()
        2.0
        >>> StatCounter().mergeStats([1])
        Traceback (most recent call last):
            ...
        TypeError: Can only merge StatCounter but got <class 'list'>
        """
        if not isinstance(other, StatCounter):
            raise TypeError("Can only merge StatCounter but got %s" % type(other))
        if other is self:  # reference equality holds
            self.mergeStats(other.copy())  # avoid overwriting fields in a weird order
        elif self.n == 0:
            self.mu = other.mu
            self.m2 = other.m2
            self.n = other.n
            self.maxValue = other.maxValue
            self.minValue = other.minValue
        elif other.n != 0:
            delta = other.mu - self.mu
            if other.n * 10 < self.n:
                self.mu = self.mu + (delta * other.n) / (self.n + other.n)
            elif self.n * 10 < other.n:
                self.mu = other.mu - (delta * self.n) / (self.n + other.n)
            else:
                self.mu = (self.mu * self.n + other.mu * other.n) / (self.n + other.n)
            self.maxValue = _maximum(self.maxValue, other.maxValue)
            self.minValue = _minimum(self.minValue, other.minValue)
            self.m2 += other.m2 + (delta * delta * self.n * other.n) / (self.n + other.n)
            self.n += other.n
        return self

    def copy(self) -> "StatCounter":
        """A deep copy.

        >>> a = StatCounter([1]); b = a.copy(); _ = b.merge(3); a.count(), b.count()
        (1, 2)
        """
        return copy.deepcopy(self)

    def count(self) -> int:
        """The number of values.

        >>> StatCounter([1, 2]).count()
        2
        """
        return int(self.n)

    def mean(self) -> float:
        """The mean of the values.

        >>> StatCounter([1, 2]).mean()
        1.5
        """
        return self.mu

    def sum(self) -> float:
        """The sum of the values.

        >>> StatCounter([1, 2]).sum()
        3.0
        """
        return self.n * self.mu

    def min(self) -> float:
        """The smallest value (inf when empty).

        >>> StatCounter([1, 2]).min()
        1.0
        """
        return self.minValue

    def max(self) -> float:
        """The largest value (-inf when empty).

        >>> StatCounter([1, 2]).max()
        2.0
        """
        return self.maxValue

    def variance(self) -> float:
        """The population variance (NaN when empty).

        >>> StatCounter([1, 2, 3, 4]).variance()
        1.25
        """
        return math.nan if self.n == 0 else self.m2 / self.n

    def sampleVariance(self) -> float:
        """The sample variance, dividing by N-1 (NaN for fewer than two values).

        >>> StatCounter([1, 2, 3]).sampleVariance()
        1.0
        """
        return math.nan if self.n <= 1 else self.m2 / (self.n - 1)

    def stdev(self) -> float:
        """The population standard deviation.

        >>> StatCounter([1, 3]).stdev()
        1.0
        """
        return _sqrt(self.variance())

    def sampleStdev(self) -> float:
        """The sample standard deviation, dividing by N-1.

        >>> StatCounter([1, 2, 3]).sampleStdev()
        1.0
        """
        return _sqrt(self.sampleVariance())

    def asDict(self, sample: bool = False) -> dict[str, float]:
        """The members as a dict. As in PySpark, ``sample=False`` (the default) reports the
        *sample* stdev and variance and ``sample=True`` the population ones.

        >>> d = StatCounter([1.0, 2.0, 3.0, 4.0]).asDict()
        >>> d['count'], d['mean'], d['sum'], d['variance']
        (4, 2.5, 10.0, 1.6666666666666667)
        """
        return {
            "count": self.count(),
            "mean": self.mean(),
            "sum": self.sum(),
            "min": self.min(),
            "max": self.max(),
            "stdev": self.stdev() if sample else self.sampleStdev(),
            "variance": self.variance() if sample else self.sampleVariance(),
        }

    def __repr__(self) -> str:
        return "(count: %s, mean: %s, stdev: %s, max: %s, min: %s)" % (
            self.count(), self.mean(), self.stdev(), self.max(), self.min())
