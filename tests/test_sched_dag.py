"""DAGSchedulerCore: stages, sharing, skipping, locality, accumulators, cancellation.

Driven synchronously through :class:`DagHarness` (validate_state after every event);
recovery from lost outputs is in ``test_sched_dag_recovery.py``."""

from __future__ import annotations

import pytest

from sparklet.actors import InvalidTransition, StateMachine
from sparklet.rdd._base import ShuffleDependency
from sparklet.runtime._sched_events import (
    AllJobsCancelled, CancelTasks, ExecutorAdded, JobCancelled, JobEndedInfo, JobFailed, JobGroupCancelled,
    JobStartedInfo, JobSubmitted, JobSucceeded, MergeAccumulators, StageCompletedInfo, StageSubmittedInfo, SubmitTasks, TaskEnded,
    TaskSetFailed,
)
from sparklet.runtime._stages import JOB_TRANSITIONS, STAGE_TRANSITIONS, JobState, StageState

from test_sched_support import (
    DagHarness, FailingRDD, FakeContext, MappedRDD, ShuffledRDD, SourceRDD, UnionRDD, of_type, only,
)


@pytest.fixture
def ctx() -> FakeContext:
    return FakeContext()


def test_single_stage_job(ctx):
    h = DagHarness()
    rdd = MappedRDD(MappedRDD(SourceRDD(ctx, 3)))
    job_id, actions = h.submit(rdd)
    assert only(actions, JobStartedInfo).stage_ids == (0,)
    ts = only(actions, SubmitTasks)
    assert (ts.stage_id, ts.stage_attempt, ts.is_shuffle_map, ts.priority, ts.rdd) == (0, 0, False, job_id, rdd)
    assert [(t.partition, t.index) for t in ts.tasks] == [(0, 0), (1, 1), (2, 2)]
    info = only(actions, StageSubmittedInfo)
    assert (info.num_tasks, info.partitions_to_run, info.parent_ids, info.job_ids) == (3, (0, 1, 2), (), (job_id,))
    h.clock.advance(5)
    assert h.succeed(ts, 2) == []  # results arrive out of order
    assert h.succeed(ts, 0) == []
    actions = h.succeed(ts, 1)
    assert only(actions, JobSucceeded).results == [("result", 0, 0), ("result", 0, 1), ("result", 0, 2)]
    assert only(actions, StageCompletedInfo).status == "succeeded"
    assert only(actions, JobEndedInfo).status == "succeeded"
    assert only(actions, CancelTasks).reason == "Stage finished"  # kills zombie leftovers, if any
    assert all(a.cause == actions[0].cause for a in actions)
    stage, state, history = h.dag.ended_stages[-1]
    assert (stage, state) == ("ResultStage 0", StageState.SUCCEEDED)
    assert [(old.value, new.value, t) for old, new, _, t in history] == [("new", "running", 0.0), ("running", "succeeded", 5.0)]
    h.assert_idle()


def test_job_on_some_partitions_returns_results_in_job_order(ctx):
    h = DagHarness()
    _, actions = h.submit(SourceRDD(ctx, 4), partitions=[3, 1])
    ts = only(actions, SubmitTasks)
    assert [(t.partition, t.index) for t in ts.tasks] == [(3, 0), (1, 1)]
    h.succeed(ts, 1)
    assert only(h.succeed(ts, 3), JobSucceeded).results == [("result", 0, 3), ("result", 0, 1)]
    h.assert_idle()


def test_two_stage_job_runs_map_stage_first(ctx):
    h = DagHarness()
    mapped = MappedRDD(SourceRDD(ctx, 3))
    final = MappedRDD(ShuffledRDD(mapped, 2))
    _, actions = h.submit(final)
    assert only(actions, JobStartedInfo).stage_ids == (0, 1)
    map_set = only(actions, SubmitTasks)
    assert map_set.is_shuffle_map and map_set.stage_id == 0 and map_set.rdd is mapped  # narrow deps pipelined
    assert isinstance(map_set.func_or_shuffle_dep, ShuffleDependency)
    assert h.dag.waiting_stages.keys() == {1} and h.dag.running_stages.keys() == {0}
    assert of_type(h.succeed(map_set, 0) + h.succeed(map_set, 1), SubmitTasks) == []
    actions = h.succeed(map_set, 2)
    assert [a.status for a in of_type(actions, StageCompletedInfo)] == ["succeeded"]
    result_set = only(actions, SubmitTasks)
    assert (result_set.stage_id, result_set.is_shuffle_map, len(result_set.tasks)) == (1, False, 2)
    assert only(actions, StageSubmittedInfo).parent_ids == (0,)
    h.succeed_all(result_set)
    assert only(h.actions, JobSucceeded)
    h.assert_idle()
    assert h.dag.map_outputs.num_available_outputs(0) == 3  # outputs outlive the job


def test_stage_shared_between_concurrent_jobs_and_skipped_later(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 2)
    job_a, actions_a = h.submit(MappedRDD(shuffled))
    job_b, actions_b = h.submit(MappedRDD(shuffled))
    map_set = only(actions_a, SubmitTasks)
    assert of_type(actions_b, SubmitTasks) == []  # the running map stage is shared, not resubmitted
    assert only(actions_b, JobStartedInfo).stage_ids == (0, 2)
    assert h.dag.stage_id_to_stage[0].job_ids == {job_a, job_b}
    actions = h.succeed_all(map_set)
    result_sets = of_type(actions, SubmitTasks)
    assert [(s.stage_id, s.job_id) for s in result_sets] == [(1, job_a), (2, job_b)]
    for s in result_sets:
        h.succeed_all(s)
    assert [a.job_id for a in of_type(h.actions, JobSucceeded)] == [job_a, job_b]
    h.assert_idle()
    # A later job builds a new map stage for the same shuffle; its outputs exist: skipped.
    job_c, actions = h.submit(MappedRDD(shuffled))
    assert only(actions, JobStartedInfo).stage_ids == (3, 4)
    result_set = only(actions, SubmitTasks)
    assert result_set.stage_id == 4
    actions = h.succeed_all(result_set)
    assert [(i.stage_id, i.status) for i in of_type(actions, StageCompletedInfo)] == [(4, "succeeded"), (3, "skipped")]
    assert ("ShuffleMapStage 3", StageState.SKIPPED) in [entry[:2] for entry in h.dag.ended_stages]
    h.assert_idle()


def test_only_missing_partitions_run(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 4), 2)
    job_a, actions = h.submit(shuffled)
    map_set = only(actions, SubmitTasks)
    h.succeed(map_set, 0)
    h.succeed(map_set, 2)
    actions = h.handle(JobCancelled(job_a, "by the user"))
    assert only(actions, CancelTasks).stage_id == 0
    h.assert_idle()
    _, actions = h.submit(MappedRDD(shuffled))
    rerun = only(actions, SubmitTasks)
    assert rerun.is_shuffle_map and [t.partition for t in rerun.tasks] == [1, 3]
    assert [t.index for t in rerun.tasks] == [0, 1]
    h.close()


def test_preferred_locations_from_cache_then_narrow_ancestors(ctx):
    left = SourceRDD(ctx, 2, prefs={0: ["hostA"], 1: ["hostB"]})
    right = SourceRDD(ctx, 1, prefs={0: ["hostR"]})
    cached = MappedRDD(left)
    final = MappedRDD(UnionRDD(cached, right))
    h = DagHarness(cache={cached.id: {1: ["e7"]}})
    h.handle(ExecutorAdded("e7", "hostC"))
    _, actions = h.submit(final)
    prefs = {t.partition: t.preferred_locations for t in only(actions, SubmitTasks).tasks}
    assert prefs == {0: ("hostA",), 1: ("executor_hostC_e7",), 2: ("hostR",)}
    # Across a shuffle nothing is inherited from the map side.
    _, actions = h.submit(ShuffledRDD(left, 2))
    map_set = only(actions, SubmitTasks)
    assert [t.preferred_locations for t in map_set.tasks] == [("hostA",), ("hostB",)]
    actions = h.succeed_all(map_set)
    assert [t.preferred_locations for t in only(actions, SubmitTasks).tasks] == [(), ()]
    h.close()


def test_fully_cached_rdd_needs_no_parent_stage(ctx):
    shuffled = ShuffledRDD(SourceRDD(ctx, 3), 2)
    h = DagHarness(cache={shuffled.id: {0: ["e1"], 1: ["e2"]}})
    h.handle(ExecutorAdded("e1", "h1"))
    h.handle(ExecutorAdded("e2", "h2"))
    _, actions = h.submit(MappedRDD(shuffled))
    result_set = only(actions, SubmitTasks)
    assert not result_set.is_shuffle_map
    assert [t.preferred_locations for t in result_set.tasks] == [("executor_h1_e1",), ("executor_h2_e2",)]
    actions = h.succeed_all(result_set)
    assert [(i.stage_id, i.status) for i in of_type(actions, StageCompletedInfo)] == [(1, "succeeded"), (0, "skipped")]
    h.assert_idle()


def test_accumulators_counted_once_under_retries_and_duplicates(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 2)
    _, actions = h.submit(shuffled)
    map_set = only(actions, SubmitTasks)
    merged = of_type(h.succeed(map_set, 0, "e1", accum=(("acc", 1),)), MergeAccumulators)
    assert [(m.stage_id, m.partition, m.updates) for m in merged] == [(0, 0, (("acc", 1),))]
    assert of_type(h.succeed(map_set, 0, "e2", accum=(("acc", 1),)), MergeAccumulators) == []  # duplicate
    h.handle(TaskEnded(0, 0, 1, 50, "e1", "failed", ValueError("x"), (("acc", 5),)))  # failures are not merged
    actions = h.succeed(map_set, 1, "e1", accum=(("acc", 1),))
    assert len(of_type(actions, MergeAccumulators)) == 1
    result_set = only(actions, SubmitTasks)
    h.succeed(result_set, 0, accum=(("acc", 2),))
    assert of_type(h.succeed(result_set, 0, accum=(("acc", 2),)), MergeAccumulators) == []  # speculative copy
    actions = h.succeed(result_set, 1, accum=(("acc", 2),))
    assert only(actions, JobSucceeded)
    assert len(of_type(h.actions, MergeAccumulators)) == 4
    h.assert_idle()


def test_cancelling_one_of_two_jobs_keeps_the_shared_stage_running(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 2)
    job_a, actions = h.submit(MappedRDD(shuffled))
    map_set = only(actions, SubmitTasks)
    job_b, _ = h.submit(MappedRDD(shuffled))
    actions = h.handle(JobCancelled(job_a, "because the user asked"))
    failed = only(actions, JobFailed)
    assert failed.cancelled and failed.error == f"Job {job_a} cancelled because the user asked"
    assert only(actions, JobEndedInfo).status == "cancelled"
    assert of_type(actions, CancelTasks) == []  # the map stage is job B's too; A's result stage never ran
    assert h.dag.running_stages.keys() == {0} and h.dag.stage_id_to_stage[0].job_ids == {job_b}
    result_set = only(h.succeed_all(map_set), SubmitTasks)
    assert result_set.job_id == job_b
    h.succeed_all(result_set)
    assert only(h.actions, JobSucceeded).job_id == job_b
    h.assert_idle()
    # Alone, a cancelled job's running stage is cancelled.
    job_c, actions = h.submit(ShuffledRDD(SourceRDD(ctx, 2), 2))
    map_stage = only(actions, SubmitTasks).stage_id
    actions = h.handle(JobCancelled(job_c, "now"))
    assert only(actions, CancelTasks) == CancelTasks(map_stage, None, f"Job {job_c} cancelled now", cause=None)
    assert [(i.stage_id, i.status) for i in of_type(actions, StageCompletedInfo)] == [(map_stage, "failed"),
                                                                                      (map_stage + 1, "skipped")]
    h.assert_idle()
    assert h.handle(JobCancelled(job_c, "again")) == []


def test_job_group_cancellation(ctx):
    h = DagHarness()
    jobs = {}
    for name, group in [("a", "g1"), ("b", "g2"), ("c", "g1")]:
        jobs[name], _ = h.submit(SourceRDD(ctx, 1), properties={"spark.jobGroup.id": group})
    actions = h.handle(JobGroupCancelled("g1", "too slow"))
    failed = of_type(actions, JobFailed)
    assert [f.job_id for f in failed] == [jobs["a"], jobs["c"]]
    assert all("part of cancelled job group g1: too slow" in f.error and f.cancelled for f in failed)
    assert [c.stage_id for c in of_type(actions, CancelTasks)] == [0, 2]
    assert set(h.dag.job_id_to_job) == {jobs["b"]}
    actions = h.handle(AllJobsCancelled())
    assert only(actions, JobFailed).error == f"Job {jobs['b']} cancelled as part of cancellation of all jobs"
    h.assert_idle()


def test_task_set_failed_fails_every_job_needing_the_stage_with_the_user_exception(ctx):
    h = DagHarness()
    shuffled = ShuffledRDD(SourceRDD(ctx, 2), 2)
    job_a, actions = h.submit(shuffled)
    job_b, _ = h.submit(MappedRDD(shuffled))
    other, _ = h.submit(SourceRDD(ctx, 1))
    boom = ValueError("boom")
    h.handle(TaskEnded(0, 0, 1, 7, "e1", "failed", boom, reason="ValueError: boom"))
    actions = h.handle(TaskSetFailed(0, 0, "Task 1 in stage 0.0 failed 4 times", boom))
    failed = of_type(actions, JobFailed)
    assert [f.job_id for f in failed] == [job_a, job_b]
    assert all(f.exception is boom and f.error == "Job aborted due to stage failure: Task 1 in stage 0.0 failed 4 times"
               and not f.cancelled for f in failed)
    assert [c.stage_id for c in of_type(actions, CancelTasks)] == [0]  # cancelled once, when its last job went
    assert set(h.dag.job_id_to_job) == {other}
    assert h.handle(TaskSetFailed(0, 0, "again", boom)) == []  # the stage is gone
    # Without an exception in TaskSetFailed, the last one a task of the stage raised is used.
    h.handle(TaskEnded(3, 0, 0, 8, "e1", "failed", KeyError("k"), reason="KeyError: 'k'"))
    failed = only(h.handle(TaskSetFailed(3, 0, "Task 0 in stage 3.0 failed 4 times")), JobFailed)
    assert failed.job_id == other and isinstance(failed.exception, KeyError)
    h.assert_idle()


def test_failing_partitions_fail_the_job_cleanly(ctx):
    h = DagHarness()
    _, actions = h.submit(MappedRDD(ShuffledRDD(FailingRDD(ctx), 2)))
    failed = only(actions, JobFailed)
    assert isinstance(failed.exception, OSError) and "input path does not exist" in failed.error
    h.assert_idle()
    _, actions = h.submit(SourceRDD(ctx, 2), partitions=[0, 5])
    assert only(actions, JobFailed).error == "Attempting to access non-existent partitions [5]. Total number of partitions: 2"
    _, actions = h.submit(SourceRDD(ctx, 2), partitions=[])
    assert only(actions, JobSucceeded).results == [] and only(actions, JobEndedInfo).status == "succeeded"
    h.assert_idle()
    with pytest.raises(TypeError, match="takes a DAG event"):
        h.dag.handle(SubmitTasks(0, 0, 0, None, None, (), False, {}, 0))
    running, _ = h.submit(SourceRDD(ctx, 1))
    with pytest.raises(ValueError, match=f"job {running} is already running"):
        h.dag.handle(JobSubmitted(running, SourceRDD(ctx, 1), None, (0,)))
    with pytest.raises(ValueError, match="status must be one of"):
        TaskEnded(0, 0, 0, 1, "e1", "exploded")
    with pytest.raises(ValueError, match="needs fetch_failed_shuffle_id"):
        TaskEnded(0, 0, 0, 1, "e1", "fetch_failed")
    with pytest.raises(ValueError, match="max_consecutive_stage_attempts must be a positive integer, got 0"):
        DagHarness(max_attempts=0)


def test_stage_and_job_tables_reject_illegal_moves():
    stage = StateMachine("ShuffleMapStage 3", StageState.NEW, STAGE_TRANSITIONS)
    stage.move(StageState.SKIPPED, cause=(7, "job 1 ended"))
    with pytest.raises(InvalidTransition, match=r"skipped -> running.*new->skipped \(\(7, 'job 1 ended'\)\)"):
        stage.move(StageState.RUNNING)
    job = StateMachine("job 1", JobState.RUNNING, JOB_TRANSITIONS)
    job.move(JobState.CANCELLED)
    with pytest.raises(InvalidTransition):
        job.move(JobState.SUCCEEDED)
    for table in (STAGE_TRANSITIONS, JOB_TRANSITIONS):
        assert all(target in table for targets in table.values() for target in targets)
