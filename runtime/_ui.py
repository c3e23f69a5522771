"""The live UI: the report's page and a JSON API, served by the driver while the app runs.

An HTTP/1.1 server on asyncio streams, on the driver's own loop (no thread for sockets),
listening on loopback unless conf ``ui.host`` says otherwise. It never blocks the
scheduler: a request takes a snapshot of the listener events and actor events (list
copies) and the live supervision tree on the loop, then builds the model in the UI's own
worker thread. Every response closes its connection; stopping the UI closes the
listening socket and every open connection.

Routes (GET only)::

    /                   the report page; it polls /api/report and re-renders
    /api/report         the whole model (see sparklet.runtime._trace_model)
    /api/app /api/jobs /api/stages /api/tasks /api/executors /api/faults /api/restarts
    /api/tree /api/timeline /api/messages /api/counts   one part of it each
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import time
from typing import Any

from sparklet.actors import tree_snapshot
from sparklet.runtime._report import render_page
from sparklet.runtime._trace_dir import listener_event_to_dict
from sparklet.runtime._trace_model import build_model

__all__ = ["LiveUI"]

log = logging.getLogger("sparklet.ui")

_PARTS = {"app", "jobs", "stages", "tasks", "executors", "faults", "restarts", "tree", "timeline", "messages", "counts"}
_MAX_REQUEST = 16 * 1024
_STATUS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}


class LiveUI:
    def __init__(self, context: Any, host: str, port: int) -> None:
        self._context = context
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()  # owned: cancelled and awaited in stop()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sparklet-ui")
        self._started = time.time()
        self.requests = 0

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port, limit=_MAX_REQUEST)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("sparklet UI at %s", self.url)

    async def stop(self) -> None:
        if self._server is None:
            return
        server, self._server = self._server, None
        server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        await server.wait_closed()

    def close(self) -> None:
        """Join the worker thread (off the loop, after :meth:`stop`)."""
        self._pool.shutdown(wait=True)

    # -- the model, built off the loop ------------------------------------------------------------
    async def model(self) -> dict[str, Any]:
        context = self._context
        listener = context.listener_bus.events()
        system = context._system
        actor_events = list(system.events) if system is not None else []
        tree = tree_snapshot(system) if system is not None else None
        app = {"app_name": context.appName, "app_id": context.applicationId, "master": context.master,
               "start": self._started, "end": None, "live": True, "trace_dir": context.trace_dir}

        def build() -> dict[str, Any]:
            model = build_model(app, [listener_event_to_dict(e) for e in listener], actor_events, tree)
            model["app"]["end"] = model["app"]["duration"] = None  # still running
            return model

        return await asyncio.get_running_loop().run_in_executor(self._pool, build)

    # -- HTTP ------------------------------------------------------------------------------------------
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            status, content_type, body = await self._respond(reader)
            head = (f"HTTP/1.1 {status} {_STATUS[status]}\r\nContent-Type: {content_type}\r\n"
                    f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n")
            writer.write(head.encode("ascii") + body)
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client went away or sent garbage: nothing to answer
        finally:
            self._connections.discard(task)
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    async def _respond(self, reader: asyncio.StreamReader) -> tuple[int, str, bytes]:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10.0)
        self.requests += 1
        request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = request_line.split()
        if len(parts) != 3 or not parts[2].startswith("HTTP/"):
            return _error(400, f"malformed request line {request_line!r}")
        method, target = parts[0], parts[1].split("?", 1)[0]
        if method not in ("GET", "HEAD"):
            return _error(405, f"method {method} not allowed; the UI is read-only (GET)")
        if target in ("/", "/index.html"):
            return 200, "text/html; charset=utf-8", render_page(None, live=True).encode("utf-8")
        if target.startswith("/api/"):
            name = target.removeprefix("/api/").strip("/")
            if name != "report" and name not in _PARTS:
                return _error(404, f"no API {target!r}; try /api/report or /api/{{{','.join(sorted(_PARTS))}}}")
            try:
                model = await self.model()
            except Exception as exc:  # a bug in the model must not take the UI down
                log.exception("building the UI model failed")
                return _error(500, f"building the model failed: {exc!r}")
            data = model if name == "report" else model[name]
            return 200, "application/json", json.dumps(data, default=repr).encode("utf-8")
        return _error(404, f"no page {target!r}; the UI serves / and /api/report")


def _error(status: int, text: str) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps({"error": text}).encode("utf-8")
