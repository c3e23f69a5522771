"""PageRank: an iterative algorithm over a graph, one join and one shuffle per iteration.

    python examples/pagerank.py [--master local[2]] [--pages 200] [--iterations 10]

The classic Spark example: ``links`` (page -> pages it links to) is partitioned once and
cached, so each iteration's ``join`` with the current ranks reuses its partitioning and
shuffles only the ranks. Each page sends ``rank / outdegree`` to every page it links to;
the new rank is ``0.15 + 0.85 * received`` (a page nobody links to drops out after the
first iteration, as in Spark's example). The result is checked against the same
iteration in plain Python on a generated graph.
"""

from __future__ import annotations

import argparse
import random
import sys

from sparklet import Context


def generate_links(pages: int, seed: int = 11) -> dict[str, list[str]]:
    rng = random.Random(seed)
    names = [f"page{i}" for i in range(pages)]
    return {name: sorted(set(rng.sample(names, rng.randint(1, min(6, pages))))) for name in names}


def contributions(neighbours: list[str], rank: float):
    for neighbour in neighbours:
        yield neighbour, rank / len(neighbours)


def plain_pagerank(links: dict[str, list[str]], iterations: int) -> dict[str, float]:
    ranks = {page: 1.0 for page in links}
    for _ in range(iterations):
        received: dict[str, float] = {}
        for page, rank in ranks.items():  # a page nobody links to drops out, as with the join
            for target, share in contributions(links[page], rank):
                received[target] = received.get(target, 0.0) + share
        ranks = {page: 0.15 + 0.85 * total for page, total in received.items()}
    return ranks


def main(master: str | None, pages: int, iterations: int) -> int:
    links_table = generate_links(pages)
    with Context(master, "pagerank") as sc:
        links = sc.parallelize(sorted(links_table.items()), 4).partitionBy(4).cache()
        ranks = links.mapValues(lambda _: 1.0)
        for _ in range(iterations):
            sent = links.join(ranks).flatMap(lambda kv: contributions(kv[1][0], kv[1][1]))
            ranks = sent.reduceByKey(lambda a, b: a + b).mapValues(lambda total: 0.15 + 0.85 * total)
        result = dict(ranks.collect())
    expected = plain_pagerank(links_table, iterations)
    assert result.keys() == expected.keys(), "different pages ranked"
    worst = max(abs(result[p] - expected[p]) for p in expected)
    assert worst < 1e-9, f"ranks differ from plain Python by {worst}"
    for page, rank in sorted(result.items(), key=lambda kv: -kv[1])[:5]:
        print(f"{page:10} {rank:.4f}")
    print(f"{len(result)} pages, {iterations} iterations; ranks match plain Python: OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--pages", type=int, default=200, help="pages in the generated graph (default: %(default)s)")
    parser.add_argument("--iterations", type=int, default=10, help="iterations (default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.master, args.pages, args.iterations))
