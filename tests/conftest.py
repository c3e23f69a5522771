"""Shared fixtures. Every test runs with asyncio debug on, warnings as errors, and a
check that it left no thread, child process or asyncio task behind."""

from __future__ import annotations

import asyncio
import gc
import os
import threading

import pytest

from sparklet.actors import ActorSystem

from support import assert_no_tasks_left, child_pids, open_sockets

os.environ.setdefault("PYTHONASYNCIODEBUG", "1")
os.environ["SPARKLET_STRICT"] = "1"  # every ActorSystem strict unless a test says otherwise


try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency where the platform has it
    uvloop = None

def pytest_asyncio_loop_factories(config, item):
    """Every async test runs on the default asyncio loop and, where installed, on uvloop."""
    factories = {"asyncio": asyncio.new_event_loop}
    if uvloop is not None:
        factories["uvloop"] = uvloop.new_event_loop
    return factories


@pytest.fixture(autouse=True)
def no_leftovers():
    threads_before = set(threading.enumerate())
    pids_before = child_pids()
    sockets_before = open_sockets()
    yield
    leftover_threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    for t in leftover_threads:
        t.join(timeout=2.0)
    leftover_threads = [t.name for t in leftover_threads if t.is_alive()]
    assert not leftover_threads, f"threads left running: {leftover_threads}"
    leftover_pids = child_pids() - pids_before
    assert not leftover_pids, f"child processes left running: {sorted(leftover_pids)}"
    gc.collect()  # sockets of a closed loop may wait for the collector
    leftover_sockets = open_sockets() - sockets_before
    assert not leftover_sockets, f"sockets left open: {sorted(leftover_sockets)}"


@pytest.fixture
async def system():
    """A strict, tracing actor system; on teardown it must shut down leaving no task."""
    sys = ActorSystem("test", strict=True, tracing=True)
    await sys.start()
    try:
        yield sys
    finally:
        await sys.shutdown()
        assert_no_tasks_left()


@pytest.fixture(params=["serial", "inproc[2]", "local[2]"])
def ctx(request):
    """Reference properties hold for the serial test context and for both real masters;
    one context serves all of a test's hypothesis examples (contexts keep no state
    between jobs)."""
    from rdd_support import SerialContext
    from sparklet import Context

    if request.param == "serial":
        yield SerialContext()
        return
    with Context(request.param, "properties", conf={"ui.showConsoleProgress": False}) as context:
        yield context


def pytest_collection_modifyitems(config, items):
    """Soak and chaos runs (``@pytest.mark.slow``) run only when asked for with ``-m slow``
    (or any marker expression naming ``slow``): the default suite stays fast."""
    if "slow" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
