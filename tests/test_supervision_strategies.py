"""OTP's start/stop order, the four strategies and the restart-type grid, with real actors.

Each test checks who was stopped and started, in what order (children log their
lifecycle), and calls ``validate_supervisor`` after every step (``settle``).
"""

from __future__ import annotations

import asyncio

import pytest

from sparklet.actors import ActorStartFailed, Props
from sparklet.supervision import (
    Backoff,
    ChildSpec,
    ChildStartFailed,
    count_children,
    start_child,
    terminate_child,
    which_children,
)

from test_supervision_support import (  # noqa: F401  (fixtures are used by name)
    BEHAVIOUR,
    LOG,
    Boom,
    GetArgs,
    Ping,
    StopSelf,
    Worker,
    fresh_log,
    kinds,
    lifecycle,
    msys,
    settle,
    specs,
    sup_props,
)

pytestmark = [pytest.mark.asyncio, pytest.mark.timeout(15)]


def by_id(infos: list) -> dict:
    return {i.id: i for i in infos}


async def test_children_start_in_order_and_stop_in_reverse(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a", "b", "c")), "sup")
    assert lifecycle() == ["start:a", "start:b", "start:c"]
    await settle(msys, sup)
    assert [i.id for i in await which_children(sup)] == ["a", "b", "c"]
    await msys.stop(sup)
    assert lifecycle() == ["start:a", "start:b", "start:c", "stop:c", "stop:b", "stop:a"]


async def test_one_for_one_restarts_only_the_failed_child(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a", "b", "c")), "sup")
    b = msys.lookup("/user/sup/b")
    LOG.clear()
    b.tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:b", "start:b"]
    assert {i.id: i.restarts for i in await which_children(sup)} == {"a": 0, "b": 1, "c": 0}
    assert await b.ask(Ping()) == "b"  # the same reference reaches the new instance


async def test_one_for_all_halts_the_others_in_reverse_then_starts_all_in_order(msys):
    sup = await msys.spawn(sup_props("one_for_all", specs("a", "b", "c")), "sup")
    LOG.clear()
    msys.lookup("/user/sup/b").tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:c", "stop:b", "stop:a", "start:a", "start:b", "start:c"]
    assert {i.id: (i.state, i.restarts) for i in await which_children(sup)} == {
        "a": ("running", 1), "b": ("running", 1), "c": ("running", 1)}


async def test_rest_for_one_restarts_the_failed_child_and_those_started_after_it(msys):
    sup = await msys.spawn(sup_props("rest_for_one", specs("a", "b", "c", "d")), "sup")
    LOG.clear()
    msys.lookup("/user/sup/c").tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:d", "stop:c", "start:c", "start:d"]
    assert {i.id: i.restarts for i in await which_children(sup)} == {"a": 0, "b": 0, "c": 1, "d": 1}


async def test_simple_one_for_one_adds_children_with_extra_args_and_restarts_each_alone(msys):
    sup = await msys.spawn(sup_props("simple_one_for_one", [ChildSpec("w", Props.of(Worker, "base"))]), "pool")
    assert LOG == [] and await which_children(sup) == []
    refs = [await start_child(sup, (arg,)) for arg in ("x", "y", "z")]
    assert [r.name for r in refs] == ["w-1", "w-2", "w-3"]
    assert await refs[1].ask(GetArgs()) == ("base", "y")
    await settle(msys, sup)
    LOG.clear()
    refs[1].tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:w-2", "start:w-2"]
    assert await refs[1].ask(GetArgs()) == ("base", "y")  # restarted with the same arguments
    counts = await count_children(sup)
    assert (counts.specs, counts.active, counts.workers, counts.supervisors) == (1, 3, 3, 0)


@pytest.mark.parametrize("exit_kind", ["normal", "shutdown", "exception", "killed"])
@pytest.mark.parametrize("restart", ["permanent", "transient", "temporary"])
async def test_restart_type_by_exit_kind(msys, restart, exit_kind):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker, restart=restart)]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    b = msys.lookup("/user/sup/b")
    LOG.clear()
    if exit_kind == "normal":
        b.tell(StopSelf())                          # it stops itself: Terminated "normal"
    elif exit_kind == "shutdown":
        await msys.stop(b, reason="shutdown")       # someone else stops it politely
    elif exit_kind == "exception":
        b.tell(Boom())                              # its handler raises
    else:
        await msys.stop(b, timeout=0)               # someone else kills it: "killed"
    await settle(msys, sup)
    abnormal = exit_kind in ("exception", "killed")
    restarted = restart == "permanent" or (restart == "transient" and abnormal)
    infos = by_id(await which_children(sup))
    assert infos["a"].restarts == 0
    if restarted:
        assert (infos["b"].state, infos["b"].restarts) == ("running", 1)
        assert lifecycle()[-1] == "start:b"
        assert await b.ask(Ping()) == "b"
    elif restart == "temporary":
        assert "b" not in infos  # the spec goes with the child
        assert kinds(msys, "child_deleted", child="b")
    else:
        assert (infos["b"].state, infos["b"].ref) == ("stopped", None)
    assert lifecycle().count("start:b") == (1 if restarted else 0)


async def test_one_for_all_stops_temporary_siblings_for_good(msys):
    children = [ChildSpec("a", Worker), ChildSpec("t", Worker, restart="temporary"), ChildSpec("c", Worker)]
    sup = await msys.spawn(sup_props("one_for_all", children), "sup")
    LOG.clear()
    msys.lookup("/user/sup/c").tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:c", "stop:t", "stop:a", "start:a", "start:c"]
    assert [i.id for i in await which_children(sup)] == ["a", "c"]


async def test_one_for_all_respawns_a_child_whose_cell_is_gone(msys):
    sup = await msys.spawn(sup_props("one_for_all", specs("a", "b", "c")), "sup")
    a = msys.lookup("/user/sup/a")
    LOG.clear()
    a.tell(StopSelf())  # a permanent child exits normally: the whole group restarts
    await settle(msys, sup)
    assert lifecycle() == ["stop:a", "stop:c", "stop:b", "start:a", "start:b", "start:c"]
    assert await a.ask(Ping()) == "a"
    assert kinds(msys, "child_exited", child="a", reason="normal")


async def test_a_child_that_ignores_its_start_is_kept_as_a_spec_unless_temporary(msys):
    BEHAVIOUR.ignore = {"b", "t"}
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker), ChildSpec("t", Worker, restart="temporary"), ChildSpec("c", Worker)]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    await settle(msys, sup)
    infos = by_id(await which_children(sup))
    assert list(infos) == ["a", "b", "c"]
    assert (infos["b"].state, infos["b"].ref) == ("stopped", None)
    counts = await count_children(sup)
    assert (counts.specs, counts.active, counts.workers) == (3, 2, 3)


async def test_a_child_start_failure_fails_the_supervisor_start_naming_the_child(msys):
    BEHAVIOUR.fail_starts = {"b": 1}
    with pytest.raises(ActorStartFailed) as caught:
        await msys.spawn(sup_props("one_for_one", specs("a", "b", "c")), "sup")
    assert "child 'b'" in str(caught.value)
    cause = caught.value.__cause__
    assert isinstance(cause, ChildStartFailed) and cause.child_id == "b"
    assert "cannot start" in str(cause)
    assert lifecycle() == ["start:a", "stop:a"]  # the started ones are stopped again, c never starts
    assert msys.tree().count("sup") == 0


async def test_shutdown_timeout_then_kill(system):
    BEHAVIOUR.hang_stop = {"slow"}
    children = [ChildSpec("a", Worker), ChildSpec("slow", Worker, shutdown=0.2), ChildSpec("c", Worker)]
    sup = await system.spawn(sup_props("one_for_one", children), "sup")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await terminate_child(sup, "slow")
    elapsed = loop.time() - started
    assert 0.15 <= elapsed < 2.0
    assert "hang:slow" in LOG and "stop:slow" not in LOG  # its post_stop was cut short
    assert [e["reason"] for e in kinds(system, "stop", actor="/user/sup/slow")] == ["killed"]
    assert by_id(await which_children(sup))["slow"].state == "stopped"
    await settle(system, sup)


async def test_shutdown_timeout_applies_when_the_supervisor_stops(system):
    BEHAVIOUR.hang_stop = {"slow"}
    children = [ChildSpec("a", Worker), ChildSpec("slow", Worker, shutdown=0.2), ChildSpec("c", Worker)]
    sup = await system.spawn(sup_props("one_for_one", children), "sup")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await system.stop(sup, timeout=10)
    assert 0.15 <= loop.time() - started < 2.0
    assert lifecycle() == ["start:a", "start:slow", "start:c", "stop:c", "stop:a"]


async def test_brutal_kill_skips_post_stop(msys):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker, shutdown="brutal_kill")]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    await terminate_child(sup, "b")
    assert "stop:b" not in LOG
    assert [e["reason"] for e in kinds(msys, "stop", actor="/user/sup/b")] == ["killed"]
    await settle(msys, sup)
    await msys.stop(sup)
    assert lifecycle()[-1] == "stop:a"


async def test_one_for_all_with_backoff_halts_now_and_starts_the_group_after_the_delay(msys):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker, backoff=Backoff(2.0, 2.0, jitter=0.0)), ChildSpec("c", Worker)]
    sup = await msys.spawn(sup_props("one_for_all", children), "sup")
    LOG.clear()
    msys.lookup("/user/sup/b").tell(Boom())
    await settle(msys, sup)
    assert lifecycle() == ["stop:c", "stop:b", "stop:a"]
    assert {i.state for i in await which_children(sup)} == {"restarting"}
    await msys.clock.advance(2.0)
    await settle(msys, sup)
    assert lifecycle()[3:] == ["start:a", "start:b", "start:c"]


async def test_rest_for_one_takes_over_a_pending_restart_of_a_later_child(msys):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker), ChildSpec("c", Worker, backoff=Backoff(5.0, 5.0, jitter=0.0))]
    sup = await msys.spawn(sup_props("rest_for_one", children), "sup")
    msys.lookup("/user/sup/c").tell(Boom())
    await settle(msys, sup)
    assert msys.clock.pending() == 1  # c waits for its back-off
    LOG.clear()
    msys.lookup("/user/sup/a").tell(Boom())  # a's restart covers b and the pending c
    await settle(msys, sup)
    assert lifecycle() == ["stop:b", "stop:a", "start:a", "start:b", "start:c"]
    assert msys.clock.pending() == 0  # c's own timer went with its old restart
    assert {i.id: i.state for i in await which_children(sup)} == {"a": "running", "b": "running", "c": "running"}


async def test_shutdown_order_after_a_respawn(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a", "b", "c")), "sup")
    msys.lookup("/user/sup/b").tell(StopSelf())  # b's cell is gone: it is respawned
    await settle(msys, sup)
    LOG.clear()
    await msys.stop(sup)
    assert lifecycle() == ["stop:c", "stop:b", "stop:a"]
