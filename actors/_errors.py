"""Errors that say whose fault they are.

* :class:`SparkletInternalError`: our bug. Please report it.
* :class:`ProtocolError`: a peer sent something we cannot accept (bad frame, unknown tag,
  failed handshake). Raised at the single receive point; the connection that carried it
  is closed and the endpoint keeps serving everybody else.
* Usage errors (:class:`InvalidActorDefinition`, :class:`ActorNameTaken`, ...) name the
  argument and value that were wrong.
* Runtime outcomes (:class:`AskTimeout`, :class:`ActorStopped`, ...) name the actor and
  the message type involved.
"""

from __future__ import annotations


class SparkletError(Exception):
    """Base class of every error sparklet raises on purpose."""


class SparkletInternalError(SparkletError):
    """A bug in sparklet itself, not in your code. Please report it with the traceback."""


class ProtocolError(SparkletError):
    """A peer sent bytes that break the wire protocol (framing, codec or handshake)."""


class CodecError(ProtocolError):
    """A message could not be encoded or decoded by the msgpack codec."""


class HandshakeFailed(ProtocolError):
    """A peer failed the shared-secret challenge-response handshake."""


class FrameTooLarge(ProtocolError):
    """A frame exceeded the configured maximum frame size."""


class InvalidActorDefinition(SparkletError, TypeError):
    """An Actor subclass or its Props is not usable (for example it skipped ``super().__init__()``)."""


class ActorNameTaken(SparkletError, ValueError):
    """A sibling with this name is already alive under the same parent."""


class ActorNotFound(SparkletError, LookupError):
    """No live actor at this path."""


class ActorStopped(SparkletError):
    """The target actor stopped before it could answer."""


class ActorKilled(SparkletError):
    """The actor received :class:`~sparklet.actors.Kill`: a failure on request."""


class ActorStartFailed(SparkletError):
    """An actor's ``pre_start`` raised; the actor was never started."""


class AskTimeout(SparkletError, TimeoutError):
    """An ``ask`` got no reply within its timeout."""


class MailboxFull(SparkletError):
    """An actor's bounded mailbox had no room; the message went to dead letters."""


class RemoteActorError(SparkletError):
    """An exception raised in an actor in another process that could not be rebuilt here.

    ``remote_type`` is the qualified name of the original exception type and
    ``remote_traceback`` the traceback text as the remote process formatted it.
    """

    def __init__(self, remote_type: str, message: str, remote_traceback: str = "") -> None:
        super().__init__(f"{remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_message = message
        self.remote_traceback = remote_traceback


class ConnectionLost(SparkletError, ConnectionError):
    """The connection to a peer process was lost and could not be re-established."""


class SendQueueFull(SparkletError):
    """Frames waiting to go out to slow or unreachable peers already fill the transport's
    bounded send queue (``max_queued_bytes``); the frame was not queued."""
