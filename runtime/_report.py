"""The self-contained HTML report (one file, no network) and the page of the live UI.

Both are the same page, ``_report_page.html`` (package data): its own JavaScript draws
every view (tables, the event timeline, each job's stage DAG, the supervision tree, the
actor message sequence) as plain SVG and DOM from one JSON model. The report embeds the
model in the file; the live UI's page fetches it from ``/api/report`` every two seconds.
No chart library is needed, so nothing is vendored.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
from typing import Any

from sparklet.runtime._trace_dir import read_trace_dir
from sparklet.runtime._trace_model import build_model

__all__ = ["render_page", "write_report"]

_DATA_MARK = "/*SPARKLET_DATA*/null"
_LIVE_MARK = "/*SPARKLET_LIVE*/false"


@functools.cache
def _template() -> str:
    return importlib.resources.files("sparklet.runtime").joinpath("_report_page.html").read_text(encoding="utf-8")


def render_page(model: dict[str, Any] | None, *, live: bool = False) -> str:
    """The page with ``model`` embedded (``None``: the live UI's page, which fetches it)."""
    # "</" would end the <script> element early; JSON lets "<\/" stand for it.
    data = json.dumps(model, default=repr, separators=(",", ":")).replace("</", "<\\/")
    page = _template()
    assert _DATA_MARK in page and _LIVE_MARK in page, "report template lost its markers"
    return page.replace(_DATA_MARK, data, 1).replace(_LIVE_MARK, "true" if live else "false", 1)


def write_report(trace_dir: str | os.PathLike, out_path: str | os.PathLike | None = None) -> str:
    """Write the self-contained HTML report of the application traced in ``trace_dir``
    (conf ``trace.dir``) and return its path (default: ``<trace_dir>/report.html``).

    Opens in any browser with no network: jobs, stages and tasks with Spark UI's summary
    metrics, the event timeline, each job's stage DAG, the supervision tree with restarts,
    and the actor message sequence (filterable; follow a fault through its recovery).
    """
    trace = read_trace_dir(trace_dir)
    model = build_model(trace.app, trace.listener, trace.actor_events)
    out = os.fspath(out_path) if out_path is not None else os.path.join(os.fspath(trace_dir), "report.html")
    with open(out, "w", encoding="utf-8") as page:
        page.write(render_page(model))
    return out
