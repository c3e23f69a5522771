"""Each job's recovery summary, attached to its ``JobEnd`` listener event.

What re-ran, and why: the task launches of the job (``tasks_run``), the tasks that ran
more than once (a retry, a resubmitted stage, a lost executor, a restarted scheduler),
how many extra runs that made, every stage attempt that re-ran work with its reason, and
the restarts the job lived through. A task is identified by the work it does rather than
by its stage id: a map task by (shuffle, map partition), a result task by (RDD, partition),
so a partition recomputed under a new stage id after a DAG scheduler restart still counts
as the same task running again.

Built from the listener bus (an internal listener, called on the posting thread, in
order): ``JobStart`` and ``JobRecovered`` say which stages belong to a job,
``StageSubmitted`` says what work a stage does and why an attempt re-runs, ``TaskStart``
counts launches. The DAG scheduler asks for the summary (:meth:`JobSummaries.finish`)
right before it posts the job's ``JobEnd``.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from sparklet.runtime import _listener as listen

__all__ = ["JobSummary", "JobSummaries"]


@dataclasses.dataclass(frozen=True)
class JobSummary:
    job_id: int
    tasks_run: int  # task launches for this job
    tasks_run_more_than_once: int  # distinct tasks (work, partition) launched more than once
    extra_task_runs: int  # launches beyond the first of each task
    stages_resubmitted: tuple[tuple[int, int, str], ...]  # (stage id, attempt, why) of attempts that re-ran work
    recoveries: tuple[str, ...]  # restarts the job lived through (a DAG scheduler taking it over)


class _JobState:
    __slots__ = ("launches", "resubmitted", "recoveries")

    def __init__(self) -> None:
        self.launches: collections.Counter[tuple] = collections.Counter()
        self.resubmitted: list[tuple[int, int, str]] = []
        self.recoveries: list[str] = []


class JobSummaries:
    def __init__(self) -> None:
        # Invariant: exactly the jobs started (or recovered) and not finished.
        self._jobs: dict[int, _JobState] = {}
        # Invariant: stage id -> the unfinished jobs it belongs to (entries go with their last job).
        self._stage_jobs: dict[int, set[int]] = {}
        # stage id -> the work its tasks do: ("shuffle", id) or ("rdd", id)
        self._stage_work: dict[int, tuple] = {}

    def on_event(self, event: Any) -> None:
        if isinstance(event, listen.JobStart):
            self._jobs.setdefault(event.job_id, _JobState())
            self._add_stages(event.job_id, event.stage_ids)
        elif isinstance(event, listen.JobRecovered):
            state = self._jobs.setdefault(event.job_id, _JobState())
            state.recoveries.append(f"{event.reason}: kept results {list(event.results_kept)}, recomputed "
                                    f"{list(event.results_missing)} and map outputs {list(event.missing_map_outputs)}")
            self._add_stages(event.job_id, event.stage_ids)
        elif isinstance(event, listen.StageSubmitted):
            self._stage_work[event.stage_id] = (("shuffle", event.shuffle_id) if event.shuffle_id is not None
                                                else ("rdd", event.rdd_id) if event.rdd_id is not None
                                                else ("stage", event.stage_id))
            if event.reason is not None or event.attempt > 0:
                for job_id in self._stage_jobs.get(event.stage_id, ()):
                    self._jobs[job_id].resubmitted.append((event.stage_id, event.attempt, event.reason or "resubmitted"))
        elif isinstance(event, listen.TaskStart):
            work = self._stage_work.get(event.stage_id, ("stage", event.stage_id))
            for job_id in self._stage_jobs.get(event.stage_id, ()):
                self._jobs[job_id].launches[(work, event.partition)] += 1

    def _add_stages(self, job_id: int, stage_ids: tuple[int, ...]) -> None:
        for stage_id in stage_ids:
            self._stage_jobs.setdefault(stage_id, set()).add(job_id)

    def finish(self, job_id: int) -> JobSummary | None:
        """The job's summary; forgets the job (None if it never started)."""
        state = self._jobs.pop(job_id, None)
        for stage_id in [s for s, jobs in self._stage_jobs.items() if job_id in jobs]:
            jobs = self._stage_jobs[stage_id]
            jobs.discard(job_id)
            if not jobs:
                del self._stage_jobs[stage_id]
                self._stage_work.pop(stage_id, None)
        if state is None:
            return None
        runs = state.launches.values()
        return JobSummary(job_id, sum(runs), sum(1 for n in runs if n > 1), sum(n - 1 for n in runs),
                          tuple(state.resubmitted), tuple(state.recoveries))
