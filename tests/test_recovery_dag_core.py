"""The DAG core's side of recovery, driven synchronously: a restarted core adopts the
tracker's map outputs, recovers each recorded job and runs only what is missing; the map
output registry's journal replays into an identical copy."""

from __future__ import annotations

import pytest

from sparklet.runtime._dag_recovery import adopt_map_outputs, export_jobs
from sparklet.runtime._sched_events import (
    JobEndedInfo, JobRecovered, JobRecoveredInfo, JobSucceeded, MapStatus, MergeAccumulators, StageSubmittedInfo,
    SubmitTasks,
)
from sparklet.runtime._sched_mapoutputs import MapOutputRegistry

from test_sched_support import DagHarness, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, collect, of_type, only


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext()


def registry_state(registry: MapOutputRegistry) -> tuple:
    return (registry.shuffle_id_to_statuses, registry.ever_registered, registry.accumulated, registry.epoch)


def test_the_journal_replays_into_an_identical_copy_and_snapshots_are_independent():
    primary, replica = MapOutputRegistry(), MapOutputRegistry()
    primary.journal = []
    primary.register_shuffle(0, 3)
    primary.register_map_output(0, 0, MapStatus("e1", (1, 2)))
    primary.register_map_output(0, 1, MapStatus("e2", (3, 4)))
    primary.mark_accumulated(0, 1)
    assert not primary.mark_accumulated(0, 1)  # once
    primary.remove_outputs_on_executor("e2")
    primary.unregister_map_output(0, 0, None)
    primary.register_shuffle(1, 1)
    primary.unregister_all_map_outputs(1)
    for op in primary.journal:
        replica.apply(op)
    assert registry_state(replica) == registry_state(primary)
    replica.validate_state()
    copy = primary.snapshot()
    copy.register_map_output(0, 2, MapStatus("e3"))
    assert primary.statuses(0)[2] is None and copy.journal is None


def run_map_stage_then_crash(ctx, h, rdd, done_maps):
    """Run the map stage partly, then 'crash': return a fresh core's harness holding a
    snapshot of the map outputs, as the restarted actor would."""
    job_id, actions = h.submit(rdd)
    map_set = only(actions, SubmitTasks)
    for p in done_maps:
        h.succeed(map_set, p, accum=(b"acc",))
    fresh = DagHarness()
    adopt_map_outputs(fresh.dag, h.dag.map_outputs.snapshot())
    fresh.dag.graph.next_stage_id = h.dag.graph.next_stage_id
    return job_id, fresh


def test_a_recovered_job_runs_only_what_is_missing(ctx):
    h = DagHarness()
    final = MappedRDD(ShuffledRDD(MappedRDD(SourceRDD(ctx, 4)), 3))
    job_id, fresh = run_map_stage_then_crash(ctx, h, final, done_maps=[0, 2])
    actions = fresh.handle(JobRecovered(job_id, final, collect, (0, 1, 2), {}, 0.0, ((1, "kept"),), "restarted"))
    info = only(actions, JobRecoveredInfo)
    assert (info.stage_ids, info.results_kept, info.results_missing, info.missing_map_outputs) == (
        (2, 3), (1,), (0, 2), ((0, (1, 3)),))  # stage ids continue above the old ones
    map_set = only(actions, SubmitTasks)
    assert [t.partition for t in map_set.tasks] == [1, 3] and map_set.stage_id == 2
    assert only(actions, StageSubmittedInfo).reason == "restarted"
    merges = of_type(fresh.succeed(map_set, 1, accum=(b"acc",)) + fresh.succeed(map_set, 3, accum=(b"acc",)), MergeAccumulators)
    assert [m.partition for m in merges] == [1, 3]
    result_set = of_type(fresh.actions, SubmitTasks)[-1]
    assert [t.partition for t in result_set.tasks] == [0, 2]  # result 1 came back before the crash
    fresh.succeed(result_set, 0)
    done = only(fresh.succeed(result_set, 2), JobSucceeded)
    assert done.results == [("result", 3, 0), "kept", ("result", 3, 2)]
    fresh.assert_idle()
    assert fresh.dag.map_outputs.accumulated == {0: {0, 1, 2, 3}}  # maps 0 and 2 merged before the crash


def test_a_recovered_job_with_every_result_ends_at_once(ctx):
    h = DagHarness()
    rdd = MappedRDD(SourceRDD(ctx, 2))
    actions = h.handle(JobRecovered(7, rdd, collect, (0, 1), {}, 0.0, ((0, "a"), (1, "b")), "restarted"))
    assert only(actions, JobSucceeded).results == ["a", "b"]
    assert only(actions, JobEndedInfo).status == "succeeded"
    assert of_type(actions, SubmitTasks) == []
    h.assert_idle()


def test_a_job_recovered_twice_runs_once_and_export_gives_the_records(ctx):
    h = DagHarness()
    rdd = MappedRDD(SourceRDD(ctx, 2))
    first = h.handle(JobRecovered(3, rdd, collect, (0, 1), {"p": "v"}, 1.5, ((1, "b"),), "restarted"))
    assert h.handle(JobRecovered(3, rdd, collect, (0, 1), {}, 0.0, (), "restarted")) == []
    [record] = export_jobs(h.dag)
    assert (record["job_id"], record["partitions"], record["properties"], record["results"], record["stage_ids"]) == (
        3, (0, 1), {"p": "v"}, {1: "b"}, {0})
    h.succeed(only(first, SubmitTasks), 0)
    h.assert_idle()
