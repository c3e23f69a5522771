"""The frame codec, driven synchronously: no sockets, no event loop."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparklet.actors._errors import FrameTooLarge
from sparklet.actors._framing import FRAME_HEADER_SIZE, FrameDecoder, encode_frame, encode_frames

pytestmark = pytest.mark.timeout(30)


def test_a_frame_is_a_big_endian_length_then_the_payload():
    assert encode_frame(b"abc") == b"\x00\x00\x00\x03abc"
    assert encode_frame(b"") == b"\x00\x00\x00\x00"


def test_coalesced_frames_are_the_concatenation_of_single_frames():
    payloads = [b"a", b"", b"bc" * 100, bytes(range(256))]
    assert encode_frames(payloads) == b"".join(encode_frame(p) for p in payloads)
    assert encode_frames([]) == b""


def test_decoder_returns_every_complete_frame_of_one_chunk():
    decoder = FrameDecoder()
    assert decoder.feed(encode_frames([b"one", b"two", b""])) == [b"one", b"two", b""]
    assert decoder.buffered_bytes == 0


def test_decoder_reassembles_frames_fed_one_byte_at_a_time():
    decoder = FrameDecoder()
    stream = encode_frames([b"hello", b"world"])
    out: list[bytes] = []
    for i in range(len(stream)):
        out += decoder.feed(stream[i : i + 1])
    assert out == [b"hello", b"world"]
    assert decoder.buffered_bytes == 0


def test_decoder_keeps_only_the_incomplete_tail():
    decoder = FrameDecoder()
    stream = encode_frames([b"done", b"partial"])
    assert decoder.feed(stream[:-3]) == [b"done"]
    # Invariant: the buffer holds the start of one incomplete frame, never a complete one.
    assert decoder.buffered_bytes == FRAME_HEADER_SIZE + len(b"partial") - 3
    assert decoder.feed(stream[-3:]) == [b"partial"]
    assert decoder.buffered_bytes == 0


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_decoder_accepts_any_bytes_like_chunk_and_returns_bytes(kind):
    decoder = FrameDecoder()
    stream = encode_frames([b"x" * 10, b"y" * 3])
    frames = decoder.feed(kind(stream[:7])) + decoder.feed(kind(stream[7:]))
    assert frames == [b"x" * 10, b"y" * 3]
    assert all(type(frame) is bytes for frame in frames)


def test_a_frame_exactly_at_the_limit_is_accepted():
    decoder = FrameDecoder(max_frame_size=8)
    assert decoder.feed(encode_frame(b"12345678")) == [b"12345678"]


def test_an_oversized_prefix_is_refused_before_any_body_arrives():
    decoder = FrameDecoder(max_frame_size=1000)
    with pytest.raises(FrameTooLarge) as caught:
        decoder.feed(b"\x00\x00\x03\xe9")  # 1001: only the prefix, no body
    message = str(caught.value)
    assert "1001" in message and "1000" in message


def test_an_oversized_prefix_split_across_chunks_is_refused_when_complete():
    decoder = FrameDecoder(max_frame_size=10)
    assert decoder.feed(encode_frame(b"ok") + b"\xff\xff") == [b"ok"]
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"\xff\xff")


def test_frames_before_an_oversized_prefix_are_returned_then_the_failure_raised():
    decoder = FrameDecoder(max_frame_size=4)
    frames = decoder.feed(encode_frames([b"ok", b"fine"]) + encode_frame(b"too long"))
    assert frames == [b"ok", b"fine"]  # the same as if the bytes had come one by one
    assert isinstance(decoder.failure, FrameTooLarge)
    with pytest.raises(FrameTooLarge):
        decoder.feed(b"")


def test_a_broken_stream_stays_broken():
    decoder = FrameDecoder(max_frame_size=4)
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"too long"))
    with pytest.raises(FrameTooLarge):
        decoder.feed(encode_frame(b"ok"))


@pytest.mark.parametrize("bad", [0, -1, 2**32, 1.5, "64"])
def test_max_frame_size_must_be_a_positive_int_that_fits_the_prefix(bad):
    with pytest.raises(ValueError, match="max_frame_size"):
        FrameDecoder(max_frame_size=bad)


@settings(max_examples=200, deadline=None)
@given(
    payloads=st.lists(st.binary(max_size=300), max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=12),
)
def test_any_chunking_of_any_frames_decodes_to_the_same_frames(payloads, cuts):
    stream = encode_frames(payloads)
    bounds = sorted({min(cut, len(stream)) for cut in cuts} | {0, len(stream)})
    decoder = FrameDecoder(max_frame_size=300)
    out: list[bytes] = []
    for start, stop in zip(bounds, bounds[1:]):
        out += decoder.feed(stream[start:stop])
    assert out == payloads
    assert decoder.buffered_bytes == 0


@settings(max_examples=200, deadline=None)
@given(stream=st.binary(max_size=400), limit=st.integers(min_value=1, max_value=64))
def test_arbitrary_bytes_either_decode_or_raise_frame_too_large(stream, limit):
    decoder = FrameDecoder(max_frame_size=limit)
    try:
        frames = decoder.feed(stream)
    except FrameTooLarge:
        assert decoder.failure is not None
        return
    assert all(len(frame) <= limit for frame in frames)
    if decoder.failure is not None:
        return
    assert sum(FRAME_HEADER_SIZE + len(frame) for frame in frames) + decoder.buffered_bytes == len(stream)
