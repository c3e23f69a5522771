"""Mutual shared-secret authentication of a new connection, sans-I/O.

Both sides hold the same secret and prove it without sending it: each answers a fresh
random challenge from the other with an HMAC-SHA256 over both nonces. Every message has
a fixed size and a fixed layout, and nothing a peer sends is decoded (no msgpack, no
length prefix) until it has authenticated, so an unauthenticated peer can make us read
at most :data:`RESPONSE_SIZE` bytes before we refuse it. The labels ``b"client"`` and
``b"server"`` in the MACs keep a peer from reflecting our own challenge back at us.

The exchange, as the accepting side ("server") and the connecting side ("client")::

    server -> client   CHALLENGE  MAGIC | VERSION | server_nonce                 42 bytes
    client -> server   RESPONSE   MAGIC | VERSION | client_nonce | client_mac    74 bytes
    server -> client   VERDICT    verdict byte | server_mac                      33 bytes

    client_mac = HMAC(secret, b"client" | server_nonce | client_nonce)
    server_mac = HMAC(secret, b"server" | client_nonce | server_nonce)

The verdict byte tells the client *why* it was refused (different secret, different
protocol version, not a sparklet peer), so a misconfigured worker fails at once with a
message that names the cause instead of retrying against a closed door. A refusal
carries no MAC: it can only make a connection fail, which anybody on the path could do
anyway.

After the handshake, the first frame each way sets up the connection (see
:func:`encode_hello` and :func:`encode_welcome`): the connecting side says which
listen address it is, and the accepting side says whether it keeps the connection.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
import struct

from sparklet.actors._errors import HandshakeFailed, ProtocolError, SparkletInternalError

__all__ = [
    "CHALLENGE_SIZE",
    "MAGIC",
    "MAX_SETUP_FRAME_SIZE",
    "NONCE_SIZE",
    "PROTOCOL_VERSION",
    "RESPONSE_SIZE",
    "VERDICT_SIZE",
    "ClientHandshake",
    "ServerHandshake",
    "Welcome",
    "decode_hello",
    "decode_welcome",
    "encode_hello",
    "encode_welcome",
    "generate_secret",
]

MAGIC = b"SPARKLET"
PROTOCOL_VERSION = 1
NONCE_SIZE = 32
MAC_SIZE = hashlib.sha256().digest_size
MIN_SECRET_SIZE = 16

_PREAMBLE = struct.Struct(f">{len(MAGIC)}sH")  # magic, version
CHALLENGE_SIZE = _PREAMBLE.size + NONCE_SIZE
RESPONSE_SIZE = _PREAMBLE.size + NONCE_SIZE + MAC_SIZE
VERDICT_SIZE = 1 + MAC_SIZE

_NO_MAC = bytes(MAC_SIZE)


class _Verdict(enum.IntEnum):
    ACCEPTED = 1
    WRONG_SECRET = 2
    WRONG_VERSION = 3
    NOT_SPARKLET = 4


_REFUSAL_REASONS = {
    _Verdict.WRONG_SECRET: "it was given a different secret than we were",
    _Verdict.WRONG_VERSION: f"it does not speak sparklet wire protocol version {PROTOCOL_VERSION}",
    _Verdict.NOT_SPARKLET: "it did not recognise our handshake as sparklet's",
}


def generate_secret() -> bytes:
    """A fresh random 32-byte secret, to hand to every process of one application."""
    return secrets.token_bytes(32)


def _check_secret(secret: bytes) -> bytes:
    if not isinstance(secret, (bytes, bytearray)):
        raise TypeError(f"secret must be bytes (see generate_secret()), got {type(secret).__name__}")
    if len(secret) < MIN_SECRET_SIZE:
        raise ValueError(f"secret must be at least {MIN_SECRET_SIZE} bytes, got {len(secret)}")
    return bytes(secret)


def _check_nonce(nonce: bytes | None) -> bytes:
    if nonce is None:
        return secrets.token_bytes(NONCE_SIZE)
    if len(nonce) != NONCE_SIZE:
        raise ValueError(f"nonce must be {NONCE_SIZE} bytes, got {len(nonce)}")
    return bytes(nonce)


def _mac(secret: bytes, label: bytes, first_nonce: bytes, second_nonce: bytes) -> bytes:
    return hmac.new(secret, label + first_nonce + second_nonce, hashlib.sha256).digest()


def _check_size(what: str, data: bytes, expected: int) -> None:
    if len(data) != expected:
        # The caller reads exactly `expected` bytes; anything else is our bug, not the peer's.
        raise SparkletInternalError(f"handshake {what} must be {expected} bytes, got {len(data)}")


class ServerHandshake:
    """The accepting side. Send :meth:`challenge`, read :data:`RESPONSE_SIZE` bytes, pass
    them to :meth:`receive_response` and send back what it returns. If :attr:`failure`
    is then set, close the connection and report it."""

    def __init__(self, secret: bytes, *, nonce: bytes | None = None) -> None:
        self._secret = _check_secret(secret)
        self._nonce = _check_nonce(nonce)
        self._responded = False
        self.failure: HandshakeFailed | None = None

    def challenge(self) -> bytes:
        return _PREAMBLE.pack(MAGIC, PROTOCOL_VERSION) + self._nonce

    def receive_response(self, response: bytes) -> bytes:
        """Check the client's answer; returns the verdict to send (refusal or our proof)."""
        if self._responded:
            raise SparkletInternalError("ServerHandshake.receive_response called twice")
        self._responded = True
        _check_size("response", response, RESPONSE_SIZE)
        magic, version = _PREAMBLE.unpack_from(response)
        client_nonce = response[_PREAMBLE.size : _PREAMBLE.size + NONCE_SIZE]
        client_mac = response[_PREAMBLE.size + NONCE_SIZE :]
        if magic != MAGIC:
            return self._refuse(_Verdict.NOT_SPARKLET, "peer is not a sparklet endpoint (bad magic in its handshake)")
        if version != PROTOCOL_VERSION:
            return self._refuse(
                _Verdict.WRONG_VERSION,
                f"peer speaks wire protocol version {version}, we speak {PROTOCOL_VERSION}",
            )
        expected = _mac(self._secret, b"client", self._nonce, client_nonce)
        if not hmac.compare_digest(expected, client_mac):
            return self._refuse(_Verdict.WRONG_SECRET, "peer failed authentication: it does not hold our secret")
        return bytes([_Verdict.ACCEPTED]) + _mac(self._secret, b"server", client_nonce, self._nonce)

    @property
    def accepted(self) -> bool:
        return self._responded and self.failure is None

    def _refuse(self, verdict: _Verdict, reason: str) -> bytes:
        self.failure = HandshakeFailed(reason)
        return bytes([verdict]) + _NO_MAC


class ClientHandshake:
    """The connecting side. Read :data:`CHALLENGE_SIZE` bytes, send what
    :meth:`receive_challenge` returns, read :data:`VERDICT_SIZE` bytes and pass them to
    :meth:`receive_verdict`. Both raise :class:`HandshakeFailed` naming the cause."""

    def __init__(self, secret: bytes, *, nonce: bytes | None = None) -> None:
        self._secret = _check_secret(secret)
        self._nonce = _check_nonce(nonce)
        self._server_nonce: bytes | None = None
        self.accepted = False

    def receive_challenge(self, challenge: bytes) -> bytes:
        """Check the server's greeting; returns our response to send."""
        if self._server_nonce is not None:
            raise SparkletInternalError("ClientHandshake.receive_challenge called twice")
        _check_size("challenge", challenge, CHALLENGE_SIZE)
        magic, version = _PREAMBLE.unpack_from(challenge)
        if magic != MAGIC:
            raise HandshakeFailed("peer is not a sparklet endpoint (bad magic in its greeting)")
        if version != PROTOCOL_VERSION:
            raise HandshakeFailed(f"peer speaks wire protocol version {version}, we speak {PROTOCOL_VERSION}")
        self._server_nonce = server_nonce = challenge[_PREAMBLE.size :]
        client_mac = _mac(self._secret, b"client", server_nonce, self._nonce)
        return _PREAMBLE.pack(MAGIC, PROTOCOL_VERSION) + self._nonce + client_mac

    def receive_verdict(self, verdict: bytes) -> None:
        """Check the server accepted us and proved it holds the secret too."""
        if self._server_nonce is None or self.accepted:
            raise SparkletInternalError("ClientHandshake.receive_verdict called out of order")
        _check_size("verdict", verdict, VERDICT_SIZE)
        code = verdict[0]
        if code != _Verdict.ACCEPTED:
            reason = _REFUSAL_REASONS.get(code, f"unknown verdict code {code}")
            raise HandshakeFailed(f"peer refused us: {reason}")
        expected = _mac(self._secret, b"server", self._nonce, self._server_nonce)
        if not hmac.compare_digest(expected, verdict[1:]):
            raise HandshakeFailed("peer failed authentication: it does not hold our secret")
        self.accepted = True


# -- after authentication: the first frame each way ---------------------------------

MAX_SETUP_FRAME_SIZE = 4096  # far above any address; refuse anything larger unread
_HELLO_TAG = b"HELO"
_WELCOME_TAG = b"WLCM"


class Welcome(enum.IntEnum):
    """The accepting side's answer to a hello."""

    ACCEPTED = 1
    # The accepting side keeps a connection it initiated to the same peer (both dialled at
    # once and the tie-break favours the other one); the hello's sender uses that instead.
    DUPLICATE = 2


def encode_hello(listen_address: str) -> bytes:
    payload = _HELLO_TAG + listen_address.encode("utf-8")
    if len(payload) > MAX_SETUP_FRAME_SIZE:
        raise ValueError(f"listen address is too long ({len(payload)} bytes): {listen_address[:80]!r}...")
    return payload


def decode_hello(payload: bytes) -> str:
    """The peer's canonical listen address; :class:`ProtocolError` if malformed."""
    if not payload.startswith(_HELLO_TAG):
        raise ProtocolError(f"expected a hello frame first, got {payload[:16]!r}")
    try:
        address = payload[len(_HELLO_TAG) :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"hello frame carries an address that is not UTF-8: {exc}") from None
    if "://" not in address:
        raise ProtocolError(f"hello frame carries {address[:80]!r}, which is not a listen address")
    return address


def encode_welcome(welcome: Welcome) -> bytes:
    return _WELCOME_TAG + bytes([welcome])


def decode_welcome(payload: bytes) -> Welcome:
    if len(payload) != len(_WELCOME_TAG) + 1 or not payload.startswith(_WELCOME_TAG):
        raise ProtocolError(f"expected a welcome frame after our hello, got {payload[:16]!r}")
    try:
        return Welcome(payload[-1])
    except ValueError:
        raise ProtocolError(f"welcome frame carries unknown answer {payload[-1]}") from None
