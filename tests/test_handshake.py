"""The handshake and setup frames, driven synchronously: no sockets, no event loop."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.actors._errors import HandshakeFailed, ProtocolError, SparkletInternalError
from sparklet.actors._handshake import (
    CHALLENGE_SIZE, MAGIC, PROTOCOL_VERSION, RESPONSE_SIZE, VERDICT_SIZE, ClientHandshake, ServerHandshake,
    Welcome, decode_hello, decode_welcome, encode_hello, encode_welcome, generate_secret,
)

pytestmark = pytest.mark.timeout(30)

SECRET = b"s" * 32
OTHER_SECRET = b"o" * 32
SERVER_NONCE = bytes(range(32))
CLIENT_NONCE = bytes(range(100, 132))


def run_handshake(server_secret: bytes, client_secret: bytes) -> tuple[ServerHandshake, ClientHandshake]:
    """Play both sides to the end; the client's HandshakeFailed, if any, propagates."""
    server = ServerHandshake(server_secret)
    client = ClientHandshake(client_secret)
    response = client.receive_challenge(server.challenge())
    verdict = server.receive_response(response)
    client.receive_verdict(verdict)
    return server, client


def test_same_secret_authenticates_both_sides():
    server, client = run_handshake(SECRET, SECRET)
    assert server.accepted and server.failure is None
    assert client.accepted


def test_messages_have_the_documented_fixed_layout():
    server = ServerHandshake(SECRET, nonce=SERVER_NONCE)
    client = ClientHandshake(SECRET, nonce=CLIENT_NONCE)
    challenge = server.challenge()
    assert challenge == MAGIC + PROTOCOL_VERSION.to_bytes(2, "big") + SERVER_NONCE
    assert len(challenge) == CHALLENGE_SIZE
    response = client.receive_challenge(challenge)
    client_mac = hmac.new(SECRET, b"client" + SERVER_NONCE + CLIENT_NONCE, hashlib.sha256).digest()
    assert response == MAGIC + PROTOCOL_VERSION.to_bytes(2, "big") + CLIENT_NONCE + client_mac
    assert len(response) == RESPONSE_SIZE
    verdict = server.receive_response(response)
    server_mac = hmac.new(SECRET, b"server" + CLIENT_NONCE + SERVER_NONCE, hashlib.sha256).digest()
    assert verdict == b"\x01" + server_mac
    assert len(verdict) == VERDICT_SIZE


def test_wrong_secret_is_refused_and_the_client_is_told_why():
    server = ServerHandshake(SECRET)
    client = ClientHandshake(OTHER_SECRET)
    verdict = server.receive_response(client.receive_challenge(server.challenge()))
    assert isinstance(server.failure, HandshakeFailed)
    assert "secret" in str(server.failure)
    assert not server.accepted
    with pytest.raises(HandshakeFailed, match="different secret"):
        client.receive_verdict(verdict)
    assert not client.accepted


def test_a_server_that_cannot_prove_the_secret_is_refused_by_the_client():
    server = ServerHandshake(SECRET)
    client = ClientHandshake(SECRET)
    client.receive_challenge(server.challenge())
    forged = b"\x01" + bytes(32)  # "accepted", with a MAC made up by an impostor
    with pytest.raises(HandshakeFailed, match="does not hold our secret"):
        client.receive_verdict(forged)


def test_the_client_mac_cannot_be_reflected_as_the_server_proof():
    server = ServerHandshake(SECRET, nonce=SERVER_NONCE)
    client = ClientHandshake(SECRET, nonce=CLIENT_NONCE)
    response = client.receive_challenge(server.challenge())
    reflected = b"\x01" + response[-32:]
    with pytest.raises(HandshakeFailed):
        client.receive_verdict(reflected)


def test_a_greeting_without_the_magic_is_not_a_sparklet_peer():
    client = ClientHandshake(SECRET)
    with pytest.raises(HandshakeFailed, match="not a sparklet endpoint"):
        client.receive_challenge(b"HTTP/1.1 200 OK\r\n".ljust(CHALLENGE_SIZE, b"x"))


def test_a_greeting_with_another_version_names_both_versions():
    client = ClientHandshake(SECRET)
    challenge = MAGIC + (PROTOCOL_VERSION + 1).to_bytes(2, "big") + SERVER_NONCE
    with pytest.raises(HandshakeFailed, match=f"version {PROTOCOL_VERSION + 1}, we speak {PROTOCOL_VERSION}"):
        client.receive_challenge(challenge)


def test_a_response_without_the_magic_is_refused_as_not_sparklet():
    server = ServerHandshake(SECRET)
    server.challenge()
    verdict = server.receive_response(b"\x00" * RESPONSE_SIZE)
    assert "not a sparklet endpoint" in str(server.failure)
    client = ClientHandshake(SECRET)
    client.receive_challenge(ServerHandshake(SECRET).challenge())
    with pytest.raises(HandshakeFailed, match="did not recognise"):
        client.receive_verdict(verdict)


def test_a_response_with_another_version_is_refused_naming_it():
    server = ServerHandshake(SECRET)
    client = ClientHandshake(SECRET)
    response = bytearray(client.receive_challenge(server.challenge()))
    response[len(MAGIC) : len(MAGIC) + 2] = (PROTOCOL_VERSION + 7).to_bytes(2, "big")
    verdict = server.receive_response(bytes(response))
    assert f"version {PROTOCOL_VERSION + 7}" in str(server.failure)
    with pytest.raises(HandshakeFailed, match="protocol version"):
        client.receive_verdict(verdict)


@settings(max_examples=100, deadline=None)
@given(response=st.binary(min_size=RESPONSE_SIZE, max_size=RESPONSE_SIZE))
def test_random_responses_are_never_accepted(response):
    server = ServerHandshake(SECRET)
    server.challenge()
    verdict = server.receive_response(response)
    assert not server.accepted
    assert verdict[0] != 1


@settings(max_examples=100, deadline=None)
@given(verdict=st.binary(min_size=VERDICT_SIZE, max_size=VERDICT_SIZE))
def test_random_verdicts_are_never_accepted(verdict):
    client = ClientHandshake(SECRET)
    client.receive_challenge(ServerHandshake(SECRET).challenge())
    with pytest.raises(HandshakeFailed):
        client.receive_verdict(verdict)


def test_calls_out_of_order_are_our_bug_not_the_peers():
    client = ClientHandshake(SECRET)
    with pytest.raises(SparkletInternalError):
        client.receive_verdict(b"\x01" * VERDICT_SIZE)
    server = ServerHandshake(SECRET)
    response = client.receive_challenge(server.challenge())
    server.receive_response(response)
    with pytest.raises(SparkletInternalError):
        server.receive_response(response)
    with pytest.raises(SparkletInternalError, match="must be"):
        ClientHandshake(SECRET).receive_challenge(b"short")


def test_generate_secret_gives_fresh_32_byte_secrets():
    first, second = generate_secret(), generate_secret()
    assert len(first) == len(second) == 32
    assert first != second


@pytest.mark.parametrize(("secret", "error", "match"), [
    ("a string secret that is long enough", TypeError, "must be bytes"),
    (b"short", ValueError, "at least 16 bytes"),
])
def test_bad_secrets_are_usage_errors_naming_the_problem(secret, error, match):
    with pytest.raises(error, match=match):
        ServerHandshake(secret)
    with pytest.raises(error, match=match):
        ClientHandshake(secret)


def test_hello_carries_the_listen_address():
    assert decode_hello(encode_hello("unix:///tmp/é.sock")) == "unix:///tmp/é.sock"


@pytest.mark.parametrize("payload", [b"", b"HELO", b"HELOnot an address", b"HELO\xff\xfe://", b"WLCM\x01"])
def test_malformed_hellos_are_protocol_errors(payload):
    with pytest.raises(ProtocolError):
        decode_hello(payload)


def test_welcome_round_trips_and_rejects_anything_else():
    for welcome in Welcome:
        assert decode_welcome(encode_welcome(welcome)) is welcome
    for payload in (b"", b"WLCM", b"WLCM\x09", b"WLCM\x01\x01", b"HELOx"):
        with pytest.raises(ProtocolError):
            decode_welcome(payload)
