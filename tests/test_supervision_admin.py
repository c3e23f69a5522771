"""OTP's child administration (each function, each error outcome), introspection
(which_children, count_children, the printable tree), the event trace and validate_state."""

from __future__ import annotations

import pytest

from sparklet.actors import Props, handler, message
from sparklet.supervision import (
    Backoff,
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildSpec,
    ChildStartFailed,
    ChildState,
    InvalidChildSpec,
    OperationNotSupported,
    Supervisor,
    SupervisorFlags,
    SupervisorInvariantError,
    count_children,
    delete_child,
    restart_child,
    start_child,
    supervision_tree,
    terminate_child,
    validate_supervisor,
    which_children,
)

from test_supervision_support import (  # noqa: F401  (fixtures are used by name)
    BEHAVIOUR,
    LOG,
    Boom,
    Ping,
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


async def states(sup) -> dict[str, str]:
    return {i.id: i.state for i in await which_children(sup)}


async def test_start_child_returns_the_new_child_and_raises_each_otp_error(msys):
    sup = await msys.spawn(sup_props("one_for_one", specs("a")), "sup")
    ref = await start_child(sup, ChildSpec("b", Worker))
    assert ref == msys.lookup("/user/sup/b") and await ref.ask(Ping()) == "b"
    with pytest.raises(ChildAlreadyStarted) as started:
        await start_child(sup, ChildSpec("b", Worker))
    assert started.value.ref == ref and started.value.child_id == "b"
    await terminate_child(sup, "b")
    with pytest.raises(ChildAlreadyPresent):
        await start_child(sup, ChildSpec("b", Worker))
    BEHAVIOUR.fail_starts = {"c": 1}
    with pytest.raises(ChildStartFailed, match="child 'c'.*cannot start"):
        await start_child(sup, ChildSpec("c", Worker))
    BEHAVIOUR.ignore = {"d", "e"}
    assert await start_child(sup, ChildSpec("d", Worker)) is None               # kept, not running
    assert await start_child(sup, ChildSpec("e", Worker, restart="temporary")) is None  # dropped
    assert await states(sup) == {"a": "running", "b": "stopped", "d": "stopped"}  # c's spec not kept
    with pytest.raises(InvalidChildSpec):
        await start_child(sup, ("extra", "args"))  # only simple_one_for_one takes extra args
    with pytest.raises(TypeError):
        await start_child(sup, "b")  # type: ignore[arg-type]
    await settle(msys, sup)


async def test_terminate_child_keeps_the_spec_except_temporary_ones(msys):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker), ChildSpec("t", Worker, restart="temporary")]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    await terminate_child(sup, "a")
    await terminate_child(sup, msys.lookup("/user/sup/b"))  # by reference
    await terminate_child(sup, "t")
    assert await states(sup) == {"a": "stopped", "b": "stopped"}
    assert sorted(lifecycle(("stop:",))) == ["stop:a", "stop:b", "stop:t"]
    await terminate_child(sup, "a")  # already stopped: fine, as in OTP
    with pytest.raises(ChildNotFound):
        await terminate_child(sup, "t")
    stranger = await msys.spawn(Worker, "stranger")
    with pytest.raises(ChildNotFound):
        await terminate_child(sup, stranger)
    await settle(msys, sup)
    assert kinds(msys, "child_exited") == []  # terminations are not exits to restart from


async def test_simple_one_for_one_administration(msys):
    sup = await msys.spawn(sup_props("simple_one_for_one", [ChildSpec("w", Worker, restart="transient")]), "pool")
    one = await start_child(sup, ())
    two = await start_child(sup, ["x"])
    assert [i.id for i in await which_children(sup)] == ["w-1", "w-2"]
    await terminate_child(sup, one)
    assert [i.id for i in await which_children(sup)] == ["w-2"]  # a dynamic child's spec goes too
    for op in (restart_child, delete_child):
        with pytest.raises(OperationNotSupported):
            await op(sup, "w-2")
    with pytest.raises(OperationNotSupported):
        await start_child(sup, ChildSpec("other", Worker))
    BEHAVIOUR.ignore = {"w-3"}
    assert await start_child(sup, ()) is None  # ignored dynamic children are not kept
    assert [i.id for i in await which_children(sup)] == ["w-2"]
    assert await two.ask(Ping()) == "w-2"
    await settle(msys, sup)


async def test_restart_child_and_its_error_outcomes(msys):
    children = [ChildSpec("a", Worker), ChildSpec("b", Worker), ChildSpec("slow", Worker, backoff=Backoff(5.0, 5.0, jitter=0.0))]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    with pytest.raises(ChildRunning):
        await restart_child(sup, "a")
    with pytest.raises(ChildNotFound):
        await restart_child(sup, "nope")
    await terminate_child(sup, "a")
    ref = await restart_child(sup, "a")
    assert ref == msys.lookup("/user/sup/a") and await ref.ask(Ping()) == "a"
    assert {i.id: i.restarts for i in await which_children(sup)}["a"] == 1
    msys.lookup("/user/sup/slow").tell(Boom())
    await settle(msys, sup)
    with pytest.raises(ChildRestarting):  # waiting for its back-off: OTP's {error, restarting}
        await restart_child(sup, "slow")
    assert issubclass(ChildRestarting, ChildRunning)
    await terminate_child(sup, "b")
    BEHAVIOUR.fail_starts = {"b": 1}
    with pytest.raises(ChildStartFailed, match="child 'b'"):
        await restart_child(sup, "b")
    BEHAVIOUR.ignore = {"b"}
    assert await restart_child(sup, "b") is None
    assert await states(sup) == {"a": "running", "b": "stopped", "slow": "restarting"}
    await settle(msys, sup)


async def test_delete_child_and_its_error_outcomes(msys):
    children = [ChildSpec("a", Worker), ChildSpec("slow", Worker, backoff=Backoff(5.0, 5.0, jitter=0.0))]
    sup = await msys.spawn(sup_props("one_for_one", children), "sup")
    with pytest.raises(ChildRunning):
        await delete_child(sup, "a")
    msys.lookup("/user/sup/slow").tell(Boom())
    await settle(msys, sup)
    with pytest.raises(ChildRestarting):
        await delete_child(sup, "slow")
    await terminate_child(sup, "a")
    await delete_child(sup, "a")
    assert await states(sup) == {"slow": "restarting"}
    with pytest.raises(ChildNotFound):
        await delete_child(sup, "a")
    await terminate_child(sup, "slow")  # cancels its pending restart
    await msys.clock.advance(10.0)
    assert await states(sup) == {"slow": "stopped"}
    assert lifecycle().count("start:slow") == 1  # only its first start
    await settle(msys, sup)


async def test_which_children_and_count_children(msys):
    sub = ChildSpec("sub", sup_props("one_for_one", specs("w")), type="supervisor")
    children = [ChildSpec("a", Worker), sub, ChildSpec("t", Worker, restart="transient")]
    top = await msys.spawn(sup_props("one_for_one", children), "top")
    await terminate_child(top, "t")
    infos = await which_children(top)
    assert [(i.id, i.type, i.restart, i.state, i.restarts) for i in infos] == [
        ("a", "worker", "permanent", "running", 0),
        ("sub", "supervisor", "permanent", "running", 0),
        ("t", "worker", "transient", "stopped", 0),
    ]
    assert [i.ref for i in infos] == [msys.lookup("/user/top/a"), msys.lookup("/user/top/sub"), None]
    counts = await count_children(top)
    assert (counts.specs, counts.active, counts.supervisors, counts.workers) == (3, 2, 1, 2)
    assert ChildSpec("s", Worker, type="supervisor").shutdown == "infinity"  # OTP's default for supervisors
    await settle(msys, top)


async def test_supervision_tree_prints_nested_supervisors_with_states_and_restarts(msys):
    sub = ChildSpec("sub", sup_props("rest_for_one", specs("w1", "w2")), type="supervisor")
    children = [ChildSpec("x", Worker), sub, ChildSpec("t", Worker, restart="transient")]
    top = await msys.spawn(sup_props("one_for_one", children), "top")
    msys.lookup("/user/top/sub/w2").tell(Boom())
    await terminate_child(top, "t")
    await settle(msys, top, msys.lookup("/user/top/sub"))
    tree = await supervision_tree(top)
    assert str(tree) == "\n".join([
        "top [one_for_one intensity=3/5s recent=0]",
        "├── x (worker, permanent) running restarts=0",
        "├── sub (supervisor, permanent) running restarts=0 [rest_for_one intensity=3/5s recent=1]",
        "│   ├── w1 (worker, permanent) running restarts=0",
        "│   └── w2 (worker, permanent) running restarts=1",
        "└── t (worker, transient) stopped restarts=0",
    ])
    assert tree.find("w2").info.restarts == 1


async def test_the_event_trace_says_who_restarted_whom_and_why(msys):
    sup = await msys.spawn(sup_props("one_for_all", specs("a", "b")), "sup")
    msys.lookup("/user/sup/b").tell(Boom(text="disk full"))
    await settle(msys, sup)
    ours = ("directive", "restart_scheduled", "child_started", "max_intensity", "child_terminated")
    trace = [e for e in msys.events if e["actor"] == "/user/sup" and e["kind"] in ours]
    assert [(e["kind"], e["child"]) for e in trace] == [
        ("child_started", "a"), ("child_started", "b"),
        ("directive", "b"), ("restart_scheduled", "b"), ("child_started", "a"), ("child_started", "b"),
    ]
    directive, scheduled = trace[2], trace[3]
    assert (directive["directive"], directive["error"]) == ("restart", "ValueError: disk full")
    assert (scheduled["group"], scheduled["delay"], scheduled["reason"]) == (["a", "b"], 0.0, "ValueError: disk full")
    assert [e["restarts"] for e in trace[4:]] == [1, 1]
    assert {e["actor"] for e in kinds(msys, "restart")} == {"/user/sup/a", "/user/sup/b"}  # the kernel's side


@message
class Corrupt:
    child_id: str


class CorruptibleSupervisor(Supervisor):
    """Breaks its own bookkeeping on request, to show that validate_state notices."""

    @handler(Corrupt)
    def corrupt(self, msg: Corrupt) -> None:
        self._children[msg.child_id].fsm.state = ChildState.STOPPED  # bypasses the transition table


async def test_validate_state_reports_a_broken_invariant(msys):
    sup = await msys.spawn(Props.of(CorruptibleSupervisor, SupervisorFlags(), specs("a")), "sup")
    await validate_supervisor(sup)
    await sup.ask(Corrupt("a"))
    with pytest.raises(SupervisorInvariantError, match="stopped child 'a' has a live running cell"):
        await validate_supervisor(sup)


class AppSupervisor(Supervisor):
    """OTP style: the flags and children come from init()."""

    def init(self):
        return SupervisorFlags("rest_for_one", intensity=1, period=1.0), specs("db", "web")


async def test_a_subclass_may_give_its_flags_and_children_from_init(msys):
    sup = await msys.spawn(AppSupervisor, "app")
    assert [i.id for i in await which_children(sup)] == ["db", "web"]
    assert lifecycle() == ["start:db", "start:web"]
    await settle(msys, sup)
