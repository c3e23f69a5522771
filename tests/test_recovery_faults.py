"""crash_actor faults: validated, addressed by actor role, fired by the driver once at a
deterministic point of the scheduler's story, and recorded."""

from __future__ import annotations

import operator

import pytest

from sparklet import Context
from sparklet.runtime import Fault, FaultInjected, FaultPlan
from sparklet.runtime._driver import PATHS
from sparklet.runtime._driver_faults import actor_path
from sparklet.runtime._scenario import parse_scenario

QUIET = {"ui.showConsoleProgress": False}


def test_a_crash_actor_fault_is_validated_naming_the_bad_field():
    with pytest.raises(ValueError, match="actor=None must name the actor to crash, one of dag-scheduler"):
        Fault("crash_actor", after_task_ends=1)
    with pytest.raises(ValueError, match="actor='scheduler' must name the actor to crash"):
        Fault("crash_actor", actor="scheduler", after_task_ends=1)
    with pytest.raises(ValueError, match="needs exactly one of after_task_ends, at_stage_submitted; got none"):
        Fault("crash_actor", actor="dag-scheduler")
    with pytest.raises(ValueError, match="after_task_ends=0 counts task ends from 1"):
        Fault("crash_actor", actor="dag-scheduler", after_task_ends=0)
    with pytest.raises(ValueError, match="after_task=2 applies to executor faults"):
        Fault("crash_actor", actor="dag-scheduler", after_task=2)
    with pytest.raises(ValueError, match="executor=None must name the executor whose block manager crashes"):
        Fault("crash_actor", actor="block-manager", after_task_ends=1)
    with pytest.raises(ValueError, match="stage=None must name the stage whose task set manager crashes"):
        Fault("crash_actor", actor="task-set-manager", after_task_ends=1)
    with pytest.raises(ValueError, match="actor='dag-scheduler' applies to crash_actor faults only"):
        Fault("raise", actor="dag-scheduler")
    with pytest.raises(ValueError, match="at_stage_submitted=1 applies to crash_actor faults only"):
        Fault("kill_executor", executor="exec-0", after_task=1, at_stage_submitted=1)


def test_each_role_addresses_its_actor():
    def path(**fields):
        return actor_path(PATHS, Fault("crash_actor", after_task_ends=1, **fields))

    assert path(actor="dag-scheduler") == "/user/sparklet/scheduler/dag-scheduler"
    assert path(actor="task-scheduler") == "/user/sparklet/scheduler/task-scheduler"
    assert path(actor="task-set-manager", stage=3, attempt=1) == "/user/sparklet/scheduler/task-scheduler/stage-3.1"
    assert path(actor="block-manager-master") == "/user/sparklet/block-manager-master"
    assert path(actor="map-output-tracker") == "/user/sparklet/map-output-tracker"
    assert path(actor="job-manager") == "/user/sparklet/job-manager"
    assert path(actor="block-manager", executor="exec-1") == "/user/sparklet/executors/exec-1"
    at_submit = Fault("crash_actor", actor="task-set-manager", at_stage_submitted=2, attempt=0)
    assert actor_path(PATHS, at_submit, (2, 0)) == "/user/sparklet/scheduler/task-scheduler/stage-2.0"


def test_scenarios_accept_crash_actor_faults():
    scenario = parse_scenario({"pipeline": "pipelines:wordcount", "faults": [
        {"kind": "crash_actor", "actor": "dag-scheduler", "after_task_ends": 3, "stage": "any"}]})
    assert scenario.plan.describe() == ["crash_actor(actor='dag-scheduler', after_task_ends=3)"]
    with pytest.raises(ValueError, match="actor='nobody'"):
        parse_scenario({"pipeline": "p:f", "faults": [{"kind": "crash_actor", "actor": "nobody", "after_task_ends": 1}]})


def test_a_crash_fires_once_at_its_point_and_the_supervisor_restarts_the_actor():
    plan = FaultPlan([Fault("crash_actor", actor="map-output-tracker", stage=0, after_task_ends=2)])
    with Context("inproc[2]", "crash", conf=QUIET, faults=plan) as sc:
        pairs = sc.parallelize(range(100), 4).map(lambda x: (x % 5, x))
        assert sorted(pairs.reduceByKey(operator.add).collect()) == [(k, sum(range(k, 100, 5))) for k in range(5)]
        assert sorted(pairs.reduceByKey(operator.add).collect())[0] == (0, 950)  # a second job: no second fire
        fired = sc.listener_events(FaultInjected)
        assert len(fired) == 1 and fired[0].executor_id == "driver"
        assert fired[0].fault == "crash_actor(stage=0, actor='map-output-tracker', after_task_ends=2)"
        assert fired[0].where.startswith("after task end #2 of stage 0 (task ")
        assert fired[0].where.endswith("Kill sent to /user/sparklet/map-output-tracker")
        tracker = sc.actor_system.ref_for(None, PATHS["map_outputs"])
        assert sc.actor_system.restart_count(tracker) == 1


def test_a_task_set_manager_crash_at_submission_waits_for_its_first_task_start():
    from sparklet.runtime._driver_faults import DriverFaultInjector
    from sparklet.runtime import _listener as listen

    class Shared:
        paths = PATHS
        executor_refs: dict = {}

        def __init__(self):
            self.listener_bus = listen.ListenerBus()

    class System:
        events = type("Events", (), {"enabled": False})()
        sent: list = []

        def ref_for(self, address, path):
            system = self

            class Ref:
                def tell(self, message):
                    system.sent.append((path, message.reason))
            return Ref()

    shared, system = Shared(), System()
    plan = FaultPlan([Fault("crash_actor", actor="task-set-manager", at_stage_submitted=2, attempt=0)])
    injector = DriverFaultInjector(plan, system, shared)
    injector.on_event(listen.StageSubmitted(0.0, 2, 0, "s", 1, (0,), ()))
    assert system.sent == []  # its actor does not exist yet
    injector.on_event(listen.TaskStart(0.0, 5, 2, 0, 0, 0, "exec-0", "ANY"))
    [(path, reason)] = system.sent
    assert path == "/user/sparklet/scheduler/task-scheduler/stage-2.0"
    assert "when stage 2 attempt 0 was submitted (at its first task start" in reason
    injector.on_event(listen.TaskStart(0.0, 6, 2, 0, 1, 0, "exec-0", "ANY"))
    assert len(system.sent) == 1 and injector.fired == {0}
    [fired] = shared.listener_bus.events(FaultInjected)
    assert fired.where.endswith("Kill sent to /user/sparklet/scheduler/task-scheduler/stage-2.0")
