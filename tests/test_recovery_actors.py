"""Crashes of the driver's other actors (map output tracker, job manager, block manager
master) and of an executor's block manager: each is restarted (or replaced), rebuilds
its state, and the jobs give the right answers."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import ActorRecovered, ExecutorRegistered, Fault, FaultPlan, JobRecovered, StageCompleted, StageSubmitted
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


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_block_manager_master_crash_rebuilds_from_the_executors_and_the_driver(master):
    with Context(master, "master-crash", conf=QUIET, faults=crash("block-manager-master", stage=0, after_task_ends=4)) as sc:
        computed = sc.accumulator(0)
        late = sc.broadcast({"offset": 1000})  # first used after the crash: served from the rebuilt store

        def square(x):
            computed.add(1)
            return x * x

        squares = sc.parallelize(range(100), 4).map(square).cache()
        assert squares.count() == 100
        assert squares.sum() == sum(x * x for x in range(100))
        assert computed.value == 100  # the second action read the cache through the rebuilt master
        assert sc.storage_status(squares).num_partitions_cached == 4
        assert squares.map(lambda x: x + late.value["offset"]).sum() == sum(x * x for x in range(100)) + 100_000
        [recovered] = sc.listener_events(ActorRecovered)
        assert (recovered.actor, recovered.restarts) == (PATHS["blocks"], 1)
        assert recovered.rebuilt.startswith("2 executors re-registered")
        assert recovered.rebuilt.endswith(f"1 live broadcasts [{late.id}] from the driver's values")


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_an_executor_block_manager_crash_loses_its_blocks_which_are_recomputed(master):
    plan = crash("block-manager", executor="exec-0", at_stage_submitted=1)
    with Context(master, "bm-crash", conf=QUIET, faults=plan) as sc:
        computed = sc.accumulator(0)

        def square(x):
            computed.add(1)
            return x * x

        squares = sc.parallelize(range(100), 4).map(square).cache()
        assert squares.count() == 100
        placed = sc.storage_status(squares).partitions
        on_exec0 = sum(25 for where in placed.values() if ("exec-0", "memory") in where)
        assert squares.sum() == sum(x * x for x in range(100))  # stage 1: exec-0's block manager crashed first
        assert computed.value == 100 + on_exec0 and on_exec0 > 0  # exactly exec-0's partitions were recomputed
        assert squares.sum() == sum(x * x for x in range(100))
        assert computed.value == 100 + on_exec0  # and cached again


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_task_scheduler_crash_restarts_the_dag_scheduler_after_it_and_executors_register_again(master):
    with Context(master, "ts-crash", conf=QUIET, faults=crash("task-scheduler", stage=0, after_task_ends=2)) as sc:
        assert sorted(shuffled(sc).collect()) == EXPECTED
        recovered = {e.actor: e for e in sc.listener_events(ActorRecovered)}
        assert recovered.keys() == {PATHS["tasks"], PATHS["dag"]}  # rest_for_one: the DAG scheduler comes after it
        assert recovered[PATHS["tasks"]].rebuilt.startswith("executors ['exec-0', 'exec-1'] asked to register again")
        assert "task-scheduler killed" in recovered[PATHS["dag"]].reason
        assert sorted(e.executor_id for e in sc.listener_events(ExecutorRegistered)) == ["exec-0"] * 2 + ["exec-1"] * 2
        assert sc.parallelize(range(10), 4).sum() == 45
        assert sorted(e["executor_id"] for e in sc.executors()) == ["exec-0", "exec-1"]


def test_after_a_task_scheduler_crash_executors_report_their_cached_blocks_again():
    with Context("inproc[2]", "ts-crash-cache", conf=QUIET, faults=crash("task-scheduler", at_stage_submitted=1)) as sc:
        computed = sc.accumulator(0)

        def square(x):
            computed.add(1)
            return x * x

        squares = sc.parallelize(range(100), 4).map(square).cache()
        assert squares.count() == 100
        assert squares.sum() == sum(x * x for x in range(100))  # the task scheduler crashed as this was submitted
        assert squares.sum() == sum(x * x for x in range(100))
        assert computed.value == 100  # the cache was read throughout
        assert sc.storage_status(squares).num_partitions_cached == 4  # re-registering did not lose the blocks


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_job_manager_crash_as_the_job_ends_still_answers_the_caller(master):
    # The job's outcome races the restart: it may reach the job manager before or after
    # the caller asks again, and the rebuilt registry no longer lists the job.
    with Context(master, "jobs-crash-end", conf=QUIET, faults=crash("job-manager", stage=0, after_task_ends=4)) as sc:
        assert sc.parallelize(range(40), 4).map(lambda x: x * 3).sum() == 3 * sum(range(40))
        assert len(sc.listener_events(ActorRecovered)) == 1
        assert sc.parallelize(range(4), 2).count() == 4
