"""Shuffle figures on local[2], beside plain Python in the same run.

* wordcount over a generated 64 MB Zipf-distributed corpus: textFile, flatMap, map,
  reduceByKey, collect; against ``collections.Counter`` over the same file
* reduceByKey over 4,000,000 pairs into 8 partitions; against a dict loop
* peak executor memory (VmHWM of the executor processes) against the shuffle budget
"""

from __future__ import annotations

import collections
import itertools
import operator
import os
import random
import tempfile
import time

from sparklet import Context

from benchmarks.report import Figure

MASTER = "local[2]"
BUDGET = "128m"


def zipf_corpus(path: str, megabytes: float, vocabulary: int = 50_000, seed: int = 3) -> None:
    rng = random.Random(seed)
    words = [f"w{i}" for i in range(vocabulary)]
    weights = list(itertools.accumulate(1.0 / (rank + 1) ** 1.1 for rank in range(vocabulary)))
    target = int(megabytes * (1 << 20))
    written = 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            chunk = rng.choices(words, cum_weights=weights, k=120_000)
            text = "\n".join(" ".join(chunk[i:i + 12]) for i in range(0, len(chunk), 12)) + "\n"
            out.write(text)
            written += len(text)


def _peak_rss(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peak


def run(scale: float = 1.0) -> list[Figure]:
    figures: list[Figure] = []
    folder = tempfile.mkdtemp(prefix="sparklet-bench-")
    corpus = os.path.join(folder, "zipf.txt")
    zipf_corpus(corpus, 64 * scale)
    n_pairs = max(100_000, int(4_000_000 * scale))

    started = time.perf_counter()
    with open(corpus, encoding="utf-8") as f:
        reference = collections.Counter(word for line in f for word in line.split())
    plain_wc = time.perf_counter() - started
    n_words = sum(reference.values())

    started = time.perf_counter()
    totals: dict[int, int] = {}
    for i in range(n_pairs):
        key = i % 100_000
        totals[key] = totals.get(key, 0) + 1
    plain_rbk = time.perf_counter() - started

    with Context(MASTER, "bench-shuffle", conf={"ui.showConsoleProgress": False, "shuffle.memory": BUDGET}) as sc:
        pids = [e["pid"] for e in sc.executors()]
        baseline_rss = _peak_rss(pids)
        started = time.perf_counter()
        counts = sc.textFile(corpus).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(operator.add).collect()
        ours_wc = time.perf_counter() - started
        assert dict(counts) == reference, "wordcount differs from plain Python"
        figures.append(Figure("shuffle.wordcount_64MB_zipf", ours_wc, "s", plain_wc, "Counter over the file",
                              higher_is_better=False, target="ratio <= 0.8 on local[2]"))
        figures.append(Figure("shuffle.wordcount_words_per_s", n_words / ours_wc, "rec/s", n_words / plain_wc,
                              "Counter over the file", higher_is_better=True, target=""))

        started = time.perf_counter()
        reduced = sc.range(n_pairs, numSlices=8).map(lambda i: (i % 100_000, 1)).reduceByKey(operator.add, 8).collect()
        ours_rbk = time.perf_counter() - started
        assert dict(reduced) == totals
        figures.append(Figure("shuffle.reduceByKey_4M_pairs_8_parts", n_pairs / ours_rbk, "rec/s", n_pairs / plain_rbk,
                              "dict loop", higher_is_better=True, target=""))
        peak = _peak_rss(pids)
        budget = sc.conf["shuffle.memory"]
        figures.append(Figure("shuffle.peak_executor_memory", peak / (1 << 20), "MiB", (budget + baseline_rss) / (1 << 20),
                              "budget + idle executor", higher_is_better=False, target="<= budget + fixed overhead"))
    for name in os.listdir(folder):
        os.remove(os.path.join(folder, name))
    os.rmdir(folder)
    return figures
