"""Spark's own History Server opens sparklet's event logs.

Starts the real ``org.apache.spark.deploy.history.HistoryServer`` (from the pip ``pyspark``
package's jars, on the machine's Java) on a free loopback port over a directory of
sparklet event logs, and checks through its REST API that it lists the applications
with the jobs, stages and task counts our own listener events recorded. Skipped only
where Java or pyspark is missing (``.ci/run`` and ``dev.py test`` install both).
Deselect with ``-m "not history_server"``.
"""

from __future__ import annotations

import collections
import glob
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from sparklet import Context
from sparklet.runtime import _listener as listen
from sparklet.runtime._faults import Fault, FaultPlan

pytestmark = [pytest.mark.history_server, pytest.mark.timeout(180)]


def spark_jars() -> str | None:
    try:
        import pyspark
    except ImportError:
        return None
    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    return jars if glob.glob(os.path.join(jars, "spark-core_*.jar")) else None


JAVA = shutil.which("java")
JARS = spark_jars()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


class HistoryServer:
    """The real History Server as a child process; stopped (and reaped) on exit."""

    def __init__(self, log_dir: str, work_dir: str) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}/api/v1"
        self.output = open(os.path.join(work_dir, "history-server.log"), "wb")
        self.process = subprocess.Popen(
            [JAVA, "-Xmx384m", "-XX:+IgnoreUnrecognizedVMOptions", "-cp", os.path.join(JARS, "*"),
             f"-Dspark.history.fs.logDirectory=file:{log_dir}", f"-Dspark.history.ui.port={self.port}",
             "-Dspark.history.fs.update.interval=1s", "-Dspark.ui.host=127.0.0.1", "-Dspark.driver.host=127.0.0.1",
             f"-Djava.io.tmpdir={work_dir}", "org.apache.spark.deploy.history.HistoryServer"],
            stdout=self.output, stderr=subprocess.STDOUT, cwd=work_dir,
            env={**os.environ, "SPARK_LOCAL_IP": "127.0.0.1", "SPARK_LOCAL_HOSTNAME": "localhost"},
        )

    def applications(self, expected: int, deadline: float = 120.0) -> list[dict]:
        """Poll until the server lists ``expected`` applications (it scans the directory
        every second once up)."""
        end = time.monotonic() + deadline
        apps: list = []
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise AssertionError(f"the History Server exited with {self.process.returncode}: {self.log()}")
            try:
                apps = get_json(f"{self.base}/applications")
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                apps = []
            if len(apps) >= expected:
                return apps
            time.sleep(0.5)
        raise AssertionError(f"the History Server listed {apps} within {deadline}s: {self.log()}")

    def log(self) -> str:
        self.output.flush()
        with open(self.output.name, encoding="utf-8", errors="replace") as f:
            return f.read()[-4000:]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.output.close()


@pytest.mark.skipif(JAVA is None, reason="no java on PATH: Spark's History Server needs Java 17+")
@pytest.mark.skipif(JARS is None, reason="pyspark is not installed (pip install 'sparklet[history]')")
def test_spark_history_server_lists_sparklet_applications_jobs_stages_and_tasks(tmp_path):
    logs = tmp_path / "events"
    conf = {"ui.showConsoleProgress": False, "eventLog.enabled": True, "eventLog.dir": str(logs)}
    # An executor is killed right after it writes its first map output: tasks are lost,
    # map outputs recomputed, and the answer is still right.
    plan = FaultPlan([Fault("kill_executor", executor="exec-0", after_stage_outputs=0)])
    with Context("local[2]", "wordcount under fire", conf=conf, faults=plan) as sc:
        words = sc.parallelize([f"w{i % 13}" for i in range(2000)], 4)
        counts = words.map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
        assert sum(v for _, v in counts.collect()) == 2000
        assert counts.count() == 13  # a second job: its map stage is skipped
        def explode(x):
            if x == 3:
                raise ValueError("boom")
            return x

        with pytest.raises(ValueError, match="boom"):  # a third job fails after task.maxFailures attempts
            sc.parallelize(range(4), 2).map(explode).collect()
        app_id, ours = sc.applicationId, sc.listener_events()
    # A second application that never stopped: the History Server lists it as incomplete.
    with Context("inproc[1]", "still running", conf=conf) as sc2:
        assert sc2.parallelize(range(5)).count() == 5
        running_id = sc2.applicationId
    finished = (logs / running_id).read_text().splitlines()
    (logs / running_id).unlink()
    (logs / (running_id + ".inprogress")).write_text("\n".join(finished[:-1]) + "\n")  # no application end

    server = HistoryServer(str(logs), str(tmp_path))
    try:
        apps = {a["id"]: a for a in server.applications(expected=2)}
        assert apps[app_id]["name"] == "wordcount under fire"
        assert apps[app_id]["attempts"][0]["completed"] is True
        assert apps[running_id]["attempts"][0]["completed"] is False

        jobs = {j["jobId"]: j for j in get_json(f"{server.base}/applications/{app_id}/jobs")}
        job_ends = {e.job_id: e for e in ours if isinstance(e, listen.JobEnd)}
        assert set(jobs) == set(job_ends) == {0, 1, 2}
        assert [jobs[j]["status"] for j in (0, 1, 2)] == ["SUCCEEDED", "SUCCEEDED", "FAILED"]
        assert jobs[1]["numSkippedStages"] == 1 and jobs[1]["numCompletedStages"] == 1
        task_ends = [e for e in ours if isinstance(e, listen.TaskEnd)]
        for job_id, job in jobs.items():
            stage_ids = next(e.stage_ids for e in ours if isinstance(e, listen.JobStart) and e.job_id == job_id)
            mine = [e for e in task_ends if e.stage_id in stage_ids]
            assert job["numCompletedTasks"] == sum(e.status == "success" for e in mine), job
            assert job["numFailedTasks"] == sum(e.status not in ("success", "killed") for e in mine), job

        stages = get_json(f"{server.base}/applications/{app_id}/stages")
        by_attempt = {(s["stageId"], s["attemptId"]): s for s in stages}
        submitted = {(e.stage_id, e.attempt): e for e in ours if isinstance(e, listen.StageSubmitted)}
        ran = {k for k in by_attempt if by_attempt[k]["status"] != "SKIPPED"}
        assert ran == set(submitted)
        tasks_per_attempt = collections.Counter((e.stage_id, e.stage_attempt) for e in task_ends if e.status == "success")
        for key, event in submitted.items():
            stage = by_attempt[key]
            assert stage["numTasks"] == event.num_tasks, stage
            assert stage["numCompleteTasks"] == tasks_per_attempt[key], stage
        skipped = [s for s in stages if s["status"] == "SKIPPED"]
        assert len(skipped) == 1
        # Task metrics travel: the server's per-stage sums are ours.
        assert sum(s["shuffleWriteBytes"] for s in stages) == sum(
            e.metrics.get("shuffle_bytes_written", 0) for e in task_ends) > 0
        assert sum(s["shuffleWriteRecords"] for s in stages) == sum(
            e.metrics.get("shuffle_records_written", 0) for e in task_ends) > 0
        assert sum(s["inputRecords"] for s in stages) == sum(e.metrics.get("records_read", 0) for e in task_ends) > 0

        map_stage = min(e.stage_id for e in submitted.values())
        tasks = get_json(f"{server.base}/applications/{app_id}/stages/{map_stage}/0/taskList?length=100")
        mine = [e for e in task_ends if (e.stage_id, e.stage_attempt) == (map_stage, 0)]
        assert sorted(t["taskId"] for t in tasks) == sorted(e.task_id for e in mine)
        executors = {e["id"] for e in get_json(f"{server.base}/applications/{app_id}/allexecutors")}
        assert {"exec-0", "exec-1"} <= executors
    finally:
        server.stop()
