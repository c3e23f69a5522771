"""Errors of the supervision layer, each saying whose fault it is.

* Usage errors (:class:`InvalidChildSpec`, :class:`InvalidSupervisorFlags`) are raised
  where the bad value is given, before anything starts, naming the field and the value.
* Child-administration outcomes (OTP's ``{error, already_present}`` and friends) are
  raised by the module functions in the caller's task; the supervisor itself only
  replies with a value, so a bad request never makes the supervisor fail.
* :class:`ReachedMaxRestartIntensity` is how a supervisor fails on purpose: its parent
  sees it as the supervisor's failure and decides (OTP's ``shutdown`` escalation).
* :class:`SupervisorInvariantError` is our bug (a :class:`SparkletInternalError`).
"""

from __future__ import annotations

from sparklet.actors import SparkletError, SparkletInternalError

__all__ = [
    "SupervisionError", "InvalidChildSpec", "InvalidSupervisorFlags", "ChildAlreadyPresent",
    "ChildAlreadyStarted", "ChildStartFailed", "ChildRunning", "ChildRestarting", "ChildNotFound",
    "OperationNotSupported", "ReachedMaxRestartIntensity", "ChildExited", "SupervisorInvariantError",
]


class SupervisionError(SparkletError):
    """Base class of the errors :mod:`sparklet.supervision` raises on purpose."""


class InvalidChildSpec(SupervisionError, ValueError, TypeError):
    """A child spec (or a set of them) is not usable; the message names the field and value."""


class InvalidSupervisorFlags(SupervisionError, ValueError, TypeError):
    """Supervisor flags (strategy, intensity, period) are not usable."""


class ChildAlreadyPresent(SupervisionError):
    """``start_child``: a spec with this id exists already, with no running child."""

    def __init__(self, text: str, child_id: str = "") -> None:
        super().__init__(text)
        self.child_id = child_id


class ChildAlreadyStarted(SupervisionError):
    """``start_child``: a child with this id is running already; ``ref`` is that child."""

    def __init__(self, text: str, child_id: str = "", ref: object = None) -> None:
        super().__init__(text)
        self.child_id = child_id
        self.ref = ref


class ChildStartFailed(SupervisionError):
    """A child's start raised (the text names the child id and the original error)."""

    def __init__(self, text: str, child_id: str = "") -> None:
        super().__init__(text)
        self.child_id = child_id


class ChildRunning(SupervisionError):
    """``restart_child`` / ``delete_child``: the child is running."""


class ChildRestarting(ChildRunning):
    """``restart_child`` / ``delete_child``: the supervisor is restarting the child."""


class ChildNotFound(SupervisionError, LookupError):
    """No child spec with this id (or reference) under the supervisor."""


class OperationNotSupported(SupervisionError):
    """The operation does not apply to this supervisor (for example ``restart_child`` or
    ``delete_child`` on a ``simple_one_for_one`` supervisor, as in OTP)."""


class ReachedMaxRestartIntensity(SupervisionError):
    """More than ``intensity`` restarts within ``period`` seconds: the supervisor stopped
    its children in reverse start order and failed, so its parent decides."""


class ChildExited(SupervisionError):
    """The restart reason the siblings of a child get (in ``pre_restart`` and
    ``post_restart``) when that child exited without an exception and was restarted."""


class SupervisorInvariantError(SparkletInternalError):
    """``Supervisor.validate_state`` found a broken invariant: a bug in sparklet. Please report it."""
