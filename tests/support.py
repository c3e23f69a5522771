"""Helpers shared by the test modules (importable as `support`)."""

from __future__ import annotations

import asyncio
import os


def child_pids() -> set[int]:
    """Live child processes of this process (Linux /proc; empty elsewhere)."""
    me = str(os.getpid())
    found = set()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                fields = f.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if fields[1].decode() == me and fields[0] != b"Z":
            found.add(int(entry))
    return found


def assert_no_tasks_left() -> None:
    current = asyncio.current_task()
    others = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert not others, f"tasks left running: {[t.get_name() for t in others]}"


def open_sockets() -> set[str]:
    """This process's open sockets, as /proc names them (Linux; empty elsewhere)."""
    found = set()
    try:
        fds = os.listdir("/proc/self/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:"):
            found.add(f"fd {fd}: {target}")
    return found
