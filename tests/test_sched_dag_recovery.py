"""DAGSchedulerCore recovery: lost executors, fetch failures, stale results, indeterminacy."""

from __future__ import annotations

import pytest

from sparklet.rdd._base import Determinism
from sparklet.runtime._sched_events import (
    ExecutorLost, JobEndedInfo, JobFailed, JobSucceeded, MapStatus, MarkPartitionCompleted, MergeAccumulators,
    StageCompletedInfo, SubmitTasks, TaskEnded,
)

from test_sched_support import DagHarness, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, UnionRDD, of_type, only


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext()


def run_map_stage(h: DagHarness, rdd, placement: dict[int, str]) -> tuple[int, SubmitTasks]:
    """Submit a job on ``rdd`` (one shuffle deep), run its map stage with outputs placed as
    told; returns the job id and the result stage's task set."""
    job_id, actions = h.submit(rdd)
    map_set = only(actions, SubmitTasks)
    assert map_set.is_shuffle_map
    return job_id, only(h.succeed_all(map_set, placement), SubmitTasks)


def test_executor_loss_unregisters_map_outputs_and_next_job_reruns_only_them(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 4), 2)
    _, result_set = run_map_stage(h, MappedRDD(shuffled), {0: "e1", 1: "e2", 2: "e1", 3: "e2"})
    h.succeed_all(result_set)
    h.assert_idle()
    assert h.handle(ExecutorLost("e2", "heartbeat timed out")) == []  # fails nothing by itself
    assert h.dag.map_outputs.find_missing_partitions(shuffled.shuffle_id) == [1, 3]
    _, actions = h.submit(MappedRDD(shuffled))
    rerun = only(actions, SubmitTasks)
    assert rerun.is_shuffle_map and [t.partition for t in rerun.tasks] == [1, 3]
    # A success reported from the lost executor is not registered: its files are gone.
    h.succeed(rerun, 1, "e2")
    assert h.dag.map_outputs.find_missing_partitions(shuffled.shuffle_id) == [1, 3]
    actions = h.succeed(rerun, 3, "e3")
    assert of_type(actions, SubmitTasks)[0].stage_id == rerun.stage_id  # finished with 1 missing: resubmitted
    again = only(actions, SubmitTasks)
    assert (again.stage_attempt, [t.partition for t in again.tasks]) == (1, [1])
    result_set = only(h.succeed(again, 1, "e3"), SubmitTasks)
    h.succeed_all(result_set)
    assert len(of_type(h.actions, JobSucceeded)) == 2
    h.assert_idle()


def test_fetch_failure_resubmits_only_missing_map_tasks_then_reduce(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 4), 2)
    _, result_set = run_map_stage(h, shuffled, {0: "e1", 1: "e1", 2: "e2", 3: "e2"})
    h.succeed(result_set, 1)
    actions = h.fetch_failed(result_set, 0, shuffled.shuffle_id, 2, "e2")
    completed = only(actions, StageCompletedInfo)
    assert (completed.stage_id, completed.status) == (1, "failed") and "FetchFailed(shuffle 0, map 2, executor e2)" in completed.failure_reason
    rerun = only(actions, SubmitTasks)
    # Every output on e2 is presumed lost with it (Spark's fetch-failure rule): maps 2 and 3.
    assert (rerun.stage_id, rerun.stage_attempt, [t.partition for t in rerun.tasks]) == (0, 1, [2, 3])
    assert h.dag.waiting_stages.keys() == {1}
    reduce_again = only(h.succeed_all(rerun, "e3"), SubmitTasks)
    assert (reduce_again.stage_id, reduce_again.stage_attempt, [t.partition for t in reduce_again.tasks]) == (1, 1, [0])
    assert only(h.succeed_all(reduce_again), JobSucceeded).results == [("result", 1, 0), ("result", 1, 1)]
    h.assert_idle()


def test_repeated_fetch_failures_fail_the_job_naming_stage_and_cause(ctx):
    h = DagHarness(max_attempts=3)
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 2)
    _, result_set = run_map_stage(h, MappedRDD(shuffled), {0: "e1", 1: "e2"})
    for attempt in range(3):
        assert result_set.stage_attempt == attempt
        actions = h.fetch_failed(result_set, 0, shuffled.shuffle_id, 1, "e2")
        if attempt == 2:
            break
        map_set = only(actions, SubmitTasks)
        assert [t.partition for t in map_set.tasks] == [1]
        result_set = only(h.succeed_all(map_set, "e2"), SubmitTasks)
    failed = only(actions, JobFailed)
    assert failed.error.startswith("Job aborted due to stage failure: ResultStage 1 (MappedRDD[2]) has failed the maximum "
                                   "allowable number of times: 3, each time fetching the output of ShuffleMapStage 0 (shuffle 0)")
    assert "Most recent failure reason: FetchFailed(shuffle 0, map 1, executor e2)" in failed.error
    assert all(f"attempt {a}: FetchFailed" in failed.error for a in range(3))
    assert only(actions, JobEndedInfo).status == "failed"
    h.assert_idle()


def test_consecutive_fetch_failures_reset_when_the_stage_succeeds(ctx):
    h = DagHarness(max_attempts=2)
    first = ShuffledRDD(SourceRDD(ctx, 1), 1)   # stage 0 writes it
    second = ShuffledRDD(first, 1)              # stage 1 writes it; the result stage reads it
    _, actions = h.submit(second)
    stage1 = only(h.succeed_all(only(actions, SubmitTasks), "e1"), SubmitTasks)
    stage0 = only(h.fetch_failed(stage1, 0, first.shuffle_id, 0, "e1"), SubmitTasks)  # stage 1's 1st failure
    stage1 = only(h.succeed_all(stage0, "e2"), SubmitTasks)
    result_set = only(h.succeed_all(stage1, "e3"), SubmitTasks)
    assert h.dag.stage_id_to_stage[1].failed_attempt_ids == set()  # it succeeded: failures forgotten
    stage1 = only(h.fetch_failed(result_set, 0, second.shuffle_id, 0, "e3"), SubmitTasks)
    assert (stage1.stage_id, stage1.stage_attempt) == (1, 2)
    stage0 = only(h.fetch_failed(stage1, 0, first.shuffle_id, 0, "e2"), SubmitTasks)  # 2nd, but not in a row
    assert of_type(h.actions, JobFailed) == []
    stage1 = only(h.succeed_all(stage0, "e4"), SubmitTasks)
    result_set = only(h.succeed_all(stage1, "e4"), SubmitTasks)
    assert (result_set.stage_id, result_set.stage_attempt) == (2, 1)
    assert only(h.succeed_all(result_set), JobSucceeded)
    h.assert_idle()


def test_late_results_from_an_old_attempt_are_ignored(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 3)
    _, result_set = run_map_stage(h, shuffled, {0: "e1", 1: "e2"})
    map_rerun = only(h.fetch_failed(result_set, 0, shuffled.shuffle_id, 1, "e2"), SubmitTasks)
    # Another fetch failure of the same attempt is counted once; one from an older attempt not at all.
    h.fetch_failed(result_set, 1, shuffled.shuffle_id, 1, "e2")
    assert h.dag.stage_id_to_stage[1].failed_attempt_ids == {0}
    result_attempt1 = only(h.succeed_all(map_rerun, "e3"), SubmitTasks)
    assert h.fetch_failed(result_set, 2, shuffled.shuffle_id, 0, "e1") == []
    assert h.dag.stage_id_to_stage[1].failed_attempt_ids == {0} and h.dag.map_outputs.num_available_outputs(0) == 2
    # A success of the old attempt still completes a missing partition of this determinate stage;
    # the live task set is told not to run it.
    actions = h.succeed(result_set, 2, attempt=0)
    assert only(actions, MarkPartitionCompleted) == MarkPartitionCompleted(1, 2)
    # A second success of the same partition (any attempt) is not a result.
    assert h.succeed(result_attempt1, 2) == []
    h.succeed(result_attempt1, 0)
    actions = h.succeed(result_attempt1, 1)
    assert only(actions, JobSucceeded).results == [("result", 1, 0), ("result", 1, 1), ("result", 1, 2)]
    # Ends of tasks of stages that are gone are ignored.
    assert h.succeed(result_attempt1, 1) == []
    assert h.handle(TaskEnded(0, 0, 0, 99, "e1", "success", map_status=MapStatus("e1"))) == []
    h.assert_idle()


def test_map_success_of_old_attempt_completes_missing_partition(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 3), 1)
    _, actions = h.submit(shuffled)
    attempt0 = only(actions, SubmitTasks)
    h.succeed(attempt0, 0, "e1", accum=(("acc", 1),))
    h.handle(ExecutorLost("e1", "gone"))
    h.succeed(attempt0, 1, "e2")
    actions = h.succeed(attempt0, 2, "e2")  # attempt 0 ends with map 0 missing: attempt 1 runs it
    attempt1 = only(actions, SubmitTasks)
    assert (attempt1.stage_attempt, [t.partition for t in attempt1.tasks]) == (1, [0])
    actions = h.succeed(attempt0, 0, "e2", attempt=0, accum=(("acc", 1),))  # e.g. a duplicate launch
    assert of_type(actions, MarkPartitionCompleted) == [MarkPartitionCompleted(0, 0)]
    assert only(h.actions[-3:], SubmitTasks).stage_id == 1  # the reduce side went ahead
    assert h.succeed(attempt1, 0, "e3") == []  # the live attempt's own result now changes nothing
    assert len(of_type(h.actions, MergeAccumulators)) == 1  # partition 0 computed thrice, counted once
    h.close()


def indeterminate_chain(ctx):
    source = SourceRDD(ctx, 2, determinism=Determinism.INDETERMINATE)
    first = ShuffledRDD(source, 2)         # read by stage 1; stage 0 writes it
    second = ShuffledRDD(MappedRDD(first), 2)  # stage 1 writes it
    return first, second


def test_indeterminate_rerun_forces_downstream_rerun(ctx):
    h = DagHarness()
    first, second = indeterminate_chain(ctx)
    _, actions = h.submit(MappedRDD(second))
    assert h.dag.stage_id_to_stage[0].is_indeterminate and h.dag.stage_id_to_stage[1].is_indeterminate
    stage1 = only(h.succeed_all(only(actions, SubmitTasks), {0: "e1", 1: "e2"}), SubmitTasks)
    h.succeed(stage1, 0, "e1")
    actions = h.fetch_failed(stage1, 1, first.shuffle_id, 1, "e2")
    stage0 = only(actions, SubmitTasks)
    # Map 1 was lost; stage 0 may produce different data now, so all of it re-runs ...
    assert (stage0.stage_id, stage0.stage_attempt, [t.partition for t in stage0.tasks]) == (0, 1, [0, 1])
    assert h.dag.map_outputs.num_available_outputs(second.shuffle_id) == 0  # ... and stage 1's output is void
    # A late success from stage 0's old attempt is ignored: indeterminate.
    h.succeed(stage0, 0, "e1", attempt=0)
    assert h.dag.map_outputs.num_available_outputs(first.shuffle_id) == 0
    stage1_again = only(h.succeed_all(stage0, "e3"), SubmitTasks)
    assert (stage1_again.stage_id, [t.partition for t in stage1_again.tasks]) == (1, [0, 1])
    result_set = only(h.succeed_all(stage1_again, "e3"), SubmitTasks)
    assert only(h.succeed_all(result_set), JobSucceeded)
    h.assert_idle()


def test_indeterminate_rerun_after_results_fails_the_job(ctx):
    h = DagHarness()
    source = SourceRDD(ctx, 2, determinism=Determinism.INDETERMINATE)
    shuffled = ShuffledRDD(source, 2)
    _, result_set = run_map_stage(h, MappedRDD(shuffled), {0: "e1", 1: "e2"})
    h.succeed(result_set, 0)
    actions = h.fetch_failed(result_set, 1, shuffled.shuffle_id, 1, "e2")
    failed = only(actions, JobFailed)
    assert "ShuffleMapStage 0 (SourceRDD[0]) has indeterminate output and must re-run" in failed.error
    assert "ResultStage 1 (MappedRDD[2]) already returned 1 of its 2 results" in failed.error
    assert "cannot be rolled back" in failed.error
    assert of_type(actions, SubmitTasks) == []
    h.assert_idle()


def test_indeterminate_executor_loss_between_jobs_reruns_whole_stage(ctx):
    h = DagHarness()
    source = SourceRDD(ctx, 3, determinism=Determinism.INDETERMINATE)
    shuffled = ShuffledRDD(source, 1)
    _, result_set = run_map_stage(h, shuffled, {0: "e1", 1: "e2", 2: "e1"})
    h.succeed_all(result_set)
    h.handle(ExecutorLost("e2", "gone"))
    _, actions = h.submit(MappedRDD(shuffled))
    assert [t.partition for t in only(actions, SubmitTasks).tasks] == [0, 1, 2]
    h.close()


def test_fetch_failures_of_one_attempt_resubmit_each_missing_parent_at_once(ctx):
    h = DagHarness()
    left, right = ShuffledRDD(SourceRDD(ctx, 1), 1), ShuffledRDD(SourceRDD(ctx, 1), 1)
    _, actions = h.submit(UnionRDD(left, right))
    left_set, right_set = of_type(actions, SubmitTasks)
    h.succeed_all(left_set, "e1")
    result_set = only(h.succeed_all(right_set, "e2"), SubmitTasks)
    left_again = only(h.fetch_failed(result_set, 0, left.shuffle_id, 0, "e1"), SubmitTasks)
    assert left_again.stage_id == 0
    # Same (still current) attempt, the other parent: it is resubmitted now, not after stage 0.
    right_again = only(h.fetch_failed(result_set, 1, right.shuffle_id, 0, "e2"), SubmitTasks)
    assert right_again.stage_id == 1
    assert h.dag.stage_id_to_stage[2].failed_attempt_ids == {0}
    assert of_type(h.succeed_all(right_again, "e3"), SubmitTasks) == []
    result_set = only(h.succeed_all(left_again, "e3"), SubmitTasks)
    assert (result_set.stage_attempt, len(result_set.tasks)) == (1, 2)
    assert only(h.succeed_all(result_set), JobSucceeded)
    h.assert_idle()


def test_task_creation_failure_fails_the_job_with_the_exception(ctx):
    class BadLocations(SourceRDD):
        def _get_preferred_locations(self, split):
            raise KeyError("no such block")

    h = DagHarness()
    _, actions = h.submit(MappedRDD(BadLocations(ctx, 2)))
    failed = only(actions, JobFailed)
    assert isinstance(failed.exception, KeyError) and failed.error.startswith("Job aborted due to stage failure: Task creation failed: KeyError")
    assert of_type(actions, SubmitTasks) == []
    h.assert_idle()
