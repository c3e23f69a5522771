"""Length-prefixed framing, sans-I/O.

On the wire every frame is a 4-byte big-endian unsigned length followed by that many
payload bytes, and nothing else: no type tag and no checksum, because stream sockets
already deliver bytes intact and in order, and the peer proved who it is in the
handshake (:mod:`sparklet.actors._handshake`) before its first frame is decoded.

:class:`FrameDecoder` turns any chunking of the byte stream back into payloads. It checks
each length prefix against ``max_frame_size`` the moment the four prefix bytes are in,
so a broken or hostile peer cannot make us buffer a huge body before we refuse it.
Nothing here touches a socket or an event loop; tests feed bytes and look at the result.
"""

from __future__ import annotations

import struct
from typing import Iterable

from sparklet.actors._errors import FrameTooLarge

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "FRAME_HEADER",
    "FRAME_HEADER_SIZE",
    "LARGEST_ENCODABLE_PAYLOAD",
    "FrameDecoder",
    "encode_frame",
    "encode_frames",
]

FRAME_HEADER = struct.Struct(">I")
FRAME_HEADER_SIZE = FRAME_HEADER.size
LARGEST_ENCODABLE_PAYLOAD = 2**32 - 1
DEFAULT_MAX_FRAME_SIZE = 64 * 1024 * 1024

_pack_header = FRAME_HEADER.pack
_unpack_header_from = FRAME_HEADER.unpack_from


def encode_frame(payload: bytes) -> bytes:
    """One frame: length prefix then payload."""
    try:
        return _pack_header(len(payload)) + payload
    except struct.error:
        raise FrameTooLarge(
            f"cannot frame a payload of {len(payload)} bytes: the 4-byte length prefix "
            f"holds at most {LARGEST_ENCODABLE_PAYLOAD}"
        ) from None


def encode_frames(payloads: Iterable[bytes]) -> bytes:
    """Many frames coalesced into one buffer, so a single socket write carries them all."""
    parts: list[bytes] = []
    append = parts.append
    try:
        for payload in payloads:
            append(_pack_header(len(payload)))
            append(payload)
    except struct.error:
        raise FrameTooLarge(
            f"cannot frame a payload of {len(payload)} bytes: the 4-byte length prefix "
            f"holds at most {LARGEST_ENCODABLE_PAYLOAD}"
        ) from None
    return b"".join(parts)


class FrameDecoder:
    """Feed it bytes as they arrive; it hands back every payload completed so far.

    A length prefix over ``max_frame_size`` breaks the stream for good: :attr:`failure`
    is set and :meth:`feed` raises it, after first returning the complete frames that
    preceded the bad prefix in the same chunk (so what gets delivered does not depend on
    how the bytes happened to be chunked). Callers check :attr:`failure` after handling
    the returned frames.
    """

    __slots__ = ("max_frame_size", "_pending", "failure")

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        if not isinstance(max_frame_size, int) or not 0 < max_frame_size <= LARGEST_ENCODABLE_PAYLOAD:
            raise ValueError(
                f"max_frame_size must be an int in 1..{LARGEST_ENCODABLE_PAYLOAD}, got {max_frame_size!r}"
            )
        self.max_frame_size = max_frame_size
        # Invariant: holds only the start of one incomplete frame (never a complete one).
        self._pending = bytearray()
        self.failure: FrameTooLarge | None = None

    @property
    def buffered_bytes(self) -> int:
        """Bytes received that belong to a frame not yet complete."""
        return len(self._pending)

    def feed(self, data: bytes | bytearray | memoryview) -> list[bytes]:
        if self.failure is not None:
            raise self.failure
        pending = self._pending
        if pending:
            pending += data
            source: bytes | bytearray | memoryview = pending
        else:
            source = data
        end = len(source)
        if end < FRAME_HEADER_SIZE:
            if source is data:
                pending += data
            return []
        frames: list[bytes] = []
        append = frames.append
        limit = self.max_frame_size
        offset = 0
        # Slicing a bytearray and then converting copies twice; a memoryview slice copies once.
        # Slicing bytes copies once already, and bytes(bytes) is the same object.
        view = memoryview(source) if source is pending else None
        cut = source if view is None else view
        try:
            while end - offset >= FRAME_HEADER_SIZE:
                (size,) = _unpack_header_from(source, offset)
                if size > limit:
                    self.failure = FrameTooLarge(
                        f"peer announced a frame of {size} bytes; the limit (max_frame_size) is {limit}"
                    )
                    if not frames:
                        raise self.failure
                    break
                start = offset + FRAME_HEADER_SIZE
                stop = start + size
                if stop > end:
                    break
                append(bytes(cut[start:stop]))
                offset = stop
        finally:
            if view is not None:
                view.release()  # a bytearray cannot shrink while a view of it exists
        if source is pending:
            del pending[:offset]
        elif offset < end:
            pending += source[offset:]
        return frames
