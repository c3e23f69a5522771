"""What the transport keeps per peer and per socket, and how it reads addresses.

Split from :mod:`~sparklet.actors._transport`, which drives these records; they hold
state only (no I/O), so each invariant sits on the field it constrains.
"""

from __future__ import annotations

import asyncio
import random

__all__ = ["parse_address", "reconnect_delays", "Connection", "Link"]


def parse_address(address: str) -> tuple[str, str | tuple[str, int]]:
    """``"tcp://host:port"`` -> ``("tcp", (host, port))``; ``"unix:///p.sock"`` -> ``("unix", "/p.sock")``.
    An empty TCP host means loopback."""
    if isinstance(address, str) and address.startswith("tcp://"):
        host, colon, port = address[len("tcp://") :].rpartition(":")
        if colon and port.isdigit() and int(port) < 65536:
            host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
            return "tcp", (host or "127.0.0.1", int(port))
    elif isinstance(address, str) and address.startswith("unix://") and len(address) > len("unix://"):
        return "unix", address[len("unix://") :]
    raise ValueError(f"address must look like 'tcp://127.0.0.1:7077' or 'unix:///path/to.sock', got {address!r}")


def reconnect_delays(initial: float, maximum: float, attempts: int, rng: random.Random) -> list[float]:
    """The pauses between ``attempts`` connection attempts: ``initial`` doubling up to
    ``maximum``, each shortened by a random factor in [0.5, 1) so that many processes
    that lost the same peer do not redial it in lockstep."""
    return [min(maximum, initial * 2**i) * rng.uniform(0.5, 1.0) for i in range(attempts - 1)]


class Connection:
    """One socket, from accept or dial until closed."""

    __slots__ = ("reader", "writer", "label", "peer", "initiated_locally", "adopted", "lost")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, label: str,
                 peer: str | None, initiated_locally: bool) -> None:
        self.reader, self.writer, self.label = reader, writer, label
        self.peer = peer  # the peer's listen address; None until an incoming peer said hello
        self.initiated_locally = initiated_locally
        self.adopted = False  # authenticated, welcomed, and the link's connection (now or before)
        self.lost = False  # closing or closed; never used for sending again


class Link:
    """What this endpoint keeps for one peer address, across reconnects."""

    __slots__ = ("peer", "queue", "queued_bytes", "connection", "connected", "dialing", "pump", "wakeup",
                 "connect_waiters", "retired")

    def __init__(self, peer: str) -> None:
        self.peer = peer
        # Invariant: alternating length prefix and payload, in send() order.
        self.queue: list[bytes] = []
        self.queued_bytes = 0  # payload bytes in `queue`, plus _QUEUED_FRAME_OVERHEAD per frame
        self.connection: Connection | None = None
        self.connected = asyncio.Event()  # Invariant: set exactly when `connection` is not None
        self.dialing = False  # an outgoing handshake is in flight (the tie-break needs to know)
        self.pump: asyncio.Task[None] | None = None
        self.wakeup: asyncio.Future[None] | None = None  # the idle pump waits on this
        self.connect_waiters: list[asyncio.Future[None]] = []
        self.retired = False
