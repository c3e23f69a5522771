"""sparklet: a Spark-like data-parallel runtime for Python, built from asyncio actors.

The public face of the library. The actor kernel lives in :mod:`sparklet.actors`,
OTP-style supervision in :mod:`sparklet.supervision`; the most used names of both are
here too.
"""

from sparklet.actors import (
    Actor,
    ActorRef,
    ActorSystem,
    ProcessActor,
    Props,
    Terminated,
    handler,
    message,
    spawn_in_process,
)
from sparklet.supervision import Backoff, ChildSpec, Directive, Supervisor, SupervisorFlags

__version__ = "0.1.0.dev0"

__all__ = [
    "Actor", "ActorRef", "ActorSystem", "Backoff", "ChildSpec", "Directive", "ProcessActor", "Props",
    "Supervisor", "SupervisorFlags", "Terminated", "__version__", "handler", "message", "spawn_in_process",
]
