"""sparklet.supervision: OTP supervisors on the sparklet actor kernel.

A :class:`Supervisor` starts its :class:`ChildSpec` children in order, restarts them by
its :class:`SupervisorFlags` strategy (``one_for_one``, ``one_for_all``,
``rest_for_one``, ``simple_one_for_one``) and restart types (``permanent``,
``transient``, ``temporary``), optionally after a :class:`Backoff`, gives up after more
than ``intensity`` restarts within ``period`` seconds, and stops its children in reverse
order. The child-administration functions mirror OTP's ``supervisor`` module.
"""

from sparklet.supervision._api import (
    SupervisionTree,
    count_children,
    delete_child,
    restart_child,
    start_child,
    supervision_tree,
    terminate_child,
    validate_supervisor,
    which_children,
)
from sparklet.supervision._backoff import Backoff, BackoffState
from sparklet.supervision._child import CHILD_TRANSITIONS, ChildState
from sparklet.supervision._errors import (
    ChildAlreadyPresent,
    ChildAlreadyStarted,
    ChildExited,
    ChildNotFound,
    ChildRestarting,
    ChildRunning,
    ChildStartFailed,
    InvalidChildSpec,
    InvalidSupervisorFlags,
    OperationNotSupported,
    ReachedMaxRestartIntensity,
    SupervisionError,
    SupervisorInvariantError,
)
from sparklet.supervision._intensity import RestartIntensity
from sparklet.supervision._messages import ChildCounts, ChildInfo
from sparklet.supervision._spec import ChildSpec, Decider, Directive, SupervisorFlags, decider_from, default_decider
from sparklet.supervision._supervisor import Supervisor

__all__ = [
    "Backoff", "BackoffState", "CHILD_TRANSITIONS", "ChildAlreadyPresent", "ChildAlreadyStarted",
    "ChildCounts", "ChildExited", "ChildInfo", "ChildNotFound", "ChildRestarting", "ChildRunning",
    "ChildSpec", "ChildStartFailed", "ChildState", "Decider", "Directive", "InvalidChildSpec",
    "InvalidSupervisorFlags", "OperationNotSupported", "ReachedMaxRestartIntensity", "RestartIntensity",
    "SupervisionError", "SupervisionTree", "Supervisor", "SupervisorFlags", "SupervisorInvariantError",
    "count_children", "decider_from", "default_decider", "delete_child", "restart_child", "start_child",
    "supervision_tree", "terminate_child", "validate_supervisor", "which_children",
]
