"""One engine's run of the workloads, in a fresh process: ``python -m benchmarks.engines
ENGINE SPEC.json`` prints JSON lines on stdout (startup, then one line per workload, then
any extra figures), or one ``error`` line.

Start-up is the time from this process's start (before the engine is imported) until the
engine can run a task; each workload's time is the best wall time of ``repeat`` runs,
beside the CPU seconds its whole process tree spent during that run. Every answer is
checked against plain Python's before it is reported.
"""

from __future__ import annotations

import time

_STARTED = time.perf_counter()  # before anything is imported: start-up includes the engine's import

import json  # noqa: E402
import os  # noqa: E402
import pickle  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402
from typing import Any, Callable  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from benchmarks import rdd_workloads  # noqa: E402
from benchmarks.workloads import check, tree_cpu_seconds  # noqa: E402

MASTER = "local[2]"
SHUFFLE_BUDGET = "128m"


def emit(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


class Measure:
    """``measure(name, fn)``: best of ``repeat`` wall times, the CPU of that run, checked."""

    def __init__(self, engine: str, spec: dict, expected: dict) -> None:
        self.engine, self.spec, self.expected = engine, spec, expected
        self.only = set(spec.get("workloads") or ())

    def __call__(self, name: str, fn: Callable[[], Any], repeat: int | None = None,
                 reported: Callable[[Any], float] | None = None, items: int | None = None) -> None:
        """``reported``: the time is what ``fn`` returns (timed inside), not its wall time;
        ``items``: how many messages or tasks the time covers, when not the spec's count."""
        if self.only and name not in self.only:
            return
        best, best_cpu, result = float("inf"), 0.0, None
        try:
            for _ in range(repeat or self.spec["repeat"]):
                cpu = tree_cpu_seconds()
                started = time.perf_counter()
                result = fn()
                elapsed = reported(result) if reported else time.perf_counter() - started
                if elapsed < best:
                    best, best_cpu = elapsed, tree_cpu_seconds() - cpu
            check(name, result, self.expected)
        except Exception as exc:  # one workload failing does not hide the others
            emit(engine=self.engine, workload=name, error=f"{type(exc).__name__}: {exc}",
                 trace=traceback.format_exc(limit=3))
            return
        emit(engine=self.engine, workload=name, seconds=best, cpu_seconds=best_cpu,
             **({"items": items} if items else {}))


def ready(engine: str) -> None:
    emit(engine=engine, startup_seconds=time.perf_counter() - _STARTED)


# -- sparklet --------------------------------------------------------------------------------------

def _peak_rss(pids: list[int]) -> int:
    peak = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        peak = max(peak, int(line.split()[1]) * 1024)
        except OSError:
            continue
    return peak


def run_sparklet(spec: dict, measure: Measure, links: list) -> None:
    from sparklet import Context
    from sparklet.runtime import Fault, FaultPlan, TaskEnd

    conf = {"ui.showConsoleProgress": False, "shuffle.memory": SHUFFLE_BUDGET}
    with Context(MASTER, "bench", conf=conf) as sc:
        ready("sparklet")
        pids = [e["pid"] for e in sc.executors()]
        idle = _peak_rss(pids)
        rdd_workloads.run_all(sc, spec, links, measure)
        budget = sc.conf["shuffle.memory"]
        if not measure.only or measure.only & {"wordcount", "reduce_by_key"}:
            emit(engine="sparklet", figure="peak_executor_memory", value=_peak_rss(pids) / (1 << 20),
                 baseline=(budget + idle) / (1 << 20), unit="MiB")
    _sparklet_actors(spec, measure)
    if spec.get("workloads") and "recovery" not in spec["workloads"]:
        return
    # Recovery: the same wordcount in a fresh context, without and with exec-1 SIGKILLed right
    # after it wrote its map output (its output is lost; only its map task must run again).
    runs: dict[str, tuple[float, float]] = {}
    for label, plan in (("fault_free", None),
                        ("one_executor_killed", FaultPlan([Fault("kill_executor", executor="exec-1",
                                                                 after_stage_outputs=0)]))):
        best = (float("inf"), 0.0)
        for _ in range(spec["repeat"]):
            with Context(MASTER, f"recovery-{label}", conf=conf, faults=plan) as sc:
                started = time.perf_counter()
                check("wordcount", rdd_workloads.wordcount(sc, spec), measure.expected)
                elapsed = time.perf_counter() - started
                map_tasks = [e.metrics.get("executor_run_time", 0.0) for e in sc.listener_events(TaskEnd)
                             if e.stage_id == 0 and e.status == "success"]
            if elapsed < best[0]:
                best = (elapsed, max(map_tasks) if map_tasks else 0.0)
        runs[label] = best
    free, lost_task = runs["fault_free"]
    faulty = runs["one_executor_killed"][0]
    emit(engine="sparklet", figure="recovery", fault_free=free, with_fault=faulty, lost_share=lost_task,
         overhead=faulty - free - lost_task)


def _sparklet_actors(spec: dict, measure: Measure) -> None:
    """Cross-process tell and ask, as the peers' actors are measured (an actor in another
    process; the sender waits for the last message to be handled)."""
    from benchmarks.actors_bench import remote_figures

    if measure.only and not measure.only & {"actor_tell", "actor_ask"}:
        return
    try:
        import uvloop
        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover
        import asyncio
        runner = asyncio.run
    rate, rtt = runner(remote_figures(spec["tells"], spec["asks"]))
    measure("actor_tell", lambda: spec["tells"] / rate, repeat=1, reported=lambda value: value)
    measure("actor_ask", lambda: rtt * spec["asks"] / 1e6, repeat=1, reported=lambda value: value)


# -- PySpark -------------------------------------------------------------------------------------------

def run_pyspark(spec: dict, measure: Measure, links: list) -> None:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    from pyspark import SparkConf, SparkContext

    conf = (SparkConf().setMaster(MASTER).setAppName("bench")
            .set("spark.ui.enabled", "false").set("spark.ui.showConsoleProgress", "false")
            .set("spark.driver.memory", "2g").set("spark.executorEnv.PYTHONHASHSEED", "0"))
    sc = SparkContext(conf=conf)
    try:
        sc.setLogLevel("ERROR")
        ready("pyspark")
        rdd_workloads.run_all(sc, spec, links, measure)
    finally:
        sc.stop()


def main(argv: list[str]) -> None:
    engine, spec_path = argv
    with open(spec_path, encoding="utf-8") as f:
        spec = json.load(f)
    with open(spec["expected"], "rb") as f:
        expected = pickle.load(f)
    with open(spec["graph"], "rb") as f:
        links = pickle.load(f)
    measure = Measure(engine, spec, expected)
    try:
        if engine == "sparklet":
            run_sparklet(spec, measure, links)
        elif engine == "pyspark":
            run_pyspark(spec, measure, links)
        elif engine == "dask":
            from benchmarks import peer_dask
            peer_dask.run(spec, measure, links, ready)
        elif engine == "ray":
            from benchmarks import peer_ray
            peer_ray.run(spec, measure, links, ready)
        else:
            raise ValueError(f"unknown engine {engine!r}; known: sparklet, pyspark, dask, ray")
    except Exception as exc:
        emit(engine=engine, error=f"{type(exc).__name__}: {exc}", trace=traceback.format_exc(limit=5))


if __name__ == "__main__":
    main(sys.argv[1:])
