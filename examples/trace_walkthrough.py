"""A traced application with injected faults, exported for Perfetto and as an HTML report.

    python examples/trace_walkthrough.py [--dir DIR] [--master local[2]]

A word count over generated text runs with conf ``trace.dir`` set, under a fault plan:
the first attempt of one map task raises, and executor ``exec-1`` is killed with SIGKILL
right after it writes its first map output. The scheduler re-runs the failed task and
the lost executor's work; the executors' supervisor starts a new ``exec-1`` process
(after its backoff); a second count reuses the shuffle (its map stage is *skipped*), and
a third job runs on the restarted executor. Every answer is checked against plain Python.

Then the trace directory (one events file per process, the killed one included, plus
``listener.jsonl`` and ``app.json``) is exported twice:

* ``trace.json``: open https://ui.perfetto.dev (or chrome://tracing) and load it. Each
  process is a group; each actor a track. Find the ``kill_executor`` instant on exec-1's
  task track, the ``failure`` instant on the driver's ``/user/sparklet/executors/exec-1``
  track and the ``restart`` after it; click a ``RunTask`` slice and follow its flow arrow
  from the task scheduler to the executor process, and the ``StatusUpdate`` back.
* ``report.html``: open it in a browser (no network needed). Jobs 0-2 with their stage
  DAGs (job 1's map stage greyed: skipped), stage 0's summary metrics and its failed
  attempt, the event timeline with the faults, the supervision tree where exec-1 shows a
  restart, and under "Actor messages" press *follow* on the kill_executor fault: the
  sequence view shows the connection loss, ProcessExited, the supervisor's directive and
  the restart, message by message.

The paths are printed at the end; ``sparklet trace show DIR`` summarizes the same run.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import tempfile
import time

from sparklet import Context, export_perfetto, write_report
from sparklet.runtime import Fault, FaultPlan

WORDS = ["actor", "mailbox", "supervisor", "restart", "shuffle", "stage", "task", "executor", "driver", "trace"]


def main(trace_dir: str, master: str) -> None:
    rng = random.Random(11)
    lines = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 12))) for _ in range(2000)]
    expected = collections.Counter(word for line in lines for word in line.split())
    plan = FaultPlan([
        Fault("raise", stage=0, partition=1, attempt=0),                    # one task attempt fails, its retry succeeds
        Fault("kill_executor", executor="exec-1", after_stage_outputs=0),   # SIGKILL after its first map output
    ], seed=7)
    conf = {"trace.dir": trace_dir, "ui.showConsoleProgress": False}
    with Context(master, "trace-walkthrough", conf, faults=plan) as sc:
        counts = sc.parallelize(lines, 4).flatMap(str.split).map(lambda w: (w, 1)).reduceByKey(lambda a, b: a + b)
        assert dict(counts.collect()) == expected, "word counts differ from plain Python"
        print(f"job 0: {len(expected)} distinct words counted, despite the faults")
        assert counts.count() == len(expected)
        print("job 1: counted again from the shuffle files (its map stage is skipped)")
        deadline = time.monotonic() + 30
        while len(sc.executors()) < sc.executor_count and time.monotonic() < deadline:
            time.sleep(0.05)  # the supervisor restarts exec-1 after its backoff
        print(f"executors now: {sorted(e['executor_id'] for e in sc.executors())}")
        total = sc.parallelize(range(1000), 4).map(lambda x: x * 2).sum()
        assert total == 999000, total
        print("job 2: a sum on all executors, the restarted one included")
    perfetto = export_perfetto(trace_dir)
    report = write_report(trace_dir)
    print(f"trace directory: {trace_dir}")
    print(f"Perfetto trace:  {perfetto}   (open it in https://ui.perfetto.dev or chrome://tracing)")
    print(f"HTML report:     {report}   (open it in a browser)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", default=None, help="trace directory (default: a new temporary directory)")
    parser.add_argument("--master", default="local[2]")
    args = parser.parse_args()
    main(os.path.abspath(args.dir) if args.dir else tempfile.mkdtemp(prefix="sparklet-trace-"), args.master)
