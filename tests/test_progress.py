"""Spark's console progress bar: format, timing, terminal-only."""

from __future__ import annotations

import io

from sparklet.runtime._listener import JobEnd, StageCompleted, StageSubmitted, TaskEnd, TaskStart
from sparklet.runtime._progress import ConsoleProgressBar, render


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_render_matches_sparks_layout():
    assert render([(1, 3, 2, 8)], 40) == "[Stage 1:=======>           (3 + 2) / 8]"
    assert render([(0, 0, 1, 4)], 30) == "[Stage 0:>        (0 + 1) / 4]"  # 9 cells: ">" and 8 blanks
    two = render([(1, 1, 1, 2), (2, 0, 1, 2)], 60)
    assert two.startswith("[Stage 1:") and "[Stage 2:" in two and len(two) <= 60


def test_bar_waits_half_a_second_then_draws_and_erases_at_job_end(monkeypatch):
    monkeypatch.setenv("COLUMNS", "50")
    out, clock = FakeTerminal(), Clock()
    bar = ConsoleProgressBar(out, enabled=True, clock=clock)
    bar.on_event(StageSubmitted(0, 3, 0, "count", 4, (0, 1, 2, 3), ()))
    bar.on_event(TaskStart(0, 1, 3, 0, 0, 0, "exec-0", "ANY"))
    assert out.getvalue() == ""  # short stages print nothing
    clock.now = 0.6
    bar.on_event(TaskEnd(0, 1, 3, 0, 0, 0, "exec-0", "success", None, {}))
    assert out.getvalue().startswith("\r[Stage 3:") and "(1 + 0) / 4]" in out.getvalue()
    bar.on_event(StageCompleted(0, 3, 0, "succeeded"))
    bar.on_event(JobEnd(0, 0, "succeeded"))
    assert out.getvalue().endswith("\r")  # erased


def test_bar_stays_off_when_stderr_is_not_a_terminal():
    out = io.StringIO()
    bar = ConsoleProgressBar(out, enabled=True)
    assert not bar.enabled
    bar.on_event(StageSubmitted(0, 1, 0, "x", 1, (0,), ()))
    assert out.getvalue() == ""
