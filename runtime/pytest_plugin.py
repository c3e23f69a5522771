"""sparklet's pytest plugin (registered through the ``pytest11`` entry point).

Test your own pipelines under faults::

    def test_my_pipeline_survives_a_lost_executor(sparklet_context, fault_plan):
        fault_plan.add("kill_executor", executor="exec-0", before_task=2)
        sc = sparklet_context("local[2]")
        assert my_pipeline(sc) == expected

Fixtures:

* ``fault_plan``: a builder: ``add(kind, **fields)``, ``seed`` (settable), ``plan()``.
* ``sparklet_context``: a factory ``sparklet_context(master="inproc[2]", conf=None,
  faults=None)`` returning a started :class:`~sparklet.Context` with the test's fault plan
  (or ``faults``); every context it made is stopped at teardown.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest

from sparklet.runtime._context_api import Context
from sparklet.runtime._faults import Fault, FaultPlan

__all__ = ["FaultPlanBuilder"]


class FaultPlanBuilder:
    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.seed = 0

    def add(self, kind: str, **fields: Any) -> Fault:
        fault = Fault(kind, **fields)
        self.faults.append(fault)
        return fault

    def plan(self) -> FaultPlan:
        return FaultPlan(self.faults, self.seed)


@pytest.fixture
def fault_plan() -> FaultPlanBuilder:
    """Faults for this test's sparklet contexts (see the module docstring)."""
    return FaultPlanBuilder()


@pytest.fixture
def sparklet_context(fault_plan: FaultPlanBuilder) -> Iterator[Any]:
    """A factory of contexts carrying this test's fault plan; all stopped at teardown."""
    made: list[Context] = []

    def make(master: str = "inproc[2]", conf: dict | None = None, faults: FaultPlan | None = None) -> Context:
        plan = faults if faults is not None else fault_plan.plan()
        context = Context(master, "pytest", conf={"ui.showConsoleProgress": False, **(conf or {})},
                          faults=plan if plan else None)
        made.append(context)
        return context

    yield make
    for context in reversed(made):
        context.stop()
