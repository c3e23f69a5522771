"""Delay scheduling for one task set, without I/O (the locality half of Spark's
``TaskSetManager``): the pending lists a task set draws from (by executor, by host,
without preference, all) and the locality level it currently allows.

A task set waits ``locality_wait`` seconds of its clock at a level that still has tasks
before relaxing to the next (Spark's ``getAllowedLocalityLevel``); launching at a level
restarts the wait there. :class:`DelayScheduling` is a base of
:class:`~sparklet.runtime._sched_taskset.TaskSetManagerCore`, which owns the state it
reads (``tasks``, ``task_fsms``, ``successful``, ``executor_hosts``, ``is_zombie``) and
says which tasks may not run on an executor (``_excluded_here``, excludeOnFailure).

Invariants (checked by the task set's ``validate_state``): a pending task of a live set
is on the ``all`` list; the current locality index points into ``levels``, which end
with ANY.
"""

from __future__ import annotations

import abc

from sparklet.runtime._sched_events import TaskLocality, parse_location

__all__ = ["DelayScheduling"]

L = TaskLocality


class _PendingTasks:
    """Indices waiting to run, by where they would rather run. Lists are popped from the
    end and cleaned lazily: an entry whose task is running or done is skipped then."""

    def __init__(self) -> None:
        self.for_executor: dict[str, list[int]] = {}
        self.for_host: dict[str, list[int]] = {}
        self.no_prefs: list[int] = []
        self.all: list[int] = []


class DelayScheduling(abc.ABC):
    """Pending lists and locality levels; mixed into ``TaskSetManagerCore``."""

    def _excluded_here(self, index: int, executor_id: str) -> bool:  # the task set's (excludeOnFailure)
        return False

    def _executor_excluded(self, executor_id: str) -> bool:  # the task set's (excludeOnFailure)
        return False

    # -- pending lists -----------------------------------------------------------------------------
    def _add_pending(self, index: int) -> None:
        locations = self.tasks[index].preferred_locations
        for location in locations:
            host, executor_id = parse_location(location)
            if executor_id is not None:
                self.pending.for_executor.setdefault(executor_id, []).append(index)
            if host:
                self.pending.for_host.setdefault(host, []).append(index)
        if not locations:
            self.pending.no_prefs.append(index)
        self.pending.all.append(index)

    @abc.abstractmethod
    def _launchable(self, index: int) -> bool:
        """The task set's rule: the task is pending and not done."""

    def _pop_launchable(self, indices: list[int] | None, executor_id: str | None = None) -> int | None:
        """Take the last launchable index that may run on ``executor_id``; entries excluded
        there stay for other executors (Spark's ``dequeueTaskFromList``)."""
        pos = len(indices or ()) - 1
        while pos >= 0:
            index = indices[pos]
            if not self._launchable(index):
                del indices[pos]
            elif executor_id is None or not self._excluded_here(index, executor_id):
                del indices[pos]
                return index
            pos -= 1
        return None

    def _has_launchable(self, indices: list[int]) -> bool:
        while indices:
            if self._launchable(indices[-1]):
                return True
            indices.pop()
        return False

    def _more_tasks_in(self, by_place: dict[str, list[int]]) -> bool:
        empty = []
        found = False
        for place, indices in by_place.items():
            if self._has_launchable(indices):
                found = True
                break
            empty.append(place)
        for place in empty:
            del by_place[place]
        return found

    # -- locality ------------------------------------------------------------------------------------
    def _compute_valid_levels(self) -> list[TaskLocality]:
        hosts = set(self.executor_hosts.values())
        levels = []
        if any(e in self.executor_hosts for e, indices in self.pending.for_executor.items() if indices):
            levels.append(L.PROCESS_LOCAL)
        if any(h in hosts for h, indices in self.pending.for_host.items() if indices):
            levels.append(L.NODE_LOCAL)
        if self.pending.no_prefs:
            levels.append(L.NO_PREF)
        levels.append(L.ANY)
        return levels

    def _wait(self, level: TaskLocality) -> float:
        return self.locality_wait if level in (L.PROCESS_LOCAL, L.NODE_LOCAL) else 0.0

    def _level_index(self, locality: TaskLocality) -> int:
        index = 0
        while locality > self.levels[index]:
            index += 1
        return index

    def executors_changed(self, executor_hosts: dict[str, str]) -> None:
        """Executors came or went (id -> host of the live ones)."""
        self.executor_hosts = dict(executor_hosts)
        self.recompute_locality()

    def recompute_locality(self) -> None:
        """Executors came or went: the levels worth waiting at may have changed."""
        previous = self.levels[self.current_level_index]
        self.levels = self._compute_valid_levels()
        self.current_level_index = self._level_index(previous)

    def allowed_locality(self, now: float) -> TaskLocality:
        """Spark's getAllowedLocalityLevel: skip levels with nothing left to launch, relax
        past a level once its wait has passed since the last reset."""
        while self.current_level_index < len(self.levels) - 1:
            level = self.levels[self.current_level_index]
            if level is L.PROCESS_LOCAL:
                more = self._more_tasks_in(self.pending.for_executor)
            elif level is L.NODE_LOCAL:
                more = self._more_tasks_in(self.pending.for_host)
            else:
                more = self._has_launchable(self.pending.no_prefs)
            wait = self._wait(level)
            if not more:
                self.last_reset_time = now
                self.current_level_index += 1
            elif now - self.last_reset_time >= wait:
                self.last_reset_time += wait
                self.current_level_index += 1
            else:
                return level
        return self.levels[self.current_level_index]

    def locality_deadline(self) -> float | None:
        """When the current level's wait runs out, if waiting is what holds tasks back (a
        level without a wait holds nothing back: the next offer relaxes past it at once)."""
        if self.is_zombie or self.current_level_index >= len(self.levels) - 1:
            return None
        if self._wait(self.levels[self.current_level_index]) == 0:
            return None
        if not any(self._launchable(i) for i in self.pending.all):
            return None
        return self.last_reset_time + self._wait(self.levels[self.current_level_index])

    def resource_offer(self, executor_id: str, host: str, max_locality: TaskLocality,
                       now: float) -> tuple[int, TaskLocality] | None:
        """The task to run on one free core of ``executor_id``, if any may run there now."""
        if self.is_zombie or self._executor_excluded(executor_id):
            return None
        allowed = max_locality
        if max_locality is not L.NO_PREF:
            allowed = min(self.allowed_locality(now), max_locality)
        found = self._dequeue(executor_id, host, allowed)
        if found is not None and found[1] is not L.NO_PREF:
            self.current_level_index = self._level_index(found[1])
            self.last_reset_time = now
        return found

    def _dequeue(self, executor_id: str, host: str, max_locality: TaskLocality) -> tuple[int, TaskLocality] | None:
        index = self._pop_launchable(self.pending.for_executor.get(executor_id), executor_id)
        if index is not None:
            return index, L.PROCESS_LOCAL
        if max_locality >= L.NODE_LOCAL:
            index = self._pop_launchable(self.pending.for_host.get(host), executor_id)
            if index is not None:
                return index, L.NODE_LOCAL
        if max_locality >= L.NO_PREF:
            index = self._pop_launchable(self.pending.no_prefs, executor_id)
            if index is not None:
                return index, L.NO_PREF
        if max_locality >= L.ANY:
            index = self._pop_launchable(self.pending.all, executor_id)
            if index is not None:
                return index, L.ANY
        return None

