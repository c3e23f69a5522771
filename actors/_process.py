"""Actors in other processes: start one, talk to it through a normal reference, supervise it.

:func:`spawn_in_process` starts ``python -m sparklet.actors._node``, hands it a bootstrap
record over its stdin (the cluster secret never appears on a command line or in the
environment), and waits until the child's actor system has connected back, passed the
handshake and started the actor. The child lives until its actor stops, it is sent
SIGTERM, or its parent goes away (stdin reaches EOF), so no orphan outlives a driver.

:class:`ProcessActor` is a local stand-in for an actor in a child process: it forwards
every message (tells and asks, in order) and fails with :class:`ProcessExited` when the
process dies, so the supervisor above it restarts it, which starts a new process. Its
reference and mailbox survive the restart: messages sent meanwhile wait for the new
process.

Exit is observed through a pidfd on the loop (Linux), or by polling elsewhere: no helper
threads, no child watcher.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
from typing import Any

import cloudpickle
import msgpack

from sparklet.actors._actor import Actor, Props, Terminated, as_props, handler
from sparklet.actors._codec import message
from sparklet.actors._errors import ActorStartFailed, SparkletError
from sparklet.actors._ref import ActorRef

__all__ = ["spawn_in_process", "ProcessHandle", "ProcessActor", "ProcessExited", "RecycleProcess"]

_REGISTRY = "nodes"


class ProcessExited(SparkletError):
    """A process hosting an actor exited (or was killed)."""


@message(tag="sparklet.RecycleProcess")
class RecycleProcess:
    """Tell a :class:`ProcessActor` that its process is beyond saving (e.g. silent): it is
    killed with SIGKILL and the stand-in fails, so its supervisor starts a new one."""

    reason: str


@message(tag="sparklet.AwaitNode")
class AwaitNode:
    token: str


@message(tag="sparklet.NodeReady")
class NodeReady:
    token: str
    address: str
    ref: ActorRef


@message(tag="sparklet.NodeFailed")
class NodeFailed:
    token: str
    error: str


class _NodeRegistry(Actor):
    """``/system/nodes``: where child processes report that they are up (or failed)."""

    def __init__(self) -> None:
        super().__init__()
        self._waiting: dict[str, Any] = {}
        self._arrived: dict[str, Any] = {}

    @handler(AwaitNode)
    def await_node(self, msg: AwaitNode) -> None:
        reply = self.context.defer_reply()
        if msg.token in self._arrived:
            self._answer(reply, self._arrived.pop(msg.token))
        else:
            self._waiting[msg.token] = reply

    @handler(NodeReady, NodeFailed)
    def arrived(self, msg: NodeReady | NodeFailed) -> bool:
        reply = self._waiting.pop(msg.token, None)
        if reply is None:
            self._arrived[msg.token] = msg
        else:
            self._answer(reply, msg)
        return True

    @staticmethod
    def _answer(reply: Any, msg: NodeReady | NodeFailed) -> None:
        if isinstance(msg, NodeFailed):
            reply.set_exception(ActorStartFailed(msg.error))
        else:
            reply.set_result(msg)


class ProcessHandle:
    """A running child process that hosts one actor (``ref``)."""

    def __init__(self, process: subprocess.Popen, stdin: asyncio.WriteTransport, address: str, ref: ActorRef, exited: asyncio.Future) -> None:
        self.process = process
        self.pid = process.pid
        self.address = address
        self.ref = ref
        self._stdin = stdin
        self._exited = exited

    @property
    def returncode(self) -> int | None:
        return self._exited.result() if self._exited.done() else None

    async def wait(self) -> int:
        return await asyncio.shield(self._exited)

    def kill(self) -> None:
        """SIGKILL, at once."""
        self._signal(signal.SIGKILL)

    async def terminate(self, timeout: float | None = 5.0) -> int:
        """SIGTERM (the child shuts its actor system down), then SIGKILL after ``timeout``."""
        if timeout is not None and timeout <= 0:
            self.kill()
        else:
            self._signal(signal.SIGTERM)
            try:
                return await asyncio.wait_for(asyncio.shield(self._exited), timeout)
            except asyncio.TimeoutError:
                self.kill()
        return await self.wait()

    def _signal(self, sig: int) -> None:
        if not self._exited.done():
            try:
                self.process.send_signal(sig)
            except ProcessLookupError:
                pass

    def close_stdin(self) -> None:
        self._stdin.close()


async def _registry(system: Any) -> ActorRef:
    try:
        return system.lookup(f"/system/{_REGISTRY}")
    except SparkletError:
        return await system.spawn_system_actor(_NodeRegistry, _REGISTRY)


def _watch_exit(process: subprocess.Popen) -> asyncio.Future:
    loop = asyncio.get_running_loop()
    exited: asyncio.Future = loop.create_future()

    def reap() -> bool:
        code = process.poll()
        if code is not None and not exited.done():
            exited.set_result(code)
        return code is not None

    try:
        pidfd = os.pidfd_open(process.pid)
    except (AttributeError, OSError):
        async def poll() -> None:
            while not reap():
                await asyncio.sleep(0.05)
        task = loop.create_task(poll())
        exited.add_done_callback(lambda _: task.cancel())
        return exited

    def on_readable() -> None:
        if reap():
            loop.remove_reader(pidfd)
            os.close(pidfd)

    loop.add_reader(pidfd, on_readable)
    return exited


async def spawn_in_process(
    system: Any,
    props: Props | type,
    name: str = "main",
    *,
    startup_timeout: float = 30.0,
    env: dict[str, str] | None = None,
    tracing: bool | None = None,
) -> ProcessHandle:
    """Start ``props`` as ``/user/<name>`` in a new process and return its handle.

    The system must be listening (it is made to listen on loopback if it is not).
    Raises :class:`ActorStartFailed` with the child's error if the actor failed to
    start, or if the process exited or stayed silent for ``startup_timeout`` seconds.
    """
    props = as_props(props)
    if system.address is None:
        await system.listen()
    registry = await _registry(system)
    token = secrets.token_hex(8)
    bootstrap = msgpack.packb({
        "secret": system.secret,
        "parent": system.address,
        "token": token,
        "name": name,
        "props": cloudpickle.dumps(props),
        "system": f"{system.name}-{name}",
        "strict": system.strict,
        "tracing": system.events.enabled if tracing is None else tracing,
        "trace_dir": system.events.directory,  # the child writes its events beside ours
        "sys_path": list(sys.path),
    }, use_bin_type=True)
    process = subprocess.Popen(
        [sys.executable, "-m", "sparklet.actors._node"],
        stdin=subprocess.PIPE,
        env=env,
        close_fds=True,
    )
    loop = asyncio.get_running_loop()
    stdin, _ = await loop.connect_write_pipe(asyncio.Protocol, process.stdin)
    stdin.write(len(bootstrap).to_bytes(4, "big") + bootstrap)
    exited = _watch_exit(process)
    ready = registry.ask_nowait(AwaitNode(token), timeout=startup_timeout)
    try:
        await asyncio.wait({ready, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            ready.cancel()
            raise ActorStartFailed(f"process for {name} ({props.label}) exited with code {exited.result()} before it was ready")
        node: NodeReady = ready.result()
    except BaseException:
        if not exited.done():
            process.kill()
            await asyncio.shield(exited)
        stdin.close()
        if process.stdin is not None:
            process.stdin.close()
        raise
    return ProcessHandle(process, stdin, node.address, node.ref, exited)


class ProcessActor(Actor):
    """Hosts ``props`` in a child process and stands in for it here.

    Every message is forwarded to the remote actor, asks included (their replies flow
    back to the original asker). When the process dies, this actor fails with
    :class:`ProcessExited`; restarting it starts a new process. Stopping it stops the
    process (SIGTERM, then SIGKILL after ``stop_timeout``).
    """

    def __init__(self, props: Props | type, name: str = "main", *, startup_timeout: float = 30.0, stop_timeout: float = 5.0,
                 env: dict[str, str] | None = None) -> None:
        super().__init__()
        self._env = env
        self._props = as_props(props)
        self._name = name
        self._startup_timeout = startup_timeout
        self._stop_timeout = stop_timeout
        self.handle: ProcessHandle | None = None

    async def pre_start(self) -> None:
        self.handle = await spawn_in_process(self.context.system, self._props, self._name,
                                             startup_timeout=self._startup_timeout, env=self._env)
        self.context.watch(self.handle.ref)

    async def post_stop(self) -> None:
        if self.handle is not None:
            handle, self.handle = self.handle, None
            self.context.unwatch(handle.ref)
            await handle.terminate(self._stop_timeout)
            handle.close_stdin()

    @handler(RecycleProcess)
    async def recycle(self, msg: RecycleProcess) -> None:
        if self.handle is not None:
            self.handle.kill()
            await asyncio.wait_for(self.handle.wait(), 10.0)
        raise ProcessExited(f"process {self.handle.pid if self.handle else '?'} hosting {self._props.label} "
                            f"was recycled: {msg.reason}")

    @handler(Terminated)
    async def on_terminated(self, msg: Terminated) -> None:
        if self.handle is None or msg.actor != self.handle.ref:
            return
        code = await asyncio.wait_for(self.handle.wait(), 5.0) if "connection lost" in msg.reason else self.handle.returncode
        raise ProcessExited(f"process {self.handle.pid} hosting {self._props.label} ended ({msg.reason}; exit code {code})")

    def on_receive(self, msg: Any) -> None:
        assert self.handle is not None
        reply = self.context.defer_reply()
        if reply is None:
            self.handle.ref.tell(msg, sender=self.sender)
        else:
            self.handle.ref.ask_nowait(msg).add_done_callback(reply.complete_from)
