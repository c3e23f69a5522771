"""`sparklet demo` and `sparklet submit`, run as users run them (a real process), and the
Context defaults that `submit` hands over."""

from __future__ import annotations

import collections
import json
import subprocess
import sys

import pytest

from sparklet import Context
from sparklet.runtime._cli_run import UsageError, submit_plan, zipf_corpus
from sparklet.runtime._submit import submitted_defaults

QUIET = {"ui.showConsoleProgress": False}


def sparklet(*args: str, cwd: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sparklet.runtime.cli", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)


def test_demo_kills_an_executor_mid_shuffle_recovers_and_checks_the_answer(tmp_path):
    out = tmp_path / "out"
    result = sparklet("demo", "--master", "local[2]", "--words", "30000", "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answer matches collections.Counter: OK" in result.stdout
    assert "faults fired: kill_executor(executor='exec-0', after_stage_outputs=0) on exec-0" in result.stdout
    assert "executor lost: exec-0" in result.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ok"] is True and summary["words"] == 30000
    assert summary["tasks_rerun"] >= 1 and summary["stage_attempts"] >= 2
    assert sum(c for _, c in summary["top_words"]) < 30000
    event_log = out / "spark-events" / summary["application_id"]
    assert f"wrote {event_log}" in result.stdout
    assert event_log.read_text().count("SparkListenerExecutorRemoved") >= 1
    report, trace = out / "report.html", out / "trace.perfetto.json"
    assert f"wrote {report}" in result.stdout and f"wrote {trace}" in result.stdout
    assert "<html" in report.read_text()[:500].lower()
    from sparklet.runtime._trace_export import validate_trace
    assert validate_trace(json.loads(trace.read_text())) == []
    assert any(e.get("ph") == "i" and "exec-0" in json.dumps(e) for e in json.loads(trace.read_text())["traceEvents"])


def test_the_demo_corpus_is_zipf_distributed_and_reproducible():
    lines = zipf_corpus(60_000, seed=3)
    assert lines == zipf_corpus(60_000, seed=3) and lines != zipf_corpus(60_000, seed=4)
    words = [w for line in lines for w in line.split()]
    assert len(words) == 60_000
    ranked = [c for _, c in collections.Counter(words).most_common(4)]
    # frequency ~ 1/rank: the commonest word is about twice the second and four times the fourth
    assert 1.5 < ranked[0] / ranked[1] < 2.6 and 3.0 < ranked[0] / ranked[3] < 5.5


def test_demo_refuses_a_bad_master_with_status_2(tmp_path):
    result = sparklet("demo", "--master", "yarn", "--out", str(tmp_path))
    assert result.returncode == 2
    assert "sparklet demo: --master: master must be local" in result.stderr


SCRIPT = """
import sys
from sparklet import Context
sc = Context.getOrCreate()
assert Context.getOrCreate() is sc
print("master", sc.master)
print("name", sc.appName)
print("maxFailures", sc.conf["task.maxFailures"])
print("args", sys.argv[1:])
print("sum", sc.parallelize(range(10), 2).sum())
sc.stop()
sys.exit(int(sys.argv[-1]) if sys.argv[-1].isdigit() else 0)
"""


def test_submit_runs_a_script_with_the_given_master_name_conf_and_arguments(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    result = sparklet("submit", "--master", "inproc[2]", "--name", "nightly etl", "--conf", "task.maxFailures=7",
                      "--conf", "spark.ui.showConsoleProgress=false", str(script), "--", "--input", "x.txt", "3")
    assert result.returncode == 3, result.stderr  # the script's own exit status
    assert result.stdout.splitlines() == [
        "master inproc[2]", "name nightly etl", "maxFailures 7", "args ['--input', 'x.txt', '3']", "sum 45"]


@pytest.mark.parametrize("argv, message", [
    (["submit", "missing.py"], "sparklet submit: no such script: 'missing.py'"),
    (["submit", "--conf", "task.maxFailures", "JOB"], "--conf expects KEY=VALUE, got 'task.maxFailures'"),
    (["submit", "--conf", "task.maxFailure=3", "JOB"], "did you mean task.maxFailures"),
    (["submit", "--conf", "task.maxFailures=lots", "JOB"], "configuration task.maxFailures"),
    (["submit", "--master", "mesos://x", "JOB"], "--master: master must be local"),
    (["demo", "--words", "0"], "expected a positive integer, got '0'"),
    (["submit"], "the following arguments are required: script"),
    (["teleport"], "invalid choice: 'teleport'"),
])
def test_bad_arguments_and_missing_files_exit_2_naming_the_problem(tmp_path, argv, message):
    script = tmp_path / "job.py"
    script.write_text("print('never runs')\n")
    result = sparklet(*[str(script) if a == "JOB" else a for a in argv], cwd=str(tmp_path))
    assert result.returncode == 2, result.stdout
    assert message in result.stderr and "never runs" not in result.stdout


@pytest.mark.parametrize("command", [[], ["demo"], ["submit"], ["chaos", "run"], ["version"]])
def test_every_command_has_help(command):
    result = sparklet(*command, "--help")
    assert result.returncode == 0 and result.stdout.startswith("usage: sparklet")
    assert (command[0] if command else "demo") in result.stdout


def test_submit_plan_names_a_directory_given_as_the_script(tmp_path):
    with pytest.raises(UsageError, match="not a file"):
        submit_plan(str(tmp_path), None, None, [], [])


def test_a_context_takes_its_defaults_from_the_submit_environment(monkeypatch):
    monkeypatch.setenv("SPARKLET_MASTER", "inproc[1]")
    monkeypatch.setenv("SPARKLET_APP_NAME", "from env")
    monkeypatch.setenv("SPARKLET_CONF", json.dumps({"task.maxFailures": "9", "ui.showConsoleProgress": "false"}))
    with Context() as sc:
        assert (sc.master, sc.appName, sc.conf["task.maxFailures"]) == ("inproc[1]", "from env", 9)
        assert Context.getOrCreate() is sc
    # What code says wins over the environment, key by key.
    with Context("inproc[2]", "from code", conf={"task.maxFailures": 2}) as sc:
        assert (sc.master, sc.appName, sc.conf["task.maxFailures"]) == ("inproc[2]", "from code", 2)
        assert sc.conf["ui.showConsoleProgress"] is False


def test_get_or_create_makes_a_context_when_none_runs(monkeypatch):
    monkeypatch.setenv("SPARKLET_MASTER", "inproc[1]")
    sc = Context.getOrCreate(conf=QUIET)
    try:
        assert sc.master == "inproc[1]" and Context.getOrCreate() is sc
    finally:
        sc.stop()
    other = Context.getOrCreate(conf=QUIET)
    try:
        assert other is not sc
    finally:
        other.stop()


def test_a_malformed_submit_conf_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match="SPARKLET_CONF must be a JSON object"):
        submitted_defaults({"SPARKLET_CONF": "task.maxFailures=3"})
    with pytest.raises(ValueError, match="SPARKLET_CONF must be a JSON object"):
        submitted_defaults({"SPARKLET_CONF": "[1, 2]"})
    assert submitted_defaults({}).master is None
