"""sparklet: a Spark-like data-parallel runtime for Python, built from asyncio actors.

The public face of the library. The kernel lives in :mod:`sparklet.actors`, OTP-style
supervision in :mod:`sparklet.supervision`.
"""

from sparklet.actors import ActorSystem, Actor, ActorRef, Props, message

__version__ = "0.1.0.dev0"

__all__ = ["ActorSystem", "Actor", "ActorRef", "Props", "message", "__version__"]
