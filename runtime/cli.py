"""The ``sparklet`` command.

    sparklet demo [--master M] [--out DIR]        wordcount with an executor killed mid-shuffle, checked
    sparklet submit [--master M] [--conf K=V] script.py [-- ARGS]   run a script, like spark-submit
    sparklet chaos run SCENARIO.toml [--seed N]   run a fault-injection scenario, print its report
    sparklet trace export|report|show DIR        read a trace directory (see runtime/_cli_trace.py)
    sparklet version                             print the version

``chaos run`` exits 0 only when the scenario's expectation held (1 when it did not, 2 when
the scenario could not be run as written), so CI can use it.
"""

from __future__ import annotations

import argparse
import sys

from sparklet.runtime._cli_run import add_run_commands
from sparklet.runtime._cli_trace import add_trace_commands

__all__ = ["main"]


def _chaos_run(args: argparse.Namespace) -> int:
    from sparklet.runtime._scenario import ScenarioError, load_scenario, run_scenario

    try:
        scenario = load_scenario(args.scenario, args.seed)
        report = run_scenario(scenario)
    except ScenarioError as exc:
        print(f"sparklet chaos run: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.passed else 1


def _version(args: argparse.Namespace) -> int:
    from sparklet import __version__

    print(__version__)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sparklet", description="sparklet: a Spark-like runtime built from asyncio actors")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    chaos = commands.add_parser("chaos", help="fault-injection scenarios")
    chaos_commands = chaos.add_subparsers(dest="chaos_command", metavar="SUBCOMMAND")
    chaos_commands.required = True
    run = chaos_commands.add_parser("run", help="run a scenario file and print its report")
    run.add_argument("scenario", help="a scenario TOML file")
    run.add_argument("--seed", type=int, default=None, help="override the scenario's seed")
    run.set_defaults(handler=_chaos_run)
    add_run_commands(commands)  # demo, submit (runtime/_cli_run.py)
    add_trace_commands(commands)
    version = commands.add_parser("version", help="print the version")
    version.set_defaults(handler=_version)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
