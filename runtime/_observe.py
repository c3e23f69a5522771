"""The context's observability hooks: the trace directory and the live UI.

Kept out of ``_context.py`` so the context only calls four methods: ``__init__`` (before
the first listener event is posted), :meth:`start` (on the loop, once the driver is up),
:meth:`stop` (on the loop, before the actor system shuts down: stops the UI and snapshots
the supervision tree) and :meth:`close` (off the loop: writes the final ``app.json`` and
joins the writer thread).
"""

from __future__ import annotations

import os
import time
from typing import Any

from sparklet.actors import tree_snapshot
from sparklet.runtime._trace_dir import TraceDirWriter

__all__ = ["Observability"]


class Observability:
    def __init__(self, context: Any, ui: bool | int | None) -> None:
        conf = context.conf
        if ui is not None:
            if isinstance(ui, bool):
                conf.set("ui.enabled", ui)
            elif isinstance(ui, int):
                conf.set("ui.port", ui)
            else:
                raise TypeError(f"ui must be True, False or a port number, got {ui!r}")
        if conf["ui.port"] is not None and ui is not False:
            conf.set("ui.enabled", True)
        self._context = context
        self.trace_dir: str | None = os.path.abspath(conf["trace.dir"]) if conf["trace.dir"] else None
        self.ui: Any = None
        self._tree: Any = None
        self._writer: TraceDirWriter | None = None
        if self.trace_dir is not None:
            try:
                os.makedirs(self.trace_dir, exist_ok=True)  # fail here, clearly, not in a writer thread
            except OSError as exc:
                raise ValueError(f"configuration trace.dir: cannot create {self.trace_dir!r} ({exc.strerror})") from None
            self._writer = TraceDirWriter(self.trace_dir, {
                "app_name": context.appName, "app_id": context.applicationId, "master": context.master,
                "start": time.time(), "end": None, "driver_pid": os.getpid(),
                "conf": {k: v for k, v in conf.items() if v is not None},
                "fault_plan": context.fault_plan.describe() if context.fault_plan else None,
            })
            context.listener_bus.add_internal(self._writer.on_event)

    @property
    def tracing(self) -> bool:
        return self._context.conf["tracing"] or self.trace_dir is not None

    async def start(self) -> None:
        if self._context.conf["ui.enabled"]:
            from sparklet.runtime._ui import LiveUI

            self.ui = LiveUI(self._context, self._context.conf["ui.host"], self._context.conf["ui.port"] or 0)
            await self.ui.start()

    async def stop(self) -> None:
        if self.ui is not None:
            await self.ui.stop()
        system = self._context._system
        if system is not None and self._tree is None:
            self._tree = tree_snapshot(system)

    def close(self) -> None:
        if self.ui is not None:
            self.ui.close()
        if self._writer is not None:
            self._writer.close(end=time.time(), tree=self._tree)
            self._writer = None
