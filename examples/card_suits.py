"""MapReduce explained with playing cards: the sum of the numeric cards of each suit.

    python examples/card_suits.py [--master local[2]] [--decks 8]

The classroom picture of MapReduce: a heap of shuffled cards is split into piles, one per
person (the partitions). In the *map* phase each person throws away the face cards and
notes, for each suit in their own pile, the sum of its numeric cards (the map-side
combine). In the *shuffle* those notes go to one person per suit (``reduceByKey`` hashes
the suit), who adds them up in the *reduce* phase. The sums are checked against plain
Python over the same heap (each full deck adds 2 + 3 + ... + 10 = 54 per suit).
"""

from __future__ import annotations

import argparse
import random
import sys

from sparklet import Context

SUITS = ["clubs", "diamonds", "hearts", "spades"]
RANKS = ["2", "3", "4", "5", "6", "7", "8", "9", "10", "J", "Q", "K", "A"]


def shuffled_heap(decks: int, missing: int, seed: int = 52) -> list[str]:
    """``decks`` full decks, shuffled together, with ``missing`` cards lost (so the suits differ)."""
    rng = random.Random(seed)
    cards = [f"{rank} of {suit}" for _ in range(decks) for suit in SUITS for rank in RANKS]
    rng.shuffle(cards)
    return cards[missing:]


def numeric(card: str) -> list[tuple[str, int]]:
    """``[(suit, value)]`` for a numeric card; ``[]`` for a face card or an ace."""
    rank, _, suit = card.partition(" of ")
    return [(suit, int(rank))] if rank.isdigit() else []


def main(master: str | None, decks: int, piles: int) -> int:
    heap = shuffled_heap(decks, missing=7)
    with Context(master, "card-suits") as sc:
        cards = sc.parallelize(heap, piles)                 # one pile per person
        print("cards per pile:", cards.glom().map(len).collect())
        sums = (cards.flatMap(numeric)                      # map: drop face cards, keep (suit, value)
                .reduceByKey(lambda a, b: a + b)            # combine per pile, shuffle by suit, reduce
                .collectAsMap())
    expected: dict[str, int] = {}
    for card in heap:
        for suit, value in numeric(card):
            expected[suit] = expected.get(suit, 0) + value
    assert sums == expected, f"{sums} differs from plain Python {expected}"
    for suit in SUITS:
        print(f"{suit:9} {sums.get(suit, 0):5}   (a full deck gives 54 per suit; {decks} decks give {54 * decks})")
    print("sums per suit match plain Python: OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--decks", type=int, default=8, help="decks in the heap (default: %(default)s)")
    parser.add_argument("--piles", type=int, default=4, help="piles (partitions) (default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.master, args.decks, args.piles))
