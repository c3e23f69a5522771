"""A structured snapshot of an actor system's live tree (what :meth:`ActorSystem.tree`
prints), for reports and UIs: nested dicts that JSON can carry."""

from __future__ import annotations

from typing import Any

__all__ = ["tree_snapshot"]


def tree_snapshot(system: Any) -> dict[str, Any] | None:
    """``{"name", "path", "actor_class", "state", "restarts", "children": [...]}`` from the
    root guardian down, children in start order; ``None`` once the system has shut down.
    Call it on the system's loop (it reads the live cells)."""

    def walk(cell: Any) -> dict[str, Any]:
        return {
            "name": cell.name or "/",
            "path": cell.path,
            "actor_class": cell.props.label,
            "state": cell.state.value,
            "restarts": cell.restart_count,
            "children": [walk(child) for child in list(cell.children.values())],
        }

    root = system._root
    if root is None or root.terminated:
        return None
    return walk(root)
