"""sparklet.actors: the actor kernel.

Mailboxes, references, tell/ask, lifecycle, death watch, dead letters, timers, the
msgpack codec, structured events and (with :meth:`ActorSystem.listen`) location-
transparent references to actors in other processes. Everything else in sparklet uses
only the names exported here.
"""

from sparklet.actors._actor import Actor, ActorContext, ChildFailure, DeferredReply, Ignore, Kill, Props, Terminated, Timers, UnhandledMessage, handler
from sparklet.actors._cell import TRANSITIONS as ACTOR_TRANSITIONS, ActorState
from sparklet.actors._clock import Clock, ManualClock, RealClock
from sparklet.actors._codec import Codec, Local, MessageRegistry, message, message_tag
from sparklet.actors._errors import (
    ActorKilled,
    ActorNameTaken,
    ActorNotFound,
    ActorStartFailed,
    ActorStopped,
    AskTimeout,
    CodecError,
    ConnectionLost,
    FrameTooLarge,
    HandshakeFailed,
    InvalidActorDefinition,
    MailboxFull,
    ProtocolError,
    RemoteActorError,
    SparkletError,
    SparkletInternalError,
)
from sparklet.actors._events import EventLog
from sparklet.actors._interpose import DELIVER, DROP, Delay, Deliver, Drop, Duplicate, Hold, Interposer, Refuse, Send
from sparklet.actors._fsm import InvalidTransition, StateMachine
from sparklet.actors._process import ProcessActor, ProcessExited, ProcessHandle, RecycleProcess, spawn_in_process
from sparklet.actors._ref import ActorRef
from sparklet.actors import _simenv as simenv
from sparklet.actors._sim import BlockingFuture, SimulatedLoop, SimulationDeadlock, SimulationError, run_simulated
from sparklet.actors._system import ActorSystem, DeadLetter, DeadLetters
from sparklet.actors._tree import tree_snapshot

__all__ = [
    "ACTOR_TRANSITIONS", "Actor", "ActorContext", "ActorKilled", "ActorNameTaken", "ActorNotFound", "ActorRef",
    "ActorStartFailed", "ActorState", "ActorStopped", "ActorSystem", "AskTimeout", "BlockingFuture", "ChildFailure", "DeferredReply",
    "DELIVER", "DROP", "Delay", "Deliver", "Drop", "Duplicate", "Hold", "Interposer", "Refuse", "Send",
    "Clock", "Codec", "CodecError", "ConnectionLost", "DeadLetter", "DeadLetters", "EventLog",
    "FrameTooLarge", "HandshakeFailed", "Ignore", "InvalidActorDefinition", "InvalidTransition", "Kill", "Local",
    "MailboxFull", "ManualClock", "MessageRegistry", "ProcessActor", "ProcessExited", "ProcessHandle", "Props", "RecycleProcess", "ProtocolError", "RealClock",
    "RemoteActorError", "SimulatedLoop", "SimulationDeadlock", "SimulationError", "SparkletError", "SparkletInternalError", "StateMachine", "Terminated",
    "Timers", "UnhandledMessage", "handler", "message", "message_tag", "run_simulated", "simenv", "spawn_in_process",
    "tree_snapshot",
]
