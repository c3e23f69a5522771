"""Time and randomness that a simulation takes over: ``sparklet.actors.simenv``.

Code that reads the clock or draws random numbers in a way that can change what the
runtime does (heartbeat expiry, locality waits, event times, trace ids, backoff jitter)
goes through this module instead of :mod:`time` and :mod:`random`::

    from sparklet.actors import simenv as time     # time.time(), time.monotonic()
    rng = simenv.new_random()                       # seeded under a simulation

On a thread that runs a :class:`~sparklet.actors.SimulatedLoop`, ``time()`` and
``monotonic()`` read the loop's virtual clock and ``new_random()`` derives its seed from
the simulation's seed, so a run replays identically. Everywhere else they are the real
thing.

Why attributes are swapped rather than always dispatching: outside simulations the
normal path must cost what ``time.monotonic()`` costs. While no simulation is live in the
process, ``simenv.time`` and ``simenv.monotonic`` *are* the builtins (one module
attribute lookup, as with :mod:`time`); while at least one is live they are functions
that look up the current thread's simulation (a thread-local read) and fall back to the
builtins on every other thread. Any other attribute (``perf_counter``, ``sleep``, ...) is
the :mod:`time` module's own.
"""

from __future__ import annotations

import random as _random
import threading
import time as _time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sparklet.actors._sim import SimulatedLoop

__all__ = ["EPOCH", "current", "monotonic", "new_random", "time", "token_hex"]

# What ``time()`` reads at virtual time zero: a fixed instant, so event times replay too.
EPOCH = 1_600_000_000.0

_real_time = _time.time
_real_monotonic = _time.monotonic

_local = threading.local()  # .loop: the SimulatedLoop running on this thread, if any
_live_lock = threading.Lock()
_live = 0  # Invariant: the number of SimulatedLoops created and not yet closed


def current() -> "SimulatedLoop | None":
    """The simulation running on this thread, or None."""
    return getattr(_local, "loop", None)


def _sim_time() -> float:
    loop = getattr(_local, "loop", None)
    return _real_time() if loop is None else EPOCH + loop.time()


def _sim_monotonic() -> float:
    loop = getattr(_local, "loop", None)
    return _real_monotonic() if loop is None else loop.time()


time = _real_time
monotonic = _real_monotonic


def new_random() -> _random.Random:
    """A fresh generator: seeded from the simulation on a simulated thread (so replays
    draw the same numbers), from the operating system's entropy elsewhere."""
    loop = getattr(_local, "loop", None)
    return _random.Random() if loop is None else _random.Random(loop.derive_seed())


def token_hex(nbytes: int = 4) -> str:
    """A random hex token (``uuid4().hex`` for ids), reproducible under a simulation."""
    return new_random().getrandbits(8 * nbytes).to_bytes(nbytes, "big").hex()


def _enter(loop: "SimulatedLoop") -> None:
    """Called by a simulated loop when it starts running on this thread."""
    _local.loop = loop


def _leave() -> None:
    _local.loop = None


def _activate() -> None:
    """A simulation exists: dispatch time reads by thread from now on."""
    global _live, time, monotonic
    with _live_lock:
        _live += 1
        time, monotonic = _sim_time, _sim_monotonic


def _deactivate() -> None:
    global _live, time, monotonic
    with _live_lock:
        _live -= 1
        if _live == 0:
            time, monotonic = _real_time, _real_monotonic


def __getattr__(name: str) -> Any:
    return getattr(_time, name)
