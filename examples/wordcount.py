"""Word count: the "hello world" of data-parallel computing.

    python examples/wordcount.py [FILE ...] [--master local[2]] [--top 10]

Reads text files (or a generated sample when none is given) into an RDD of lines, splits
them into words, pairs each word with 1 and sums the pairs per word with ``reduceByKey``
(which combines on the map side before the shuffle, as Spark's does), then prints the
commonest words. The counts are checked against ``collections.Counter`` over the same text.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import sys
import tempfile

from sparklet import Context

SAMPLE = """It was the best of times, it was the worst of times, it was the age of wisdom,
it was the age of foolishness, it was the epoch of belief, it was the epoch of incredulity,
it was the season of Light, it was the season of Darkness, it was the spring of hope,
it was the winter of despair, we had everything before us, we had nothing before us"""

WORD = re.compile(r"[a-z']+")


def words_of(line: str) -> list[str]:
    return WORD.findall(line.lower())


def main(paths: list[str], master: str | None, top: int) -> int:
    if not paths:
        folder = tempfile.mkdtemp(prefix="sparklet-wordcount-")
        paths = [os.path.join(folder, "sample.txt")]
        with open(paths[0], "w", encoding="utf-8") as f:
            f.write(SAMPLE + "\n")
    for path in paths:
        if not os.path.exists(path):
            print(f"wordcount: no such file: {path}", file=sys.stderr)
            return 2
    with Context(master, "wordcount") as sc:
        lines = sc.textFile(",".join(paths))
        counts = (lines.flatMap(words_of)
                  .map(lambda word: (word, 1))
                  .reduceByKey(lambda a, b: a + b))
        commonest = counts.takeOrdered(top, key=lambda kv: (-kv[1], kv[0]))
        everything = dict(counts.collect())
    for word, count in commonest:
        print(f"{count:8} {word}")
    expected = collections.Counter()
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for line in f:
                expected.update(words_of(line))
    assert everything == expected, "the counts differ from collections.Counter"
    print(f"{len(everything)} distinct words; counts match collections.Counter: OK")
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("paths", nargs="*", metavar="FILE", help="text files (default: a built-in sample)")
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--top", type=int, default=10, help="how many words to print (default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.paths, args.master, args.top))
