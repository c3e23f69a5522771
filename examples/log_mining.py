"""Log mining on the default master, with a cache, a broadcast, an accumulator and a kill.

    python examples/log_mining.py [--master local[2]] [--lines N]

The seed's example: load logs, keep the errors in memory, query them twice; the second
query reads the cache (checked: its tasks read no line of the file, by the listener's
``records_read`` task metric). A shuffle (reduceByKey, join, sortBy) summarizes errors per service. Then one executor process is killed with SIGKILL: its cached
partitions are gone, and the next query recomputes exactly those from lineage, on the
executor the supervisor started in its place. Every answer is checked against plain
Python, and the scheduler events show what ran where.
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import signal
import sys
import tempfile
import time

from sparklet import Context
from sparklet.runtime import TaskEnd

SERVICES = ["auth", "billing", "search", "storage", "mail"]
LEVELS = ["INFO"] * 8 + ["WARN"] * 3 + ["ERROR"]


def write_logs(path: str, lines: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    text = [f"{rng.choice(LEVELS)}\t{rng.choice(SERVICES)}\tlatency={rng.randint(1, 900)}ms\trequest {i}"
            for i in range(lines)]
    with open(path, "w", encoding="utf-8") as out:
        out.write("\n".join(text) + "\n")
    return text


def main(master: str | None, lines: int) -> None:
    folder = tempfile.mkdtemp(prefix="sparklet-demo-")
    path = os.path.join(folder, "service.log")
    text = write_logs(path, lines)
    expected_errors = [line for line in text if line.startswith("ERROR")]

    with Context(master, "log-mining") if master else Context(appName="log-mining") as sc:
        print(f"{sc!r}: {sc.defaultParallelism} task slots in {len(sc.executors())} executors")
        owners = sc.broadcast({"auth": "identity team", "billing": "payments team", "search": "discovery team",
                               "storage": "platform team", "mail": "messaging team"})
        malformed = sc.accumulator(0)

        def parse(line: str):
            fields = line.split("\t")
            if len(fields) != 4:
                malformed.add(1)
                return None
            return fields[1], int(fields[2].removeprefix("latency=").removesuffix("ms"))

        logs = sc.textFile(path, minPartitions=4)
        errors = logs.filter(lambda line: line.startswith("ERROR")).map(parse).cache()

        def timed_count() -> tuple[int, float, int]:
            """The count, its seconds, and the log lines its tasks read from the file
            (the listener's ``records_read`` task metric: 0 when every partition came
            from the cache)."""
            seen = len(sc.listener_events(TaskEnd))
            started = time.perf_counter()
            count = errors.count()
            elapsed = time.perf_counter() - started
            tasks = [e for e in sc.listener_events(TaskEnd)[seen:] if e.status == "success"]
            return count, elapsed, sum(e.metrics.get("records_read", 0) for e in tasks)

        first, cold, first_read = timed_count()
        second, warm, second_read = timed_count()
        assert first == second == len(expected_errors)
        assert first_read == lines, f"the first count read {first_read} of {lines} lines"
        assert second_read == 0, f"the second count read {second_read} lines from the file instead of the cache"
        print(f"errors: {first} (first count {cold * 1000:.0f} ms read all {first_read} lines of the file; "
              f"second {warm * 1000:.0f} ms read {second_read}: every partition came from the cache)")

        stats = errors.map(lambda e: e[1]).stats()
        print(f"error latency: {stats}")
        by_team = errors.map(lambda e: owners.value[e[0]]).countByValue()
        reference = collections.Counter(owners.value[line.split("\t")[1]] for line in expected_errors)
        assert by_team == reference
        print("errors by owning team:", dict(sorted(by_team.items())))
        assert malformed.value == 0

        # A shuffle: errors per service (reduceByKey), joined with an owners table (join),
        # slowest first (sortBy); every step checked against plain Python.
        teams = sc.parallelize(sorted(owners.value.items()), 2)
        per_service = (errors.map(lambda e: (e[0], (1, e[1])))
                       .reduceByKey(lambda a, b: (a[0] + b[0], max(a[1], b[1])))
                       .join(teams)
                       .map(lambda kv: (kv[0], kv[1][1], kv[1][0][0], kv[1][0][1]))
                       .sortBy(lambda row: (-row[3], row[0]))
                       .collect())
        plain: dict[str, list[int]] = {}
        for line in expected_errors:
            _, service, latency, _ = line.split("\t")
            count, worst = plain.get(service, [0, 0])
            plain[service] = [count + 1, max(worst, int(latency.removeprefix("latency=").removesuffix("ms")))]
        assert per_service == sorted(((s, owners.value[s], c, w) for s, (c, w) in plain.items()), key=lambda r: (-r[3], r[0]))
        print("errors per service (reduceByKey + join + sortBy):")
        for service, team, count, worst in per_service:
            print(f"  {service:8} {team:15} {count:6} errors, worst latency {worst} ms")

        storage = sc.storage_status(errors)
        print(f"cached: {storage.num_partitions_cached} partitions, "
              + ", ".join(f"p{p} on {', '.join(e for e, _ in where)}" for p, where in sorted(storage.partitions.items())))

        if sc.kind == "local":
            victim = sc.executors()[0]
            lost = [p for p, where in storage.partitions.items() if any(e == victim["executor_id"] for e, _ in where)]
            os.kill(victim["pid"], signal.SIGKILL)
            print(f"killed executor {victim['executor_id']} (pid {victim['pid']}) with SIGKILL; "
                  f"it held cached partitions {sorted(lost)}")
            sc.listener_bus.clear()
            again = errors.count()
            assert again == len(expected_errors)
            ran = sorted({e.partition for e in sc.listener_events(TaskEnd) if e.status == "success"})
            print(f"recount after the loss: {again} (tasks ran for partitions {ran}; partitions {sorted(lost)} "
                  f"were recomputed from lineage, the rest came from the cache)")
            for _ in range(100):
                if len(sc.executors()) == sc.executor_count:
                    break
                time.sleep(0.05)
            print("executors now:", ", ".join(f"{e['executor_id']} (pid {e['pid']})" for e in sc.executors()))
        print("\nthe driver's supervision tree:\n" + sc.actor_system.tree())
    print("\nall answers match plain Python: OK")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: the Context's, local[*])")
    parser.add_argument("--lines", type=int, default=200_000, help="log lines to generate (default: %(default)s)")
    args = parser.parse_args()
    sys.exit(main(args.master, args.lines))
