"""The msgpack codec: declared messages round-trip, bytes stay bytes, bad input is a CodecError."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from sparklet.actors import ActorSystem, CodecError, MessageRegistry, message, message_tag


@message
class Payload:
    name: str
    blob: bytes
    items: tuple
    meta: dict


@message
class Wrapper:
    inner: Payload
    count: int


@message
class Empty:
    pass


@pytest.fixture
async def codec():
    system = ActorSystem("codec")
    await system.start()
    yield system.codec
    await system.shutdown()


async def test_nested_messages_round_trip(codec):
    msg = Wrapper(Payload("a", b"\x00\xff" * 10, (1, 2.5, None, "x"), {"k": (1, 2), 3: b"z"}), 7)
    assert codec.roundtrip(msg) == msg
    assert codec.roundtrip(Empty()) == Empty()


async def test_bytes_field_is_packed_once_as_bin(codec):
    blob = bytes(range(256)) * 4
    frame = codec.encode(Payload("p", blob, (), {}))
    # The blob appears verbatim, exactly once: no nested re-encoding of the message.
    assert frame.count(blob) == 1
    assert len(frame) < len(blob) + 64


async def test_unknown_tag_is_a_clear_error(codec):
    frame = msgpack.packb([msgpack.ExtType(1, b"no.such.Message"), 1])
    with pytest.raises(CodecError, match="unknown message type tag 'no.such.Message'"):
        codec.decode(frame)


async def test_wrong_field_count_names_the_type(codec):
    frame = msgpack.packb([msgpack.ExtType(1, message_tag(Wrapper).encode()), 1, 2, 3])
    with pytest.raises(CodecError, match="expects 2 fields"):
        codec.decode(frame)


async def test_unencodable_value_names_its_type(codec):
    with pytest.raises(CodecError, match="set"):
        codec.encode(Payload("a", b"", ({1, 2},), {}))
    with pytest.raises(CodecError, match="does not fit in msgpack's 64 bits"):
        codec.encode(Payload("a", b"", (2**70,), {}))
    with pytest.raises(CodecError, match="not a declared message type"):
        import dataclasses

        @dataclasses.dataclass
        class Loose:
            x: int

        codec.encode(Loose(1))


async def test_unknown_ext_and_garbage_are_codec_errors(codec):
    with pytest.raises(CodecError, match="unknown msgpack ext type 9"):
        codec.decode(msgpack.packb(msgpack.ExtType(9, b"")))
    with pytest.raises(CodecError, match="malformed frame"):
        codec.decode(b"\xc1\xc1\xc1")
    with pytest.raises(CodecError):
        codec.decode(b"\x93\x01")  # truncated array


def test_tag_collision_between_different_types_is_refused():
    registry = MessageRegistry()
    message(tag="same", registry=registry)(type("A", (), {"__annotations__": {"x": int}}))
    with pytest.raises(ValueError, match="already used"):
        message(tag="same", registry=registry)(type("B", (), {"__annotations__": {"x": int}}))


def test_message_must_be_frozen():
    import dataclasses

    with pytest.raises(TypeError, match="frozen"):
        @message
        @dataclasses.dataclass
        class Mutable:
            x: int


json_like = st.recursive(
    st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats(allow_nan=False) | st.text() | st.binary(),
    lambda inner: st.lists(inner, max_size=5).map(tuple) | st.dictionaries(st.text() | st.integers(-2**63, 2**63 - 1), inner, max_size=5),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(st.text(), st.binary(), st.lists(json_like, max_size=6).map(tuple), st.dictionaries(st.text(), json_like, max_size=4))
def test_any_msgpack_value_round_trips_inside_a_message(name, blob, items, meta):
    registry_system = ActorSystem("prop")
    msg = Payload(name, blob, items, meta)
    assert registry_system.codec.roundtrip(msg) == msg


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64))
def test_random_bytes_never_escape_as_anything_but_codec_error(data):
    codec = ActorSystem("fuzz").codec
    try:
        codec.decode(data)
    except CodecError:
        pass


@message
class CarriesLocal:
    name: str
    thing: object


async def test_local_values_round_trip_by_identity_but_never_cross_processes(codec):
    from sparklet.actors import Local

    payload = object()
    msg = codec.roundtrip(CarriesLocal("x", Local(payload)))
    assert msg.thing.value is payload
    with pytest.raises(CodecError, match=r"Local\(object\) is process-local and cannot be sent to another process"):
        codec.encode(CarriesLocal("x", Local(payload)))
    with pytest.raises(CodecError, match="without its object"):
        codec.decode(msgpack.packb(msgpack.ExtType(3, (12345).to_bytes(8, "little"))))
    assert codec._locals == {}
