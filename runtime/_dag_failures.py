"""How the DAG scheduler's core reacts when work is lost: a fetch failure, an
indeterminate map stage that must re-run, a task set that gave up or crashed. Plain
functions over :class:`~sparklet.runtime._dag.DAGSchedulerCore` (its state, its
``_abort_stage``, ``_submit_stage`` and ``_mark_stage_finished``), called from its event
handlers; the rules they follow are listed in ``_dag.py`` under "Failure and recovery".
"""

from __future__ import annotations

from typing import Any

from sparklet.runtime import _dag_recovery as recovery
from sparklet.runtime._sched_events import TaskEnded, TaskSetFailed, TaskSetLost
from sparklet.runtime._stages import ResultStage, ShuffleMapStage, Stage

__all__ = ["fetch_failed", "roll_back_indeterminate", "task_set_failed", "task_set_lost"]


def roll_back_indeterminate(core: Any, stage: ShuffleMapStage) -> None:
    """``stage`` must re-run lost outputs but may produce different data: re-run all of
    it and everything downstream in active jobs; fail jobs whose results went out."""
    downstream = [s for s in core.graph.stage_id_to_stage.values() if stage in core.graph.ancestors(s)]
    core._note(f"rolling back indeterminate {stage} and downstream {sorted(s.id for s in downstream)}")
    core.map_outputs.unregister_all_map_outputs(stage.shuffle_id)
    for s in sorted(downstream, key=lambda s: s.id):
        if not core._registered(s):
            continue
        if isinstance(s, ShuffleMapStage):
            core.map_outputs.unregister_all_map_outputs(s.shuffle_id)
            s.rerun_reason = f"indeterminate {stage} re-runs in full, so everything downstream does"
        elif isinstance(s, ResultStage) and s.active_job is not None and s.active_job.num_finished:
            job = s.active_job
            core._abort_stage(s, (
                f"{stage} ({stage.name}) has indeterminate output and must re-run because some of its map outputs "
                f"were lost, so every stage downstream of it must re-run too; but {s} ({s.name}) already returned "
                f"{job.num_finished} of its {job.num_partitions} results, and finished result tasks cannot be "
                f"rolled back. Eliminate the indeterminacy (for example checkpoint the RDD before repartition) "
                f"and try again."), None)


def fetch_failed(core: Any, stage: Stage, ev: TaskEnded) -> None:
    if ev.stage_attempt != stage.latest_attempt:
        core._note(f"ignoring fetch failure of task {ev.task_id}: attempt {ev.stage_attempt} of {stage} "
                   f"is not the current one ({stage.latest_attempt})")
        return
    shuffle_id, map_id, executor_id = ev.fetch_failed_shuffle_id, ev.fetch_failed_map_id, ev.fetch_failed_executor_id
    map_stage = core.graph.shuffle_id_to_map_stage.get(shuffle_id)
    message = (f"FetchFailed(shuffle {shuffle_id}, map {map_id}, executor {executor_id}) in task {ev.task_id} "
               f"(partition {ev.partition}, attempt {ev.stage_attempt}): {ev.reason}")
    first = ev.stage_attempt not in stage.failed_attempt_ids
    stage.failed_attempt_ids.add(ev.stage_attempt)
    if first:
        stage.fetch_failures.append((ev.stage_attempt, message))
    stage.rerun_reason = f"fetch failure: {message}"
    if map_stage is not None:
        map_stage.rerun_reason = f"map outputs lost: {message}"
    if stage.id in core.running_stages:
        core._mark_stage_finished(stage, error=message)
    if map_id is not None:
        core.map_outputs.unregister_map_output(shuffle_id, map_id, executor_id)
    if executor_id is not None:
        core.map_outputs.remove_outputs_on_executor(executor_id)  # its shuffle files are presumed lost
    if map_stage is None:
        core._abort_stage(stage, f"{message}; but no stage of a running job writes shuffle {shuffle_id}", None)
    elif len(stage.failed_attempt_ids) >= core.max_consecutive_stage_attempts:
        history = "; ".join(f"attempt {a}: {m}" for a, m in stage.fetch_failures)
        core._abort_stage(stage, (
            f"{stage} ({stage.name}) has failed the maximum allowable number of times: "
            f"{core.max_consecutive_stage_attempts}, each time fetching the output of {map_stage} (shuffle {shuffle_id}). "
            f"Most recent failure reason: {message}. All failures: {history}"), None)
    else:
        if not map_stage.is_available:
            core._submit_stage(map_stage)
        core._submit_stage(stage)


def task_set_failed(core: Any, ev: TaskSetFailed) -> None:
    stage = core.graph.stage_id_to_stage.get(ev.stage_id)
    if stage is None:
        core._note(f"task set {ev.stage_id}.{ev.stage_attempt} failed after its stage went: {ev.reason}")
        return
    exception = ev.exception if ev.exception is not None else stage.last_task_exception
    lost = recovery.explain_unrecoverable(stage, stage.last_failed_partition, exception)  # beyond recovery?
    core._abort_stage(stage, ev.reason if lost is None else f"{lost}. {ev.reason}", exception if lost is None else lost)


def task_set_lost(core: Any, ev: TaskSetLost) -> None:
    """The current attempt's task set crashed (its actor failed; its running tasks were
    killed): submit a new attempt for the partitions still missing. Results it already
    reported stand. Crashes count as failed attempts: after
    ``max_consecutive_stage_attempts`` in a row the jobs needing the stage fail."""
    stage = core.graph.stage_id_to_stage.get(ev.stage_id)
    if stage is None or stage.id not in core.running_stages or ev.stage_attempt != stage.latest_attempt:
        core._note(f"task set {ev.stage_id}.{ev.stage_attempt} lost, not the running attempt: {ev.reason}")
        return
    message = f"Task set {ev.stage_id}.{ev.stage_attempt} crashed: {ev.reason}"
    stage.failed_attempt_ids.add(ev.stage_attempt)
    core._mark_stage_finished(stage, error=message)
    if len(stage.failed_attempt_ids) >= core.max_consecutive_stage_attempts:
        core._abort_stage(stage, f"{stage} ({stage.name}) failed {len(stage.failed_attempt_ids)} attempts in a "
                                 f"row; most recent: {message}", None)
    else:
        core._submit_stage(stage)
