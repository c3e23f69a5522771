"""Stages, jobs and the stage graph (Spark's ``Stage``, ``ShuffleMapStage``, ``ResultStage``,
``ActiveJob`` and the graph-building half of ``DAGScheduler``).

What it owns: the records of the stages and jobs that active jobs need, and the building
of a job's stage graph from its RDD graph. A job's action becomes a :class:`ResultStage`;
every shuffle dependency reachable through narrow dependencies becomes a parent
:class:`ShuffleMapStage`, created once per shuffle id and shared by every job that needs
it while one does; narrow dependencies are pipelined into the stage that reaches them.
Stage ids grow parents-first. The records hold no scheduling logic: the DAG core decides
when a stage moves, the tables here say which moves are legal.

Invariants (checked by :meth:`StageGraph.validate_state`, called by the DAG core's):
* a stage is registered exactly while some active job needs it: ``stage.job_ids`` is not
  empty and each of its jobs lists the stage in ``job_id_to_stage_ids``;
* a job needing a stage needs all of that stage's ancestors;
* ``shuffle_id_to_map_stage`` maps each shuffle to its registered map stage, and back;
* every shuffle of a registered map stage is registered with the map outputs.

Failure and recovery: computing an RDD's partitions runs user code; it is done for the
whole graph when the job's stages are built, and a failure there unregisters whatever was
built for the job (the DAG core then fails the job with the user's exception).

Review checklist:
* stage sharing and skipping: ``test_stage_shared_between_concurrent_jobs_and_skipped_later``
* narrow dependencies pipelined, shuffles cut: ``test_two_stage_job_runs_map_stage_first``
* failing ``partitions`` fails the job and leaves nothing registered: ``test_failing_partitions_fail_the_job_cleanly``
* state tables enforced: ``test_stage_and_job_tables_reject_illegal_moves``
"""

from __future__ import annotations

import abc
import collections
import enum
from typing import Any, Iterator

from sparklet.actors import SparkletInternalError, StateMachine
from sparklet.rdd._barrier import is_barrier
from sparklet.rdd._base import Determinism, NarrowDependency, ShuffleDependency
from sparklet.runtime._sched_mapoutputs import MapOutputRegistry

__all__ = ["StageState", "STAGE_TRANSITIONS", "JobState", "JOB_TRANSITIONS", "Stage", "ShuffleMapStage",
           "ResultStage", "Job", "StageGraph"]

HISTORY = 16


class StageState(enum.Enum):
    NEW = "new"              # built for a job, never submitted
    WAITING = "waiting"      # submitted, waiting for missing parents
    RUNNING = "running"      # an attempt's tasks are with the task scheduler
    SUCCEEDED = "succeeded"  # the latest attempt finished
    FAILED = "failed"        # the latest attempt failed (fetch failure) or was aborted
    SKIPPED = "skipped"      # unregistered without ever running: its outputs existed
    ABORTED = "aborted"      # unregistered while still needed (its jobs failed or were cancelled)


_S = StageState
STAGE_TRANSITIONS = {
    _S.NEW: frozenset({_S.WAITING, _S.RUNNING, _S.SKIPPED}),
    # WAITING -> SUCCEEDED: a result stage whose last partitions came from an older attempt.
    _S.WAITING: frozenset({_S.RUNNING, _S.SUCCEEDED, _S.SKIPPED, _S.ABORTED}),
    _S.RUNNING: frozenset({_S.SUCCEEDED, _S.FAILED, _S.ABORTED}),
    # SUCCEEDED -> WAITING/RUNNING: its outputs were lost and another job or attempt needs them.
    _S.SUCCEEDED: frozenset({_S.WAITING, _S.RUNNING}),
    _S.FAILED: frozenset({_S.WAITING, _S.RUNNING, _S.ABORTED}),
    _S.SKIPPED: frozenset(),
    _S.ABORTED: frozenset(),
}


class JobState(enum.Enum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


_J = JobState
JOB_TRANSITIONS = {
    _J.RUNNING: frozenset({_J.SUCCEEDED, _J.FAILED, _J.CANCELLED}),
    _J.SUCCEEDED: frozenset(),
    _J.FAILED: frozenset(),
    _J.CANCELLED: frozenset(),
}


class Stage(abc.ABC):
    """A set of tasks computing one RDD's partitions with narrow dependencies pipelined."""

    kind = "Stage"

    def __init__(self, stage_id: int, rdd: Any, num_tasks: int, parents: list["Stage"], first_job_id: int,
                 name: str) -> None:
        self.id = stage_id
        self.rdd = rdd
        self.num_tasks = num_tasks
        self.parents = parents
        self.first_job_id = first_job_id
        self.name = name
        self.is_indeterminate = rdd.determinism is Determinism.INDETERMINATE
        self.is_barrier = is_barrier(rdd)  # its tasks launch together and fail together (rdd/_barrier.py)
        # Invariant: the active jobs that need this stage; empty only once it is unregistered.
        self.job_ids: set[int] = set()
        self.fsm: StateMachine[StageState] = StateMachine(f"{self}", StageState.NEW, STAGE_TRANSITIONS, HISTORY)
        # Invariant: attempts 0..next_attempt-1 have been submitted; latest_attempt is the current one.
        self.next_attempt = 0
        # Invariant: while RUNNING, the partitions of the latest attempt no attempt has computed yet.
        self.pending_partitions: set[int] = set()
        # Invariant: attempts that failed (fetch failure, barrier task failure) since the stage last succeeded.
        self.failed_attempt_ids: set[int] = set()
        # Invariant: bounded; (attempt, reason) of each failure (fetch, or a barrier task's) counted in failed_attempt_ids.
        self.fetch_failures: collections.deque[tuple[int, str]] = collections.deque(maxlen=HISTORY)
        # Invariant: partitions whose accumulator updates were merged (first success only).
        self.accumulated_partitions: set[int] = set()
        # The exception of the last task that failed in user code (for the job's error), and its partition.
        self.last_task_exception: Any = None
        self.last_failed_partition: int | None = None
        # Why the next attempt re-runs work (a fetch failure, lost outputs, a restart); None: first run.
        self.rerun_reason: str | None = None

    @property
    def state(self) -> StageState:
        return self.fsm.state

    @property
    def latest_attempt(self) -> int:
        return self.next_attempt - 1

    def new_attempt(self) -> int:
        self.next_attempt += 1
        return self.next_attempt - 1

    @abc.abstractmethod
    def find_missing_partitions(self) -> list[int]:
        """The partitions of this stage whose output does not exist yet."""

    def __repr__(self) -> str:
        return f"{self.kind} {self.id}"


class ShuffleMapStage(Stage):
    """Writes the map side of one shuffle; available when every map output is registered."""

    kind = "ShuffleMapStage"

    def __init__(self, stage_id: int, rdd: Any, num_tasks: int, parents: list[Stage], first_job_id: int,
                 name: str, shuffle_dep: ShuffleDependency, map_outputs: MapOutputRegistry) -> None:
        super().__init__(stage_id, rdd, num_tasks, parents, first_job_id, name)
        self.shuffle_dep = shuffle_dep
        self.shuffle_id: int = shuffle_dep.shuffle_id
        self._map_outputs = map_outputs

    @property
    def is_available(self) -> bool:
        return self._map_outputs.num_available_outputs(self.shuffle_id) == self.num_tasks

    def find_missing_partitions(self) -> list[int]:
        return self._map_outputs.find_missing_partitions(self.shuffle_id)


class ResultStage(Stage):
    """Applies the job's function to some partitions of the final RDD."""

    kind = "ResultStage"

    def __init__(self, stage_id: int, rdd: Any, func: Any, partitions: tuple[int, ...], parents: list[Stage],
                 first_job_id: int, name: str) -> None:
        super().__init__(stage_id, rdd, len(partitions), parents, first_job_id, name)
        self.func = func
        self.partitions = partitions
        # Invariant: the one active job whose final stage this is (None once it ended).
        self.active_job: Job | None = None

    def find_missing_partitions(self) -> list[int]:
        """Output indices (positions in the job's partitions) not finished yet."""
        job = self.active_job
        if job is None:
            return []
        return [i for i, done in enumerate(job.finished) if not done]


class Job:
    """An action's run (Spark's ``ActiveJob``): results arrive by output index."""

    def __init__(self, job_id: int, final_stage: ResultStage, func: Any, partitions: tuple[int, ...],
                 properties: dict, submitted_at: float) -> None:
        self.job_id = job_id
        self.final_stage = final_stage
        self.func = func
        self.partitions = partitions
        self.properties = properties
        self.submitted_at = submitted_at
        self.output_index = {partition: i for i, partition in enumerate(partitions)}
        # Invariant: num_finished == sum(finished); results[i] is set exactly when finished[i].
        self.finished = [False] * len(partitions)
        self.results: list[Any] = [None] * len(partitions)
        self.num_finished = 0
        self.fsm: StateMachine[JobState] = StateMachine(f"job {job_id}", JobState.RUNNING, JOB_TRANSITIONS, HISTORY)

    @property
    def num_partitions(self) -> int:
        return len(self.partitions)

    def __repr__(self) -> str:
        return f"job {self.job_id}"


def _narrow_ancestors(rdd: Any) -> Iterator[Any]:
    """``rdd`` and every RDD reachable from it through narrow dependencies, once each."""
    seen = {id(rdd)}
    stack = [rdd]
    while stack:
        current = stack.pop()
        yield current
        for dep in reversed(current.dependencies):
            if isinstance(dep, NarrowDependency) and id(dep.rdd) not in seen:
                seen.add(id(dep.rdd))
                stack.append(dep.rdd)


class StageGraph:
    """The registered stages, built from RDD graphs. A result stage is named after the
    job's ``callSite.short`` property when it has one, a map stage after its RDD."""

    def __init__(self, map_outputs: MapOutputRegistry) -> None:
        self.map_outputs = map_outputs
        self.next_stage_id = 0
        # Invariant: exactly the stages some active job needs.
        self.stage_id_to_stage: dict[int, Stage] = {}
        # Invariant: shuffle id -> its registered map stage; a bijection onto the registered map stages.
        self.shuffle_id_to_map_stage: dict[int, ShuffleMapStage] = {}
        # Invariant: job id -> ids of every stage it needs (its final stage and all ancestors).
        self.job_id_to_stage_ids: dict[int, set[int]] = {}

    # -- building ------------------------------------------------------------------------------
    def create_result_stage(self, rdd: Any, func: Any, partitions: tuple[int, ...], job_id: int,
                            properties: dict) -> ResultStage:
        """Build (or reuse) every stage the job needs. On an exception from user code,
        whatever was registered for ``job_id`` is unregistered again and it propagates."""
        self.job_id_to_stage_ids.setdefault(job_id, set())
        try:
            self._compute_partitions(rdd)
            parents = self._get_or_create_parent_stages(rdd, job_id)
            stage = ResultStage(self._new_stage_id(), rdd, func, partitions, parents, job_id,
                                str(properties.get("callSite.short") or repr(rdd)))
        except BaseException:
            self.remove_job(job_id)
            raise
        self.stage_id_to_stage[stage.id] = stage
        self._add_job_to_stage_and_ancestors(job_id, stage)
        return stage

    def _new_stage_id(self) -> int:
        self.next_stage_id += 1
        return self.next_stage_id - 1

    @staticmethod
    def _compute_partitions(rdd: Any) -> None:
        """Touch ``partitions`` of every ancestor now, so later walks run no failing user code
        (Spark's eagerlyComputePartitionsForRddAndAncestors)."""
        seen = {id(rdd)}
        stack = [rdd]
        while stack:
            current = stack.pop()
            current.partitions
            for dep in current.dependencies:
                if id(dep.rdd) not in seen:
                    seen.add(id(dep.rdd))
                    stack.append(dep.rdd)

    @staticmethod
    def shuffle_dependencies(rdd: Any) -> list[ShuffleDependency]:
        """The shuffle dependencies reachable from ``rdd`` through narrow ones: its stage's
        parents (Spark's getShuffleDependencies)."""
        found: dict[int, ShuffleDependency] = {}
        for current in _narrow_ancestors(rdd):
            for dep in current.dependencies:
                if isinstance(dep, ShuffleDependency):
                    found.setdefault(dep.shuffle_id, dep)
        return list(found.values())

    def _get_or_create_parent_stages(self, rdd: Any, job_id: int) -> list[Stage]:
        return [self.get_or_create_shuffle_map_stage(dep, job_id) for dep in self.shuffle_dependencies(rdd)]

    def get_or_create_shuffle_map_stage(self, dep: ShuffleDependency, job_id: int) -> ShuffleMapStage:
        """The map stage of ``dep``, creating it and its missing ancestors, parents first.
        Iterative: lineage can be deeper than Python's recursion limit."""
        existing = self.shuffle_id_to_map_stage.get(dep.shuffle_id)
        if existing is not None:
            return existing
        # Post-order over shuffle dependencies not registered yet.
        stack: list[tuple[ShuffleDependency, bool]] = [(dep, False)]
        while stack:
            current, parents_done = stack.pop()
            if current.shuffle_id in self.shuffle_id_to_map_stage:
                continue
            parent_deps = self.shuffle_dependencies(current.rdd)
            if not parents_done:
                stack.append((current, True))
                stack.extend((p, False) for p in reversed(parent_deps) if p.shuffle_id not in self.shuffle_id_to_map_stage)
                continue
            parents = [self.shuffle_id_to_map_stage[p.shuffle_id] for p in parent_deps]
            self._create_shuffle_map_stage(current, parents, job_id)
        return self.shuffle_id_to_map_stage[dep.shuffle_id]

    def _create_shuffle_map_stage(self, dep: ShuffleDependency, parents: list[Stage], job_id: int) -> ShuffleMapStage:
        rdd = dep.rdd
        stage = ShuffleMapStage(self._new_stage_id(), rdd, len(rdd.partitions), parents, job_id,
                                repr(rdd), dep, self.map_outputs)
        self.stage_id_to_stage[stage.id] = stage
        self.shuffle_id_to_map_stage[dep.shuffle_id] = stage
        if not self.map_outputs.contains_shuffle(dep.shuffle_id):
            self.map_outputs.register_shuffle(dep.shuffle_id, len(rdd.partitions))
        self._add_job_to_stage_and_ancestors(job_id, stage)
        return stage

    def _add_job_to_stage_and_ancestors(self, job_id: int, stage: Stage) -> None:
        stage_ids = self.job_id_to_stage_ids.setdefault(job_id, set())
        stack = [stage]
        while stack:
            current = stack.pop()
            if job_id in current.job_ids and current.id in stage_ids:
                continue
            current.job_ids.add(job_id)
            stage_ids.add(current.id)
            stack.extend(current.parents)

    # -- walking ---------------------------------------------------------------------------------
    def ancestors(self, stage: Stage) -> list[Stage]:
        """Every stage ``stage`` depends on, transitively (not itself), ordered by id."""
        seen: dict[int, Stage] = {}
        stack = list(stage.parents)
        while stack:
            current = stack.pop()
            if current.id not in seen:
                seen[current.id] = current
                stack.extend(current.parents)
        return [seen[i] for i in sorted(seen)]

    def depends_on_unavailable(self, stage: Stage, target: Stage) -> bool:
        """Whether ``stage`` needs ``target`` now: it is ``target``, or reaches it through
        map stages whose outputs are not all available (Spark's stageDependsOn)."""
        stack, seen = [stage], set()
        while stack:
            current = stack.pop()
            if current is target:
                return True
            if current.id in seen:
                continue
            seen.add(current.id)
            for parent in current.parents:
                if parent is target:
                    return True
                if isinstance(parent, ShuffleMapStage) and not parent.is_available:
                    stack.append(parent)
        return False

    # -- removing ----------------------------------------------------------------------------------
    def remove_job(self, job_id: int) -> list[Stage]:
        """Drop ``job_id`` from its stages; unregister and return those no other job needs."""
        removed = []
        for stage_id in sorted(self.job_id_to_stage_ids.pop(job_id, ())):
            stage = self.stage_id_to_stage.get(stage_id)
            if stage is None:
                continue
            stage.job_ids.discard(job_id)
            if not stage.job_ids:
                del self.stage_id_to_stage[stage_id]
                if isinstance(stage, ShuffleMapStage) and self.shuffle_id_to_map_stage.get(stage.shuffle_id) is stage:
                    del self.shuffle_id_to_map_stage[stage.shuffle_id]
                removed.append(stage)
        return removed

    def validate_state(self, active_job_ids: set[int]) -> None:
        def fail(message: str) -> None:
            raise SparkletInternalError(f"stage graph: {message}. Please report it.")

        if set(self.job_id_to_stage_ids) != active_job_ids:
            fail(f"jobs with stages {sorted(self.job_id_to_stage_ids)} != active jobs {sorted(active_job_ids)}")
        for stage_id, stage in self.stage_id_to_stage.items():
            if stage.id != stage_id:
                fail(f"{stage} registered as {stage_id}")
            if not stage.job_ids or not stage.job_ids <= active_job_ids:
                fail(f"{stage} has jobs {sorted(stage.job_ids)}, active jobs are {sorted(active_job_ids)}")
            for job_id in stage.job_ids:
                if stage_id not in self.job_id_to_stage_ids[job_id]:
                    fail(f"{stage} lists job {job_id} which does not list it")
            for parent in stage.parents:
                if self.stage_id_to_stage.get(parent.id) is not parent:
                    fail(f"{stage}'s parent {parent} is not registered")
                if not stage.job_ids <= parent.job_ids:
                    fail(f"{parent} lacks jobs {sorted(stage.job_ids - parent.job_ids)} of its child {stage}")
            if isinstance(stage, ShuffleMapStage):
                if self.shuffle_id_to_map_stage.get(stage.shuffle_id) is not stage:
                    fail(f"{stage} is not the map stage of shuffle {stage.shuffle_id}")
                if not self.map_outputs.contains_shuffle(stage.shuffle_id):
                    fail(f"shuffle {stage.shuffle_id} of {stage} is not registered with the map outputs")
            if stage.state in (StageState.SKIPPED, StageState.ABORTED):
                fail(f"{stage} is registered in final state {stage.state.value}")
        for job_id, stage_ids in self.job_id_to_stage_ids.items():
            for stage_id in stage_ids:
                stage = self.stage_id_to_stage.get(stage_id)
                if stage is None or job_id not in stage.job_ids:
                    fail(f"job {job_id} lists stage {stage_id} which does not list it")
        for shuffle_id, stage in self.shuffle_id_to_map_stage.items():
            if self.stage_id_to_stage.get(stage.id) is not stage or stage.shuffle_id != shuffle_id:
                fail(f"shuffle {shuffle_id} maps to unregistered or wrong {stage}")
