"""A DAG scheduler that crashes mid-job is restarted by its supervisor and the running
jobs finish with the right answer; only what is missing is recomputed."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import (
    ActorRecovered, Fault, FaultInjected, FaultPlan, JobEnd, JobRecovered, StageSubmitted, TaskStart,
)
from sparklet.runtime._driver import PATHS


QUIET = {"ui.showConsoleProgress": False}


def wordcount(sc, acc=None):
    def pair(w):
        if acc is not None:
            acc.add(1)
        return (w, 1)

    lines = [" ".join(f"w{(i * j) % 13}" for j in range(8)) for i in range(120)]
    return sorted(sc.parallelize(lines, 6).flatMap(str.split).map(pair).reduceByKey(operator.add, 4).collect())


def expected():
    counts: dict[str, int] = {}
    for i in range(120):
        for j in range(8):
            w = f"w{(i * j) % 13}"
            counts[w] = counts.get(w, 0) + 1
    return sorted(counts.items())


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
@pytest.mark.parametrize("stage,after", [(0, 3), (1, 2)], ids=["during-map-stage", "during-reduce-stage"])
def test_a_dag_scheduler_crash_mid_job_is_recovered(master, stage, after):
    plan = FaultPlan([Fault("crash_actor", actor="dag-scheduler", stage=stage, after_task_ends=after)])
    with Context(master, "dag-crash", conf=QUIET, faults=plan) as sc:
        acc = sc.accumulator(0)
        assert wordcount(sc, acc) == expected()
        assert acc.value == 120 * 8  # each map partition's updates merged once, whatever re-ran
        [fired] = sc.listener_events(FaultInjected)
        assert fired.where.endswith(f"Kill sent to {PATHS['dag']}")
        [recovered] = sc.listener_events(ActorRecovered)
        assert (recovered.actor, recovered.supervisor, recovered.restarts) == (PATHS["dag"], "/user/sparklet/scheduler", 1)
        assert "ActorKilled" in recovered.reason and "crash_actor" in recovered.reason
        assert "1 running jobs [0] from the job manager" in recovered.rebuilt
        [job] = sc.listener_events(JobRecovered)
        assert job.job_id == 0 and job.reason.startswith("the DAG scheduler restarted")
        resubmitted = [e for e in sc.listener_events(StageSubmitted) if e.stage_id in job.stage_ids]
        if stage == 0:  # the map outputs written before the crash are kept: only the rest run again
            [(shuffle, missing)] = job.missing_map_outputs
            assert 0 < len(missing) < 6
            assert resubmitted[0].partitions == missing and resubmitted[0].shuffle_id == shuffle
        else:  # every map output was in: the map stage is not run again
            assert job.missing_map_outputs == ()
            assert [e.shuffle_id for e in resubmitted] == [None]
            assert set(resubmitted[0].partitions) == set(job.results_missing)
        assert all(e.reason.startswith("the DAG scheduler restarted") for e in resubmitted)
        summary = sc.listener_events(JobEnd)[0].summary
        assert summary.recoveries == (f"{job.reason}: kept results {list(job.results_kept)}, recomputed "
                                      f"{list(job.results_missing)} and map outputs {list(job.missing_map_outputs)}",)
        assert [(s, a) for s, a, _ in summary.stages_resubmitted] == [(e.stage_id, 0) for e in resubmitted]
        assert summary.tasks_run == len([e for e in sc.listener_events(TaskStart)])
        assert 1 <= summary.tasks_run_more_than_once <= summary.extra_task_runs
        tracker = sc.actor_system.ref_for(None, PATHS["tasks"])
        assert sc.actor_system.restart_count(tracker) == 0  # rest_for_one: the task scheduler kept running
        assert wordcount(sc) == expected()  # the context goes on serving
