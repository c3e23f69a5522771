"""K-Means clustering (Lloyd's algorithm) on a cached RDD of points.

    python examples/kmeans.py [--master local[2]] [--points 3000] [--k 4]

The points are cached once; each iteration broadcasts the current centers, assigns every
point to its nearest center and averages each cluster with ``reduceByKey`` on
``(sum of coordinates, count)``, until no center moves more than ``--epsilon``. The
points come from ``k`` Gaussian blobs; the centers found are checked against the same
iteration in plain Python and against the blobs' true centers.
"""

from __future__ import annotations

import argparse
import random
import sys

from sparklet import Context

Point = tuple[float, float]


def generate_points(n: int, k: int, seed: int = 5) -> tuple[list[Point], list[Point]]:
    rng = random.Random(seed)
    true_centers = [(10.0 * i, 10.0 * ((i * 7) % k)) for i in range(k)]
    points = []
    for i in range(n):
        cx, cy = true_centers[i % k]
        points.append((rng.gauss(cx, 1.0), rng.gauss(cy, 1.0)))
    return points, true_centers


def closest(point: Point, centers: list[Point]) -> int:
    return min(range(len(centers)), key=lambda i: (point[0] - centers[i][0]) ** 2 + (point[1] - centers[i][1]) ** 2)


def add(a: tuple, b: tuple) -> tuple:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2])


def moved(old: list[Point], new: list[Point]) -> float:
    return max(((a[0] - b[0]) ** 2 + (a[1] - b[1]) ** 2) ** 0.5 for a, b in zip(old, new))


def plain_kmeans(points: list[Point], centers: list[Point], epsilon: float, max_iterations: int) -> list[Point]:
    for _ in range(max_iterations):
        sums: dict[int, tuple] = {}
        for p in points:
            i = closest(p, centers)
            sums[i] = add(sums.get(i, (0.0, 0.0, 0)), (p[0], p[1], 1))
        new = [(sums[i][0] / sums[i][2], sums[i][1] / sums[i][2]) if i in sums else centers[i] for i in range(len(centers))]
        done = moved(centers, new) < epsilon
        centers = new
        if done:
            break
    return centers


def main(master: str | None, n: int, k: int, epsilon: float, max_iterations: int) -> int:
    points, true_centers = generate_points(n, k)
    initial = points[:k]  # one point of each blob: a deterministic start
    with Context(master, "kmeans") as sc:
        data = sc.parallelize(points, 4).cache()
        centers = list(initial)
        for iteration in range(1, max_iterations + 1):
            shared = sc.broadcast(centers)
            sums = (data.map(lambda p: (closest(p, shared.value), (p[0], p[1], 1)))
                    .reduceByKey(add)
                    .collectAsMap())
            new = [(sums[i][0] / sums[i][2], sums[i][1] / sums[i][2]) if i in sums else centers[i] for i in range(k)]
            shared.unpersist()
            shift = moved(centers, new)
            centers = new
            print(f"iteration {iteration}: centers moved by at most {shift:.6f}")
            if shift < epsilon:
                break
    expected = plain_kmeans(points, list(initial), epsilon, max_iterations)
    assert moved(centers, expected) < 1e-9, f"centers differ from plain Python: {centers} vs {expected}"
    for found in centers:
        nearest = min(true_centers, key=lambda c: (c[0] - found[0]) ** 2 + (c[1] - found[1]) ** 2)
        assert moved([found], [nearest]) < 0.5, f"center {found} is far from every blob"
    print("centers: " + ", ".join(f"({x:.2f}, {y:.2f})" for x, y in sorted(centers)))
    print(f"{k} clusters of {n} points; centers match plain Python and the blobs: OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--points", type=int, default=3000, help="points (default: %(default)s)")
    parser.add_argument("--k", type=int, default=4, help="clusters (default: %(default)s)")
    parser.add_argument("--epsilon", type=float, default=1e-6, help="convergence distance (default: %(default)s)")
    parser.add_argument("--max-iterations", type=int, default=20, help="(default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.master, args.points, args.k, args.epsilon, args.max_iterations))
