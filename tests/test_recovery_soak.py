"""Soak: crash each recoverable driver actor at every point of a pipeline with two
shuffles, a join, an accumulator and a cache; every run gives the fault-free answer."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import Fault, FaultInjected, FaultPlan


QUIET = {"ui.showConsoleProgress": False}
ROLES = ["dag-scheduler", "task-scheduler", "job-manager", "map-output-tracker", "block-manager-master"]


def pipeline(sc) -> tuple:
    seen = sc.accumulator(0)

    def tag(x):
        seen.add(1)
        return (x % 7, x)

    left = sc.parallelize(range(300), 5).map(tag).reduceByKey(operator.add, 3)
    right = sc.parallelize(range(7), 2).map(lambda k: (k, k * 10))
    joined = sorted(left.join(right).mapValues(lambda v: v[0] + v[1]).collect())
    cached = sc.parallelize(range(50), 3).map(lambda x: x + 1).cache()
    return joined, seen.value, cached.sum(), cached.count(), sorted(left.collect())


@pytest.fixture(scope="module")
def reference() -> tuple:
    with Context("inproc[2]", "reference", conf=QUIET) as sc:
        return pipeline(sc)


@pytest.mark.slow
@pytest.mark.parametrize("role", ROLES)
def test_a_crash_at_any_task_end_gives_the_fault_free_answer(role, reference):
    for point in range(1, 25):
        plan = FaultPlan([Fault("crash_actor", actor=role, after_task_ends=point)])
        with Context("inproc[2]", f"soak-{role}-{point}", conf=QUIET, faults=plan) as sc:
            assert pipeline(sc) == reference, f"{role} crashed after task end #{point}"
            assert len(sc.listener_events(FaultInjected)) == 1
