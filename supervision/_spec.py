"""What a supervisor is told: its flags, its child specs and its decider.

All three are validated where they are built, so a bad spec fails before anything
starts, with an error naming the field and the value (OTP's ``check_childspec``)::

    >>> ChildSpec("db", Props.of(Actor), restart="sometimes")
    Traceback (most recent call last):
    ...
    sparklet.supervision._errors.InvalidChildSpec: ChildSpec 'db': restart must be one of 'permanent', 'transient', 'temporary', got 'sometimes'
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any, Callable, Iterable, Mapping, Union

from sparklet.actors import Actor, Props
from sparklet.supervision._backoff import Backoff
from sparklet.supervision._errors import InvalidChildSpec, InvalidSupervisorFlags

__all__ = [
    "ChildSpec", "SupervisorFlags", "Directive", "Decider", "default_decider", "decider_from",
    "STRATEGIES", "RESTART_TYPES", "CHILD_TYPES", "check_children",
]

STRATEGIES = ("one_for_one", "one_for_all", "rest_for_one", "simple_one_for_one")
RESTART_TYPES = ("permanent", "transient", "temporary")
CHILD_TYPES = ("worker", "supervisor")
SHUTDOWN_WORDS = ("brutal_kill", "infinity")
DEFAULT_WORKER_SHUTDOWN = 5.0

Shutdown = Union[float, str]


def _choices(values: tuple[str, ...]) -> str:
    return ", ".join(repr(v) for v in values)


@dataclasses.dataclass(frozen=True)
class ChildSpec:
    """One child of a supervisor (OTP's child specification).

    ``start``: the child's :class:`Props` (an Actor subclass is turned into Props).
    ``restart``: ``permanent`` (always restarted), ``transient`` (restarted only after an
    abnormal exit) or ``temporary`` (never restarted; its spec goes when it exits).
    ``shutdown``: seconds its ``post_stop`` may take before it is killed,
    ``"brutal_kill"`` (killed at once) or ``"infinity"``; default 5.0 for a worker and
    ``"infinity"`` for a supervisor, as in OTP. ``backoff``: restart after a growing delay.
    """

    id: str
    start: Props | type
    restart: str = "permanent"
    shutdown: Shutdown | None = None
    type: str = "worker"
    backoff: Backoff | None = None

    def __post_init__(self) -> None:
        who = f"ChildSpec {self.id!r}"
        if not isinstance(self.id, str) or not self.id or "/" in self.id or self.id.startswith("$"):
            raise InvalidChildSpec(f"ChildSpec: id must be a non-empty str without '/' not starting with '$', got {self.id!r}")
        if isinstance(self.start, Props):
            pass
        elif isinstance(self.start, type) and issubclass(self.start, Actor):
            object.__setattr__(self, "start", Props(actor_class=self.start))
        else:
            raise InvalidChildSpec(f"{who}: start must be a Props or an Actor subclass, got {self.start!r}")
        if self.restart not in RESTART_TYPES:
            raise InvalidChildSpec(f"{who}: restart must be one of {_choices(RESTART_TYPES)}, got {self.restart!r}")
        if self.type not in CHILD_TYPES:
            raise InvalidChildSpec(f"{who}: type must be one of {_choices(CHILD_TYPES)}, got {self.type!r}")
        if self.shutdown is None:
            object.__setattr__(self, "shutdown", "infinity" if self.type == "supervisor" else DEFAULT_WORKER_SHUTDOWN)
        elif isinstance(self.shutdown, str):
            if self.shutdown not in SHUTDOWN_WORDS:
                raise InvalidChildSpec(f"{who}: shutdown must be seconds > 0, 'brutal_kill' or 'infinity', got {self.shutdown!r}")
        elif (isinstance(self.shutdown, bool) or not isinstance(self.shutdown, (int, float))
              or not math.isfinite(self.shutdown) or self.shutdown <= 0):
            raise InvalidChildSpec(f"{who}: shutdown must be seconds > 0, 'brutal_kill' or 'infinity', got {self.shutdown!r}")
        else:
            object.__setattr__(self, "shutdown", float(self.shutdown))
        if self.backoff is not None and not isinstance(self.backoff, Backoff):
            raise InvalidChildSpec(f"{who}: backoff must be a Backoff or None, got {self.backoff!r}")

    @property
    def props(self) -> Props:
        assert isinstance(self.start, Props)
        return self.start

    @property
    def shutdown_timeout(self) -> float | None:
        """The kernel's form: seconds, ``0`` for ``brutal_kill``, ``None`` for ``infinity``."""
        if self.shutdown == "brutal_kill":
            return 0
        if self.shutdown == "infinity":
            return None
        assert isinstance(self.shutdown, float)
        return self.shutdown

    def with_extra_args(self, child_id: str, extra: tuple) -> "ChildSpec":
        """A ``simple_one_for_one`` child: this template with ``extra`` appended to the args."""
        props = self.props
        if props.factory is not None:
            factory = props.factory
            new = dataclasses.replace(props, factory=lambda: factory(*extra))
        else:
            new = dataclasses.replace(props, args=tuple(props.args) + tuple(extra))
        return dataclasses.replace(self, id=child_id, start=new)


@dataclasses.dataclass(frozen=True)
class SupervisorFlags:
    """OTP's supervisor flags: the restart strategy and the restart intensity, at most
    ``intensity`` restarts within any ``period`` seconds."""

    strategy: str = "one_for_one"
    intensity: int = 3
    period: float = 5.0

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InvalidSupervisorFlags(f"SupervisorFlags: strategy must be one of {_choices(STRATEGIES)}, got {self.strategy!r}")
        if isinstance(self.intensity, bool) or not isinstance(self.intensity, int) or self.intensity < 0:
            raise InvalidSupervisorFlags(f"SupervisorFlags: intensity must be an int >= 0, got {self.intensity!r}")
        if (isinstance(self.period, bool) or not isinstance(self.period, (int, float))
                or not math.isfinite(self.period) or self.period <= 0):
            raise InvalidSupervisorFlags(f"SupervisorFlags: period must be seconds > 0, got {self.period!r}")
        object.__setattr__(self, "period", float(self.period))


def check_children(flags: SupervisorFlags, children: Iterable[ChildSpec]) -> tuple[ChildSpec, ...]:
    """Validate a supervisor's child specs as a set: types, unique ids, and exactly one
    template for ``simple_one_for_one``."""
    specs = tuple(children)
    seen: set[str] = set()
    for spec in specs:
        if not isinstance(spec, ChildSpec):
            raise InvalidChildSpec(f"children must be ChildSpec objects, got {spec!r}")
        if spec.id in seen:
            raise InvalidChildSpec(f"ChildSpec {spec.id!r}: id is used by more than one child spec")
        seen.add(spec.id)
    if flags.strategy == "simple_one_for_one" and len(specs) != 1:
        raise InvalidChildSpec(
            f"simple_one_for_one takes exactly one child spec (the template), got {len(specs)}: {[s.id for s in specs]}"
        )
    return specs


class Directive(enum.Enum):
    """What to do with a failed child (Akka's supervisor directives)."""

    RESUME = "resume"        # keep its state, go on with the next message; not a restart
    RESTART = "restart"      # per the restart type and the strategy; counts toward intensity
    STOP = "stop"            # stop it; the spec is kept unless the child is temporary
    ESCALATE = "escalate"    # the supervisor fails with the same exception


Decider = Callable[[BaseException], Directive]


def default_decider(error: BaseException) -> Directive:
    """RESTART for every ``Exception`` (OTP's only behaviour), ESCALATE otherwise."""
    return Directive.RESTART if isinstance(error, Exception) else Directive.ESCALATE


def decider_from(mapping: Mapping[type, Directive | str], default: Directive | str = Directive.ESCALATE) -> Decider:
    """A decider from ``{ExceptionType: Directive}``, matched along the failed exception's
    MRO, so the most specific entry wins; no entry gives ``default``.

    >>> decide = decider_from({LookupError: Directive.RESUME, Exception: Directive.RESTART})
    >>> decide(KeyError("k")), decide(ValueError()), decide(KeyboardInterrupt())
    (<Directive.RESUME: 'resume'>, <Directive.RESTART: 'restart'>, <Directive.ESCALATE: 'escalate'>)
    """
    table: dict[type, Directive] = {}
    for kind, directive in mapping.items():
        if not (isinstance(kind, type) and issubclass(kind, BaseException)):
            raise TypeError(f"decider_from: keys must be exception types, got {kind!r}")
        table[kind] = _directive(directive, f"decider_from: the directive for {kind.__qualname__}")
    fallback = _directive(default, "decider_from: default")

    def decide(error: BaseException) -> Directive:
        for klass in type(error).__mro__:
            found = table.get(klass)
            if found is not None:
                return found
        return fallback

    decide.table = dict(table)  # type: ignore[attr-defined]
    return decide


def _directive(value: Any, what: str) -> Directive:
    if isinstance(value, Directive):
        return value
    try:
        return Directive(value)
    except ValueError:
        raise TypeError(f"{what} must be a Directive, got {value!r}") from None
