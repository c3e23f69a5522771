"""The sans-I/O parts of supervision, driven synchronously: spec and flag validation,
back-off, the intensity window, deciders, the child state table, and the layering rule."""

from __future__ import annotations

import ast
import math
import pathlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sparklet.actors
import sparklet.supervision
from sparklet.actors import Actor, InvalidTransition, Props, StateMachine
from sparklet.supervision import (
    CHILD_TRANSITIONS,
    Backoff,
    BackoffState,
    ChildSpec,
    ChildState,
    Directive,
    InvalidChildSpec,
    InvalidSupervisorFlags,
    RestartIntensity,
    Supervisor,
    SupervisorFlags,
    decider_from,
    default_decider,
)

pytestmark = pytest.mark.timeout(30)


class Dummy(Actor):
    pass


# -- ChildSpec and SupervisorFlags validation ---------------------------------------------
@pytest.mark.parametrize("field, value", [
    ("id", ""), ("id", "a/b"), ("id", "$auto"), ("id", 7),
    ("start", "Dummy"), ("start", int), ("start", None),
    ("restart", "sometimes"), ("restart", None),
    ("shutdown", 0), ("shutdown", -1.0), ("shutdown", "never"), ("shutdown", math.nan), ("shutdown", math.inf), ("shutdown", True),
    ("type", "daemon"),
    ("backoff", 3.0),
])
def test_a_bad_child_spec_fails_at_construction_naming_field_and_value(field, value):
    kwargs = {"id": "c", "start": Dummy, field: value}
    with pytest.raises(InvalidChildSpec) as caught:
        ChildSpec(**kwargs)
    text = str(caught.value)
    assert field in text and repr(value) in text
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, TypeError)


def test_child_spec_defaults_follow_otp():
    worker = ChildSpec("w", Dummy)
    assert worker.start == Props(actor_class=Dummy)  # an Actor subclass becomes Props
    assert (worker.restart, worker.shutdown, worker.type, worker.backoff) == ("permanent", 5.0, "worker", None)
    assert ChildSpec("s", Dummy, type="supervisor").shutdown == "infinity"
    assert [ChildSpec("x", Dummy, shutdown=s).shutdown_timeout for s in (2, "brutal_kill", "infinity")] == [2.0, 0, None]
    extra = ChildSpec("t", Props.of(Dummy, 1)).with_extra_args("t-1", ("a",))
    assert (extra.id, extra.props.args) == ("t-1", (1, "a"))


@pytest.mark.parametrize("kwargs, field", [
    ({"strategy": "one_for_some"}, "strategy"),
    ({"intensity": -1}, "intensity"), ({"intensity": 1.5}, "intensity"), ({"intensity": True}, "intensity"),
    ({"period": 0}, "period"), ({"period": math.inf}, "period"), ({"period": "5"}, "period"),
])
def test_bad_supervisor_flags_fail_naming_field_and_value(kwargs, field):
    with pytest.raises(InvalidSupervisorFlags, match=field):
        SupervisorFlags(**kwargs)


def test_supervisor_props_checks_the_specs_as_a_set_before_anything_starts():
    with pytest.raises(InvalidChildSpec, match="'a'.*more than one"):
        Supervisor.props(SupervisorFlags(), [ChildSpec("a", Dummy), ChildSpec("a", Dummy)])
    with pytest.raises(InvalidChildSpec, match="exactly one"):
        Supervisor.props(SupervisorFlags("simple_one_for_one"), [ChildSpec("a", Dummy), ChildSpec("b", Dummy)])
    with pytest.raises(InvalidChildSpec, match="ChildSpec objects"):
        Supervisor.props(SupervisorFlags(), [Dummy])  # type: ignore[list-item]


# -- back-off --------------------------------------------------------------------------------
def test_backoff_grows_geometrically_up_to_the_cap():
    b = Backoff(0.5, 10.0, multiplier=3.0, jitter=0.0)
    assert [b.delay(n) for n in range(5)] == [0.5, 1.5, 4.5, 10.0, 10.0]
    assert b.delay(10_000) == 10.0  # no overflow


def test_backoff_jitter_is_bounded_and_deterministic_under_a_seed():
    b = Backoff(1.0, 100.0, jitter=0.2)
    first = [b.delay(n, random.Random(42)) for n in range(6)]
    assert first == [b.delay(n, random.Random(42)) for n in range(6)]
    for n, d in enumerate(first):
        base = min(100.0, 2.0 ** n)
        assert base * 0.8 <= d <= base * 1.2
    assert len({b.delay(2, random.Random(s)) for s in range(20)}) > 1  # it does jitter


def test_backoff_state_counts_consecutive_restarts_and_resets_after_a_stable_run():
    state = BackoffState(Backoff(1.0, 8.0, jitter=0.0, reset_after=30.0))
    assert [state.next_delay(now=0.0) for _ in range(5)] == [1.0, 2.0, 4.0, 8.0, 8.0]  # never ran in between
    state.started(now=200.0)
    assert state.next_delay(now=230.0) == 1.0  # 30 s of running: the streak is forgotten
    assert Backoff(1.0, 8.0).stable_after == 8.0  # default: as long as the longest delay


def test_backoff_state_caps_and_does_not_reset_early():
    state = BackoffState(Backoff(1.0, 8.0, jitter=0.0, reset_after=30.0))
    for _ in range(4):
        state.next_delay(now=0.0)
    state.started(now=100.0)
    assert state.next_delay(now=129.0) == 8.0  # not stable yet: still capped
    assert state.attempt == 5


@pytest.mark.parametrize("kwargs", [
    {"min_delay": -1.0, "max_delay": 1.0}, {"min_delay": 2.0, "max_delay": 1.0}, {"min_delay": 0.0, "max_delay": 0.0},
    {"min_delay": 1.0, "max_delay": 2.0, "multiplier": 0.5}, {"min_delay": 1.0, "max_delay": 2.0, "jitter": 1.0},
    {"min_delay": 1.0, "max_delay": 2.0, "reset_after": 0}, {"min_delay": math.nan, "max_delay": 2.0},
])
def test_bad_backoff_fails_at_construction(kwargs):
    with pytest.raises(ValueError, match="Backoff"):
        Backoff(**kwargs)


# -- restart intensity --------------------------------------------------------------------------
def reference_window(times: list[float], intensity: int, period: float) -> list[bool]:
    """Straight from the definition: restart i is allowed iff at most `intensity` restarts
    (itself included) happened in [t_i - period, t_i] since the last give-up."""
    allowed, since = [], 0
    for i, t in enumerate(times):
        recent = [x for x in times[since: i + 1] if t - x <= period]
        ok = len(recent) <= intensity
        allowed.append(ok)
        if not ok:
            since = i + 1
    return allowed


@settings(max_examples=300, deadline=None)
@given(
    intensity=st.integers(0, 5),
    period=st.floats(0.5, 10.0),
    gaps=st.lists(st.floats(0.0, 4.0), max_size=30),
)
def test_intensity_window_matches_the_reference(intensity, period, gaps):
    times, t = [], 0.0
    for gap in gaps:
        t += gap
        times.append(t)
    window = RestartIntensity(intensity, period)
    got = []
    for now in times:
        ok = window.add(now)
        got.append(ok)
        if ok:
            assert window.problems(now) == []
        else:
            window.clear()  # the supervisor gives up; its next instance starts afresh
    assert got == reference_window(times, intensity, period)


def test_intensity_zero_allows_no_restart():
    assert RestartIntensity(0, 5.0).add(0.0) is False


# -- deciders -----------------------------------------------------------------------------------
def test_decider_from_matches_along_the_mro():
    decide = decider_from({LookupError: Directive.RESUME, KeyError: "stop", Exception: Directive.RESTART})
    assert decide(KeyError()) is Directive.STOP        # most specific wins
    assert decide(IndexError()) is Directive.RESUME    # via LookupError
    assert decide(ValueError()) is Directive.RESTART
    assert decide(KeyboardInterrupt()) is Directive.ESCALATE  # unmatched: the default
    assert decider_from({}, default="resume")(ValueError()) is Directive.RESUME
    assert default_decider(ValueError()) is Directive.RESTART
    with pytest.raises(TypeError):
        decider_from({"ValueError": Directive.STOP})  # type: ignore[dict-item]
    with pytest.raises(TypeError):
        decider_from({ValueError: "explode"})


# -- the child state table -------------------------------------------------------------------------
def test_child_transitions_allow_only_the_table():
    for old in ChildState:
        for new in ChildState:
            fsm = StateMachine("child 'x'", old, CHILD_TRANSITIONS)
            if new in CHILD_TRANSITIONS[old]:
                fsm.move(new, "test")
            else:
                with pytest.raises(InvalidTransition):
                    fsm.move(new, "test")
    assert not any(ChildState.STARTING in targets for targets in CHILD_TRANSITIONS.values())


# -- the invariant checker, without actors ---------------------------------------------------------
def test_find_problems_names_each_broken_invariant():
    from sparklet.supervision._child import Child, RestartJob
    from sparklet.supervision._invariants import find_problems

    rng = random.Random(0)
    a, b, t = Child(ChildSpec("a", Dummy), rng), Child(ChildSpec("b", Dummy), rng), Child(ChildSpec("t", Dummy, restart="temporary"), rng)
    for child in (a, b, t):
        child.move(ChildState.RUNNING, "started")
    children = {"a": a, "b": b, "t": t}
    assert find_problems(children, {}, {}, None) == []
    t.move(ChildState.STOPPED, "exited")  # a temporary child must be forgotten when it exits
    b.move(ChildState.RESTARTING, "failed")  # ... and a restarting one must be in a job
    problems = find_problems(children, {}, {"ghost": (None, "running")}, None)  # type: ignore[dict-item]
    assert any("'ghost' has no spec" in p for p in problems)
    assert any("'t' should have been forgotten" in p for p in problems)
    assert any("'b' is in no pending job" in p for p in problems)
    job = RestartJob("j", "b", [b, a], 0.0, None)
    b.job = job
    assert any("not in start order" in p for p in find_problems({"a": a, "b": b}, {"j": job}, {}, None))


# -- layering: supervision uses only the kernel's public names ------------------------------------------
def test_supervision_imports_only_public_kernel_names():
    package = pathlib.Path(sparklet.supervision.__file__).parent
    public = set(sparklet.actors.__all__)
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sparklet.actors"):
                assert node.module == "sparklet.actors", f"{path.name} imports {node.module}"
                for alias in node.names:
                    assert alias.name in public, f"{path.name} imports {alias.name} from the kernel"
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sparklet."):
                assert node.module.split(".")[1] in ("actors", "supervision"), f"{path.name} imports {node.module}"
            if isinstance(node, ast.Import):
                assert not any(a.name.startswith("sparklet.actors.") for a in node.names)
    # __init__ hands on the public names and nothing else (submodules aside)
    pkg = sparklet.supervision
    exported = {n for n in dir(pkg) if not n.startswith("_") and type(getattr(pkg, n)).__name__ != "module"}
    assert set(pkg.__all__) == exported
