"""The benchmark suite's own logic: answers are checked, targets judged from the numbers,
tables show every engine that ran (benchmarks/ is run by `python3 dev.py bench`)."""

from __future__ import annotations

import io
import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks.report import print_comparison  # noqa: E402
from benchmarks.targets import RECOVERY_FIXED_SECONDS, evaluate  # noqa: E402
from benchmarks.workloads import Sizes, check, tree_cpu_seconds, zipf_corpus  # noqa: E402

SIZES = {"tasks": 2000, "ints": 2_000_000, "corpus_mb": 64, "pairs": 4_000_000, "nodes": 20_000,
         "tells": 100_000, "asks": 5_000}
FLOORS = {"empty_tasks": 0.02, "x_plus_1": 0.1, "wordcount": 2.0, "reduce_by_key": 0.8, "pagerank": 0.3,
          "actor_tell": None, "actor_ask": None}


def engine(startup: float, **seconds: float) -> dict:
    return {"startup_seconds": startup, "figures": {},
            "workloads": {w: {"seconds": s, "cpu_seconds": s} for w, s in seconds.items()}}


def test_targets_are_judged_from_the_numbers():
    results = {
        "sparklet": engine(3.0, empty_tasks=0.4, x_plus_1=0.08, wordcount=1.5, reduce_by_key=1.0),
        "pyspark": engine(15.0, empty_tasks=10.0, wordcount=9.0, reduce_by_key=4.0),
        "dask": engine(4.0, empty_tasks=5.0),
        "ray": engine(10.0, empty_tasks=0.3),
    }
    results["sparklet"]["figures"]["recovery"] = {"fault_free": 2.0, "with_fault": 3.5, "lost_share": 1.0,
                                                  "overhead": 0.5}
    verdicts = {v.target: v for v in evaluate(results, FLOORS, SIZES)}
    assert verdicts["empty-task overhead 1/10 of PySpark's"].met is True  # 200 us vs 5,000 us
    assert verdicts["empty-task overhead below dask's"].met is True
    assert verdicts["empty-task overhead below ray's"].met is False  # 200 us vs 150 us
    assert verdicts["x + 1 faster than the plain loop"].met is True
    assert verdicts["wordcount <= 0.8x Counter (issue 4)"].met is True  # 0.75x
    assert verdicts["wordcount faster than PySpark, start-up included"].met is True
    assert "(5.3x)" in verdicts["wordcount faster than PySpark, start-up included"].detail  # 24 s vs 4.5 s
    assert verdicts[f"recovery <= lost share + {RECOVERY_FIXED_SECONDS:g} s fixed"].met is True
    del results["pyspark"]
    verdicts = {v.target: v for v in evaluate(results, FLOORS, SIZES)}
    assert verdicts["reduceByKey faster than PySpark, start-up included"].met is None


def test_the_comparison_shows_each_engine_and_peer_ratios():
    results = {"sparklet": engine(3.0, wordcount=1.5), "ray": engine(10.0, wordcount=3.0)}
    results["ray"]["workloads"]["x_plus_1"] = {"error": "boom"}
    out = io.StringIO()
    print_comparison(results, FLOORS, SIZES, {"wordcount": 1.9}, out=out)
    table = out.getvalue()
    assert "pyspark" not in table and "ray/sparklet" in table
    wordcount = next(line for line in table.splitlines() if line.startswith("wordcount, 64 MB Zipf corpus "))
    assert "2.00x" in wordcount and "2.000 [1.9]" in wordcount
    assert "failed" in next(line for line in table.splitlines() if line.startswith("`x + 1`"))
    assert "1.00x" not in table.splitlines()[2] and "3.33x" in table.splitlines()[2]  # start-up: 10 s vs 3 s


def test_a_wrong_answer_is_refused():
    check("wordcount", [("a", 2)], {"wordcount": {"a": 2}})
    with pytest.raises(AssertionError, match="wordcount"):
        check("wordcount", [("a", 3)], {"wordcount": {"a": 2}})
    with pytest.raises(AssertionError, match="pagerank"):
        check("pagerank", {1: 0.5}, {"pagerank": {1: 0.5, 2: 0.1}})


def test_inputs_scale_and_cpu_is_counted(tmp_path):
    assert Sizes(1.0).pairs == 4_000_000 and Sizes(0.01).tasks == 100  # floors keep tiny runs meaningful
    path = tmp_path / "corpus.txt"
    zipf_corpus(str(path), 0.05)
    text = path.read_text()
    assert len(text) >= 0.05 * (1 << 20) and all(len(line.split()) == 12 for line in text.splitlines()[:-1])
    started = tree_cpu_seconds()
    deadline = time.process_time() + 0.05
    while time.process_time() < deadline:
        pass
    assert tree_cpu_seconds() - started >= 0.03
