"""The simulated master sim[N]: whole runs replay from their seed, message for message."""

from __future__ import annotations

import asyncio
import operator
import random
import threading
import time
from pathlib import Path

import pytest

from sparklet import Context
from sparklet.actors import SimulatedLoop
from sparklet.runtime import (
    ExecutorRemoved, Fault, FaultInjected, FaultPlan, JobEnd, TaskEnd, parse_master,
)
from sparklet.runtime._scenario import load_scenario, run_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"
QUIET = {"ui.showConsoleProgress": False}


def three_fault_plan() -> FaultPlan:
    return FaultPlan([
        Fault("raise", stage=0, partition=1, attempt=0),
        Fault("kill_executor", executor="exec-0", before_task=3),
        Fault("lose_shuffle_output", shuffle=0, map_id=2),
    ], seed=3)


def shuffle_job(sc: Context) -> list:
    pairs = sc.parallelize(range(1000), 6).map(lambda x: (x % 7, x))
    return sorted(pairs.reduceByKey(operator.add).collect())


EXPECTED = sorted({k: sum(x for x in range(1000) if x % 7 == k) for k in range(7)}.items())


def actor_trace(sc: Context) -> list[tuple]:
    return [(e["kind"], e["actor"], e.get("msg"), e.get("id")) for e in sc.actor_system.events]


def listener_story(sc: Context) -> list[tuple]:
    """Listener events without the measured (real) durations and the process id."""
    story = []
    for event in sc.listener_events():
        fields = dict(vars(event))
        fields.pop("metrics", None)
        fields.pop("pid", None)
        story.append((type(event).__name__, tuple(sorted(fields.items(), key=lambda kv: kv[0]))))
    return story


def run_with_faults(seed: int) -> tuple[list, list[tuple], list[tuple], list[str]]:
    with Context("sim[2]", "replay", conf={**QUIET, "sim.seed": seed, "tracing": True}, faults=three_fault_plan()) as sc:
        answer = shuffle_job(sc)
        fired = [f.fault.split("(")[0] for f in sc.listener_events(FaultInjected)]
        sc._loop.validate_state()
        return answer, actor_trace(sc), listener_story(sc), fired


def test_a_shuffle_job_under_faults_replays_message_for_message():
    answer, trace, story, fired = run_with_faults(7)
    again = run_with_faults(7)
    assert answer == EXPECTED
    assert sorted(fired) == ["kill_executor", "lose_shuffle_output", "raise"]
    assert len(trace) > 200
    assert trace == again[1], "same seed, different actor trace"
    assert story == again[2], "same seed, different listener events"
    assert any(kind == "send" and msg == "FetchSegments" for kind, _, msg, _ in trace)


def test_other_seeds_interleave_differently_and_agree_on_the_answer():
    runs = [run_with_faults(seed) for seed in (1, 2, 3)]
    assert all(answer == EXPECTED for answer, *_ in runs)
    assert len({tuple(trace) for _, trace, _, _ in runs}) > 1, "three seeds gave one interleaving"


def test_virtual_time_makes_stalls_and_silences_instant():
    plan = FaultPlan([
        Fault("slow", stage=0, partition=0, seconds=120.0),
        Fault("silence_executor", executor="exec-1", before_task=1),
    ])
    real = time.monotonic()
    conf = {**QUIET, "sim.seed": 5, "network.timeout": 30.0}
    with Context("sim[2]", "stalls", conf=conf, faults=plan) as sc:
        assert sc.parallelize(range(40), 4).map(lambda x: x + 1).sum() == sum(range(1, 41))
        job_end = sc.listener_events(JobEnd)[-1].time
        first_task_end = min(e.time for e in sc.listener_events(TaskEnd))
        removed = sc.listener_events(ExecutorRemoved)
    assert time.monotonic() - real < 30, "a simulated two-minute stall took real time"
    assert job_end - first_task_end >= 100, "the slow task did not take its virtual two minutes"
    assert [e.executor_id for e in removed] == ["exec-1"], "the silent executor was not declared lost"


def test_listeners_and_user_randomness_replay_and_the_callers_random_state_is_given_back():
    def run() -> tuple[list, list]:
        seen: list[str] = []
        with Context("sim[2]", "random", conf={**QUIET, "sim.seed": 21}) as sc:
            sc.addListener(lambda event: seen.append(f"{type(event).__name__}@{threading.current_thread().name}"))
            draws = sc.parallelize(range(8), 4).map(lambda x: random.random()).collect()
        return draws, seen

    random.seed(99)
    expected_next = random.Random(99).random()
    first = run()
    assert random.random() == expected_next, "the caller's random state was not restored"
    second = run()
    assert first == second
    assert len(set(first[0])) == 8
    assert first[1] and all(name.startswith("sparklet-driver-") for name in (s.split("@")[1] for s in first[1]))


async def test_an_async_caller_drives_the_simulation_from_its_own_loop():
    async with Context("sim[2]", "async", conf={**QUIET, "sim.seed": 4}) as sc:
        assert isinstance(sc._loop, SimulatedLoop) and sc._loop is not asyncio.get_running_loop()
        total, count = await asyncio.gather(sc.parallelize(range(100), 4).sumAsync(),
                                            sc.parallelize(range(10)).countAsync())
    assert (total, count) == (4950, 10)


def test_the_sim_master_and_seed_are_checked():
    assert parse_master("sim[3]") == ("sim", 3)
    assert parse_master("sim") == ("sim", 1)
    with pytest.raises(ValueError, match="sim or sim\\[N\\]"):
        parse_master("simulated[2]")
    with pytest.raises(ValueError, match="sim.seed: expected an integer seed"):
        Context("sim[2]", "bad", conf={"sim.seed": 1.5})


def test_a_failing_chaos_case_replays_from_its_seed():
    scenario = load_scenario(str(SCENARIOS / "replay_in_simulation.toml"))
    first, second = run_scenario(scenario), run_scenario(scenario)
    assert first.passed and second.passed, first.render()
    assert len(first.faults_fired) == 3
    assert first.trace and first.trace == second.trace
    assert f"digest {first.trace_digest}" in first.render()
    other = run_scenario(load_scenario(str(SCENARIOS / "replay_in_simulation.toml"), seed=12))
    assert other.passed and other.trace != first.trace


def test_a_scenario_that_fails_replays_its_failure_too(tmp_path):
    (tmp_path / "pipelines.py").write_text((SCENARIOS / "pipelines.py").read_text())
    (tmp_path / "flaky.toml").write_text(
        'name = "too flaky"\npipeline = "pipelines:wordcount"\nmaster = "sim[2]"\nseed = 5\n'
        '[conf]\n"task.maxFailures" = 2\n'
        '[[faults]]\nkind = "raise"\nattempt = "any"\nprobability = 0.6\n'
        '[expect]\nresult = "same"\n')
    scenario = load_scenario(str(tmp_path / "flaky.toml"))
    first, second = run_scenario(scenario), run_scenario(scenario)
    assert not first.passed and "InjectedFault" in first.verdict
    assert (first.verdict, first.trace) == (second.verdict, second.trace)


def test_several_cores_per_executor_with_broadcasts_and_a_cache():
    """Tasks of one executor take turns (its pool is one simulated thread), so a task
    waiting for a broadcast while holding the executor's broadcast lock meets no other."""
    with Context("sim[2]", "cores", conf={**QUIET, "sim.seed": 8, "executor.cores": 3}) as sc:
        table = sc.broadcast({i: i * 2 for i in range(100)})
        cached = sc.parallelize(range(2000), 12).map(lambda x: (x % 13, table.value[x % 100])).cache()
        assert cached.count() == 2000
        sums = dict(cached.reduceByKey(operator.add).collect())
    assert sums == {k: sum(2 * (x % 100) for x in range(2000) if x % 13 == k) for k in range(13)}


def test_the_chaos_command_replays_the_same_trace_in_fresh_processes():
    import os
    import subprocess
    import sys

    def trace_line(hash_seed: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "sparklet.runtime.cli", "chaos", "run",
             str(SCENARIOS / "replay_in_simulation.toml"), "--seed", "5"],
            capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONHASHSEED=hash_seed))
        assert result.returncode == 0, result.stdout + result.stderr
        return next(line for line in result.stdout.splitlines() if line.startswith("trace:"))

    first = trace_line("1")
    assert "digest" in first
    assert trace_line("2") == first


def run_swizzled(seed: int) -> tuple[list, list[tuple], list[str]]:
    """FoundationDB's swizzle-clogging under the simulation: executors' links clogged one
    by one, then released in a seeded order, on virtual time."""
    plan = FaultPlan([Fault("swizzle_clog", message="RunTask", seconds=0.5)], seed=seed)
    with Context("sim[3]", "swizzle", conf={**QUIET, "sim.seed": seed, "tracing": True}, faults=plan) as sc:
        answer = shuffle_job(sc)
        steps = [f.where for f in sc.listener_events(FaultInjected)]
        return answer, actor_trace(sc), steps


def test_swizzle_clogging_in_the_simulation_replays_message_for_message():
    answer, trace, steps = run_swizzled(11)
    assert answer == EXPECTED
    assert any(s.startswith("clog ") for s in steps) and any(s.startswith("unclog ") for s in steps), steps
    again = run_swizzled(11)
    assert again[0] == EXPECTED and again[2] == steps and again[1] == trace, "same seed, different run"
