"""Spark's console progress bar: ``[Stage 1:=====>       (3 + 2) / 8]`` on stderr.

Shown only when stderr is a terminal and ``ui.showConsoleProgress`` is on; like Spark it
waits half a second before showing a stage (short jobs print nothing), redraws at most
every 200 ms, and erases itself when the job ends. Never writes to stdout.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import time
from typing import TextIO

from sparklet.runtime._listener import JobEnd, SchedulerEvent, StageCompleted, StageSubmitted, TaskEnd, TaskStart

__all__ = ["ConsoleProgressBar", "render"]

FIRST_DELAY = 0.5
UPDATE_PERIOD = 0.2


@dataclasses.dataclass
class _StageProgress:
    stage_id: int
    total: int
    submitted_at: float
    completed: int = 0
    active: int = 0


def render(stages: list[tuple[int, int, int, int]], width: int) -> str:
    """One bar per ``(stage_id, completed, active, total)``, sharing ``width`` as Spark does.

    >>> render([(1, 3, 2, 8)], 40)
    '[Stage 1:=======>           (3 + 2) / 8]'
    """
    if not stages:
        return ""
    per_stage = width // len(stages)
    bars = []
    for stage_id, completed, active, total in stages:
        header = f"[Stage {stage_id}:"
        tailer = f"({completed} + {active}) / {total}]"
        room = per_stage - len(header) - len(tailer)
        bar = ""
        if room > 0 and total > 0:
            filled = room * completed // total
            bar = "".join("=" if i < filled else ">" if i == filled else " " for i in range(room))
        bars.append(header + bar + tailer)
    return "".join(bars)


class ConsoleProgressBar:
    def __init__(self, stream: TextIO | None = None, enabled: bool = True, clock=time.monotonic) -> None:
        self._stream = stream or sys.stderr
        self._enabled = enabled and self._is_terminal()
        self._clock = clock
        self._stages: dict[tuple[int, int], _StageProgress] = {}
        self._last_draw = 0.0
        self._last_text = ""

    def _is_terminal(self) -> bool:
        try:
            return self._stream.isatty()
        except (AttributeError, ValueError):
            return False

    @property
    def enabled(self) -> bool:
        return self._enabled

    def on_event(self, event: SchedulerEvent) -> None:
        if not self._enabled:
            return
        if isinstance(event, StageSubmitted):
            self._stages[(event.stage_id, event.attempt)] = _StageProgress(event.stage_id, event.num_tasks, self._clock())
        elif isinstance(event, TaskStart):
            stage = self._stages.get((event.stage_id, event.stage_attempt))
            if stage is not None:
                stage.active += 1
        elif isinstance(event, TaskEnd):
            stage = self._stages.get((event.stage_id, event.stage_attempt))
            if stage is not None:
                stage.active = max(0, stage.active - 1)
                stage.completed += event.status == "success"
        elif isinstance(event, StageCompleted):
            self._stages.pop((event.stage_id, event.attempt), None)
        elif isinstance(event, JobEnd):
            if not self._stages:
                self._erase()
            return
        self._maybe_draw()

    def _maybe_draw(self) -> None:
        now = self._clock()
        if now - self._last_draw < UPDATE_PERIOD:
            return
        shown = [s for s in self._stages.values() if now - s.submitted_at >= FIRST_DELAY]
        text = render([(s.stage_id, s.completed, s.active, s.total) for s in shown][:3], self._width())
        if text and text != self._last_text:
            self._stream.write("\r" + text)
            self._stream.flush()
            self._last_text = text
            self._last_draw = now

    def _erase(self) -> None:
        if self._last_text:
            self._stream.write("\r" + " " * len(self._last_text) + "\r")
            self._stream.flush()
            self._last_text = ""

    @staticmethod
    def _width() -> int:
        columns = os.environ.get("COLUMNS")
        return int(columns) if columns and columns.isdigit() else shutil.get_terminal_size((80, 24)).columns
