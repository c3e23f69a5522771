"""Chaos scenarios: a pipeline, a master, a fault plan and an expectation, in TOML.

::

    name = "executor lost during a shuffle"
    pipeline = "wordcount:pipeline"     # module:function taking a Context, returning a value
    master = "local[2]"
    seed = 7

    [conf]                              # optional Context configuration
    "network.timeout" = 2

    [[faults]]                          # sparklet.runtime.Fault fields ("any" for None)
    kind = "kill_executor"
    executor = "exec-0"
    after_stage_outputs = 0

    [expect]
    result = "same"                     # the value a fault-free run gives; or:
    # error = "InjectedFault"           # the run fails with this exception type

The module is looked up next to the scenario file first, then on ``sys.path``. Running a
scenario runs the pipeline once without faults (the reference) and once with them, and
reports what the faults did: which fired, how many tasks ran again, which stages were
resubmitted, which actors restarted, how long recovery took, and the verdict.

With ``master = "sim[N]"`` the runs happen in a deterministic simulation seeded by the
scenario's seed (``--seed`` overrides it; ``[conf] "sim.seed"`` sets it apart from the
fault plan's), with tracing on: the report carries the faulted run's actor trace and its
digest, and running the scenario again with the same seed replays that trace exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import os
import sys
import time
import tomllib
from typing import Any, Callable

from sparklet.runtime._context_api import Context
from sparklet.runtime._faults import Fault, FaultPlan
from sparklet.runtime._listener import (
    ActorRecovered, ExecutorRegistered, ExecutorRemoved, FaultInjected, JobEnd, StageSubmitted, TaskEnd,
)

__all__ = ["Scenario", "ScenarioError", "ScenarioReport", "load_scenario", "run_scenario"]

_KEYS = {"name", "pipeline", "master", "seed", "conf", "faults", "expect", "description"}


class ScenarioError(ValueError):
    """A scenario file that cannot be run as written (says which key and why)."""


@dataclasses.dataclass(frozen=True)
class Scenario:
    name: str
    pipeline: str
    master: str
    plan: FaultPlan
    conf: dict
    expect_result: bool
    expect_error: str | None
    path: str | None = None

    def pipeline_function(self) -> Callable[[Context], Any]:
        module_name, _, function_name = self.pipeline.partition(":")
        if not module_name or not function_name:
            raise ScenarioError(f"pipeline must look like 'module:function', got {self.pipeline!r}")
        folder = os.path.dirname(os.path.abspath(self.path)) if self.path else None
        added = folder is not None and folder not in sys.path
        if added:
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise ScenarioError(f"pipeline module {module_name!r} cannot be imported: {exc}") from exc
        function = getattr(module, function_name, None)
        if not callable(function):
            raise ScenarioError(f"{module_name!r} has no function {function_name!r}")
        return function


def load_scenario(path: str, seed: int | None = None) -> Scenario:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise ScenarioError(f"no scenario file at {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"{path} is not valid TOML: {exc}") from None
    return parse_scenario(data, path, seed)


def parse_scenario(data: dict, path: str | None = None, seed: int | None = None) -> Scenario:
    unknown = set(data) - _KEYS
    if unknown:
        raise ScenarioError(f"unknown scenario keys {sorted(unknown)}; known: {sorted(_KEYS)}")
    if "pipeline" not in data:
        raise ScenarioError("a scenario needs pipeline = 'module:function'")
    expect = data.get("expect", {"result": "same"})
    if set(expect) - {"result", "error"} or len(expect) != 1:
        raise ScenarioError(f"[expect] takes exactly one of result = 'same' or error = 'ExceptionName', got {expect}")
    if "result" in expect and expect["result"] != "same":
        raise ScenarioError(f"[expect] result must be 'same', got {expect['result']!r}")
    # TOML has no null: "any" stands for None (any stage, partition, attempt, executor).
    faults = [{k: (None if v == "any" else v) for k, v in entry.items()} for entry in data.get("faults", [])]
    try:
        plan = FaultPlan([Fault(**entry) for entry in faults], seed if seed is not None else data.get("seed", 0))
    except TypeError as exc:
        raise ScenarioError(f"a [[faults]] entry has a field Fault does not know: {exc}") from None
    return Scenario(
        name=data.get("name", os.path.basename(path or "scenario")), pipeline=data["pipeline"],
        master=data.get("master", "inproc[2]"), plan=plan, conf=dict(data.get("conf", {})),
        expect_result="result" in expect, expect_error=expect.get("error"), path=path,
    )


@dataclasses.dataclass
class ScenarioReport:
    scenario: Scenario
    passed: bool
    verdict: str
    faults_fired: list[str]
    tasks_rerun: int
    stages_resubmitted: list[str]
    restarts: dict[str, int]
    recovery_seconds: float | None
    run_seconds: float
    recoveries: list[str] = dataclasses.field(default_factory=list)
    # sim[N] only: the faulted run's actor events as (kind, actor, message type, trace id)
    trace: list[tuple] | None = None

    @property
    def trace_digest(self) -> str | None:
        """A short hash of :attr:`trace`: equal digests, identical replays."""
        return None if self.trace is None else hashlib.sha256(repr(self.trace).encode()).hexdigest()[:16]

    def render(self) -> str:
        lines = [f"scenario: {self.scenario.name}", f"master:   {self.scenario.master}   seed: {self.scenario.plan.seed}",
                 "faults planned:"]
        lines += [f"  - {f}" for f in self.scenario.plan.describe()] or ["  (none)"]
        lines.append(f"faults fired: {len(self.faults_fired)}")
        lines += [f"  - {f}" for f in self.faults_fired]
        lines.append(f"tasks re-run: {self.tasks_rerun}")
        lines.append(f"stages resubmitted: {', '.join(self.stages_resubmitted) or 'none'}")
        lines.append("restarts: " + (", ".join(f"{a} x{n}" for a, n in sorted(self.restarts.items())) or "none"))
        if self.recoveries:
            lines.append("recoveries:")
            lines += [f"  - {r}" for r in self.recoveries]
        recovery = f"{self.recovery_seconds:.2f}s" if self.recovery_seconds is not None else "n/a"
        lines.append(f"recovery time: {recovery} (first fault to the end of its job); run time {self.run_seconds:.2f}s")
        if self.trace is not None:
            lines.append(f"trace:    {len(self.trace)} actor events, digest {self.trace_digest} "
                         f"(simulated: the same seed replays it exactly)")
        lines.append(f"verdict: {'PASS' if self.passed else 'FAIL'} - {self.verdict}")
        return "\n".join(lines)


def _restarts(sc: Context) -> dict[str, int]:
    counts: dict[str, int] = {}
    system = sc.actor_system
    for line in system.tree().splitlines():
        if "restarts=" in line:
            name = line.split("[")[0].strip(" ├─└│")
            counts[name] = int(line.rsplit("restarts=", 1)[1].split()[0])
    return counts


def _wait_for_executors(sc: Context, timeout: float = 15.0) -> None:
    """Until every executor that was removed has registered again (its supervisor restarts
    it with backoff): only then are the restart counts final. A killed executor may not be
    noticed yet when the job ends, so the plain count of live executors is not enough."""
    def back() -> bool:
        removed = len(sc.listener_events(ExecutorRemoved))
        registered = len(sc.listener_events(ExecutorRegistered))
        killed = any(f.fault.startswith("kill_executor") for f in sc.listener_events(FaultInjected))
        if not (registered >= sc.executor_count + removed and bool(removed or not killed)):
            return False
        # A replacement registers from inside its restart, before its supervisor counts the
        # restart: wait for the counts too.
        counts = _restarts(sc)
        return all(counts.get(e.executor_id, 0) >= 1 for e in sc.listener_events(ExecutorRemoved))

    sc._wait_until(back, timeout)  # on the context's loop: in a simulation, time moves while it waits


def run_scenario(scenario: Scenario) -> ScenarioReport:
    pipeline = scenario.pipeline_function()
    conf = {"ui.showConsoleProgress": False, **scenario.conf}
    simulated = scenario.master.strip().startswith("sim")
    if simulated:
        conf = {"sim.seed": scenario.plan.seed, "tracing": True, **conf}
    reference: Any = None
    if scenario.expect_result:
        with Context(scenario.master, f"{scenario.name} (reference)", conf=conf) as sc:
            reference = pipeline(sc)
    started = time.monotonic()
    outcome: Any = None
    error: BaseException | None = None
    with Context(scenario.master, scenario.name, conf=conf, faults=scenario.plan) as sc:
        try:
            outcome = pipeline(sc)
        except Exception as exc:  # judged against the expectation below
            error = exc
        run_seconds = time.monotonic() - started
        _wait_for_executors(sc)  # supervisors restart lost executors with backoff: count them once back
        fired = sc.listener_events(FaultInjected)
        attempts: dict[tuple[int, int], int] = {}
        for end in sc.listener_events(TaskEnd):
            attempts[(end.stage_id, end.partition)] = attempts.get((end.stage_id, end.partition), 0) + 1
        summaries = [e.summary for e in sc.listener_events(JobEnd) if e.summary is not None]
        # Re-runs as the jobs' summaries count them (a task is its work, whatever stage id
        # runs it: a restarted scheduler resubmits under new ids), or per stage id without.
        tasks_rerun = (sum(s.extra_task_runs for s in summaries) if summaries
                       else sum(n - 1 for n in attempts.values()))
        resubmitted = [f"{e.stage_id}.{e.attempt}" for e in sc.listener_events(StageSubmitted)
                       if e.attempt > 0 or e.reason is not None]
        recoveries = [f"{e.actor} restarted by {e.supervisor}: rebuilt {e.rebuilt}"
                      for e in sc.listener_events(ActorRecovered)]
        recovery = None
        if fired:
            ends = [e.time for e in sc.listener_events(JobEnd) if e.time >= fired[0].time]
            recovery = (max(ends) - fired[0].time) if ends else None
        restarts = _restarts(sc)
        trace = ([(e["kind"], e["actor"], e.get("msg"), e.get("id")) for e in sc.actor_system.events]
                 if simulated else None)
    if scenario.expect_result:
        passed = error is None and outcome == reference
        verdict = ("same result as the fault-free run" if passed else
                   f"failed with {type(error).__name__}: {error}" if error is not None else
                   f"different result: {outcome!r} instead of {reference!r}")
    else:
        passed = error is not None and type(error).__name__ == scenario.expect_error
        verdict = (f"failed with {scenario.expect_error}, as expected" if passed else
                   f"expected {scenario.expect_error}, got " + (f"{type(error).__name__}: {error}" if error else "success"))
    return ScenarioReport(scenario, passed, verdict, [f"{f.fault} at {f.where}" for f in fired],
                          tasks_rerun, resubmitted, restarts, recovery, run_seconds, recoveries, trace)
