"""The examples run as users run them, in their own process, and check their own outcome."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_supervision_tree_example_recovers_and_writes_events(tmp_path):
    events = tmp_path / "events.jsonl"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "supervision_tree.py"), "--events", str(events)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "recovered from every fault: OK" in result.stdout
    kinds = [json.loads(line)["kind"] for line in events.read_text().splitlines()]
    assert kinds.count("restart") >= 3 and "failure" in kinds and "send" in kinds


def test_log_mining_demo_survives_a_killed_executor_and_checks_its_answers():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "log_mining.py"), "--master", "local[2]", "--lines", "20000"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "killed executor exec-" in result.stdout and "recount after the loss" in result.stdout
    assert "all answers match plain Python: OK" in result.stdout


def test_log_mining_demo_runs_in_process():
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "log_mining.py"), "--master", "inproc[2]", "--lines", "5000"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "all answers match plain Python: OK" in result.stdout


def test_trace_walkthrough_writes_a_trace_and_exports_both_formats(tmp_path):
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "trace_walkthrough.py"), "--dir", str(tmp_path / "trace"), "--master", "inproc[2]"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "job 2: a sum on all executors, the restarted one included" in result.stdout
    trace = json.loads((tmp_path / "trace" / "trace.json").read_text())
    assert any(e["ph"] == "i" and e["cat"] == "FaultInjected" for e in trace["traceEvents"])
    assert (tmp_path / "trace" / "report.html").stat().st_size > 10_000
    assert f"HTML report:     {tmp_path / 'trace' / 'report.html'}" in result.stdout
