"""Linear regression by batch gradient descent, the data cached across iterations.

    python examples/linear_regression.py [--master local[2]] [--samples 2000] [--iterations 100]

Fits ``y = w . x + b`` to noisy samples of a known line. Each iteration broadcasts the
current weights and computes the gradient of the mean squared error with one
``treeAggregate`` over the cached samples (Spark MLlib's pattern), then takes a step.
The weights are checked against the same descent in plain Python and against the true
coefficients the data were drawn from.
"""

from __future__ import annotations

import argparse
import random
import sys

from sparklet import Context

TRUE_WEIGHTS = (2.0, -3.0, 0.5)
TRUE_BIAS = 4.0


def generate(n: int, seed: int = 3) -> list[tuple[tuple[float, ...], float]]:
    rng = random.Random(seed)
    samples = []
    for _ in range(n):
        x = tuple(rng.uniform(-1, 1) for _ in TRUE_WEIGHTS)
        y = sum(w * xi for w, xi in zip(TRUE_WEIGHTS, x)) + TRUE_BIAS + rng.gauss(0, 0.1)
        samples.append((x, y))
    return samples


def gradient(sample: tuple, weights: tuple[float, ...]) -> tuple[float, ...]:
    """d/d(w, b) of (w . x + b - y)^2 for one sample: its error times (x, 1), times 2."""
    x, y = sample
    *w, b = weights
    error = sum(wi * xi for wi, xi in zip(w, x)) + b - y
    return tuple(2 * error * xi for xi in x) + (2 * error,)


def plus(a: tuple, b: tuple) -> tuple:
    return tuple(ai + bi for ai, bi in zip(a, b))


def step(weights: tuple, total: tuple, n: int, rate: float) -> tuple:
    return tuple(w - rate * g / n for w, g in zip(weights, total))


def main(master: str | None, n: int, iterations: int, rate: float) -> int:
    samples = generate(n)
    zero = (0.0,) * (len(TRUE_WEIGHTS) + 1)
    weights = zero
    with Context(master, "linear-regression") as sc:
        data = sc.parallelize(samples, 4).cache()
        count = data.count()
        for _ in range(iterations):
            current = sc.broadcast(weights)
            total = data.treeAggregate(zero, lambda acc, s: plus(acc, gradient(s, current.value)), plus)
            weights = step(weights, total, count, rate)
            current.unpersist()
    expected = zero
    for _ in range(iterations):
        total = zero
        for s in samples:
            total = plus(total, gradient(s, expected))
        expected = step(expected, total, n, rate)
    assert max(abs(a - b) for a, b in zip(weights, expected)) < 1e-9, f"{weights} differs from plain Python {expected}"
    truth = TRUE_WEIGHTS + (TRUE_BIAS,)
    assert max(abs(a - b) for a, b in zip(weights, truth)) < 0.05, f"{weights} is far from the true {truth}"
    print("weights: " + ", ".join(f"{w:.3f}" for w in weights[:-1]) + f"; bias {weights[-1]:.3f}")
    print(f"{iterations} iterations over {n} samples; weights match plain Python and the true line: OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--samples", type=int, default=2000, help="(default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=100, help="(default: %(default)s)")
    parser.add_argument("--rate", type=float, default=0.5, help="learning rate (default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.master, args.samples, args.iterations, args.rate))
