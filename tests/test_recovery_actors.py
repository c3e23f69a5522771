"""Crashes of the driver's other actors (map output tracker, job manager, block manager
master) and of an executor's block manager: each is restarted (or replaced), rebuilds
its state, and the jobs give the right answers."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import ActorRecovered, Fault, FaultPlan, JobRecovered, StageCompleted, StageSubmitted
from sparklet.runtime._driver import PATHS

QUIET = {"ui.showConsoleProgress": False}


def crash(actor: str, **point) -> FaultPlan:
    return FaultPlan([Fault("crash_actor", actor=actor, **point)])


def shuffled(sc):
    return sc.parallelize(range(200), 5).map(lambda x: (x % 7, x)).reduceByKey(operator.add, 3)


EXPECTED = sorted((k, sum(range(k, 200, 7))) for k in range(7))


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_map_output_tracker_crash_reloads_the_dag_schedulers_replica(master):
    with Context(master, "tracker-crash", conf=QUIET, faults=crash("map-output-tracker", stage=1, after_task_ends=1)) as sc:
        counts = shuffled(sc)
        assert sorted(counts.collect()) == EXPECTED
        [recovered] = sc.listener_events(ActorRecovered)
        assert (recovered.actor, recovered.supervisor, recovered.restarts) == (PATHS["map_outputs"], "/user/sparklet", 1)
        assert recovered.rebuilt.startswith("5 map outputs of 1 shuffles")
        assert sorted(counts.collect()) == EXPECTED  # the reloaded outputs serve a second action
        assert len([e for e in sc.listener_events(StageSubmitted) if e.shuffle_id is not None]) == 1  # maps ran once
        assert [e.status for e in sc.listener_events(StageCompleted)][-2:] == ["succeeded", "skipped"]
        assert not sc.listener_events(JobRecovered)


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_job_manager_crash_keeps_the_waiting_action_and_rebuilds_the_registry(master):
    with Context(master, "jobs-crash", conf=QUIET, faults=crash("job-manager", stage=0, after_task_ends=2)) as sc:
        assert sorted(shuffled(sc).collect()) == EXPECTED
        [recovered] = sc.listener_events(ActorRecovered)
        assert (recovered.actor, recovered.restarts) == (PATHS["jobs"], 1)
        assert recovered.rebuilt == "1 running jobs [0] from the DAG scheduler"
        assert sc.parallelize(range(10), 2).sum() == 45  # later jobs are served as usual
        assert not sc.listener_events(JobRecovered)  # the DAG scheduler was not disturbed
