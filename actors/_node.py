"""Entry point of a child process started by :func:`sparklet.actors.spawn_in_process`.

Reads its bootstrap record from stdin (length-prefixed msgpack: secret, parent address,
props, ...), starts an actor system that listens on loopback, starts the one actor, and
reports to the parent's ``/system/nodes``. It then lives until the first of: its actor
stops, SIGTERM or SIGINT, the parent closes our stdin (the parent exited), or the
connection to the parent is lost. Then it shuts its system down and exits.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import traceback

import cloudpickle
import msgpack


def _read_bootstrap() -> dict:
    header = sys.stdin.buffer.read(4)
    if len(header) != 4:
        raise SystemExit("sparklet node: no bootstrap record on stdin")
    body = sys.stdin.buffer.read(int.from_bytes(header, "big"))
    return msgpack.unpackb(body, raw=False)


class _StdinClosed(asyncio.Protocol):
    def __init__(self, closed: asyncio.Event) -> None:
        self._closed = closed

    def connection_lost(self, exc: BaseException | None) -> None:
        self._closed.set()


async def _serve(config: dict) -> int:
    from sparklet.actors import ActorSystem
    from sparklet.actors._codec import register_message_types
    from sparklet.actors._process import NodeFailed, NodeReady

    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    stdin_transport, _ = await loop.connect_read_pipe(lambda: _StdinClosed(done), sys.stdin)
    system = ActorSystem(config["system"], strict=config["strict"], tracing=config["tracing"],
                         trace_dir=config.get("trace_dir"))
    code = 0
    try:
        await system.start()
        await system.listen("tcp://127.0.0.1:0", secret=config["secret"])
        nodes = system.ref_for(config["parent"], "/system/nodes")
        try:
            props = cloudpickle.loads(config["props"])
            if props.actor_class is not None:
                register_message_types(props.actor_class._handler_table)
            ref = await system.spawn(props, config["name"])
        except BaseException as exc:
            text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            await nodes.ask(NodeFailed(config["token"], f"{config['name']} failed to start in its process: {exc!r}\n{text}"), timeout=10)
            return 1
        waiters = [
            asyncio.ensure_future(system.wait_terminated(ref)),
            asyncio.ensure_future(system.wait_terminated(nodes)),
            asyncio.ensure_future(done.wait()),
        ]
        await nodes.ask(NodeReady(config["token"], system.address, ref), timeout=30)
        finished, pending = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending:
            waiter.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        await system.shutdown()
        stdin_transport.close()
    return code


def main() -> None:
    config = _read_bootstrap()
    for entry in reversed(config.get("sys_path", [])):
        if entry not in sys.path:
            sys.path.insert(0, entry)
    try:
        import uvloop
    except ImportError:
        sys.exit(asyncio.run(_serve(config)))
    sys.exit(uvloop.run(_serve(config)))


if __name__ == "__main__":
    main()
