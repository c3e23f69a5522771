"""Location transparency: systems in one process over real sockets, and actors in real subprocesses."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from sparklet.actors import (
    Actor,
    ActorStartFailed,
    ActorSystem,
    AskTimeout,
    ConnectionLost,
    ProcessActor,
    Props,
    RemoteActorError,
    Kill,
    Terminated,
    handler,
    message,
    spawn_in_process,
)
from sparklet.actors._handshake import generate_secret

from test_actors import Add, Counter, Fail, Get, Slow


@message
class Pid:
    pass


class PidCounter(Counter):
    @handler(Pid)
    def pid(self, msg):
        return os.getpid()


class Unpicklable(Exception):
    def __reduce__(self):
        raise TypeError("no pickling")


@message
class RaiseOdd:
    pass


class Odd(Actor):
    @handler(RaiseOdd)
    def odd(self, msg):
        raise Unpicklable("odd one")


@pytest.fixture(params=["tcp", "unix"])
async def pair(request, tmp_path):
    a = ActorSystem("a", strict=True, tracing=True)
    b = ActorSystem("b", strict=True, tracing=True)
    await a.start()
    await b.start()
    if request.param == "tcp":
        await a.listen()
        await b.listen(secret=a.secret)
    else:
        await a.listen(f"unix://{tmp_path}/a.sock")
        await b.listen(f"unix://{tmp_path}/b.sock", secret=a.secret)
    yield a, b
    await b.shutdown()
    await a.shutdown()


async def test_tell_ask_and_errors_across_systems(pair):
    a, b = pair
    await a.spawn(Counter, "c")
    remote = b.ref_for(a.address, "/user/c")
    for i in range(200):
        remote.tell(Add(i))
    total, seen = await remote.ask(Get())
    assert total == sum(range(200)) and seen == tuple(range(200))
    with pytest.raises(RuntimeError, match="far away") as info:
        await remote.ask(Fail("far away"))
    assert "remote traceback" in info.value.__notes__[0]
    await a.spawn(Odd, "odd")
    with pytest.raises(RemoteActorError, match="Unpicklable: odd one") as info:
        await b.ref_for(a.address, "/user/odd").ask(RaiseOdd())
    assert "test_remote" in info.value.remote_type
    with pytest.raises(AskTimeout, match=r"/user/c to Slow within 0.05s"):
        await remote.ask(Slow(1), timeout=0.05)


async def test_kill_crosses_processes_and_the_remote_actor_restarts(pair):
    a, b = pair
    ref = await a.spawn(Counter, "to-kill")
    remote = b.ref_for(a.address, "/user/to-kill")
    remote.tell(Add(3))
    remote.tell(Kill("remote chaos"))
    remote.tell(Add(4))
    assert await remote.ask(Get()) == (4, (4,))
    assert a.restart_count(ref) == 1


async def test_refs_travel_inside_messages_and_replies_route_back(pair):
    a, b = pair
    counter_b = await b.spawn(Counter, "counter-b")
    forwarder_a = await a.spawn(Counter, "fwd")
    from test_actors import Forward

    # b asks a's actor to tell b's actor: the ref to counter_b crosses twice.
    b.ref_for(a.address, "/user/fwd").tell(Forward(counter_b, 5))
    for _ in range(100):
        if (await counter_b.ask(Get()))[0] == 5:
            break
        await asyncio.sleep(0.01)
    assert (await counter_b.ask(Get()))[0] == 5
    assert forwarder_a.path == "/user/fwd"


async def test_remote_watch_and_dead_target(pair):
    a, b = pair
    target = await a.spawn(Counter, "target")
    remote = b.ref_for(a.address, "/user/target")
    waiting = asyncio.ensure_future(b.wait_terminated(remote, timeout=5))
    await asyncio.sleep(0.05)
    await a.stop(target)
    assert await waiting == Terminated(remote, "normal")
    # Watching an actor that does not exist there: Terminated at once (well, one round trip).
    ghost = b.ref_for(a.address, "/user/ghost")
    assert (await b.wait_terminated(ghost, timeout=5)).reason == "not found"


async def test_trace_ids_link_a_remote_receive_to_its_send(pair):
    a, b = pair
    await a.spawn(Counter, "c")
    b.ref_for(a.address, "/user/c").tell(Add(1))
    await b.ref_for(a.address, "/user/c").ask(Get())
    send = next(e for e in b.events.select(kind="send") if e["msg"] == "Add")
    receive = next(e for e in a.events.select(kind="receive", actor="/user/c") if e["msg"] == "Add")
    assert receive["id"] == send["id"] is not None
    assert send["to"].endswith("/user/c") and send["pid"] == receive["pid"] == os.getpid()


async def test_message_to_missing_remote_actor_is_a_dead_letter_there(pair):
    a, b = pair
    b.ref_for(a.address, "/user/nobody").tell(Add(1))
    await a.spawn(Counter, "c")
    await b.ref_for(a.address, "/user/c").ask(Get())  # same connection, so the first frame arrived
    assert a.dead_letters.recent[-1].recipient == "/user/nobody"


async def test_wrong_secret_is_refused_and_nothing_is_delivered():
    async with ActorSystem("a", strict=True) as a, ActorSystem("intruder", strict=True) as intruder:
        await a.listen()
        await intruder.listen(secret=generate_secret())
        await a.spawn(Counter, "c")
        remote = intruder.ref_for(a.address, "/user/c")
        remote.tell(Add(1000))
        with pytest.raises((ConnectionLost, AskTimeout)):
            await remote.ask(Get(), timeout=3)
        assert (await a.lookup("/user/c").ask(Get()))[0] == 0
        assert a.transport_statistics()["handshake_failures"] >= 1


async def test_actor_in_a_subprocess_tell_ask_and_sigkill_gives_terminated():
    async with ActorSystem("driver", strict=True) as system:
        handle = await spawn_in_process(system, PidCounter, "counter")
        assert handle.pid != os.getpid()
        assert await handle.ref.ask(Pid()) == handle.pid
        for i in range(1000):
            handle.ref.tell(Add(i))
        assert (await handle.ref.ask(Get()))[0] == sum(range(1000))
        watching = asyncio.ensure_future(system.wait_terminated(handle.ref, timeout=10))
        pending_ask = handle.ref.ask_nowait(Slow(30))
        await asyncio.sleep(0.1)
        os.kill(handle.pid, signal.SIGKILL)
        terminated = await watching
        assert terminated.abnormal and "connection lost" in terminated.reason
        with pytest.raises(ConnectionLost, match="lost while asking .*/user/counter with Slow"):
            await pending_ask
        assert await handle.wait() == -signal.SIGKILL
        handle.close_stdin()


async def test_subprocess_start_failure_is_reported_with_the_remote_error():
    class BadStart(Actor):
        def pre_start(self):
            raise ValueError("no config in the child")

    async with ActorSystem("driver", strict=True) as system:
        with pytest.raises(ActorStartFailed, match="no config in the child"):
            await spawn_in_process(system, BadStart, "bad")


async def test_subprocess_exits_when_its_parent_system_shuts_down():
    system = ActorSystem("driver", strict=True)
    await system.start()
    handle = await spawn_in_process(system, Counter, "c")
    await system.shutdown()  # the connection goes; the child notices and exits by itself
    assert await asyncio.wait_for(handle.wait(), 10) == 0
    handle.close_stdin()


async def test_process_actor_is_respawned_when_its_process_is_killed():
    async with ActorSystem("driver", strict=True, tracing=True) as system:
        proxy = await system.spawn(Props.of(ProcessActor, PidCounter, "worker"), "worker")
        first_pid = await proxy.ask(Pid())
        proxy.tell(Add(5))
        assert (await proxy.ask(Get()))[0] == 5
        os.kill(first_pid, signal.SIGKILL)
        # Once the proxy has seen its process die, the guardian restarts it, which starts a
        # new process; the ref stays valid and an ask sent meanwhile waits for the new process.
        # (A message forwarded before the death was noticed is lost with the process.)
        for _ in range(500):
            if system.events.select(kind="failure", actor="/user/worker"):
                break
            await asyncio.sleep(0.01)
        assert system.state_of(proxy) in ("suspended", "restarting")
        second_pid = await proxy.ask(Pid(), timeout=20)
        assert second_pid != first_pid
        assert (await proxy.ask(Get()))[0] == 0  # fresh state in the new process
        assert system.restart_count(proxy) == 1
        failure = system.events.select(kind="failure", actor="/user/worker")[0]
        assert "ProcessExited" in failure["error"] and str(first_pid) in failure["error"]


async def test_supervisor_respawns_a_killed_process_backed_child():
    from sparklet.supervision import ChildSpec, Supervisor, SupervisorFlags, which_children

    async with ActorSystem("driver", strict=True, tracing=True) as system:
        sup = await system.spawn(Supervisor.props(
            SupervisorFlags("one_for_one", intensity=3, period=30),
            [ChildSpec("local", Counter), ChildSpec("remote", Props.of(ProcessActor, PidCounter, "remote"))],
        ), "sup")
        remote = system.lookup("/user/sup/remote")
        first_pid = await remote.ask(Pid())
        os.kill(first_pid, signal.SIGKILL)
        for _ in range(1000):
            infos = {i.id: i for i in await which_children(sup)}
            if infos["remote"].restarts == 1 and infos["remote"].state == "running":
                break
            await asyncio.sleep(0.01)
        assert infos["remote"].restarts == 1 and infos["local"].restarts == 0
        assert await remote.ask(Pid(), timeout=20) not in (first_pid, os.getpid())
        directive = system.events.select(kind="directive", actor="/user/sup")[-1]
        assert directive["child"] == "remote"
