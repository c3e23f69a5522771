"""Waiting in a task's thread without becoming unkillable.

A task is killed by raising ``TaskKilled`` in its thread asynchronously, and Python delivers
such an exception only between bytecodes: a thread blocked in one long ``Future.result()``
(a shuffle fetch from a peer that is itself restarting, a broadcast fetch) would not see it
until the wait ended, which can be the ask's whole timeout. Worse, an executor that restarts
waits for its task threads, so two executors fetching from each other while both restart
would wait on each other until the fetches time out (the chaos-equivalence suite found
exactly this). Waiting in short slices keeps every task killable within a slice.
"""

from __future__ import annotations

import concurrent.futures
from typing import Any

__all__ = ["TaskKilled", "wait_interruptibly"]

class TaskKilled(Exception):
    """Raised inside a task's thread to stop it. Code that turns errors into other errors
    (a failed fetch into ``FetchFailed``) lets this one through: a killed task is killed."""


_SLICE = 0.05  # seconds: how late a kill may land on a waiting task


def wait_interruptibly(future: Any) -> Any:
    """``future.result()``, in slices, so an asynchronous ``TaskKilled`` lands promptly.

    An abandoned wait leaves the future alone: it is an ask on the executor's loop, which
    ends by itself (answer or timeout). Cancelling it from this thread could drop its
    coroutine before it ever ran ("coroutine was never awaited")."""
    if not isinstance(future, concurrent.futures.Future):
        return future.result()  # a simulation's BlockingFuture: inline code, nothing to interrupt
    while True:
        done, _ = concurrent.futures.wait((future,), timeout=_SLICE)
        if done:
            return future.result()
