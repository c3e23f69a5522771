"""The bytes of a shuffle: frames of pickled record batches, and the files that hold them.

A *segment* (what one map task wrote for one reduce partition, and what a fetch carries)
is zero or more *frames* back to back. A frame is a 5-byte header, the codec id (one
byte) and the payload length (unsigned 32-bit, little endian), followed by the payload:
one batch of records (a ``list`` of ``(key, value)`` tuples) pickled with
``pickle.HIGHEST_PROTOCOL`` (cloudpickle only when plain pickle refuses a record), then
compressed by the codec. Frames are self-describing, so a reader decodes any segment
whatever the writer's codec, streaming one batch at a time, and segments concatenate:
the bytes of two segments back to back are a segment with the records of both.

Spilled *runs* use the same frames; a run holds one segment per partition, contiguous,
like the final data file, and :class:`RunFile` remembers the offsets. All the runs of
one writer or reader go to one :class:`SpillFile`.

Codecs (``compression=``): ``"none"`` (id 0), ``"zlib"`` (id 1, level 1, standard
library), ``"lz4"`` (id 2, ``lz4.block`` with the size stored, needs the ``lz4`` package)
and ``"zstd"`` (id 3, level 1, needs ``zstandard``). The optional packages are imported
when a frame needs them. ``benchmarks/shuffle_codec.py`` measures them end to end
(write, loopback fetch, read). On a loopback machine pickling dominates: for 1M
``(word, 1)`` records, none 0.45 CPU-s at 13.8 B/record, lz4 0.46 at 5.7, zstd 0.49 at
3.9, zlib 0.55 at 4.0; the socket moved 13.8 MB for 0.01 CPU-s. So ``"none"`` is the
default and 1024 records a frame (256 as fast, 4096 slower to read); ``"lz4"`` pays
where bytes cross a real network.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from typing import Any, Callable, Iterable, Iterator

import cloudpickle

__all__ = [
    "CODECS", "DEFAULT_COMPRESSION", "HEADER", "check_codec", "encode_batch", "iter_batches", "decode_segment",
    "read_segment", "Sink", "RunFile", "SpillFile", "RunCursor", "copy_range", "remove_quietly",
]

HEADER = struct.Struct("<BI")  # codec id, payload length
_MAX_PAYLOAD = (1 << 32) - 1
DEFAULT_COMPRESSION = "none"


# -- codecs -----------------------------------------------------------------------------------------------

def _lz4() -> tuple[Callable[[bytes], bytes], Callable[[Any], bytes]]:
    import lz4.block  # optional: only a writer asked for lz4, or a reader given lz4 frames, needs it
    return (lambda data: lz4.block.compress(data, store_size=True)), lz4.block.decompress


def _zstd() -> tuple[Callable[[bytes], bytes], Callable[[Any], bytes]]:
    import zstandard  # optional, as lz4
    compressor, decompressor = zstandard.ZstdCompressor(level=1), zstandard.ZstdDecompressor()
    # One-shot frames carry their content size, which decompress() needs.
    return compressor.compress, (lambda data: decompressor.decompress(bytes(data)))


def _identity(data: Any) -> Any:
    return data


# name -> (id, factory of (compress, decompress))
CODECS: dict[str, tuple[int, Callable[[], tuple[Callable, Callable]]]] = {
    "none": (0, lambda: (_identity, _identity)),
    "zlib": (1, lambda: ((lambda data: zlib.compress(data, 1)), zlib.decompress)),
    "lz4": (2, _lz4),
    "zstd": (3, _zstd),
}
_ID_TO_NAME = {codec_id: name for name, (codec_id, _) in CODECS.items()}
_loaded: dict[int, tuple[Callable, Callable]] = {0: (_identity, _identity)}


def _codec(codec_id: int) -> tuple[Callable, Callable]:
    pair = _loaded.get(codec_id)
    if pair is None:
        name = _ID_TO_NAME.get(codec_id)
        if name is None:
            raise ValueError(f"corrupt shuffle segment: unknown codec id {codec_id} in a frame header")
        pair = _loaded[codec_id] = CODECS[name][1]()
    return pair


def check_codec(compression: str | None) -> int:
    """The codec id for a ``compression`` argument (``None`` means ``"none"``); fails
    early, naming the argument, if unknown or if its package is not installed."""
    name = "none" if compression is None else compression
    if name not in CODECS:
        raise ValueError(f"compression must be one of {sorted(CODECS)} or None, got {compression!r}")
    codec_id = CODECS[name][0]
    try:
        _codec(codec_id)
    except ImportError as exc:
        raise ValueError(f"compression={compression!r} needs a package that is not installed: {exc}") from exc
    return codec_id


# -- frames -----------------------------------------------------------------------------------------------

def encode_batch(batch: list, codec_id: int) -> bytes:
    """One frame holding ``batch`` (a list of records)."""
    try:
        payload = pickle.dumps(batch, pickle.HIGHEST_PROTOCOL)
    except (pickle.PicklingError, AttributeError, TypeError):
        payload = cloudpickle.dumps(batch, pickle.HIGHEST_PROTOCOL)  # lambdas, local or __main__ classes
    if codec_id:
        payload = _codec(codec_id)[0](payload)
    if len(payload) > _MAX_PAYLOAD:
        raise ValueError(f"a batch of {len(batch)} records pickles to {len(payload)} bytes, over the 4 GiB frame "
                         "limit: use a smaller batch_size")
    return HEADER.pack(codec_id, len(payload)) + payload


def iter_batches(data: bytes | bytearray | memoryview) -> Iterator[list]:
    """The batches of a segment, decoded one at a time."""
    view = memoryview(data)
    end = len(view)
    pos = 0
    unpack = HEADER.unpack_from
    loads = pickle.loads
    try:
        while pos < end:
            if end - pos < HEADER.size:
                raise ValueError(f"corrupt shuffle segment: {end - pos} stray bytes at offset {pos} of {end}")
            codec_id, length = unpack(view, pos)
            pos += HEADER.size
            if length > end - pos:
                raise ValueError(f"corrupt shuffle segment: a frame of {length} bytes at offset {pos - HEADER.size} "
                                 f"runs past the end ({end} bytes)")
            payload = view[pos:pos + length]
            pos += length
            if codec_id:
                payload = _codec(codec_id)[1](payload)
            yield loads(payload)
    finally:
        view.release()


def decode_segment(data: bytes) -> Iterator[tuple[Any, Any]]:
    """The records of a segment, in the order they were written."""
    for batch in iter_batches(data):
        yield from batch


def read_segment(path: str, offset: int, length: int) -> bytes:
    """Bytes ``[offset, offset + length)`` of a map output's data file (one fetch)."""
    if offset < 0 or length < 0:
        raise ValueError(f"offset and length must be non-negative, got offset={offset!r}, length={length!r}")
    if length == 0:
        return b""
    with open(path, "rb", buffering=0) as f:
        fd = f.fileno()
        data = os.pread(fd, length, offset)
        if len(data) == length:
            return data
        parts = [data]  # a short read: very large segments, or a truncated file
        got = len(data)
        while got < length:
            more = os.pread(fd, length - got, offset + got)
            if not more:
                raise ValueError(f"shuffle file {path} ends before offset {offset + length} "
                                 f"(asked {length} bytes at {offset}, got {got})")
            parts.append(more)
            got += len(more)
        return b"".join(parts)


# -- files ------------------------------------------------------------------------------------------------

FRAME_BYTES = 256 << 10  # the frame size Sink aims at when records are big


class _HandedOverFile(io.FileIO):
    """An unbuffered file that closes itself quietly if its owner never got hold of it.

    A task is killed by an exception raised asynchronously in its thread, between any two
    bytecodes: it may land after ``open`` returned and before the file reached the object
    that would close it (``Sink.__init__``, or the writer keeping the ``Sink``). The file
    is then unreachable and the garbage collector closes it; the descriptor is not leaked,
    so the ``ResourceWarning`` the collector would print is noise, not news. The writer's
    abort removes the file itself by its path."""

    def __del__(self) -> None:
        if not self.closed:
            self.close()


class Sink:
    """An unbuffered file written in frames, small frames coalesced up to ``coalesce``
    bytes (the only write buffer: a fixed overhead) and written with one ``writev``.
    ``position`` is the logical end."""

    COALESCE = 64 << 10

    def __init__(self, path: str, coalesce: int = COALESCE) -> None:
        self.path = path
        self.coalesce = coalesce
        self._file = _HandedOverFile(path, "xb")
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self.position = 0

    def write(self, frame: bytes) -> None:
        self.position += len(frame)
        if len(frame) >= self.coalesce:
            self.flush()
            self._write_all(frame)
            return
        self._pending.append(frame)
        self._pending_bytes += len(frame)
        if self._pending_bytes >= self.coalesce:
            self.flush()

    def write_batches(self, records: list, per_batch: int, codec_id: int) -> None:
        """Frames of at most ``per_batch`` records of ``records`` (see :meth:`_adapt`)."""
        start, size = 0, per_batch
        while start < len(records):
            frame = encode_batch(records[start:start + size], codec_id)
            self.write(frame)
            start += size
            size = self._adapt(size, per_batch, len(frame))

    def write_stream(self, records: Iterable, per_batch: int, codec_id: int) -> int:
        """Frames of at most ``per_batch`` records from an iterator (see :meth:`_adapt`);
        returns how many records."""
        count = 0
        size = per_batch
        batch: list = []
        append = batch.append
        for record in records:
            append(record)
            if len(batch) >= size:
                frame = encode_batch(batch, codec_id)
                self.write(frame)
                count += len(batch)
                batch.clear()
                size = self._adapt(size, per_batch, len(frame))
        if batch:
            self.write(encode_batch(batch, codec_id))
            count += len(batch)
        return count

    @staticmethod
    def _adapt(size: int, per_batch: int, frame_bytes: int) -> int:
        """The next frame's record count, PySpark's ``AutoBatchedSerializer`` rule within
        the memory plan's ``per_batch``: halve while frames come out over
        ``FRAME_BYTES * 4`` (big records: smaller frames, less decoded at once by a
        reader), double back while under ``FRAME_BYTES``."""
        if frame_bytes > FRAME_BYTES * 4 and size > 1:
            return size // 2
        if frame_bytes < FRAME_BYTES and size < per_batch:
            return min(per_batch, size * 2)
        return size

    def flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        if len(pending) == 1:
            self._write_all(pending[0])
        else:  # one system call, no joined copy
            written = os.writev(self._file.fileno(), pending)
            if written < self._pending_bytes:  # pragma: no cover - regular files take it all
                for frame in pending:
                    if written >= len(frame):
                        written -= len(frame)
                        continue
                    self._write_all(memoryview(frame)[written:])
                    written = 0
        pending.clear()
        self._pending_bytes = 0

    def copy_from(self, path: str, offset: int, length: int, src_fd: int | None = None) -> None:
        """Append bytes ``[offset, offset + length)`` of another file, in the kernel where it can."""
        if length <= 0:
            return
        self.flush()
        self.position += length
        if src_fd is None:
            with open(path, "rb", buffering=0) as f:
                copy_range(f.fileno(), self._file.fileno(), offset, length)
        else:
            copy_range(src_fd, self._file.fileno(), offset, length)

    def _write_all(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = self._file.write(view)
            view = view[written:]

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._file.close()

    def discard(self) -> None:
        self._pending.clear()
        self._file.close()
        remove_quietly(self.path)


def copy_range(src_fd: int, dst_fd: int, offset: int, length: int) -> None:
    """Append ``length`` bytes of ``src_fd`` from ``offset`` at ``dst_fd``'s position,
    with ``copy_file_range`` (no user-space buffer) or, where refused, 64 KiB reads."""
    done = 0
    use_kernel = hasattr(os, "copy_file_range")
    while done < length:
        if use_kernel:
            try:
                n = os.copy_file_range(src_fd, dst_fd, length - done, offset + done)
            except OSError:
                use_kernel = False
                continue
        else:
            chunk = os.pread(src_fd, min(64 << 10, length - done), offset + done)
            n = os.write(dst_fd, chunk) if chunk else 0
            if chunk and n < len(chunk):  # pragma: no cover - regular files write whole chunks
                n += os.write(dst_fd, chunk[n:])
        if n == 0:
            raise ValueError(f"shuffle file ends before offset {offset + length} while copying {length} bytes")
        done += n


def remove_quietly(path: str) -> None:
    try:
        os.remove(path)
    except FileNotFoundError:
        pass


class RunFile:
    """A spilled run: ``parts`` segments written contiguously in a spill file, each sorted
    by the spill's order, segment ``p`` at ``[offsets[p], offsets[p + 1])`` of the file.
    ``batch_bytes`` is the largest estimated in-memory size of one decoded batch (what a
    merge holds per open run)."""

    __slots__ = ("offsets", "records", "batch_bytes")

    def __init__(self, offsets: list[int], records: int, batch_bytes: int) -> None:
        self.offsets = offsets
        self.records = records
        self.batch_bytes = batch_bytes

    def __repr__(self) -> str:
        return f"RunFile({len(self.offsets) - 1} parts at {self.offsets[0]}..{self.offsets[-1]}, {self.records} records)"


class SpillFile:
    """The one file that holds all the runs of a writer or reader, appended by a
    :class:`Sink` and read back with ``pread`` (one descriptor, any number of cursors).
    One file rather than one per spill: creating files is the slow part of a spill on
    some file systems, and runs merged away need not be deleted one by one."""

    def __init__(self, path: str, coalesce: int = Sink.COALESCE) -> None:
        self.path = path
        self.sink = Sink(path, coalesce)
        self._read_fd: int | None = None

    def read_fd(self) -> int:
        """A descriptor to read runs from; pending writes are flushed first."""
        self.sink.flush()
        if self._read_fd is None:
            self._read_fd = os.open(self.path, os.O_RDONLY)
        return self._read_fd

    def close(self) -> None:
        try:
            self.sink.close()
        finally:
            if self._read_fd is not None:
                os.close(self._read_fd)
                self._read_fd = None

    def discard(self) -> None:
        self.close()
        remove_quietly(self.path)


class RunCursor:
    """Reads a run's segments in order, one frame at a time, with no read buffer."""

    def __init__(self, run: RunFile, fd: int, path: str) -> None:
        self.run = run
        self.fd = fd
        self._path = path

    def batches(self, part: int) -> Iterator[list]:
        pos, end = self.run.offsets[part], self.run.offsets[part + 1]
        fd = self.fd
        pread = os.pread
        while pos < end:
            header = pread(fd, HEADER.size, pos)
            if len(header) < HEADER.size:
                raise ValueError(f"spill file {self._path} is truncated at offset {pos}")
            codec_id, length = HEADER.unpack(header)
            payload = pread(fd, length, pos + HEADER.size)
            if len(payload) < length:
                raise ValueError(f"spill file {self._path} is truncated at offset {pos}")
            pos += HEADER.size + length
            if codec_id:
                payload = _codec(codec_id)[1](payload)
            yield pickle.loads(payload)
