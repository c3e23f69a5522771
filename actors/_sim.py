"""A deterministic simulated event loop, after FoundationDB's simulation.

:class:`SimulatedLoop` is an asyncio event loop in which a run is a function of its seed:

* **Virtual time.** ``time()`` is a number the loop moves itself: when no callback is
  ready, it jumps straight to the next timer. Nothing sleeps for real; a one-hour timer
  fires at once. ``simenv.time()`` / ``simenv.monotonic()`` read this clock on the loop's
  thread.
* **Seeded interleaving.** Each step runs one ready callback picked by a generator seeded
  with ``seed``: the same seed gives the same order, message for message; other seeds
  explore other orders (FoundationDB's scheduler shuffles ready tasks the same way).
  Trace ids, supervisor backoff jitter and everything else drawn through
  :func:`simenv.new_random` come from the seed too.
* **No real I/O, no threads.** Opening a socket, a pipe or a subprocess raises
  :class:`SimulationError`. ``run_in_executor`` runs the function inline, as a ready
  callback of its own (so it takes its place in the seeded order). Code running inline
  that must wait for the loop (a task fetching shuffle data, say) calls
  :meth:`SimulatedLoop.run_nested`, which runs the loop until the awaited thing is done;
  if nothing can ever complete it, that is a :class:`SimulationDeadlock`, not a hang.
  Each executor passed to ``run_in_executor`` behaves as a one-thread pool: while one of
  its functions waits nested, the next ones wait their turn (a function suspended while
  holding a lock must not meet another that wants the same lock on the same thread).
* **The outside world.** Another thread hands work in with :meth:`submit` (the
  simulated ``run_coroutine_threadsafe``) or ``call_soon_threadsafe``. Such work is let
  in one item at a time, only when the simulation is quiescent (no ready callback and no
  timer due now), so the moment it enters does not depend on real timing. Virtual time
  moves only while submitted work is pending (or the loop is run by
  ``run_until_complete``, or a nested wait is in progress): between two blocking calls
  of a caller, time stands still, however long the caller takes.

Invariants (checked by :meth:`validate_state`, which the tests call):

* ``_foreground >= 0``; ``_nested >= 0``;
* a submitted call's result reaches its caller only when no callback is ready (so what
  the caller reads next, the events say, does not depend on real timing);
* every handle in ``_ready`` and ``_inbox`` is a callback handle, every handle in
  ``_scheduled`` a timer handle, and the heap is ordered;
* virtual time never moves backwards (``_now`` only grows).

Determinism holds for a program driven by one outside thread making one blocking call
at a time (or by ``run_until_complete``); several outside threads racing are let in at
quiescent points in the order they arrive, which real timing decides.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import heapq
import random
import threading
from asyncio import events
from typing import Any, Awaitable, Callable, Coroutine

from sparklet.actors import _simenv
from sparklet.actors._errors import SparkletError

__all__ = ["BlockingFuture", "SimulatedLoop", "SimulationDeadlock", "SimulationError", "run_simulated"]


class SimulationError(SparkletError):
    """Something a simulation cannot do (real I/O, threads) or a misuse of the loop."""


class SimulationDeadlock(SimulationError):
    """Code waits (``run_nested``) for something nothing in the simulation can bring about."""


def _no_io(what: str) -> SimulationError:
    return SimulationError(
        f"{what} is real I/O, which a simulation does not do (the run would depend on the "
        "outside world and could not replay); run this code on a normal event loop, or "
        "keep it in-process (the sim[N] master runs its executors as actors)")


class SimulatedLoop(asyncio.BaseEventLoop):
    """An asyncio event loop with a virtual clock and a seeded order of ready callbacks."""

    def __init__(self, seed: int = 0, *, start_time: float = 0.0) -> None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise TypeError(f"a simulation's seed must be an int, got {seed!r}")
        super().__init__()
        self.seed = seed
        # Two streams: the schedule, and seeds handed to components (simenv.new_random),
        # so how often components draw does not shift the schedule's choices.
        self._schedule_rng = random.Random(f"schedule/{seed}")
        self._seed_rng = random.Random(f"components/{seed}")
        self._ready: list = []  # a list, not asyncio's deque: picked at random, swap-removed
        self._now = float(start_time)  # Invariant: never decreases
        self._inbox: list = []  # handles from other threads, admitted at quiescent points
        self._cond = threading.Condition(threading.Lock())
        self._foreground = 0  # submitted work and run_until_complete calls still pending
        self._nested = 0  # run_nested calls in progress
        # Results of submitted work, handed to their callers only once nothing is ready:
        # a caller that returned while messages its work caused were still in flight would
        # read the simulation's state (its events, say) at a point real timing decides.
        self._settled: list[Callable[[], None]] = []
        # Executors (by id) with a job scheduled or running, and their jobs waiting behind it.
        # Invariant: every key of _executor_backlog is in _executor_busy.
        self._executor_busy: set[int] = set()
        self._executor_backlog: dict[int, list[tuple]] = {}
        self.steps = 0  # callbacks run
        self.choices = 0  # steps where more than one callback was ready
        self._activated = True
        _simenv._activate()

    # -- the clock ----------------------------------------------------------------------------
    def time(self) -> float:
        return self._now

    def wall_time(self) -> float:
        """Virtual wall-clock time (what ``simenv.time()`` reads on this loop's thread)."""
        return _simenv.EPOCH + self._now

    def derive_seed(self) -> int:
        """A seed for a component's own generator, drawn from the simulation's seed."""
        return self._seed_rng.getrandbits(64)

    # -- running ------------------------------------------------------------------------------
    def run_forever(self) -> None:
        _simenv._enter(self)
        try:
            super().run_forever()
        finally:
            self._hand_over_results()  # stopped with results pending: their callers must not hang
            _simenv._leave()

    def _hand_over_results(self) -> None:
        settled, self._settled = self._settled, []
        for hand_over in settled:
            hand_over()

    def run_until_complete(self, future: Any) -> Any:
        self._foreground += 1  # the caller waits for it: time may move
        try:
            return super().run_until_complete(future)
        finally:
            self._foreground -= 1

    def stop(self) -> None:
        self._stopping = True
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        super().close()
        self._inbox.clear()
        if self._activated:
            self._activated = False
            _simenv._deactivate()

    def _run_once(self) -> None:
        scheduled, ready = self._scheduled, self._ready
        while scheduled and scheduled[0]._cancelled:
            self._timer_cancelled_count -= 1
            heapq.heappop(scheduled)._scheduled = False
        self._move_due_timers()
        if not ready:
            if self._settled:  # quiescent at this instant: callers get their results now
                self._hand_over_results()
                return
            if self._admit_one():
                return
            if self._stopping and not self._nested:  # a nested wait goes on: its caller needs the result
                return
            if self._foreground > 0 or self._nested > 0:
                if scheduled:
                    self._now = max(self._now, scheduled[0]._when)
                    self._move_due_timers()
                elif self._nested > 0:
                    raise SimulationDeadlock(
                        "a nested wait cannot complete: no callback is ready, no timer is set and "
                        "nothing came from outside (the awaited reply or result will never come)")
                else:
                    self._wait_for_outside()
                    return
            else:
                self._wait_for_outside()  # idle: time stands still until the caller comes back
                return
        if not ready:
            return
        count = len(ready)
        if count > 1:
            self.choices += 1
            index = self._schedule_rng.randrange(count)
            ready[index], ready[-1] = ready[-1], ready[index]
        handle = ready.pop()
        if handle._cancelled:
            return
        self.steps += 1
        previous, self._current_handle = self._current_handle, handle
        try:
            handle._run()
        finally:
            self._current_handle = previous

    def _move_due_timers(self) -> None:
        scheduled, now = self._scheduled, self._now
        while scheduled and scheduled[0]._when <= now:
            handle = heapq.heappop(scheduled)
            handle._scheduled = False
            if not handle._cancelled:
                self._ready.append(handle)
            else:
                self._timer_cancelled_count -= 1

    def _admit_one(self) -> bool:
        with self._cond:
            if not self._inbox:
                return False
            handle = self._inbox.pop(0)
        if not handle._cancelled:
            self._ready.append(handle)
        return True

    def _wait_for_outside(self) -> None:
        with self._cond:
            while not self._inbox and not self._stopping:
                self._cond.wait()

    # -- callbacks from other threads -----------------------------------------------------------
    def call_soon_threadsafe(self, callback: Callable, *args: Any, context: Any = None) -> asyncio.Handle:
        if self._thread_id is not None and threading.get_ident() == self._thread_id:
            return self.call_soon(callback, *args, context=context)  # inline code on our own thread
        self._check_closed()
        handle = events.Handle(callback, args, self, context)
        with self._cond:
            self._inbox.append(handle)
            self._cond.notify_all()
        return handle

    def _write_to_self(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def submit(self, coroutine: Coroutine) -> concurrent.futures.Future:
        """Run ``coroutine`` on this loop from another thread; return a concurrent future of
        its result (cancelling it cancels the coroutine). Virtual time moves while it runs."""
        if not asyncio.iscoroutine(coroutine):
            raise TypeError(f"submit() takes a coroutine, got {coroutine!r}")
        result: concurrent.futures.Future = concurrent.futures.Future()

        def start() -> None:
            if result.cancelled():
                coroutine.close()
                return
            self._foreground += 1
            task = self.create_task(coroutine)

            def hand_over(task: asyncio.Task) -> None:
                try:
                    if task.cancelled():
                        result.cancel()
                    elif task.exception() is not None:
                        result.set_exception(task.exception())
                    else:
                        result.set_result(task.result())
                except concurrent.futures.InvalidStateError:
                    pass  # the caller cancelled it meanwhile

            def done(task: asyncio.Task) -> None:
                self._foreground -= 1
                self._settled.append(lambda: hand_over(task))  # at the next quiescent point

            task.add_done_callback(done)
            # A cancel from the caller's thread reaches the task through the inbox.
            result.add_done_callback(lambda f: f.cancelled() and not task.done() and self.call_soon_threadsafe(task.cancel))

        self.call_soon_threadsafe(start)
        return result

    # -- inline code waiting for the loop --------------------------------------------------------
    def run_nested(self, awaitable: Awaitable) -> Any:
        """From code running inline on this loop (a callback, ``run_in_executor``'s
        function), run the loop until ``awaitable`` is done and return its result. What
        blocking code does on a real loop with ``run_coroutine_threadsafe(...).result()``."""
        if self._thread_id is None or threading.get_ident() != self._thread_id:
            raise SimulationError("run_nested() must be called on the thread running the simulated loop")
        future = asyncio.ensure_future(awaitable, loop=self)
        outer = asyncio.current_task(self)
        if outer is not None:
            asyncio.tasks._leave_task(self, outer)  # let other tasks step meanwhile
        self._nested += 1
        try:
            while not future.done():
                self._run_once()
        finally:
            self._nested -= 1
            if outer is not None:
                asyncio.tasks._enter_task(self, outer)
        return future.result()

    def blocking(self, future: asyncio.Future) -> "BlockingFuture":
        """A concurrent-future-like view of ``future`` whose ``result()`` runs the loop nested."""
        return BlockingFuture(self, future)

    def run_in_executor(self, executor: Any, func: Callable, *args: Any) -> asyncio.Future:
        """Run ``func(*args)`` inline, as a ready callback of its own. Each ``executor`` (a
        pool, or None) is simulated as one worker thread: while one of its functions is
        suspended in :meth:`run_nested`, its next ones wait, as on a one-thread pool, so
        they never meet a lock the suspended one holds."""
        self._check_closed()
        future = self.create_future()
        job = (func, args, future)
        key = id(executor)
        if key in self._executor_busy:
            self._executor_backlog.setdefault(key, []).append(job)
        else:
            self._executor_busy.add(key)  # until the job has run (it may wait nested)
            self.call_soon(self._run_job, key, job)
        return future

    def _run_job(self, key: int, job: tuple) -> None:
        func, args, future = job
        try:
            if not future.cancelled():
                try:
                    result = func(*args)
                except (SystemExit, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    if not future.cancelled():
                        future.set_exception(exc)
                else:
                    if not future.cancelled():
                        future.set_result(result)
        finally:
            backlog = self._executor_backlog.get(key)
            if backlog:
                self.call_soon(self._run_job, key, backlog.pop(0))
                if not backlog:
                    del self._executor_backlog[key]
            else:
                self._executor_busy.discard(key)

    def set_default_executor(self, executor: Any) -> None:
        raise SimulationError("a simulation has no executor threads; run_in_executor runs inline")

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:  # nothing to shut down
        return None

    # -- real I/O is refused ----------------------------------------------------------------------
    async def getaddrinfo(self, host: Any, port: Any, **kwargs: Any) -> Any:
        raise _no_io(f"resolving {host}:{port}")

    async def getnameinfo(self, sockaddr: Any, flags: int = 0) -> Any:
        raise _no_io(f"resolving {sockaddr}")

    async def create_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("opening a connection (create_connection)")

    async def create_server(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("listening on a socket (create_server)")

    async def create_unix_connection(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("opening a Unix socket connection")

    async def create_unix_server(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("listening on a Unix socket")

    async def create_datagram_endpoint(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("opening a datagram socket")

    async def connect_accepted_socket(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("adopting a socket")

    async def connect_read_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("reading a pipe")

    async def connect_write_pipe(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("writing a pipe")

    async def subprocess_exec(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("starting a subprocess")

    async def subprocess_shell(self, *args: Any, **kwargs: Any) -> Any:
        raise _no_io("starting a subprocess")

    def add_reader(self, fd: Any, callback: Callable, *args: Any) -> None:
        raise _no_io(f"watching file descriptor {fd} for reading")

    def add_writer(self, fd: Any, callback: Callable, *args: Any) -> None:
        raise _no_io(f"watching file descriptor {fd} for writing")

    def remove_reader(self, fd: Any) -> bool:
        return False

    def remove_writer(self, fd: Any) -> bool:
        return False

    async def sock_connect(self, sock: Any, address: Any) -> None:
        raise _no_io(f"connecting a socket to {address}")

    async def sock_accept(self, sock: Any) -> Any:
        raise _no_io("accepting on a socket")

    async def sock_recv(self, sock: Any, nbytes: int) -> bytes:
        raise _no_io("reading a socket")

    async def sock_recv_into(self, sock: Any, buf: Any) -> int:
        raise _no_io("reading a socket")

    async def sock_sendall(self, sock: Any, data: Any) -> None:
        raise _no_io("writing a socket")

    def add_signal_handler(self, sig: int, callback: Callable, *args: Any) -> None:
        raise SimulationError(f"a simulation does not take signals (add_signal_handler({sig}))")

    def remove_signal_handler(self, sig: int) -> bool:
        return False

    def _process_events(self, event_list: Any) -> None:  # no selector: nothing to process
        return None

    # -- introspection ------------------------------------------------------------------------------
    def statistics(self) -> dict[str, Any]:
        return {"seed": self.seed, "time": self._now, "steps": self.steps, "choices": self.choices,
                "ready": len(self._ready), "timers": len(self._scheduled), "inbox": len(self._inbox),
                "foreground": self._foreground, "nested": self._nested}

    def validate_state(self) -> None:
        assert self._foreground >= 0, f"foreground count {self._foreground} < 0"
        assert self._nested >= 0, f"nested count {self._nested} < 0"
        assert set(self._executor_backlog) <= self._executor_busy, "jobs wait behind an idle executor"
        assert all(type(h) is events.Handle for h in self._ready + self._inbox), "a timer handle among ready callbacks"
        assert all(isinstance(h, events.TimerHandle) for h in self._scheduled), "a plain handle among timers"
        for i in range(1, len(self._scheduled)):
            assert not self._scheduled[i] < self._scheduled[(i - 1) // 2], "the timer heap is out of order"

    def __del__(self) -> None:
        if hasattr(self, "_activated"):  # a constructor that raised built nothing to close
            super().__del__()

    def __repr__(self) -> str:
        return f"<SimulatedLoop seed={self.seed} time={self._now:.6f} steps={self.steps} running={self.is_running()}>"


class BlockingFuture:
    """What ``concurrent.futures.Future`` is to a thread, for inline code on a simulated
    loop: ``result()`` runs the loop (nested) until the asyncio future is done."""

    __slots__ = ("_loop", "_future")

    def __init__(self, loop: SimulatedLoop, future: asyncio.Future) -> None:
        self._loop, self._future = loop, future

    def result(self, timeout: float | None = None) -> Any:
        return self._loop.run_nested(self._future)

    def done(self) -> bool:
        return self._future.done()

    def cancel(self) -> bool:
        return self._future.cancel()


def run_simulated(main: Coroutine, *, seed: int = 0) -> Any:
    """``asyncio.run`` on a fresh :class:`SimulatedLoop` with ``seed``: run ``main`` to
    completion (virtual time moves as needed), cancel what is left, close the loop."""
    loop = SimulatedLoop(seed)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
