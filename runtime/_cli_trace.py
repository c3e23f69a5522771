"""``sparklet trace``: read a trace directory (conf ``trace.dir``).

    sparklet trace export DIR [-o FILE]   Chrome Trace Event JSON for ui.perfetto.dev / chrome://tracing
    sparklet trace report DIR [-o FILE]   the self-contained HTML report
    sparklet trace show DIR               a terminal summary: jobs, stages, tasks, faults, restarts

Exit codes: 0 done, 2 when the directory is missing or not a trace directory (the
message names it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_trace_commands", "render_summary"]


def add_trace_commands(commands: Any) -> None:
    """Add the ``trace`` command and its subcommands to the ``sparklet`` parser."""
    trace = commands.add_parser("trace", help="export, report on or summarize a trace directory (conf trace.dir)",
                                description="Read a trace directory written by a Context with conf trace.dir.")
    sub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")
    sub.required = True
    export = sub.add_parser("export", help="write Chrome Trace Event JSON (opens in ui.perfetto.dev and chrome://tracing)")
    export.add_argument("dir", help="the trace directory")
    export.add_argument("-o", "--output", help="output file (default: DIR/trace.json)")
    export.set_defaults(handler=_export)
    report = sub.add_parser("report", help="write the self-contained HTML report")
    report.add_argument("dir", help="the trace directory")
    report.add_argument("-o", "--output", help="output file (default: DIR/report.html)")
    report.set_defaults(handler=_report)
    show = sub.add_parser("show", help="print a summary: jobs, stages, tasks, faults, restarts")
    show.add_argument("dir", help="the trace directory")
    show.set_defaults(handler=_show)


def _guarded(args: argparse.Namespace, action: Any) -> int:
    from sparklet.runtime._trace_dir import TraceDirError

    try:
        action()
    except TraceDirError as exc:
        print(f"sparklet trace {args.trace_command}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sparklet trace {args.trace_command}: {exc.strerror}: {exc.filename}", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace) -> int:
    from sparklet.runtime._trace_export import export_perfetto

    return _guarded(args, lambda: print(f"wrote {export_perfetto(args.dir, args.output)} "
                                        "(open it in https://ui.perfetto.dev or chrome://tracing)"))


def _report(args: argparse.Namespace) -> int:
    from sparklet.runtime._report import write_report

    return _guarded(args, lambda: print(f"wrote {write_report(args.dir, args.output)} (open it in a browser)"))


def _show(args: argparse.Namespace) -> int:
    from sparklet.runtime._trace_dir import read_trace_dir
    from sparklet.runtime._trace_model import build_model

    def show() -> None:
        trace = read_trace_dir(args.dir)
        print(render_summary(build_model(trace.app, trace.listener, trace.actor_events)))

    return _guarded(args, show)


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _last_line(text: str | None) -> str:
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else ""


def render_summary(model: dict[str, Any]) -> str:
    """The terminal summary of a model (see :mod:`sparklet.runtime._trace_model`)."""
    app, counts = model["app"], model["counts"]
    t0 = app.get("start") or 0.0
    lines = [
        f"application: {app.get('app_name', '?')} ({app.get('app_id', '?')})  master {app.get('master', '?')}",
        f"duration: {_secs(app.get('duration'))}   processes traced: {counts['processes']}   actor events: {counts['messages']}",
        f"jobs: {counts['jobs']} ({counts['succeeded_jobs']} succeeded, {counts['failed_jobs']} failed)",
    ]
    for job in model["jobs"]:
        stages = ",".join(f"{i}(skipped)" if i in job["skipped_stage_ids"] else str(i) for i in job["stage_ids"])
        failed = f" ({job['failed_tasks']} failed)" if job["failed_tasks"] else ""
        lines.append(f"  job {job['job_id']:<3} {job['status']:<10} {_secs(job['duration']):>10}  stages {stages}  tasks {job['tasks']}{failed}"
                     + (f"\n      error: {job['error']}" if job["error"] else ""))
    lines.append(f"stages: {counts['stages']} ({counts['skipped_stages']} skipped)")
    for stage in model["stages"]:
        failed = f" ({stage['failed_tasks']} failed)" if stage["failed_tasks"] else ""
        lines.append(f"  stage {stage['stage_id']:<3} {stage['status']:<10} attempts {len(stage['attempts'])}  "
                     f"tasks {stage['tasks']}{failed}  {_secs(stage['duration'])}  {stage['name']}")
    lines.append(f"tasks: {counts['tasks']} ({counts['failed_tasks']} failed or lost)")
    for task in model["tasks"]:
        if task["status"] not in ("success", "running"):
            lines.append(f"  task {task['task_id']} (stage {task['stage_id']}.{task['stage_attempt']}, partition {task['partition']}, "
                         f"attempt {task['attempt']}) on {task['executor_id']}: {task['status']}: {_last_line(task['reason'])}")
    lines.append(f"executors: {counts['executors']} processes")
    for executor in model["executors"]:
        removed = f", removed +{_secs(executor['removed'] - t0)}: {executor['reason']}" if executor["removed"] else ""
        lines.append(f"  {executor['executor_id']} pid {executor['pid']} added +{_secs(executor['added'] - t0)}{removed}")
    lines.append(f"faults: {counts['faults']}")
    for fault in model["faults"]:
        lines.append(f"  +{_secs(fault['time'] - t0)} {fault['fault']} at {fault['where']}")
    lines.append(f"restarts: {counts['restarts']}")
    for restart in model["restarts"]:
        lines.append(f"  +{_secs(restart['time'] - t0)} {restart['actor']} ({restart['system']}) restart #{restart['restarts']}: {restart['reason']}")
    failures = [e for e in model["messages"] if e["kind"] in ("failure", "escalate", "restart_failed", "max_intensity")]
    lines.append(f"actor failures and escalations: {len(failures)}")
    for event in failures:
        lines.append(f"  +{_secs(event['ts'] - t0)} {event['kind']} {event['actor']} ({event['system']}): {event.get('error') or event.get('reason') or ''}")
    return "\n".join(lines)
