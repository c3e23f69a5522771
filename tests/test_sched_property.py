"""Both scheduler cores wired together, as the actor wires them.

Two runs spelled out, then hypothesis drives a :class:`Cluster` (the cores wired as the actor wires them) through
job submissions, task successes and failures, kills, executor losses and arrivals,
cancellations, crashed task sets, speculative copies and clock ticks. Every step validates both cores; afterwards the cluster
runs to quiescence and every job must have ended exactly once, with the right results
if it succeeded, accumulators merged at most once per (stage, partition), and every
registry but the map outputs empty."""

from __future__ import annotations

import collections

from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.rdd._base import Determinism
from sparklet.runtime._sched_taskset import Speculation
from sparklet.runtime._sched_events import JobCancelled, JobFailed, JobGroupCancelled, JobSucceeded, TaskLocality

from test_sched_support import Cluster, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, UnionRDD


def test_two_stage_job_end_to_end_with_locality():
    ctx = FakeContext()
    source = SourceRDD(ctx, 4, prefs={0: ["h0"], 1: ["h1"], 2: ["h0"], 3: ["h1"]})
    cluster = Cluster(locality_wait=3.0)
    cluster.add_executor("e0", "h0", cores=1)
    cluster.add_executor("e1", "h1", cores=1)
    job = cluster.submit(MappedRDD(ShuffledRDD(MappedRDD(source), 2)))
    assert sorted((t.partition, t.executor_id, t.locality) for t in cluster.running.values()) == [
        (0, "e0", TaskLocality.NODE_LOCAL), (1, "e1", TaskLocality.NODE_LOCAL)]
    cluster.run_until_idle()
    assert cluster.outcomes[job].results == [("result", 0), ("result", 1)]
    assert cluster.clock() == 0.0  # every map task found its host: no waiting
    assert len(cluster.merges) == 6
    cluster.assert_idle()


def test_user_failure_reaches_the_job_with_its_exception():
    ctx = FakeContext()
    cluster = Cluster(max_failures=2)
    cluster.add_executor("e0")
    job = cluster.submit(ShuffledRDD(SourceRDD(ctx, 1), 1))
    errors = []
    for _ in range(2):
        (task_id,) = cluster.running
        errors.append(ZeroDivisionError(f"attempt {len(errors)}"))
        cluster.finish(task_id, "failed", f"ZeroDivisionError: attempt {len(errors) - 1}", errors[-1])
    failed = cluster.outcomes[job]
    assert isinstance(failed, JobFailed) and failed.exception is errors[-1]
    assert "Task 0 in stage 0.0 failed 2 times" in failed.error and "attempt 0" in failed.error and "attempt 1" in failed.error
    cluster.assert_idle()


def universe(indeterminate: bool) -> list:
    """Final RDDs of 1 to 4 stages sharing shuffles."""
    ctx = FakeContext()
    source = SourceRDD(ctx, 3, prefs={0: ["h0"], 2: ["h1"]},
                       determinism=Determinism.INDETERMINATE if indeterminate else Determinism.DETERMINATE)
    first = ShuffledRDD(MappedRDD(source), 2)
    second = ShuffledRDD(first, 2)
    other = ShuffledRDD(SourceRDD(ctx, 2), 1)
    return [MappedRDD(source), MappedRDD(first), MappedRDD(second), UnionRDD(first, other), MappedRDD(UnionRDD(second, other))]


KINDS = (["success"] * 8 + ["failed"] * 2 + ["fetch_failed"] * 3 + ["lose", "add", "submit", "tick"] * 2
         + ["killed", "cancel", "cancel_group", "crash", "speculate", "speculate"])
steps = st.lists(st.tuples(st.sampled_from(KINDS), st.integers(0, 50), st.integers(0, 50)), min_size=10, max_size=80)


@settings(max_examples=300, deadline=None, database=None, derandomize=True)
@given(indeterminate=st.booleans(), initial=st.lists(st.integers(0, 4), min_size=1, max_size=3), steps=steps)
def test_random_event_sequences_keep_invariants_and_every_job_ends(indeterminate, initial, steps):
    finals = universe(indeterminate)
    cluster = Cluster(max_failures=3, max_attempts=3, locality_wait=1.0,
                      speculation=Speculation(multiplier=1.0, quantile=0.25, min_task_runtime=0.0))
    executors = 0

    def add_executor(cores: int = 2) -> None:
        nonlocal executors
        cluster.add_executor(f"e{executors}", f"h{executors % 2}", cores)
        executors += 1

    add_executor()
    add_executor()
    for choice in initial:
        cluster.submit(finals[choice])
    for kind, a, b in steps:
        if kind in ("success", "failed", "killed") and cluster.running:
            task_id = sorted(cluster.running)[a % len(cluster.running)]
            cluster.finish(task_id, kind, reason=f"{kind} on purpose", exception=ValueError("boom") if kind == "failed" else None)
        elif kind == "fetch_failed" and cluster.running:
            task_id = sorted(cluster.running)[a % len(cluster.running)]
            cluster.fetch_fail(task_id, b)
        elif kind == "submit":
            cluster.submit(finals[a % len(finals)], {"spark.jobGroup.id": "g"} if b % 2 else {})
        elif kind == "lose" and cluster.ts.executors:
            live = list(cluster.ts.executors)
            cluster.lose_executor(live[a % len(live)])
        elif kind == "add":
            add_executor(1 + a % 3)
        elif kind == "cancel" and cluster.submitted:
            cluster.cancel(JobCancelled(a % len(cluster.submitted), "on purpose"))
        elif kind == "cancel_group":
            cluster.cancel(JobGroupCancelled("g"))
        elif kind == "crash" and cluster.ts.task_sets:
            live = sorted(cluster.ts.task_sets)
            cluster.crash_task_set(*live[a % len(live)])
        elif kind == "speculate":
            cluster.clock.advance(1.0 + a % 3)
            cluster.speculate()
        elif kind == "tick":
            cluster.clock.advance([0.5, 1.0, 3.0][a % 3])
            cluster.offer()
    if not cluster.ts.executors:
        add_executor()
    cluster.run_until_idle()

    assert set(cluster.outcomes) == set(cluster.submitted)
    ended = collections.Counter(info.job_id for info in cluster.ended)
    assert ended == collections.Counter(set(cluster.submitted))
    for job_id, outcome in cluster.outcomes.items():
        if isinstance(outcome, JobSucceeded):
            n = len(cluster.submitted[job_id].partitions)
            assert outcome.results == [("result", p) for p in range(n)]
        else:
            assert isinstance(outcome, JobFailed) and outcome.error
    merged = collections.Counter((m.stage_id, m.partition) for m in cluster.merges)
    assert all(count == 1 for count in merged.values())
    cluster.assert_idle()
