"""``sparklet demo`` and ``sparklet submit``: the commands that run jobs.

    sparklet demo [--master M] [--words N] [--out DIR] [--seed S]
    sparklet submit [--master M] [--name N] [--conf KEY=VALUE ...] script.py [--] [ARGS ...]

``demo`` counts the words of a generated corpus (Zipf-distributed, as real text is) while
an executor is killed mid-shuffle, checks the answer against ``collections.Counter`` and
exits 0 only when it matches. ``submit`` runs a script the way spark-submit does: the
script's ``Context()`` (or ``Context.getOrCreate()``) gets the master, name and
configuration given here (runtime/_submit.py), and the command exits with the script's
status. Bad arguments and missing files exit 2 with a message naming what was wrong.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import time
from typing import Any

__all__ = ["add_run_commands", "run_demo", "write_demo_artifacts", "zipf_corpus"]


class UsageError(Exception):
    """A bad argument or a missing file: exit status 2."""


def add_run_commands(commands: argparse._SubParsersAction) -> None:
    """Register ``demo`` and ``submit`` on the ``sparklet`` parser's subcommands."""
    demo = commands.add_parser(
        "demo", help="wordcount with an executor killed mid-shuffle; the answer checked",
        description="Count the words of a generated Zipf corpus on the default master while a fault plan "
                    "kills an executor right after it writes its first shuffle output; the answer is checked "
                    "against collections.Counter (exit 0 when it matches, 1 when not).")
    demo.add_argument("--master", default=None, help="local[N], local[*] or inproc[N] (default: the Context's, local[*])")
    demo.add_argument("--words", type=_positive, default=300_000, help="words in the corpus (default: %(default)s)")
    demo.add_argument("--out", default="sparklet-demo", metavar="DIR",
                      help="directory for the corpus, the Spark event log and summary.json (default: %(default)s)")
    demo.add_argument("--seed", type=int, default=7, help="seed of the corpus (default: %(default)s)")
    demo.set_defaults(handler=_demo_command)

    submit = commands.add_parser(
        "submit", help="run a script with a configured default Context (like spark-submit)",
        description="Run SCRIPT with Python; a Context() created in it without a master, name or key takes "
                    "them from these options (values set in code win). Exits with the script's status.",
        epilog="example: sparklet submit --master local[4] --conf task.maxFailures=8 job.py -- --input data.txt")
    submit.add_argument("--master", default=None, help="local[N], local[*], inproc[N]")
    submit.add_argument("--name", default=None, help="the application name")
    submit.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE",
                        help="a configuration key (repeatable), e.g. --conf eventLog.enabled=true")
    submit.add_argument("script", help="the Python file to run")
    submit.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script (after an optional --)")
    submit.set_defaults(handler=_submit_command)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


# -- submit ---------------------------------------------------------------------------------------------
def _submit_command(args: argparse.Namespace) -> int:
    try:
        command, env = submit_plan(args.script, args.master, args.name, args.conf, args.args)
    except UsageError as exc:
        print(f"sparklet submit: {exc}", file=sys.stderr)
        return 2
    try:
        return subprocess.run(command, env={**os.environ, **env}).returncode
    except KeyboardInterrupt:  # the script got the same SIGINT (same process group)
        return 130


def submit_plan(script: str, master: str | None, name: str | None, conf_pairs: list[str],
                script_args: list[str]) -> tuple[list[str], dict[str, str]]:
    """The command line and the environment that run ``script`` as submitted; every
    option is checked first, so a typo fails here rather than inside the script."""
    from sparklet.runtime._conf import Conf
    from sparklet.runtime._context import parse_master
    from sparklet.runtime._submit import submit_environment

    if not os.path.isfile(script):
        raise UsageError(f"no such script: {script!r}" if not os.path.exists(script) else f"not a file: {script!r}")
    if master is not None:
        try:
            parse_master(master)
        except ValueError as exc:
            raise UsageError(f"--master: {exc}") from None
    conf: dict[str, str] = {}
    for pair in conf_pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--conf expects KEY=VALUE, got {pair!r}")
        conf[key.strip()] = value
    try:
        Conf(conf)
    except (KeyError, ValueError) as exc:
        raise UsageError(f"--conf: {exc.args[0] if exc.args else exc}") from None
    args = list(script_args)
    if args[:1] == ["--"]:
        args = args[1:]
    return [sys.executable, script, *args], submit_environment(master, name, conf)


# -- demo -----------------------------------------------------------------------------------------------
def _demo_command(args: argparse.Namespace) -> int:
    try:
        os.makedirs(args.out, exist_ok=True)
    except OSError as exc:
        print(f"sparklet demo: cannot use --out {args.out!r}: {exc}", file=sys.stderr)
        return 2
    try:
        from sparklet.runtime._context import parse_master
        if args.master is not None:
            parse_master(args.master)
    except ValueError as exc:
        print(f"sparklet demo: --master: {exc}", file=sys.stderr)
        return 2
    summary = run_demo(args.master, args.words, args.out, args.seed)
    return 0 if summary["ok"] else 1


def zipf_corpus(words: int, seed: int = 7, vocabulary: int = 5000, per_line: int = 12) -> list[str]:
    """Lines of words drawn from a Zipf distribution (the k-th commonest word is k times
    rarer than the commonest), as natural text is."""
    rng = random.Random(seed)
    syllables = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "ve", "da", "gu", "zo"]
    vocab: list[str] = []
    seen: set[str] = set()
    while len(vocab) < vocabulary:
        word = "".join(rng.choice(syllables) for _ in range(rng.randint(1, 4)))
        if word not in seen:
            seen.add(word)
            vocab.append(word)
    weights = [1.0 / rank for rank in range(1, vocabulary + 1)]
    drawn = rng.choices(vocab, weights=weights, k=words)
    return [" ".join(drawn[i:i + per_line]) for i in range(0, words, per_line)]


def run_demo(master: str | None, words: int, out: str, seed: int = 7, *, echo: Any = print) -> dict:
    """Run the demo; print what happened; write the artifacts into ``out``; return the summary."""
    from sparklet import Context
    from sparklet.runtime import ExecutorRemoved, FaultInjected, FaultPlan, Fault, StageSubmitted, TaskEnd, TaskStart

    corpus_path = os.path.join(out, "corpus.txt")
    lines = zipf_corpus(words, seed)
    with open(corpus_path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    expected = collections.Counter(word for line in lines for word in line.split())

    # exec-0 is SIGKILLed right after it writes a map output of stage 0 (the shuffle's map
    # side): the map outputs it held are lost, the reducers' fetches fail, the lost map
    # tasks run again on the surviving executor or on exec-0's replacement.
    plan = FaultPlan([Fault("kill_executor", executor="exec-0", after_stage_outputs=0)])
    trace_dir = os.path.join(out, "trace")
    conf = {"eventLog.enabled": True, "eventLog.dir": os.path.join(out, "spark-events"), "trace.dir": trace_dir}
    started = time.perf_counter()
    with Context(master, "sparklet demo: wordcount", conf=conf, faults=plan) as sc:
        echo(f"{sc!r}: {sc.defaultParallelism} task slots in {sc.executor_count} executors; "
             f"{words} words ({len(expected)} distinct) in {corpus_path}")
        slices = max(4, 2 * sc.defaultParallelism)
        counts = (sc.textFile(corpus_path, minPartitions=slices)
                  .flatMap(lambda line: line.split())
                  .map(lambda word: (word, 1))
                  .reduceByKey(lambda a, b: a + b, numPartitions=slices))
        answer = dict(counts.collect())
        elapsed = time.perf_counter() - started
        events = sc.listener_events()
        app_id = sc.applicationId
        event_log = os.path.join(out, "spark-events", app_id)
    ok = answer == expected
    starts = collections.Counter((e.stage_id, e.partition) for e in events if isinstance(e, TaskStart))
    summary = {
        "ok": ok,
        "application_id": app_id,
        "words": words,
        "distinct_words": len(expected),
        "top_words": [[w, c] for w, c in sorted(answer.items(), key=lambda kv: (-kv[1], kv[0]))[:10]],
        "faults_fired": [f"{e.fault} on {e.executor_id} ({e.where})" for e in events if isinstance(e, FaultInjected)],
        "executors_lost": [f"{e.executor_id}: {e.reason}" for e in events if isinstance(e, ExecutorRemoved)
                           and "shutdown" not in e.reason],
        "tasks_run": sum(starts.values()),
        "tasks_rerun": sum(n - 1 for n in starts.values()),
        "tasks_failed": sum(1 for e in events if isinstance(e, TaskEnd) and e.status != "success"),
        "stage_attempts": sum(1 for e in events if isinstance(e, StageSubmitted)),
        "seconds": round(elapsed, 3),
    }
    echo("top words: " + ", ".join(f"{w} {c}" for w, c in summary["top_words"]))
    echo(f"faults fired: {', '.join(summary['faults_fired']) or 'none'}")
    for lost in summary["executors_lost"]:
        echo(f"executor lost: {lost}")
    echo(f"tasks: {summary['tasks_run']} run, {summary['tasks_rerun']} re-run, {summary['tasks_failed']} failed or lost; "
         f"{summary['stage_attempts']} stage attempts; {elapsed:.2f} s")
    for path in write_demo_artifacts(out, summary, event_log, trace_dir):
        echo(f"wrote {path}")
    echo(f"answer matches collections.Counter: {'OK' if ok else 'FAILED'}")
    return summary


def write_demo_artifacts(out: str, summary: dict, event_log: str, trace_dir: str) -> list[str]:
    """Write what the demo leaves behind into ``out``; returns the paths, which the demo
    prints: the summary, the Spark event log, the self-contained HTML report and the
    Perfetto trace (both read from the trace directory every process wrote into)."""
    from sparklet.runtime import export_perfetto, write_report

    path = os.path.join(out, "summary.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=2)
    report = write_report(trace_dir, os.path.join(out, "report.html"))
    trace = export_perfetto(trace_dir, os.path.join(out, "trace.perfetto.json"))
    return [path, event_log, report, trace]
