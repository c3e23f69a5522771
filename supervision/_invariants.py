"""A supervisor's invariants as one pure function (sans I/O).

``Supervisor.validate_state`` gathers the kernel's view of its children (name ->
(reference, kernel state)) and hands it here with its own records; the numbers refer to
the invariants in ``_supervisor.py``'s theory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from sparklet.actors import ActorRef
from sparklet.supervision._child import Child, ChildState, RestartJob

if TYPE_CHECKING:
    from sparklet.supervision._spec import ChildSpec

__all__ = ["find_problems"]

S = ChildState


def find_problems(
    children: Mapping[str, Child],
    jobs: Mapping[str, RestartJob],
    live: Mapping[str, tuple[ActorRef, str]],
    template: "ChildSpec | None",
) -> list[str]:
    """Every broken invariant, as text; empty when all hold."""
    problems: list[str] = []
    for name in live:  # 1: running children are a subset of the specs
        if name not in children:
            problems.append(f"live child {name!r} has no spec")
    order = list(children)
    in_jobs: dict[str, str] = {}
    for key, job in jobs.items():  # 5: jobs are disjoint, non-empty, in start order
        if not job.pending:
            problems.append(f"job {key} is empty")
        positions = [order.index(c.id) if children.get(c.id) is c else -1 for c in job.pending]
        if -1 in positions or positions != sorted(positions):
            problems.append(f"job {key} is not in start order: {[c.id for c in job.pending]}")
        for c in job.pending:
            if c.id in in_jobs:
                problems.append(f"child {c.id!r} is in jobs {in_jobs[c.id]} and {key}")
            in_jobs[c.id] = key
            if c.job is not job:
                problems.append(f"child {c.id!r} is pending in job {key} but points at {c.job!r}")
    for cid, child in children.items():
        ref, kernel = live.get(cid, (None, "stopped"))
        state = child.state
        if child.spec.id != cid:
            problems.append(f"record under {cid!r} holds spec {child.spec.id!r}")
        if template is not None and (child.spec.type, child.spec.restart) != (template.type, template.restart):
            problems.append(f"dynamic child {cid!r} does not follow the template")
        if state is S.RUNNING:  # 2
            if ref is not None and (ref != child.ref or kernel not in ("running", "suspended", "stopping")):
                problems.append(f"running child {cid!r}: cell {ref!r} is {kernel}, record ref {child.ref!r}")
        elif state is S.RESTARTING:  # 3
            if cid not in in_jobs:
                problems.append(f"restarting child {cid!r} is in no pending job")
            if kernel not in ("restarting", "stopping", "stopped"):
                problems.append(f"restarting child {cid!r} has a {kernel} cell")
        elif state is S.STOPPED:  # 4
            if ref is not None:
                problems.append(f"stopped child {cid!r} has a live {kernel} cell")
            if child.spec.restart == "temporary" or template is not None:
                problems.append(f"stopped child {cid!r} should have been forgotten (temporary or dynamic)")
        else:
            problems.append(f"child {cid!r} is {state.value} between steps")
        if state is not S.RESTARTING and child.job is not None:
            problems.append(f"{state.value} child {cid!r} points at job {child.job!r}")
    return problems
