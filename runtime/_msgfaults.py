"""Message and link faults: the fault plan's interposer (see docs/message-faults.md).

One :class:`MessageFaults` is installed (``system.interpose``) in every actor system of a
context: the driver's, and each executor process's under ``local[N]`` (under
``inproc[N]`` the executors live in the driver's system, so its one interposer sees
everything). Each message is decided in the system that *sends* it, so a message between
two processes is decided once, before it reaches the wire.

Addressing. A message's ends have names: its actor path, and a role: ``driver`` plus the
actor's name for the driver's actors (``task-scheduler``, ``dag-scheduler``,
``block-manager-master``, ``map-output-tracker``, ``job-manager``), ``executor:exec-N`` for
an executor. A fault's ``sender`` / ``recipient`` globs match any of those names.
Messages sent from outside any actor count as the host's (the driver's code, or the
executor in its process; executors' task threads send as their executor). ``nth`` and
``count`` count matching messages per fault and per sending end: each sender's
``nth`` .. ``nth + count - 1`` matching messages are hit (each a ``FaultInjected``).

Never interposed: the fault reports themselves and swizzle control (``FaultFired``,
``SetClogged``), and under ``local[N]`` the driver-local hop to an executor's stand-in
(the wire hop behind it is decided instead).

Link faults. ``cut_link`` fires on the nth message from ``sender`` to ``recipient`` and
cuts that link both ways for ``seconds``. The message that tripped it is lost with the
connection (an ask fails at once with ``ConnectionLost``, a tell is a dead letter). Across
processes the socket really closes (``ActorSystem.cut_link``: pending asks fail with
``ConnectionLost``, redials are refused until the cut ends, queued frames wait for them);
inside one system later messages between the two ends wait for the cut to end.
``swizzle_clog`` (driver only) picks ``count`` executors (a seeded random number when
``count`` is unset) and a seeded clog order and release order; from its trigger message
on, every ``seconds`` it clogs the next one (messages to and from it are held, not
dropped), then releases them one by one in the release order. Clogs are driven by the
driver: executors hear of them through ``SetClogged``, which is never held.

Invariants: everything held is released by the end of its fault (cut end, unclog, reorder
complete) or by ``close()``; decisions depend only on the plan, the seed and the
per-sender message counts, never on a shared random stream.
"""

from __future__ import annotations

import fnmatch
import hashlib
import random
import re
import time
from typing import Any, Callable

from sparklet.actors import DELIVER, DROP, ActorSystem, Delay, Duplicate, Hold, Refuse, Send, message
from sparklet.runtime._faults import _ANY_MESSAGE_DEFAULT, Fault, FaultPlan

__all__ = ["MessageFaults", "SetClogged", "install_in_driver", "install_in_executor"]

_EXECUTOR_PATH = re.compile(r"^(/user/sparklet/executors|/user)/(exec-\d+)$")
_DRIVER_ROOT = "/user/sparklet/"
_STAND_INS = "/user/sparklet/executors/"
_EXEMPT = frozenset({"FaultFired", "SetClogged", "reply:FaultFired"})


@message(tag="sparklet.SetClogged")
class SetClogged:
    """The driver's swizzle says which executors are clogged now, and the order they will be
    released in (a message between two clogged ends waits for the later release)."""

    clogged: tuple
    release_order: tuple


Report = Callable[[int, Fault, str, str], None]  # (index, fault, executor id or "driver", where)


def _seeded(seed: int, *parts: Any) -> random.Random:
    digest = hashlib.blake2b(repr((seed, *parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


class MessageFaults:
    """The interposer applying a plan's message and link faults in one actor system."""

    def __init__(self, plan: FaultPlan, system: ActorSystem, *, host: str, report: Report,
                 executor_ids: tuple[str, ...] = (), driver_address: str | None = None,
                 stand_ins: bool = False, tell_executors: Callable[[Any], None] | None = None,
                 report_and_wait: Callable[..., Any] | None = None) -> None:
        self._plan = plan
        self._system = system
        self._host = host  # "driver" or this process's executor id
        self._report = report
        self._executor_ids = executor_ids
        self._driver_address = driver_address
        self._stand_ins = stand_ins  # the driver under local[N]: /user/sparklet/executors/* are stand-ins
        self._tell_executors = tell_executors
        # Like report, but returns a future done once the report arrived: a cut of the link
        # the report travels on waits for it, or the report would be lost with the link.
        self._report_and_wait = report_and_wait
        self._faults = plan.message_faults()
        self._counts: dict[tuple[int, str], int] = {}  # (fault index, sending end) -> matching messages seen
        self._timers: list[Any] = []  # Invariant: every timer this object started and has not cancelled
        self._cuts: dict[frozenset, float] = {}  # in-system cuts: ends -> clock time the cut ends
        self._clogged: tuple[str, ...] = ()
        self._release_order: tuple[str, ...] = ()
        self._reorders: dict[str, list] = {}  # gate -> [held count, fault index, fault, sender]
        self._swizzled = False
        self.closed = False

    # -- names --------------------------------------------------------------------------------------
    def names(self, path: str | None, address: str | None) -> tuple[str, ...]:
        """The names a fault's sender/recipient globs are matched against."""
        if not path:
            return ("driver",) if self._host == "driver" else (f"executor:{self._host}",)
        match = _EXECUTOR_PATH.match(path)
        if match is not None:
            if self._stand_ins and match.group(1) == "/user/sparklet/executors":
                return (path, "driver")  # a stand-in: only its wire hop is the executor's
            return (path, f"executor:{match.group(2)}")
        if path.startswith(_DRIVER_ROOT):
            return (path, "driver", path.rsplit("/", 1)[1])
        if self._host != "driver" and (address is None or address == self._system.address):
            return (path, f"executor:{self._host}")
        return (path, "driver")

    @staticmethod
    def _executor_of(names: tuple[str, ...]) -> str | None:
        for name in names:
            if name.startswith("executor:"):
                return name[len("executor:"):]
        return None

    @staticmethod
    def _matches(glob: str | None, names: tuple[str, ...]) -> bool:
        return glob is None or any(fnmatch.fnmatchcase(name, glob) for name in names)

    # -- the decision ---------------------------------------------------------------------------------
    def decide(self, send: Send) -> Any:
        if self.closed or send.message_type in _EXEMPT:
            return DELIVER
        own = self._system.address
        if self._stand_ins and (send.address is None or send.address == own) and (
                send.recipient.startswith(_STAND_INS) or (send.kind == "reply" and (send.sender or "").startswith(_STAND_INS))):
            return DELIVER  # the driver-local hop to or from an executor's stand-in
        sender = self.names(send.sender, own)
        recipient = self.names(send.recipient, send.address)
        held = self._held_by_link_faults(sender, recipient)
        if held is not None:
            return held
        for index, fault in self._faults:
            decision = self._apply(index, fault, send, sender, recipient)
            if decision is not None:
                return decision
        return DELIVER

    def _held_by_link_faults(self, sender: tuple, recipient: tuple) -> Any:
        ends = [self._executor_of(sender), self._executor_of(recipient)]
        clogged = [end for end in ends if end is not None and end in self._clogged]
        if clogged:
            last = max(clogged, key=self._release_order.index)
            return Hold(f"clog:{last}")
        if self._cuts:
            key = frozenset((self._end(sender), self._end(recipient)))
            if key in self._cuts:
                return Hold("cut:" + "|".join(sorted(key)))
        return None

    @staticmethod
    def _end(names: tuple[str, ...]) -> str:
        """One name per end, for link bookkeeping: the executor id, or "driver"."""
        for name in names:
            if name.startswith("executor:"):
                return name[len("executor:"):]
        return "driver"

    def _apply(self, index: int, fault: Fault, send: Send, sender: tuple, recipient: tuple) -> Any:
        glob = "*" if fault.message == _ANY_MESSAGE_DEFAULT else fault.message
        if not (fnmatch.fnmatchcase(send.message_type, glob) and self._matches(fault.sender, sender)
                and self._matches(fault.recipient, recipient)):
            return None
        if fault.kind == "swizzle_clog" and self._host != "driver":
            return None  # the driver conducts a swizzle; executors only follow SetClogged
        end = self._end(sender)
        key = (index, end)
        n = self._counts[key] = self._counts.get(key, 0) + 1
        nth = fault.nth or 1
        count = fault.count or (2 if fault.kind == "reorder_messages" else 1)
        if fault.kind in ("cut_link", "swizzle_clog"):
            count = 1  # a link fault fires once
        if not nth <= n < nth + count or not self._plan.fires(index, (end, n)):
            return None
        where = f"{send.message_type} #{n} from {self._label(sender)} to {self._label(recipient)}"
        culprit = self._executor_of(sender) or self._executor_of(recipient) or "driver"
        kind = fault.kind
        if kind == "drop_message":
            self._report(index, fault, culprit, f"dropped {where}")
            return DROP
        if kind == "delay_message":
            self._report(index, fault, culprit, f"delayed {where} by {fault.seconds:g}s")
            return Delay(fault.seconds)
        if kind == "duplicate_message":
            self._report(index, fault, culprit, f"duplicated {where}")
            return Duplicate(2)
        if kind == "reorder_messages":
            return self._reorder(index, fault, count, end, where, culprit)
        if kind == "cut_link":
            return self._cut(index, fault, send, sender, recipient, where, culprit)
        self._swizzle(index, fault, where)
        return DELIVER

    @staticmethod
    def _label(names: tuple[str, ...]) -> str:
        return names[-1] if len(names) > 1 else names[0]

    # -- reorder ------------------------------------------------------------------------------------------
    def _reorder(self, index: int, fault: Fault, count: int, sender: str, where: str, culprit: str) -> Any:
        gate = f"reorder:{index}:{sender}"
        state = self._reorders.get(gate)
        if state is None:
            state = self._reorders[gate] = [0, index, fault, culprit]
            wait = fault.seconds if fault.seconds > 0 else 1.0  # a stream that stops early is released anyway
            self._later(wait, lambda: self._release_reorder(gate))
        state[0] += 1
        if state[0] >= count:
            self._later(0.0, lambda: self._release_reorder(gate))  # after this one joins the gate
        return Hold(gate)

    def _release_reorder(self, gate: str) -> None:
        state = self._reorders.pop(gate, None)
        if state is None:
            return
        held, index, fault, culprit = state
        order = list(range(held))
        _seeded(self._plan.seed, index, gate).shuffle(order)
        if held > 1 and order == sorted(order):
            order.reverse()  # a reorder that keeps the order would be no fault at all
        self._system.release(gate, order)
        self._report(index, fault, culprit, f"reordered {held} message(s) of {gate.split(':', 2)[2]}: "
                                            f"delivered in the order {order}")

    # -- cut_link -------------------------------------------------------------------------------------------
    def _cut(self, index: int, fault: Fault, send: Send, sender: tuple, recipient: tuple, where: str, culprit: str) -> Any:
        own = self._system.address
        reason = f"the link {self._end(sender)} <-> {self._end(recipient)} was cut (fault injection)"
        said = f"cut the link {self._end(sender)} <-> {self._end(recipient)} for {fault.seconds:g}s at {where}"
        if send.address is not None and send.address != own:
            # Across processes the socket really closes (pending asks fail, redials are refused
            # until the cut ends); the message that tripped it is lost with the connection.
            address = send.address
            if address == self._driver_address and self._report_and_wait is not None:
                def cut(report: Any) -> None:
                    if not report.cancelled():
                        report.exception()  # the cut goes ahead whether or not the report was answered
                    if not self.closed:
                        self._system.cut_link(address, fault.seconds)
                self._report_and_wait(index, fault, culprit, said).add_done_callback(cut)
            else:
                self._report(index, fault, culprit, said)
                self._system.cut_link(address, fault.seconds)
            return Refuse(reason)
        self._report(index, fault, culprit, said)
        key = frozenset((self._end(sender), self._end(recipient)))
        self._cuts[key] = self._system.clock.now() + fault.seconds
        self._later(fault.seconds, lambda: self._heal(key))
        return Refuse(reason)

    def _heal(self, key: frozenset) -> None:
        if self._cuts.pop(key, None) is not None:
            self._system.release("cut:" + "|".join(sorted(key)))

    # -- swizzle_clog ---------------------------------------------------------------------------------------
    def _swizzle(self, index: int, fault: Fault, where: str) -> None:
        if self._swizzled or not self._executor_ids:
            return
        self._swizzled = True
        rng = _seeded(self._plan.seed, index, "swizzle")
        ids = list(self._executor_ids)
        size = min(fault.count, len(ids)) if fault.count else rng.randint(1, len(ids))
        clog_order = rng.sample(ids, size)
        release_order = rng.sample(clog_order, size)
        self._release_order = tuple(release_order)
        self._report(index, fault, "driver", f"swizzle started at {where}: clog {clog_order}, release {release_order}, "
                                             f"every {fault.seconds:g}s")
        steps = [(True, e) for e in clog_order] + [(False, e) for e in release_order]
        for step, (clog, executor) in enumerate(steps):
            self._later(step * fault.seconds, lambda clog=clog, executor=executor, step=step:
                        self._swizzle_step(index, fault, clog, executor, step, len(steps)))

    def _swizzle_step(self, index: int, fault: Fault, clog: bool, executor: str, step: int, steps: int) -> None:
        clogged = self._clogged + (executor,) if clog else tuple(e for e in self._clogged if e != executor)
        self._report(index, fault, executor, f"{'clog' if clog else 'unclog'} {executor} (step {step + 1} of {steps})")
        self.set_clogged(clogged, self._release_order)
        if self._tell_executors is not None:
            self._tell_executors(SetClogged(clogged, self._release_order))

    def set_clogged(self, clogged: tuple, release_order: tuple) -> None:
        """Follow the driver's swizzle: hold messages to and from ``clogged``; release the others'."""
        released = [e for e in self._clogged if e not in clogged]
        self._clogged, self._release_order = tuple(clogged), tuple(release_order)
        for executor in released:
            self._system.release(f"clog:{executor}")

    # -- timers ---------------------------------------------------------------------------------------------
    def _later(self, seconds: float, callback: Callable[[], None]) -> None:
        handle: Any = None

        def fire() -> None:
            if handle in self._timers:
                self._timers.remove(handle)
            if not self.closed:
                callback()

        handle = self._system.clock.call_later(seconds, fire)
        self._timers.append(handle)

    def validate_state(self) -> None:
        """Check the bookkeeping invariants; tests call it between steps."""
        assert set(self._clogged) <= set(self._release_order), "a clogged executor with no release turn"
        assert all(len(key) in (1, 2) for key in self._cuts), "a cut link has one or two ends"
        assert all(gate.startswith("reorder:") and state[0] >= 1 for gate, state in self._reorders.items())
        assert not (self.closed and self._timers), "a closed interposer still has timers"
        assert all(n >= 1 for n in self._counts.values())

    def close(self) -> None:
        """Cancel every timer (called by the system when the interposer is removed)."""
        self.closed = True
        timers, self._timers = self._timers, []
        for handle in timers:
            handle.cancel()


# -- installation ------------------------------------------------------------------------------------------
def install_in_driver(ctx: Any) -> MessageFaults | None:
    """In the driver's system, when the plan has message or link faults."""
    plan: FaultPlan | None = ctx.fault_plan
    if not plan or not plan.message_faults():
        return None
    from sparklet.runtime._listener import FaultInjected

    system: ActorSystem = ctx._system
    executor_ids = tuple(f"exec-{i}" for i in range(ctx.executor_count))

    def report(index: int, fault: Fault, executor_id: str, where: str) -> None:
        ctx.listener_bus.post(FaultInjected(time.time(), executor_id, index, fault.describe(), where))
        if system.events.enabled:
            system.events.record("fault", None, executor=executor_id, fault=fault.describe(), where=where)

    def tell_executors(msg: Any) -> None:
        for executor_id in executor_ids:
            system.ref_for(None, f"{_STAND_INS}{executor_id}").tell(msg)

    faults = MessageFaults(plan, system, host="driver", report=report, executor_ids=executor_ids,
                           stand_ins=ctx.kind == "local", tell_executors=tell_executors if ctx.kind == "local" else None)
    system.interpose(faults)
    return faults


def install_in_executor(system: ActorSystem, plan: FaultPlan | None, executor_id: str, driver_address: str | None,
                        report: Report, report_and_wait: Callable[..., Any]) -> MessageFaults | None:
    """In an executor's own process (under inproc[N] the driver's interposer covers it)."""
    if driver_address is None or not plan or not plan.message_faults():
        return None
    current = system.interposer
    if isinstance(current, MessageFaults):
        return current  # the executor restarted in its process: keep its counts
    faults = MessageFaults(plan, system, host=executor_id, report=report, driver_address=driver_address,
                           report_and_wait=report_and_wait)
    system.interpose(faults)
    return faults
