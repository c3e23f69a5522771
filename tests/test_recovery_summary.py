"""Each job's JobEnd carries a summary: the tasks that ran more than once, and every stage
attempt that re-ran work with its reason."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import Fault, FaultPlan, JobEnd, JobSummary
from sparklet.runtime._job_summary import JobSummaries
from sparklet.runtime import _listener as listen

QUIET = {"ui.showConsoleProgress": False}


def test_a_fault_free_job_ran_each_task_once():
    with Context("inproc[2]", "summary", conf=QUIET) as sc:
        assert sc.parallelize(range(10), 3).map(lambda x: (x % 2, x)).reduceByKey(operator.add, 2).count() == 2
        [end] = sc.listener_events(JobEnd)
        assert end.summary == JobSummary(0, 5, 0, 0, (), ())


def test_a_retried_task_counts_once_as_run_more_than_once():
    plan = FaultPlan([Fault("raise", stage=0, partition=1, attempt=0)])
    with Context("inproc[2]", "summary", conf=QUIET, faults=plan) as sc:
        assert sc.parallelize(range(10), 3).sum() == 45
        summary = sc.listener_events(JobEnd)[0].summary
        assert (summary.tasks_run, summary.tasks_run_more_than_once, summary.extra_task_runs) == (4, 1, 1)
        assert summary.stages_resubmitted == () and summary.recoveries == ()


@pytest.mark.parametrize("master", ["inproc[2]", "local[2]"])
def test_a_fetch_failure_names_the_resubmitted_stages_and_why(master):
    plan = FaultPlan([Fault("lose_shuffle_output", shuffle=0, map_id=1)])
    with Context(master, "summary", conf=QUIET, faults=plan) as sc:
        pairs = sc.parallelize(range(40), 4).map(lambda x: (x % 4, 1)).reduceByKey(operator.add, 2)
        assert sorted(pairs.collect()) == [(0, 10), (1, 10), (2, 10), (3, 10)]
        summary = sc.listener_events(JobEnd)[0].summary
        reasons = {(stage, attempt): why for stage, attempt, why in summary.stages_resubmitted}
        # Both reduce tasks may fail their fetch; when the second failure lands after the map
        # stage was resubmitted, it is resubmitted once more (attempt 2): timing, see the notes.
        assert {(0, 1), (1, 1)} <= reasons.keys() <= {(0, 1), (0, 2), (1, 1)}
        assert reasons[(0, 1)].startswith("map outputs lost: FetchFailed(shuffle 0, map 1")
        assert reasons[(1, 1)].startswith("fetch failure: FetchFailed(shuffle 0, map 1")
        assert summary.tasks_run_more_than_once >= 2  # map 1, and the reduce task(s) that failed to fetch it


def test_summaries_forget_finished_jobs_and_identify_tasks_by_their_work():
    summaries = JobSummaries()
    summaries.on_event(listen.JobStart(0.0, 0, (0, 1), {}))
    summaries.on_event(listen.StageSubmitted(0.0, 0, 0, "map", 2, (0, 1), (), None, 7, 3))
    for partition in (0, 1):
        summaries.on_event(listen.TaskStart(0.0, partition, 0, 0, partition, 0, "e", "ANY"))
    summaries.on_event(listen.JobRecovered(0.0, 0, (2, 3), (), (0,), ((7, (1,)),), "restarted"))
    summaries.on_event(listen.StageSubmitted(0.0, 2, 0, "map", 1, (1,), (), "restarted", 7, 3))
    summaries.on_event(listen.TaskStart(0.0, 9, 2, 0, 1, 0, "e", "ANY"))  # map 1 again, under a new stage id
    summary = summaries.finish(0)
    assert (summary.tasks_run, summary.tasks_run_more_than_once, summary.extra_task_runs) == (3, 1, 1)
    assert summary.stages_resubmitted == ((2, 0, "restarted"),)
    assert summary.recoveries == ("restarted: kept results [], recomputed [0] and map outputs [(7, (1,))]",)
    assert summaries.finish(0) is None and not summaries._stage_jobs and not summaries._stage_work
