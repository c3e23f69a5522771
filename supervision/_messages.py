"""The closed set of messages a supervisor understands, and its replies.

Commands are imperatives, replies and reports are facts. Everything here crosses the
msgpack codec (strict mode round-trips it in every test), so child specs and start
arguments travel as cloudpickled ``bytes`` and sequences as tuples.

A command never makes the supervisor fail: an OTP error outcome comes back as a
:class:`ChildOpResult` whose ``error`` names it, and the module functions in
``_api.py`` raise the matching exception in the caller.
"""

from __future__ import annotations

from sparklet.actors import ActorRef, message

__all__ = [
    "StartChild", "TerminateChild", "RestartChild", "DeleteChild", "WhichChildren", "CountChildren",
    "DescribeSupervisor", "ValidateState", "RetryRestart", "ChildOpResult", "ChildInfo", "ChildCounts",
    "SupervisorReport",
]

_T = "sparklet.supervision."


# -- commands (asked by the functions in _api.py) -----------------------------------------
@message(tag=_T + "StartChild")
class StartChild:
    payload: bytes  # cloudpickle of a ChildSpec, or of the extra args tuple (simple_one_for_one)


@message(tag=_T + "TerminateChild")
class TerminateChild:
    child: str | ActorRef  # a child id or the child's reference


@message(tag=_T + "RestartChild")
class RestartChild:
    child_id: str


@message(tag=_T + "DeleteChild")
class DeleteChild:
    child_id: str


@message(tag=_T + "WhichChildren")
class WhichChildren:
    pass


@message(tag=_T + "CountChildren")
class CountChildren:
    pass


@message(tag=_T + "DescribeSupervisor")
class DescribeSupervisor:
    pass


@message(tag=_T + "ValidateState")
class ValidateState:
    pass


# -- the supervisor's own timer / self message -----------------------------------------------
@message(tag=_T + "RetryRestart")
class RetryRestart:
    """Start the children of a pending restart (after a back-off delay, or again after a
    failed start). ``job`` names the pending restart; a stale one is ignored."""

    job: str


# -- replies ----------------------------------------------------------------------------------
@message(tag=_T + "ChildOpResult")
class ChildOpResult:
    """The outcome of a child-administration command. ``error`` is ``""`` on success or
    the name of the exception class the caller raises; ``detail`` is its text."""

    ref: ActorRef | None
    error: str
    detail: str
    child_id: str


@message(tag=_T + "ChildInfo")
class ChildInfo:
    """One row of :func:`which_children`. ``ref`` is ``None`` when no actor is running for
    the spec (stopped, ignored, or waiting to be respawned). ``state`` is ``running``,
    ``restarting`` or ``stopped``; ``restarts`` counts the child's starts after its first."""

    id: str
    ref: ActorRef | None
    type: str
    restart: str
    state: str
    restarts: int


@message(tag=_T + "ChildCounts")
class ChildCounts:
    """OTP's ``count_children``: ``specs`` (1 for simple_one_for_one), ``active`` (running
    children), and ``supervisors`` / ``workers`` (children of each type, running or not)."""

    specs: int
    active: int
    supervisors: int
    workers: int


@message(tag=_T + "SupervisorReport")
class SupervisorReport:
    """What :func:`supervision_tree` learns from one supervisor."""

    path: str
    strategy: str
    intensity: int
    period: float
    recent_restarts: int
    children: tuple  # of ChildInfo, in start order
