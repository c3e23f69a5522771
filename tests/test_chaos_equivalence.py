"""Chaos equivalence: random pipelines under random fault plans equal plain Python.

Hypothesis draws a pipeline from a small grammar over the RDD API (narrow steps, shuffles,
``cache``, an action) and a fault plan (task raises and stragglers, lost status updates,
killed executors, lost cached blocks, lost shuffle outputs). Each run must give exactly the
answer of the same pipeline computed in plain Python, or, when the plan passes a documented
limit (a task that fails on every attempt: ``task.maxFailures``), fail with that limit's
error. It must never hang: a watchdog cancels the job after a deadline and the case fails.

Profiles: the quick one runs in the default suite (``inproc[2]``, plus a few cases on
``local[2]`` where a killed executor is a SIGKILLed process); the long one is behind the
``slow`` marker (``pytest -m slow tests/test_chaos_equivalence.py``), with the number of
examples set by ``SPARKLET_CHAOS_EXAMPLES`` (default 300 per master).
"""

from __future__ import annotations

import dataclasses
import operator
import os
import threading
from collections import Counter, defaultdict
from typing import Any, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparklet import Context
from sparklet.runtime import Fault, FaultInjected, FaultPlan, InjectedFault

DEADLINE = 45.0  # seconds for one case (a job), far above any recovery path's need
CONF = {
    "ui.showConsoleProgress": False,
    "task.maxFailures": 4,
    "executor.heartbeatInterval": 0.2,  # lost status updates are noticed within a beat
}

Pairs = list[tuple[int, int]]


# -- the grammar: each step is (name, rdd transform, reference on a list of pairs) -------------

@dataclasses.dataclass(frozen=True)
class Step:
    name: str
    apply: Callable[[Any], Any]
    reference: Callable[[Pairs], Pairs]
    shuffles: int = 0
    caches: bool = False


def _flat(kv):
    return [kv, (kv[0] + 1, kv[1])] if kv[1] % 3 == 0 else [kv]


def _group_sums(data: Pairs) -> Pairs:
    sums: dict[int, int] = defaultdict(int)
    for k, v in data:
        sums[k] += v
    return list(sums.items())


def _group_max(data: Pairs) -> Pairs:
    best: dict[int, int] = {}
    for k, v in data:
        best[k] = max(best.get(k, v), v)
    return list(best.items())


def narrow_steps() -> st.SearchStrategy[Step]:
    return st.sampled_from([
        Step("mapValues(v*3+1)", lambda r: r.mapValues(lambda v: v * 3 + 1), lambda d: [(k, v * 3 + 1) for k, v in d]),
        Step("filter(v even)", lambda r: r.filter(lambda kv: kv[1] % 2 == 0), lambda d: [kv for kv in d if kv[1] % 2 == 0]),
        Step("flatMap", lambda r: r.flatMap(_flat), lambda d: [y for kv in d for y in _flat(kv)]),
        Step("rekey(v%5)", lambda r: r.map(lambda kv: (kv[1] % 5, kv[0])), lambda d: [(v % 5, k) for k, v in d]),
        Step("cache", lambda r: r.cache(), lambda d: d, caches=True),
    ])


@st.composite
def shuffle_steps(draw) -> Step:
    n = draw(st.integers(1, 4))
    return draw(st.sampled_from([
        Step(f"reduceByKey(add, {n})", lambda r: r.reduceByKey(operator.add, n), _group_sums, shuffles=1),
        Step(f"foldByKey(0, add, {n})", lambda r: r.foldByKey(0, operator.add, n), _group_sums, shuffles=1),
        Step(f"groupByKey({n}).mapValues(max)", lambda r: r.groupByKey(n).mapValues(max), _group_max, shuffles=1),
        Step(f"aggregateByKey(max, {n})", lambda r: r.aggregateByKey(-10**9, max, max, n), _group_max, shuffles=1),
        Step(f"distinct({n})", lambda r: r.distinct(n), lambda d: list(set(d)), shuffles=1),
        Step(f"repartition({n})", lambda r: r.repartition(n), lambda d: d, shuffles=1),
        Step(f"partitionBy({n})", lambda r: r.partitionBy(n), lambda d: d, shuffles=1),
        Step(f"sortByKey({n})", lambda r: r.sortByKey(numPartitions=n), lambda d: d, shuffles=1),
    ]))


ACTIONS: dict[str, tuple[Callable[[Any], Any], Callable[[Pairs], Any]]] = {
    "collect": (lambda r: Counter(r.collect()), lambda d: Counter(d)),
    "count": (lambda r: r.count(), len),
    "countByKey": (lambda r: dict(r.countByKey()), lambda d: dict(Counter(k for k, _ in d))),
    "values.sum": (lambda r: r.values().sum(), lambda d: sum(v for _, v in d)),
    "sortByKey.keys": (lambda r: r.sortByKey().keys().collect(), lambda d: sorted(k for k, _ in d)),
}


@st.composite
def pipelines(draw):
    data = draw(st.lists(st.tuples(st.integers(0, 9), st.integers(-20, 20)), min_size=1, max_size=60))
    slices = draw(st.integers(1, 5))
    steps = draw(st.lists(st.one_of(narrow_steps(), shuffle_steps()), min_size=1, max_size=5))
    action = draw(st.sampled_from(sorted(ACTIONS)))
    return data, slices, steps, action


@st.composite
def fault_plans(draw, stages: int, shuffles: int, fatal: bool):
    """Faults addressed at the pipeline's stages, shuffles and cached blocks. ``fatal``
    allows a task fault on every attempt, which passes ``task.maxFailures``."""
    stage = st.one_of(st.none(), st.integers(0, stages))
    partition = st.one_of(st.none(), st.integers(0, 4))
    executor = st.sampled_from([None, "exec-0", "exec-1"])
    kinds = [
        st.builds(Fault, st.just("raise"), stage=stage, partition=partition, attempt=st.integers(0, 1),
                  probability=st.sampled_from([0.3, 1.0])),
        st.builds(Fault, st.just("slow"), stage=stage, partition=partition, seconds=st.just(0.05)),
        st.builds(Fault, st.just("drop_status"), stage=stage, partition=partition, attempt=st.just(0)),
        st.builds(Fault, st.just("kill_executor"), executor=executor, before_task=st.integers(1, 6)),
        st.builds(Fault, st.just("kill_executor"), executor=executor, after_stage_outputs=st.integers(0, stages)),
        st.builds(Fault, st.just("lose_block"), block=st.builds("rdd_{}_{}".format, st.integers(0, 14), st.integers(0, 4)),
                  after_task=st.integers(1, 4)),
    ]
    if shuffles:
        kinds.append(st.builds(Fault, st.just("lose_shuffle_output"), shuffle=st.integers(0, shuffles - 1),
                               map_id=st.integers(0, 4)))
    if fatal:
        kinds.append(st.builds(Fault, st.just("raise"), stage=stage, partition=partition, attempt=st.none()))
    faults = draw(st.lists(st.one_of(kinds), min_size=1, max_size=4))
    return FaultPlan(faults, seed=draw(st.integers(0, 2**31)))


def reference_answer(data: Pairs, steps: list[Step], action: str) -> Any:
    for step in steps:
        data = step.reference(data)
    return ACTIONS[action][1](data)


def run_case(master: str, data: Pairs, slices: int, steps: list[Step], action: str, plan: FaultPlan) -> Any:
    """Run the pipeline under the plan; return its answer or raise its error. A watchdog
    cancels the job after DEADLINE seconds, which fails the case as a hang."""
    with Context(master, "chaos-equivalence", conf=CONF, faults=plan) as sc:
        hung = threading.Event()

        def cancel() -> None:
            hung.set()
            sc.cancelAllJobs()

        watchdog = threading.Timer(DEADLINE, cancel)
        watchdog.start()
        try:
            rdd = sc.parallelize(data, slices)
            for step in steps:
                rdd = step.apply(rdd)
            return ACTIONS[action][0](rdd)
        except Exception:
            if hung.is_set():
                pytest.fail(f"the job hung for {DEADLINE}s under {plan!r}")
            raise
        finally:
            watchdog.cancel()
            watchdog.join()
            assert not hung.is_set(), f"the job hung for {DEADLINE}s under {plan!r}"


def check_equivalence(master: str, case, plan_strategy) -> None:
    data, slices, steps, action = case
    plan = plan_strategy
    expected = reference_answer(data, steps, action)
    fatal = [f for f in plan.faults if f.kind == "raise" and f.attempt is None]
    try:
        answer = run_case(master, data, slices, steps, action, plan)
    except InjectedFault as error:
        # The only allowed failure: a task fault on every attempt, past task.maxFailures.
        assert fatal, f"{[s.name for s in steps]} + {action} failed under a recoverable plan {plan!r}: {error!r}"
        assert "injected fault [raise(" in str(error) and "attempt=None" in str(error)
        return
    assert answer == expected, f"{[s.name for s in steps]} + {action} under {plan!r}"


def _stage_count(steps: list[Step], action: str) -> int:
    return sum(s.shuffles for s in steps) + (1 if action == "sortByKey.keys" else 0)


@st.composite
def chaos_cases(draw, fatal: bool):
    case = draw(pipelines())
    _, _, steps, action = case
    shuffles = sum(s.shuffles for s in steps)
    plan = draw(fault_plans(_stage_count(steps, action), shuffles, fatal))
    return case, plan


QUICK = settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
LONG_EXAMPLES = int(os.environ.get("SPARKLET_CHAOS_EXAMPLES", "300"))
LONG = settings(max_examples=LONG_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))


@QUICK
@given(chaos_cases(fatal=True))
def test_random_pipelines_under_random_faults_equal_python_inproc(drawn):
    case, plan = drawn
    check_equivalence("inproc[2]", case, plan)


@settings(QUICK, max_examples=4)
@given(chaos_cases(fatal=False))
def test_random_pipelines_under_random_faults_equal_python_local(drawn):
    case, plan = drawn
    check_equivalence("local[2]", case, plan)


def test_the_grammar_reaches_every_fault_kind_and_shuffle():
    """The strategies can produce each fault kind and each shuffle step (so the suite is
    not silently narrower than it claims)."""
    kinds, names = set(), set()

    @settings(max_examples=150, derandomize=True, suppress_health_check=list(HealthCheck))
    @given(chaos_cases(fatal=True))
    def collect(drawn):
        (_, _, steps, _), plan = drawn
        kinds.update(f.kind for f in plan.faults)
        names.update(s.name.split("(")[0] for s in steps)

    collect()
    assert kinds == {"raise", "slow", "drop_status", "kill_executor", "lose_block", "lose_shuffle_output"}
    assert {"reduceByKey", "foldByKey", "groupByKey", "aggregateByKey", "distinct", "repartition", "partitionBy",
            "sortByKey", "cache"} <= names


def test_a_planned_fault_really_fires_in_a_chaos_case():
    """A case whose plan must fire does fire (the suite is not running fault-free)."""
    plan = FaultPlan([Fault("kill_executor", executor="exec-0", after_stage_outputs=0),
                      Fault("raise", stage=1, partition=0, attempt=0)], seed=3)
    data = [(i % 7, i) for i in range(50)]
    steps = [Step("reduceByKey", lambda r: r.reduceByKey(operator.add, 2), _group_sums, shuffles=1)]
    with Context("inproc[2]", "chaos-equivalence", conf=CONF, faults=plan) as sc:
        rdd = sc.parallelize(data, 4)
        for step in steps:
            rdd = step.apply(rdd)
        assert Counter(rdd.collect()) == reference_answer(data, steps, "collect")
        fired = {e.index for e in sc.listener_events(FaultInjected)}
    assert fired == {0, 1}


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@LONG
@given(chaos_cases(fatal=True))
def test_long_profile_inproc(drawn):
    case, plan = drawn
    check_equivalence("inproc[2]", case, plan)


@pytest.mark.slow
@pytest.mark.timeout(4 * 3600)
@settings(LONG, max_examples=max(1, LONG_EXAMPLES // 5))
@given(chaos_cases(fatal=True))
def test_long_profile_local(drawn):
    case, plan = drawn
    check_equivalence("local[2]", case, plan)
