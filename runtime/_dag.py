"""The DAG scheduler's core: stage-oriented scheduling without I/O (Spark's ``DAGScheduler``).

What it owns. Jobs, from submission to their end; the stages they need (built by
:class:`StageGraph`, stages shared by shuffle id while some job needs them); which stage
is waiting for its parents and which is running; which attempt of a stage is current;
the map outputs of every shuffle (:class:`MapOutputRegistry`, which survives jobs); and
what is cached where (asked of ``cache_locations``). It turns each job into task sets of
the partitions still missing, submitted parents first, preferring the executors that
cache a partition, then the RDD's own preferences, walking narrow dependencies. It never
retries a task: the task scheduler does, and reports only the outcome.

Driving it. ``handle(event) -> list of actions``, one event at a time; ``clock`` is the
only source of time. The actor around it (and the hypothesis test, which plays that
actor) runs this loop::

    context           --JobSubmitted/JobCancelled/JobGroupCancelled/AllJobsCancelled--> dag.handle
    dag.handle        --SubmitTasks--> ts.submit_tasks      --CancelTasks--> ts.cancel_tasks
                      --MarkPartitionCompleted--> ts.mark_partition_completed
                      --JobSucceeded/JobFailed--> the job's waiter
                      --MergeAccumulators--> accumulators     --*Info--> listener bus
    executors/cluster --status update--> ts.task_ended       --registration--> ts.executor_added
                      --loss--> ts.executor_lost             --revive timer--> ts.resource_offers
    ts.*              --LaunchTask/KillTask--> executors
                      --TaskEnded/TaskSetFailed/ExecutorAdded/ExecutorLost--> dag.handle

Invariants (``validate_state``; every DAG test calls it after every step):
* a job is in ``job_id_to_job`` exactly while it runs; its final stage is registered and
  names it as ``active_job``; the stage graph's registries agree with the active jobs;
* a stage is in at most one of ``waiting_stages`` / ``running_stages``, and its state
  says which; both hold registered stages only;
* a running map stage has pending partitions; a running result stage's job is unfinished;
* a waiting stage has a parent that is waiting or running (else nothing would wake it);
* with no active job every registry is empty but the map outputs and the executor tables
  (state of the cluster, not of jobs).

Failure and recovery (the handlers are in ``_dag_failures.py``).
* A task's user code failing is retried by the task scheduler; when it gives up,
  ``TaskSetFailed`` aborts the stage and fails every job that needs it, carrying the
  user's exception. Stages no other job needs are cancelled.
* ``ExecutorLost`` unregisters the map outputs on that executor and fails nothing: a
  stage that needs them finds them missing when it is next submitted or when its reads
  fail. A later success from a lost executor is not registered (its files are gone).
* ``fetch_failed`` fails the reading stage's attempt, unregisters the named output (and,
  as in Spark, every output on that executor), and resubmits at once: the parent map
  stage runs its missing tasks, then the failing stage. After
  ``max_consecutive_stage_attempts`` attempts of one stage failed that way in a row, the
  jobs needing it fail with a message naming the stage and every fetch failure.
* Results of an attempt that is no longer current are ignored, except a success that
  still completes a missing partition of a determinate stage (as in Spark); then the
  live task set is told not to run it (``MarkPartitionCompleted``). Accumulator updates
  are merged for the first success of each (stage, partition) only.
* A crash of the actor around this core loses nothing a job needs: a new core takes the
  jobs over from the job manager's records and the tracker's map outputs (``_dag_recovery.py``).
* An indeterminate map stage re-running a partition whose output was lost would change
  data that downstream stages may have read: all of it re-runs, every map stage
  downstream of it in an active job re-runs in full, and a job whose result stage has
  already returned some results fails with a message saying so (SPARK-23207).

Review checklist (tests in ``tests/test_sched_dag*.py`` unless named otherwise):
* one stage per action, narrow deps pipelined, map stage first: ``test_single_stage_job``,
  ``test_two_stage_job_runs_map_stage_first``
* shared stage, skipped stage reported: ``test_stage_shared_between_concurrent_jobs_and_skipped_later``
* only missing partitions run: ``test_only_missing_partitions_run``
* locality: ``test_preferred_locations_from_cache_then_narrow_ancestors``
* executor loss: ``test_executor_loss_unregisters_map_outputs_and_next_job_reruns_only_them``
* fetch failure and its limit: ``test_fetch_failure_resubmits_only_missing_map_tasks_then_reduce``,
  ``test_repeated_fetch_failures_fail_the_job_naming_stage_and_cause``
* stale results: ``test_late_results_from_an_old_attempt_are_ignored``
* accumulators once: ``test_accumulators_counted_once_under_retries_and_duplicates``
* cancellation: ``test_cancelling_one_of_two_jobs_keeps_the_shared_stage_running``, ``test_job_group_cancellation``
* indeterminate re-run: ``test_indeterminate_rerun_forces_downstream_rerun``,
  ``test_indeterminate_rerun_after_results_fails_the_job``
* failures of user code reach the job: ``test_task_set_failed_fails_every_job_needing_the_stage_with_the_user_exception``,
  ``test_task_creation_failure_fails_the_job_with_the_exception``
* the invariants above: ``validate_state`` after every event of every test
  (``DagHarness.handle``, ``Cluster.check``); registries empty once jobs end
  (``assert_idle``); under random event sequences, with every job ending exactly once:
  ``test_random_event_sequences_keep_invariants_and_every_job_ends`` (``test_sched_property.py``)
"""

from __future__ import annotations

import collections
from typing import Any, Callable

from sparklet.actors import SparkletInternalError
from sparklet.rdd._base import NarrowDependency, ShuffleDependency
from sparklet.runtime._sched_events import (
    JOB_GROUP_PROPERTY, AllJobsCancelled, CancelTasks, ExecutorAdded, ExecutorLost, JobCancelled, JobEndedInfo,
    JobFailed, JobGroupCancelled, JobRecovered, JobStartedInfo, JobSubmitted, JobSucceeded, MarkPartitionCompleted,
    MergeAccumulators, StageCompletedInfo, StageSubmittedInfo, SubmitTasks, TaskEnded, TaskSetFailed, TaskSetLost,
    TaskSpec, executor_location,
)
from sparklet.runtime import _dag_failures as failures
from sparklet.runtime import _dag_recovery as recovery
from sparklet.runtime._dag_barrier import barrier_task_failed, check_barrier_job, prepare_full_attempt
from sparklet.runtime._sched_mapoutputs import MapOutputRegistry
from sparklet.runtime._stages import Job, JobState, ResultStage, ShuffleMapStage, Stage, StageGraph, StageState

__all__ = ["DAGSchedulerCore"]

LOST_EXECUTORS_KEPT = 1024  # how many lost executor ids to remember (their late successes are void)


class DAGSchedulerCore:
    def __init__(self, *, clock: Callable[[], float], max_consecutive_stage_attempts: int = 4,
                 cache_locations: Callable[[int], dict[int, list[str]]] = lambda rdd_id: {},
                 history: int = 256) -> None:
        if not isinstance(max_consecutive_stage_attempts, int) or max_consecutive_stage_attempts < 1:
            raise ValueError(f"max_consecutive_stage_attempts must be a positive integer, got {max_consecutive_stage_attempts!r}")
        self._clock = clock
        self.max_consecutive_stage_attempts = max_consecutive_stage_attempts
        self._cache_locations = cache_locations
        self.map_outputs = MapOutputRegistry()
        self.graph = StageGraph(self.map_outputs)
        # Invariant: exactly the running jobs.
        self.job_id_to_job: dict[int, Job] = {}
        # Invariant: registered stages in state WAITING, disjoint from running_stages.
        self.waiting_stages: dict[int, Stage] = {}
        # Invariant: registered stages in state RUNNING.
        self.running_stages: dict[int, Stage] = {}
        # Invariant: live executors; no id is both here and in lost_executors.
        self.executor_id_to_host: dict[str, str] = {}
        # Invariant: the most recently lost executors (bounded, oldest first), not re-added since.
        self.lost_executors: dict[str, None] = {}
        # Invariant: cores of every executor ever added (barrier stages' slot check; ids are stable).
        self.executor_cores: dict[str, int] = {}
        # Bounded story of what happened: (time, cause, what).
        self.log: collections.deque[tuple[float, Any, str]] = collections.deque(maxlen=history)
        # Bounded transition histories of unregistered stages: (stage, final state, history).
        self.ended_stages: collections.deque[tuple[str, StageState, list]] = collections.deque(maxlen=64)
        # Results accepted since the owner last drained it: (job id, output index, result) (None: not kept).
        self.results_journal: list[tuple[int, int, Any]] | None = None
        self._actions: list = []
        self._cause: Any = None
        self._cache_locs: dict[int, dict[int, list[str]]] = {}
        self._handlers: dict[type, Callable[[Any], None]] = {
            JobSubmitted: self._on_job_submitted, TaskEnded: self._on_task_ended,
            ExecutorAdded: self._on_executor_added, ExecutorLost: self._on_executor_lost,
            JobCancelled: self._on_job_cancelled, JobGroupCancelled: self._on_job_group_cancelled,
            AllJobsCancelled: self._on_all_jobs_cancelled, TaskSetFailed: lambda ev: failures.task_set_failed(self, ev),
            TaskSetLost: lambda ev: failures.task_set_lost(self, ev),
            JobRecovered: lambda ev: recovery.recover_job(self, ev),
        }

    # -- the one entry point ---------------------------------------------------------------------
    def handle(self, event: Any) -> list:
        handler = self._handlers.get(type(event))
        if handler is None:
            raise TypeError(f"DAGSchedulerCore.handle takes a DAG event ({', '.join(t.__name__ for t in self._handlers)}), "
                            f"got {event!r}")
        self._actions, self._cause, self._cache_locs = [], event.cause, {}
        self._note(type(event).__name__)
        handler(event)
        actions, self._actions = self._actions, []
        return actions

    @property
    def stage_id_to_stage(self) -> dict[int, Stage]:
        return self.graph.stage_id_to_stage

    @property
    def shuffle_id_to_map_stage(self) -> dict[int, ShuffleMapStage]:
        return self.graph.shuffle_id_to_map_stage

    @property
    def job_id_to_stage_ids(self) -> dict[int, set[int]]:
        return self.graph.job_id_to_stage_ids

    # -- helpers -----------------------------------------------------------------------------------
    def _emit(self, action_type: type, *args: Any, **fields: Any) -> None:
        self._actions.append(action_type(*args, **fields, cause=self._cause))

    def _note(self, what: str) -> None:
        self.log.append((self._clock(), self._cause, what))

    def _move(self, thing: Stage | Job, new: Any, why: str) -> None:
        thing.fsm.move(new, (self._cause, why))
        old, _, cause, _ = thing.fsm.history[-1]
        thing.fsm.history[-1] = (old, new, cause, self._clock())  # the injected clock, not monotonic()

    def _registered(self, stage: Stage) -> bool:
        return self.graph.stage_id_to_stage.get(stage.id) is stage

    def _active_job_for_stage(self, stage: Stage) -> int | None:
        jobs = [job_id for job_id in stage.job_ids if job_id in self.job_id_to_job]
        return min(jobs) if jobs else None

    def _cache_locs_for(self, rdd: Any) -> dict[int, list[str]]:
        locs = self._cache_locs.get(rdd.id)
        if locs is None:
            raw = self._cache_locations(rdd.id) or {}
            locs = {p: [e for e in executors if e not in self.lost_executors] for p, executors in raw.items()}
            self._cache_locs[rdd.id] = locs
        return locs

    # -- jobs ----------------------------------------------------------------------------------------
    def _on_job_submitted(self, ev: JobSubmitted) -> None:
        job_id, partitions, now = ev.job_id, tuple(ev.partitions), self._clock()
        if job_id in self.job_id_to_job or job_id in self.graph.job_id_to_stage_ids:
            raise ValueError(f"JobSubmitted: job {job_id} is already running")
        try:
            num_partitions = len(ev.rdd.partitions)
        except Exception as e:
            self._emit(JobFailed, job_id, f"Computing the partitions of {ev.rdd!r} failed: {e!r}", e)
            return
        bad = [p for p in partitions if not (isinstance(p, int) and 0 <= p < num_partitions)]
        if bad or len(set(partitions)) != len(partitions):
            what = f"non-existent partitions {bad}" if bad else f"duplicate partitions in {list(partitions)}"
            self._emit(JobFailed, job_id, f"Attempting to access {what}. Total number of partitions: {num_partitions}")
            return
        if not partitions:
            self._emit(JobStartedInfo, job_id, (), ev.properties, now)
            self._emit(JobSucceeded, job_id, [])
            self._emit(JobEndedInfo, job_id, JobState.SUCCEEDED.value, None, now)
            return
        try:
            stage = self.graph.create_result_stage(ev.rdd, ev.func, partitions, job_id, ev.properties)
        except Exception as e:
            self._emit(JobFailed, job_id, f"Creating the stages of job {job_id} failed: {e!r}", e)
            return
        refused = check_barrier_job(self.graph, job_id, self.executor_cores)  # barrier: SPARK-24819/24820
        if refused is not None:
            self.graph.remove_job(job_id)
            self._emit(JobFailed, job_id, str(refused), refused)
            return
        job = Job(job_id, stage, ev.func, partitions, ev.properties, ev.submitted_at)
        stage.active_job = job
        self.job_id_to_job[job_id] = job
        self._emit(JobStartedInfo, job_id, tuple(sorted(self.graph.job_id_to_stage_ids[job_id])), ev.properties, now)
        self._submit_stage(stage)

    def _end_job(self, job: Job, state: JobState, error: str | None) -> None:
        """Unregister ``job`` and the stages only it needed; report never-run stages as
        skipped, then the job's end."""
        self._move(job, state, error or "all results in")
        now = self._clock()
        stage_ids = sorted(self.graph.job_id_to_stage_ids.get(job.job_id, ()))
        skipped = [i for i in stage_ids if self.graph.stage_id_to_stage[i].next_attempt == 0]
        del self.job_id_to_job[job.job_id]
        job.final_stage.active_job = None
        for stage in self.graph.remove_job(job.job_id):
            self.waiting_stages.pop(stage.id, None)
            if self.running_stages.pop(stage.id, None) is not None:
                raise SparkletInternalError(f"{stage} unregistered while running. Please report it.")
            if stage.state in (StageState.NEW, StageState.WAITING) and stage.next_attempt == 0:
                self._move(stage, StageState.SKIPPED, f"{job} ended")
            elif stage.state in (StageState.WAITING, StageState.FAILED):
                self._move(stage, StageState.ABORTED, f"{job} ended")
            self.ended_stages.append((repr(stage), stage.state, list(stage.fsm.history)))
        for stage_id in skipped:
            self._emit(StageCompletedInfo, stage_id, 0, "skipped", None, now)
        self._emit(JobEndedInfo, job.job_id, state.value, error, now)
        self._note(f"{job} {state.value}")

    def _fail_job_and_independent_stages(self, job: Job, error: str, exception: Any, state: JobState) -> None:
        self._cancel_running_independent_stages(job, error)
        self._emit(JobFailed, job.job_id, error, exception, state is JobState.CANCELLED)
        self._end_job(job, state, error)

    def _cancel_running_independent_stages(self, job: Job, reason: str) -> None:
        """Stop the stages no other active job needs: running ones, and waiting ones whose
        older attempts may still have tasks running."""
        for stage_id in sorted(self.graph.job_id_to_stage_ids[job.job_id]):
            stage = self.graph.stage_id_to_stage[stage_id]
            if stage.job_ids != {job.job_id}:
                continue
            if stage_id in self.running_stages:
                self._emit(CancelTasks, stage_id, None, reason)
                self._mark_stage_finished(stage, error=reason)
            elif stage_id in self.waiting_stages and stage.next_attempt > 0:
                self._emit(CancelTasks, stage_id, None, reason)

    def _on_job_cancelled(self, ev: JobCancelled) -> None:
        self._cancel_job(ev.job_id, ev.reason)

    def _cancel_job(self, job_id: int, reason: str) -> None:
        job = self.job_id_to_job.get(job_id)
        if job is None:
            self._note(f"cancel of job {job_id} ignored: not running")
            return
        self._fail_job_and_independent_stages(job, f"Job {job_id} cancelled {reason}".rstrip(), None, JobState.CANCELLED)

    def _on_job_group_cancelled(self, ev: JobGroupCancelled) -> None:
        why = f"part of cancelled job group {ev.group_id}" + (f": {ev.reason}" if ev.reason else "")
        for job_id in sorted(self.job_id_to_job):
            job = self.job_id_to_job.get(job_id)
            if job is not None and job.properties.get(JOB_GROUP_PROPERTY) == ev.group_id:
                self._cancel_job(job_id, why)

    def _on_all_jobs_cancelled(self, ev: AllJobsCancelled) -> None:
        why = "as part of cancellation of all jobs" + (f": {ev.reason}" if ev.reason else "")
        for job_id in sorted(self.job_id_to_job):
            self._cancel_job(job_id, why)

    # -- stages --------------------------------------------------------------------------------------
    def _submit_stage(self, stage: Stage) -> None:
        """Run ``stage`` if its parents are available, else submit them and wait."""
        if not self._registered(stage) or stage.id in self.waiting_stages or stage.id in self.running_stages:
            return
        job_id = self._active_job_for_stage(stage)
        if job_id is None:
            raise SparkletInternalError(f"{stage} is registered without an active job. Please report it.")
        missing = self._missing_parent_stages(stage, job_id)
        if not missing:
            self._submit_missing_tasks(stage, job_id)
            return
        for parent in missing:
            self._submit_stage(parent)
        if self._registered(stage) and stage.id not in self.running_stages:
            if stage.state is not StageState.WAITING:
                self._move(stage, StageState.WAITING, f"missing parents {[p.id for p in missing]}")
            self.waiting_stages[stage.id] = stage

    def _missing_parent_stages(self, stage: Stage, job_id: int) -> list[Stage]:
        """Parent map stages whose outputs are not all there, found by walking narrow
        dependencies, stopping at RDDs whose every partition is cached."""
        missing: dict[int, Stage] = {}
        seen = {id(stage.rdd)}
        stack = [stage.rdd]
        while stack:
            rdd = stack.pop()
            locs = self._cache_locs_for(rdd)
            if all(locs.get(p) for p in range(len(rdd.partitions))):
                continue
            for dep in rdd.dependencies:
                if isinstance(dep, ShuffleDependency):
                    map_stage = self.graph.get_or_create_shuffle_map_stage(dep, job_id)
                    if not map_stage.is_available:
                        missing[map_stage.id] = map_stage
                elif isinstance(dep, NarrowDependency) and id(dep.rdd) not in seen:
                    seen.add(id(dep.rdd))
                    stack.append(dep.rdd)
        return [missing[i] for i in sorted(missing)]

    def _submit_missing_tasks(self, stage: Stage, job_id: int) -> None:
        job = self.job_id_to_job[job_id]
        if isinstance(stage, ShuffleMapStage) and stage.is_indeterminate:
            missing = stage.find_missing_partitions()
            if missing and self.map_outputs.was_lost(stage.shuffle_id, missing):
                failures.roll_back_indeterminate(self, stage)
                if not self._registered(stage):
                    return
                job_id = self._active_job_for_stage(stage)
                job = self.job_id_to_job[job_id]
        if stage.is_barrier:
            prepare_full_attempt(self, stage)  # barrier: every attempt runs every partition
        if isinstance(stage, ShuffleMapStage):
            partitions = stage.find_missing_partitions()
            binary_func: Any = stage.shuffle_dep
        else:
            assert isinstance(stage, ResultStage)
            partitions = [stage.partitions[i] for i in stage.find_missing_partitions()]
            binary_func = stage.func
        reason = recovery.take_rerun_reason(self, stage)
        attempt = stage.new_attempt()
        self.waiting_stages.pop(stage.id, None)
        self._move(stage, StageState.RUNNING, f"attempt {attempt}: {len(partitions)} tasks")
        self.running_stages[stage.id] = stage
        stage.pending_partitions = set(partitions)
        self._emit(StageSubmittedInfo, stage.id, attempt, stage.name, len(partitions), tuple(partitions),
                   tuple(p.id for p in stage.parents), tuple(sorted(stage.job_ids)), self._clock(), reason,
                   getattr(stage, "shuffle_id", None), stage.rdd.id)
        try:
            tasks = tuple(TaskSpec(p, i, self._preferred_locations(stage.rdd, p)) for i, p in enumerate(partitions))
        except Exception as e:
            self._abort_stage(stage, f"Task creation failed: {e!r}", e)
            return
        if tasks:
            self._emit(SubmitTasks, job_id, stage.id, attempt, stage.rdd, binary_func, tasks,
                       isinstance(stage, ShuffleMapStage), job.properties, job_id, barrier=stage.is_barrier)
        else:
            self._mark_stage_finished(stage)
            self._after_map_stage_finished(stage)

    def _mark_stage_finished(self, stage: Stage, error: str | None = None) -> None:
        self.running_stages.pop(stage.id, None)
        self.waiting_stages.pop(stage.id, None)
        if error is None:
            self._move(stage, StageState.SUCCEEDED, f"attempt {stage.latest_attempt} finished")
            stage.failed_attempt_ids.clear()
            stage.fetch_failures.clear()
        else:
            self._move(stage, StageState.FAILED, f"attempt {stage.latest_attempt}: {error}")
        self._emit(StageCompletedInfo, stage.id, stage.latest_attempt, "failed" if error else "succeeded", error,
                   self._clock())

    def _after_map_stage_finished(self, stage: Stage) -> None:
        if isinstance(stage, ShuffleMapStage) and not stage.is_available:
            self._note(f"{stage} finished with outputs missing {stage.find_missing_partitions()}: resubmitting")
            stage.rerun_reason = f"map outputs {stage.find_missing_partitions()} were lost while the stage ran"
            self._submit_stage(stage)
        else:
            self._submit_waiting_child_stages(stage)

    def _submit_waiting_child_stages(self, parent: Stage) -> None:
        children = [s for s in self.waiting_stages.values() if parent in s.parents]
        for child in children:
            del self.waiting_stages[child.id]
        for child in sorted(children, key=lambda s: (s.first_job_id, s.id)):
            self._submit_stage(child)

    def _preferred_locations(self, rdd: Any, partition: int) -> tuple[str, ...]:
        """Cached copies first, then the RDD's own preferences, then those of the first
        narrow ancestor partition that has any (depth first, like Spark's recursion)."""
        seen: set[tuple[int, int]] = set()
        stack = [(rdd, partition)]
        while stack:
            current, p = stack.pop()
            if (id(current), p) in seen:
                continue
            seen.add((id(current), p))
            cached = self._cache_locs_for(current).get(p)
            if cached:
                return tuple(executor_location(self.executor_id_to_host.get(e, ""), e) for e in cached)
            own = [loc for loc in current.preferred_locations(current.partitions[p]) if loc]
            if own:
                return tuple(own)
            parents = [(dep.rdd, q) for dep in current.dependencies if isinstance(dep, NarrowDependency)
                       for q in dep.get_parents(p)]
            stack.extend(reversed(parents))
        return ()

    def _abort_stage(self, stage: Stage, reason: str, exception: Any) -> None:
        """Fail every job that needs ``stage`` now (Spark's abortStage)."""
        if not self._registered(stage):
            return
        jobs = [self.job_id_to_job[j] for j in sorted(stage.job_ids)
                if self.graph.depends_on_unavailable(self.job_id_to_job[j].final_stage, stage)]
        if not jobs:
            self._note(f"ignoring the failure of {stage}: no running job needs it now")
        for job in jobs:
            if job.job_id in self.job_id_to_job:
                self._fail_job_and_independent_stages(job, f"Job aborted due to stage failure: {reason}", exception,
                                                       JobState.FAILED)
        if self._registered(stage) and stage.id in self.running_stages:
            self._mark_stage_finished(stage, error=reason)  # others may submit it again later

    # -- tasks ----------------------------------------------------------------------------------------
    def _on_task_ended(self, ev: TaskEnded) -> None:
        stage = self.graph.stage_id_to_stage.get(ev.stage_id)
        if stage is None:
            self._note(f"task {ev.task_id} of stage {ev.stage_id} ended {ev.status}: stage no longer needed")
            return
        if ev.status != "success" and stage.is_barrier and barrier_task_failed(self, stage, ev):
            return  # barrier: the whole stage runs again (or the jobs fail)
        if ev.status == "success":
            if isinstance(stage, ResultStage):
                self._result_task_succeeded(stage, ev)
            else:
                assert isinstance(stage, ShuffleMapStage)
                self._map_task_succeeded(stage, ev)
        elif ev.status == "fetch_failed":
            failures.fetch_failed(self, stage, ev)
        else:  # failed, killed, executor_lost: the task scheduler retries or gives up
            if ev.status == "failed":
                stage.last_task_exception, stage.last_failed_partition = ev.result, ev.partition
            self._note(f"task {ev.task_id} ({stage} partition {ev.partition}) {ev.status}: {ev.reason}")

    def _merge_accumulators(self, stage: Stage, ev: TaskEnded, job_id: int) -> None:
        if ev.partition in stage.accumulated_partitions:
            return
        if isinstance(stage, ShuffleMapStage) and not self.map_outputs.mark_accumulated(stage.shuffle_id, ev.partition):
            return  # merged by an earlier stage of this shuffle (a re-run after a restart or a loss)
        stage.accumulated_partitions.add(ev.partition)
        if ev.accum_updates:
            self._emit(MergeAccumulators, job_id, tuple(ev.accum_updates), stage.id, ev.partition)

    def _stale(self, stage: Stage, ev: TaskEnded) -> bool:
        if stage.is_indeterminate and ev.stage_attempt < stage.latest_attempt:
            self._note(f"ignoring task {ev.task_id}: older attempt {ev.stage_attempt} of indeterminate {stage}")
            return True
        if stage.is_barrier and (ev.stage_attempt < stage.latest_attempt or stage.id not in self.running_stages):
            self._note(f"ignoring task {ev.task_id}: attempt {ev.stage_attempt} of barrier {stage} failed")
            return True
        return False

    def _result_task_succeeded(self, stage: ResultStage, ev: TaskEnded) -> None:
        job = stage.active_job
        out = job.output_index.get(ev.partition) if job is not None else None
        if job is None or out is None or job.finished[out] or self._stale(stage, ev):
            self._note(f"ignoring result of task {ev.task_id}: partition {ev.partition} not needed")
            return
        if ev.stage_attempt < stage.latest_attempt and stage.id in self.running_stages:
            self._emit(MarkPartitionCompleted, stage.id, ev.partition)
        job.finished[out] = True
        job.results[out] = ev.result
        job.num_finished += 1
        if self.results_journal is not None:  # the job manager's record of the job (see _dag_recovery)
            self.results_journal.append((job.job_id, out, ev.result))
        stage.pending_partitions.discard(ev.partition)
        self._merge_accumulators(stage, ev, job.job_id)
        if job.num_finished < job.num_partitions:
            return
        self._mark_stage_finished(stage)
        self._cancel_running_independent_stages(job, f"Job {job.job_id} is finished.")
        self._emit(CancelTasks, stage.id, None, "Stage finished")  # zombie attempts' leftovers
        self._emit(JobSucceeded, job.job_id, list(job.results))
        self._end_job(job, JobState.SUCCEEDED, None)

    def _map_task_succeeded(self, stage: ShuffleMapStage, ev: TaskEnded) -> None:
        status = ev.map_status
        if status is None or not 0 <= ev.partition < stage.num_tasks:
            raise ValueError(f"TaskEnded: a successful shuffle map task of {stage} needs a MapStatus and a partition "
                             f"below {stage.num_tasks}, got map_status={status!r}, partition={ev.partition}")
        if self._stale(stage, ev):
            return
        stage.pending_partitions.discard(ev.partition)
        self._merge_accumulators(stage, ev, self._active_job_for_stage(stage))
        if status.executor_id in self.lost_executors:
            self._note(f"not registering output of task {ev.task_id}: executor {status.executor_id} was lost")
        else:
            self.map_outputs.register_map_output(stage.shuffle_id, ev.partition, status)
            if ev.stage_attempt < stage.latest_attempt and stage.id in self.running_stages:
                self._emit(MarkPartitionCompleted, stage.id, ev.partition)
        if stage.id in self.running_stages and not stage.pending_partitions:
            self._mark_stage_finished(stage)
            self._after_map_stage_finished(stage)

    # -- executors -------------------------------------------------------------------------------------
    def _on_executor_added(self, ev: ExecutorAdded) -> None:
        self.executor_id_to_host[ev.executor_id] = ev.host
        self.executor_cores[ev.executor_id] = ev.cores
        self.lost_executors.pop(ev.executor_id, None)

    def _on_executor_lost(self, ev: ExecutorLost) -> None:
        self.executor_id_to_host.pop(ev.executor_id, None)
        self.lost_executors[ev.executor_id] = None
        while len(self.lost_executors) > LOST_EXECUTORS_KEPT:
            del self.lost_executors[next(iter(self.lost_executors))]
        removed = self.map_outputs.remove_outputs_on_executor(ev.executor_id)
        self._note(f"executor {ev.executor_id} lost ({ev.reason}): unregistered map outputs {removed}")

    # -- checking -----------------------------------------------------------------------------------------
    def statistics(self) -> dict[str, int]:
        return {"jobs": len(self.job_id_to_job), "stages": len(self.graph.stage_id_to_stage),
                "waiting": len(self.waiting_stages), "running": len(self.running_stages),
                **{f"map_{k}": v for k, v in self.map_outputs.statistics().items()}}

    def validate_state(self) -> None:
        def fail(message: str) -> None:
            raise SparkletInternalError(f"DAGSchedulerCore: {message}. Please report it.")

        active = set(self.job_id_to_job)
        self.graph.validate_state(active)
        self.map_outputs.validate_state()
        for job_id, job in self.job_id_to_job.items():
            if job.job_id != job_id or job.fsm.state is not JobState.RUNNING:
                fail(f"{job} registered as {job_id} in state {job.fsm.state.value}")
            if not self._registered(job.final_stage) or job.final_stage.active_job is not job:
                fail(f"{job}'s final stage {job.final_stage} does not name it")
            if job.num_finished != sum(job.finished) or job.num_finished >= job.num_partitions:
                fail(f"{job} has {job.num_finished} of {job.num_partitions} finished, flags say {sum(job.finished)}")
        if self.waiting_stages.keys() & self.running_stages.keys():
            fail(f"stages both waiting and running: {sorted(self.waiting_stages.keys() & self.running_stages.keys())}")
        for states, expected in ((self.waiting_stages, StageState.WAITING), (self.running_stages, StageState.RUNNING)):
            for stage_id, stage in states.items():
                if not self._registered(stage) or stage.id != stage_id or stage.state is not expected:
                    fail(f"{stage} is listed as {expected.value} in state {stage.state.value}")
        for stage in self.graph.stage_id_to_stage.values():
            listed = stage.id in self.waiting_stages or stage.id in self.running_stages
            if stage.state in (StageState.WAITING, StageState.RUNNING) and not listed:
                fail(f"{stage} is {stage.state.value} but not listed as such")
            if isinstance(stage, ResultStage) and (stage.active_job is None or stage.active_job.job_id not in active):
                fail(f"{stage} is registered without its job")
        for stage in self.running_stages.values():
            if isinstance(stage, ShuffleMapStage) and not stage.pending_partitions:
                fail(f"running {stage} has no pending partitions")
            if stage.latest_attempt < 0:
                fail(f"running {stage} has no attempt")
        for stage in self.waiting_stages.values():
            if not any(p.id in self.waiting_stages or p.id in self.running_stages for p in stage.parents):
                fail(f"waiting {stage} has no waiting or running parent: nothing would wake it")
        if self.executor_id_to_host.keys() & self.lost_executors:
            fail(f"executors both live and lost: {sorted(self.executor_id_to_host.keys() & self.lost_executors)}")
        if not active and (self.graph.stage_id_to_stage or self.graph.shuffle_id_to_map_stage
                           or self.graph.job_id_to_stage_ids or self.waiting_stages or self.running_stages):
            fail("no job is running but stage registries are not empty")
