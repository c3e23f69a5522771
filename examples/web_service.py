"""An asyncio web service that runs a sparklet job per request, many at once.

    python examples/web_service.py [--master local[2]] [--port 8000]
    curl 'http://127.0.0.1:8000/primes?below=100000'      # {"below": 100000, "primes": 9592}
    curl 'http://127.0.0.1:8000/sum?n=1000'               # {"n": 1000, "sum": 499500}
    curl 'http://127.0.0.1:8000/wordcount?text=to+be+or+not+to+be'
    curl 'http://127.0.0.1:8000/stats'                    # jobs served, most at once

Plain asyncio streams (no web framework): the Context lives on the service's own event
loop (``async with Context()``), and each request awaits an ``...Async`` action
(``countAsync``, ``sumAsync``, ``collectAsync``), so while one job runs on the executors
the loop keeps accepting requests and starting other jobs: the scheduler runs them side
by side. A client that goes away cancels its job. Ctrl-C (or SIGTERM) stops the server,
cancels what is in flight and stops the executors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import urllib.parse

from sparklet import Context


def is_prime(n: int) -> bool:
    if n < 2:
        return False
    f = 2
    while f * f <= n:
        if n % f == 0:
            return False
        f += 1
    return True


class BadRequest(Exception):
    pass


def int_param(query: dict, name: str, limit: int) -> int:
    try:
        value = int(query[name][0])
    except (KeyError, ValueError):
        raise BadRequest(f"expected ?{name}=<integer>") from None
    if not 0 <= value <= limit:
        raise BadRequest(f"{name} must be within [0, {limit}], got {value}")
    return value


class Service:
    def __init__(self, sc: Context) -> None:
        self.sc = sc
        self.in_flight = 0
        self.most_at_once = 0
        self.served = 0
        self.connections: set[asyncio.Task] = set()  # owned: cancelled on shutdown

    async def answer(self, path: str, query: dict) -> dict:
        if path == "/sum":
            n = int_param(query, "n", 10**9)
            return {"n": n, "sum": await self.sc.range(n, numSlices=4).sumAsync()}
        if path == "/primes":
            below = int_param(query, "below", 10**7)
            count = await self.sc.range(below, numSlices=4).filter(is_prime).countAsync()
            return {"below": below, "primes": count}
        if path == "/wordcount":
            text = query.get("text", [""])[0]
            counts = await (self.sc.parallelize(text.split(), 2).map(lambda w: (w, 1))
                            .reduceByKey(lambda a, b: a + b).collectAsync())
            return {"counts": dict(sorted(counts))}
        if path == "/stats":
            return {"served": self.served, "in_flight": self.in_flight, "most_at_once": self.most_at_once}
        raise LookupError(path)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.add(asyncio.current_task())
        try:
            async with asyncio.timeout(10):
                request_line = (await reader.readline()).decode("latin-1").split()
                while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                    pass  # headers: not needed
            if len(request_line) < 2 or request_line[0] != "GET":
                await self.respond(writer, 405, {"error": "only GET is served"})
                return
            url = urllib.parse.urlsplit(request_line[1])
            self.in_flight += 1
            self.most_at_once = max(self.most_at_once, self.in_flight)
            try:
                body = await self.answer(url.path, urllib.parse.parse_qs(url.query))
                self.served += 1
                await self.respond(writer, 200, body)
            except BadRequest as exc:
                await self.respond(writer, 400, {"error": str(exc)})
            except LookupError:
                await self.respond(writer, 404, {"error": f"no such endpoint: {url.path}"})
            except Exception as exc:  # a failed job: this request fails, the service goes on
                await self.respond(writer, 500, {"error": f"{type(exc).__name__}: {exc}"})
            finally:
                self.in_flight -= 1
        except (TimeoutError, ConnectionError):
            pass
        finally:
            self.connections.discard(asyncio.current_task())
            writer.close()

    @staticmethod
    async def respond(writer: asyncio.StreamWriter, status: int, body: dict) -> None:
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
        payload = json.dumps(body).encode()
        writer.write(f"HTTP/1.1 {status} {reasons[status]}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n".encode() + payload)
        await writer.drain()


async def serve(master: str | None, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Context(master, "web-service", conf={"ui.showConsoleProgress": False}) as sc:
        service = Service(sc)
        server = await asyncio.start_server(service.handle, host, port)
        bound = server.sockets[0].getsockname()
        print(f"listening on http://{bound[0]}:{bound[1]} ({sc.master}, {sc.defaultParallelism} task slots)", flush=True)
        await stop.wait()
        server.close()
        for task in list(service.connections):
            task.cancel()  # cancelling a request's task cancels its job
        await asyncio.gather(*service.connections, return_exceptions=True)
        await server.wait_closed()
        print(f"stopped after serving {service.served} requests, at most {service.most_at_once} at once", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: local[*])")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)")
    args = parser.parse_args()
    asyncio.run(serve(args.master, args.host, args.port))
    sys.exit(0)
