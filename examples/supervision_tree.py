"""A supervision tree that recovers from a crashing child and from a killed process.

    python3 dev.py demo            # or: python examples/supervision_tree.py [--events PATH]

The tree::

    /user/app                      Supervisor, one_for_one
    ├── ledger                     a worker that crashes on a bad entry
    ├── pipeline                   Supervisor, rest_for_one
    │   ├── reader                 restarting reader also restarts the writer after it
    │   └── writer
    └── squarer                    a worker in its own OS process (ProcessActor)

What happens: the ledger gets an invalid entry and crashes; its supervisor restarts it
in place (same reference, same mailbox; the bad entry is not retried). The reader in
the pipeline crashes; rest_for_one restarts it and the writer started after it. The
squarer's process is killed with SIGKILL; the supervisor restarts its stand-in, which
starts a new process. Every step is checked, and every message, failure and restart is
written to a JSON-lines events file whose path is printed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import signal
import sys
import tempfile

from sparklet.actors import Actor, ActorSystem, ProcessActor, Props, handler, message
from sparklet.supervision import ChildSpec, Supervisor, SupervisorFlags, supervision_tree


@message(tag="demo.Entry")
class Entry:
    amount: int


@message(tag="demo.Total")
class Total:
    pass


@message(tag="demo.Crash")
class Crash:
    pass


@message(tag="demo.Square")
class Square:
    x: int


@message(tag="demo.WhoAmI")
class WhoAmI:
    pass


class Ledger(Actor):
    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    @handler(Entry)
    def entry(self, msg: Entry) -> None:
        if msg.amount < 0:
            raise ValueError(f"invalid ledger entry {msg.amount}")
        self.total += msg.amount

    @handler(Total)
    def get_total(self, msg: Total) -> int:
        return self.total


class Stage(Actor):
    """A pipeline stage that counts its starts in a class attribute (same process)."""

    starts: collections.Counter = collections.Counter()

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    def pre_start(self) -> None:
        Stage.starts[self.name] += 1

    @handler(Crash)
    def crash(self, msg: Crash) -> None:
        raise RuntimeError(f"{self.name} lost its input")


class Squarer(Actor):
    @handler(Square)
    def square(self, msg: Square) -> int:
        return msg.x * msg.x

    @handler(WhoAmI)
    def pid(self, msg: WhoAmI) -> int:
        return os.getpid()


def app_props() -> Props:
    pipeline = Supervisor.props(
        SupervisorFlags(strategy="rest_for_one", intensity=5, period=10),
        [ChildSpec("reader", Props.of(Stage, "reader")), ChildSpec("writer", Props.of(Stage, "writer"))],
    )
    return Supervisor.props(
        SupervisorFlags(strategy="one_for_one", intensity=5, period=10),
        [
            ChildSpec("ledger", Ledger),
            ChildSpec("pipeline", pipeline, type="supervisor"),
            ChildSpec("squarer", Props.of(ProcessActor, Squarer, "squarer"), shutdown=10.0),
        ],
    )


async def eventually(check, what: str, timeout: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for: {what}")
        await asyncio.sleep(0.02)


async def main(events_path: str) -> None:
    async with ActorSystem("demo", strict=True, trace_file=events_path) as system:
        app = await system.spawn(app_props(), "app")
        print(await supervision_tree(app), "\n")

        ledger = system.lookup("/user/app/ledger")
        ledger.tell(Entry(40))
        ledger.tell(Entry(-1))            # crashes the ledger
        ledger.tell(Entry(2))             # waits in the mailbox for the new instance
        total = await ledger.ask(Total())
        assert total == 2, total          # fresh state; the bad entry was not retried
        print(f"ledger crashed and was restarted in place: total after restart = {total}")

        system.lookup("/user/app/pipeline/reader").tell(Crash())
        await eventually(lambda: _true(Stage.starts["writer"] == 2), "rest_for_one restarted the writer")
        print(f"reader crashed: rest_for_one restarted reader and writer (starts: {dict(Stage.starts)})")

        squarer = system.lookup("/user/app/squarer")
        first_pid = await squarer.ask(WhoAmI())
        assert await squarer.ask(Square(12)) == 144
        os.kill(first_pid, signal.SIGKILL)
        print(f"killed the squarer's process {first_pid} with SIGKILL")
        await eventually(lambda: _restarted(system, "/user/app/squarer"), "the squarer's stand-in restarted")
        second_pid = await squarer.ask(WhoAmI(), timeout=30)
        assert second_pid != first_pid and await squarer.ask(Square(7)) == 49
        print(f"the supervisor restarted it in a new process {second_pid}; 7 squared is still 49\n")

        print(await supervision_tree(app))
    kinds = collections.Counter(json.loads(line)["kind"] for line in open(events_path, encoding="utf-8"))
    print(f"\nevents written to {events_path}: {sum(kinds.values())} events; "
          + ", ".join(f"{kind} {count}" for kind, count in sorted(kinds.items())))
    assert kinds["failure"] >= 3 and kinds["restart"] >= 3, kinds
    print("recovered from every fault: OK")


async def _true(value: bool) -> bool:
    return value


async def _restarted(system: ActorSystem, path: str) -> bool:
    return system.restart_count(system.lookup(path)) >= 1 and system.state_of(system.lookup(path)) == "running"


def run() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", default=os.path.join(tempfile.gettempdir(), "sparklet-demo-events.jsonl"),
                        help="where to write the JSON-lines events (default: %(default)s)")
    args = parser.parse_args()
    if os.path.exists(args.events):
        os.remove(args.events)
    try:
        import uvloop
        uvloop.run(main(args.events))
    except ImportError:
        asyncio.run(main(args.events))


if __name__ == "__main__":
    sys.exit(run())
