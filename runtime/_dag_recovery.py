"""How a restarted DAG scheduler core takes over running jobs (sans-I/O, part of the DAG core).

A DAG scheduler that crashes loses its stages, attempts and pending partitions. What it
needs to carry on is kept elsewhere (see ``docs/recovery.md``): the job registry (each
running job's RDD, function, partitions, properties and the results received so far) in
the job manager, and the map outputs in the map output tracker. The restarted actor
loads the tracker's copy of the map outputs (:func:`adopt_map_outputs`),
continues stage ids above every id its previous incarnation used (so a late result of an
old task set never lands on a new stage), and hands each recorded job to the core as
:class:`JobRecovered`. The core rebuilds the job's stages from its RDD, marks the results
it already has as finished, and submits the stages: a map stage runs only its missing
outputs, the result stage only its missing partitions; a job with every result in ends at
once. Accumulator updates are never merged twice: the results kept had theirs merged
when they arrived, and map partitions record theirs in the map output registry.

Invariants: a recovered job is exactly like a submitted one for ``validate_state`` (the
same registries, and ``num_finished < num_partitions`` while it runs); recovering a job
the core already runs is a no-op (its ``JobSubmitted`` may still be in the mailbox).

Review checklist (``tests/test_recovery_dag.py``): results kept and not recomputed,
only missing map outputs re-run, a complete job ends at once, duplicates ignored:
``test_a_recovered_job_runs_only_what_is_missing``,
``test_a_recovered_job_with_every_result_ends_at_once``; end to end under both masters:
``test_a_dag_scheduler_crash_mid_job_is_recovered``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sparklet.actors import SparkletInternalError
from sparklet.rdd._base import NarrowDependency
from sparklet.runtime._sched_mapoutputs import MapOutputRegistry
from sparklet.runtime._sched_events import JobEndedInfo, JobFailed, JobRecovered, JobRecoveredInfo, JobSucceeded
from sparklet.runtime._stages import Job, JobState, ShuffleMapStage, Stage

if TYPE_CHECKING:
    from sparklet.runtime._dag import DAGSchedulerCore

__all__ = ["adopt_map_outputs", "recover_job", "take_rerun_reason", "export_jobs", "explain_unrecoverable", "PartitionUnrecoverableError"]


class PartitionUnrecoverableError(RuntimeError):
    """A partition was lost and cannot be rebuilt: its lineage was truncated (by a
    checkpoint) and what replaced it is gone. Names the RDD, the partition and why."""


def adopt_map_outputs(core: "DAGSchedulerCore", registry: MapOutputRegistry) -> None:
    """Start ``core`` from ``registry`` (a restarted scheduler's copy of the tracker's), before any job."""
    if core.graph.stage_id_to_stage or core.job_id_to_job:
        raise SparkletInternalError("adopt_map_outputs with stages registered. Please report it.")
    registry.journal, core.map_outputs.journal = core.map_outputs.journal, None
    core.map_outputs = core.graph.map_outputs = registry


def recover_job(core: "DAGSchedulerCore", ev: JobRecovered) -> None:
    job_id, partitions = ev.job_id, tuple(ev.partitions)
    if job_id in core.job_id_to_job:
        core._note(f"job {job_id} is already running: not recovering it again")
        return
    try:
        stage = core.graph.create_result_stage(ev.rdd, ev.func, partitions, job_id, ev.properties)
    except Exception as e:
        core._emit(JobFailed, job_id, f"Recovering job {job_id} failed rebuilding its stages: {e!r}", e)
        core._emit(JobEndedInfo, job_id, JobState.FAILED.value, repr(e), core._clock())
        return
    job = Job(job_id, stage, ev.func, partitions, ev.properties, ev.submitted_at)
    stage.active_job = job
    core.job_id_to_job[job_id] = job
    for out, result in ev.results:
        if 0 <= out < len(partitions) and not job.finished[out]:
            job.finished[out] = True
            job.results[out] = result
            job.num_finished += 1
            stage.accumulated_partitions.add(partitions[out])
    stage_ids = tuple(sorted(core.graph.job_id_to_stage_ids[job_id]))
    missing_maps = tuple((s.shuffle_id, tuple(s.find_missing_partitions())) for s in _map_stages(core, stage_ids)
                         if s.find_missing_partitions())
    kept = tuple(i for i, done in enumerate(job.finished) if done)
    missing = tuple(i for i, done in enumerate(job.finished) if not done)
    core._note(f"recovered {job}: results {list(kept)} kept, {list(missing)} missing; map outputs missing {missing_maps}")
    core._emit(JobRecoveredInfo, job_id, stage_ids, kept, missing, missing_maps, ev.reason, core._clock())
    if not missing:
        core._emit(JobSucceeded, job_id, list(job.results))
        core._end_job(job, JobState.SUCCEEDED, None)
        return
    for stage_id in stage_ids:
        core.graph.stage_id_to_stage[stage_id].rerun_reason = ev.reason
    core._submit_stage(stage)


def _map_stages(core: "DAGSchedulerCore", stage_ids: tuple[int, ...]) -> list[ShuffleMapStage]:
    stages = [core.graph.stage_id_to_stage[i] for i in stage_ids]
    return [s for s in stages if isinstance(s, ShuffleMapStage)]


def take_rerun_reason(core: "DAGSchedulerCore", stage: Stage) -> str | None:
    """Why the attempt about to be submitted re-runs work, or None for a first run; clears it."""
    reason, stage.rerun_reason = stage.rerun_reason, None
    if reason is None and isinstance(stage, ShuffleMapStage):
        missing = stage.find_missing_partitions()
        if missing and core.map_outputs.was_lost(stage.shuffle_id, missing):
            reason = f"map outputs {missing} of shuffle {stage.shuffle_id} were lost"
    return reason


def export_jobs(core: "DAGSchedulerCore") -> list[dict[str, Any]]:
    """The running jobs as job-manager records (how a restarted job manager rebuilds its registry)."""
    return [{"job_id": job.job_id, "rdd": job.final_stage.rdd, "func": job.func, "partitions": job.partitions,
             "properties": job.properties, "submitted_at": job.submitted_at,
             "results": {i: r for i, (done, r) in enumerate(zip(job.finished, job.results)) if done},
             "stage_ids": set(core.graph.job_id_to_stage_ids.get(job.job_id, ()))}
            for job in core.job_id_to_job.values()]


def explain_unrecoverable(stage: Stage, partition: int | None, exception: Any) -> PartitionUnrecoverableError | None:
    """When ``exception`` (what a task of ``stage`` computing ``partition`` raised on its
    every attempt) is a checkpoint file that is gone, the error that says so: which RDD's
    partition cannot be rebuilt and why (its lineage was truncated; nothing is left to
    recompute it from). None when the failure is something else."""
    if partition is None or not isinstance(exception, OSError):
        return None
    if isinstance(stage, ShuffleMapStage):
        start = partition
    else:
        start = stage.partitions[partition] if 0 <= partition < len(stage.partitions) else partition
    seen: set[tuple[int, int]] = set()
    stack = [(stage.rdd, start)]
    while stack:
        rdd, p = stack.pop()
        if (id(rdd), p) in seen:
            continue
        seen.add((id(rdd), p))
        checkpoint = getattr(rdd, "_checkpointed", None)
        if checkpoint is not None:
            path = getattr(checkpoint.partitions[p], "path", None)
            if path is not None and (getattr(exception, "filename", None) == path or path in str(exception)):
                error = PartitionUnrecoverableError(
                    f"partition {p} of {rdd!r} cannot be rebuilt: its lineage was truncated by checkpoint() and its "
                    f"checkpoint file {path} is gone ({type(exception).__name__}: {exception}), so nothing is left "
                    f"to recompute it from. Keep checkpoint directories on storage that outlives the job, or "
                    f"persist the RDD with a replicated storage level as well")
                error.__cause__ = exception
                return error
        stack.extend((dep.rdd, q) for dep in rdd.dependencies if isinstance(dep, NarrowDependency)
                     for q in dep.get_parents(p))
    return None
