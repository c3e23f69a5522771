"""Actors, messages and fixtures shared by the supervision tests.

Imported by the other ``test_supervision_*`` modules as ``test_supervision_support``
(``tests`` is on ``pythonpath``); pytest also collects it, and finds no tests. Children
record their lifecycle in the module-level ``LOG`` so a test can check who was started
and stopped, in what order; ``BEHAVIOUR`` makes chosen children misbehave. Both are
module level (not Props arguments) because ``start_child`` cloudpickles specs, and the
classes here pickle by reference, sharing them.
"""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from sparklet.actors import Actor, ActorSystem, Ignore, ManualClock, Props, handler, message
from sparklet.supervision import ChildSpec, Supervisor, SupervisorFlags, validate_supervisor

from support import assert_no_tasks_left

LOG: list[str] = []


@dataclasses.dataclass
class Behaviour:
    fail_starts: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> starts that fail (-1: all)
    fail_restarts_only: set[str] = dataclasses.field(default_factory=set)  # first start ok, restarts fail
    ignore: set[str] = dataclasses.field(default_factory=set)
    hang_stop: set[str] = dataclasses.field(default_factory=set)
    stop_in_start: set[str] = dataclasses.field(default_factory=set)
    attempts: dict[str, int] = dataclasses.field(default_factory=dict)  # name -> pre_start calls so far


BEHAVIOUR = Behaviour()


@pytest.fixture(autouse=True)
def fresh_log():
    LOG.clear()
    BEHAVIOUR.__init__()  # type: ignore[misc]
    yield
    LOG.clear()
    BEHAVIOUR.__init__()  # type: ignore[misc]


@pytest.fixture
async def msys():
    """A strict, tracing system on a ManualClock; teardown leaves no task behind."""
    system = ActorSystem("sup", strict=True, tracing=True, clock=ManualClock())
    await system.start()
    try:
        yield system
    finally:
        await system.shutdown()
        assert_no_tasks_left()


@message
class Boom:
    kind: str = "value"   # value | key | runtime | custom
    text: str = "boom"


@message
class Ping:
    pass


@message
class StopSelf:
    reason: str = "normal"


@message
class Record:
    item: str


@message
class GetSeen:
    pass


@message
class GetArgs:
    pass


class CustomError(Exception):
    pass


_ERRORS = {"value": ValueError, "key": KeyError, "runtime": RuntimeError, "custom": CustomError}


class Worker(Actor):
    """Logs start:/stop:/boom: lines; fails, ignores, hangs as BEHAVIOUR says."""

    def __init__(self, *args: object) -> None:
        super().__init__()
        self.args = args
        self.seen: list[str] = []

    def pre_start(self) -> None:
        name = self.ref.name
        first = BEHAVIOUR.attempts.get(name, 0) == 0
        BEHAVIOUR.attempts[name] = BEHAVIOUR.attempts.get(name, 0) + 1
        left = BEHAVIOUR.fail_starts.get(name, 0)
        if left:
            BEHAVIOUR.fail_starts[name] = left - 1 if left > 0 else left
            LOG.append(f"start-failed:{name}")
            raise RuntimeError(f"{name} cannot start")
        if name in BEHAVIOUR.fail_restarts_only and not first:
            LOG.append(f"start-failed:{name}")
            raise RuntimeError(f"{name} cannot restart")
        if name in BEHAVIOUR.ignore:
            LOG.append(f"ignore:{name}")
            raise Ignore()
        if name in BEHAVIOUR.stop_in_start:
            self.ref.tell(StopSelf())
        LOG.append(f"start:{name}")

    async def post_stop(self) -> None:
        name = self.ref.name
        if name in BEHAVIOUR.hang_stop:
            LOG.append(f"hang:{name}")
            await asyncio.sleep(3600)
        LOG.append(f"stop:{name}")

    @handler(Boom)
    def boom(self, msg: Boom) -> None:
        LOG.append(f"boom:{self.ref.name}")
        raise _ERRORS[msg.kind](msg.text)

    @handler(Ping)
    def ping(self, msg: Ping) -> str:
        return self.ref.name

    @handler(StopSelf)
    def stop_self(self, msg: StopSelf) -> None:
        self.context.stop_self(msg.reason)

    @handler(Record)
    def record(self, msg: Record) -> tuple:
        self.seen.append(msg.item)
        return tuple(self.seen)

    @handler(GetSeen)
    def get_seen(self, msg: GetSeen) -> tuple:
        return tuple(self.seen)

    @handler(GetArgs)
    def get_args(self, msg: GetArgs) -> tuple:
        return self.args


def specs(*ids: str, **overrides: object) -> list[ChildSpec]:
    return [ChildSpec(i, Props.of(Worker), **overrides) for i in ids]  # type: ignore[arg-type]


def sup_props(strategy: str = "one_for_one", children: list[ChildSpec] | None = None, **kw: object) -> Props:
    intensity = kw.pop("intensity", 3)
    period = kw.pop("period", 5.0)
    return Supervisor.props(SupervisorFlags(strategy, intensity, period), children or [], **kw)  # type: ignore[arg-type]


async def quiesce(system: ActorSystem, stable_rounds: int = 30, limit: int = 20_000) -> None:
    """Let the loop run until no new event was recorded for ``stable_rounds`` turns.
    (Every send, receive, spawn, stop and restart records an event in a tracing system.)"""
    last, stable = -1, 0
    for _ in range(limit):
        await asyncio.sleep(0)
        n = system.events.statistics()["events"] + system.events.dropped
        stable = stable + 1 if n == last else 0
        last = n
        if stable >= stable_rounds:
            return
    raise AssertionError("the system did not quiesce")


async def settle(system: ActorSystem, *sups: object) -> None:
    """Quiesce, then check every given supervisor's invariants."""
    await quiesce(system)
    for sup in sups:
        await validate_supervisor(sup)  # type: ignore[arg-type]


def lifecycle(prefixes: tuple[str, ...] = ("start:", "stop:")) -> list[str]:
    return [line for line in LOG if line.startswith(prefixes)]


def kinds(system: ActorSystem, kind: str, **match: object) -> list[dict]:
    return [e for e in system.events.select(kind=kind) if all(e.get(k) == v for k, v in match.items())]
