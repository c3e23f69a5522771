"""The HTML report in a real headless Chromium (the OS's: /usr/bin/chromium; CI installs it).

The page must render from the file alone (no network request at all), without a console
error or an uncaught exception, and show the numbers the trace holds: jobs, stages,
tasks, restarts; its message view must let one follow the executor kill to the restart.
"""

from __future__ import annotations

import pytest

from sparklet import write_report
from sparklet.runtime._trace_dir import read_trace_dir

from headless_chromium import CHROMIUM, HeadlessChromium, chromium_available
from trace_support import walkthrough

pytestmark = pytest.mark.skipif(not chromium_available(), reason=f"Chromium is not installed at {CHROMIUM} (apt-get install -y chromium)")


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    trace_dir, _ = walkthrough(tmp_path_factory)
    return read_trace_dir(trace_dir), write_report(trace_dir, tmp_path_factory.mktemp("report") / "report.html")


def test_the_report_renders_offline_without_errors_and_shows_the_runs_numbers(report):
    trace, path = report
    task_ends = [e for e in trace.listener if e["event"] == "TaskEnd"]
    stage_ids = {i for e in trace.listener if e["event"] == "JobStart" for i in e["stage_ids"]}
    with HeadlessChromium() as browser:
        browser.open(f"file://{path}")
        assert browser.wait_for("document.body.dataset.rendered === 'true'")
        assert browser.errors() == []
        assert browser.requested_urls() == [f"file://{path}"]  # self-contained: nothing else fetched
        count = lambda what: browser.evaluate(f"Number(document.getElementById('count-{what}').dataset.value)")
        assert browser.evaluate("document.querySelectorAll('#jobs tbody tr.job').length") == count("jobs") == 3
        assert browser.evaluate("document.querySelectorAll('#stages tbody tr.stage').length") == count("stages") == len(stage_ids)
        assert count("tasks") == len(task_ends) == browser.evaluate(
            "[...document.querySelectorAll('#stages tbody tr.stage')].reduce((n, r) => n + Number(r.dataset.tasks), 0)")
        assert count("failed-tasks") == sum(e["status"] != "success" for e in task_ends)
        assert count("restarts") == 1 and count("faults") == 3
        # The supervision tree shows exec-1's restart.
        assert browser.evaluate("""[...document.querySelectorAll('#tree .restarts')].map(
            b => b.closest('li').dataset.path + '=' + b.dataset.restarts)""") == ["/user/sparklet/executors/exec-1=1"]
        # Each job has a DAG; job 1 reuses job 0's shuffle, so its map stage is greyed as skipped.
        assert browser.evaluate("document.querySelectorAll('svg.dag-svg').length") == 3
        assert browser.evaluate("document.querySelectorAll('svg.dag-svg[data-job=\"1\"] g.stage.skipped').length") == 1
        assert browser.evaluate("document.querySelectorAll('svg.dag-svg[data-job=\"0\"] g.stage.skipped').length") == 0
        assert browser.evaluate("document.querySelectorAll('svg.dag-svg path.edge').length") >= 2
        # Spark UI's summary metrics for the selected stage: ten metrics, five quantiles each.
        assert browser.evaluate("document.querySelectorAll('#summary tbody tr').length") == 10
        assert browser.evaluate("document.querySelectorAll('#summary tbody tr:first-child td.num').length") == 5
        # The timeline has one bar per task and the three injected faults.
        assert browser.evaluate("document.querySelectorAll('#timeline-svg rect.bar:not(.job)').length") == len(task_ends)
        assert browser.evaluate("document.querySelectorAll('#timeline-svg path.mark.fault').length") == 3
        assert browser.errors() == []


def test_a_fault_can_be_followed_to_the_restart_message_by_message(report):
    _, path = report
    with HeadlessChromium() as browser:
        browser.open(f"file://{path}")
        browser.wait_for("document.body.dataset.rendered === 'true'")
        everything = browser.evaluate("document.querySelectorAll('#messages tbody tr').length")
        # Follow the kill_executor fault.
        browser.evaluate("""[...document.querySelectorAll('#incidents li.fault')]
            .find(li => li.textContent.includes('kill_executor')).querySelector('button').click()""")
        assert "following failure" in browser.evaluate("document.getElementById('following').textContent")
        kinds = browser.evaluate("[...document.querySelectorAll('#messages tbody tr')].map(r => r.cells[2].textContent)")
        assert 0 < len(kinds) < everything
        assert "failure" in kinds and "restart" in kinds and "directive" in kinds
        assert kinds.index("failure") < kinds.index("restart")
        assert browser.evaluate("document.querySelectorAll('#sequence-svg circle.incident').length") >= 2
        assert browser.evaluate("document.querySelectorAll('#sequence-svg path.msg-arrow').length") >= 1
        # Filters: one message type only.
        browser.evaluate("document.getElementById('clear-follow').click()")
        browser.evaluate("""(() => { const s = document.getElementById('filter-msg'); s.value = 'RunTask';
            s.dispatchEvent(new Event('change')); })()""")
        messages = browser.evaluate("[...document.querySelectorAll('#messages tbody tr')].map(r => r.cells[4].textContent)")
        assert messages and set(messages) == {"RunTask"}
        assert browser.evaluate("document.querySelectorAll('#sequence-svg path.msg-arrow.cross').length") >= 1
        browser.evaluate("""(() => { const s = document.getElementById('filter-actor');
            s.value = [...s.options].map(o => o.value).find(v => v.endsWith(' /user/exec-0'));
            s.dispatchEvent(new Event('change')); })()""")
        actors = browser.evaluate("[...document.querySelectorAll('#messages tbody tr')].map(r => r.cells[3].textContent)")
        assert actors and set(actors) == {"/user/exec-0"}
        assert browser.errors() == []
