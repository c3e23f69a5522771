"""OTP's child-administration functions, spelled the Python way.

Each is an ``async`` function taking the supervisor's reference and working through
``ask`` with a declared message, so it works on a supervisor in another process too.
Where OTP returns ``{error, Reason}`` these raise; where it returns ``{ok, undefined}``
(the child declined with ``Ignore``) they return ``None``. ``timeout`` is the ask's.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import cloudpickle

from sparklet.actors import ActorRef, ActorStopped, UnhandledMessage
from sparklet.supervision import _errors
from sparklet.supervision._messages import (
    ChildCounts,
    ChildInfo,
    ChildOpResult,
    CountChildren,
    DeleteChild,
    DescribeSupervisor,
    RestartChild,
    StartChild,
    SupervisorReport,
    TerminateChild,
    ValidateState,
    WhichChildren,
)
from sparklet.supervision._spec import ChildSpec

__all__ = [
    "start_child", "terminate_child", "restart_child", "delete_child", "which_children",
    "count_children", "supervision_tree", "SupervisionTree", "validate_supervisor",
]

# The closed set of error names a ChildOpResult may carry.
_OUTCOMES: dict[str, type[Exception]] = {
    cls.__name__: cls
    for cls in (
        _errors.ChildAlreadyPresent, _errors.ChildAlreadyStarted, _errors.ChildStartFailed,
        _errors.ChildRunning, _errors.ChildRestarting, _errors.ChildNotFound,
        _errors.OperationNotSupported, _errors.InvalidChildSpec,
    )
}


def _outcome(result: ChildOpResult) -> ActorRef | None:
    if not result.error:
        return result.ref
    kind = _OUTCOMES.get(result.error)
    if kind is None:
        raise _errors.SupervisorInvariantError(f"unknown supervisor reply error {result.error!r}: {result.detail}. Please report it.")
    if kind is _errors.ChildAlreadyStarted:
        raise kind(result.detail, result.child_id, result.ref)
    if kind in (_errors.ChildAlreadyPresent, _errors.ChildStartFailed):
        raise kind(result.detail, result.child_id)
    raise kind(result.detail)


async def start_child(sup: ActorRef, spec_or_extra_args: ChildSpec | tuple | list, *, timeout: float | None = None) -> ActorRef | None:
    """Add and start a child (OTP's ``supervisor:start_child``).

    Give a :class:`ChildSpec`, or for a ``simple_one_for_one`` supervisor the extra start
    arguments appended to the template's. Returns the child's reference, or ``None`` if
    it declined with ``Ignore``. Raises :class:`ChildAlreadyStarted` (with ``.ref``),
    :class:`ChildAlreadyPresent` or :class:`ChildStartFailed` (the spec is not kept).
    """
    if not isinstance(spec_or_extra_args, (ChildSpec, tuple, list)):
        raise TypeError(f"start_child takes a ChildSpec or a tuple of extra start arguments, got {spec_or_extra_args!r}")
    payload = spec_or_extra_args if isinstance(spec_or_extra_args, ChildSpec) else tuple(spec_or_extra_args)
    return _outcome(await sup.ask(StartChild(cloudpickle.dumps(payload)), timeout))


async def terminate_child(sup: ActorRef, child: str | ActorRef, *, timeout: float | None = None) -> None:
    """Stop a child within its shutdown (OTP's ``terminate_child``). The spec is kept,
    except for temporary and ``simple_one_for_one`` children. Raises :class:`ChildNotFound`."""
    if not isinstance(child, (str, ActorRef)):
        raise TypeError(f"terminate_child takes a child id or an ActorRef, got {child!r}")
    _outcome(await sup.ask(TerminateChild(child), timeout))


async def restart_child(sup: ActorRef, child_id: str, *, timeout: float | None = None) -> ActorRef | None:
    """Start the stopped child ``child_id`` again from its kept spec. Returns its reference
    (``None`` if it declined). Raises :class:`ChildRunning`, :class:`ChildRestarting`,
    :class:`ChildNotFound`, :class:`ChildStartFailed`, or :class:`OperationNotSupported`
    on a ``simple_one_for_one`` supervisor."""
    return _outcome(await sup.ask(RestartChild(child_id), timeout))


async def delete_child(sup: ActorRef, child_id: str, *, timeout: float | None = None) -> None:
    """Forget the spec of the stopped child ``child_id``. Raises :class:`ChildRunning`,
    :class:`ChildRestarting`, :class:`ChildNotFound` or :class:`OperationNotSupported`."""
    _outcome(await sup.ask(DeleteChild(child_id), timeout))


async def which_children(sup: ActorRef, *, timeout: float | None = None) -> list[ChildInfo]:
    """One :class:`ChildInfo` per child spec, in start order."""
    return list(await sup.ask(WhichChildren(), timeout))


async def count_children(sup: ActorRef, *, timeout: float | None = None) -> ChildCounts:
    """OTP's ``count_children`` as a :class:`ChildCounts`."""
    return await sup.ask(CountChildren(), timeout)


async def validate_supervisor(sup: ActorRef, *, timeout: float | None = None) -> None:
    """Run the supervisor's ``validate_state()`` in its own task; raise
    :class:`SupervisorInvariantError` here if an invariant is broken."""
    problem = await sup.ask(ValidateState(), timeout)
    if problem:
        raise _errors.SupervisorInvariantError(problem)


@dataclasses.dataclass(frozen=True)
class SupervisionTree:
    """A snapshot of a supervision tree; ``str()`` draws it.

    ``info`` is this node's row in its parent's :func:`which_children` (``None`` for the
    root), ``report`` what the node said about itself if it is a supervisor.
    """

    name: str
    info: ChildInfo | None
    report: SupervisorReport | None
    children: tuple["SupervisionTree", ...] = ()

    def lines(self) -> list[str]:
        out = [self._label()]
        for i, child in enumerate(self.children):
            last = i == len(self.children) - 1
            sub = child.lines()
            out.append(("└── " if last else "├── ") + sub[0])
            out.extend(("    " if last else "│   ") + line for line in sub[1:])
        return out

    def _label(self) -> str:
        parts = [self.name]
        if self.info is not None:
            parts.append(f"({self.info.type}, {self.info.restart})")
            parts.append(self.info.state)
            parts.append(f"restarts={self.info.restarts}")
        if self.report is not None:
            r = self.report
            parts.append(f"[{r.strategy} intensity={r.intensity}/{r.period:g}s recent={r.recent_restarts}]")
        return " ".join(parts)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def find(self, name: str) -> "SupervisionTree | None":
        """The node called ``name`` (depth first), or None."""
        if self.name == name:
            return self
        for child in self.children:
            found = child.find(name)
            if found is not None:
                return found
        return None


async def supervision_tree(sup: ActorRef, *, timeout: float | None = None) -> SupervisionTree:
    """Ask ``sup`` and every running child supervisor below it for their children; return
    the tree, printable with ``str()``: each child with its type, restart type, state and
    restart count, each supervisor with its strategy and intensity."""
    return await _walk(sup, sup.name or sup.path, None, timeout)


async def _walk(ref: ActorRef, name: str, info: ChildInfo | None, timeout: float | None) -> SupervisionTree:
    try:
        report: Any = await ref.ask(DescribeSupervisor(), timeout)
    except (UnhandledMessage, ActorStopped):
        return SupervisionTree(name, info, None)  # not a Supervisor after all, or just stopped
    nodes = []
    for child in report.children:
        if child.type == "supervisor" and child.ref is not None and child.state == "running":
            nodes.append(await _walk(child.ref, child.id, child, timeout))
        else:
            nodes.append(SupervisionTree(child.id, child, None))
    return SupervisionTree(name, info, report, tuple(nodes))
