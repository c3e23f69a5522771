"""Scenario files, `sparklet chaos run`, and the pytest plugin, used as users use them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sparklet.runtime._scenario import ScenarioError, load_scenario

SCENARIOS = Path(__file__).resolve().parent.parent / "examples" / "scenarios"


def chaos(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparklet.runtime.cli", "chaos", "run", *args],
                          capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("scenario", sorted(p.name for p in SCENARIOS.glob("*.toml")))
def test_every_example_scenario_passes_and_reports(scenario):
    result = chaos(str(SCENARIOS / scenario))
    assert result.returncode == 0, result.stdout + result.stderr
    report = result.stdout
    assert "verdict: PASS" in report and "faults fired:" in report and "tasks re-run:" in report
    assert "faults fired: 0" not in report


def test_the_executor_loss_scenario_reports_the_restart_and_the_resubmitted_stage():
    report = chaos(str(SCENARIOS / "executor_lost_during_shuffle.toml"), "--seed", "9").stdout
    assert "seed: 9" in report and "restarts: exec-1 x1" in report and "stages resubmitted: 0.1" in report


def test_the_dag_scheduler_crash_scenario_reports_the_restart_and_what_was_rebuilt():
    report = chaos(str(SCENARIOS / "dag_scheduler_crash.toml")).stdout
    assert "restarts: dag-scheduler x1" in report and "verdict: PASS" in report
    assert ("  - /user/sparklet/scheduler/dag-scheduler restarted by /user/sparklet/scheduler: rebuilt "
            in report) and "1 running jobs [0] from the job manager" in report
    assert "tasks re-run: 0" not in report


def test_an_expectation_that_does_not_hold_exits_1(tmp_path):
    (tmp_path / "scenario.toml").write_text(textwrap.dedent(f"""
        name = "wrong expectation"
        pipeline = "pipelines:always_failing"
        [[faults]]
        kind = "raise"
        partition = 0
        attempt = "any"
    """))
    (tmp_path / "pipelines.py").write_text((SCENARIOS / "pipelines.py").read_text())
    result = chaos(str(tmp_path / "scenario.toml"))
    assert result.returncode == 1
    assert "verdict: FAIL - failed with InjectedFault" in result.stdout


def test_a_scenario_that_cannot_run_exits_2_saying_why(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('pipeline = "pipelines:wordcount"\n[[faults]]\nkind = "raise"\nwhen = 3\n')
    result = chaos(str(bad))
    assert result.returncode == 2 and "field Fault does not know" in result.stderr
    with pytest.raises(ScenarioError, match="unknown scenario keys"):
        bad.write_text('pipeline = "a:b"\nmastr = "local[2]"\n')
        load_scenario(str(bad))
    assert chaos(str(tmp_path / "missing.toml")).returncode == 2


def test_the_pytest_plugin_gives_users_contexts_with_their_fault_plan(pytester):
    pytester.makepyfile("""
        import operator
        from sparklet.runtime import FaultInjected

        def test_survives_a_flaky_first_attempt(sparklet_context, fault_plan):
            fault_plan.add("raise", stage=0, partition=0, attempt=0)
            sc = sparklet_context("inproc[2]")
            assert sc.parallelize(range(10), 2).reduce(operator.add) == 45
            assert len(sc.listener_events(FaultInjected)) == 1

        def test_without_faults(sparklet_context):
            assert sparklet_context().parallelize([1, 2, 3]).count() == 3
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
