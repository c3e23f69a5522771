"""The DAG scheduler's barrier rules (Spark's barrier checks in ``DAGScheduler``), as plain
functions over :class:`~sparklet.runtime._dag.DAGSchedulerCore`, which calls them from a
few marked hooks.

* At job submission (``check_barrier_job``): every barrier stage of the job must run all of
  its RDDs' partitions (no ``take``/``first``/``union``/``coalesce`` pattern inside the
  stage, no RDD over two barrier RDDs: SPARK-24820/24821) and must fit the cluster: a
  stage of N tasks needs N slots at once (SPARK-24819). The cluster's slots are the cores
  of every executor the scheduler has seen (an executor being restarted still counts: its
  supervisor brings it back under the same id). Either failure fails the job at once with
  a :class:`BarrierJobAllocationFailed` naming the stage and the numbers; nothing ran.
* When a task of the current attempt of a running barrier stage ends other than in
  success (``barrier_task_failed``): the attempt's other tasks are killed, the attempt
  fails, and the WHOLE stage runs again as a new attempt (every partition: a map stage's
  outputs are all unregistered, a result stage's results of that job are dropped), up to
  ``stage.maxConsecutiveAttempts`` attempts; then the jobs needing it fail naming the
  stage, every failure and the last task's exception. A fetch failure also kills the
  attempt's other tasks, then takes the usual fetch-failure path (which resubmits the
  parent map stage and then this one, in full).
* Results from an older attempt of a barrier stage are void (``DAGSchedulerCore._stale``).

Where sparklet differs from Spark: Spark aborts a barrier *result* stage whose task
failed ("Could not recover from a failed barrier ResultStage"), because a result task may
have committed output. A sparklet result task hands its result to the driver, which only
answers the job once every result is in, so dropping the failed attempt's results and
running the stage again is safe; the job answers exactly once.
"""

from __future__ import annotations

from typing import Any

from sparklet.rdd._barrier import is_barrier
from sparklet.rdd._base import NarrowDependency
from sparklet.runtime._sched_events import CancelTasks, TaskEnded
from sparklet.runtime._stages import ResultStage, ShuffleMapStage, Stage, StageGraph

__all__ = ["BarrierJobAllocationFailed", "BarrierJobSlotsNumberCheckFailed", "BarrierJobUnsupportedRDDChainException",
           "check_barrier_job", "barrier_task_failed", "prepare_full_attempt"]

UNSUPPORTED_RDD_CHAIN = (
    "[SPARK-24820][SPARK-24821]: Barrier execution mode does not allow the following pattern of RDD chain within a "
    "barrier stage:\n1. Ancestor RDDs that have different number of partitions from the resulting RDD (eg. "
    "union()/coalesce()/first()/take()). A workaround for first()/take() can be barrierRdd.collect()[0].\n"
    "2. An RDD that depends on multiple barrier RDDs (eg. barrierRdd1.zip(barrierRdd2)).")
MORE_SLOTS_THAN_CLUSTER = (
    "[SPARK-24819]: Barrier execution mode does not allow run a barrier stage that requires more slots than the total "
    "number of slots in the cluster currently. Please init a new cluster with more CPU cores or repartition the input "
    "RDD(s) to reduce the number of slots required to run this barrier stage.")


class BarrierJobAllocationFailed(Exception):
    """A job with barrier stages failed a check at submission; nothing of it ran."""


class BarrierJobUnsupportedRDDChainException(BarrierJobAllocationFailed):
    pass


class BarrierJobSlotsNumberCheckFailed(BarrierJobAllocationFailed):
    def __init__(self, message: str, required: int = 0, available: int = 0) -> None:
        super().__init__(message)
        self.requiredConcurrentTasks = required
        self.maxConcurrentTasks = available


def _rdds_within_stage(rdd: Any) -> list[Any]:
    seen, stack, found = {id(rdd)}, [rdd], []
    while stack:
        current = stack.pop()
        found.append(current)
        for dep in current.dependencies:
            if isinstance(dep, NarrowDependency) and id(dep.rdd) not in seen:
                seen.add(id(dep.rdd))
                stack.append(dep.rdd)
    return found


def _chain_problem(stage: Stage) -> str | None:
    for rdd in _rdds_within_stage(stage.rdd):
        if len(rdd.partitions) != stage.num_tasks:
            return f"{rdd!r} has {len(rdd.partitions)} partitions, the stage runs {stage.num_tasks} tasks"
        barrier_parents = [dep.rdd for dep in rdd.dependencies if isinstance(dep, NarrowDependency) and is_barrier(dep.rdd)]
        if len(barrier_parents) > 1:
            return f"{rdd!r} depends on {len(barrier_parents)} barrier RDDs: {barrier_parents}"
    return None


def check_barrier_job(graph: StageGraph, job_id: int, executor_cores: dict[str, int]) -> BarrierJobAllocationFailed | None:
    """The first barrier check the job's stages fail, or None."""
    total = sum(executor_cores.values())
    for stage_id in sorted(graph.job_id_to_stage_ids.get(job_id, ())):
        stage = graph.stage_id_to_stage[stage_id]
        if not stage.is_barrier:
            continue
        problem = _chain_problem(stage)
        if problem is not None:
            return BarrierJobUnsupportedRDDChainException(
                f"{UNSUPPORTED_RDD_CHAIN}\nIn barrier {stage} ({stage.name}) of job {job_id}: {problem}.")
        if stage.num_tasks > total:
            cluster = ", ".join(f"{e}: {c}" for e, c in sorted(executor_cores.items())) or "no executor"
            return BarrierJobSlotsNumberCheckFailed(
                f"{MORE_SLOTS_THAN_CLUSTER}\nBarrier {stage} ({stage.name}) of job {job_id} has {stage.num_tasks} "
                f"tasks, so it needs {stage.num_tasks} slots at once; the cluster has {total} "
                f"(cores per executor: {cluster}).", stage.num_tasks, total)
    return None


def prepare_full_attempt(core: Any, stage: Stage) -> None:
    """Before a barrier stage's attempt: make sure it runs every partition."""
    if isinstance(stage, ShuffleMapStage):
        missing = stage.find_missing_partitions()
        if missing and len(missing) < stage.num_tasks:
            core._note(f"barrier {stage} must re-run all of its partitions, not only {missing}")
            core.map_outputs.unregister_all_map_outputs(stage.shuffle_id)
    elif isinstance(stage, ResultStage) and stage.active_job is not None and stage.active_job.num_finished:
        _drop_results(stage)


def _drop_results(stage: ResultStage) -> None:
    job = stage.active_job
    if job is None:
        return
    job.finished = [False] * job.num_partitions
    job.results = [None] * job.num_partitions
    job.num_finished = 0


def barrier_task_failed(core: Any, stage: Stage, ev: TaskEnded) -> bool:
    """A task of barrier ``stage`` ended other than in success. Returns whether that is
    fully handled (a fetch failure is not: the caller's fetch-failure path continues)."""
    fetch_failed = ev.status == "fetch_failed"
    if ev.stage_attempt != stage.latest_attempt or stage.id not in core.running_stages:
        core._note(f"ignoring {ev.status} of task {ev.task_id}: attempt {ev.stage_attempt} of barrier {stage} is over")
        return not fetch_failed
    attempt = ev.stage_attempt
    core._emit(CancelTasks, stage.id, attempt, f"Task {ev.task_id} from barrier {stage} ({stage.name}) failed.")
    if ev.status == "failed":
        stage.last_task_exception = ev.result
    if fetch_failed:
        _void_outputs(core, stage)
        return False
    message = (f"Stage failed because barrier task {ev.task_id} (partition {ev.partition}, stage attempt {attempt}) "
               f"finished unsuccessfully: {ev.status}" + (f": {ev.reason}" if ev.reason else ""))
    core._mark_stage_finished(stage, error=message)
    stage.failed_attempt_ids.add(attempt)
    stage.fetch_failures.append((attempt, message))
    if len(stage.failed_attempt_ids) >= core.max_consecutive_stage_attempts:
        history = "; ".join(f"attempt {a}: {m}" for a, m in stage.fetch_failures)
        core._abort_stage(stage, (
            f"Barrier {stage} ({stage.name}) has failed the maximum allowable number of times: "
            f"{core.max_consecutive_stage_attempts}. Most recent failure reason: {message}. All failures: {history}"),
            stage.last_task_exception)
        return True
    core._note(f"barrier {stage} attempt {attempt} failed: re-running the whole stage")
    _void_outputs(core, stage)
    core._submit_stage(stage)
    return True


def _void_outputs(core: Any, stage: Stage) -> None:
    """Whatever the failed attempt produced is void: every partition runs again (Spark's
    ``unregisterAllMapOutput`` for a barrier map stage)."""
    if isinstance(stage, ShuffleMapStage):
        core.map_outputs.unregister_all_map_outputs(stage.shuffle_id)
    else:
        assert isinstance(stage, ResultStage)
        _drop_results(stage)
