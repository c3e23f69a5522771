"""RDDs, a fake clock and harnesses shared by the ``test_sched_*`` modules.

Imported by them as ``test_sched_support`` (``tests`` is on ``pythonpath``); pytest also
collects it and finds no tests. The RDDs are small real :class:`RDDBase` subclasses over
a fake context that hands out ids. :class:`DagHarness` drives a DAG core alone (tests
make up the task ends); :class:`Cluster` plays the actor around both cores, routing
every action, with simulated executors whose shuffle reads fail when an input is missing.
"""

from __future__ import annotations

import itertools
from typing import Any

from sparklet.rdd._base import Determinism, OneToOneDependency, Partition, RangeDependency, RDDBase, ShuffleDependency
from sparklet.runtime._dag import DAGSchedulerCore
from sparklet.runtime._sched_events import (
    DAG_EVENTS, AllJobsCancelled, CancelTasks, JobEndedInfo, JobFailed, JobSubmitted, JobSucceeded, KillTask, LaunchTask, MapStatus,
    MarkPartitionCompleted, MergeAccumulators, StageCompletedInfo, StageSubmittedInfo, SubmitTasks, TaskEnded,
)
from sparklet.runtime._sched_inline import InlineTaskScheduler


class FakeClock:
    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeContext:
    defaultParallelism = 2

    def __init__(self) -> None:
        self._rdd_ids = itertools.count()
        self._shuffle_ids = itertools.count()

    def _new_rdd_id(self) -> int:
        return next(self._rdd_ids)

    def _new_shuffle_id(self) -> int:
        return next(self._shuffle_ids)


class SourceRDD(RDDBase):
    """``n`` partitions with optional host preferences; ``determinism`` as told."""

    def __init__(self, ctx: FakeContext, n: int, prefs: dict[int, list[str]] | None = None,
                 determinism: Determinism = Determinism.DETERMINATE) -> None:
        super().__init__(ctx)
        self.n, self.prefs, self._determinism = n, prefs or {}, determinism

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(self.n)]

    def _get_preferred_locations(self, split: Partition) -> list[str]:
        return list(self.prefs.get(split.index, []))

    @property
    def determinism(self) -> Determinism:
        return self._determinism


class MappedRDD(RDDBase):
    def __init__(self, parent: RDDBase) -> None:
        super().__init__(parent.ctx, [OneToOneDependency(parent)])

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(len(self.dependencies[0].rdd.partitions))]


class UnionRDD(RDDBase):
    def __init__(self, *parents: RDDBase) -> None:
        deps, start = [], 0
        for parent in parents:
            n = len(parent.partitions)
            deps.append(RangeDependency(parent, 0, start, n))
            start += n
        super().__init__(parents[0].ctx, deps)
        self.total = start

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(self.total)]


class ShuffledRDD(RDDBase):
    def __init__(self, parent: RDDBase, n: int) -> None:
        super().__init__(parent.ctx, [ShuffleDependency(parent, partitioner=n)])
        self.n = n

    @property
    def shuffle_id(self) -> int:
        return self.dependencies[0].shuffle_id

    def _get_partitions(self) -> list[Partition]:
        return [Partition(i) for i in range(self.n)]


class FailingRDD(RDDBase):
    def _get_partitions(self) -> list[Partition]:
        raise OSError("input path does not exist")


def collect(context: Any, records: Any) -> list:
    return list(records)


def of_type(actions: list, kind: type | tuple) -> list:
    return [a for a in actions if isinstance(a, kind)]


class DagHarness:
    """A DAG core under test: every step validates its state and keeps the actions."""

    def __init__(self, max_attempts: int = 4, cache: dict[int, dict[int, list[str]]] | None = None) -> None:
        self.clock = FakeClock()
        self.cache = cache if cache is not None else {}
        self.dag = DAGSchedulerCore(clock=self.clock, max_consecutive_stage_attempts=max_attempts,
                                    cache_locations=lambda rdd_id: self.cache.get(rdd_id, {}))
        self.actions: list = []
        self.job_ids = itertools.count()
        self.task_ids = itertools.count(1000)
        self.dag.validate_state()

    def handle(self, event: Any) -> list:
        actions = self.dag.handle(event)
        self.dag.validate_state()
        self.actions.extend(actions)
        return actions

    def submit(self, rdd: RDDBase, partitions: list[int] | None = None, properties: dict | None = None) -> tuple[int, list]:
        job_id = next(self.job_ids)
        parts = tuple(range(len(rdd.partitions))) if partitions is None else tuple(partitions)
        return job_id, self.handle(JobSubmitted(job_id, rdd, collect, parts, properties or {}, self.clock(), cause=job_id))

    def succeed(self, task_set: SubmitTasks, partition: int, executor: str = "e1", result: Any = None,
                accum: tuple = (), attempt: int | None = None) -> list:
        """The task of ``partition`` in ``task_set`` succeeded (on ``executor``)."""
        status = MapStatus(executor, (1, 1)) if task_set.is_shuffle_map else None
        value = result if result is not None else ("result", task_set.stage_id, partition)
        return self.handle(TaskEnded(task_set.stage_id, task_set.stage_attempt if attempt is None else attempt,
                                     partition, next(self.task_ids), executor, "success",
                                     None if task_set.is_shuffle_map else value, accum, map_status=status))

    def succeed_all(self, task_set: SubmitTasks, executor: str | dict[int, str] = "e1") -> list:
        actions = []
        for task in task_set.tasks:
            where = executor if isinstance(executor, str) else executor[task.partition]
            actions.extend(self.succeed(task_set, task.partition, where))
        return actions

    def fetch_failed(self, task_set: SubmitTasks, partition: int, shuffle_id: int, map_id: int | None,
                     executor: str | None, attempt: int | None = None) -> list:
        return self.handle(TaskEnded(task_set.stage_id, task_set.stage_attempt if attempt is None else attempt,
                                     partition, next(self.task_ids), "e9", "fetch_failed",
                                     reason="connection refused", fetch_failed_shuffle_id=shuffle_id,
                                     fetch_failed_map_id=map_id, fetch_failed_executor_id=executor))

    def close(self) -> None:
        """Teardown of a test that leaves jobs running: cancel them, then nothing is left."""
        self.handle(AllJobsCancelled("test over"))
        self.assert_idle()

    def assert_idle(self) -> None:
        """Teardown: no job left, so nothing registered but map outputs."""
        self.dag.validate_state()
        assert not self.dag.job_id_to_job
        assert not self.dag.stage_id_to_stage and not self.dag.shuffle_id_to_map_stage
        assert not self.dag.waiting_stages and not self.dag.running_stages and not self.dag.job_id_to_stage_ids


def only(actions: list, kind: type) -> Any:
    found = of_type(actions, kind)
    assert len(found) == 1, f"expected one {kind.__name__}, got {found}"
    return found[0]


class Cluster:
    """Both cores wired as the actor wires them, with simulated executors.

    A running task ends when the test says so; a shuffle read fails (``fetch_failed``,
    naming the first missing map output) when a parent shuffle lacks an output at that
    moment, as a real reduce task would. Every step validates both cores."""

    def __init__(self, clock: FakeClock | None = None, max_failures: int = 4, max_attempts: int = 4,
                 locality_wait: float = 0.0, speculation: Any = None) -> None:
        self.clock = clock or FakeClock()
        self.dag = DAGSchedulerCore(clock=self.clock, max_consecutive_stage_attempts=max_attempts)
        self.ts = InlineTaskScheduler(clock=self.clock, max_failures=max_failures, locality_wait=locality_wait,
                                      speculation=speculation)
        self.running: dict[int, LaunchTask] = {}  # what the executors run
        self.task_sets: dict[tuple[int, int], SubmitTasks] = {}
        self.outcomes: dict[int, Any] = {}  # job id -> JobSucceeded / JobFailed
        self.ended: list[JobEndedInfo] = []
        self.dag_infos: list = []  # StageSubmittedInfo, StageCompletedInfo
        self.kills: list[KillTask] = []
        self.merges: list[MergeAccumulators] = []
        self.job_ids = itertools.count()
        self.submitted: dict[int, RDDBase] = {}
        self.causes = itertools.count(1)
        self.check()

    def check(self) -> None:
        self.dag.validate_state()
        self.ts.validate_state()
        assert set(self.running) == set(self.ts.core.task_id_to_set)

    def route(self, actions: list) -> None:
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, DAG_EVENTS):
                queue.extend(self.dag.handle(action))
            elif isinstance(action, SubmitTasks):
                self.task_sets[(action.stage_id, action.stage_attempt)] = action
                queue.extend(self.ts.handle(action))
            elif isinstance(action, (CancelTasks, MarkPartitionCompleted)):
                queue.extend(self.ts.handle(action))
            elif isinstance(action, LaunchTask):
                assert action.task_id not in self.running
                self.running[action.task_id] = action
            elif isinstance(action, KillTask):
                self.kills.append(action)
            elif isinstance(action, MergeAccumulators):
                self.merges.append(action)
            elif isinstance(action, (JobSucceeded, JobFailed)):
                assert action.job_id not in self.outcomes, f"job {action.job_id} answered twice"
                self.outcomes[action.job_id] = action
            elif isinstance(action, JobEndedInfo):
                self.ended.append(action)
            elif isinstance(action, (StageSubmittedInfo, StageCompletedInfo)):
                self.dag_infos.append(action)
        self.check()

    def add_executor(self, executor_id: str, host: str = "host", cores: int = 2) -> None:
        self.route(self.ts.executor_added(executor_id, host, cores, cause=next(self.causes)))

    def lose_executor(self, executor_id: str) -> None:
        for task_id in [t for t, launch in self.running.items() if launch.executor_id == executor_id]:
            del self.running[task_id]
        self.route(self.ts.executor_lost(executor_id, "worker died", cause=next(self.causes)))

    def submit(self, rdd: RDDBase, properties: dict | None = None) -> int:
        job_id = next(self.job_ids)
        self.submitted[job_id] = rdd
        parts = tuple(range(len(rdd.partitions)))
        self.route([JobSubmitted(job_id, rdd, collect, parts, properties or {}, self.clock(), cause=next(self.causes))])
        return job_id

    def crash_task_set(self, stage_id: int, stage_attempt: int) -> None:
        """The set's actor failed (as a ``Kill`` makes it): its tasks keep running here until
        the test ends them, as real executors would until the kill lands."""
        self.route(self.ts.crash_task_set(stage_id, stage_attempt, "ActorKilled: on purpose", cause=next(self.causes)))

    def cancel(self, event: Any) -> None:
        self.route([event])

    def speculate(self) -> None:
        self.route(self.ts.check_speculatable_tasks(cause=next(self.causes)))

    def offer(self) -> None:
        self.route(self.ts.resource_offers(cause=next(self.causes)))

    def _missing_input(self, launch: LaunchTask) -> tuple[int, int, str | None] | None:
        """The first map output this task would fail to read, if any."""
        task_set = self.task_sets[(launch.stage_id, launch.stage_attempt)]
        for dep in _shuffle_deps_of_stage(task_set.rdd):
            statuses = self.dag.map_outputs.shuffle_id_to_statuses.get(dep.shuffle_id)
            if statuses is None:
                continue
            for map_id, status in enumerate(statuses):
                if status is None:
                    return dep.shuffle_id, map_id, None
        return None

    def finish(self, task_id: int, status: str = "success", reason: str = "", exception: Any = None) -> None:
        launch = self.running.pop(task_id)
        task_set = self.task_sets[(launch.stage_id, launch.stage_attempt)]
        cause = next(self.causes)
        if status == "success":
            missing = self._missing_input(launch)
            if missing is not None:
                shuffle_id, map_id, executor = missing
                self.route(self.ts.task_ended(task_id, "fetch_failed", f"map {map_id} of shuffle {shuffle_id} missing",
                                              fetch_failed_shuffle_id=shuffle_id, fetch_failed_map_id=map_id,
                                              fetch_failed_executor_id=executor, cause=cause))
                return
            map_status = MapStatus(launch.executor_id, (1,), task_id) if task_set.is_shuffle_map else None
            result = None if task_set.is_shuffle_map else ("result", launch.partition)
            self.route(self.ts.task_ended(task_id, "success", result=result, accum_updates=(("acc", 1),),
                                          map_status=map_status, cause=cause))
        else:
            self.route(self.ts.task_ended(task_id, status, reason, result=exception, cause=cause))

    def fetch_fail(self, task_id: int, pick: int) -> None:
        """The task could not read a map output (``pick`` chooses which, present or not);
        a task reading no shuffle fails instead."""
        launch = self.running[task_id]
        task_set = self.task_sets[(launch.stage_id, launch.stage_attempt)]
        deps = _shuffle_deps_of_stage(task_set.rdd)
        if not deps:
            self.finish(task_id, "failed", "no shuffle to fail reading", ValueError("boom"))
            return
        del self.running[task_id]
        dep = deps[pick % len(deps)]
        statuses = self.dag.map_outputs.shuffle_id_to_statuses[dep.shuffle_id]
        map_id = pick % len(statuses)
        executor = statuses[map_id].executor_id if statuses[map_id] is not None else None
        self.route(self.ts.task_ended(task_id, "fetch_failed", "connection reset", fetch_failed_shuffle_id=dep.shuffle_id,
                                      fetch_failed_map_id=map_id, fetch_failed_executor_id=executor,
                                      cause=next(self.causes)))

    def run_until_idle(self, limit: int = 10_000) -> None:
        """Succeed every running task (reads may still fail) until nothing is left to run."""
        for _ in range(limit):
            self.offer()
            if not self.running:
                deadline = self.ts.next_locality_deadline()
                if deadline is None:
                    return
                self.clock.now = max(self.clock.now, deadline)
                continue
            self.finish(min(self.running))
        raise AssertionError("the cluster did not settle")

    def assert_idle(self) -> None:
        self.check()
        assert not self.dag.job_id_to_job and not self.dag.stage_id_to_stage and not self.dag.running_stages
        assert not self.dag.waiting_stages and not self.dag.shuffle_id_to_map_stage
        assert not self.ts.task_sets and not self.ts.task_id_to_manager and not self.running


def _shuffle_deps_of_stage(rdd: RDDBase) -> list[ShuffleDependency]:
    from sparklet.runtime._stages import StageGraph

    return StageGraph.shuffle_dependencies(rdd)
