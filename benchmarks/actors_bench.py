"""Actor messaging figures, each beside a floor measured in the same run.

* local tell throughput       vs a raw ``asyncio.Queue`` producer/consumer pair
* local ask round trip        vs a raw ``asyncio.Queue`` ping-pong pair
* cross-process tell rate     vs a raw socket with the same 4-byte length framing
* cross-process ask round trip vs a raw framed socket ping-pong
* the cost of tracing: local tell throughput with events on, against off
"""

from __future__ import annotations

import asyncio
import os
import struct
import subprocess
import sys
import time

from sparklet.actors import Actor, ActorSystem, handler, message, spawn_in_process

from benchmarks.report import Figure


@message(tag="bench.Tick")
class Tick:
    n: int


@message(tag="bench.Sync")
class Sync:
    pass


class Sink(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    @handler(Tick)
    def tick(self, msg: Tick) -> None:
        self.count += 1

    @handler(Sync)
    def sync(self, msg: Sync) -> int:
        return self.count


# -- floors ---------------------------------------------------------------------------
async def queue_tell_floor(n: int) -> float:
    queue: asyncio.Queue = asyncio.Queue()

    async def consumer() -> None:
        for _ in range(n):
            await queue.get()

    start = time.perf_counter()
    task = asyncio.ensure_future(consumer())
    for i in range(n):
        queue.put_nowait(Tick(i))  # the same messages the actors carry
    await task
    return n / (time.perf_counter() - start)


async def queue_ask_floor(n: int) -> float:
    requests: asyncio.Queue = asyncio.Queue()
    replies: asyncio.Queue = asyncio.Queue()

    async def server() -> None:
        for _ in range(n):
            replies.put_nowait(await requests.get())

    task = asyncio.ensure_future(server())
    start = time.perf_counter()
    for i in range(n):
        requests.put_nowait(i)
        await replies.get()
    elapsed = time.perf_counter() - start
    await task
    return elapsed / n * 1e6


_ECHO_SERVER = r"""
import asyncio, struct, sys
HEADER = struct.Struct(">I")
async def serve(reader, writer):
    buf = b""
    while True:
        data = await reader.read(1 << 16)
        if not data:
            break
        buf += data
        out = []
        while len(buf) >= 4:
            (size,) = HEADER.unpack_from(buf)
            if len(buf) < 4 + size:
                break
            frame = buf[4:4 + size]
            buf = buf[4 + size:]
            if frame[:1] != b"t":   # "t" frames are one-way; others are echoed
                out.append(HEADER.pack(len(frame)) + frame)
        if out:
            writer.write(b"".join(out))
    writer.close()
async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()
asyncio.run(main())
"""


async def socket_floors(n_tell: int, n_ask: int) -> tuple[float, float]:
    """Framed raw-socket tell rate (frames/s) and ping-pong round trip (µs) to a subprocess."""
    process = subprocess.Popen([sys.executable, "-c", _ECHO_SERVER], stdout=subprocess.PIPE)
    try:
        port = int(process.stdout.readline())
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        header = struct.Struct(">I")
        one_way = header.pack(9) + b"t" + b"x" * 8
        ping = header.pack(9) + b"p" + b"x" * 8
        start = time.perf_counter()
        batch = 1000
        for i in range(0, n_tell, batch):
            writer.write(one_way * min(batch, n_tell - i))
            await writer.drain()
        writer.write(ping)
        await reader.readexactly(13)
        tell_rate = n_tell / (time.perf_counter() - start)
        start = time.perf_counter()
        for _ in range(n_ask):
            writer.write(ping)
            await reader.readexactly(13)
        ask_rtt = (time.perf_counter() - start) / n_ask * 1e6
        writer.close()
        await writer.wait_closed()
        return tell_rate, ask_rtt
    finally:
        process.kill()
        process.wait()
        process.stdout.close()


# -- sparklet -----------------------------------------------------------------------------
async def local_tell(n: int, tracing: bool) -> float:
    async with ActorSystem("bench", tracing=tracing, event_capacity=1000) as system:
        sink = await system.spawn(Sink, "sink")
        start = time.perf_counter()
        for i in range(n):
            sink.tell(Tick(i))
        assert await sink.ask(Sync()) == n
        return n / (time.perf_counter() - start)


async def local_ask(n: int) -> float:
    async with ActorSystem("bench") as system:
        sink = await system.spawn(Sink, "sink")
        start = time.perf_counter()
        for _ in range(n):
            await sink.ask(Sync())
        return (time.perf_counter() - start) / n * 1e6


async def remote_figures(n_tell: int, n_ask: int) -> tuple[float, float]:
    async with ActorSystem("bench") as system:
        handle = await spawn_in_process(system, Sink, "sink")
        try:
            sink = handle.ref
            await sink.ask(Sync())
            start = time.perf_counter()
            for i in range(n_tell):
                sink.tell(Tick(i))
                if i % 5000 == 4999:
                    await asyncio.sleep(0)  # let the writer run, as a producing actor would
            assert await sink.ask(Sync(), timeout=120) == n_tell
            tell_rate = n_tell / (time.perf_counter() - start)
            start = time.perf_counter()
            for _ in range(n_ask):
                await sink.ask(Sync())
            ask_rtt = (time.perf_counter() - start) / n_ask * 1e6
        finally:
            await handle.terminate()
            handle.close_stdin()
        return tell_rate, ask_rtt


async def run(scale: float = 1.0) -> list[Figure]:
    n_tell, n_ask = int(300_000 * scale), int(20_000 * scale)
    n_remote_tell, n_remote_ask = int(300_000 * scale), int(5_000 * scale)
    figures: list[Figure] = []
    floor = max([await queue_tell_floor(n_tell) for _ in range(2)])
    ours = max([await local_tell(n_tell, tracing=False) for _ in range(2)])
    figures.append(Figure("actor.local_tell_throughput", ours, "msg/s", floor, "asyncio.Queue pair", higher_is_better=True, target=">= 0.5x floor"))
    traced = await local_tell(n_tell, tracing=True)
    figures.append(Figure("actor.local_tell_throughput_traced", traced, "msg/s", ours, "same, tracing off", higher_is_better=True, target="(cost of tracing on)"))
    floor_rtt = min([await queue_ask_floor(n_ask) for _ in range(2)])
    ours_rtt = min([await local_ask(n_ask) for _ in range(2)])
    figures.append(Figure("actor.local_ask_round_trip", ours_rtt, "us", floor_rtt, "asyncio.Queue ping-pong", higher_is_better=False, target="<= 3x floor"))
    sock_rate, sock_rtt = await socket_floors(n_remote_tell, n_remote_ask)
    remote_rate, remote_rtt = await remote_figures(n_remote_tell, n_remote_ask)
    figures.append(Figure("actor.remote_tell_throughput", remote_rate, "msg/s", sock_rate, "raw framed socket", higher_is_better=True, target=">= 100,000 msg/s"))
    figures.append(Figure("actor.remote_ask_round_trip", remote_rtt, "us", sock_rtt, "raw framed socket ping-pong", higher_is_better=False, target="(no target; Ray ~125 us/call)"))
    return figures


if __name__ == "__main__":  # pragma: no cover - run through benchmarks/run.py
    print(os.path.basename(__file__), "is run by benchmarks/run.py")
