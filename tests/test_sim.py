"""The simulated loop: virtual time, seeded interleavings, no real I/O, inline executors."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from sparklet.actors import (
    Actor, ActorSystem, Props, SimulatedLoop, SimulationDeadlock, SimulationError, handler, message, run_simulated,
    simenv,
)


@message
class Relay:
    hops: int
    tag: str


@message
class Tally:
    pass


class Relayer(Actor):
    """Passes a token on to a peer chosen from its hop count, so who runs when shapes the trace."""

    def __init__(self, peers: tuple[str, ...]) -> None:
        super().__init__()
        self.peers = peers
        self.seen: list[str] = []

    @handler(Relay)
    def relay(self, msg: Relay) -> None:
        self.seen.append(msg.tag)
        if msg.hops > 0:
            peer = self.context.system.lookup(self.peers[msg.hops % len(self.peers)])
            peer.tell(Relay(msg.hops - 1, msg.tag))

    @handler(Tally)
    def tally(self, msg: Tally) -> list[str]:
        return self.seen


def run_relay_workload(seed: int) -> list[tuple]:
    """Four actors pass ten tokens around concurrently; returns the actor events
    (kind, actor, message type, trace id)."""

    async def main() -> tuple[list[tuple], list]:
        async with ActorSystem("relay", tracing=True, strict=True) as system:
            paths = tuple(f"/user/r{i}" for i in range(4))
            refs = [await system.spawn(Props.of(Relayer, paths), f"r{i}") for i in range(4)]
            for token in range(10):
                refs[token % 4].tell(Relay(6, f"t{token}"))
            await asyncio.sleep(1.0)  # virtual: the tokens settle
            seen = await asyncio.gather(*(ref.ask(Tally(), timeout=5) for ref in refs))
            events = [(e["kind"], e["actor"], e.get("msg"), e.get("id")) for e in system.events]
            return events, seen

    events, seen = run_simulated(main(), seed=seed)
    assert sorted(tag for s in seen for tag in s) == sorted(f"t{t}" for t in range(10) for _ in range(7))
    return events


def test_same_seed_gives_the_same_events_message_for_message():
    first = run_relay_workload(7)
    second = run_relay_workload(7)
    assert len(first) > 200
    assert first == second
    assert all(e[3] is not None for e in first if e[0] in ("send", "receive", "handled"))


def test_different_seeds_explore_different_interleavings():
    traces = {tuple(run_relay_workload(seed)) for seed in range(6)}
    assert len(traces) > 1, "six seeds all gave the same interleaving"


def test_a_one_hour_timer_fires_at_once():
    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await asyncio.sleep(3600)
        return loop.time() - started

    real = time.monotonic()
    assert run_simulated(main(), seed=1) == 3600
    assert time.monotonic() - real < 2.0


def test_actor_timers_and_ask_timeouts_run_on_virtual_time():
    @message
    class Tick:
        pass

    @message
    class Count:
        pass

    class Ticker(Actor):
        def __init__(self) -> None:
            super().__init__()
            self.ticks = 0

        async def pre_start(self) -> None:
            self.timers.start_periodic("tick", Tick(), 60.0)

        @handler(Tick)
        def tick(self, msg: Tick) -> None:
            self.ticks += 1

        @handler(Count)
        def count(self, msg: Count) -> int:
            return self.ticks

    async def main() -> tuple[int, float]:
        async with ActorSystem("ticks", strict=True) as system:
            ticker = await system.spawn(Ticker, "ticker")
            await asyncio.sleep(60 * 10 + 1)  # ten minutes of virtual time
            return await ticker.ask(Count(), timeout=1), asyncio.get_running_loop().time()

    ticks, now = run_simulated(main(), seed=3)
    assert ticks == 10
    assert now >= 601


def test_simenv_reads_virtual_time_on_the_loop_thread_only():
    assert simenv.time is time.time  # no simulation live: the builtins themselves

    async def main() -> tuple[float, float, float]:
        await asyncio.sleep(5)
        outside: list[float] = []
        reader = threading.Thread(target=lambda: outside.append(simenv.monotonic()))
        reader.start()
        reader.join()
        return simenv.monotonic(), simenv.time(), outside[0]

    mono, wall, outside = run_simulated(main(), seed=0)
    assert mono == 5.0
    assert wall == simenv.EPOCH + 5.0
    assert abs(outside - time.monotonic()) < 5.0  # the other thread read the real clock
    assert simenv.time is time.time and simenv.monotonic is time.monotonic  # restored when the loop closed


def test_seeded_randomness_replays():
    async def main() -> tuple[list[float], str]:
        return [simenv.new_random().random() for _ in range(3)], simenv.token_hex(4)

    assert run_simulated(main(), seed=11) == run_simulated(main(), seed=11)
    assert run_simulated(main(), seed=11) != run_simulated(main(), seed=12)


def test_sockets_are_refused_with_a_clear_error():
    async def main() -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(SimulationError, match="real I/O"):
        run_simulated(main())

    async def listen() -> None:
        async with ActorSystem("listener") as system:
            await system.listen()

    with pytest.raises(SimulationError, match="listening on a socket"):
        run_simulated(listen())


def test_run_in_executor_runs_inline_and_may_wait_for_the_loop():
    async def main() -> tuple[int, bool]:
        loop = asyncio.get_running_loop()
        assert isinstance(loop, SimulatedLoop)

        def blocking_work() -> int:
            # Inline on the loop's thread: waiting for the loop runs it nested.
            reply = loop.blocking(asyncio.ensure_future(asyncio.sleep(30, result=41)))
            return reply.result() + 1

        value = await loop.run_in_executor(None, blocking_work)
        same_thread = await loop.run_in_executor(None, threading.get_ident) == threading.get_ident()
        return value, same_thread

    threads_before = threading.active_count()
    assert run_simulated(main(), seed=5) == (42, True)
    assert threading.active_count() == threads_before


def test_a_nested_wait_nothing_can_complete_is_a_deadlock():
    async def main() -> None:
        loop = asyncio.get_running_loop()
        never = loop.create_future()
        await loop.run_in_executor(None, loop.run_nested, never)

    with pytest.raises(SimulationDeadlock, match="cannot complete"):
        run_simulated(main())


def test_outside_work_enters_at_quiescent_points_and_time_stands_still_between():
    loop = SimulatedLoop(9)
    runner = threading.Thread(target=loop.run_forever, name="sim-test-loop")
    runner.start()
    try:
        async def heartbeat_forever() -> None:
            while True:
                await asyncio.sleep(1.0)

        async def sleep_and_report(seconds: float) -> float:
            await asyncio.sleep(seconds)
            return asyncio.get_running_loop().time()

        background = loop.submit(asyncio.sleep(0))  # lets the loop start before the timer exists
        background.result(timeout=5)
        forever = loop.submit(heartbeat_forever())
        time.sleep(0.05)
        first = loop.submit(sleep_and_report(10.0)).result(timeout=5)
        time.sleep(0.2)  # real time passes; virtual time must not, nobody is waiting... except `forever`
        forever.cancel()
        time.sleep(0.05)
        before = loop.time()
        time.sleep(0.2)
        assert loop.time() == before, "virtual time moved while nothing from outside was pending"
        second = loop.submit(sleep_and_report(5.0)).result(timeout=5)
        assert second == before + 5.0
        assert first >= 10.0
        loop.validate_state()
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(timeout=5)
        loop.close()


def test_a_seed_must_be_an_int():
    with pytest.raises(TypeError, match="seed must be an int"):
        SimulatedLoop("7")  # type: ignore[arg-type]


def test_each_executor_is_one_simulated_thread_so_a_lock_held_across_a_wait_is_safe():
    async def main() -> list[str]:
        loop = asyncio.get_running_loop()
        pool, other_pool = object(), object()
        lock = threading.Lock()  # what a task's thread may hold while it waits for the loop
        order: list[str] = []

        def holder(name: str) -> None:
            with lock:
                order.append(f"{name} in")
                loop.run_nested(asyncio.sleep(1.0))
                order.append(f"{name} out")

        def elsewhere() -> None:
            order.append("other pool ran")

        jobs = [loop.run_in_executor(pool, holder, name) for name in ("a", "b", "c")]
        jobs.append(loop.run_in_executor(other_pool, elsewhere))
        await asyncio.gather(*jobs)
        loop.validate_state()
        return order

    order = run_simulated(main(), seed=2)
    held = [o for o in order if o != "other pool ran"]
    assert held == ["a in", "a out", "b in", "b out", "c in", "c out"]
    assert order.index("other pool ran") < order.index("a out"), "another pool waited behind a suspended one"


def test_a_nested_wait_finishes_even_when_the_main_coroutine_ends_meanwhile():
    async def main() -> asyncio.Future:
        loop = asyncio.get_running_loop()

        started = asyncio.Event()

        def waits() -> str:
            started.set()
            return loop.run_nested(asyncio.sleep(10, result="woke"))

        background = loop.run_in_executor(None, waits)
        await started.wait()  # main ends (and stops the loop) while `waits` is nested
        return background

    loop = SimulatedLoop(4)
    try:
        background = loop.run_until_complete(main())
        loop.run_until_complete(background)
        assert background.result() == "woke" and loop.time() == 10
    finally:
        loop.close()
